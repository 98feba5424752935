"""`rawcore list-tracks --input-s3` against a real S3-compatible server on 127.0.0.1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.gst import gst_available
from helpers.recording import multiparty_call, pack_targz, pack_zip
from s3server import S3Server, make_client

pytestmark = [
    pytest.mark.s3,
    pytest.mark.skipif(not gst_available(), reason="GStreamer is not installed"),
]


@pytest.fixture(scope="module")
def archives(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    tmp = tmp_path_factory.mktemp("s3call")
    info = multiparty_call(tmp / "rec", duration_s=3.0, top_folder="raw-recording-call-123")
    return {
        "call.zip": pack_zip(info.root, tmp / "call.zip").read_bytes(),
        "call.tar.gz": pack_targz(info.root, tmp / "call.tar.gz").read_bytes(),
    }


def cli(*args: str, cache: Path, endpoint: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RAWCORE_CACHE_DIR": str(cache)}
    if endpoint:
        env["RAWCORE_S3_ENDPOINT"] = endpoint
    return subprocess.run(
        [sys.executable, "-m", "rawcore", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


@pytest.mark.parametrize("key", ["call.zip", "call.tar.gz"])
@pytest.mark.parametrize("fmt", ["table", "json", "users", "sessions", "tracks"])
def test_every_format_from_s3(
    s3_server: S3Server,
    s3_bucket: str,
    archives: dict[str, bytes],
    tmp_path: Path,
    key: str,
    fmt: str,
) -> None:
    s3_server.client().put_object(Bucket=s3_bucket, Key=f"cli/{key}", Body=archives[key])
    proc = cli(
        "list-tracks",
        "--input-s3",
        f"s3://{s3_bucket}/cli/{key}",
        "--format",
        fmt,
        "--s3-endpoint",
        s3_server.endpoint,
        cache=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    if fmt == "json":
        doc = json.loads(proc.stdout)
        assert doc["participant_count"] == 3 and doc["session_count"] == 4
    elif fmt == "users":
        assert proc.stdout.split() == ["user_1", "user_2", "user_3"]
    elif fmt == "sessions":
        assert proc.stdout.split() == ["session_1", "session_2"]
    elif fmt == "tracks":
        assert len(proc.stdout.split()) == 9
    else:
        assert "user_3" in proc.stdout and "LOSS%" in proc.stdout


def test_presigned_url_and_cache_reuse(
    s3_server: S3Server, s3_bucket: str, archives: dict[str, bytes], tmp_path: Path
) -> None:
    s3_server.client().put_object(
        Bucket=s3_bucket, Key="cli/presigned.zip", Body=archives["call.zip"]
    )
    url = make_client(s3_server.endpoint).generate_presigned_url(
        "get_object", Params={"Bucket": s3_bucket, "Key": "cli/presigned.zip"}, ExpiresIn=600
    )
    first = cli("list-tracks", "--input-s3", url, "--format", "users", cache=tmp_path)
    assert first.returncode == 0, first.stderr
    cached = sorted(p for p in (tmp_path / "objects").iterdir() if p.suffix != ".json")
    mtimes = [p.stat().st_mtime_ns for p in cached]
    second = cli("list-tracks", "--input-s3", url, "--format", "users", cache=tmp_path)
    assert second.stdout == first.stdout == "user_1\nuser_2\nuser_3\n"
    assert [p.stat().st_mtime_ns for p in cached] == mtimes  # revalidated, not re-downloaded


@pytest.mark.parametrize(
    ("url", "code", "message"),
    [
        ("s3://{bucket}/cli/missing.zip", 3, "missing.zip"),
        ("s3://no-such-bucket-rawcore/x.zip", 3, "no-such-bucket-rawcore"),
    ],
    ids=["missing-key", "missing-bucket"],
)
def test_s3_errors_are_one_line(
    s3_server: S3Server, s3_bucket: str, tmp_path: Path, url: str, code: int, message: str
) -> None:
    proc = cli(
        "list-tracks",
        "--input-s3",
        url.format(bucket=s3_bucket),
        cache=tmp_path,
        endpoint=s3_server.endpoint,
    )
    assert proc.returncode == code, proc.stderr
    assert proc.stderr.count("\n") == 1 and message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bad_credentials_exit_with_remote_error(
    s3_server: S3Server, s3_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret")
    proc = cli(
        "list-tracks",
        "--input-s3",
        f"s3://{s3_bucket}/cli/call.zip",
        cache=tmp_path,
        endpoint=s3_server.endpoint,
    )
    assert proc.returncode == 4, proc.stderr
    assert proc.stderr.startswith("rawcore: error: ") and proc.stderr.count("\n") == 1
