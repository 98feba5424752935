"""Where a recording's outputs land, and the rule that makes a batch resumable: a manifest
means the recording is complete.

On a local `--output` the command writes into a hidden staging folder beside the final one
(`OUTPUT/.{name}.partial-*`) that is renamed to `OUTPUT/{name}` once the command succeeded, so
a killed worker leaves no half-written folder under the final name (and the next attempt clears
its leftovers). On `s3://` the outputs are staged in a local temporary folder and uploaded with
the manifest last (any old manifest is deleted first, and objects the new run did not write are
removed before it), so the manifest's presence says the rest is there.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import urllib.parse
import uuid
from pathlib import Path
from typing import Any, Protocol

from rawcore.errors import InputError, OutputError
from rawcore.storage.backends import S3Storage

__all__ = ["MANIFEST", "Destination", "FolderDestination", "S3Destination", "open_destination"]

#: The file every writing command leaves last in its folder (`rawcore.media.manifest`).
MANIFEST = "manifest.json"


class Destination(Protocol):
    def describe(self, name: str) -> str:
        """Where the recording's outputs go, for people: a path or an s3:// URL."""
        ...

    def complete(self, name: str) -> bool:
        """True when the recording's outputs and manifest are there."""
        ...

    def staging(self, name: str) -> Path:
        """A fresh, empty local folder for the command to write into."""
        ...

    def publish(self, staging: Path, name: str) -> None:
        """Make the staged outputs the recording's outputs (the manifest last)."""
        ...

    def abandon(self, name: str) -> None:
        """Remove what a dead attempt left staged, where this process can see it."""
        ...


def read_manifest(staging: Path) -> dict[str, Any]:
    """The staged manifest; a command that wrote none did not finish (an OutputError)."""
    try:
        doc = json.loads((staging / MANIFEST).read_text())
    except FileNotFoundError:
        raise OutputError("the command wrote no manifest") from None
    except (OSError, ValueError) as exc:
        raise OutputError(f"unreadable manifest: {exc}") from None
    if not isinstance(doc, dict):
        raise OutputError("the manifest is not a JSON object")
    return doc


def discard(staging: Path) -> None:
    shutil.rmtree(staging, ignore_errors=True)


class FolderDestination:
    """`OUTPUT/{name}/` on a local file system; published by renaming a staging folder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def describe(self, name: str) -> str:
        return str(self.root / name)

    def complete(self, name: str) -> bool:
        return (self.root / name / MANIFEST).is_file()

    def staging(self, name: str) -> Path:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            self.abandon(name)  # a killed attempt's leftovers
            path = self.root / f".{name}.partial-{uuid.uuid4().hex[:12]}"
            path.mkdir()
        except OSError as exc:
            raise OutputError(f"{self.root}: cannot write ({exc.strerror})") from None
        return path

    def abandon(self, name: str) -> None:
        for stale in self.root.glob(f".{name}.partial-*"):
            discard(stale)

    def publish(self, staging: Path, name: str) -> None:
        final = self.root / name
        old = self.root / f".{name}.old-{uuid.uuid4().hex[:12]}"
        try:
            if final.exists():  # --force: the old folder goes aside, then away
                os.replace(final, old)
            os.replace(staging, final)
        except OSError as exc:
            raise OutputError(f"{final}: cannot publish ({exc.strerror})") from None
        discard(old)


class S3Destination:
    """`s3://bucket/prefix/{name}/`; the outputs are uploaded, the manifest last."""

    def __init__(self, storage: S3Storage) -> None:
        self.storage = storage

    def describe(self, name: str) -> str:
        return self.storage.describe(name) + "/"

    def complete(self, name: str) -> bool:
        return self.storage.exists(f"{name}/{MANIFEST}")

    def staging(self, name: str) -> Path:
        try:
            return Path(tempfile.mkdtemp(prefix=f"rawcore-batch-{name[:40]}-"))
        except OSError as exc:
            raise OutputError(f"cannot make a staging folder: {exc.strerror}") from None

    def abandon(self, name: str) -> None:
        """Nothing of a dead attempt is on S3 under the name without its manifest that the
        next attempt does not replace; its local staging folder was the worker's own."""

    def publish(self, staging: Path, name: str) -> None:
        files = sorted(
            p.relative_to(staging).as_posix()
            for p in staging.rglob("*")
            if p.is_file() and p.name != MANIFEST
        )
        self.storage.delete(f"{name}/{MANIFEST}")  # incomplete until the new one is up
        for rel in files:
            self.storage.put_file(f"{name}/{rel}", staging / rel)
        for key in set(self.storage.keys(f"{name}/")) - {f"{name}/{rel}" for rel in files}:
            self.storage.delete(key)  # what an earlier run wrote and this one did not
        self.storage.put_file(f"{name}/{MANIFEST}", staging / MANIFEST)
        discard(staging)


def open_destination(spec: str, *, s3_endpoint: str | None = None) -> Destination:
    """The batch's `--output`: `s3://bucket[/prefix]` or a local folder."""
    if spec.lower().startswith("s3://"):
        parsed = urllib.parse.urlsplit(spec)
        if not parsed.netloc or parsed.query:
            raise InputError(f"{spec}: expected s3://bucket[/prefix]")
        return S3Destination(S3Storage(parsed.netloc, parsed.path, endpoint_url=s3_endpoint))
    return FolderDestination(Path(spec))
