"""The service on S3 storage, ingesting from an allowed `s3://` source: presigned URLs for
downloads and MP4s, a source outside the allowed patterns refused."""

from __future__ import annotations

import io
from pathlib import Path

import av
import httpx
import pytest
from service_helpers import SAMPLE, create_org, start_service, wait_job

pytestmark = pytest.mark.s3


def test_s3_storage_and_source(tmp_path: Path, s3_server: object, s3_bucket: str) -> None:
    endpoint = s3_server.endpoint  # type: ignore[attr-defined]
    s3_server.client().upload_file(str(SAMPLE), s3_bucket, "calls/sample.zip")  # type: ignore[attr-defined]
    svc = start_service(
        tmp_path, "--storage", f"s3://{s3_bucket}/svc", "--s3-endpoint", endpoint,
        "--allow-source", f"s3://{s3_bucket}/calls/*",
    )  # fmt: skip
    try:
        key = create_org(svc.db, "acme")
        with svc.client(key) as c:
            refused = c.post("/v1/recordings", json={"source": f"s3://{s3_bucket}/svc/x.zip",
                                                     "room": "r"})  # fmt: skip
            assert refused.status_code == 422
            body = {"source": f"s3://{s3_bucket}/calls/sample.zip", "room": "r",
                    "participants": {"user_1": "Ada"}}  # fmt: skip
            r = c.post("/v1/recordings", json=body)
            assert r.status_code == 202, r.text
            assert wait_job(c, r.json()["job_id"])["state"] == "done"
            tracks = c.get(f"/v1/recordings/{r.json()['recording_id']}/tracks").json()["tracks"]
            assert len(tracks) == 17
            audio = tracks[0]
            assert audio["download_url"].startswith(endpoint)  # presigned by S3
            got = httpx.get(audio["download_url"], timeout=30)
            assert got.status_code == 200 and len(got.content) == audio["bytes"]
            conv = c.post(f"/v1/tracks/{audio['track_id']}/conversions", json={"mode": "remux"})
            job = wait_job(c, conv.json()["job_id"])
            assert job["state"] == "done", job
            data = httpx.get(job["result"]["download_url"], timeout=30).content
            with av.open(io.BytesIO(data)) as f:
                assert [s.type for s in f.streams] == ["audio"]
                assert sum(1 for _ in f.decode(audio=0)) > 400
            h264 = next(t for t in tracks if t["codec"] == "h264")
            preview = httpx.get(h264["preview_url"], timeout=120, follow_redirects=True)
            assert preview.status_code == 200 and preview.content[4:8] == b"ftyp"
    finally:
        svc.stop()
