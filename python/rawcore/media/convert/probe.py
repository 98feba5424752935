"""What a conversion reads: the video and audio stream of its inputs, and where each starts.

An input is any file FFmpeg demuxes (a rawcore output, a WebM/Matroska raw track from
elsewhere, an MP4); the first video and the first audio stream count. A separate audio file
(`--audio`) is placed against the video by the two files' `manifest.json` entries when both
have one (their `start_unix_ms`, the call timeline), else both start at their own t=0.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from rawcore.errors import InputError, SourceNotFoundError
from rawcore.media.manifest import MANIFEST_NAME

#: Video codecs MP4 players take as they are, with their sample entry.
REMUX_VIDEO = {"vp9": "vp09", "av1": "av01", "h264": "avc1"}
#: Audio codecs MP4 players take as they are.
REMUX_AUDIO = {"opus": "Opus", "aac": "mp4a"}


@dataclass(frozen=True)
class StreamRef:
    """One stream of one input file."""

    path: Path
    index: int
    kind: Literal["video", "audio"]
    codec: str


@dataclass(frozen=True)
class Inputs:
    """The streams a conversion reads; `audio_offset_s` is added to the audio's times."""

    video: StreamRef | None
    audio: StreamRef | None
    audio_offset_s: float = 0.0

    @property
    def paths(self) -> list[str]:
        refs = [r for r in (self.video, self.audio) if r is not None]
        return list(dict.fromkeys(str(r.path) for r in refs))


@contextlib.contextmanager
def open_media(path: Path) -> Iterator[Any]:
    """The file opened for demuxing, with FFmpeg's errors as one-line `InputError`s."""
    import av

    if not path.exists():
        raise SourceNotFoundError(f"{path}: no such file")
    if not path.is_file():
        raise InputError(f"{path}: not a file")
    try:
        container = av.open(str(path))
    except av.error.FFmpegError as exc:
        raise InputError(f"{path}: not a media file FFmpeg can read ({exc.strerror})") from None
    try:
        yield container
    finally:
        container.close()


def _firsts(path: Path) -> dict[str, StreamRef]:
    """The first video and the first audio stream of `path`, by kind (one open of the file)."""
    found: dict[str, StreamRef] = {}
    with open_media(path) as c:
        for s in c.streams:
            if s.type in ("video", "audio") and s.type not in found:
                # The codec, not the decoder FFmpeg picked for it (libdav1d decodes av1).
                found[s.type] = StreamRef(
                    path, s.index, s.type, s.codec_context.codec.canonical_name
                )
    return found


def _first(path: Path, kind: Literal["video", "audio"]) -> StreamRef | None:
    return _firsts(path).get(kind)


def manifest_entry(path: Path) -> dict[str, Any] | None:
    """The entry `manifest.json` beside `path` has for it (a rawcore output), else None."""
    try:
        doc = json.loads((path.parent / MANIFEST_NAME).read_text())
        for entry in doc.get("outputs", []):
            if isinstance(entry, dict) and entry.get("path") == path.name:
                return entry
    except (OSError, ValueError, AttributeError):
        pass
    return None


def _manifest_start(path: Path) -> int | None:
    entry = manifest_entry(path)
    start = None if entry is None else entry.get("start_unix_ms")
    return start if isinstance(start, int) else None


def find_inputs(
    source: str | os.PathLike[str],
    *,
    audio: str | os.PathLike[str] | None = None,
    no_audio: bool = False,
) -> Inputs:
    """The streams to convert: the first video and audio of `source` (audio from `audio`
    instead when given; none with `no_audio`)."""
    path = Path(source)
    firsts = _firsts(path)
    video = firsts.get("video")
    offset = 0.0
    if no_audio:
        sound = None
    elif audio is not None:
        sound = _first(Path(audio), "audio")
        if sound is None:
            raise InputError(f"{audio}: no audio stream")
        v_start, a_start = _manifest_start(path), _manifest_start(Path(audio))
        if video is not None and v_start is not None and a_start is not None:
            offset = (a_start - v_start) / 1000.0
    else:
        sound = firsts.get("audio")
    if video is None and sound is None:
        raise InputError(f"{path}: no video or audio stream to convert")
    return Inputs(video, sound, offset)


__all__ = [
    "REMUX_AUDIO",
    "REMUX_VIDEO",
    "Inputs",
    "StreamRef",
    "find_inputs",
    "manifest_entry",
    "open_media",
]
