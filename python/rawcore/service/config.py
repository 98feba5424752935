"""The service's settings: where objects and rows live, what may be fetched, how big an upload
may be. One frozen value made by `rawcore serve` (or a test) and handed to `create_app`."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

#: `--max-upload` default: 2 GiB.
DEFAULT_MAX_UPLOAD = 2 << 30
#: How long a signed file URL (or an S3 presigned one) stays valid.
DEFAULT_URL_TTL_S = 900
#: How long a page session (the cookie made from `?key=`) stays valid.
SESSION_TTL_S = 12 * 3600


def default_db() -> Path:
    """`$RAWCORE_SERVICE_DB`, else `rawcore-data/rawcore.sqlite` under the current folder."""
    env = os.environ.get("RAWCORE_SERVICE_DB")
    return Path(env) if env else Path("rawcore-data") / "rawcore.sqlite"


def default_storage() -> str:
    return os.environ.get("RAWCORE_SERVICE_STORAGE") or str(Path("rawcore-data") / "storage")


@dataclass(frozen=True)
class Settings:
    storage: str = field(default_factory=default_storage)
    db: Path = field(default_factory=default_db)
    #: `--allow-source` patterns (`s3://bucket/*`, `https://host/path/*`); none: uploads only.
    allow_source: tuple[str, ...] = ()
    max_upload: int = DEFAULT_MAX_UPLOAD
    s3_endpoint: str | None = None
    url_ttl_s: int = DEFAULT_URL_TTL_S
    workers: int = 2
    #: Start the workers (a test may run jobs itself).
    start_workers: bool = True
    #: Run them in one child process (`rawcore worker --service`) instead of server threads.
    worker_process: bool = False
    #: Run conversion jobs as Ray tasks on this cluster (`auto`, `ray://HOST:PORT`, `local`).
    ray: str | None = None


def parse_size(text: str) -> int:
    """`2G`, `500M`, `64k`, `1024` (bytes; binary units) → bytes."""
    t = text.strip().upper().removesuffix("IB").removesuffix("B")
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    mult = units.get(t[-1:], 1)
    number = t[:-1] if t[-1:] in units else t
    value = int(float(number) * mult)
    if value <= 0:
        raise ValueError(f"{text!r}: expected a positive size")
    return value


__all__ = ["DEFAULT_MAX_UPLOAD", "SESSION_TTL_S", "Settings", "default_db", "default_storage",
           "parse_size"]  # fmt: skip
