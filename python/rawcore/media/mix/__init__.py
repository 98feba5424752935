"""mix: one audio file of the whole call from the per-participant tracks (see `engine`)."""

from rawcore.media.formats import MIX_FORMATS, MixFormat
from rawcore.media.mix.encode import check_encoding
from rawcore.media.mix.engine import MIX_RATE, mix_audio, mix_opus
from rawcore.media.mix.types import MixInput, MixReport, OpusTrack, mixed_name

__all__ = [
    "MIX_FORMATS",
    "MIX_RATE",
    "MixFormat",
    "MixInput",
    "MixReport",
    "OpusTrack",
    "check_encoding",
    "mix_audio",
    "mix_opus",
    "mixed_name",
]
