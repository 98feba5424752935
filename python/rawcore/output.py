"""Writing outputs safely: names, atomic files, and the manifest every command leaves behind.

Outputs appear only complete: each is written under a hidden temporary name in the output
folder and renamed into place when done, so a crash or an error never leaves half a file under
the final name. Names are built from ids that come from the recording (user, session, track),
so each id is reduced to a safe file-name component first: nothing lands outside the folder.
`manifest.json` is the machine-readable contract of a run (schema in the README).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from rawcore.errors import OutputError

MANIFEST_NAME = "manifest.json"
MANIFEST_SCHEMA = "rawcore.manifest/1"

_UNSAFE = re.compile(r"[^A-Za-z0-9._@+-]+")
#: Longest component. An output name joins up to five ids (call type, call id, user, session,
#: track) with about 55 fixed characters, and must stay under the 255-byte file-name limit of
#: common file systems: 53 + 5 * 40 = 253.
MAX_COMPONENT = 40
_DIGEST = 8


def safe_component(value: str | None, *, fallback: str = "unknown") -> str:
    """An id as one file-name component: no separators, no leading dots, bounded length.

    An id longer than `MAX_COMPONENT` keeps its start and ends in a digest of the whole id, so
    two long ids that share a prefix still give different names.
    """
    cleaned = _UNSAFE.sub("_", value or "").lstrip(".")
    if len(cleaned) > MAX_COMPONENT:
        digest = hashlib.sha256((value or "").encode("utf-8", "surrogatepass")).hexdigest()
        cleaned = f"{cleaned[: MAX_COMPONENT - _DIGEST - 1]}-{digest[:_DIGEST]}"
    return cleaned or fallback


def prepare_output_dir(path: str | os.PathLike[str]) -> Path:
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{out}: cannot create the output folder ({exc.strerror})") from None
    if not out.is_dir():
        raise OutputError(f"{out}: not a folder")
    if not os.access(out, os.W_OK):
        raise OutputError(f"{out}: output folder is not writable")
    return out


@contextlib.contextmanager
def atomic_path(out_dir: Path, name: str) -> Iterator[Path]:
    """Yield a temporary path beside `out_dir/name`; rename it into place on success only."""
    final = out_dir / name
    if final.parent.resolve() != out_dir.resolve() or name in ("", ".", ".."):
        raise OutputError(f"{name!r}: refusing to write outside {out_dir}")
    try:
        # A short temp name: the final name may already be near the file-name length limit.
        fd, tmp = tempfile.mkstemp(prefix=f".{name[:24]}.", suffix=".part", dir=out_dir)
    except OSError as exc:
        raise OutputError(f"{out_dir}: cannot write ({exc.strerror})") from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, final)
    except OSError as exc:
        raise OutputError(f"{final}: cannot write ({exc.strerror})") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()


Kind = Literal["audio", "video", "av", "mix"]


@dataclass
class ManifestEntry:
    """One output file, as `manifest.json` lists it (schema `rawcore.manifest/1`)."""

    path: str
    kind: Kind
    user_id: str | None
    session_id: str | None
    track_ids: list[str]
    codec: str
    container: str
    start_unix_ms: int | None
    duration_ms: int
    bytes: int = 0
    sample_rate: int | None = None
    channels: int | None = None
    packets: int = 0
    packets_lost: int = 0
    duplicates: int = 0
    late_packets: int = 0
    malformed_packets: int = 0
    dtx_filled_ms: int = 0
    loss_filled_ms: int = 0
    pause_filled_ms: int = 0
    timestamp_resets: int = 0
    screenshare: bool = False
    stitched: bool = False
    warnings: list[str] = field(default_factory=list)
    # Video outputs only (left out of the JSON for audio):
    width: int | None = None
    height: int | None = None
    frames: int | None = None
    keyframes: int | None = None
    frames_dropped: int | None = None  # complete frames that could not be decoded (no keyframe)
    frames_incomplete: int | None = None
    keyframe_waits: int | None = None
    keyframe_wait_ms: int | None = None
    resolution_changes: list[list[int]] | None = None  # [ms from the file start, width, height]
    rotation_changes: list[list[int]] | None = None  # [ms, degrees clockwise, flipped 0/1]
    rotation: int | None = None  # degrees clockwise the container declares (the first signalled)
    fill_frames: int | None = None
    gaps_filled_ms: int | None = None
    gaps_unfilled_ms: int | None = None
    # A/V outputs only: audio t=0 minus video t=0 on the call timeline.
    av_offset_ms: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None or k in _ALWAYS}


# Null has a meaning for these (e.g. no session when stitched), so they are always present.
_ALWAYS = frozenset({"user_id", "session_id", "start_unix_ms"})


def write_manifest(
    out_dir: Path,
    entries: Sequence[ManifestEntry],
    *,
    call: dict[str, Any],
    command: str,
) -> Path:
    """Merge `entries` into `out_dir/manifest.json` (same path replaces), written atomically.

    Runs of different commands into one folder add up; an unreadable old manifest is replaced.
    """
    path = out_dir / MANIFEST_NAME
    outputs: dict[str, dict[str, Any]] = {}
    commands: list[str] = []
    try:
        old = json.loads(path.read_text())
        if isinstance(old, dict) and old.get("schema") == MANIFEST_SCHEMA:
            for item in old.get("outputs", []):
                keep = isinstance(item, dict) and isinstance(item.get("path"), str)
                if keep and (out_dir / item["path"]).exists():
                    outputs[item["path"]] = item
            commands = [c for c in old.get("commands", []) if isinstance(c, str)]
    except (OSError, ValueError):
        pass
    for entry in entries:
        outputs[entry.path] = entry.to_json()
    if command not in commands:
        commands.append(command)
    doc = {
        "schema": MANIFEST_SCHEMA,
        "call": call,
        "commands": commands,
        "outputs": sorted(outputs.values(), key=lambda e: str(e["path"])),
    }
    with atomic_path(out_dir, MANIFEST_NAME) as tmp:
        tmp.write_text(json.dumps(doc, indent=2) + "\n")
    return path
