"""Open a raw recording wherever it lives and read its members in place.

A recording is a tree of per user/session captures (``user_1/session_1/audio_1.rtpdump``,
``.sdp``, ``timing_metadata.json``). It may be a directory, a ZIP, a tar (optionally gzip, bzip2
or xz compressed) or a remote object (``s3://bucket/key`` or a presigned ``https://`` URL) that
:mod:`rawcore.source.s3` downloads into the cache first. This module owns the safety rules: every
member name is validated before anything is read, links, devices, escapes and duplicates are
refused, and size, count and compression-ratio limits are enforced on the bytes actually
produced. Members are handed out as buffers over memory maps where the container allows it;
nothing is ever extracted outside the cache directory or the archive's private temp directory.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import hashlib
import io
import logging
import lzma
import mmap
import os
import re
import shutil
import stat
import tarfile
import tempfile
import threading
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, TypeAlias

from rawcore.errors import (
    ArchiveError,
    ArchiveLimitError,
    OutputError,
    SourceNotFoundError,
    UnsafeArchiveError,
)
from rawcore.progress import ProgressBar
from rawcore.source.cache import cache_lock, default_cache_dir

__all__ = [
    "Archive",
    "Buffer",
    "Limits",
    "Member",
    "open_archive",
]

log = logging.getLogger(__name__)

#: What :meth:`Archive.open_buffer` yields: a read-only buffer over the member's bytes.
Buffer: TypeAlias = bytes | memoryview | mmap.mmap

_GiB = 1024**3
_CHUNK = 1024 * 1024
_JUNK_DIRS = frozenset({"__MACOSX"})
_JUNK_FILES = frozenset({".DS_Store", "Thumbs.db"})
_DRIVE = re.compile(r"^[A-Za-z]:")
_TAR_BLOCK = 512
_ZIP_LOCAL_HEADER = b"PK\x03\x04"
_ZIP_LOCAL_HEADER_LEN = 30


@dataclass(frozen=True)
class Limits:
    """Bounds that a recording must respect; exceeding one raises ArchiveLimitError."""

    max_members: int = 100_000
    max_total_size: int = 64 * _GiB
    max_member_size: int = 16 * _GiB
    #: Largest uncompressed/compressed size ratio accepted for one member (for compressed tars,
    #: for the whole stream).
    max_ratio: float = 1000.0


@dataclass(frozen=True)
class Member:
    """One regular file of a recording."""

    #: Normalized POSIX path relative to the recording root, e.g. "user_1/session_1/audio_1.sdp".
    name: str
    #: Uncompressed size in bytes.
    size: int


def normalize_member_name(raw: str, *, container: str) -> str | None:
    """Return the normalized POSIX name of an archive entry, None for the root entry itself.

    Backslashes count as separators (archives made on Windows use them), so ``..\\x`` and
    ``C:\\x`` are caught like their slash forms. Raises UnsafeArchiveError for names that
    would escape the recording.
    """
    if "\x00" in raw:
        raise UnsafeArchiveError(f"{container}: member name {raw!r} contains a NUL byte")
    name = raw.replace("\\", "/")
    if name.startswith("/") or _DRIVE.match(name):
        raise UnsafeArchiveError(f"{container}: member {raw!r} has an absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchiveError(f"{container}: member {raw!r} escapes the recording ('..')")
    return "/".join(parts) if parts else None


def _is_junk(name: str) -> bool:
    parts = name.split("/")
    return parts[-1] in _JUNK_FILES or any(p in _JUNK_DIRS for p in parts)


class _MemberTable:
    """Collects validated members, refusing duplicates and enforcing the count/size limits."""

    def __init__(self, container: str, limits: Limits) -> None:
        self.container = container
        self.limits = limits
        self.entries = 0
        self.total = 0
        self.by_name: dict[str, Member] = {}
        self.seen: set[str] = set()

    def count_entry(self) -> None:
        self.entries += 1
        if self.entries > self.limits.max_members:
            raise ArchiveLimitError(
                f"{self.container}: more than {self.limits.max_members} members"
            )

    def claim(self, name: str) -> None:
        """Reserve a (normalized) name, files and directories alike."""
        if name in self.seen:
            raise UnsafeArchiveError(f"{self.container}: duplicate member {name!r}")
        self.seen.add(name)

    def add(self, name: str, size: int, compressed: int | None = None) -> bool:
        """Register a regular file; returns False when it is junk to be skipped."""
        self.claim(name)
        limits = self.limits
        if size > limits.max_member_size:
            raise ArchiveLimitError(
                f"{self.container}: member {name!r} is {size} bytes, over the "
                f"{limits.max_member_size}-byte limit"
            )
        if compressed is not None and size > limits.max_ratio * max(compressed, 1):
            raise ArchiveLimitError(
                f"{self.container}: member {name!r} expands {size / max(compressed, 1):.0f}x, "
                f"over the {limits.max_ratio:g}x compression ratio limit"
            )
        self.total += size
        if self.total > limits.max_total_size:
            raise ArchiveLimitError(
                f"{self.container}: uncompressed size exceeds the "
                f"{limits.max_total_size}-byte limit"
            )
        if _is_junk(name):
            return False
        self.by_name[name] = Member(name, size)
        return True


class Archive:
    """A recording opened for reading; use as a context manager or call :meth:`close`."""

    #: "dir", "zip" or "tar".
    kind: str = ""

    def __init__(
        self, path: Path, limits: Limits, members: dict[str, Member], temp_root: Path
    ) -> None:
        #: The local path that was opened (for a compressed tar, the decompressed cache copy).
        self.path = path
        self.limits = limits
        self._members = members
        self._temp_root = temp_root
        self._temp_dir: Path | None = None
        self._closed = False

    # -- public API ---------------------------------------------------------------------------

    def members(self) -> list[Member]:
        """The regular files of the recording, sorted by name (junk like .DS_Store skipped)."""
        return sorted(self._members.values(), key=lambda m: m.name)

    def read_bytes(self, name: str) -> bytes:
        """Return a (small) member's whole content, e.g. an SDP or a JSON file."""
        with self.open_buffer(name) as buf:
            return bytes(buf)

    def open_buffer(self, name: str) -> contextlib.AbstractContextManager[Buffer]:
        """A context manager yielding a read-only buffer over the member's bytes.

        Zero-copy where the container allows it (an mmap or a memoryview into one); the buffer
        is valid only inside the ``with`` block. Empty members yield ``b""``.
        """
        member = self._member(name)
        if member.size == 0:
            return contextlib.nullcontext(b"")
        return self._open_buffer(member)

    def close(self) -> None:
        """Release files and maps and delete the private temp directory."""
        if self._closed:
            return
        self._closed = True
        self._close()
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
            self._temp_dir = None

    def __enter__(self) -> Archive:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        path = getattr(self, "path", None)  # usable while a subclass is still being built
        return f"<{type(self).__name__} kind={self.kind!r} path={str(path)!r}>"

    # -- for subclasses -----------------------------------------------------------------------

    def _open_buffer(self, member: Member) -> contextlib.AbstractContextManager[Buffer]:
        raise NotImplementedError

    def _close(self) -> None:
        pass

    def _member(self, name: str) -> Member:
        if self._closed:
            raise ValueError(f"{self.path}: archive is closed")
        member = self._members.get(name)
        if member is None:
            raise KeyError(f"{self.path}: no member {name!r}")
        return member

    def _private_temp_dir(self) -> Path:
        if self._temp_dir is None:
            try:
                self._temp_root.mkdir(parents=True, exist_ok=True)
                self._temp_dir = Path(tempfile.mkdtemp(prefix="archive-", dir=self._temp_root))
            except OSError as e:
                raise OutputError(
                    f"cannot create a temp directory in {self._temp_root}: {e}"
                ) from e
        return self._temp_dir


@contextlib.contextmanager
def _view(mm: mmap.mmap, start: int, size: int) -> Iterator[Buffer]:
    """A memoryview slice of a shared map, released on exit."""
    whole = memoryview(mm)
    part = whole[start : start + size]
    try:
        yield part
    finally:
        part.release()
        whole.release()


def _close_map(mm: mmap.mmap) -> None:
    try:
        mm.close()
    except BufferError:
        # The caller still holds a view into the map; it is unmapped when the last view dies.
        log.debug("map still exported at close; leaving it to the garbage collector")


@contextlib.contextmanager
def _map_file(path: Path, size: int, *, what: str, flags: int = 0) -> Iterator[Buffer]:
    """Map a whole regular file read-only; checks that it still has the expected size."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | flags)
    except OSError as e:
        raise ArchiveError(f"{what}: cannot open: {e.strerror}") from e
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeArchiveError(f"{what}: is no longer a regular file")
        if st.st_size != size:
            raise ArchiveError(f"{what}: size changed from {size} to {st.st_size} bytes")
        mm = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
    finally:
        os.close(fd)
    try:
        yield mm
    finally:
        _close_map(mm)


# -- directories ---------------------------------------------------------------------------------


class DirArchive(Archive):
    """A recording already unpacked into a directory."""

    kind = "dir"

    def __init__(self, path: Path, limits: Limits, temp_root: Path) -> None:
        self._root = path.resolve()
        self._links: set[str] = set()
        table = _MemberTable(str(path), limits)
        self._scan(table)
        super().__init__(path, limits, table.by_name, temp_root)

    def _scan(self, table: _MemberTable) -> None:
        root = self._root
        for dirpath, dirnames, filenames in os.walk(root, onerror=self._walk_error):
            base = Path(dirpath)
            for entry in sorted(dirnames + filenames):
                full = base / entry
                rel = full.relative_to(root).as_posix()
                table.count_entry()
                st = full.lstat()
                if stat.S_ISLNK(st.st_mode):
                    self._check_link(full, rel, dirnames, table)
                elif stat.S_ISDIR(st.st_mode):
                    table.claim(rel)
                elif stat.S_ISREG(st.st_mode):
                    table.add(rel, st.st_size)
                else:
                    raise UnsafeArchiveError(
                        f"{root}: {rel!r} is not a regular file (device, FIFO or socket)"
                    )

    def _check_link(self, full: Path, rel: str, dirnames: list[str], table: _MemberTable) -> None:
        target = full.resolve()
        if not target.is_relative_to(self._root):
            raise UnsafeArchiveError(f"{self._root}: symlink {rel!r} points outside the recording")
        if full.name in dirnames:
            # Not followed (no cycles); the target directory is listed under its own name.
            log.debug("not following directory symlink %s", rel)
            return
        try:
            st = target.stat()
        except OSError as e:
            raise ArchiveError(f"{self._root}: symlink {rel!r} is dangling") from e
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeArchiveError(f"{self._root}: symlink {rel!r} does not point to a file")
        if table.add(rel, st.st_size):
            self._links.add(rel)

    @staticmethod
    def _walk_error(e: OSError) -> None:
        raise ArchiveError(f"{e.filename}: cannot list directory: {e.strerror}") from e

    def _open_buffer(self, member: Member) -> contextlib.AbstractContextManager[Buffer]:
        # Re-checked at open time: a member that was a plain file must not have become a link.
        nofollow = 0 if member.name in self._links else getattr(os, "O_NOFOLLOW", 0)
        what = f"{self._root}/{member.name}"
        return _map_file(self._root / member.name, member.size, what=what, flags=nofollow)


# -- ZIP -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _ZipEntry:
    info: zipfile.ZipInfo
    member: Member


class ZipArchive(Archive):
    """A ZIP recording: stored members are mapped in place, compressed ones are decompressed
    once into the private temp directory."""

    kind = "zip"

    def __init__(self, path: Path, limits: Limits, temp_root: Path) -> None:
        self._label = str(path)
        try:
            self._zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError) as e:
            raise ArchiveError(f"{path}: corrupt or truncated ZIP: {e}") from e
        except OSError as e:
            raise ArchiveError(f"{path}: cannot read ZIP: {e.strerror or e}") from e
        try:
            self._entries = self._scan(limits)
        except BaseException:
            self._zip.close()
            raise
        self._file_size = path.stat().st_size
        self._map: mmap.mmap | None = None
        self._extracted: dict[str, Path] = {}
        # Members may be opened from worker threads; the lazy map and extraction are shared.
        self._lock = threading.Lock()
        members = {name: e.member for name, e in self._entries.items()}
        super().__init__(path, limits, members, temp_root)

    def _scan(self, limits: Limits) -> dict[str, _ZipEntry]:
        table = _MemberTable(self._label, limits)
        entries: dict[str, _ZipEntry] = {}
        for info in self._zip.infolist():
            table.count_entry()
            name = normalize_member_name(info.filename, container=self._label)
            if name is None:
                continue
            # Unix "made by" entries carry st_mode in the high bits; a zero file type means
            # only permissions were recorded, i.e. a regular file.
            mode = info.external_attr >> 16
            if info.create_system == 3 and stat.S_IFMT(mode):
                if stat.S_ISLNK(mode):
                    raise UnsafeArchiveError(f"{self._label}: member {name!r} is a symlink")
                if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                    raise UnsafeArchiveError(
                        f"{self._label}: member {name!r} is not a regular file"
                    )
            if info.is_dir():
                table.claim(name)
                continue
            if info.flag_bits & 0x1:
                raise ArchiveError(f"{self._label}: member {name!r} is encrypted")
            if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
                raise ArchiveError(f"{self._label}: stored member {name!r} has inconsistent sizes")
            if table.add(name, info.file_size, info.compress_size):
                entries[name] = _ZipEntry(info, table.by_name[name])
        return entries

    def read_bytes(self, name: str) -> bytes:
        member = self._member(name)
        info = self._entries[name].info
        if info.compress_type == zipfile.ZIP_STORED:
            return super().read_bytes(name)
        out = io.BytesIO()
        self._decompress(info, member, out.write)
        return out.getvalue()

    def _open_buffer(self, member: Member) -> contextlib.AbstractContextManager[Buffer]:
        info = self._entries[member.name].info
        if info.compress_type == zipfile.ZIP_STORED:
            return self._stored_view(info, member)
        with self._lock:
            path = self._extracted.get(member.name)
            if path is None:
                path = self._extract(info, member)
                self._extracted[member.name] = path
        return _map_file(path, member.size, what=f"{self._label}:{member.name}")

    def _whole_map(self) -> mmap.mmap:
        with self._lock:
            if self._map is None:
                with open(self.path, "rb") as fh:
                    self._map = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
            return self._map

    def _stored_view(
        self, info: zipfile.ZipInfo, member: Member
    ) -> contextlib.AbstractContextManager[Buffer]:
        mm = self._whole_map()
        where = f"{self._label}: member {member.name!r}"
        start = info.header_offset
        header = mm[start : start + _ZIP_LOCAL_HEADER_LEN]
        if len(header) < _ZIP_LOCAL_HEADER_LEN or header[:4] != _ZIP_LOCAL_HEADER:
            raise ArchiveError(f"{where}: bad local header (corrupt or truncated ZIP)")
        name_len = int.from_bytes(header[26:28], "little")
        extra_len = int.from_bytes(header[28:30], "little")
        data = start + _ZIP_LOCAL_HEADER_LEN + name_len + extra_len
        if data + member.size > self._file_size:
            raise ArchiveError(f"{where}: data runs past the end of the file (truncated ZIP)")
        with _view(mm, data, member.size) as view:
            # Stored data is mapped, not copied, but its CRC is still checked once per open.
            if zlib.crc32(view) != info.CRC:
                raise ArchiveError(f"{where}: CRC mismatch (corrupt ZIP)")
        return _view(mm, data, member.size)

    def _extract(self, info: zipfile.ZipInfo, member: Member) -> Path:
        tmp = self._private_temp_dir()
        fd, name = tempfile.mkstemp(dir=tmp, suffix=".member")
        path = Path(name)
        try:
            with os.fdopen(fd, "wb") as out:
                self._decompress(info, member, out.write)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return path

    def _decompress(
        self, info: zipfile.ZipInfo, member: Member, write: Callable[[bytes], object]
    ) -> None:
        """Stream a compressed member to `write`, counting the bytes actually produced."""
        where = f"{self._label}: member {member.name!r}"
        limits = self.limits
        cap = min(limits.max_member_size, int(limits.max_ratio * max(info.compress_size, 1)))
        produced = 0
        try:
            with self._zip.open(info) as src:
                while chunk := src.read(_CHUNK):
                    produced += len(chunk)
                    if produced > cap:
                        raise ArchiveLimitError(
                            f"{where}: decompresses past the {cap}-byte limit (zip bomb?)"
                        )
                    try:
                        write(chunk)
                    except OSError as e:
                        raise OutputError(f"{where}: cannot write temp file: {e}") from e
        except (zipfile.BadZipFile, zlib.error, EOFError, lzma.LZMAError) as e:
            raise ArchiveError(f"{where}: corrupt data: {e}") from e
        except NotImplementedError as e:
            raise ArchiveError(f"{where}: unsupported compression: {e}") from e
        except OSError as e:
            if isinstance(e, OutputError):
                raise
            raise ArchiveError(f"{where}: cannot read: {e}") from e
        if produced != member.size:
            raise ArchiveError(f"{where}: {produced} bytes decompressed, {member.size} declared")

    def _close(self) -> None:
        self._zip.close()
        if self._map is not None:
            _close_map(self._map)
            self._map = None


# -- tar -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _TarEntry:
    offset: int
    member: Member


class TarArchive(Archive):
    """An uncompressed tar recording (possibly the cached decompression of a .tar.gz), whose
    members are slices of one memory map."""

    kind = "tar"

    def __init__(self, path: Path, limits: Limits, temp_root: Path, label: str) -> None:
        self._label = label
        self._file_size = path.stat().st_size
        self._entries = self._scan(path, limits)
        self._map: mmap.mmap | None = None
        if self._file_size:
            with open(path, "rb") as fh:
                self._map = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        members = {name: e.member for name, e in self._entries.items()}
        super().__init__(path, limits, members, temp_root)

    def _scan(self, path: Path, limits: Limits) -> dict[str, _TarEntry]:
        table = _MemberTable(self._label, limits)
        entries: dict[str, _TarEntry] = {}
        try:
            with tarfile.open(path, mode="r:") as tf:
                while (ti := tf.next()) is not None:
                    table.count_entry()
                    entry = self._check(ti, table)
                    if entry is not None:
                        entries[entry.member.name] = entry
        except tarfile.TarError as e:
            raise ArchiveError(f"{self._label}: corrupt or truncated tar: {e}") from e
        except (EOFError, OSError) as e:
            raise ArchiveError(f"{self._label}: cannot read tar: {e}") from e
        return entries

    def _check(self, ti: tarfile.TarInfo, table: _MemberTable) -> _TarEntry | None:
        name = normalize_member_name(ti.name, container=self._label)
        if name is None:
            return None
        where = f"{self._label}: member {name!r}"
        if ti.issym():
            raise UnsafeArchiveError(f"{where} is a symlink")
        if ti.islnk():
            raise UnsafeArchiveError(f"{where} is a hard link")
        if ti.ischr() or ti.isblk() or ti.isfifo():
            raise UnsafeArchiveError(f"{where} is a device or FIFO")
        if ti.isdir():
            table.claim(name)
            return None
        if not ti.isreg():
            raise UnsafeArchiveError(f"{where} has unsupported tar type {ti.type!r}")
        if ti.issparse():
            raise ArchiveError(f"{where} is a sparse file, which is not supported")
        if ti.offset_data + ti.size > self._file_size:
            raise ArchiveError(f"{where}: data runs past the end of the file (truncated tar)")
        if not table.add(name, ti.size):
            return None
        return _TarEntry(ti.offset_data, table.by_name[name])

    def _open_buffer(self, member: Member) -> contextlib.AbstractContextManager[Buffer]:
        assert self._map is not None, "a tar with a non-empty member has a non-empty file"
        return _view(self._map, self._entries[member.name].offset, member.size)

    def _close(self) -> None:
        if self._map is not None:
            _close_map(self._map)
            self._map = None


# -- detection and compressed tars ---------------------------------------------------------------


def _decompressor(compression: str, fh: IO[bytes]) -> io.BufferedIOBase:
    """A streaming reader of `fh` for a compression name returned by _detect."""
    if compression == "gzip":
        return gzip.GzipFile(fileobj=fh, mode="rb")
    if compression == "bzip2":
        return bz2.BZ2File(fh, mode="rb")
    assert compression == "xz", f"_detect returns no other compression than {compression!r}"
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
    produced = 0
    try:
        with src:
            while chunk := src.read(_CHUNK):
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
    limits: Limits = Limits(),  # frozen, so sharing the default is safe
    s3_endpoint: str | None = None,
    progress: bool | None = None,
) -> Archive:
    """Open a recording: a directory, a ZIP, a (compressed) tar, an ``s3://`` URL or a
    presigned ``http(s)://`` URL. Remote objects are downloaded into the cache first.

    Raises SourceNotFoundError for a missing path or object, UnsafeArchiveError and
    ArchiveLimitError for hostile archives, ArchiveError for corrupt ones and RemoteError for
    download failures.
    """
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
        return DirArchive(path, limits, temp_root)
    if not path.exists():
        raise SourceNotFoundError(f"{path}: no such file or directory")
    if not path.is_file():
        raise ArchiveError(f"{path}: not a regular file or directory")
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
