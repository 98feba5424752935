"""The output formats and media choices the commands offer, on their own so the command line
can list them without loading the writers (and NumPy or PyAV with them)."""

from __future__ import annotations

from typing import Literal

AudioFormat = Literal["mkv", "mka", "webm", "ogg"]
AUDIO_FORMATS: tuple[AudioFormat, ...] = ("mkv", "mka", "webm", "ogg")

VideoFormat = Literal["mkv", "webm"]
VIDEO_FORMATS: tuple[VideoFormat, ...] = ("mkv", "webm")

Media = Literal["user", "display", "both"]
MEDIA: tuple[Media, ...] = ("user", "display", "both")

MixFormat = Literal["mp3", "opus", "m4a", "flac", "wav"]
MIX_FORMATS: tuple[MixFormat, ...] = ("mp3", "opus", "m4a", "flac", "wav")
