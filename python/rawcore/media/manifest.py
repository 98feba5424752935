"""`manifest.json`: the machine-readable contract of a run (schema `rawcore.manifest/1`, in the
README). Every command that writes files merges its entries into the folder's manifest.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from rawcore.media.files import atomic_path

MANIFEST_NAME = "manifest.json"
MANIFEST_SCHEMA = "rawcore.manifest/1"

OutputKind = Literal["audio", "video", "av", "mix"]


@dataclass
class ManifestEntry:
    """One output file, as `manifest.json` lists it (schema `rawcore.manifest/1`)."""

    path: str
    kind: OutputKind
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
    #: Audio only: lost Opus frames rebuilt from the next packet's in-band FEC.
    fec_recovered: int | None = None
    timestamp_resets: int = 0
    screenshare: bool = False
    stitched: bool = False
    warnings: list[str] = field(default_factory=list)
    # Video outputs only (left out of the JSON for audio):
    width: int | None = None
    height: int | None = None
    #: The largest size the recorder's metadata declares ([width, height]), beside the observed.
    declared_size: list[int] | None = None
    frames: int | None = None
    keyframes: int | None = None
    frames_dropped: int | None = None  # complete frames that could not be decoded (no keyframe)
    #: Complete frames written although a frame they reference was lost (--on-loss conceal).
    frames_concealed: int | None = None
    frames_incomplete: int | None = None
    keyframe_waits: int | None = None
    keyframe_wait_ms: int | None = None
    resolution_changes: list[list[int]] | None = None  # [ms from the file start, width, height]
    rotation_changes: list[list[int]] | None = None  # [ms, degrees clockwise, flipped 0/1]
    rotation: int | None = None  # degrees clockwise the container declares (the first signalled)
    #: Time the last picture was held after a loss (the default on a loss: freeze).
    frozen_ms: int | None = None
    #: [start_ms, end_ms, kind] from the file's start, for every stretch longer than three frame
    #: intervals without a new picture: "freeze" (the last picture held after a loss),
    #: "keyframe_wait" (pictures lost, black until the next keyframe), "no_picture" (nothing was
    #: sent: black where filled, else the last picture held).
    events: list[list[Any]] | None = None
    fill_frames: int | None = None
    gaps_filled_ms: int | None = None
    gaps_unfilled_ms: int | None = None
    # A/V outputs only: audio t=0 minus video t=0 on the call timeline.
    av_offset_ms: float | None = None
    # Conversions (`rawcore convert`, container "mp4") only: "remux" or "editor", and what was
    # converted (input paths, or the recording's track ids).
    mode: str | None = None
    sources: list[str] | None = None
    #: Conversions of a track of a recording only: the recording's room in the storage layout
    #: (`{org}/raw/{room}/…`): `--room`, else `{call_type}-{call_id}`.
    room: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The entry as the manifest lists it. Its lists are the entry's own, not copies: it is
        made to be serialized (`asdict`'s deep copy of every event list was most of the cost of
        writing a video manifest)."""
        return {
            name: value
            for name in _FIELDS
            if (value := getattr(self, name)) is not None or name in _ALWAYS
        }


_FIELDS = tuple(f.name for f in fields(ManifestEntry))
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
