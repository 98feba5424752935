"""The containers a recording comes in: a directory, a ZIP, a tar (read in place).

`zipfile`, `tarfile` and the decompressors are imported by the ZIP and tar readers when a
recording comes packed: a folder input loads none of them (they are a few ms of every start-up).
"""

from __future__ import annotations

import contextlib
import io
import mmap
import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from rawcore.errors import (
    ArchiveError,
    ArchiveLimitError,
    OutputError,
    UnsafeArchiveError,
)
from rawcore.source.members import (
    CHUNK,
    Archive,
    Buffer,
    Limits,
    Member,
    MemberTable,
    close_map,
    map_file,
    map_view,
    may_be_read,
    normalize_member_name,
)

if TYPE_CHECKING:
    import tarfile
    import zipfile


_ZIP_LOCAL_HEADER = b"PK\x03\x04"
_ZIP_STORED = 0  # zipfile.ZIP_STORED, without loading zipfile to compare with it
_ZIP_LOCAL_HEADER_LEN = 30


def _debug(message: str, *args: object) -> None:
    import logging  # here: `logging` costs every start-up a few ms; this is a rare path

    logging.getLogger(__name__).debug(message, *args)


class DirArchive(Archive):
    """A recording already unpacked into a directory."""

    kind = "dir"

    def __init__(self, path: Path, limits: Limits, temp_root: Path) -> None:
        self._root = path.resolve()
        self._links: set[str] = set()
        table = MemberTable(str(path), limits)
        self._scan(table)
        super().__init__(path, limits, table.by_name, temp_root)

    def _scan(self, table: MemberTable) -> None:
        root = self._root
        for dirpath, dirnames, filenames in os.walk(root, onerror=self._walk_error):
            base = Path(dirpath)
            for entry in sorted(dirnames + filenames):
                full = base / entry
                rel = full.relative_to(root).as_posix()
                table.count_entry()
                st = full.lstat()
                if stat.S_ISDIR(st.st_mode):
                    table.claim(rel)
                elif stat.S_ISREG(st.st_mode):
                    table.add(rel, st.st_size)
                elif not may_be_read(entry):
                    # A folder handed over as a recording may hold unrelated things (links
                    # into the system, sockets); only what rawcore would read must be safe.
                    _debug("skipping %s: not a file rawcore reads", rel)
                elif stat.S_ISLNK(st.st_mode):
                    self._check_link(full, rel, dirnames, table)
                else:
                    raise UnsafeArchiveError(
                        f"{root}: {rel!r} is not a regular file (device, FIFO or socket)"
                    )

    def _check_link(self, full: Path, rel: str, dirnames: list[str], table: MemberTable) -> None:
        target = full.resolve()
        if not target.is_relative_to(self._root):
            raise UnsafeArchiveError(f"{self._root}: symlink {rel!r} points outside the recording")
        if full.name in dirnames:
            # Not followed (no cycles); the target directory is listed under its own name.
            _debug("not following directory symlink %s", rel)
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
        return map_file(self._root / member.name, member.size, what=what, flags=nofollow)


# -- ZIP -----------------------------------------------------------------------------------------


class _ZipEntry(NamedTuple):
    info: zipfile.ZipInfo
    member: Member


class ZipArchive(Archive):
    """A ZIP recording: stored members are mapped in place, compressed ones are decompressed
    once into the private temp directory."""

    kind = "zip"

    def __init__(self, path: Path, limits: Limits, temp_root: Path) -> None:
        import zipfile

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
        import zipfile

        table = MemberTable(self._label, limits)
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
        if info.compress_type == _ZIP_STORED:
            return super().read_bytes(name)
        out = io.BytesIO()
        self._decompress(info, member, out.write)
        return out.getvalue()

    def _open_buffer(self, member: Member) -> contextlib.AbstractContextManager[Buffer]:
        info = self._entries[member.name].info
        if info.compress_type == _ZIP_STORED:
            return self._stored_view(info, member)
        with self._lock:
            path = self._extracted.get(member.name)
            if path is None:
                path = self._extract(info, member)
                self._extracted[member.name] = path
        return map_file(path, member.size, what=f"{self._label}:{member.name}")

    def _whole_map(self) -> mmap.mmap:
        with self._lock:
            if self._map is None:
                with open(self.path, "rb") as fh:
                    self._map = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
            return self._map

    def _stored_view(
        self, info: zipfile.ZipInfo, member: Member
    ) -> contextlib.AbstractContextManager[Buffer]:
        import zlib

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
        with map_view(mm, data, member.size) as view:
            # Stored data is mapped, not copied, but its CRC is still checked once per open.
            if zlib.crc32(view) != info.CRC:
                raise ArchiveError(f"{where}: CRC mismatch (corrupt ZIP)")
        return map_view(mm, data, member.size)

    def _extract(self, info: zipfile.ZipInfo, member: Member) -> Path:
        import tempfile

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
        import lzma
        import zipfile
        import zlib

        where = f"{self._label}: member {member.name!r}"
        limits = self.limits
        cap = min(limits.max_member_size, int(limits.max_ratio * max(info.compress_size, 1)))
        produced = 0
        try:
            with self._zip.open(info) as src:
                while chunk := src.read(CHUNK):
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
            close_map(self._map)
            self._map = None


# -- tar -----------------------------------------------------------------------------------------


class _TarEntry(NamedTuple):
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
        import tarfile

        table = MemberTable(self._label, limits)
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

    def _check(self, ti: tarfile.TarInfo, table: MemberTable) -> _TarEntry | None:
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
        return map_view(self._map, self._entries[member.name].offset, member.size)

    def _close(self) -> None:
        if self._map is not None:
            close_map(self._map)
            self._map = None


# -- detection and compressed tars ---------------------------------------------------------------
