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
    from rawcore.api import Recording, Track, open_recording
    from rawcore.recording.model import Participant, Segment, Session, TrackStats

_API_NAMES = frozenset({"Recording", "Track", "open_recording"})
_MODEL_NAMES = frozenset({"Participant", "Segment", "Session", "TrackStats"})


def __getattr__(name: str) -> Any:
    # The API pulls in the compiled core and the media layers; importing it lazily keeps
    # `rawcore.errors` and `rawcore.source` usable on their own. The version comes from the
    # compiled core (the same Cargo version), which is faster to import than package metadata.
    if name == "__version__":
        from rawcore import _core

        return _core.__version__
    if name in _API_NAMES:
        from rawcore import api

        return getattr(api, name)
    if name in _MODEL_NAMES:
        from rawcore.recording import model

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
