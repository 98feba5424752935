"""Progress display: one line per stage on a terminal stderr, nothing anywhere else.

The display is driven on a fake terminal (a StringIO whose isatty() is True) and read back
through a tiny terminal emulator, so the tests see what a user sees; process-all is also run
through the CLI with and without a terminal, and once under a real pseudo-terminal.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers.gst import gst_available
from rawcore.cli import main, progress_printer
from rawcore.progress import StageProgress


class FakeTTY(io.StringIO):
    """A terminal as far as the display can tell; counts its draws (one write each)."""

    writes = 0

    def isatty(self) -> bool:
        return True

    def write(self, s: str) -> int:
        self.writes += 1
        return super().write(s)


class AsciiTTY(FakeTTY):
    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "ascii"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


_TOKEN = re.compile(r"\x1b\[(\d*)([AK])|\r|\n|[^\x1b\r\n]+")


def screen(text: str) -> list[str]:
    """What a terminal shows after `text` (CR, LF, erase to end of line, cursor up only)."""
    lines, row, col, pos = [""], 0, 0, 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        assert m is not None, f"unexpected control sequence {text[pos : pos + 8]!r}"
        pos = m.end()
        token = m.group(0)
        if token == "\r":
            col = 0
        elif token == "\n":
            row, col = row + 1, 0
            if row == len(lines):
                lines.append("")
        elif m.group(2) == "A":
            row = max(0, row - int(m.group(1) or 1))
        elif m.group(2) == "K":
            lines[row] = lines[row][:col]
        else:
            line = lines[row].ljust(col)
            lines[row] = line[:col] + token + line[col + len(token) :]
            col += len(token)
    return [line for line in lines if line]


# --- the display ------------------------------------------------------------------------------


def test_each_stage_gets_a_line_that_stays_checked_with_its_time() -> None:
    tty, clock = FakeTTY(), Clock()
    bars = StageProgress(stream=tty, clock=clock, label_width=5)
    bars.begin("audio")
    clock.now += 0.5
    bars.count(1, 4)
    assert screen(tty.getvalue()) == ["/ audio ██████░░░░░░░░░░░░░░░░░░       1/4     0.5s"]
    clock.now += 0.7
    bars.count(4, 4)
    clock.now += 0.3
    bars.begin("mix")
    clock.now += 2.0
    bars.fraction(0.5)
    shown = screen(tty.getvalue())
    assert shown[0] == "✓ audio ████████████████████████       4/4     1.5s"
    assert shown[1].startswith("| mix   ████████████░░░░░░░░░░░░") and "50%" in shown[1]
    clock.now += 65.0
    bars.begin("qa")
    clock.now += 0.2
    bars.close()
    assert screen(tty.getvalue()) == [
        "✓ audio ████████████████████████       4/4     1.5s",
        "✓ mix   ████████████████████████       50%     1:07",
        "✓ qa    ████████████████████████               0.2s",
    ]
    assert tty.getvalue().endswith("\n")  # the shell prompt (or the next output) starts clean


def test_nothing_is_drawn_unless_stderr_is_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    for stream, enabled in ((io.StringIO(), None), (FakeTTY(), False)):
        bars = StageProgress(stream=stream, enabled=enabled)
        with bars:
            bars.begin("audio")
            bars.count(1, 1)
            bars.fraction(0.5)
        assert stream.getvalue() == ""
        assert bars.lines()[0].startswith("✓ audio")  # the state is still followed
    piped = io.StringIO()
    monkeypatch.setattr(sys, "stderr", piped)
    bars = StageProgress()  # stderr by default
    bars.begin("audio")
    bars.close()
    assert piped.getvalue() == ""


def test_redraws_at_most_ten_times_a_second() -> None:
    tty, clock = FakeTTY(), Clock()
    bars = StageProgress(stream=tty, clock=clock)
    bars.begin("audio")
    for i in range(1, 1001):  # 1000 reports in 0.5 s
        clock.now += 0.0005
        bars.count(i, 1000)
    assert tty.writes <= 6
    bars.close()  # the final state is always drawn
    assert screen(tty.getvalue())[0].split()[3] == "1000/1000"


def test_an_interrupted_stage_is_marked_failed() -> None:
    tty, clock = FakeTTY(), Clock()
    with pytest.raises(RuntimeError), StageProgress(stream=tty, clock=clock) as bars:
        bars.begin("audio")
        bars.count(1, 1)
        clock.now += 1
        bars.begin("video")
        bars.count(1, 3)
        raise RuntimeError("boom")
    audio, video = screen(tty.getvalue())
    assert audio.startswith("✓ audio") and "1/1" in audio
    assert video.startswith("✗ video") and "1/3" in video


def test_ascii_terminals_get_ascii_marks_and_bars() -> None:
    tty, clock = AsciiTTY(), Clock()
    bars = StageProgress(stream=tty, clock=clock)
    bars.begin("mux")
    bars.count(1, 2)
    bars.close()
    (line,) = screen(tty.getvalue())
    assert line.startswith("+ mux ####################")
    line.encode("ascii")


def test_lines_never_wrap() -> None:
    tty = FakeTTY()
    bars = StageProgress(stream=tty)
    bars.begin("x" * 200)
    bars.close()
    (line,) = screen(tty.getvalue())
    assert len(line) < 80  # no terminal size behind a StringIO: 80 columns


def test_concurrent_reports_from_worker_threads() -> None:
    tty = FakeTTY()
    bars = StageProgress(stream=tty, label_width=5)
    total = 8 * 500
    done = 0
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker() -> None:
        nonlocal done
        try:
            for _ in range(500):
                with lock:
                    done += 1
                    n = done
                bars.count(n, total)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    with bars:
        bars.begin("video")
        threads = [threading.Thread(target=worker) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    (line,) = screen(tty.getvalue())
    assert line.startswith("✓ video ████████████████████████") and f"{total}/{total}" in line


def test_the_elapsed_time_moves_while_a_stage_is_quiet() -> None:
    tty = FakeTTY()
    with StageProgress(stream=tty) as bars:
        bars.begin("mix")
        deadline = time.monotonic() + 5.0
        while tty.writes < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        # No report came, yet the ticker redrew the line (the mark turns, the time grows).
        assert tty.writes >= 3
        before, start = tty.writes, time.monotonic()
        time.sleep(0.5)
        # ...and at most about ten times a second.
        assert tty.writes - before <= 10 * (time.monotonic() - start) + 2


def test_progress_printer_draws_one_checked_line(monkeypatch: pytest.MonkeyPatch) -> None:
    tty = FakeTTY()
    monkeypatch.setattr(sys, "stderr", tty)
    assert progress_printer("writing audio", show=False) is None
    show = progress_printer("writing audio")
    assert show is not None and tty.getvalue() == ""  # nothing until the first report
    show(1, 3)
    show(3, 3)
    (line,) = screen(tty.getvalue())
    assert line.startswith("✓ writing audio ████████████████████████") and "3/3" in line
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert progress_printer("writing audio") is None


# --- process-all through the CLI --------------------------------------------------------------

needs_gst = pytest.mark.skipif(not gst_available(), reason="GStreamer is not installed")


@pytest.fixture(scope="module")
def call_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from helpers.recording import multiparty_call

    return multiparty_call(tmp_path_factory.mktemp("progress") / "rec", duration_s=3.0).root


def run_cli(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    stderr: io.StringIO,
    *args: str | Path,
) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stderr", stderr)
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    assert err == ""  # everything went to the patched stderr
    code = exc.value.code
    assert isinstance(code, int)
    return code, out, stderr.getvalue()


def _kind(path: str) -> str:
    for marker, kind in (
        ("_audio_only_", "audio"),
        ("_video_only_", "video"),
        ("_audio_video_", "mux"),
        ("composite_", "mix"),
    ):
        if marker in path:
            return kind
    raise AssertionError(path)


@needs_gst
def test_process_all_on_a_terminal_shows_every_stage_and_keeps_stdout_clean(
    call_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    args = ("process-all", "--input-dir", call_dir, "--output")
    code, piped_out, piped_err = run_cli(capsys, monkeypatch, io.StringIO(), *args, tmp_path / "a")
    assert (code, piped_err) == (0, "")
    code, out, err = run_cli(capsys, monkeypatch, FakeTTY(), *args, tmp_path / "b")
    assert code == 0
    assert out == piped_out  # stdout is the list of outputs, terminal or not
    shown = screen(err)
    assert shown[0].startswith("✓ analysing captures") and "9/9" in shown[0]
    stages = [line.split()[:2] for line in shown[1:]]
    assert stages == [["✓", s] for s in ("audio", "video", "mux", "mix", "qa")]
    paths = out.split()
    for line in shown[1:5]:
        name = line.split()[1]
        n = sum(_kind(p) == name for p in paths)
        assert re.search(rf"█ +{n}/{n} +\d+\.\ds$", line), line
    assert re.search(r"█ +\d+\.\ds$", shown[5])  # qa: no count, just its time


@needs_gst
@pytest.mark.parametrize("flag", ["--json", "--quiet"])
def test_process_all_draws_nothing_for_json_or_quiet_even_on_a_terminal(
    call_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    flag: str,
) -> None:
    code, out, err = run_cli(
        capsys,
        monkeypatch,
        FakeTTY(),
        "process-all",
        "--input-dir",
        call_dir,
        "--output",
        tmp_path,
        flag,
    )
    assert (code, err) == (0, "")
    if flag == "--json":
        assert json.loads(out)["schema"] == "rawcore.process-all/1"


@needs_gst
def test_process_all_without_a_terminal_prints_the_same_as_before(
    call_dir: Path, tmp_path: Path
) -> None:
    def rawcore(*args: str | Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "rawcore", *map(str, args)],
            capture_output=True,
            text=True,
            timeout=300,
        )

    plain = rawcore("process-all", "--input-dir", call_dir, "--output", tmp_path / "p")
    assert (plain.returncode, plain.stderr) == (0, "")
    manifest = json.loads((tmp_path / "p" / "manifest.json").read_text())
    # One path per line, stage by stage, nothing else (no progress, no escape sequences).
    lines = plain.stdout.splitlines()
    assert sorted(lines) == sorted(o["path"] for o in manifest["outputs"])
    order = [_kind(p) for p in lines]
    assert order == sorted(order, key=["audio", "video", "mux", "mix"].index)
    as_json = rawcore("process-all", "--input-dir", call_dir, "--output", tmp_path / "j", "--json")
    assert (as_json.returncode, as_json.stderr) == (0, "")
    summary = json.loads(as_json.stdout)
    assert [o["path"] for o in summary["outputs"]] == lines
    assert summary["qa"] == {"json": "qa_report.json", "png": "qa_timeline.png"}


@needs_gst
@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_process_all_under_a_real_pseudo_terminal(call_dir: Path, tmp_path: Path) -> None:
    import pty

    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "rawcore",
                "process-all",
                "--input-dir",
                str(call_dir),
                "--output",
                str(tmp_path),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=slave,
        )
    finally:
        os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.stdout is not None
    out = proc.stdout.read().decode()
    assert proc.wait(timeout=300) == 0
    assert "\x1b" not in out and "\r" not in out
    shown = screen(b"".join(chunks).decode())
    marks = [line.split()[:2] for line in shown[1:]]
    ok = marks[0][0]
    assert ok in ("✓", "+")  # "+" where the terminal's encoding has no check mark
    assert marks == [[ok, s] for s in ("audio", "video", "mux", "mix", "qa")]
