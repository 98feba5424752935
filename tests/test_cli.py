"""The `rawcore` CLI: stream-cli's list-tracks command lines, output formats, exit codes."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from helpers.gst import gst_available
from helpers.recording import RecordingInfo, multiparty_call, pack_targz, pack_zip
from rawcore.cli import ExitCode, main

pytestmark = pytest.mark.skipif(not gst_available(), reason="GStreamer is not installed")


@pytest.fixture(scope="module")
def call(tmp_path_factory: pytest.TempPathFactory) -> RecordingInfo:
    return multiparty_call(tmp_path_factory.mktemp("cli") / "rec", duration_s=4.0)


@pytest.fixture(scope="module")
def recording_tar_gz(call: RecordingInfo, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return pack_targz(call.root, tmp_path_factory.mktemp("cli-archives") / "recording.tar.gz")


@pytest.fixture(scope="module")
def recording_zip(call: RecordingInfo, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return pack_zip(call.root, tmp_path_factory.mktemp("cli-zip") / "recording.zip")


def rawcore(*args: str | Path) -> tuple[int, str, str]:
    """Run the installed console script, as a user would."""
    proc = subprocess.run(
        [sys.executable, "-m", "rawcore", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return proc.returncode, proc.stdout, proc.stderr


def run_main(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    code = exc.value.code
    assert isinstance(code, int)
    return code, out, err


# Every list-tracks line of the Stream raw-recording guide, with `rawcore` in place of
# `stream-cli video raw-recording`.
GUIDE_LINES = [
    "list-tracks --input-file recording.tar.gz",
    "list-tracks --input-file recording.tar.gz --format json",
    "list-tracks --input-file recording.tar.gz --format users",
    "list-tracks --input-file recording.tar.gz --track-type audio",
    "list-tracks --input-file call.tar.gz --format users",
]


@pytest.mark.parametrize("line", GUIDE_LINES)
def test_guide_command_lines_run(
    line: str, recording_tar_gz: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [str(recording_tar_gz) if a.endswith(".tar.gz") else a for a in shlex.split(line)]
    code, out, err = run_main(capsys, *args)
    assert code == ExitCode.OK, err
    assert out.strip()


def test_users_sessions_tracks_formats_print_one_id_per_line(
    call: RecordingInfo, recording_zip: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, users, _ = run_main(
        capsys, "list-tracks", "--input-file", recording_zip, "--format", "users"
    )
    assert users.splitlines() == ["user_1", "user_2", "user_3"]
    _, sessions, _ = run_main(
        capsys, "list-tracks", "--input-file", recording_zip, "--format", "sessions"
    )
    assert sessions.splitlines() == ["session_1", "session_2"]
    _, tracks, _ = run_main(
        capsys, "list-tracks", "--input-file", recording_zip, "--format", "tracks"
    )
    assert sorted(tracks.splitlines()) == sorted(t.track_id for t in call.tracks())


@pytest.mark.parametrize(
    ("track_type", "expected"),
    [
        ("audio", {"TRACK_TYPE_AUDIO", "TRACK_TYPE_SCREEN_SHARE_AUDIO"}),
        ("video", {"TRACK_TYPE_VIDEO", "TRACK_TYPE_SCREEN_SHARE"}),
        ("screenshare", {"TRACK_TYPE_SCREEN_SHARE", "TRACK_TYPE_SCREEN_SHARE_AUDIO"}),
    ],
)
def test_track_type_filter(
    track_type: str,
    expected: set[str],
    recording_zip: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run_main(
        capsys,
        "list-tracks",
        "--input-file",
        recording_zip,
        "--format",
        "json",
        "--track-type",
        track_type,
    )
    assert code == 0
    assert {t["track_type"] for t in json.loads(out)["tracks"]} == expected


def test_json_schema_is_complete_and_matches_truth(
    call: RecordingInfo, call_dir_arg: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_main(capsys, "list-tracks", *call_dir_arg, "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["schema"] == "rawcore.list-tracks/1"
    assert doc["call"]["call_id"] == "call-123"
    assert (doc["participant_count"], doc["session_count"]) == (3, 4)
    assert doc["track_count"] == len(call.tracks())
    keys = {
        "participant_id",
        "session_id",
        "track_id",
        "kind",
        "track_type",
        "screenshare",
        "codec",
        "segment_count",
        "declared_size",
        "start_unix_ms",
        "end_unix_ms",
        "start",
        "end",
        "duration_ms",
        "packets",
        "bytes",
        "expected_packets",
        "lost_packets",
        "loss_pct",
        "recovered_rtx",
        "duplicates",
        "reordered",
        "late",
        "jitter_ms",
        "sender_reports",
        "ssrcs",
        "segments",
    }
    for entry in doc["tracks"]:
        assert set(entry) == keys
        truth = call.track(
            entry["participant_id"], entry["segments"][0]["base_filename"], entry["session_id"]
        )
        assert entry["packets"] == truth.unique_packets
        assert entry["codec"] == truth.codec
        assert entry["duration_ms"] == truth.last_arrival_unix_ms - truth.first_arrival_unix_ms


@pytest.fixture
def call_dir_arg(call: RecordingInfo) -> list[str]:
    return ["--input-dir", str(call.root)]


def test_table_lists_every_track_with_stats(
    call: RecordingInfo, call_dir_arg: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_main(capsys, "list-tracks", *call_dir_arg)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("Call default:call-123")
    header = lines[2].split()
    assert header[:5] == ["USER", "SESSION", "TRACK", "TYPE", "CODEC"]
    assert {"LOSS%", "JITTER", "PACKETS", "DURATION"} <= set(header)
    assert len(lines) == 3 + len(call.tracks())


def test_console_script_runs_as_a_subprocess(recording_zip: Path) -> None:
    code, out, err = rawcore("list-tracks", "--input-file", recording_zip, "--format", "users")
    assert (code, err) == (0, "")
    assert out.split() == ["user_1", "user_2", "user_3"]


# --- errors: one line, the right exit code ------------------------------------------------


def _hostile_zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("../evil.rtpdump", b"x")
    return path


def _symlink_tar(path: Path) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        info = tarfile.TarInfo("user/session/audio_1.rtpdump")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        tf.addfile(info)
    return path


@pytest.mark.parametrize(
    ("make_args", "code", "message"),
    [
        (lambda p: ["--input-file", p / "nope.zip"], ExitCode.INPUT, "nope.zip"),
        (lambda p: ["--input-dir", p / "nodir"], ExitCode.INPUT, "no such directory"),
        (lambda p: ["--input-file", _hostile_zip(p / "slip.zip")], ExitCode.INPUT, "evil"),
        (lambda p: ["--input-file", _symlink_tar(p / "link.tar.gz")], ExitCode.INPUT, "link"),
        (lambda p: ["--input-dir", p], ExitCode.INPUT, "no .rtpdump captures"),
        (lambda p: ["--input-file", p], ExitCode.INPUT, "is a directory"),
        (
            lambda p: [
                "--input-file",
                (p / "junk.zip").write_bytes(b"PK\x03\x04junk") and p / "junk.zip",
            ],
            ExitCode.INPUT,
            "junk.zip",
        ),
    ],
    ids=[
        "missing-file",
        "missing-dir",
        "zip-slip",
        "tar-symlink",
        "empty-dir",
        "dir-as-file",
        "corrupt-zip",
    ],
)
def test_bad_inputs_fail_with_one_line(
    tmp_path: Path, make_args: object, code: int, message: str
) -> None:
    args = make_args(tmp_path)  # type: ignore[operator]
    rc, out, err = rawcore("list-tracks", *args)
    assert rc == code, err
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("rawcore: error: "), err
    assert message in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "args",
    [
        ["list-tracks"],
        ["list-tracks", "--input-file", "a.zip", "--input-dir", "b"],
        ["list-tracks", "--input-file", "a.zip", "--format", "xml"],
        ["no-such-command"],
    ],
    ids=["no-input", "two-inputs", "bad-format", "bad-command"],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    rc, _, err = rawcore(*args)
    assert rc == ExitCode.USAGE
    assert "Traceback" not in err


def test_unknown_commands_are_usage_errors() -> None:
    rc, _, err = rawcore("render-video", "--input-file", "x.zip", "--output", "out")
    assert rc == ExitCode.USAGE
    assert "invalid choice" in err


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["mix-audio", "--gain", "user_2"], "expected USER=DB"),
        (["mix-audio", "--sample-rate", "44100", "--format", "opus"], "not possible for opus"),
        (["mix-audio", "--sample-rate", "0"], "positive"),
        (["mix-audio", "--bitrate", "-5"], "positive"),
        (["mix-audio", "--bitrate", "9000"], "out of range"),
        (["mix-audio", "--format", "wav", "--bitrate", "64"], "wav is lossless"),
        (["process-all", "--mix-format", "flac", "--mix-bitrate", "64"], "flac is lossless"),
        (["process-all", "--mix-sample-rate", "7"], "not possible for mp3"),
        (["extract-audio", "--fill-gaps", "maybe"], "expected true or false"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_bad_option_values_are_usage_errors_that_create_nothing(
    recording_zip: Path, tmp_path: Path, args: list[str], says: str
) -> None:
    out = tmp_path / "out"
    rc, stdout, err = rawcore(args[0], "--input-file", recording_zip, "-o", out, *args[1:])
    assert rc == ExitCode.USAGE, err
    assert says in err and err.count("\n") == 1 and stdout == ""
    assert not out.exists()


@pytest.mark.parametrize("kind", ["file", "dir"])
def test_a_positional_path_is_the_input(
    call: RecordingInfo, recording_zip: Path, kind: str
) -> None:
    path = recording_zip if kind == "file" else call.root
    rc, out, err = rawcore("list-tracks", path, "--format", "users")
    assert rc == 0, err
    assert out.split() == ["user_1", "user_2", "user_3"]
    rc, _, err = rawcore("list-tracks", path, "--input-file", recording_zip)
    assert rc == ExitCode.USAGE and "once" in err


def test_a_folder_without_captures_says_so_whatever_else_it_holds(tmp_path: Path) -> None:
    folder = tmp_path / "downloads"
    folder.mkdir()
    (folder / "notes.txt").write_text("hello")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "secret").write_text("not a recording")
    (folder / "system").symlink_to(outside)  # unrelated links are not rawcore's business
    (folder / "secret").symlink_to(outside / "secret")
    rc, _, err = rawcore("list-tracks", "--input-dir", folder)
    assert rc == ExitCode.INPUT
    assert err.count("\n") == 1 and "no .rtpdump captures found" in err, err


# --- start-up: a command loads only what it uses ------------------------------------------

_LOADED = """
import contextlib, json, sys
from rawcore.cli.main import run
with contextlib.redirect_stdout(sys.stderr), contextlib.suppress(SystemExit):
    run(sys.argv[1:])
print(json.dumps(sorted(sys.modules)))
"""
_HEAVY = ("numpy", "av", "boto3", "botocore", "PIL", "rawcore.media.mix", "rawcore.pipeline")


def _modules_loaded_by(argv: list[str], tmp_path: Path) -> list[str]:
    """Every module `rawcore ARGV` has loaded when it ends ({sample}: the sample call's ZIP,
    {folder}: the same recording extracted into a folder, {out}: an output folder)."""
    sample = Path(__file__).resolve().parents[1] / "examples" / "sample-call.zip"
    folder = tmp_path / "recording"
    if any("{folder}" in a for a in argv):
        with zipfile.ZipFile(sample) as zf:
            zf.extractall(folder)
    args = [a.format(sample=sample, folder=folder, out=tmp_path / "out") for a in argv]
    proc = subprocess.run(
        [sys.executable, "-c", _LOADED, *args], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    modules: list[str] = json.loads(proc.stdout)
    return modules


@pytest.mark.parametrize(
    ("argv", "loaded"),
    [
        (["--version"], []),
        (["list-tracks", "{sample}"], []),
        (["list-tracks", "{sample}", "--format", "json"], []),
        (["extract-audio", "{sample}", "-o", "{out}", "-q"], []),
        # No black picture to encode in the sample's video: no PyAV, no NumPy.
        (["extract-video", "{sample}", "-o", "{out}", "-q"], []),
    ],
)
def test_a_command_loads_only_what_it_uses(
    argv: list[str], loaded: list[str], tmp_path: Path
) -> None:
    """No NumPy, PyAV, boto3 or Pillow where the command needs none: start-up is most of a
    short command's time (BENCHMARKS.md). The extractions need none of them: the call timeline's
    stream columns stay in the core, and PyAV is loaded only to encode a black picture."""
    modules = _modules_loaded_by(argv, tmp_path)
    assert [m for m in _HEAVY if m in modules] == loaded


#: What start-up used to load on every extraction, a few ms each (BENCHMARKS.md, "Start-up
#: imports"): archive formats and their decompressors, `tempfile` and `random`, `shutil` (which
#: loads bz2 and lzma; argparse's help formatter imports it), `logging`, `concurrent.futures`.
_ON_DEMAND = (
    "zipfile",
    "tarfile",
    "gzip",
    "bz2",
    "lzma",
    "shutil",
    "tempfile",
    "random",
    "logging",
    "concurrent.futures",
)


@pytest.mark.parametrize(
    "argv",
    [
        ["--version"],
        ["list-tracks", "{folder}"],
        ["extract-audio", "{folder}", "-o", "{out}", "-q"],
        ["extract-audio", "--input-dir", "{folder}", "-o", "{out}", "-q", "--stitch"],
        ["extract-video", "{folder}", "-o", "{out}", "-q"],
        ["extract-video", "--input-dir", "{folder}", "-o", "{out}", "-q", "--stitch"],
    ],
)
def test_a_folder_input_loads_no_archive_format_logging_or_thread_pool(
    argv: list[str], tmp_path: Path
) -> None:
    """A recording in a folder is read in place and written with the core on plain threads:
    the archive formats, temp files, `logging` and `concurrent.futures` stay unloaded (and
    `--version` loads no dataclasses either)."""
    modules = _modules_loaded_by(argv, tmp_path)
    assert [m for m in _ON_DEMAND if m in modules] == []
    if argv == ["--version"]:
        assert "dataclasses" not in modules


def test_an_archive_input_still_loads_its_format(tmp_path: Path) -> None:
    """The other side of the test above: the ZIP reader loads `zipfile` when it is needed."""
    modules = _modules_loaded_by(["list-tracks", "{sample}"], tmp_path)
    assert "zipfile" in modules and "tarfile" not in modules


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_outputs_get_the_mode_the_umask_gives_like_any_new_file(
    recording_zip: Path, tmp_path: Path, umask: int, mode: int
) -> None:
    # Outputs are written under a temporary name and renamed: they must not keep the
    # owner-only mode of a private temp file, or a web server serving them cannot read them.
    out = tmp_path / "out"
    script = (
        "import os, sys; os.umask(int(sys.argv[1])); from rawcore.cli import main; "
        "main(sys.argv[2:])"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(umask), "process-all",
         "--input-file", str(recording_zip), "-o", str(out)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) >= 5
    assert {p.name: oct(p.stat().st_mode & 0o777) for p in files} == {
        p.name: oct(mode) for p in files
    }


# --- the captures' analysis runs while the command's layers load ---------------------------

_ORDER = """
import contextlib, json, sys
from rawcore import _core
import rawcore.recording.reading as reading
from rawcore.cli.main import run

events = []
real_start, real_stream = reading.start_reading, _core.analyze_capture_stream

def start(*args, **kwargs):
    events.append(["start", sorted(m for m in sys.modules if m.startswith("rawcore.media"))])
    return real_start(*args, **kwargs)

def analyse(buf, *args, **kwargs):
    events.append(["analyse", len(buf)])
    return real_stream(buf, *args, **kwargs)

reading.start_reading, _core.analyze_capture_stream = start, analyse
with contextlib.redirect_stdout(sys.stderr), contextlib.suppress(SystemExit):
    run(sys.argv[1:])
print(json.dumps(events))
"""


@pytest.mark.parametrize("command", ["extract-audio", "extract-video"])
def test_the_analysis_starts_before_the_media_layers_load_and_reads_each_capture_once(
    command: str, call: RecordingInfo, tmp_path: Path
) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _ORDER, command, "--input-dir", str(call.root), "-o",
         str(tmp_path / "out"), "-q"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    events = json.loads(proc.stdout)
    what, loaded = events[0]
    assert what == "start"
    # Only the option tables the parser needs, none of the layers that extract.
    assert set(loaded) <= {"rawcore.media", "rawcore.media.formats"}, loaded
    captures = sorted(p.stat().st_size for p in call.root.rglob("*.rtpdump"))
    assert sorted(size for what, size in events[1:] if what == "analyse") == captures


def _with_garbage_capture(call: RecordingInfo, root: Path, *, only: bool) -> Path:
    """The call, or just a folder, with one capture that is not an rtpdump at all."""
    if not only:
        import shutil

        shutil.copytree(call.root, root)
    (root / "user_9" / "session_1").mkdir(parents=True)
    (root / "user_9" / "session_1" / "audio_1.rtpdump").write_bytes(b"\x17garbage" * 500)
    return root


@pytest.mark.parametrize("command", ["list-tracks", "extract-audio", "extract-video"])
def test_a_garbage_capture_read_ahead_is_reported_as_before(
    command: str, call: RecordingInfo, tmp_path: Path
) -> None:
    """Analysed ahead on threads, a capture that cannot be read is still one warning among
    the others (the same as the library's `open_recording` gives) and the rest is written;
    a folder of nothing else is the usual one-line error, exit 3 and no output folder."""
    from rawcore.recording.build import open_recording

    def out(name: str) -> list[str | Path]:
        return ["-o", tmp_path / name] if command != "list-tracks" else []

    mixed = _with_garbage_capture(call, tmp_path / "mixed", only=False)
    rc, _, err = rawcore(command, "--input-dir", mixed, *out("out-mixed"))
    assert rc == ExitCode.OK, err
    with open_recording(mixed) as rec:
        expected = [f"rawcore: warning: {w}" for w in rec.warnings]
    assert [line for line in err.splitlines() if "warning" in line][: len(expected)] == expected
    skipped = [line for line in err.splitlines() if line.endswith("; capture skipped")]
    assert len(skipped) == 1 and "user_9/session_1/audio_1.rtpdump: not an rtpdump" in skipped[0]
    assert "Traceback" not in err

    bad = _with_garbage_capture(call, tmp_path / "bad", only=True)
    rc, stdout, err = rawcore(command, "--input-dir", bad, *out("out-bad"), "-q")
    assert rc == ExitCode.INPUT
    assert stdout == ""
    assert err == f"rawcore: error: {bad}: none of the captures could be read\n"
    assert not (tmp_path / "out-bad").exists()


def test_a_failure_while_the_command_loads_leaves_no_analysis_running(
    call: RecordingInfo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    import threading

    import rawcore.cli.dispatch as dispatch

    def broken(command: str) -> None:
        raise MemoryError("while loading")

    monkeypatch.setattr(dispatch, "load_command", broken)
    args: list[str | Path] = ["extract-audio", "--input-dir", call.root, "-o", tmp_path / "o", "-q"]
    code, _, err = run_main(capsys, *args)
    assert code == ExitCode.INTERNAL and "MemoryError: while loading" in err
    assert [t.name for t in threading.enumerate() if t.name.startswith("rawcore-")] == []


# --- the exit: the process ends without tearing the interpreter down, once all is written ---

_ENDING = """
import os, sys
import rawcore.cli

class Watch:
    def __del__(self, write=os.write):
        write(2, b"teardown\\n")

watch = Watch()  # freed only by the interpreter's teardown
args = sys.argv[2:]
if sys.argv[1] == "argv":
    rawcore.cli.main(args)  # a library call with its own arguments
sys.argv[1:] = args
rawcore.cli.main()  # the process's own command line
"""


@pytest.mark.parametrize(
    ("how", "command", "teardown"),
    [
        pytest.param("process", "extract-audio", False, id="extract-audio: no teardown"),
        pytest.param("process", "extract-video", False, id="extract-video: no teardown"),
        pytest.param("process", "list-tracks", False, id="list-tracks: no teardown"),
        pytest.param("process", "mux-av", True, id="other commands: the usual exit"),
        pytest.param("argv", "extract-audio", True, id="main(argv), as a library: the usual exit"),
    ],
)
def test_the_process_ends_without_teardown_only_once_everything_is_written(
    how: str, command: str, teardown: bool, call: RecordingInfo, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    rec = _with_garbage_capture(call, tmp_path / "rec", only=False)  # for a warning on stderr
    args = [command, "--input-dir", str(rec)] + (["-o", str(out)] * (command != "list-tracks"))
    proc = subprocess.run(
        [sys.executable, "-c", _ENDING, how, *args], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == ExitCode.OK, proc.stderr
    assert proc.stderr.endswith("teardown\n") is teardown, proc.stderr
    assert "capture skipped" in proc.stderr  # stderr flushed
    if command == "list-tracks":
        assert len(proc.stdout.splitlines()) > 9  # the whole table arrived (stdout flushed)
    else:
        written = sorted(p.name for p in out.iterdir() if p.name != "manifest.json")
        assert sorted(Path(line).name for line in proc.stdout.splitlines()) == written
        manifest = json.loads((out / "manifest.json").read_text())
        assert len(manifest["outputs"]) == len(written)
        assert not [p for p in out.iterdir() if p.name.startswith(".")], "no temp file left"


def test_an_error_still_ends_with_its_code_and_line_without_teardown(tmp_path: Path) -> None:
    (tmp_path / "u" / "s").mkdir(parents=True)
    (tmp_path / "u" / "s" / "a.rtpdump").write_bytes(b"junk" * 100)
    proc = subprocess.run(
        [sys.executable, "-c", _ENDING, "process", "extract-audio", "--input-dir",
         str(tmp_path), "-o", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == ExitCode.INPUT
    assert proc.stderr == f"rawcore: error: {tmp_path}: none of the captures could be read\n"


def test_the_analysis_threads_end_with_the_opening(call: RecordingInfo) -> None:
    """No analysis thread outlives `open_recording` (the CLI's exit checks for other threads)."""
    import threading

    from rawcore.recording.build import open_recording

    with open_recording(call.root, streams=True) as rec:
        assert rec.tracks
        assert [t.name for t in threading.enumerate() if t.name.startswith("rawcore-")] == []
