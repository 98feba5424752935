"""mix: one audio file of the whole call from the per-participant tracks (see `engine`)."""

from rawcore.media.mix.engine import mix_audio
from rawcore.media.mix.types import MIX_FORMATS, MixFormat, MixInput, MixReport, mixed_name

__all__ = ["MIX_FORMATS", "MixFormat", "MixInput", "MixReport", "mix_audio", "mixed_name"]
