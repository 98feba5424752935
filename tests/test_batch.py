"""`rawcore batch`: many recordings, one command, on the local pool, on Ray and against S3.

The recordings are copies of `examples/sample-call.zip` (made by GStreamer's payloaders) as a
ZIP, a tar.gz and an extracted folder. A batch's outputs must be those of `rawcore process-all`
run on its own (manifests equal, decoded audio equal), each recording in its own folder; a
rerun skips what is complete; a worker killed in the middle of an attempt is retried and
leaves complete outputs, never a half-written or duplicated folder; a failure is reported
with its reason and exit 6, never lost.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from helpers.audio_truth import av_available, decode_audio
from rawcore.batch.deliver import S3Destination
from rawcore.batch.plan import BatchItem, from_dir, from_list, recording_name
from rawcore.batch.pool import LocalPool
from rawcore.batch.task import CommandRun, RecordingTask, run_all
from rawcore.cli.batch import run_recording
from rawcore.cli.main import run
from rawcore.errors import InputError
from s3server import S3Server

SAMPLE = Path(__file__).resolve().parents[1] / "examples" / "sample-call.zip"
COMMAND = ("process-all", "--no-qa")


def rawcore(
    *args: str | Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rawcore", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def _make_inputs(folder: Path) -> Path:
    """call-zip.zip, call-tgz.tar.gz and call-dir/ (extracted), plus things that are not
    recordings: a text file and an empty folder."""
    folder.mkdir(parents=True)
    shutil.copy(SAMPLE, folder / "call-zip.zip")
    with zipfile.ZipFile(SAMPLE) as z:
        z.extractall(folder / "call-dir")
    with tarfile.open(folder / "call-tgz.tar.gz", "w:gz") as tar:
        for member in sorted((folder / "call-dir").rglob("*")):
            tar.add(member, arcname=member.relative_to(folder / "call-dir").as_posix(),
                    recursive=False)  # fmt: skip
    (folder / "notes.txt").write_text("not a recording\n")
    (folder / "empty").mkdir()
    return folder


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _make_inputs(tmp_path_factory.mktemp("batch") / "in")


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`rawcore process-all` on the sample, on its own."""
    out = tmp_path_factory.mktemp("ref") / "out"
    proc = rawcore(*COMMAND, "--input-file", SAMPLE, "--output", out)
    assert proc.returncode == 0, proc.stderr
    return out


def files(folder: Path) -> dict[str, int]:
    return {p.relative_to(folder).as_posix(): p.stat().st_size for p in folder.rglob("*")}


def manifest(folder: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((folder / "manifest.json").read_text())
    return doc


def assert_same_as_reference(out: Path, reference: Path) -> None:
    assert sorted(files(out)) == sorted(files(reference))
    assert manifest(out) == manifest(reference)
    if av_available():  # the media itself, decoded: the mix and one participant
        for name in sorted(files(reference)):
            if name.endswith(".mp3") or "user_3_session_1_audio_only" in name:
                ours, theirs = decode_audio(out / name), decode_audio(reference / name)
                assert ours.errors == theirs.errors == 0
                assert ours.samples.shape == theirs.samples.shape
                assert (ours.samples == theirs.samples).all(), name


def batch_json(*args: str | Path) -> tuple[int, dict[str, Any]]:
    """`rawcore batch ... --json` in this process (the Ray tests need its Ray instance)."""
    buf = io.StringIO()
    with redirect_stdout(buf):
        code = run(["batch", *map(str, args)])
    return code, json.loads(buf.getvalue())


# -- planning ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "name"),
    [
        ("calls/a.zip", "a"),
        ("calls/b.tar.gz", "b"),
        ("calls/c.TGZ", "c"),
        ("calls/d.tar", "d"),
        ("calls/extracted/", "extracted"),
        ("s3://bucket/day/e.tar.gz", "e"),
        ("https://host/x/f.zip?X-Amz-Signature=abc", "f"),
        ("calls/name.with.dots.zip", "name.with.dots"),
    ],
)
def test_a_recording_is_named_after_its_archive_without_the_extension(
    source: str, name: str
) -> None:
    assert recording_name(source) == name


@pytest.mark.parametrize("source", ["calls/.zip", "s3://bucket/", "calls/.hidden"])
def test_a_source_without_a_usable_name_is_refused(source: str) -> None:
    with pytest.raises(InputError):
        recording_name(source)


def test_the_list_skips_comments_and_blank_lines(tmp_path: Path) -> None:
    listing = tmp_path / "calls.txt"
    listing.write_text(
        "# today's calls\n\n/data/a.zip\n  s3://bucket/b.tar.gz   # from S3\n"
        "https://host/c.zip?sig=1#frag\n"
    )
    assert from_list(listing) == [
        BatchItem("/data/a.zip", "a"),
        BatchItem("s3://bucket/b.tar.gz", "b"),
        BatchItem("https://host/c.zip?sig=1#frag", "c"),
    ]


def test_two_recordings_with_one_name_are_refused_before_anything_runs(tmp_path: Path) -> None:
    listing = tmp_path / "calls.txt"
    listing.write_text("/day1/call.zip\n/day2/call.tar.gz\n")
    with pytest.raises(InputError, match="would both write call/"):
        from_list(listing)


def test_a_folder_holds_its_archives_and_extracted_recordings(inputs: Path) -> None:
    assert [i.name for i in from_dir(inputs)] == ["call-dir", "call-tgz", "call-zip"]


# -- the local pool, end to end ------------------------------------------------------------------


def test_each_recording_gets_the_outputs_of_process_all_in_its_own_folder(
    inputs: Path, reference: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    proc = rawcore("batch", "--input-dir", inputs, "--output", out, "--json", *COMMAND)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["schema"] == "rawcore.batch/1"
    assert (summary["done"], summary["skipped"], summary["failed"]) == (3, 0, 0)
    assert [
        (r["input"], r["output"], r["outcome"], r["reason"]) for r in summary["recordings"]
    ] == [
        (str(inputs / n), str(out / n.split(".")[0]), "done", None)
        for n in ("call-dir", "call-tgz.tar.gz", "call-zip.zip")
    ]
    assert sorted(p.name for p in out.iterdir()) == ["call-dir", "call-tgz", "call-zip"]
    for name in ("call-dir", "call-tgz", "call-zip"):
        assert_same_as_reference(out / name, reference)

    # A rerun skips what is complete; --force redoes it.
    proc = rawcore("batch", "--input-dir", inputs, "--output", out, "--json", *COMMAND)
    again = json.loads(proc.stdout)
    assert (proc.returncode, again["done"], again["skipped"]) == (0, 0, 3)
    assert {r["reason"] for r in again["recordings"]} == {"outputs and manifest exist"}
    (out / "call-zip" / "manifest.json").unlink()  # an incomplete folder is redone
    proc = rawcore("batch", "--input-dir", inputs, "--output", out, "--json", *COMMAND)
    assert (json.loads(proc.stdout)["done"], json.loads(proc.stdout)["skipped"]) == (1, 2)
    assert_same_as_reference(out / "call-zip", reference)
    proc = rawcore("batch", "--input-dir", inputs, "--output", out, "--force", "--json", *COMMAND)
    assert json.loads(proc.stdout)["done"] == 3
    assert sorted(p.name for p in out.iterdir()) == ["call-dir", "call-tgz", "call-zip"]


def test_a_bad_recording_is_reported_with_its_reason_and_the_rest_complete(
    inputs: Path, tmp_path: Path
) -> None:
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04 this is not a zip")
    listing = tmp_path / "calls.txt"
    listing.write_text(f"{inputs / 'call-zip.zip'}\n{tmp_path / 'broken.zip'}\n"
                       f"{tmp_path / 'missing.zip'}\n")  # fmt: skip
    out = tmp_path / "out"
    proc = rawcore("batch", "--input-list", listing, "--output", out, "--json", "extract-audio")
    assert proc.returncode == 6, proc.stderr
    summary = json.loads(proc.stdout)
    assert (summary["done"], summary["failed"]) == (1, 2)
    broken, missing = summary["recordings"][1:]
    assert broken["outcome"] == missing["outcome"] == "failed"
    assert "broken.zip" in broken["reason"] and broken["attempts"] == 1  # bad input: not retried
    assert "missing.zip" in missing["reason"]
    assert sorted(p.name for p in out.iterdir()) == ["call-zip"]  # nothing half-written


@pytest.mark.parametrize(
    ("case", "args", "message"),
    [
        ("the command's input is the batch's", ["--input-file", "x.zip"], "--input-file"),
        ("the command's output is the batch's", ["--output=elsewhere"], "--output"),
        ("an option the command does not have", ["--no-such-option"], "unrecognized"),
        ("a bad value for a command option", ["--mix-format", "aiff"], "aiff"),
    ],
)
def test_a_bad_command_line_is_a_usage_error_before_anything_runs(
    inputs: Path, tmp_path: Path, case: str, args: list[str], message: str
) -> None:
    proc = rawcore("batch", "--input-dir", inputs, "--output", tmp_path / "o", "process-all",
                   *args)  # fmt: skip
    assert proc.returncode == 2, case
    (line,) = proc.stderr.splitlines()
    assert line.startswith("rawcore: error:") and message in line, (case, line)
    assert not (tmp_path / "o").exists()


def test_ctrl_c_stops_the_batch_its_workers_and_their_staging_folders(tmp_path: Path) -> None:
    import time

    inputs = tmp_path / "in"
    inputs.mkdir()
    for i in range(12):
        shutil.copy(SAMPLE, inputs / f"call-{i:02d}.zip")
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "rawcore", "batch", "--input-dir", str(inputs), "--output",
         str(out), *COMMAND],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not (out.is_dir() and any(p.name.startswith(".") for p in out.iterdir())):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    _, err = proc.communicate(timeout=60)
    assert (proc.returncode, err) == (130, "rawcore: interrupted\n")
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no staging left
    for done in out.iterdir():  # what finished before the interrupt is complete
        assert (done / "manifest.json").is_file()
    deadline = time.monotonic() + 10  # the fork server leaves when its parent's pipe closes
    with pytest.raises(ProcessLookupError):  # no process of the batch outlives it
        while time.monotonic() < deadline:
            os.killpg(proc.pid, 0)
            time.sleep(0.1)


# -- a worker killed in the middle of an attempt --------------------------------------------------


@dataclass(frozen=True)
class KillFirstAttempt:
    """A test-only command: the first attempt writes every output (manifest included) into its
    staging folder, adds a stray file, and is SIGKILLed before the batch can publish it; later
    attempts run the real command."""

    marker: str
    every_time: bool = False

    def _first(self) -> bool:
        """True for one attempt only, even when two start at once (create-exclusive)."""
        try:
            os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return False
        return True

    def __call__(self, argv: list[str]) -> CommandRun:
        if self.every_time or self._first():
            run_recording(argv)
            out = Path(argv[argv.index("--output") + 1])
            (out / "stray-half-written.mkv").write_bytes(b"\x1a\x45\xdf\xa3")
            os.kill(os.getpid(), signal.SIGKILL)
        return run_recording(argv)


def test_a_killed_worker_is_retried_and_leaves_complete_outputs_once(
    inputs: Path, reference: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    tasks = [
        RecordingTask(BatchItem(str(inputs / "call-zip.zip"), "call-zip"), str(out), COMMAND),
        RecordingTask(BatchItem(str(inputs / "call-dir"), "call-dir"), str(out), COMMAND),
    ]
    pool = LocalPool(KillFirstAttempt(str(tmp_path / "killed-once")), workers=2)
    outcomes = run_all(tasks, pool, retries=2)
    assert [(o.outcome, o.reason) for o in outcomes] == [("done", None), ("done", None)]
    assert sorted(o.attempts for o in outcomes) == [1, 2]  # one of them was killed once
    assert sorted(p.name for p in out.iterdir()) == ["call-dir", "call-zip"]  # no staging left
    for name in ("call-dir", "call-zip"):
        assert_same_as_reference(out / name, reference)  # no stray file, nothing twice
    assert outcomes[0].manifest == manifest(reference)


def test_a_worker_that_always_dies_is_reported_after_the_retries(
    inputs: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    task = RecordingTask(BatchItem(str(inputs / "call-zip.zip"), "call-zip"), str(out), COMMAND)
    pool = LocalPool(KillFirstAttempt(str(tmp_path / "m"), every_time=True), workers=1)
    (outcome,) = run_all([task], pool, retries=1)
    assert (outcome.outcome, outcome.attempts) == ("failed", 2)
    assert outcome.reason == "the worker died: killed by SIGKILL"
    assert outcome.output == str(out / "call-zip")
    assert list(out.iterdir()) == []


# -- S3 in and out -------------------------------------------------------------------------------


class RecordingStorage:
    """Stands in for S3Storage and records the order of its calls."""

    def __init__(self, keys: list[str]) -> None:
        self.objects = set(keys)
        self.calls: list[tuple[str, str]] = []

    def describe(self, key: str) -> str:
        return f"s3://b/{key}"

    def exists(self, key: str) -> bool:
        return key in self.objects

    def put_file(self, key: str, src: Path) -> None:
        assert src.is_file()
        self.calls.append(("put", key))
        self.objects.add(key)

    def delete(self, key: str) -> None:
        self.calls.append(("delete", key))
        self.objects.discard(key)

    def keys(self, prefix: str) -> list[str]:
        return sorted(k for k in self.objects if k.startswith(prefix))


def test_on_s3_the_old_manifest_goes_first_stale_objects_go_and_the_manifest_comes_last(
    tmp_path: Path,
) -> None:
    staging = tmp_path / "staging"
    staging.mkdir()
    for name in ("manifest.json", "a.mkv", "b.mp3"):
        (staging / name).write_text(name)
    storage = RecordingStorage(["r/manifest.json", "r/a.mkv", "r/old.mkv", "other/x"])
    S3Destination(storage).publish(staging, "r")  # type: ignore[arg-type]
    assert storage.calls == [
        ("delete", "r/manifest.json"),
        ("put", "r/a.mkv"),
        ("put", "r/b.mp3"),
        ("delete", "r/old.mkv"),
        ("put", "r/manifest.json"),
    ]
    assert not staging.exists()


@pytest.mark.s3
def test_a_batch_from_an_s3_prefix_to_an_s3_prefix(
    s3_server: S3Server, s3_bucket: str, inputs: Path, reference: Path, tmp_path: Path
) -> None:
    client = s3_server.client()
    for key in ("call-zip.zip", "call-tgz.tar.gz", "notes.txt"):
        client.upload_file(str(inputs / key), s3_bucket, f"batch-in/{key}")
    env = {**os.environ, "RAWCORE_S3_ENDPOINT": s3_server.endpoint}
    args = ("batch", "--input-s3", f"s3://{s3_bucket}/batch-in/",
            "--output", f"s3://{s3_bucket}/batch-out", "--json", *COMMAND)  # fmt: skip
    proc = rawcore(*args, env=env)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert [(r["output"], r["outcome"]) for r in summary["recordings"]] == [
        (f"s3://{s3_bucket}/batch-out/call-tgz/", "done"),
        (f"s3://{s3_bucket}/batch-out/call-zip/", "done"),
    ]
    for name in ("call-tgz", "call-zip"):
        got = tmp_path / name
        listed = client.list_objects_v2(Bucket=s3_bucket, Prefix=f"batch-out/{name}/")
        for obj in listed["Contents"]:
            dest = got / obj["Key"].split("/", 2)[2]
            dest.parent.mkdir(parents=True, exist_ok=True)
            client.download_file(s3_bucket, obj["Key"], str(dest))
        assert_same_as_reference(got, reference)
    proc = rawcore(*args, env=env)
    assert (json.loads(proc.stdout)["skipped"], proc.returncode) == (2, 0)


# -- Ray -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """A local Ray instance on 2 CPUs for this module's Ray tests, shut down after them."""
    ray = pytest.importorskip("ray")
    # address="local": a fresh instance even when `ray start` runs a cluster on this machine.
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


def test_ray_and_the_local_pool_give_the_same_results(
    local_ray: None, inputs: Path, reference: Path, tmp_path: Path
) -> None:
    results = {}
    for how, extra in (("pool", []), ("ray", ["--ray", "auto"])):
        out = tmp_path / how
        code, summary = batch_json("--input-dir", inputs, "--output", out, *extra, "--json",
                                   *COMMAND)  # fmt: skip
        assert (code, summary["done"]) == (0, 3), summary
        results[how] = {n: manifest(out / n) for n in ("call-dir", "call-tgz", "call-zip")}
    assert results["ray"] == results["pool"]
    assert_same_as_reference(tmp_path / "ray" / "call-tgz", reference)


def test_a_killed_ray_worker_is_retried(
    local_ray: None, inputs: Path, reference: Path, tmp_path: Path
) -> None:
    import ray.cloudpickle
    from rawcore.batch.on_ray import RayRunner

    # Ray's workers cannot import this test module: the test-only command travels by value.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    out = tmp_path / "out"
    task = RecordingTask(BatchItem(str(inputs / "call-zip.zip"), "call-zip"), str(out), COMMAND)
    try:
        runner = RayRunner(KillFirstAttempt(str(tmp_path / "killed-once")), address="auto")
        (outcome,) = run_all([task], runner, retries=2)
        runner.close()
    finally:
        ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    assert (outcome.outcome, outcome.attempts) == ("done", 2), outcome.reason
    assert sorted(p.name for p in out.iterdir()) == ["call-zip"]
    assert_same_as_reference(out / "call-zip", reference)


# -- the service's job workers on Ray (`rawcore serve --ray`, `rawcore worker --ray`) -------------


def report_pid(job: Any, progress: Any) -> dict[str, Any]:
    return {"pid": os.getpid()}


def refuse_input(job: Any, progress: Any) -> dict[str, Any]:
    raise InputError("that is not a recording")


@pytest.fixture
def by_value() -> Iterator[None]:
    """Ray's workers cannot import this test module: its test-only handlers travel by value."""
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        yield
    finally:
        ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


@pytest.mark.parametrize(
    ("case", "handler", "state", "error_kind"),
    [
        ("the work runs in a Ray worker, not here", report_pid, "done", None),
        ("an input error stays one: final at once", refuse_input, "failed", "input"),
    ],
)
def test_a_job_handler_on_ray_keeps_its_contract(
    local_ray: None, by_value: None, tmp_path: Path, case: str, handler: Any, state: str,
    error_kind: str | None,
) -> None:  # fmt: skip
    from rawcore.jobs.on_ray import on_ray
    from rawcore.jobs.pool import WorkerPool
    from rawcore.jobs.store import JobStore

    store = JobStore(tmp_path / "jobs.sqlite")
    job, _ = store.submit("convert", "acme", "cd" * 32, {})
    pool = WorkerPool(store, {"convert": on_ray(handler, address="auto")}, threads=1)
    pool.run_once()
    row = store.get(job.id)
    assert row is not None and (row.state, row.error_kind, row.attempts) == (state, error_kind, 1)
    if state == "done":
        assert row.result is not None and row.result["pid"] != os.getpid(), case


def test_a_conversion_job_runs_on_ray(local_ray: None, tmp_path: Path) -> None:
    from rawcore.jobs import JobStore, submit_conversion
    from rawcore.jobs.conversion import run_conversion
    from rawcore.jobs.on_ray import on_ray
    from rawcore.jobs.pool import WorkerPool

    db = tmp_path / "jobs.sqlite"
    job = submit_conversion(SAMPLE, track_id="trk-d35908c4", storage=tmp_path / "storage",
                            org="acme", mode="remux", db=db, start_workers=False)  # fmt: skip
    WorkerPool(JobStore(db), {"convert": on_ray(run_conversion, address="auto")}).run_once()
    status = job.wait(60)
    assert status.state == "done", status.error
    assert status.output is not None and Path(status.output).stat().st_size > 0
    if av_available():
        import av

        with av.open(status.output) as mp4:
            assert mp4.streams and mp4.duration is not None and mp4.duration > 0
