"""mix: one audio file of the whole call from the per-participant tracks (see `engine`)."""

from rawcore.media.formats import MIX_FORMATS, MixFormat
from rawcore.media.mix.encode import check_encoding
from rawcore.media.mix.engine import mix_audio
from rawcore.media.mix.types import MixInput, MixReport, mixed_name

__all__ = [
    "MIX_FORMATS",
    "MixFormat",
    "MixInput",
    "MixReport",
    "check_encoding",
    "mix_audio",
    "mixed_name",
]
