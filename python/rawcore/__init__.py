"""rawcore: turn raw server-side recordings of video calls into media.

`open_recording(source)` reads a raw recording (a directory, ZIP, tar/tar.gz, `s3://` URL or
presigned HTTPS URL) into a `Recording`: participants, sessions, tracks and per-track
packet statistics, every capture analysed by the Rust core.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rawcore.errors import (
    ArchiveError,
    ArchiveLimitError,
    CaptureError,
    InputError,
    MetadataError,
    OutputError,
    RawcoreError,
    RemoteError,
    SdpError,
    SourceNotFoundError,
    TimelineError,
    UnsafeArchiveError,
)

if TYPE_CHECKING:
    __version__: str
    from rawcore.model import (
        Participant,
        Recording,
        Segment,
        Session,
        Track,
        TrackStats,
        open_recording,
    )

_MODEL_NAMES = frozenset(
    {"Participant", "Recording", "Segment", "Session", "Track", "TrackStats", "open_recording"}
)


def __getattr__(name: str) -> Any:
    # The model pulls in the compiled core; importing it lazily keeps `rawcore.errors` and
    # `rawcore.archive` usable on their own. The version comes from the compiled core too
    # (the same Cargo version), which is faster to import than package metadata.
    if name == "__version__":
        from rawcore import _core

        return _core.__version__
    if name in _MODEL_NAMES:
        from rawcore import model

        return getattr(model, name)
    raise AttributeError(f"module 'rawcore' has no attribute {name!r}")


__all__ = [
    "ArchiveError",
    "ArchiveLimitError",
    "CaptureError",
    "InputError",
    "MetadataError",
    "OutputError",
    "Participant",
    "RawcoreError",
    "Recording",
    "RemoteError",
    "SdpError",
    "Segment",
    "Session",
    "SourceNotFoundError",
    "TimelineError",
    "Track",
    "TrackStats",
    "UnsafeArchiveError",
    "__version__",
    "open_recording",
]
