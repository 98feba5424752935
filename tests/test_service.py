"""The service end to end: a real uvicorn process, a real SQLite file, two organizations, and
a table of hostile requests that must each get the answer that reveals nothing."""

from __future__ import annotations

import hashlib
import io
import json
import sqlite3
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
from rawcore.pipeline.post import STEPS
from rawcore.service.signing import sign_file
from service_helpers import SAMPLE, Service, create_org, start_service, upload, wait_job

MAX_UPLOAD = 4 << 20


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    svc = start_service(
        tmp_path_factory.mktemp("service"), "--max-upload", "4M",
        "--allow-source", "https://*", "--allow-source", "s3://calls/*",
    )  # fmt: skip
    try:
        yield svc
    finally:
        svc.stop()


@pytest.fixture(scope="module")
def orgs(service: Service) -> dict[str, dict[str, Any]]:
    """Two organizations, each with the sample ingested: key, recording, tracks."""
    out: dict[str, dict[str, Any]] = {}
    for name in ("acme", "globex"):
        key = create_org(service.db, name)
        with service.client(key) as c:
            r = upload(c)
            assert r.status_code == 202, r.text
            out[name] = {"key": key, **r.json()}
    for name, o in out.items():
        with service.client(o["key"]) as c:
            job = wait_job(c, o["job_id"])
            assert job["state"] == "done", (name, job)
            o["tracks"] = c.get(f"/v1/recordings/{o['recording_id']}/tracks").json()["tracks"]
    return out


def mp4_facts(data: bytes) -> dict[str, Any]:
    with av.open(io.BytesIO(data)) as f:
        assert f.format.name.startswith("mov"), f.format.name
        kinds = sorted(s.type for s in f.streams)
        frames = sum(1 for _ in f.decode(*f.streams))
        return {"kinds": kinds, "frames": frames, "duration_s": (f.duration or 0) / 1e6}


def test_the_sample_becomes_raw_and_stitched_tracks(orgs: dict[str, dict[str, Any]]) -> None:
    tracks = orgs["acme"]["tracks"]
    raw = [t for t in tracks if not t["stitched"]]
    assert len(raw) == 9  # every track of the sample (examples/README.md)
    assert {t["participant_id"] for t in tracks} == {"user_1", "user_2", "user_3"}
    names = {t["participant_id"]: t["participant_name"] for t in tracks}
    assert names == {"user_1": "Ada Lovelace", "user_2": "Grace Hopper", "user_3": "user_3"}
    ada_audio = [t for t in tracks if t["stitched"] and t["participant_id"] == "user_1"
                 and t["kind"] == "audio"]  # fmt: skip
    assert len(ada_audio) == 1 and ada_audio[0]["duration_ms"] > 15000  # both sessions
    for t in tracks:
        assert t["track_id"].startswith("trk_") and t["bytes"] > 0 and t["duration_ms"] > 0
        assert t["container"] == ("matroska" if t["codec"] == "h264" else "webm")
    # Ids are minted per ingest: the two organizations share none.
    other = {t["track_id"] for t in orgs["globex"]["tracks"]}
    assert not other & {t["track_id"] for t in tracks}


def test_each_org_lists_only_its_own(service: Service, orgs: dict[str, dict[str, Any]]) -> None:
    for name, o in orgs.items():
        with service.client(o["key"]) as c:
            listed = c.get("/v1/recordings").json()["recordings"]
            assert [r["recording_id"] for r in listed] == [o["recording_id"]], name
            one = c.get(f"/v1/recordings/{o['recording_id']}").json()
            assert one["state"] == "done" and one["call_id"] == "call-123"


def test_downloads_and_previews_are_the_stored_files(
    service: Service, orgs: dict[str, dict[str, Any]]
) -> None:
    with httpx.Client(timeout=120) as anon:  # signed URLs need no key
        for t in orgs["acme"]["tracks"][:9]:
            got = anon.get(t["download_url"])
            assert got.status_code == 200 and len(got.content) == t["bytes"], t
            assert "attachment" in got.headers["content-disposition"]
        h264 = next(t for t in orgs["acme"]["tracks"] if t["codec"] == "h264")
        preview = anon.get(h264["preview_url"])
        assert preview.status_code == 200 and preview.headers["content-type"] == "video/mp4"
        facts = mp4_facts(preview.content)
        assert facts["kinds"] == ["video"] and facts["frames"] > 50


def test_convert_poll_download_then_cached(service: Service,
                                           orgs: dict[str, dict[str, Any]]) -> None:  # fmt: skip
    for name, o in orgs.items():
        cam = next(t for t in o["tracks"] if t["kind"] == "video" and t["codec"] == "vp9"
                   and not t["stitched"])  # fmt: skip
        with service.client(o["key"]) as c:
            first = c.post(f"/v1/tracks/{cam['track_id']}/conversions", json={"mode": "editor"})
            assert first.status_code == 202, first.text
            job = wait_job(c, first.json()["job_id"])
            assert job["state"] == "done", job
            data = httpx.get(job["result"]["download_url"], timeout=60).content
            facts = mp4_facts(data)
            assert "video" in facts["kinds"] and facts["frames"] > 100, (name, facts)
            again = c.post(f"/v1/tracks/{cam['track_id']}/conversions", json={"mode": "editor"})
            assert again.status_code == 200 and again.json()["state"] == "done"
            assert again.json()["job_id"] == job["job_id"]


def _signed(service: Service, what: str, ident: str, org: str, exp: int) -> str:
    with sqlite3.connect(service.db) as db:
        secret = bytes.fromhex(db.execute(
            "SELECT value FROM service_secrets WHERE name='url'").fetchone()[0])  # fmt: skip
    sig = sign_file(secret, what, ident, org, exp, True)
    return f"{service.url}/files/{what}/{ident}?o={org}&exp={exp}&dl=1&sig={sig}"


def _org_id(service: Service, key: str) -> str:
    from rawcore.service.store import ServiceStore

    org = ServiceStore(service.db).org_for_key(key)
    assert org is not None
    return org.id


def _zip_bomb(tmp: Path) -> Path:
    path = tmp / "bomb.zip"
    with zipfile.ZipFile(SAMPLE) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for info in src.infolist():
            z.writestr(info, src.read(info))
        z.writestr("user_1/session_1/padding.bin", bytes(64 << 20))  # ~1000x, 64 KB packed
    return path


@pytest.mark.parametrize(
    "case",
    [
        "no key", "wrong key", "another org's recording", "another org's track conversion",
        "another org's job id", "guessed recording id", "path traversal in a recording id",
        "path traversal in a track id", "path traversal in a job id", "traversal in the room",
        "participants not JSON", "malformed JSON body", "unknown conversion mode",
        "oversized upload", "oversized upload without a length", "zip bomb", "not an archive",
        "source on 127.0.0.1", "source on 169.254.169.254", "source not allowed",
        "source with a scheme not allowed", "expired signed URL",
        "signed URL replayed for another org", "tampered signature", "another org's MP4",
        "stop another org's recording", "stop a guessed recording id",
        "stop with traversal in the id", "stop without a key",
    ],
)  # fmt: skip
def test_hostile_requests(case: str, service: Service, orgs: dict[str, dict[str, Any]],
                          tmp_path: Path) -> None:  # fmt: skip
    a, b = orgs["acme"], orgs["globex"]
    ca = service.client(a["key"])
    b_track = b["tracks"][0]["track_id"]
    expect: int
    if case == "no key":
        r, expect = service.client(None).get("/v1/recordings"), 401
    elif case == "wrong key":
        r, expect = service.client("rk_not-a-key").get("/v1/recordings"), 401
    elif case == "another org's recording":
        r, expect = ca.get(f"/v1/recordings/{b['recording_id']}/tracks"), 404
    elif case == "another org's track conversion":
        r, expect = ca.post(f"/v1/tracks/{b_track}/conversions", json={"mode": "remux"}), 404
    elif case == "another org's job id":
        r, expect = ca.get(f"/v1/jobs/{b['job_id']}"), 404
    elif case == "guessed recording id":
        r, expect = ca.get("/v1/recordings/rec_000000000000000000000000"), 404
    elif case == "path traversal in a recording id":
        r, expect = ca.get("/v1/recordings/..%2F..%2Fetc%2Fpasswd/tracks"), 404
    elif case == "path traversal in a track id":
        r, expect = ca.post("/v1/tracks/..%2F..%2Fconversions/conversions", json={}), 404
    elif case == "path traversal in a job id":
        r, expect = ca.get("/v1/jobs/..%2F" + b["job_id"]), 404
    elif case == "traversal in the room":
        r, expect = upload(ca, room="../../etc"), 422
    elif case == "participants not JSON":
        r, expect = upload(ca, participants="{nope"), 422
    elif case == "malformed JSON body":
        r = ca.post("/v1/recordings", content=b'{"room": 3',
                    headers={"content-type": "application/json"})  # fmt: skip
        expect = 422
    elif case == "unknown conversion mode":
        r, expect = ca.post(f"/v1/tracks/{a['tracks'][0]['track_id']}/conversions",
                            json={"mode": "gif"}), 422  # fmt: skip
    elif case == "oversized upload":
        big = tmp_path / "big.zip"
        big.write_bytes(bytes(MAX_UPLOAD + 1))
        r, expect = upload(ca, big), 413
    elif case == "oversized upload without a length":

        def chunks() -> Iterator[bytes]:
            yield b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.zip"\r\n\r\n'
            for _ in range(6):
                yield bytes(1 << 20)

        r = ca.post("/v1/recordings", content=chunks(),
                    headers={"content-type": "multipart/form-data; boundary=x"})  # fmt: skip
        expect = 413
    elif case == "zip bomb":
        r, expect = upload(ca, _zip_bomb(tmp_path)), 422
    elif case == "not an archive":
        junk = tmp_path / "junk.zip"
        junk.write_bytes(b"this is not a recording" * 100)
        r, expect = upload(ca, junk), 422
    elif case in ("source on 127.0.0.1", "source on 169.254.169.254"):
        host = case.split()[-1]
        r = ca.post("/v1/recordings", json={"source": f"https://{host}/latest/meta-data/x.zip",
                                            "room": "r"})  # fmt: skip
        expect = 422
        assert "loopback, link-local or private" in r.json()["detail"]
    elif case == "source not allowed":
        r, expect = ca.post("/v1/recordings", json={"source": "s3://other-bucket/x.zip",
                                                    "room": "r"}), 422  # fmt: skip
    elif case == "source with a scheme not allowed":
        r, expect = ca.post("/v1/recordings", json={"source": "file:///etc/passwd",
                                                    "room": "r"}), 422  # fmt: skip
    elif case == "expired signed URL":
        org_a = _org_id(service, a["key"])
        track = a["tracks"][0]["track_id"]
        fresh = httpx.get(_signed(service, "track", track, org_a, int(time.time()) + 60))
        assert fresh.status_code == 200
        r, expect = httpx.get(_signed(service, "track", track, org_a, int(time.time()) - 1)), 404
    elif case == "signed URL replayed for another org":
        url = a["tracks"][0]["download_url"].replace(_org_id(service, a["key"]),
                                                     _org_id(service, b["key"]))  # fmt: skip
        r, expect = httpx.get(url), 404
    elif case == "tampered signature":
        url = a["tracks"][0]["download_url"]
        r, expect = httpx.get(url[:-4] + ("0000" if not url.endswith("0000") else "1111")), 404
    elif case == "another org's MP4":
        # A's key asks for B's conversion job's file under A's own signature: not found.
        org_a = _org_id(service, a["key"])
        r, expect = httpx.get(_signed(service, "job", b["job_id"], org_a,
                                      int(time.time()) + 60)), 404  # fmt: skip
    elif case == "stop another org's recording":
        r, expect = ca.post(f"/v1/recordings/{b['recording_id']}/stop"), 404
        with service.client(b["key"]) as cb:  # and B's pipeline was not run again
            assert cb.get(f"/v1/jobs/{b['job_id']}").json()["state"] == "done"
    elif case == "stop a guessed recording id":
        r, expect = ca.post("/v1/recordings/rec_000000000000000000000000/stop"), 404
    elif case == "stop with traversal in the id":
        r, expect = ca.post("/v1/recordings/..%2F..%2Fetc/stop"), 404
    elif case == "stop without a key":
        r, expect = service.client(None).post(f"/v1/recordings/{a['recording_id']}/stop"), 401
    else:
        raise AssertionError(case)
    assert r.status_code == expect, (case, r.status_code, r.text)
    body = r.json()
    assert isinstance(body["detail"], str) and "Traceback" not in r.text
    assert b["recording_id"] not in r.text or case == "guessed recording id"
    # Nothing hostile reached the job list or another org's rows.
    assert len(ca.get("/v1/recordings").json()["recordings"]) == 1


def test_stop_runs_the_pipeline_again_and_completes_the_composed_video(
    service: Service, orgs: dict[str, dict[str, Any]]
) -> None:
    """The ingest ran the whole pipeline; a stop after the recorder left the composed video as
    a pending upload (a `parts/` folder on this folder storage) finalizes only that, keeps the
    tracks and their ids, and records the video in the recording's metadata document."""
    a = orgs["acme"]
    org_id, rid = _org_id(service, a["key"]), a["recording_id"]
    recording = service.storage / org_id / "recordings" / rid
    doc = json.loads((recording / "metadata.json").read_text())
    assert all(doc["steps"][s]["state"] == "done" for s in STEPS)
    parts = [bytes(range(256)) * 4096, b"tail" * 100]
    (recording / "composed" / "parts").mkdir(parents=True)
    for i, data in enumerate(parts, 1):
        (recording / "composed" / "parts" / f"{i:05d}").write_bytes(data)
    with service.client(a["key"]) as c:
        r = c.post(f"/v1/recordings/{rid}/stop")
        assert r.status_code == 202, r.text
        assert r.json() == {"job_id": a["job_id"], "recording_id": rid}
        job = wait_job(c, a["job_id"])
        assert job["state"] == "done", job
        assert job["result"]["steps_ran"] == ["finalize"]
        tracks = c.get(f"/v1/recordings/{rid}/tracks").json()["tracks"]
    assert [t["track_id"] for t in tracks] == [t["track_id"] for t in a["tracks"]]
    (composed,) = json.loads((recording / "metadata.json").read_text())["composed"]
    assert composed["bytes"] == sum(map(len, parts))
    md5s = b"".join(hashlib.md5(p).digest() for p in parts)
    assert composed["etag"] == f"{hashlib.md5(md5s).hexdigest()}-2"
    assert (recording / "composed" / "composed.mp4").read_bytes() == b"".join(parts)
    assert not (recording / "composed" / "parts").exists()


def test_openapi_docs_and_health(service: Service) -> None:
    anon = service.client(None)
    assert anon.get("/healthz").json() == {"ok": True}
    assert "swagger" in anon.get("/docs").text.lower()
    paths = anon.get("/openapi.json").json()["paths"]
    for path in ("/v1/recordings", "/v1/recordings/{recording_id}/tracks",
                 "/v1/recordings/{recording_id}/stop",
                 "/v1/tracks/{track_id}/conversions", "/v1/jobs/{job_id}"):  # fmt: skip
        assert path in paths


def test_api_keys_are_stored_hashed(service: Service, orgs: dict[str, dict[str, Any]]) -> None:
    key = orgs["acme"]["key"]
    assert key.startswith("rk_") and len(key) > 40
    for f in service.db.parent.glob("rawcore.sqlite*"):
        assert key.encode() not in f.read_bytes()


def test_worker_process_runs_ingest_and_stops_with_the_server(tmp_path: Path) -> None:
    import subprocess

    svc = start_service(tmp_path, "--worker-process")
    try:
        key = create_org(svc.db, "acme")
        with svc.client(key) as c:
            r = upload(c).json()
            assert wait_job(c, r["job_id"])["state"] == "done"
            assert len(c.get(f"/v1/recordings/{r['recording_id']}/tracks").json()["tracks"]) == 17
    finally:
        svc.stop()
    time.sleep(0.5)
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert not [line for line in ps.splitlines() if "--service" in line and str(svc.db) in line]
