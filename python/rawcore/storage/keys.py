"""Ids and the keys built from them: one layout, every key under its organization.

```
{org}/recordings/{recording_id}/metadata.json
{org}/recordings/{recording_id}/composed/{name}
{org}/recordings/{recording_id}/upload/{name}
{org}/recordings/{recording_id}/scene/{path}
{org}/raw/{room}/{recording_id}/{participant_id}/{name}
{org}/raw/{room}/{recording_id}/{participant_id}/stitched/{name}
{org}/conversions/{cache_key}.mp4
```

Ids are checked once, here, when an `OrgLayout` is made or a key is asked for: no `/` or `\\`,
not `.` or `..`, no control characters, at most `MAX_ID` characters. A layout is bound to one
organization and only takes ids, never keys, so nothing one organization gives can name a key
of another.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass
from pathlib import PurePosixPath

from rawcore.errors import InputError

#: Longest id (characters). S3 keys may be 1024 bytes long; six ids of 128 stay well under.
MAX_ID = 128
_BAD = re.compile(r"[/\\\x00-\x1f\x7f]")
_CACHE_KEY = re.compile(r"^[0-9a-f]{16,128}$")


def validate_id(what: str, value: str) -> str:
    """`value` if it is a safe id, else an `InputError` naming `what` (one line)."""
    if not isinstance(value, str) or not value:
        raise InputError(f"{what}: an empty id")
    if len(value) > MAX_ID:
        raise InputError(f"{what}: id longer than {MAX_ID} characters")
    if value in (".", "..") or value.startswith("..") or _BAD.search(value):
        raise InputError(
            f"{what} {value!r}: ids may not contain '/', '\\', '..' or control characters"
        )
    return value


def recording_name(source: str) -> str | None:
    """The recording id a source names when none is given: its file or folder name (of a URL:
    its path's) without the archive extension; None when that leaves nothing."""
    path = urllib.parse.urlsplit(source).path if "://" in source else source
    name = PurePosixPath(path).name
    for ext in (".gz", ".tar", ".tgz", ".zip"):
        name = name.removesuffix(ext)
    return name or None


def default_room(call_type: str | None, call_id: str | None, recording_id: str | None) -> str:
    """The room of a recording when none is given: `{call_type}-{call_id}` (`default` for a
    missing call type, the recording id for a missing call id), checked as an id."""
    return validate_id("room", f"{call_type or 'default'}-{call_id or recording_id or 'default'}")


@dataclass(frozen=True)
class OrgLayout:
    """The keys of one organization. Made with a validated org id; every method validates the
    ids it is given."""

    org: str

    def __post_init__(self) -> None:
        validate_id("org", self.org)

    def composed(self, recording_id: str, name: str) -> str:
        return "/".join(
            (self.org, "recordings", validate_id("recording id", recording_id), "composed",
             validate_id("file name", name))
        )  # fmt: skip

    def recording_prefix(self, recording_id: str) -> str:
        """Every key of one recording's own objects starts with this (it ends in `/`)."""
        return f"{self.org}/recordings/{validate_id('recording id', recording_id)}/"

    def metadata(self, recording_id: str) -> str:
        """The recording's metadata document: its objects and the post-process steps done."""
        return self.recording_prefix(recording_id) + "metadata.json"

    def composed_prefix(self, recording_id: str) -> str:
        """Where the live recorder uploads the composed video (a multipart upload)."""
        return self.recording_prefix(recording_id) + "composed/"

    def scene(self, recording_id: str, path: str) -> str:
        """A file of the scene project: `path` is relative (`scene.json`, `tracks/a.webm`),
        each of its segments an id."""
        checked = "/".join(validate_id("file name", s) for s in path.split("/"))
        return f"{self.recording_prefix(recording_id)}scene/{checked}"

    def clip(self, recording_id: str) -> str:
        """The scene's auto clip, rendered by the post-recording pipeline."""
        return f"{self.recording_prefix(recording_id)}clip/clip.mp4"

    def upload(self, recording_id: str, name: str) -> str:
        """The archive a client uploaded for the recording (the service's ingest input)."""
        return "/".join(
            (self.org, "recordings", validate_id("recording id", recording_id), "upload",
             validate_id("file name", name))
        )  # fmt: skip

    def raw(self, room: str, recording_id: str, participant_id: str, name: str) -> str:
        return "/".join(
            (self.org, "raw", validate_id("room", room),
             validate_id("recording id", recording_id),
             validate_id("participant id", participant_id), validate_id("file name", name))
        )  # fmt: skip

    def stitched(self, room: str, recording_id: str, participant_id: str, name: str) -> str:
        return "/".join(
            (self.org, "raw", validate_id("room", room),
             validate_id("recording id", recording_id),
             validate_id("participant id", participant_id), "stitched",
             validate_id("file name", name))
        )  # fmt: skip

    def conversion(self, cache_key: str) -> str:
        if not _CACHE_KEY.match(cache_key):
            raise InputError(f"cache key {cache_key!r}: expected lowercase hex")
        return f"{self.org}/conversions/{cache_key}.mp4"


__all__ = ["MAX_ID", "OrgLayout", "default_room", "recording_name", "validate_id"]
