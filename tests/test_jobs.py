"""Conversions as cached background jobs on the org-scoped storage layout: a killed worker
loses nothing, a repeated request does no work, two organizations never share a key or a
cache entry, on a local folder and on S3; ids are validated once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from helpers.audio_truth import av_available
from rawcore.errors import InputError
from rawcore.jobs import JobStore, submit_conversion
from rawcore.storage import FolderStorage, OrgLayout, S3Storage, open_storage

pytestmark = pytest.mark.skipif(not av_available(), reason="needs PyAV")


def make_clip(path: Path, *, seconds: float = 2.0, fps: int = 30, size: tuple[int, int] = (320,
              180), seed: int = 0) -> Path:  # fmt: skip
    """An H.264 + Opus Matroska file of noise pictures and a tone (noise: slow to encode)."""
    import av

    rng = np.random.default_rng(seed)
    with av.open(str(path), "w", format="matroska") as out:
        v = out.add_stream("libx264", rate=fps)
        v.width, v.height, v.pix_fmt = size[0], size[1], "yuv420p"
        v.codec_context.options = {"preset": "ultrafast"}
        a = out.add_stream("libopus", rate=48_000, layout="mono")
        for n in range(round(seconds * fps)):
            img = rng.integers(0, 255, (size[1] * 3 // 2, size[0]), dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(img, format="yuv420p")
            frame.pts, frame.time_base = n, Fraction(1, fps)
            for p in v.encode(frame):
                out.mux(p)
        t = np.arange(round(seconds * 48_000)) / 48_000
        tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        for i in range(0, tone.size - 960, 960):
            frame = av.AudioFrame.from_ndarray(tone[None, i : i + 960], format="flt",
                                               layout="mono")  # fmt: skip
            frame.sample_rate, frame.pts = 48_000, i
            for p in a.encode(frame):
                out.mux(p)
        for s in (v, a):
            for p in s.encode(None):
                out.mux(p)
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(tmp_path_factory.mktemp("clip") / "clip.mkv")


@pytest.mark.parametrize(
    "bad", ["", "a/b", "..", "../x", "x\\y", "tab\there", "nul\x00", "x" * 129, "..hidden"]
)
def test_hostile_ids_are_refused_before_any_key_is_built(bad: str) -> None:
    with pytest.raises(InputError):
        OrgLayout(bad)
    with pytest.raises(InputError):
        OrgLayout("acme").raw("room", bad, "alice", "a.webm")


def test_the_layout_puts_every_key_under_its_organization() -> None:
    layout = OrgLayout("acme")
    assert layout.composed("rec1", "call.mp4") == "acme/recordings/rec1/composed/call.mp4"
    assert layout.raw("default-c1", "rec1", "alice", "cam.webm") == (
        "acme/raw/default-c1/rec1/alice/cam.webm"
    )
    assert layout.stitched("default-c1", "rec1", "alice", "cam.webm") == (
        "acme/raw/default-c1/rec1/alice/stitched/cam.webm"
    )
    assert layout.conversion("ab" * 32) == f"acme/conversions/{'ab' * 32}.mp4"
    with pytest.raises(InputError):
        layout.conversion("../other/conversions/x")


def test_a_repeated_request_is_a_cache_hit_without_decoding(
    tmp_path: Path, clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import av

    kw = {"storage": tmp_path / "store", "org": "acme", "db": tmp_path / "jobs.sqlite"}
    first = submit_conversion(clip, **kw).wait(120)  # type: ignore[arg-type]
    assert first.state == "done" and not first.cached and first.output is not None
    assert Path(first.output).is_file()
    opened: list[str] = []
    real_open = av.open

    def counting_open(*args: object, **kwargs: object) -> object:
        opened.append(str(args[0]))
        return real_open(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(av, "open", counting_open)
    again = submit_conversion(clip, **kw).wait(30)  # type: ignore[arg-type]
    assert again.state == "done" and again.cached and again.output == first.output
    # Another job store (another host's queue) over the same storage: the worker finds the MP4.
    other_db = submit_conversion(clip, **{**kw, "db": tmp_path / "other.sqlite"}).wait(30)  # type: ignore[arg-type]
    assert other_db.state == "done" and other_db.cached
    assert opened == []  # nothing was demuxed, decoded or encoded


def test_two_concurrent_requests_run_once(tmp_path: Path, clip: Path) -> None:
    kw = {"storage": tmp_path / "store", "org": "acme", "db": tmp_path / "jobs.sqlite",
          "mode": "remux"}  # fmt: skip
    jobs = []
    threads = [
        threading.Thread(target=lambda: jobs.append(submit_conversion(clip, **kw)))  # type: ignore[arg-type]
        for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({j.id for j in jobs}) == 1
    assert all(j.wait(60).state == "done" for j in jobs)
    row = JobStore(tmp_path / "jobs.sqlite").get(jobs[0].id)
    assert row is not None and row.attempts == 1


def _isolated(storage: str, clip: Path, db: Path, s3_endpoint: str | None = None) -> None:
    a = submit_conversion(clip, storage=storage, org="org-a", db=db, mode="remux",
                          s3_endpoint=s3_endpoint).wait(60)  # fmt: skip
    b = submit_conversion(clip, storage=storage, org="org-b", db=db, mode="remux",
                          s3_endpoint=s3_endpoint).wait(60)  # fmt: skip
    assert a.state == b.state == "done"
    assert a.key != b.key and not b.cached  # the second org did its own job, learned nothing
    store = open_storage(storage, s3_endpoint=s3_endpoint)
    assert store.keys("org-a/") == [f"org-a/conversions/{a.key}.mp4"]
    assert store.keys("org-b/") == [f"org-b/conversions/{b.key}.mp4"]


def test_two_organizations_are_isolated_on_a_folder(tmp_path: Path, clip: Path) -> None:
    _isolated(str(tmp_path / "store"), clip, tmp_path / "jobs.sqlite")


@pytest.mark.s3
def test_two_organizations_are_isolated_on_s3(
    tmp_path: Path, clip: Path, s3_server: object, s3_bucket: str
) -> None:
    endpoint = s3_server.endpoint  # type: ignore[attr-defined]
    _isolated(f"s3://{s3_bucket}/tenants", clip, tmp_path / "jobs.sqlite", endpoint)
    s3 = S3Storage(s3_bucket, "tenants", endpoint_url=endpoint)
    assert all(k.startswith(("org-a/", "org-b/")) for k in s3.keys("org-a/") + s3.keys("org-b/"))


@pytest.mark.s3
def test_s3_errors_are_one_line(
    tmp_path: Path, clip: Path, s3_server: object, s3_bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    endpoint = s3_server.endpoint  # type: ignore[attr-defined]
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    job = submit_conversion(
        clip,
        storage=f"s3://{s3_bucket}/denied",
        org="acme",
        db=tmp_path / "jobs.sqlite",
        mode="remux",
        s3_endpoint=endpoint,
    )
    st = job.wait(60)
    assert st.state == "failed" and st.error is not None and "\n" not in st.error
    assert "access denied" in st.error and s3_bucket in st.error


def test_folder_writes_are_atomic(tmp_path: Path, clip: Path) -> None:
    store = FolderStorage(tmp_path)
    store.put_file("acme/conversions/x.mp4", clip)
    assert [p.name for p in (tmp_path / "acme" / "conversions").iterdir()] == ["x.mp4"]
    with pytest.raises(InputError):
        store.put_file("../escape.mp4", clip)


def test_a_killed_worker_leaves_no_output_and_the_job_completes_after_restart(
    tmp_path: Path,
) -> None:
    src = make_clip(tmp_path / "long.mkv", seconds=12, size=(640, 360), seed=3)
    db, storage = tmp_path / "jobs.sqlite", tmp_path / "store"
    job = submit_conversion(src, storage=storage, org="acme", db=db, preset="slow",
                            start_workers=False)  # fmt: skip
    cmd = [sys.executable, "-m", "rawcore", "worker", "--db", str(db), "--lease", "1.5",
           "--threads", "1"]  # fmt: skip
    worker = subprocess.Popen(cmd, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while job.status().progress < 0.03 and time.monotonic() < deadline:
            time.sleep(0.05)
        st = job.status()
        assert st.state == "running" and 0 < st.progress < 1, st
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(10)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert job.status().state == "running"  # nobody knows yet: the lease has to run out
    assert FolderStorage(storage).keys("acme/") == []  # no partial MP4 under any key
    again = subprocess.Popen([*cmd, "--idle-exit", "2"], start_new_session=True)
    try:
        st = job.wait(180)
    finally:
        # The worker exits after 2 s idle; on a loaded host its shutdown can take a while.
        again.wait(120)
    row = JobStore(db).get(job.id)
    assert st.state == "done" and row is not None and row.attempts == 2
    assert st.output is not None and Path(st.output).is_file()
    assert FolderStorage(storage).keys("acme/") == [f"acme/conversions/{st.key}.mp4"]


def test_cli_convert_into_storage_is_cached_and_refuses_hostile_orgs(
    tmp_path: Path, clip: Path
) -> None:
    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "rawcore", "convert", str(clip), "--mode", "remux",
               "--storage", str(tmp_path / "store"), "--db", str(tmp_path / "jobs.sqlite"),
               *extra]  # fmt: skip
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120)

    first, again = run("--org", "acme"), run("--org", "acme")
    assert first.returncode == again.returncode == 0, first.stderr
    where = first.stdout.strip()
    assert where == again.stdout.strip() and Path(where).is_file()
    assert Path(where).relative_to(tmp_path / "store").parts[:2] == ("acme", "conversions")
    for org in ("../evil", "a/b", "x" * 200):
        bad = run("--org", org)
        lines = bad.stderr.strip().splitlines()
        assert bad.returncode == 3 and len(lines) == 1 and lines[0].startswith("rawcore: error:")
    assert sorted(p.name for p in (tmp_path / "store").iterdir()) == ["acme"]


def test_retries_are_bounded_and_the_reason_is_one_line(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite", lease_s=0.0, max_attempts=2)
    job, made = store.submit("convert", "acme", "ab" * 32, {"source": "x"})
    assert made and job.state == "queued"
    for attempt in (1, 2):  # each worker "dies": its lease (0 s) runs out at once
        claimed = store.claim(f"w{attempt}", ("convert",))
        assert claimed is not None and claimed.attempts == attempt
        time.sleep(0.01)
    assert store.claim("w3", ("convert",)) is None
    row = store.get(job.id)
    assert row is not None and row.state == "failed" and row.error_kind == "internal"
    assert row.error == "its worker stopped 2 times before it finished"
    again, made = store.submit("convert", "acme", "ab" * 32, {"source": "x"})
    assert not made and again.id == job.id and again.state == "queued"  # asked again: retried


@pytest.mark.s3
def test_cli_converts_a_media_file_from_s3(
    tmp_path: Path, clip: Path, s3_server: object, s3_bucket: str
) -> None:
    endpoint = s3_server.endpoint  # type: ignore[attr-defined]
    s3_server.client().upload_file(str(clip), s3_bucket, "raw/clip.mkv")  # type: ignore[attr-defined]

    def run(url: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "rawcore", "convert", url, "--mode", "remux",
               "--s3-endpoint", endpoint, "-o", str(tmp_path / "out" / "c.mp4")]  # fmt: skip
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=os.environ)

    ok = run(f"s3://{s3_bucket}/raw/clip.mkv")
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "out" / "c.mp4").is_file()
    missing = run(f"s3://{s3_bucket}/raw/none.mkv")
    lines = missing.stderr.strip().splitlines()
    assert missing.returncode == 3 and len(lines) == 1 and "no such S3 object" in lines[0]
