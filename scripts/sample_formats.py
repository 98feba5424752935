"""Write the sample call as a tar.gz and as a folder, from the members of its zip.

rawcore reads a recording from a ZIP, a tar.gz or an extracted folder; these are the same
recording in the other two forms, so every command line of the README can be tried as written.
Only the zip is committed; this script makes the rest in well under a second, from the standard
library alone:

    python scripts/sample_formats.py [--zip examples/sample-call.zip] [--out-dir examples]

writes `sample-call.tar.gz` and the folder `sample-call/` beside the zip (`--out-dir` elsewhere).
Same zip, same bytes: tar members in sorted name order, each with the zip's fixed timestamp,
mode 0644, uid/gid 0 and no owner names, and a gzip header without file name or time. The
folder's files carry the same timestamp, and the folder is replaced as a whole.
"""

from __future__ import annotations

import argparse
import calendar
import gzip
import io
import os
import shutil
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

REPO = Path(__file__).resolve().parent.parent


def read_members(zip_path: Path) -> tuple[list[tuple[str, bytes]], int]:
    """The zip's files in sorted name order and their common timestamp (Unix seconds, UTC).

    The sample is ours, but a member that could land outside the folder is refused anyway."""
    with zipfile.ZipFile(zip_path) as zf:
        infos = sorted((i for i in zf.infolist() if not i.is_dir()), key=lambda i: i.filename)
        members = []
        for info in infos:
            name = PurePosixPath(info.filename)
            if name.is_absolute() or ".." in name.parts or "\\" in info.filename:
                raise ValueError(f"{zip_path}: unsafe member name {info.filename!r}")
            members.append((info.filename, zf.read(info)))
        stamps = {i.date_time for i in infos}
    if len(stamps) != 1:
        raise ValueError(f"{zip_path}: members have {len(stamps)} different timestamps, not one")
    # Zip times have no zone; the sample's are UTC (tests/helpers/recording.py `pack_zip`).
    return members, calendar.timegm((*stamps.pop(), 0, 0, 0))


def write_targz(members: list[tuple[str, bytes]], mtime: int, dest: Path) -> None:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = mtime
            info.mode = 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tf.addfile(info, io.BytesIO(data))
    tmp = dest.with_name(dest.name + ".tmp")
    with (
        tmp.open("wb") as fh,
        gzip.GzipFile(filename="", fileobj=fh, mode="wb", compresslevel=9, mtime=0) as gz,
    ):
        gz.write(raw.getvalue())
    tmp.replace(dest)


def write_folder(members: list[tuple[str, bytes]], mtime: int, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    try:
        for name, data in members:
            path = staging / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            path.chmod(0o644)
            os.utime(path, (mtime, mtime))
        staging.chmod(0o755)
        if dest.exists():
            shutil.rmtree(dest)
        staging.rename(dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zip", type=Path, default=REPO / "examples" / "sample-call.zip")
    parser.add_argument("--out-dir", type=Path, help="where to write (default: beside the zip)")
    args = parser.parse_args(argv)

    out_dir: Path = args.out_dir or args.zip.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = args.zip.name.removesuffix(".zip")
    members, mtime = read_members(args.zip)
    write_targz(members, mtime, out_dir / f"{stem}.tar.gz")
    write_folder(members, mtime, out_dir / stem)
    print(f"wrote {out_dir / stem}.tar.gz and {out_dir / stem}/ ({len(members)} files)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
