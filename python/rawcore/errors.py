"""The exception hierarchy shared by every part of rawcore.

Every error rawcore raises derives from :class:`RawcoreError` and also from the built-in
exception a caller would naturally catch (``ValueError`` for bad input, ``FileNotFoundError`` for
a missing source, ``OSError`` for remote and output failures). The Rust binding imports its
exception classes from this module by name, so the names here are part of the public API.
Messages are a single line that names the file, member or URL concerned.
"""

from __future__ import annotations

__all__ = [
    "ArchiveError",
    "ArchiveLimitError",
    "CaptureError",
    "InputError",
    "MetadataError",
    "OutputError",
    "RawcoreError",
    "RemoteError",
    "SceneError",
    "SdpError",
    "SourceNotFoundError",
    "TimelineError",
    "UnsafeArchiveError",
]


class RawcoreError(Exception):
    """Root of every error rawcore raises."""


class InputError(RawcoreError, ValueError):
    """The input data is malformed or unsupported."""


class CaptureError(InputError):
    """An rtpdump capture cannot be read (raised by the Rust binding)."""


class SdpError(InputError):
    """An SDP description cannot be parsed (raised by the Rust binding)."""


class TimelineError(InputError):
    """The call timeline cannot be fitted: Sender Reports or arrival times that no clock explains
    (raised by the Rust binding)."""


class MetadataError(InputError):
    """The timing metadata JSON of a session is missing fields or malformed."""


class SceneError(InputError):
    """A scene (`rawcore.scene/1`), an event log or an edits file is malformed, out of range or
    over a limit; the message names the file and the field or line."""


class ArchiveError(InputError):
    """A recording archive is unreadable, corrupt or of an unsupported kind."""


class UnsafeArchiveError(ArchiveError):
    """An archive member would escape the recording: '..', absolute path, link, device or
    duplicate name."""


class ArchiveLimitError(ArchiveError):
    """An archive exceeds a member-count, uncompressed-size or compression-ratio limit."""


class SourceNotFoundError(RawcoreError, FileNotFoundError):
    """A local path or remote object does not exist."""


class RemoteError(RawcoreError, OSError):
    """A remote source could not be fetched: connection failure, access denied, expired URL."""


class OutputError(RawcoreError, OSError):
    """An output or cache file cannot be written."""
