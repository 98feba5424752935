"""What a source is, for the conversion cache: its identity and the per-organization key.

A local file is its SHA-256 and size; a folder the hash of its files' names and hashes; an S3
object its ETag and size (no download); a presigned URL the URL without its query and the
server's ETag. The cache key hashes the organization, that identity, the conversion's options
and the output-format version together: a second organization converting the same bytes gets
another key and learns nothing about the first.
"""

from __future__ import annotations

import hashlib
import json
import os
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rawcore.errors import InputError, SourceNotFoundError
from rawcore.storage.backends import S3Storage
from rawcore.storage.keys import validate_id

_CHUNK = 1 << 20


def _file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def source_identity(source: str | os.PathLike[str], *, s3_endpoint: str | None = None) -> str:
    """A string that changes whenever the source's bytes do (see the module docstring)."""
    text = os.fspath(source)
    if text.lower().startswith("s3://"):
        parsed = urllib.parse.urlsplit(text)
        key = parsed.path.lstrip("/")
        if not parsed.netloc or not key:
            raise InputError(f"{text}: expected s3://bucket/key")
        store = S3Storage(parsed.netloc, endpoint_url=s3_endpoint)
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            head = store.client.head_object(Bucket=parsed.netloc, Key=key)
        except (BotoCoreError, ClientError) as exc:
            raise store.error(exc, key) from None
        return f"s3:{parsed.netloc}/{key}:{head.get('ETag', '')}:{head['ContentLength']}"
    if text.lower().startswith(("http://", "https://")):
        raise InputError(f"{text}: presigned URLs are not cached; use s3:// or a local copy")
    path = Path(text)
    if path.is_file():
        return f"sha256:{_file_hash(path)}:{path.stat().st_size}"
    if path.is_dir():
        h = hashlib.sha256()
        for f in sorted(p for p in path.rglob("*") if p.is_file()):
            h.update(f.relative_to(path).as_posix().encode("utf-8", "surrogatepass") + b"\0")
            h.update(_file_hash(f).encode() + b"\0")
        return f"tree:{h.hexdigest()}"
    raise SourceNotFoundError(f"{text}: no such file or folder")


def cache_key(org: str, identity: str, options: Mapping[str, Any], version: str) -> str:
    """The hex key of one conversion for one organization."""
    doc = json.dumps(
        {"org": validate_id("org", org), "source": identity, "options": dict(options),
         "version": version},
        sort_keys=True,
    )  # fmt: skip
    return hashlib.sha256(doc.encode()).hexdigest()


__all__ = ["cache_key", "source_identity"]
