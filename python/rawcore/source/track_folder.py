"""A folder of per-participant WebM/Matroska tracks as `rawcore post-process` stores them.

The storage layout's raw folder of one recording, `{org}/raw/{room}/{recording_id}/`: a folder
per participant holding its raw tracks (`{participant_id}/{name}.webm|.mkv`, one per track of a
session) and its stitched tracks (`{participant_id}/stitched/…`, one per medium across
sessions). The recording's metadata document (`rawcore.recording/1`, `metadata.json`: in the
folder itself, or where the layout keeps it, `{org}/recordings/{recording_id}/metadata.json`)
places each file on the call clock: rawcore's Matroska carries no wall-clock stamp, the
document's `start_unix_ms` does. Every file is probed: its EBML header must say Matroska or
WebM, and its first stream gives the kind and codec (PyAV, imported only when a folder is read).

`read_track_folder` checks the whole folder before anything uses it; every problem (no tracks,
a file that is not Matroska, a document key or a link leading out of the folder, a file the
document does not place) is one `InputError` line naming the file.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from rawcore.errors import InputError, SourceNotFoundError

DOCUMENT_NAME = "metadata.json"
DOCUMENT_SCHEMA = "rawcore.recording/1"
STITCHED_DIR = "stitched"
TRACK_SUFFIXES = (".webm", ".mkv", ".mka")
_EBML_MAGIC = b"\x1a\x45\xdf\xa3"
_MAX_DOCUMENT = 64 * 1024 * 1024


@dataclass(frozen=True)
class FolderTrack:
    """One file of the folder, placed on the call clock."""

    path: Path  # absolute, inside the folder
    name: str  # relative to the folder, with `/`
    participant_id: str
    kind: Literal["audio", "video"]
    codec: str
    container: Literal["webm", "matroska"]
    screenshare: bool
    stitched: bool
    session_id: str | None
    track_ids: tuple[str, ...]
    start_unix_ms: int
    duration_ms: int


@dataclass(frozen=True)
class TrackFolder:
    """A recording's stored tracks: the raw ones (a file per track of a session) and the
    stitched ones (a file per participant and medium)."""

    root: Path
    recording_id: str
    document: Path
    tracks: tuple[FolderTrack, ...]
    #: The room the document names (`{org}/raw/{room}/…`), if it names one.
    room: str | None = None

    @property
    def raw(self) -> tuple[FolderTrack, ...]:
        return tuple(t for t in self.tracks if not t.stitched)

    @property
    def stitched(self) -> tuple[FolderTrack, ...]:
        return tuple(t for t in self.tracks if t.stitched)

    @property
    def participants(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(t.participant_id for t in self.tracks))

    def track(self, track_id: str) -> FolderTrack:
        """The raw track with this track id."""
        for t in self.raw:
            if track_id in t.track_ids:
                return t
        raise InputError(f"{self.root}: no tracks match track {track_id!r}")


def is_track_folder(path: str | os.PathLike[str]) -> bool:
    """Whether `path` is a folder of stored tracks rather than a raw recording: a participant
    folder with a WebM/Matroska file in it, and no RTP capture at the top."""
    root = Path(path)
    try:
        if not root.is_dir() or any(p.suffix.lower() == ".rtpdump" for p in root.iterdir()):
            return False
        return any(
            sub.is_dir() and any(f.suffix.lower() in TRACK_SUFFIXES for f in sub.iterdir())
            for sub in root.iterdir()
        )
    except OSError:
        return False


def _find_document(root: Path) -> Path:
    """The folder's own `metadata.json`, else the layout's
    `{org}/recordings/{recording_id}/metadata.json` for `{org}/raw/{room}/{recording_id}`."""
    here = root / DOCUMENT_NAME
    if here.is_file():
        return here
    layout = root.parent.parent.parent / "recordings" / root.name / DOCUMENT_NAME
    if root.parent.parent.name == "raw" and layout.is_file():
        return layout
    raise InputError(
        f"{root}: no {DOCUMENT_NAME} places its tracks on the call clock (looked in the folder "
        f"and at {layout})"
    )


def _read_document(path: Path) -> dict[str, Any]:
    try:
        if path.stat().st_size > _MAX_DOCUMENT:
            raise InputError(f"{path}: larger than 64 MiB; not a {DOCUMENT_SCHEMA} document")
        doc = json.loads(path.read_bytes())
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror})") from None
    except (ValueError, RecursionError):
        raise InputError(f"{path}: not JSON") from None
    if not isinstance(doc, dict) or doc.get("schema") != DOCUMENT_SCHEMA:
        raise InputError(f"{path}: not a {DOCUMENT_SCHEMA} document")
    return doc


def _doc_entries(doc: dict[str, Any], document: Path, root: Path) -> dict[str, dict[str, Any]]:
    """The document's raw and stitched entries by their path relative to the folder."""
    prefix = f"{doc.get('org')}/raw/{doc.get('room')}/{doc.get('recording_id')}/"
    found: dict[str, dict[str, Any]] = {}
    for listed in ("raw_tracks", "stitched_tracks"):
        items = doc.get(listed) or []
        if not isinstance(items, list):
            raise InputError(f"{document}: {listed} is not a list")
        for item in items:
            key = item.get("key") if isinstance(item, dict) else None
            if not isinstance(key, str) or not key.startswith(prefix):
                raise InputError(f"{document}: {listed}: {key!r} is not a key of this folder")
            rel = key[len(prefix) :]
            parts = rel.split("/")
            if any(p in ("", ".", "..") or "\\" in p for p in parts) or Path(rel).is_absolute():
                raise InputError(f"{document}: {listed}: {key!r} leads out of {root}")
            found[rel] = {**item, "_stitched": listed == "stitched_tracks"}
    return found


def _ebml_doctype(path: Path) -> str | None:
    """The DocType of the file's EBML header (`webm`, `matroska`), None when it has none."""
    try:
        with path.open("rb") as f:
            head = f.read(64)
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror})") from None
    if not head.startswith(_EBML_MAGIC):
        return None
    i = 4

    def vint(keep_marker: bool) -> int | None:
        nonlocal i
        if i >= len(head) or head[i] == 0:
            return None
        length = 8 - head[i].bit_length() + 1
        if i + length > len(head):
            return None
        value = head[i] if keep_marker else head[i] & (0xFF >> length)
        for b in head[i + 1 : i + length]:
            value = (value << 8) | b
        i += length
        return value

    size = vint(keep_marker=False)
    end = len(head) if size is None else min(len(head), i + size)
    while i < end:
        element, length = vint(keep_marker=True), vint(keep_marker=False)
        if element is None or length is None:
            return None
        if element == 0x4282:  # DocType
            return head[i : i + length].decode("ascii", "replace")
        i += length
    return None


def _probe(path: Path) -> tuple[Literal["audio", "video"], str]:
    """The kind and codec of the file's first audio or video stream."""
    import av

    try:
        with av.open(str(path)) as c:
            for s in c.streams:
                if s.type in ("audio", "video"):
                    kind: Literal["audio", "video"] = "audio" if s.type == "audio" else "video"
                    return kind, s.codec_context.codec.canonical_name
    except av.error.FFmpegError as exc:
        raise InputError(f"{path}: a Matroska file FFmpeg cannot read ({exc.strerror})") from None
    raise InputError(f"{path}: no audio or video stream")


def _inside(root: Path, path: Path) -> Path:
    """`path` resolved; an error when it (a link) leads out of the folder."""
    resolved = path.resolve()
    if not resolved.is_relative_to(root):
        raise InputError(f"{path}: leads out of {root}")
    return resolved


def read_track_folder(path: str | os.PathLike[str]) -> TrackFolder:
    """The folder's tracks, every file probed and placed (see the module's docs)."""
    given = Path(path)
    if not given.exists():
        raise SourceNotFoundError(f"{given}: no such folder")
    if not given.is_dir():
        raise InputError(f"{given}: not a folder")
    root = given.resolve()
    document = _find_document(root)
    doc = _read_document(document)
    entries = _doc_entries(doc, document, root)
    tracks: list[FolderTrack] = []
    for sub in sorted(root.iterdir()):
        if not sub.is_dir():
            continue
        _inside(root, sub)
        candidates = sorted(sub.iterdir())
        if (sub / STITCHED_DIR).is_dir():
            candidates += sorted(_inside(root, sub / STITCHED_DIR).iterdir())
        for file in candidates:
            if file.is_dir() or file.name.startswith("."):
                continue  # a temporary name of a write in progress
            if file.suffix.lower() not in TRACK_SUFFIXES:
                raise InputError(f"{file}: not a WebM/Matroska track (.webm, .mkv, .mka)")
            real = _inside(root, file)
            if not real.is_file():
                raise InputError(f"{file}: not a file")
            doctype = _ebml_doctype(real)
            if doctype not in ("webm", "matroska"):
                raise InputError(f"{file}: not a WebM/Matroska file (no EBML header of either)")
            rel = file.relative_to(root).as_posix()
            entry = entries.get(rel)
            if entry is None:
                raise InputError(f"{file}: not in {document}: its place on the call clock is "
                                 "unknown")  # fmt: skip
            start = entry.get("start_unix_ms")
            if not isinstance(start, int) or isinstance(start, bool):
                raise InputError(f"{document}: {rel}: no start_unix_ms (written before rawcore "
                                 "recorded it; post-process the recording again)")  # fmt: skip
            kind, codec = _probe(real)
            duration = entry.get("duration_ms")
            ids = entry.get("track_ids") or []
            session = entry.get("session_id")
            tracks.append(
                FolderTrack(
                    path=real,
                    name=rel,
                    participant_id=sub.name,
                    kind=kind,
                    codec=codec,
                    container="webm" if doctype == "webm" else "matroska",
                    screenshare=bool(entry.get("screenshare")),
                    stitched=bool(entry["_stitched"]),
                    session_id=session if isinstance(session, str) else None,
                    track_ids=tuple(str(t) for t in ids if isinstance(t, str)),
                    start_unix_ms=start,
                    duration_ms=duration if isinstance(duration, int) else 0,
                )
            )
    if not tracks:
        raise InputError(f"{root}: no WebM/Matroska tracks in its participant folders")
    rid, room = doc.get("recording_id"), doc.get("room")
    return TrackFolder(root, rid if isinstance(rid, str) else root.name, document, tuple(tracks),
                       room if isinstance(room, str) else None)  # fmt: skip


__all__ = ["FolderTrack", "TrackFolder", "is_track_folder", "read_track_folder"]
