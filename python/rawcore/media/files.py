"""Writing outputs safely: file names from ids, the output folder, atomic files.

Outputs appear only complete: each is written under a hidden temporary name in the output
folder and renamed into place when done, so a crash or an error never leaves half a file under
the final name. Names are built from ids that come from the recording (user, session, track),
so each id is reduced to a safe file-name component first: nothing lands outside the folder.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

from rawcore.atomic import create_temp_beside
from rawcore.errors import OutputError

_UNSAFE = re.compile(r"[^A-Za-z0-9._@+-]+")
#: Longest component. An output name joins up to five ids (call type, call id, user, session,
#: track) with about 55 fixed characters, and must stay under the 255-byte file-name limit of
#: common file systems: 53 + 5 * 40 = 253.
MAX_COMPONENT = 40
_DIGEST = 8


def safe_component(value: str | None, *, fallback: str = "unknown") -> str:
    """An id as one file-name component: no separators, no leading dots, bounded length.

    An id longer than `MAX_COMPONENT` keeps its start and ends in a digest of the whole id, so
    two long ids that share a prefix still give different names.
    """
    cleaned = _UNSAFE.sub("_", value or "").lstrip(".")
    if len(cleaned) > MAX_COMPONENT:
        import hashlib  # here: loading OpenSSL costs every command a few ms at start-up

        digest = hashlib.sha256((value or "").encode("utf-8", "surrogatepass")).hexdigest()
        cleaned = f"{cleaned[: MAX_COMPONENT - _DIGEST - 1]}-{digest[:_DIGEST]}"
    return cleaned or fallback


def prepare_output_dir(path: str | os.PathLike[str]) -> Path:
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{out}: cannot create the output folder ({exc.strerror})") from None
    if not out.is_dir():
        raise OutputError(f"{out}: not a folder")
    if not os.access(out, os.W_OK):
        raise OutputError(f"{out}: output folder is not writable")
    return out


@contextlib.contextmanager
def atomic_path(out_dir: Path, name: str) -> Iterator[Path]:
    """Yield a temporary path beside `out_dir/name`; rename it into place on success only."""
    final = out_dir / name
    if final.parent.resolve() != out_dir.resolve() or name in ("", ".", ".."):
        raise OutputError(f"{name!r}: refusing to write outside {out_dir}")
    try:
        # A short temp name: the final name may already be near the file-name length limit.
        fd, tmp_path = create_temp_beside(out_dir, f".{name[:24]}.", ".part")
    except OSError as exc:
        raise OutputError(f"{out_dir}: cannot write ({exc.strerror})") from None
    os.close(fd)
    try:
        yield tmp_path
        os.replace(tmp_path, final)
    except OSError as exc:
        raise OutputError(f"{final}: cannot write ({exc.strerror})") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
