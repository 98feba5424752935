"""Open a raw recording wherever it lives and read its members in place.

A recording is a tree of per user/session captures (``user_1/session_1/audio_1.rtpdump``,
``.sdp``, ``timing_metadata.json``). It may be a directory, a ZIP, a tar (optionally gzip, bzip2
or xz compressed) or a remote object (``s3://bucket/key`` or a presigned ``https://`` URL) that
:mod:`rawcore.source.s3` downloads into the cache first. `open_archive` detects the container
by content, decompresses a compressed tar once into the cache (bounded by the same limits as
the members), and hands the recording to its reader (`rawcore.source.containers`), which
applies the shared safety rules (`rawcore.source.members`). Nothing is ever extracted outside
the cache directory or the archive's private temp directory.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING

from rawcore.errors import (
    ArchiveError,
    ArchiveLimitError,
    OutputError,
    SourceNotFoundError,
)
from rawcore.progress import ProgressBar
from rawcore.source.cache import cache_lock, default_cache_dir
from rawcore.source.captures import RtpMapping, capture_files, looks_like_capture, open_captures
from rawcore.source.containers import DirArchive, TarArchive, ZipArchive
from rawcore.source.members import CHUNK, Archive, Buffer, Limits, Member

if TYPE_CHECKING:
    import io

__all__ = ["Archive", "Buffer", "Limits", "Member", "open_archive"]


_TAR_BLOCK = 512


def _decompressor(compression: str, fh: IO[bytes]) -> io.BufferedIOBase:
    """A streaming reader of `fh` for a compression name returned by _detect."""
    # The decompressors are loaded here, for a compressed tar only: a few ms of start-up.
    if compression == "gzip":
        import gzip

        return gzip.GzipFile(fileobj=fh, mode="rb")
    if compression == "bzip2":
        import bz2

        return bz2.BZ2File(fh, mode="rb")
    assert compression == "xz", f"_detect returns no other compression than {compression!r}"
    import lzma

    return lzma.LZMAFile(fh, mode="rb")


def _detect(path: Path) -> str:
    """'zip', 'tar' or a compression name ('gzip', 'bzip2', 'xz'), by magic bytes."""
    with open(path, "rb") as fh:
        head = fh.read(_TAR_BLOCK)
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08"):
        return "zip"
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if head[:3] == b"BZh":
        return "bzip2"
    if head[:6] == b"\xfd7zXZ\x00":
        return "xz"
    if head[:4] == b"\x28\xb5\x2f\xfd":
        raise ArchiveError(f"{path}: zstd-compressed archives are not supported")
    if len(head) == _TAR_BLOCK and (head[257:262] == b"ustar" or head == bytes(_TAR_BLOCK)):
        return "tar"
    import zipfile  # here: a folder input never needs it

    if zipfile.is_zipfile(path):  # e.g. a ZIP with data prepended
        return "zip"
    if path.name.lower().endswith(".tar") and len(head) == _TAR_BLOCK:
        return "tar"  # an old v7 tar has no magic; tarfile validates the header checksum
    raise ArchiveError(f"{path}: not a ZIP, tar or compressed tar archive")


def _decompressed_tar(
    path: Path, compression: str, cache_dir: Path, limits: Limits, progress: bool | None
) -> Path:
    """Decompress a compressed tar once into the cache, keyed by (path, size, mtime).

    Limits are enforced on the bytes actually produced; the result is written to a temp file
    and renamed into place, so a crash or a bomb never leaves a partial entry behind.
    """
    import hashlib  # here: loading OpenSSL costs every command a few ms at start-up
    import tempfile

    st = path.stat()
    key = hashlib.sha256(f"{path.resolve()}\0{st.st_size}\0{st.st_mtime_ns}".encode()).hexdigest()
    out_dir = cache_dir / "tar"
    target = out_dir / f"{key[:40]}.tar"
    # Header blocks and padding add at most about 1.5 KiB per member on top of the data.
    cap = min(
        limits.max_total_size + (limits.max_members + 20) * 3 * _TAR_BLOCK,
        int(limits.max_ratio * max(st.st_size, 1)),
    )
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot create cache directory {out_dir}: {e}") from e
    with cache_lock(out_dir / f"{key[:40]}.lock"):
        if target.is_file():
            return target
        fd, tmp_name = tempfile.mkstemp(dir=out_dir, prefix=f".{key[:16]}-", suffix=".part")
        tmp = Path(tmp_name)
        try:
            with (
                os.fdopen(fd, "wb") as out,
                open(path, "rb") as raw,
                ProgressBar(f"decompressing {path.name}", st.st_size, enabled=progress) as bar,
            ):
                _inflate(_decompressor(compression, raw), raw, out, cap, bar, path)
                out.flush()
                os.fsync(out.fileno())
            if _detect(tmp) != "tar":
                raise ArchiveError(f"{path}: decompressed content is not a tar archive")
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    return target


def _inflate(
    src: io.BufferedIOBase,
    raw: IO[bytes],
    out: IO[bytes],
    cap: int,
    bar: ProgressBar,
    path: Path,
) -> None:
    import gzip
    import lzma
    import zlib

    produced = 0
    try:
        with src:
            while chunk := src.read(CHUNK):
                produced += len(chunk)
                if produced > cap:
                    raise ArchiveLimitError(
                        f"{path}: decompresses past the {cap}-byte limit (size or ratio)"
                    )
                try:
                    out.write(chunk)
                except OSError as e:
                    raise OutputError(f"{path}: cannot write the decompressed cache: {e}") from e
                bar.set(raw.tell())
    except (EOFError, zlib.error, lzma.LZMAError, gzip.BadGzipFile) as e:
        raise ArchiveError(f"{path}: corrupt or truncated compressed tar: {e}") from e
    except OSError as e:
        if isinstance(e, OutputError):
            raise
        # bz2 reports corrupt data as a plain OSError
        raise ArchiveError(f"{path}: corrupt or truncated compressed tar: {e}") from e


def open_archive(
    source: str | os.PathLike[str],
    *,
    cache_dir: Path | None = None,
    limits: Limits | None = None,
    s3_endpoint: str | None = None,
    progress: bool | None = None,
    payload_types: Mapping[int, RtpMapping] | None = None,
    sdp: str | os.PathLike[str] | None = None,
) -> Archive:
    """Open a recording: a directory, a ZIP, a (compressed) tar, an ``s3://`` URL or a
    presigned ``http(s)://`` URL. Remote objects are downloaded into the cache first.

    A pcap, pcapng or Janus `.mjr` file, or a folder of them, opens as a recording too
    (`rawcore.source.captures`); `payload_types` and `sdp` say what their payload types mean.

    Raises SourceNotFoundError for a missing path or object, UnsafeArchiveError and
    ArchiveLimitError for hostile archives, ArchiveError for corrupt ones and RemoteError for
    download failures.
    """
    limits = limits or Limits()
    cache = cache_dir if cache_dir is not None else default_cache_dir()
    text = os.fspath(source)
    if re.match(r"^(s3|https?)://", text, flags=re.IGNORECASE):
        from rawcore.source.s3 import (
            fetch,  # imported late: boto3 is only needed for remote sources
        )

        path = fetch(text, cache_dir=cache, endpoint_url=s3_endpoint, progress=progress)
        label = text.split("?", 1)[0]
    else:
        path = Path(text)
        label = str(path)
    temp_root = cache / "tmp"
    if path.is_dir():
        captures = capture_files(path)
        if captures:
            return open_captures(
                captures, limits, temp_root, payload_types=payload_types, sdp_path=sdp
            )
        return DirArchive(path, limits, temp_root)
    if not path.exists():
        raise SourceNotFoundError(f"{path}: no such file or directory")
    if not path.is_file():
        raise ArchiveError(f"{path}: not a regular file or directory")
    if looks_like_capture(path):
        return open_captures([path], limits, temp_root, payload_types=payload_types, sdp_path=sdp)
    try:
        kind = _detect(path)
    except OSError as e:
        raise ArchiveError(f"{path}: cannot read: {e.strerror or e}") from e
    if kind == "zip":
        return ZipArchive(path, limits, temp_root)
    if kind == "tar":
        return TarArchive(path, limits, temp_root, label)
    tar_path = _decompressed_tar(path, kind, cache, limits, progress)
    try:
        return TarArchive(tar_path, limits, temp_root, label)
    except ArchiveError:
        tar_path.unlink(missing_ok=True)  # keep no decompressed copy of a refused archive
        raise
