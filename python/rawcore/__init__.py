"""rawcore: turn raw server-side recordings of video calls into media.

`open_recording(source)` reads a raw recording (a directory, ZIP, tar/tar.gz, `s3://` URL or
presigned HTTPS URL) into a `Recording`: participants, sessions, tracks and per-track
packet statistics, every capture analysed by the Rust core.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
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
    UnsafeArchiveError,
)

try:
    __version__ = version("rawcore")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0+local"

if TYPE_CHECKING:
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
    # `rawcore.archive` usable on their own.
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
    "Track",
    "TrackStats",
    "UnsafeArchiveError",
    "__version__",
    "open_recording",
]
