"""The download cache's place and its lock, shared by every source that fills it.

Remote recordings (`rawcore.source.s3`) and decompressed tars (`rawcore.source.archive`) are kept
under one cache folder; an entry is produced under an exclusive lock so a second process waits
and then reuses it instead of producing it again.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - not on POSIX; locking degrades to a no-op
    fcntl = None  # type: ignore[assignment]  # the module is optional off POSIX

__all__ = ["cache_lock", "default_cache_dir"]


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
