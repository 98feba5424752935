"""Two places to keep objects under the layout's keys: a local folder (the default) and an S3
bucket with an optional prefix (`--storage s3://bucket/prefix`).

Writes are atomic on both: the folder backend writes a hidden temporary file beside the final
one, fsyncs and renames it; S3 makes an object visible only once its upload completed. A key
is checked again here (relative, no empty, `.` or `..` segments), so even a caller that
bypassed `OrgLayout` cannot leave the root.

Both also hold uploads another writer left pending (the live recorder's composed video) and
small JSON documents. On S3 a pending upload is a multipart upload under a prefix; on a folder
it is a `parts/` folder under the prefix holding `00001`, `00002`, … files, which become the
object `{prefix}composed.mp4`. Completing one is idempotent: an upload already completed (its
object there with the expected size and ETag) is not an error. The ETag of both is S3's
multipart ETag, the MD5 of the parts' MD5s and `-N`, recomputed from the stored object on a
folder.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from rawcore.atomic import create_temp_beside
from rawcore.errors import InputError, OutputError, RemoteError, SourceNotFoundError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def _check_key(key: str) -> str:
    parts = key.split("/")
    if key.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\\" in key:
        raise InputError(f"{key!r}: not a storage key")
    return key


#: On a folder, the object a prefix's `parts/` folder becomes once completed.
FOLDER_UPLOAD_NAME = "composed.mp4"
_PART_NAME = re.compile(r"^[0-9]{5}$")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class UploadPart:
    number: int
    size: int
    #: The part's MD5, hex (S3's part ETag without its quotes).
    md5: str


@dataclass(frozen=True)
class PendingUpload:
    """An upload another writer started under a prefix and has not completed."""

    key: str
    upload_id: str
    parts: tuple[UploadPart, ...]

    @property
    def size(self) -> int:
        return sum(p.size for p in self.parts)

    @property
    def etag(self) -> str:
        """The ETag the completed object must have."""
        return multipart_etag([p.md5 for p in self.parts])


@dataclass(frozen=True)
class StoredObject:
    """An object as the storage reports it after a completion."""

    key: str
    size: int
    etag: str


def multipart_etag(part_md5s: list[str]) -> str:
    """S3's ETag of a multipart object: the MD5 of the parts' binary MD5s, then `-N`."""
    joined = b"".join(bytes.fromhex(m) for m in part_md5s)
    return f"{hashlib.md5(joined).hexdigest()}-{len(part_md5s)}"


def _md5_of(f: Any, size: int) -> str:
    h = hashlib.md5()
    left = size
    while left > 0:
        chunk = f.read(min(_CHUNK, left))
        if not chunk:
            break
        h.update(chunk)
        left -= len(chunk)
    return h.hexdigest()


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

    def put_file(self, key: str, src: Path, *, move: bool = False) -> None:
        """Store the file `src` under `key`, atomically (replacing any object there). With
        `move` the caller no longer needs `src`: a folder storage on the same file system
        renames it into place instead of copying its bytes."""
        ...

    def get_file(self, key: str, dest: Path) -> None:
        """The object as the local file `dest`, for reading: a folder storage may give a hard
        link to the stored bytes instead of a copy, so `dest` is never changed in place."""
        ...

    def delete(self, key: str) -> None: ...

    def describe(self, key: str) -> str:
        """Where the object is, for people: a path or an s3:// URL."""
        ...

    def keys(self, prefix: str) -> list[str]:
        """Every key under `prefix` (a folder-like prefix ending in `/`)."""
        ...

    def put_bytes(self, key: str, data: bytes) -> None:
        """Store `data` under `key`, atomically."""
        ...

    def get_bytes(self, key: str) -> bytes | None:
        """The object's bytes, None when there is none."""
        ...

    def copy(self, src_key: str, dst_key: str) -> None:
        """Store a copy of the object `src_key` under `dst_key`, atomically, without moving its
        bytes through this process (a hard link on a folder, a server-side copy on S3)."""
        ...

    def pending_uploads(self, prefix: str) -> list[PendingUpload]:
        """The uploads pending under `prefix` (ending in `/`), with their parts; an upload
        with no part yet is left out (there is nothing to complete)."""
        ...

    def complete_upload(self, upload: PendingUpload) -> StoredObject:
        """Complete `upload` (a no-op when it already was) and report the stored object."""
        ...


def read_json(storage: Storage, key: str) -> Any:
    """The JSON document under `key`, None when there is none."""
    data = storage.get_bytes(key)
    if data is None:
        return None
    try:
        return json.loads(data)
    except ValueError:
        raise InputError(f"{storage.describe(key)}: not a JSON document") from None


def write_json(storage: Storage, key: str, document: Any) -> None:
    """Write a JSON document atomically (a reader sees the old one or the new one)."""
    text = json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    storage.put_bytes(key, text.encode())


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

    @contextlib.contextmanager
    def _writing(self, key: str) -> Iterator[Any]:
        """A file open for writing that becomes the object `key` once the block ends well."""
        final = self.path(key)
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = create_temp_beside(final.parent, f".{final.name[:24]}.", ".part")
        except OSError as exc:
            raise OutputError(f"{final.parent}: cannot write ({exc.strerror})") from None
        try:
            with os.fdopen(fd, "wb") as out:
                yield out
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, final)
        except OSError as exc:
            raise OutputError(f"{final}: cannot write ({exc.strerror})") from None
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def put_file(self, key: str, src: Path, *, move: bool = False) -> None:
        if move and self._move(key, src):
            return
        try:
            inp = open(src, "rb")  # noqa: SIM115 (closed below, errors mapped)
        except OSError as exc:
            raise OutputError(f"{src}: cannot read ({exc.strerror})") from None
        with inp, self._writing(key) as out:
            shutil.copyfileobj(inp, out, _CHUNK)

    def _move(self, key: str, src: Path) -> bool:
        """Rename `src` into place, its bytes on disk first; False when it is on another file
        system (the caller copies it then)."""
        final = self.path(key)
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            with open(src, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(src, final)
        except OSError as exc:
            if exc.errno == errno.EXDEV:
                return False
            raise OutputError(f"{final}: cannot write ({exc.strerror})") from None
        return True

    def copy(self, src_key: str, dst_key: str) -> None:
        src, final = self.path(src_key), self.path(dst_key)
        if not src.is_file():
            raise SourceNotFoundError(f"{self.describe(src_key)}: no such object")
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = create_temp_beside(final.parent, f".{final.name[:24]}.", ".link")
            os.close(fd)
            os.unlink(tmp)  # the name only: the link takes it
        except OSError as exc:
            raise OutputError(f"{final.parent}: cannot write ({exc.strerror})") from None
        try:
            os.link(src, tmp)  # objects are never changed in place, so sharing bytes is safe
            os.replace(tmp, final)
        except OSError:  # no hard links here: copy the bytes
            self.put_file(dst_key, src)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def put_bytes(self, key: str, data: bytes) -> None:
        with self._writing(key) as out:
            out.write(data)

    def get_bytes(self, key: str) -> bytes | None:
        try:
            return self.path(key).read_bytes()
        except FileNotFoundError:
            return None

    def pending_uploads(self, prefix: str) -> list[PendingUpload]:
        parts_dir = self.path(prefix.rstrip("/") + "/parts")
        if not parts_dir.is_dir():
            return []
        parts: list[UploadPart] = []
        for p in sorted(parts_dir.iterdir()):
            if p.name.startswith("."):  # a part still being written
                continue
            if not _PART_NAME.match(p.name) or not p.is_file():
                raise InputError(f"{p}: not an upload part (expected files 00001, 00002, …)")
            with open(p, "rb") as f:
                parts.append(UploadPart(int(p.name), p.stat().st_size, _md5_of(f, 1 << 62)))
        if not parts:
            return []
        key = prefix.rstrip("/") + "/" + FOLDER_UPLOAD_NAME
        return [PendingUpload(key, "parts", tuple(parts))]

    def _stored(self, upload: PendingUpload) -> StoredObject | None:
        """The object as stored, its ETag recomputed part by part from its bytes."""
        try:
            f = open(self.path(upload.key), "rb")  # noqa: SIM115
        except FileNotFoundError:
            return None
        with f:
            size = os.fstat(f.fileno()).st_size
            md5s = [_md5_of(f, p.size) for p in upload.parts]
        return StoredObject(upload.key, size, multipart_etag(md5s))

    def complete_upload(self, upload: PendingUpload) -> StoredObject:
        parts_dir = self.path(upload.key).parent / "parts"
        done = self._stored(upload)
        if done is None or (done.size, done.etag) != (upload.size, upload.etag):
            with self._writing(upload.key) as out:  # the parts, joined, appear at once
                for part in upload.parts:
                    with open(parts_dir / f"{part.number:05d}", "rb") as inp:
                        shutil.copyfileobj(inp, out, _CHUNK)
            done = self._stored(upload)
            assert done is not None, "the object was just renamed into place"
        # Completed: the parts go, last, and in one rename first, so a crash at any point
        # leaves either every part (a completion to repeat) or none in sight.
        gone = parts_dir.with_name(".parts.done")
        try:
            if gone.exists():
                shutil.rmtree(gone)
            parts_dir.rename(gone)
            shutil.rmtree(gone)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise OutputError(f"{parts_dir}: cannot remove the parts ({exc.strerror})") from None
        return done

    def get_file(self, key: str, dest: Path) -> None:
        # A link costs nothing where a copy of a scene's hour-long tracks costs gigabytes; the
        # caller only reads `dest`. Another file system (or no links there): a copy.
        src = self.path(key)
        try:
            try:
                os.link(src, dest)
            except FileNotFoundError:
                raise
            except OSError:
                shutil.copyfile(src, dest)
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
        # Hidden names are work in progress (a temporary file, parts being removed): not objects.
        return sorted(
            p.relative_to(self.root).as_posix()
            for p in base.rglob("*")
            if p.is_file() and not any(n.startswith(".") for n in p.relative_to(base).parts)
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

    def put_file(self, key: str, src: Path, *, move: bool = False) -> None:
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

    def put_bytes(self, key: str, data: bytes) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:  # one PUT: the object appears whole
            self.client.put_object(Bucket=self.bucket, Key=self.object_key(key), Body=data)
        except (BotoCoreError, ClientError) as exc:
            raise self.error(exc, key) from None

    def get_bytes(self, key: str) -> bytes | None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            got = self.client.get_object(Bucket=self.bucket, Key=self.object_key(key))
            return got["Body"].read()
        except (BotoCoreError, ClientError) as exc:
            err = self.error(exc, key)
            if isinstance(err, SourceNotFoundError):
                return None
            raise err from None

    def copy(self, src_key: str, dst_key: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        source = {"Bucket": self.bucket, "Key": self.object_key(src_key)}
        try:  # managed: one CopyObject, or a multipart copy over 5 GB; atomic either way
            self.client.copy(source, self.bucket, self.object_key(dst_key))  # type: ignore[arg-type]
        except (BotoCoreError, ClientError) as exc:
            raise self.error(exc, src_key) from None

    def pending_uploads(self, prefix: str) -> list[PendingUpload]:
        from botocore.exceptions import BotoCoreError, ClientError

        strip = len(self.prefix) + 1 if self.prefix else 0
        out: list[PendingUpload] = []
        try:
            uploads = self.client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.bucket, Prefix=self.object_key(prefix.rstrip("/")) + "/"
            )
            for page in uploads:
                for up in page.get("Uploads", []):
                    parts: list[UploadPart] = []
                    listed = self.client.get_paginator("list_parts").paginate(
                        Bucket=self.bucket, Key=up["Key"], UploadId=up["UploadId"]
                    )
                    for part_page in listed:
                        parts.extend(
                            UploadPart(int(p["PartNumber"]), int(p["Size"]),
                                       str(p["ETag"]).strip('"'))
                            for p in part_page.get("Parts", [])
                        )  # fmt: skip
                    if parts:
                        parts.sort(key=lambda p: p.number)
                        out.append(PendingUpload(up["Key"][strip:], up["UploadId"], tuple(parts)))
        except (BotoCoreError, ClientError) as exc:
            raise self.error(exc, prefix) from None
        return sorted(out, key=lambda u: (u.key, u.upload_id))

    def complete_upload(self, upload: PendingUpload) -> StoredObject:
        from botocore.exceptions import BotoCoreError, ClientError

        parts = [{"PartNumber": p.number, "ETag": f'"{p.md5}"'} for p in upload.parts]
        try:
            self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=self.object_key(upload.key), UploadId=upload.upload_id,
                MultipartUpload={"Parts": parts},  # type: ignore[typeddict-item]
            )  # fmt: skip
        except ClientError as exc:
            # Completed already (by us before a crash, or by the recorder): S3 may answer
            # NoSuchUpload. The object must then be there as the parts say, checked below.
            if exc.response.get("Error", {}).get("Code") != "NoSuchUpload":
                raise self.error(exc, upload.key) from None
        except BotoCoreError as exc:
            raise self.error(exc, upload.key) from None
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self.object_key(upload.key))
        except (BotoCoreError, ClientError) as exc:
            raise self.error(exc, upload.key) from None
        return StoredObject(upload.key, int(head["ContentLength"]), head["ETag"].strip('"'))


def open_storage(spec: str | os.PathLike[str], *, s3_endpoint: str | None = None) -> Storage:
    """A storage from its spec: `s3://bucket[/prefix]`, else a local folder."""
    text = os.fspath(spec)
    if text.lower().startswith("s3://"):
        parsed = urllib.parse.urlsplit(text)
        if not parsed.netloc or parsed.query:
            raise InputError(f"{text}: expected s3://bucket[/prefix]")
        return S3Storage(parsed.netloc, parsed.path, endpoint_url=s3_endpoint)
    return FolderStorage(text)


__all__ = [
    "FOLDER_UPLOAD_NAME",
    "FolderStorage",
    "PendingUpload",
    "S3Storage",
    "Storage",
    "StoredObject",
    "UploadPart",
    "multipart_etag",
    "open_storage",
    "read_json",
    "write_json",
]
