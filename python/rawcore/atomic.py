"""Temporary files that become outputs: created beside their final name, renamed into place.

`tempfile.mkstemp` makes files readable by their owner only (0600), right for secrets and
wrong for outputs that a web server or another user serves. A file made here gets the mode
any newly created file gets (0666 less the umask), so the renamed output looks like one the
user wrote.
"""

from __future__ import annotations

import os
from pathlib import Path

_ATTEMPTS = 100


def create_temp_beside(folder: Path, prefix: str, suffix: str) -> tuple[int, Path]:
    """An open descriptor and the path of a new, empty file in `folder`, under a name no one
    else holds (`O_EXCL`). Raises OSError like `mkstemp` when the folder is not writable."""
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(_ATTEMPTS):
        path = folder / f"{prefix}{os.urandom(6).hex()}{suffix}"
        try:
            return os.open(path, flags, 0o666), path
        except FileExistsError:
            continue
    raise FileExistsError(f"{folder}: no free temporary name after {_ATTEMPTS} attempts")


__all__ = ["create_temp_beside"]
