"""Two places to keep objects under the layout's keys: a local folder (the default) and an S3
bucket with an optional prefix (`--storage s3://bucket/prefix`).

Writes are atomic on both: the folder backend writes a hidden temporary file beside the final
one, fsyncs and renames it; S3 makes an object visible only once its upload completed. A key
is checked again here (relative, no empty, `.` or `..` segments), so even a caller that
bypassed `OrgLayout` cannot leave the root.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from rawcore.errors import InputError, OutputError, RemoteError, SourceNotFoundError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def _check_key(key: str) -> str:
    parts = key.split("/")
    if key.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\\" in key:
        raise InputError(f"{key!r}: not a storage key")
    return key


class Storage(Protocol):
    """Where objects live: keys are `/`-separated, relative, made by `OrgLayout`."""

    @property
    def spec(self) -> str:
        """How to open this storage again (`open_storage(spec)`), e.g. in a worker process."""
        ...

    def exists(self, key: str) -> bool: ...

    def size(self, key: str) -> int | None:
        """The object's size in bytes, None when there is none."""
        ...

    def put_file(self, key: str, src: Path) -> None:
        """Store the file `src` under `key`, atomically (replacing any object there)."""
        ...

    def get_file(self, key: str, dest: Path) -> None:
        """Copy the object to the local file `dest`."""
        ...

    def delete(self, key: str) -> None: ...

    def describe(self, key: str) -> str:
        """Where the object is, for people: a path or an s3:// URL."""
        ...

    def keys(self, prefix: str) -> list[str]:
        """Every key under `prefix` (a folder-like prefix ending in `/`)."""
        ...


class FolderStorage:
    """Objects as files under `root`: key `a/b/c.mp4` is `root/a/b/c.mp4`."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    @property
    def spec(self) -> str:
        return str(self.root.resolve())

    def path(self, key: str) -> Path:
        return self.root / _check_key(key)

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def size(self, key: str) -> int | None:
        try:
            return self.path(key).stat().st_size
        except FileNotFoundError:
            return None

    def put_file(self, key: str, src: Path) -> None:
        final = self.path(key)
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{final.name[:24]}.", suffix=".part",
                                       dir=final.parent)  # fmt: skip
        except OSError as exc:
            raise OutputError(f"{final.parent}: cannot write ({exc.strerror})") from None
        try:
            with os.fdopen(fd, "wb") as out, open(src, "rb") as inp:
                shutil.copyfileobj(inp, out, 1 << 20)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, final)
        except OSError as exc:
            raise OutputError(f"{final}: cannot write ({exc.strerror})") from None
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def get_file(self, key: str, dest: Path) -> None:
        try:
            shutil.copyfile(self.path(key), dest)
        except FileNotFoundError:
            raise SourceNotFoundError(f"{self.describe(key)}: no such object") from None

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(key).unlink()

    def describe(self, key: str) -> str:
        return str(self.path(key))

    def keys(self, prefix: str) -> list[str]:
        base = self.root / _check_key(prefix.rstrip("/"))
        if not base.is_dir():
            return []
        return sorted(
            p.relative_to(self.root).as_posix()
            for p in base.rglob("*")
            if p.is_file() and not p.name.startswith(".")
        )


class S3Storage:
    """Objects in `bucket` under `prefix/` (boto3, standard credential chain)."""

    def __init__(self, bucket: str, prefix: str = "", *, endpoint_url: str | None = None) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint_url = endpoint_url or os.environ.get("RAWCORE_S3_ENDPOINT") or None
        self._client: S3Client | None = None

    @property
    def spec(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    @property
    def client(self) -> S3Client:
        if self._client is None:
            import boto3
            from botocore.config import Config

            config = Config(
                connect_timeout=10,
                read_timeout=60,
                retries={"max_attempts": 3, "mode": "standard"},
                s3={"addressing_style": "path"} if self.endpoint_url else None,
            )
            self._client = boto3.session.Session().client(
                "s3", endpoint_url=self.endpoint_url, config=config
            )
        return self._client

    def object_key(self, key: str) -> str:
        _check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def error(self, exc: Exception, key: str) -> Exception:
        from botocore import exceptions as bx

        where = self.describe(key)
        if isinstance(exc, bx.ClientError):
            err = exc.response.get("Error", {})
            code = str(err.get("Code", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if code in ("404", "NoSuchKey", "NotFound") or status == 404:
                return SourceNotFoundError(f"{where}: no such S3 object")
            if code == "NoSuchBucket":
                return RemoteError(f"{where}: no such S3 bucket")
            if code in ("403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
                return RemoteError(f"{where}: access denied ({code}); check the S3 credentials")
            return RemoteError(f"{where}: S3 error {code or status}")
        if isinstance(exc, bx.NoCredentialsError | bx.PartialCredentialsError):
            return RemoteError(f"{where}: no usable S3 credentials found")
        if isinstance(exc, bx.BotoCoreError):
            return RemoteError(f"{where}: S3 request failed: {exc}")
        return exc

    def size(self, key: str) -> int | None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self.object_key(key))
        except (BotoCoreError, ClientError) as exc:
            err = self.error(exc, key)
            if isinstance(err, SourceNotFoundError):
                return None
            raise err from None
        return int(head["ContentLength"])

    def exists(self, key: str) -> bool:
        return self.size(key) is not None

    def put_file(self, key: str, src: Path) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            # One PUT or a multipart upload: either way the object appears only when complete.
            self.client.upload_file(str(src), self.bucket, self.object_key(key))
        except (BotoCoreError, ClientError) as exc:
            raise self.error(exc, key) from None
        except Exception as exc:  # boto3's S3UploadFailedError wraps the ClientError
            cause = exc.__cause__ or exc.__context__
            if isinstance(cause, BotoCoreError | ClientError):
                raise self.error(cause, key) from None
            raise RemoteError(f"{self.describe(key)}: upload failed: {exc}") from None

    def get_file(self, key: str, dest: Path) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.download_file(self.bucket, self.object_key(key), str(dest))
        except (BotoCoreError, ClientError) as exc:
            raise self.error(exc, key) from None

    def delete(self, key: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.object_key(key))
        except (BotoCoreError, ClientError) as exc:
            raise self.error(exc, key) from None

    def describe(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.object_key(key)}"

    def keys(self, prefix: str) -> list[str]:
        from botocore.exceptions import BotoCoreError, ClientError

        strip = len(self.prefix) + 1 if self.prefix else 0
        out: list[str] = []
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.object_key(prefix.rstrip("/")) + "/"
            )
            for page in pages:
                out.extend(obj["Key"][strip:] for obj in page.get("Contents", []))
        except (BotoCoreError, ClientError) as exc:
            raise self.error(exc, prefix) from None
        return sorted(out)


def open_storage(spec: str | os.PathLike[str], *, s3_endpoint: str | None = None) -> Storage:
    """A storage from its spec: `s3://bucket[/prefix]`, else a local folder."""
    text = os.fspath(spec)
    if text.lower().startswith("s3://"):
        parsed = urllib.parse.urlsplit(text)
        if not parsed.netloc or parsed.query:
            raise InputError(f"{text}: expected s3://bucket[/prefix]")
        return S3Storage(parsed.netloc, parsed.path, endpoint_url=s3_endpoint)
    return FolderStorage(text)


__all__ = ["FolderStorage", "S3Storage", "Storage", "open_storage"]
