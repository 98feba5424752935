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

OnLoss = Literal["freeze", "black", "conceal"]
ON_LOSS: tuple[OnLoss, ...] = ("freeze", "black", "conceal")

#: Gaps longer than this are not filled: the output is split there instead (`_part2`, …), so a
#: broken capture (packets days apart) cannot make days of filler.
DEFAULT_MAX_FILL_MS = 3 * 3600 * 1000

ConvertMode = Literal["remux", "editor"]
MODES: tuple[ConvertMode, ...] = ("editor", "remux")
#: x264 presets the editor mode offers, fastest first.
PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow")
DEFAULT_PRESET = "veryfast"
DEFAULT_CRF = 20
