"""Fetching recordings from a real S3-compatible server (SeaweedFS on 127.0.0.1) into the cache."""

from __future__ import annotations

import io
import json
import logging
import os
import time
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from rawcore.errors import InputError, RemoteError, SourceNotFoundError
from rawcore.progress import ProgressBar
from rawcore.source import s3 as s3_mod
from rawcore.source.archive import open_archive
from rawcore.source.s3 import fetch
from s3server import CuttingProxy, S3Server, free_port, make_client

pytestmark = pytest.mark.s3

BIG = 2 * 1024 * 1024
CUT_AFTER = 300_000


@pytest.fixture
def downloads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every .part file a response body was written to (one entry per GET with a body)."""
    calls: list[Path] = []
    real = s3_mod._append

    def counting(part: Path, *args: object, **kwargs: object) -> None:
        calls.append(part)
        real(part, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(s3_mod, "_append", counting)
    return calls


def _put(server: S3Server, bucket: str, key: str, data: bytes) -> None:
    server.client().put_object(Bucket=bucket, Key=key, Body=data)


def _presign(endpoint: str, bucket: str, key: str, expires: int = 600) -> str:
    return make_client(endpoint).generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires
    )


@pytest.fixture
def proxy(s3_server: S3Server) -> Iterator[CuttingProxy]:
    p = CuttingProxy(s3_server.port, cut_after=CUT_AFTER, cuts=1)
    try:
        yield p
    finally:
        p.close()


# -- s3:// -----------------------------------------------------------------------------------------


def test_s3_object_is_downloaded_once_then_served_from_cache(
    s3_server: S3Server, s3_bucket: str, tmp_path: Path, downloads: list[Path]
) -> None:
    data = os.urandom(BIG)
    _put(s3_server, s3_bucket, "calls/rec.zip", data)
    url = f"s3://{s3_bucket}/calls/rec.zip"
    first = fetch(url, cache_dir=tmp_path, endpoint_url=s3_server.endpoint)
    assert first.read_bytes() == data
    stamp = (first.stat().st_ino, first.stat().st_mtime_ns)
    second = fetch(url, cache_dir=tmp_path, endpoint_url=s3_server.endpoint)
    assert second == first
    assert (second.stat().st_ino, second.stat().st_mtime_ns) == stamp
    assert len(downloads) == 1
    sidecar = json.loads(next(tmp_path.rglob("*.json")).read_text())
    assert sidecar["url"] == url and sidecar["cached"]["size"] == BIG


def test_changed_s3_object_is_downloaded_again_and_old_copy_dropped(
    s3_server: S3Server, s3_bucket: str, tmp_path: Path, downloads: list[Path]
) -> None:
    url = f"s3://{s3_bucket}/rec.zip"
    _put(s3_server, s3_bucket, "rec.zip", b"first version")
    old = fetch(url, cache_dir=tmp_path, endpoint_url=s3_server.endpoint)
    _put(s3_server, s3_bucket, "rec.zip", b"second, longer version")
    new = fetch(url, cache_dir=tmp_path, endpoint_url=s3_server.endpoint)
    assert new.read_bytes() == b"second, longer version"
    assert new != old and not old.exists()
    assert len(downloads) == 2


def test_s3_endpoint_comes_from_the_environment(
    s3_server: S3Server, s3_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _put(s3_server, s3_bucket, "a.bin", b"abc")
    monkeypatch.setenv("RAWCORE_S3_ENDPOINT", s3_server.endpoint)
    assert fetch(f"s3://{s3_bucket}/a.bin", cache_dir=tmp_path).read_bytes() == b"abc"


def test_corrupt_cached_copy_is_downloaded_again(
    s3_server: S3Server,
    s3_bucket: str,
    tmp_path: Path,
    downloads: list[Path],
    caplog: pytest.LogCaptureFixture,
) -> None:
    data = os.urandom(50_000)
    _put(s3_server, s3_bucket, "rec.zip", data)
    url = f"s3://{s3_bucket}/rec.zip"
    path = fetch(url, cache_dir=tmp_path, endpoint_url=s3_server.endpoint)
    path.write_bytes(data[:1000])  # e.g. a disk that filled up behind our back
    with caplog.at_level(logging.WARNING, logger="rawcore.source.cache"):
        again = fetch(url, cache_dir=tmp_path, endpoint_url=s3_server.endpoint)
    assert again.read_bytes() == data
    assert len(downloads) == 2
    assert "downloading it again" in caplog.text


@pytest.mark.parametrize(
    "key_or_bucket",
    ["missing key", "missing bucket"],
)
def test_missing_s3_object_is_source_not_found(
    key_or_bucket: str, s3_server: S3Server, s3_bucket: str, tmp_path: Path
) -> None:
    bucket = s3_bucket if key_or_bucket == "missing key" else "no-such-bucket-rawcore"
    url = f"s3://{bucket}/nothing/here.zip"
    with pytest.raises(SourceNotFoundError) as excinfo:
        fetch(url, cache_dir=tmp_path, endpoint_url=s3_server.endpoint)
    assert url in str(excinfo.value)
    assert isinstance(excinfo.value, FileNotFoundError)


def test_bad_credentials_are_a_remote_error_with_a_hint(
    s3_server: S3Server, s3_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _put(s3_server, s3_bucket, "rec.zip", b"x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    with pytest.raises(RemoteError, match=r"access denied.*check the S3 credentials"):
        fetch(f"s3://{s3_bucket}/rec.zip", cache_dir=tmp_path, endpoint_url=s3_server.endpoint)


def test_unreachable_endpoint_is_a_remote_error(s3_env: None, tmp_path: Path) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(RemoteError, match="cannot reach S3"):
        fetch("s3://bucket/rec.zip", cache_dir=tmp_path, endpoint_url=endpoint)


def test_unreachable_endpoint_falls_back_to_the_cached_copy(
    s3_server: S3Server, s3_bucket: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _put(s3_server, s3_bucket, "rec.zip", b"cached bytes")
    url = f"s3://{s3_bucket}/rec.zip"
    path = fetch(url, cache_dir=tmp_path, endpoint_url=s3_server.endpoint)
    dead = f"http://127.0.0.1:{free_port()}"
    with caplog.at_level(logging.WARNING, logger="rawcore.source.s3"):
        assert fetch(url, cache_dir=tmp_path, endpoint_url=dead) == path
    assert "using the cached copy" in caplog.text


def test_malformed_urls_are_input_errors(tmp_path: Path) -> None:
    for url in ("s3://bucket-only", "ftp://host/file.zip"):
        with pytest.raises(InputError):
            fetch(url, cache_dir=tmp_path)


def test_dropped_s3_connection_resumes_with_a_range_request(
    s3_server: S3Server, s3_bucket: str, tmp_path: Path, proxy: CuttingProxy
) -> None:
    data = os.urandom(BIG)
    _put(s3_server, s3_bucket, "big.zip", data)
    path = fetch(f"s3://{s3_bucket}/big.zip", cache_dir=tmp_path, endpoint_url=proxy.endpoint)
    assert path.read_bytes() == data
    assert proxy.cuts_left == 0
    assert proxy.saw("range: bytes=")
    assert not list(tmp_path.rglob("*.part"))


def test_s3_download_that_keeps_dropping_fails_clearly_then_resumes(
    s3_server: S3Server, s3_bucket: str, tmp_path: Path, proxy: CuttingProxy
) -> None:
    data = os.urandom(BIG)
    _put(s3_server, s3_bucket, "big.zip", data)
    url = f"s3://{s3_bucket}/big.zip"
    proxy.cuts_left = 100
    with pytest.raises(RemoteError, match="run again to resume"):
        fetch(url, cache_dir=tmp_path, endpoint_url=proxy.endpoint)
    (part,) = tmp_path.rglob("*.part")
    assert 0 < part.stat().st_size < BIG
    proxy.cuts_left = 0
    proxy.requests.clear()
    assert fetch(url, cache_dir=tmp_path, endpoint_url=proxy.endpoint).read_bytes() == data
    assert proxy.saw("range: bytes=")


# -- presigned URLs --------------------------------------------------------------------------------


def test_presigned_url_is_fetched_then_revalidated_with_304(
    s3_server: S3Server, s3_bucket: str, tmp_path: Path, downloads: list[Path], proxy: CuttingProxy
) -> None:
    data = os.urandom(100_000)
    _put(s3_server, s3_bucket, "rec.tar.gz", data)
    proxy.cuts_left = 0
    path = fetch(_presign(proxy.endpoint, s3_bucket, "rec.tar.gz"), cache_dir=tmp_path)
    assert path.read_bytes() == data
    stamp = path.stat().st_mtime_ns
    # A new signature for the same object lands in the same cache slot.
    again = fetch(_presign(proxy.endpoint, s3_bucket, "rec.tar.gz"), cache_dir=tmp_path)
    assert again == path and again.stat().st_mtime_ns == stamp
    assert len(downloads) == 1
    assert proxy.saw("if-none-match:")
    assert not proxy.saw("HEAD /")


def test_changed_presigned_object_is_downloaded_again(
    s3_server: S3Server, s3_bucket: str, tmp_path: Path, downloads: list[Path]
) -> None:
    _put(s3_server, s3_bucket, "rec.zip", b"one")
    fetch(_presign(s3_server.endpoint, s3_bucket, "rec.zip"), cache_dir=tmp_path)
    _put(s3_server, s3_bucket, "rec.zip", b"two!")
    path = fetch(_presign(s3_server.endpoint, s3_bucket, "rec.zip"), cache_dir=tmp_path)
    assert path.read_bytes() == b"two!"
    assert len(downloads) == 2


def test_expired_presigned_url_is_a_remote_error(
    s3_server: S3Server, s3_bucket: str, tmp_path: Path
) -> None:
    _put(s3_server, s3_bucket, "rec.zip", b"x")
    url = _presign(s3_server.endpoint, s3_bucket, "rec.zip", expires=1)
    time.sleep(2.2)
    with pytest.raises(RemoteError, match="presigned URL expired or invalid") as excinfo:
        fetch(url, cache_dir=tmp_path)
    assert "X-Amz-Signature" not in str(excinfo.value)  # the secret part is never echoed


def test_presigned_url_for_missing_object_is_source_not_found(
    s3_server: S3Server, s3_bucket: str, tmp_path: Path
) -> None:
    with pytest.raises(SourceNotFoundError):
        fetch(_presign(s3_server.endpoint, s3_bucket, "missing.zip"), cache_dir=tmp_path)


def test_dropped_presigned_download_resumes_and_restarts_if_object_changed(
    s3_server: S3Server, s3_bucket: str, tmp_path: Path, proxy: CuttingProxy
) -> None:
    _put(s3_server, s3_bucket, "big.zip", os.urandom(BIG))
    proxy.cuts_left = 100
    with pytest.raises(RemoteError, match="run again to resume"):
        fetch(_presign(proxy.endpoint, s3_bucket, "big.zip"), cache_dir=tmp_path)
    assert list(tmp_path.rglob("*.part"))
    # The object changes before the retry: the If-Match on the resumed range fails, so the
    # download starts over instead of gluing two versions together.
    data = os.urandom(BIG // 2)
    _put(s3_server, s3_bucket, "big.zip", data)
    proxy.cuts_left = 0
    proxy.requests.clear()
    path = fetch(_presign(proxy.endpoint, s3_bucket, "big.zip"), cache_dir=tmp_path)
    assert path.read_bytes() == data
    assert proxy.saw("if-match:")
    assert not list(tmp_path.rglob("*.part"))


def test_dropped_presigned_download_resumes_within_one_call(
    s3_server: S3Server, s3_bucket: str, tmp_path: Path, proxy: CuttingProxy
) -> None:
    data = os.urandom(BIG)
    _put(s3_server, s3_bucket, "big.zip", data)
    path = fetch(_presign(proxy.endpoint, s3_bucket, "big.zip"), cache_dir=tmp_path)
    assert path.read_bytes() == data
    assert proxy.cuts_left == 0 and proxy.saw("range: bytes=")


# -- end to end ------------------------------------------------------------------------------------


def test_open_archive_reads_a_zip_from_s3(
    s3_server: S3Server, s3_bucket: str, tmp_path: Path
) -> None:
    files = {"call/user_1/session_1/audio_1.sdp": b"v=0\r\n", "call/user_1/x.rtpdump": b"\1" * 99}
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    _put(s3_server, s3_bucket, "rec.zip", out.getvalue())
    source = f"s3://{s3_bucket}/rec.zip"
    with open_archive(source, cache_dir=tmp_path, s3_endpoint=s3_server.endpoint) as arc:
        assert arc.kind == "zip"
        assert {m.name: arc.read_bytes(m.name) for m in arc.members()} == files


def test_progress_bar_draws_only_when_enabled() -> None:
    shown, hidden = io.StringIO(), io.StringIO()
    for stream, enabled in ((shown, True), (hidden, None)):
        with ProgressBar("downloading x", 2048, enabled=enabled, stream=stream) as bar:
            bar.set(2048)
    assert "\r" in shown.getvalue() and "2.0 KiB" in shown.getvalue()
    assert hidden.getvalue() == ""  # a StringIO is not a terminal


def test_concurrent_fetches_of_one_object_download_it_once(
    s3_server: S3Server, s3_bucket: str, tmp_path: Path, downloads: list[Path]
) -> None:
    data = os.urandom(BIG)
    _put(s3_server, s3_bucket, "shared.zip", data)
    url = f"s3://{s3_bucket}/shared.zip"
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = [
            pool.submit(fetch, url, cache_dir=tmp_path, endpoint_url=s3_server.endpoint)
            for _ in range(3)
        ]
        paths = {f.result(timeout=60) for f in futures}
    assert len(paths) == 1 and paths.pop().read_bytes() == data
    assert len(downloads) == 1  # the others waited on the lock, then found the cached copy
