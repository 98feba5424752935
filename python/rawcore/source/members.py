"""A recording's members and the rules every container shares.

Every member name is validated before anything is read (`normalize_member_name`): links,
devices, escapes and duplicates are refused, and size, count and compression-ratio `Limits`
are enforced on the bytes actually produced. `Archive` is the reading interface the containers
implement; members are handed out as read-only buffers, over memory maps where possible.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TypeAlias

from rawcore.errors import (
    ArchiveError,
    ArchiveLimitError,
    OutputError,
    UnsafeArchiveError,
)

#: What :meth:`Archive.open_buffer` yields: a read-only buffer over the member's bytes.
Buffer: TypeAlias = bytes | memoryview | mmap.mmap

_GiB = 1024**3
#: Copy and read block size.
CHUNK = 1024 * 1024
_JUNK_DIRS = frozenset({"__MACOSX"})
_JUNK_FILES = frozenset({".DS_Store", "Thumbs.db"})
_DRIVE = re.compile(r"^[A-Za-z]:")


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


#: What a recording's reader may open: captures, session descriptions, metadata (JSON).
READ_SUFFIXES = (".rtpdump", ".sdp", ".json")


def may_be_read(name: str) -> bool:
    """True for a member name rawcore may read; other names are never opened."""
    return name.lower().endswith(READ_SUFFIXES)


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


class MemberTable:
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

    #: "dir", "zip", "tar" or "capture" (pcap, pcapng, .mjr: `rawcore.source.captures`).
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
        #: What reading the container itself noticed (a capture cut short, codecs guessed),
        #: for the recording's warnings.
        self.notes: list[str] = []

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
            import shutil  # loaded when a temp directory was made: a folder input needs none

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
                import tempfile  # here: a folder input needs no temp directory

                self._temp_dir = Path(tempfile.mkdtemp(prefix="archive-", dir=self._temp_root))
            except OSError as e:
                raise OutputError(
                    f"cannot create a temp directory in {self._temp_root}: {e}"
                ) from e
        return self._temp_dir


@contextlib.contextmanager
def map_view(mm: mmap.mmap, start: int, size: int) -> Iterator[Buffer]:
    """A memoryview slice of a shared map, released on exit."""
    whole = memoryview(mm)
    part = whole[start : start + size]
    try:
        yield part
    finally:
        part.release()
        whole.release()


def close_map(mm: mmap.mmap) -> None:
    try:
        mm.close()
    except BufferError:
        # The caller still holds a view into the map; it is unmapped when the last view dies.
        import logging  # here: a rare path, and `logging` costs every start-up a few ms

        logging.getLogger(__name__).debug(
            "map still exported at close; leaving it to the garbage collector"
        )


@contextlib.contextmanager
def map_file(path: Path, size: int, *, what: str, flags: int = 0) -> Iterator[Buffer]:
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
        close_map(mm)


# -- directories ---------------------------------------------------------------------------------
