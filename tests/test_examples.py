"""The sample call reads the same from its zip, its tar.gz and its extracted folder.

`scripts/sample_formats.py` (`make examples`) makes the tar.gz and the folder from the zip's
members; these tests make them afresh in a temp dir, so they hold on a fresh checkout too.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLE_ZIP = REPO / "examples" / "sample-call.zip"
SCRIPT = REPO / "scripts" / "sample_formats.py"


def make_formats(out_dir: Path) -> tuple[Path, Path]:
    subprocess.run(
        [sys.executable, SCRIPT, "--zip", SAMPLE_ZIP, "--out-dir", out_dir],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return out_dir / "sample-call.tar.gz", out_dir / "sample-call"


@pytest.fixture(scope="module")
def formats(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_formats(tmp_path_factory.mktemp("sample-formats"))


def list_tracks(flag: str, path: Path) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "rawcore", "list-tracks", flag, str(path), "--format", "json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    doc: dict[str, Any] = json.loads(proc.stdout)
    return doc


def test_zip_tar_gz_and_folder_list_the_same_tracks(formats: tuple[Path, Path]) -> None:
    targz, folder = formats
    from_zip = list_tracks("--input-file", SAMPLE_ZIP)
    from_targz = list_tracks("--input-file", targz)
    from_folder = list_tracks("--input-dir", folder)
    assert from_zip["track_count"] == len(from_zip["tracks"]) == 9
    assert from_zip["participant_count"] == 3 and from_zip["session_count"] == 4
    assert from_zip["warnings"] == []
    assert from_targz["tracks"] == from_zip["tracks"]
    assert from_folder["tracks"] == from_zip["tracks"]
    for doc in (from_targz, from_folder):
        assert doc["call"] == from_zip["call"] and doc["warnings"] == []


def test_tar_gz_and_folder_hold_exactly_the_zips_members(formats: tuple[Path, Path]) -> None:
    targz, folder = formats
    with zipfile.ZipFile(SAMPLE_ZIP) as zf:
        in_zip = {i.filename: zf.read(i) for i in zf.infolist() if not i.is_dir()}
    with tarfile.open(targz) as tf:
        members = tf.getmembers()
        names = [m.name for m in members]
        in_tar = {m.name: tf.extractfile(m).read() for m in members}  # type: ignore[union-attr]
    assert names == sorted(in_zip)
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname, m.mode) for m in members} == {
        (members[0].mtime, 0, 0, "", "", 0o644)
    }
    in_folder = {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }
    assert in_tar == in_zip
    assert in_folder == in_zip


def test_the_tar_gz_is_the_same_bytes_each_time(formats: tuple[Path, Path], tmp_path: Path) -> None:
    again, _ = make_formats(tmp_path)
    assert again.read_bytes() == formats[0].read_bytes()
    made = REPO / "examples" / "sample-call.tar.gz"
    if made.exists():  # made by `make examples`: not stale against the committed zip
        assert made.read_bytes() == again.read_bytes()
