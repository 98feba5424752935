"""The download cache: its place, its lock, and the bookkeeping of one cached object.

Remote recordings (`rawcore.source.s3`) and decompressed tars (`rawcore.source.archive`) are kept
under one cache folder; an entry is produced under an exclusive lock so a second process waits
and then reuses it instead of producing it again. A remote object's slot (`CacheSlot`) keeps a
JSON sidecar naming the cached copy (URL, ETag, size) and any half-downloaded `.part`, so a
dropped download resumes and a changed object is fetched again.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from rawcore.errors import OutputError, RemoteError

try:
    import fcntl
except ImportError:  # pragma: no cover - not on POSIX; locking degrades to a no-op
    fcntl = None  # type: ignore[assignment]  # the module is optional off POSIX

__all__ = ["CacheEntry", "CacheSlot", "Sidecar", "cache_lock", "default_cache_dir", "part_size"]

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def _warn(message: str, *args: object) -> None:
    import logging  # here: `logging` costs every start-up a few ms, and this is a rare path

    logging.getLogger(__name__).warning(message, *args)


def default_cache_dir() -> Path:
    """``$RAWCORE_CACHE_DIR`` if set, else ``~/.cache/rawcore``."""
    env = os.environ.get("RAWCORE_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "rawcore"


@contextlib.contextmanager
def cache_lock(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on `lock_path` while a cache entry is produced, so a
    second process waits and then reuses the entry instead of producing it again."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+b") as fh:
        if fcntl is not None:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


@dataclass(frozen=True)
class CacheEntry:
    etag: str
    size: int  # -1 when the server did not say
    file: str


@dataclass
class Sidecar:
    """The JSON file kept beside a cached object: what is cached and what is half-downloaded."""

    path: Path
    url: str
    cached: CacheEntry | None = None
    partial: CacheEntry | None = None

    @classmethod
    def load(cls, path: Path, url: str) -> Sidecar:
        side = cls(path, url)
        try:
            raw = json.loads(path.read_text())
            if raw.get("url") == url:
                side.cached = _entry_of(raw.get("cached"))
                side.partial = _entry_of(raw.get("partial"))
        except FileNotFoundError:
            pass
        except (OSError, ValueError, TypeError, AttributeError) as e:
            _warn("ignoring unreadable cache sidecar %s: %s", path, e)
        return side

    def save(self) -> None:
        data = {
            "url": self.url,
            "cached": asdict(self.cached) if self.cached else None,
            "partial": asdict(self.partial) if self.partial else None,
        }
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            tmp.write_text(json.dumps(data, indent=1) + "\n")
            os.replace(tmp, self.path)
        except OSError as e:
            raise OutputError(f"cannot write cache sidecar {self.path}: {e}") from e


def _entry_of(raw: object) -> CacheEntry | None:
    if not isinstance(raw, dict):
        return None
    etag, size, file = raw.get("etag"), raw.get("size"), raw.get("file")
    if not (isinstance(etag, str) and isinstance(size, int) and isinstance(file, str)):
        return None
    if "/" in file or file.startswith("."):
        return None  # the sidecar names files in its own directory only
    return CacheEntry(etag, size, file)


class CacheSlot:
    """The cache slot of one URL (without query) inside `cache_dir/objects`."""

    def __init__(self, cache_dir: Path, url: str, basename: str) -> None:
        self.dir = cache_dir / "objects"
        self.url = url
        import hashlib  # here: loading OpenSSL costs every command a few ms at start-up

        self.key = hashlib.sha256(url.encode()).hexdigest()[:32]
        self.basename = _SAFE_NAME.sub("_", basename)[-80:] or "object"
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OutputError(f"cannot create cache directory {self.dir}: {e}") from e
        self.lock = self.dir / f"{self.key}.lock"
        self.sidecar_path = self.dir / f"{self.key}.json"

    def entry_for(self, etag: str, size: int) -> CacheEntry:
        import hashlib

        digest = hashlib.sha256(f"{self.url}\0{etag}\0{size}".encode()).hexdigest()[:32]
        return CacheEntry(etag, size, f"{digest}-{self.basename}")

    def path(self, entry: CacheEntry) -> Path:
        return self.dir / entry.file

    def part(self, entry: CacheEntry) -> Path:
        return self.dir / f"{entry.file}.part"

    def valid_cached(self, side: Sidecar) -> CacheEntry | None:
        """The cached entry if its file is present and whole; a corrupt one is dropped."""
        entry = side.cached
        if entry is None:
            return None
        path = self.path(entry)
        try:
            actual = path.stat().st_size
        except FileNotFoundError:
            actual = None
        if actual is not None and (entry.size < 0 or actual == entry.size):
            return entry
        _warn(
            "cached copy of %s is %s; downloading it again",
            self.url,
            "missing" if actual is None else f"{actual} bytes, expected {entry.size}",
        )
        path.unlink(missing_ok=True)
        side.cached = None
        side.save()
        return None

    def start_partial(self, side: Sidecar, entry: CacheEntry) -> Path:
        """Make `entry` the download in progress, dropping any other half-downloaded file."""
        if side.partial is not None and side.partial != entry:
            self.part(side.partial).unlink(missing_ok=True)
        if side.partial != entry:
            side.partial = entry
            side.save()
        return self.part(entry)

    def commit(self, side: Sidecar, entry: CacheEntry) -> Path:
        """Move a finished .part into place and record it as the cached copy."""
        part, final = self.part(entry), self.path(entry)
        written = part.stat().st_size
        if entry.size >= 0 and written != entry.size:
            part.unlink(missing_ok=True)
            side.partial = None
            side.save()
            raise RemoteError(
                f"{self.url}: downloaded {written} bytes but the server announced {entry.size}"
            )
        try:
            with open(part, "rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(part, final)
            fsync_dir(self.dir)
        except OSError as e:
            raise OutputError(f"cannot store {final}: {e}") from e
        old = side.cached
        if entry.size < 0:
            entry = CacheEntry(entry.etag, written, entry.file)
        side.cached, side.partial = entry, None
        side.save()
        if old is not None and old.file != entry.file:
            self.path(old).unlink(missing_ok=True)
        return final


def fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform can open a directory
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def part_size(part: Path) -> int:
    try:
        return part.stat().st_size
    except FileNotFoundError:
        return 0
