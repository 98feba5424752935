"""Download remote recordings into a local, revalidated cache.

Two kinds of URL are understood: ``s3://bucket/key`` (boto3 with the standard credential chain;
the endpoint comes from the caller, ``$RAWCORE_S3_ENDPOINT`` or boto3's own
``$AWS_ENDPOINT_URL``) and presigned ``http(s)://`` URLs (plain GETs, no credentials). Each
object is cached under a name derived from its URL without the query string, its ETag and its
size, beside a small JSON sidecar. Every call revalidates the copy (a HEAD for S3, a conditional
GET for presigned URLs, which are signed for GET only); if the network is unreachable an
existing copy is used with a warning. Downloads go to a ``.part`` file under an exclusive lock,
resume with a ``Range`` request guarded by the ETag after a dropped connection, and are checked
for size, fsynced and renamed into place.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import urllib3

from rawcore.errors import InputError, OutputError, RemoteError, SourceNotFoundError
from rawcore.progress import ProgressBar
from rawcore.source.cache import CacheEntry, CacheSlot, Sidecar, cache_lock, part_size

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = ["fetch"]

log = logging.getLogger(__name__)

_CHUNK = 1024 * 1024
#: Attempts per call at one download; each attempt resumes where the previous one stopped.
_ATTEMPTS = 3
_CONNECT_TIMEOUT_S = 10.0
_READ_TIMEOUT_S = 60.0
_NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NoSuchBucket", "NotFound"})
_DENIED_CODES = frozenset(
    {
        "403",
        "AccessDenied",
        "Forbidden",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "AuthorizationHeaderMalformed",
    }
)


class _Unreachable(Exception):
    """The remote could not be reached at all (a cached copy may stand in)."""


class _Interrupted(Exception):
    """The connection dropped in the middle of a body (the download can resume)."""


class _Changed(Exception):
    """The object changed between revalidation and download (If-Match failed)."""


def _append(
    part: Path,
    read: Callable[[int], bytes],
    offset: int,
    bar: ProgressBar,
    url: str,
) -> None:
    """Copy a response body into `part`, starting at `offset`. Network failures while reading
    become _Interrupted (what was written stays for a resume); local failures OutputError."""
    try:
        fh: BinaryIO = open(part, "r+b" if offset else "wb")  # noqa: SIM115  # closed below
    except OSError as e:
        raise OutputError(f"cannot write {part}: {e}") from e
    with fh:
        fh.truncate(offset)
        fh.seek(offset)
        done = offset
        while True:
            try:
                chunk = read(_CHUNK)
            except Exception as e:  # whatever the HTTP stack raised: our caller retries
                raise _Interrupted(f"{url}: connection dropped after {done} bytes: {e}") from e
            if not chunk:
                break
            try:
                fh.write(chunk)
            except OSError as e:
                raise OutputError(f"cannot write {part}: {e}") from e
            done += len(chunk)
            bar.set(done)


# -- s3:// ---------------------------------------------------------------------------------------


def _split_s3_url(url: str) -> tuple[str, str]:
    parsed = urllib.parse.urlsplit(url)
    bucket, key = parsed.netloc, parsed.path.lstrip("/")
    if not bucket or not key or parsed.query:
        raise InputError(f"{url}: expected s3://bucket/key")
    return bucket, key


def _s3_client(endpoint_url: str | None) -> S3Client:
    import boto3
    from botocore.config import Config

    endpoint = endpoint_url or os.environ.get("RAWCORE_S3_ENDPOINT") or None
    config = Config(
        connect_timeout=_CONNECT_TIMEOUT_S,
        read_timeout=_READ_TIMEOUT_S,
        retries={"max_attempts": 3, "mode": "standard"},
        # S3-compatible servers behind a custom endpoint rarely do virtual-host buckets.
        s3={"addressing_style": "path"} if endpoint else None,
    )
    return boto3.session.Session().client("s3", endpoint_url=endpoint, config=config)


def _s3_error(e: Exception, url: str) -> Exception:
    """Map a botocore exception to ours (or to one of the private retry signals)."""
    from botocore import exceptions as bx

    if isinstance(e, bx.ClientError):
        err = e.response.get("Error", {})
        code = str(err.get("Code", ""))
        status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in _NOT_FOUND_CODES or status == 404:
            return SourceNotFoundError(f"{url}: no such S3 object ({code or status})")
        if code in _DENIED_CODES or status == 403:
            return RemoteError(
                f"{url}: access denied ({code or status}); check the S3 credentials "
                "(AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) and the endpoint"
            )
        if code == "PreconditionFailed" or status == 412:
            return _Changed(url)
        message = err.get("Message") or code
        return RemoteError(f"{url}: S3 error {code or status}: {message}")
    if isinstance(e, bx.NoCredentialsError | bx.PartialCredentialsError):
        return RemoteError(f"{url}: no usable S3 credentials found; {e}")
    if isinstance(
        e,
        bx.EndpointConnectionError
        | bx.ConnectTimeoutError
        | bx.ReadTimeoutError
        | bx.ConnectionClosedError
        | bx.ProxyConnectionError,
    ):
        return _Unreachable(f"{url}: cannot reach S3: {e}")
    if isinstance(e, bx.BotoCoreError):
        return RemoteError(f"{url}: S3 request failed: {e}")
    return e


def _fetch_s3(url: str, cache_dir: Path, endpoint_url: str | None, progress: bool | None) -> Path:
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, key = _split_s3_url(url)
    cache = CacheSlot(cache_dir, url, key.rsplit("/", 1)[-1])
    client = _s3_client(endpoint_url)
    with cache_lock(cache.lock):
        side = Sidecar.load(cache.sidecar_path, url)
        cached = cache.valid_cached(side)
        for _ in range(_ATTEMPTS):
            try:
                head = client.head_object(Bucket=bucket, Key=key)
            except (BotoCoreError, ClientError) as e:
                mapped = _s3_error(e, url)
                if isinstance(mapped, _Unreachable) and cached is not None:
                    log.warning("%s; using the cached copy", mapped)
                    return cache.path(cached)
                if isinstance(mapped, _Unreachable | _Changed):
                    raise RemoteError(str(mapped)) from e
                raise mapped from e
            etag, size = head.get("ETag", ""), head.get("ContentLength", -1)
            if cached is not None and (cached.etag, cached.size) == (etag, size):
                return cache.path(cached)
            entry = cache.entry_for(etag, size)
            part = cache.start_partial(side, entry)
            try:
                return _download_s3(client, bucket, key, cache, side, entry, part, progress)
            except _Changed:
                log.info("%s changed during the download; starting over", url)
                part.unlink(missing_ok=True)
        raise RemoteError(f"{url}: the object keeps changing during the download")


def _download_s3(
    client: S3Client,
    bucket: str,
    key: str,
    cache: CacheSlot,
    side: Sidecar,
    entry: CacheEntry,
    part: Path,
    progress: bool | None,
) -> Path:
    from botocore.exceptions import BotoCoreError, ClientError

    url = cache.url
    with ProgressBar(f"downloading {cache.basename}", entry.size, enabled=progress) as bar:
        for attempt in range(1, _ATTEMPTS + 1):
            offset = part_size(part)
            if offset > entry.size >= 0:
                part.unlink()  # longer than the object: not a prefix of it
                offset = 0
            elif offset == entry.size:
                break
            args: dict[str, Any] = {"Bucket": bucket, "Key": key}
            if entry.etag:
                args["IfMatch"] = entry.etag
            if offset:
                args["Range"] = f"bytes={offset}-"
            try:
                response = client.get_object(**args)
                body = response["Body"]
                with contextlib.closing(body):
                    _append(part, body.read, offset, bar, url)
                break
            except _Interrupted as e:
                log.warning("%s (attempt %d of %d)", e, attempt, _ATTEMPTS)
            except (BotoCoreError, ClientError) as e:
                mapped = _s3_error(e, url)
                if isinstance(mapped, _Unreachable):
                    log.warning("%s (attempt %d of %d)", mapped, attempt, _ATTEMPTS)
                    continue
                raise mapped from e
        else:
            raise RemoteError(
                f"{url}: download interrupted at {part_size(part)} of {entry.size} bytes; "
                "run again to resume"
            )
    return cache.commit(side, entry)


# -- presigned http(s):// ------------------------------------------------------------------------


def _http_error(status: int, body: bytes, url: str) -> Exception:
    code = re.search(rb"<Code>([^<]{1,100})</Code>", body)
    message = re.search(rb"<Message>([^<]{1,200})</Message>", body)
    detail = " ".join(
        m.group(1).decode("utf-8", "replace") for m in (code, message) if m is not None
    )
    suffix = f" ({detail})" if detail else ""
    if status == 404:
        return SourceNotFoundError(f"{url}: no such object (HTTP 404){suffix}")
    if status in (400, 401, 403):
        return RemoteError(
            f"{url}: presigned URL expired or invalid (HTTP {status}){suffix}; ask for a new one"
        )
    return RemoteError(f"{url}: HTTP {status}{suffix}")


def _total_size(response: urllib3.BaseHTTPResponse) -> int:
    """The whole object's size from Content-Range (206) or Content-Length (200), else -1."""
    content_range = response.headers.get("Content-Range", "")
    match = re.match(r"bytes \d+-\d+/(\d+)", content_range)
    if match:
        return int(match.group(1))
    length = response.headers.get("Content-Length")
    return int(length) if length and length.isdigit() else -1


def _raw_reader(response: urllib3.BaseHTTPResponse) -> Callable[[int], bytes]:
    # The object's bytes as stored: never undo a Content-Encoding the object was uploaded with.
    return lambda amt: response.read(amt, decode_content=False)


@contextlib.contextmanager
def _get(
    pool: urllib3.PoolManager, url: str, headers: dict[str, str], label: str
) -> Iterator[urllib3.BaseHTTPResponse]:
    try:
        response = pool.request("GET", url, headers=headers, preload_content=False)
    except urllib3.exceptions.HTTPError as e:
        raise _Unreachable(f"{label}: cannot connect: {e}") from e
    try:
        yield response
    finally:
        response.release_conn()


def _fetch_presigned(url: str, cache_dir: Path, progress: bool | None) -> Path:
    split = urllib.parse.urlsplit(url)
    label = urllib.parse.urlunsplit((split.scheme, split.netloc, split.path, "", ""))
    cache = CacheSlot(cache_dir, label, split.path.rsplit("/", 1)[-1])
    pool = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=_CONNECT_TIMEOUT_S, read=_READ_TIMEOUT_S),
        retries=False,
    )
    with cache_lock(cache.lock):
        side = Sidecar.load(cache.sidecar_path, label)
        cached = cache.valid_cached(side)
        try:
            return _download_presigned(pool, url, cache, side, cached, progress)
        except _Unreachable as e:
            if cached is not None:
                log.warning("%s; using the cached copy", e)
                return cache.path(cached)
            raise RemoteError(str(e)) from e
        finally:
            pool.clear()


def _download_presigned(
    pool: urllib3.PoolManager,
    url: str,
    cache: CacheSlot,
    side: Sidecar,
    cached: CacheEntry | None,
    progress: bool | None,
) -> Path:
    label = cache.url
    reached = False
    for attempt in range(1, _ATTEMPTS + 2):
        partial = side.partial
        offset = part_size(cache.part(partial)) if partial else 0
        headers: dict[str, str] = {}
        if partial is not None and partial.etag and offset:
            headers = {"Range": f"bytes={offset}-", "If-Match": partial.etag}
        elif cached is not None and cached.etag:
            headers = {"If-None-Match": cached.etag}
        try:
            with _get(pool, url, headers, label) as response:
                reached = True
                status = response.status
                if status == 304 and cached is not None:
                    return cache.path(cached)
                if status in (412, 416) and partial is not None:
                    # The object changed (or the part is bogus): start from scratch.
                    cache.part(partial).unlink(missing_ok=True)
                    side.partial = None
                    side.save()
                    continue
                if status not in (200, 206):
                    raise _http_error(status, response.read(64 * 1024), label)
                if status == 206 and partial is not None:
                    entry, start = partial, offset
                else:
                    etag = response.headers.get("ETag", "")
                    entry, start = cache.entry_for(etag, _total_size(response)), 0
                part = cache.start_partial(side, entry)
                with ProgressBar(
                    f"downloading {cache.basename}", entry.size, enabled=progress
                ) as bar:
                    _append(part, _raw_reader(response), start, bar, label)
                return cache.commit(side, entry)
        except _Interrupted as e:
            log.warning("%s (attempt %d of %d)", e, attempt, _ATTEMPTS)
            if attempt >= _ATTEMPTS:
                raise RemoteError(f"{e}; run again to resume") from e
        except urllib3.exceptions.HTTPError as e:
            raise RemoteError(f"{label}: request failed: {e}") from e
        except _Unreachable:
            if not reached:
                raise
            log.warning("%s: connection lost (attempt %d of %d)", label, attempt, _ATTEMPTS)
            if attempt >= _ATTEMPTS:
                raise
    raise RemoteError(f"{label}: download did not complete after {_ATTEMPTS} attempts")


# -- entry point ---------------------------------------------------------------------------------


def fetch(
    url: str,
    *,
    cache_dir: Path,
    endpoint_url: str | None = None,
    progress: bool | None = None,
) -> Path:
    """Return the local path of a cached, revalidated copy of `url`.

    `url` is ``s3://bucket/key`` or a presigned ``http(s)://`` URL. `endpoint_url` overrides
    the S3 endpoint (default: ``$RAWCORE_S3_ENDPOINT``, then boto3's own configuration).
    `progress=None` shows a progress bar only when stderr is a terminal.

    Raises SourceNotFoundError when the object does not exist, RemoteError for connection,
    permission and expiry failures, OutputError when the cache cannot be written.
    """
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme == "s3":
        return _fetch_s3(url, cache_dir, endpoint_url, progress)
    if scheme in ("http", "https"):
        return _fetch_presigned(url, cache_dir, progress)
    raise InputError(f"{url}: not an s3:// or http(s):// URL")
