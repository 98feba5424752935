"""native: Matroska/WebM remuxed into MP4 by the core, without FFmpeg.

Every rawcore video and A/V output, and what WebRTC recorders write, is Matroska or WebM: the
core reads it in two passes (sample tables, then `moov` and the payloads; see
`rawcore._core.remux_mp4`) and writes a fast-start MP4 with the same packets and times. This
module imports nothing heavy (no FFmpeg, no NumPy), so `rawcore convert --mode remux` starts
fast; the FFmpeg muxer in `remux` takes what the core does not (see there).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rawcore._core import remux_mp4
from rawcore.errors import InputError
from rawcore.media.convert.probe import manifest_entry
from rawcore.media.files import atomic_path, prepare_output_dir
from rawcore.media.manifest import ManifestEntry, OutputKind, write_manifest

#: The first bytes of every Matroska and WebM file (the EBML header's ID).
EBML_MAGIC = b"\x1a\x45\xdf\xa3"


@dataclass(frozen=True)
class NativeRemux:
    """What the core's remux wrote: the codecs in the file and its length."""

    video: str | None
    audio: str | None
    duration_s: float
    packets: int
    width: int | None
    height: int | None
    #: Where the input was cut short (its frames before that are in the MP4), if it was.
    truncated_at: int | None


def is_matroska(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(4) == EBML_MAGIC
    except OSError:
        return False


def remux_matroska(path: Path, out: Path, *, no_audio: bool = False) -> NativeRemux | None:
    """Remux the Matroska/WebM file `path` into the MP4 `out` in the core; None (nothing
    written) when a track other than H.264 has frames stored in decode order (timestamps that
    go backwards), which only FFmpeg's muxer takes."""
    try:
        report = remux_mp4(path, out, audio=not no_audio)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None
    if not report.written:
        return None
    video = next((t for t in report.tracks if t.kind == "video"), None)
    audio = next((t for t in report.tracks if t.kind == "audio"), None)
    return NativeRemux(
        video=None if video is None else video.codec,
        audio=None if audio is None else audio.codec,
        duration_s=max(t.end_s for t in report.tracks),
        packets=sum(t.frames for t in report.tracks),
        width=None if video is None else video.width,
        height=None if video is None else video.height,
        truncated_at=report.truncated_at,
    )


class _NotNative(Exception):
    """The core cannot remux this file (non-H.264 frames in decode order): FFmpeg's muxer
    does."""


def write_native(source: Path, output: Path, no_audio: bool) -> ManifestEntry | None:
    """The MP4 `output` remuxed by the core from the Matroska file `source`, and its manifest
    entry; None (nothing written) when only FFmpeg's muxer can (see `remux_matroska`)."""
    out_dir = prepare_output_dir(output.parent)
    try:
        with atomic_path(out_dir, output.name) as tmp:
            done = remux_matroska(source, tmp, no_audio=no_audio)
            if done is None:
                raise _NotNative
    except _NotNative:
        return None
    kind: OutputKind = "av" if done.video and done.audio else "video" if done.video else "audio"
    warnings = []
    if done.truncated_at is not None:
        warnings.append(
            f"{source} is cut short at byte {done.truncated_at}: the frames before it are remuxed"
        )
    return ManifestEntry(
        path=output.name,
        kind=kind,
        user_id=None,
        session_id=None,
        track_ids=[],
        codec="+".join(c for c in (done.video, done.audio) if c is not None),
        container="mp4",
        start_unix_ms=None,
        duration_ms=round(done.duration_s * 1000),
        bytes=output.stat().st_size,
        packets=done.packets,
        width=done.width,
        height=done.height,
        mode="remux",
        sources=[str(source)],
        warnings=warnings,
    )


def with_origin(entry: ManifestEntry, source: Path) -> ManifestEntry:
    """`entry` with who and when from the manifest entry of `source` (a rawcore output)."""
    origin = manifest_entry(source)
    if origin is not None:
        start = origin.get("start_unix_ms")
        entry.start_unix_ms = start if isinstance(start, int) else None
        entry.user_id = origin.get("user_id")
        entry.session_id = origin.get("session_id")
        entry.track_ids = [str(t) for t in origin.get("track_ids") or []]
        entry.screenshare = bool(origin.get("screenshare"))
        entry.stitched = bool(origin.get("stitched"))
    return entry


def convert_matroska_file(
    source: Path, output: Path, *, no_audio: bool = False, manifest: bool = True
) -> ManifestEntry | None:
    """`convert_file(source, output, mode="remux")` for a local Matroska/WebM file, by the core;
    None when `source` is not Matroska or only FFmpeg's muxer can remux it."""
    if not is_matroska(source):
        return None
    entry = write_native(source, output, no_audio)
    if entry is None:
        return None
    with_origin(entry, source)
    if manifest:
        write_manifest(output.parent, [entry], call={}, command="convert")
    return entry


__all__ = [
    "NativeRemux",
    "convert_matroska_file",
    "is_matroska",
    "remux_matroska",
    "with_origin",
    "write_native",
]
