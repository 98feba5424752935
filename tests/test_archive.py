"""Opening recordings as directories, ZIPs and (compressed) tars, and refusing hostile ones."""

from __future__ import annotations

import gzip
import io
import mmap
import os
import stat
import tarfile
import warnings
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from rawcore.errors import (
    ArchiveError,
    ArchiveLimitError,
    InputError,
    SourceNotFoundError,
    UnsafeArchiveError,
)
from rawcore.source import archive as archive_mod
from rawcore.source.archive import Archive, Limits, Member, open_archive

RECORDING: dict[str, bytes] = {
    "call-123/user_1/session_1/audio_1.rtpdump": os.urandom(5000),
    "call-123/user_1/session_1/audio_1.sdp": b"v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\n",
    "call-123/user_1/session_1/timing_metadata.json": b'{"start": 0}',
    "call-123/user_2/session_1/video_1.rtpdump": os.urandom(70_000),
    "call-123/user_2/session_1/audio_1.rtpdump": b"",
    "call-123/user_2/session_1/repetitive.rtpdump": os.urandom(1000) * 200,
}
JUNK = {"__MACOSX/call-123/._x": b"junk", "call-123/.DS_Store": b"junk"}

Builder = Callable[[Path, dict[str, bytes]], Path]


def make_dir(where: Path, files: dict[str, bytes]) -> Path:
    root = where / "recording"
    root.mkdir()
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def make_zip(compression: int) -> Builder:
    def build(where: Path, files: dict[str, bytes]) -> Path:
        path = where / "recording.zip"
        with zipfile.ZipFile(path, "w", compression=compression) as zf:
            for name, data in files.items():
                zf.writestr(name, data)
        return path

    return build


def _tar_bytes(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return out.getvalue()


def make_tar(where: Path, files: dict[str, bytes]) -> Path:
    path = where / "recording.tar"
    path.write_bytes(_tar_bytes(files))
    return path


def make_tgz(where: Path, files: dict[str, bytes]) -> Path:
    path = where / "recording.tar.gz"
    path.write_bytes(gzip.compress(_tar_bytes(files)))
    return path


def make_tgz_without_extension(where: Path, files: dict[str, bytes]) -> Path:
    path = where / "recording.bin"
    path.write_bytes(gzip.compress(_tar_bytes(files)))
    return path


BUILDERS: dict[str, tuple[Builder, str]] = {
    "directory": (make_dir, "dir"),
    "zip stored": (make_zip(zipfile.ZIP_STORED), "zip"),
    "zip deflated": (make_zip(zipfile.ZIP_DEFLATED), "zip"),
    "zip bzip2": (make_zip(zipfile.ZIP_BZIP2), "zip"),
    "tar": (make_tar, "tar"),
    "tar.gz": (make_tgz, "tar"),
    "tar.gz detected by magic, not extension": (make_tgz_without_extension, "tar"),
}


@dataclass
class Sandbox:
    """Inputs are built in `inputs`, the cache lives in `cache`; everything else under the
    test's tmp dir (and the tmp dir's parent) must stay untouched."""

    root: Path
    inputs: Path
    cache: Path

    def snapshot(self) -> set[Path]:
        return {p for p in self.root.parent.rglob("*") if not p.is_relative_to(self.cache)}


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    box = Sandbox(tmp_path, tmp_path / "inputs", tmp_path / "cache")
    box.inputs.mkdir()
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("RAWCORE_CACHE_DIR", str(tmp_path / "default-cache"))
    yield box


def _contents(arc: Archive) -> dict[str, bytes]:
    out = {}
    for m in arc.members():
        with arc.open_buffer(m.name) as buf:
            out[m.name] = bytes(buf)
    return out


# -- reading --------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", list(BUILDERS), ids=list(BUILDERS))
def test_every_container_lists_the_same_members_and_bytes(case: str, sandbox: Sandbox) -> None:
    builder, kind = BUILDERS[case]
    source = builder(sandbox.inputs, RECORDING | JUNK)
    with open_archive(source, cache_dir=sandbox.cache) as arc:
        assert arc.kind == kind
        expected = [Member(n, len(d)) for n, d in sorted(RECORDING.items())]
        assert arc.members() == expected
        assert _contents(arc) == RECORDING
        for name, data in RECORDING.items():
            assert arc.read_bytes(name) == data


@pytest.mark.parametrize(
    "case", ["directory", "zip stored", "tar", "tar.gz"], ids=lambda c: f"{c} is zero-copy"
)
def test_uncompressed_members_are_mapped_not_copied(case: str, sandbox: Sandbox) -> None:
    builder, _ = BUILDERS[case]
    with open_archive(builder(sandbox.inputs, RECORDING), cache_dir=sandbox.cache) as arc:
        name = "call-123/user_2/session_1/video_1.rtpdump"
        with arc.open_buffer(name) as buf:
            assert isinstance(buf, mmap.mmap | memoryview)
            assert len(buf) == len(RECORDING[name])


@pytest.mark.parametrize("case", list(BUILDERS), ids=list(BUILDERS))
def test_empty_member_yields_empty_bytes(case: str, sandbox: Sandbox) -> None:
    builder, _ = BUILDERS[case]
    source = builder(sandbox.inputs, RECORDING)
    with (
        open_archive(source, cache_dir=sandbox.cache) as arc,
        arc.open_buffer("call-123/user_2/session_1/audio_1.rtpdump") as buf,
    ):
        assert buf == b""


@pytest.mark.parametrize("case", list(BUILDERS), ids=list(BUILDERS))
def test_empty_archive_is_valid_and_has_no_members(case: str, sandbox: Sandbox) -> None:
    builder, _ = BUILDERS[case]
    with open_archive(builder(sandbox.inputs, {}), cache_dir=sandbox.cache) as arc:
        assert arc.members() == []


def test_unknown_member_is_a_key_error(sandbox: Sandbox) -> None:
    source = make_tar(sandbox.inputs, RECORDING)
    with open_archive(source, cache_dir=sandbox.cache) as arc, pytest.raises(KeyError):
        arc.read_bytes("../../etc/passwd")


def test_deflated_member_temp_files_are_removed_on_close(sandbox: Sandbox) -> None:
    source = make_zip(zipfile.ZIP_DEFLATED)(sandbox.inputs, RECORDING)
    arc = open_archive(source, cache_dir=sandbox.cache)
    name = "call-123/user_2/session_1/repetitive.rtpdump"
    with arc.open_buffer(name) as buf:
        assert bytes(buf) == RECORDING[name]
    assert any((sandbox.cache / "tmp").rglob("*.member"))
    arc.close()
    assert not any((sandbox.cache / "tmp").rglob("*.member"))


def test_default_cache_dir_comes_from_the_environment(sandbox: Sandbox) -> None:
    with open_archive(make_tgz(sandbox.inputs, RECORDING)) as arc:
        assert arc.path.is_relative_to(sandbox.root / "default-cache")


def test_directory_symlink_to_a_file_inside_is_followed(sandbox: Sandbox) -> None:
    root = make_dir(sandbox.inputs, RECORDING)
    (root / "call-123/link.sdp").symlink_to(root / "call-123/user_1/session_1/audio_1.sdp")
    with open_archive(root, cache_dir=sandbox.cache) as arc:
        assert (
            arc.read_bytes("call-123/link.sdp")
            == RECORDING["call-123/user_1/session_1/audio_1.sdp"]
        )


# -- the tar.gz cache -----------------------------------------------------------------------------


@pytest.fixture
def inflate_calls(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    calls: list[Path] = []
    real = archive_mod._inflate

    def counting(*args: object, **kwargs: object) -> None:
        calls.append(args[-1])  # type: ignore[arg-type]  # the source path is the last argument
        real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(archive_mod, "_inflate", counting)
    return calls


def test_compressed_tar_is_decompressed_once_and_reused(
    sandbox: Sandbox, inflate_calls: list[Path]
) -> None:
    source = make_tgz(sandbox.inputs, RECORDING)
    with open_archive(source, cache_dir=sandbox.cache) as first:
        cached = first.path
        mtime = cached.stat().st_mtime_ns
    with open_archive(source, cache_dir=sandbox.cache) as second:
        assert second.path == cached
        assert _contents(second) == RECORDING
    assert len(inflate_calls) == 1
    assert cached.stat().st_mtime_ns == mtime
    assert cached.is_relative_to(sandbox.cache)


def test_rewritten_compressed_tar_is_decompressed_again(
    sandbox: Sandbox, inflate_calls: list[Path]
) -> None:
    source = make_tgz(sandbox.inputs, RECORDING)
    with open_archive(source, cache_dir=sandbox.cache):
        pass
    changed = {"call-123/only.json": b"{}"}
    source.write_bytes(gzip.compress(_tar_bytes(changed)))
    os.utime(source, ns=(1, 1))
    with open_archive(source, cache_dir=sandbox.cache) as arc:
        assert _contents(arc) == changed
    assert len(inflate_calls) == 2


# -- hostile and broken inputs --------------------------------------------------------------------


def _zip_with(entries: list[zipfile.ZipInfo | str], data: bytes = b"x") -> Builder:
    def build(where: Path, files: dict[str, bytes]) -> Path:
        path = where / "hostile.zip"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # zipfile warns about duplicate names
            with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
                for entry in entries:
                    zf.writestr(entry, data)
        return path

    return build


def _zip_symlink() -> zipfile.ZipInfo:
    info = zipfile.ZipInfo("call/evil-link")
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


def _tar_with(*infos: tarfile.TarInfo, data: bytes = b"x", compress: bool = False) -> Builder:
    def build(where: Path, files: dict[str, bytes]) -> Path:
        out = io.BytesIO()
        with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tf:
            for info in infos:
                if info.isreg():
                    info.size = len(data)
                    tf.addfile(info, io.BytesIO(data))
                else:
                    tf.addfile(info)
        path = where / ("hostile.tar.gz" if compress else "hostile.tar")
        path.write_bytes(gzip.compress(out.getvalue()) if compress else out.getvalue())
        return path

    return build


def _ti(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    return info


def _dir_with_outside_symlink(where: Path, files: dict[str, bytes]) -> Path:
    root = make_dir(where, {"call/a.sdp": b"v=0"})
    (where / "secret").write_bytes(b"secret")
    (root / "call/leak.sdp").symlink_to(where / "secret")
    return root


def _dir_with_fifo(where: Path, files: dict[str, bytes]) -> Path:
    root = make_dir(where, {"call/a.sdp": b"v=0"})
    os.mkfifo(root / "call/pipe.rtpdump")
    return root


def _truncated(builder: Builder, keep: float) -> Builder:
    def build(where: Path, files: dict[str, bytes]) -> Path:
        path = builder(where, RECORDING)
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * keep)])
        return path

    return build


def _zip_with_flipped_byte(compression: int) -> Builder:
    def build(where: Path, files: dict[str, bytes]) -> Path:
        path = make_zip(compression)(where, {"call/a.rtpdump": os.urandom(4000)})
        data = bytearray(path.read_bytes())
        data[2000] ^= 0xFF  # inside the member's data
        path.write_bytes(bytes(data))
        return path

    return build


@dataclass(frozen=True)
class Hostile:
    build: Builder
    error: type[Exception]
    limits: Limits = field(default_factory=Limits)
    #: True when the problem surfaces only when the member is read, not at open time.
    on_read: bool = False


HOSTILE: dict[str, Hostile] = {
    "zip member with '..' escapes": Hostile(_zip_with(["call/../../evil"]), UnsafeArchiveError),
    "zip member with absolute path": Hostile(_zip_with(["/tmp/evil"]), UnsafeArchiveError),
    "zip member with backslash '..'": Hostile(_zip_with(["..\\evil"]), UnsafeArchiveError),
    "zip member with drive letter": Hostile(_zip_with(["C:\\evil"]), UnsafeArchiveError),
    "zip symlink member": Hostile(_zip_with([_zip_symlink()]), UnsafeArchiveError),
    "zip duplicate names": Hostile(_zip_with(["call/a", "call/a"]), UnsafeArchiveError),
    "zip names equal after normalization": Hostile(
        _zip_with(["call/a", "./call//a"]), UnsafeArchiveError
    ),
    "tar member with '..' escapes": Hostile(_tar_with(_ti("../evil")), UnsafeArchiveError),
    "tar member with absolute path": Hostile(_tar_with(_ti("/tmp/evil")), UnsafeArchiveError),
    "tar symlink member": Hostile(
        _tar_with(_ti("call/link", tarfile.SYMTYPE, "/etc/passwd")), UnsafeArchiveError
    ),
    "tar hard link member": Hostile(
        _tar_with(_ti("call/a"), _ti("call/b", tarfile.LNKTYPE, "call/a")), UnsafeArchiveError
    ),
    "tar character device member": Hostile(
        _tar_with(_ti("call/dev", tarfile.CHRTYPE)), UnsafeArchiveError
    ),
    "tar fifo member": Hostile(_tar_with(_ti("call/fifo", tarfile.FIFOTYPE)), UnsafeArchiveError),
    "tar duplicate names": Hostile(_tar_with(_ti("call/a"), _ti("call/a")), UnsafeArchiveError),
    "tar.gz member with '..' escapes": Hostile(
        _tar_with(_ti("../evil"), compress=True), UnsafeArchiveError
    ),
    "directory symlink pointing outside": Hostile(_dir_with_outside_symlink, UnsafeArchiveError),
    "directory containing a fifo": Hostile(_dir_with_fifo, UnsafeArchiveError),
    "zip bomb by compression ratio": Hostile(
        _zip_with(["call/bomb.rtpdump"], bytes(2_000_000)),
        ArchiveLimitError,
        Limits(max_ratio=100),
    ),
    "zip member over the member size limit": Hostile(
        make_zip(zipfile.ZIP_DEFLATED), ArchiveLimitError, Limits(max_member_size=100_000)
    ),
    "zip over the total size limit": Hostile(
        make_zip(zipfile.ZIP_STORED), ArchiveLimitError, Limits(max_total_size=100_000)
    ),
    "tar.gz bomb stopped while decompressing": Hostile(
        _tar_with(_ti("call/bomb.rtpdump"), data=bytes(3_000_000), compress=True),
        ArchiveLimitError,
        Limits(max_members=10, max_total_size=1_000_000),
    ),
    "tar.gz bomb by stream ratio": Hostile(
        _tar_with(_ti("call/bomb.rtpdump"), data=bytes(3_000_000), compress=True),
        ArchiveLimitError,
        Limits(max_ratio=50),
    ),
    "too many zip members": Hostile(make_zip(zipfile.ZIP_STORED), ArchiveLimitError, Limits(3)),
    "too many tar members": Hostile(make_tar, ArchiveLimitError, Limits(max_members=3)),
    "too many directory entries": Hostile(make_dir, ArchiveLimitError, Limits(max_members=3)),
    "truncated zip": Hostile(_truncated(make_zip(zipfile.ZIP_DEFLATED), 0.5), ArchiveError),
    "truncated tar": Hostile(_truncated(make_tar, 0.5), ArchiveError),
    "truncated tar.gz": Hostile(_truncated(make_tgz, 0.5), ArchiveError),
    "corrupt stored zip member (bad CRC)": Hostile(
        _zip_with_flipped_byte(zipfile.ZIP_STORED), ArchiveError, on_read=True
    ),
    "corrupt deflated zip member": Hostile(
        _zip_with_flipped_byte(zipfile.ZIP_DEFLATED), ArchiveError, on_read=True
    ),
    "not an archive at all": Hostile(
        lambda where, files: _write(where / "notes.txt", b"hello"), ArchiveError
    ),
    "gzip of something that is not a tar": Hostile(
        lambda where, files: _write(where / "x.gz", gzip.compress(b"hello" * 200)), ArchiveError
    ),
}


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("case", list(HOSTILE), ids=list(HOSTILE))
def test_hostile_or_broken_input_is_refused_without_writing_outside(
    case: str, sandbox: Sandbox
) -> None:
    hostile = HOSTILE[case]
    source = hostile.build(sandbox.inputs, RECORDING)
    before = sandbox.snapshot()
    with (
        pytest.raises(hostile.error) as excinfo,
        open_archive(source, cache_dir=sandbox.cache, limits=hostile.limits) as arc,
    ):
        assert hostile.on_read, "the archive should have been refused at open time"
        for member in arc.members():
            arc.read_bytes(member.name)
    assert type(excinfo.value) is hostile.error
    message = str(excinfo.value)
    assert "\n" not in message and message
    assert sandbox.snapshot() == before
    assert not list(sandbox.root.parent.rglob("evil*"))
    # A refused compressed tar leaves no decompressed copy or partial file behind.
    assert not list(sandbox.cache.rglob("*.tar")) and not list(sandbox.cache.rglob("*.part"))


def test_errors_are_input_errors_and_value_errors() -> None:
    assert issubclass(UnsafeArchiveError, ArchiveError)
    assert issubclass(ArchiveLimitError, InputError)
    assert issubclass(ArchiveError, ValueError)


def test_missing_path_is_source_not_found(sandbox: Sandbox) -> None:
    with pytest.raises(SourceNotFoundError) as excinfo:
        open_archive(sandbox.inputs / "nope.zip", cache_dir=sandbox.cache)
    assert isinstance(excinfo.value, FileNotFoundError)
    assert "nope.zip" in str(excinfo.value)
