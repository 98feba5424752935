"""What a batch run processes: one `BatchItem` per recording, named and given its own folder.

The sources come from a list file (one path, `s3://` or `https://` URL per line, `#` comments),
an S3 prefix (every object ending `.zip`, `.tar`, `.tar.gz` or `.tgz`) or a local folder (every
such archive in it, and every sub-folder that is an extracted recording). A recording's name is
its archive's name without the extension (a folder's name as it is); its outputs go to
`OUTPUT/{name}/`. Two recordings with one name would write one folder, so that is refused here,
before anything runs.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from rawcore.errors import InputError, RemoteError, SourceNotFoundError
from rawcore.storage.backends import S3Storage

__all__ = ["ARCHIVE_SUFFIXES", "BatchItem", "from_dir", "from_list", "from_s3", "recording_name"]

#: What counts as one recording under a prefix or in a folder; longest first (`.tar.gz`).
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".zip", ".tar")
_URL = re.compile(r"^(s3|https?)://", re.IGNORECASE)
_COMMENT = re.compile(r"(^|\s)#.*$")  # a `#` starting the line or after a space
#: A folder is an extracted recording when a capture sits one or two levels down
#: (`user/session/track.rtpdump`), or at its top (one session).
_CAPTURE_GLOBS = ("*.rtpdump", "*/*/*.rtpdump", "*/*.rtpdump", "*.mjr", "*/*/*.mjr")


@dataclass(frozen=True)
class BatchItem:
    """One recording of a batch: where it comes from and the name of its output folder."""

    input: str
    name: str

    @property
    def is_remote(self) -> bool:
        return _URL.match(self.input) is not None


def recording_name(source: str) -> str:
    """The output folder's name: the archive's (or folder's) name without its extension."""
    path = urllib.parse.urlsplit(source).path if _URL.match(source) else source
    base = path.rstrip("/").rsplit("/", 1)[-1]
    for suffix in ARCHIVE_SUFFIXES:
        if base.lower().endswith(suffix) and len(base) > len(suffix):
            base = base[: -len(suffix)]
            break
    if base in ("", ".", "..") or base.startswith("."):
        raise InputError(f"{source}: cannot name an output folder after it")
    return base


def _items(sources: list[str]) -> list[BatchItem]:
    items = [BatchItem(s, recording_name(s)) for s in sources]
    seen: dict[str, str] = {}
    for item in items:
        if item.name in seen:
            raise InputError(
                f"{seen[item.name]} and {item.input} would both write {item.name}/: "
                "rename one of them"
            )
        seen[item.name] = item.input
    return items


def from_list(path: Path) -> list[BatchItem]:
    """One source per line; blank lines and `#` comments are skipped."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise SourceNotFoundError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the list ({exc})") from None
    sources = []
    for line in text.splitlines():
        line = _COMMENT.sub("", line).strip()
        if line:
            sources.append(line)
    return _items(sources)


def _is_archive(name: str) -> bool:
    return name.lower().endswith(ARCHIVE_SUFFIXES)


def _is_extracted(folder: Path) -> bool:
    return any(next(folder.glob(g), None) is not None for g in _CAPTURE_GLOBS)


def from_dir(folder: Path) -> list[BatchItem]:
    """Every archive in `folder`, and every sub-folder that holds an extracted recording."""
    if not folder.is_dir():
        raise SourceNotFoundError(f"{folder}: no such directory")
    sources = [
        str(p)
        for p in sorted(folder.iterdir())
        if not p.name.startswith(".")
        and ((p.is_file() and _is_archive(p.name)) or (p.is_dir() and _is_extracted(p)))
    ]
    return _items(sources)


def from_s3(prefix_url: str, *, endpoint_url: str | None = None) -> list[BatchItem]:
    """Every archive object under `s3://bucket/prefix/` (the whole bucket without a prefix)."""
    from botocore.exceptions import BotoCoreError, ClientError

    parsed = urllib.parse.urlsplit(prefix_url)
    if parsed.scheme.lower() != "s3" or not parsed.netloc or parsed.query:
        raise InputError(f"{prefix_url}: expected s3://bucket/prefix/")
    storage = S3Storage(parsed.netloc, endpoint_url=endpoint_url)
    prefix = parsed.path.lstrip("/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    keys: list[str] = []
    try:
        pages = storage.client.get_paginator("list_objects_v2").paginate(
            Bucket=parsed.netloc, Prefix=prefix
        )
        for page in pages:
            keys.extend(o["Key"] for o in page.get("Contents", []) if _is_archive(o["Key"]))
    except (BotoCoreError, ClientError) as exc:
        err = storage.error(exc, prefix.rstrip("/") or "-")
        raise (err if isinstance(err, RemoteError) else RemoteError(str(err))) from None
    return _items([f"s3://{parsed.netloc}/{k}" for k in sorted(keys)])
