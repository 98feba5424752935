"""The studio's event log: what is read, what is repaired (with a warning), what is refused
(naming the line), and that a hostile log costs bounded memory and is refused before work."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rawcore.errors import InputError, SceneError
from rawcore.pipeline.scene import events as ev
from rawcore.pipeline.scene.events import MAX_EVENTS, read_event_log
from rawcore.pipeline.scene.model import MAX_LAYOUT_KEYFRAMES

T0 = 1_742_637_600_000


def _host(pid: str = "user_1", **over: Any) -> dict[str, Any]:
    return {"participant_id": pid, "source": "camera", "x": 0.0, "y": 0.0, "w": 0.5, "h": 1.0,
            **over}  # fmt: skip


def _write(tmp_path: Path, lines: list[Any], name: str = "events.jsonl") -> Path:
    path = tmp_path / name
    with path.open("w") as fh:
        for line in lines:
            fh.write(line if isinstance(line, str) else json.dumps(line))
            fh.write("\n")
    return path


def _e(t: int, kind: str, **fields: Any) -> dict[str, Any]:
    return {"unix_ms": T0 + t, "type": kind, **fields}


def test_a_shuffled_log_reads_in_time_order(tmp_path: Path) -> None:
    lines = [
        _e(0, "recording_started", recording_id="rec_1", room="studio-a"),
        _e(5, "canvas", width=1280, height=720, fps=30),
        _e(6, "background", color="#101820"),
        _e(1000, "layout", hosts=[_host()]),
        _e(2500, "layout", hosts=[_host(), _host("user_2", x=0.5, shape="rounded", radius=0.04)]),
        _e(3000, "paused"),
        _e(4200, "resumed"),
        _e(5000, "hook_shown", hook_id="h1", text="Subscribe"),
        _e(7000, "hook_hidden", hook_id="h1"),
        _e(9000, "recording_stopped"),
    ]
    shuffled = list(lines)
    random.Random(7).shuffle(shuffled)
    log = read_event_log(_write(tmp_path, shuffled))
    assert log.recording_id == "rec_1"
    assert log.started_unix_ms == T0 and log.stopped_unix_ms == T0 + 9000
    assert log.canvas is not None and (log.canvas.width, log.canvas.height) == (1280, 720)
    assert [k.unix_ms - T0 for k in log.layouts] == [1000, 2500]
    assert [len(k.hosts) for k in log.layouts] == [1, 2]
    assert log.layouts[1].hosts[1].shape == "rounded"
    pauses, hooks = log.spans(T0 + 9000)
    assert [(p.start_unix_ms - T0, p.end_unix_ms - T0) for p in pauses] == [(3000, 4200)]
    assert [(h.hook_id, h.text, h.start_unix_ms - T0, h.end_unix_ms - T0) for h in hooks] == [
        ("h1", "Subscribe", 5000, 7000)
    ]
    assert log.extra == {"room": "studio-a"}
    assert log.warnings == [] and log.events == len(lines)


# Each case: the lines of a log, and the words its one-line error must hold.
HOSTILE: list[tuple[str, list[Any], str]] = [
    ("a garbage line", [_e(0, "paused"), "this is not json"], "line 2: not a JSON event"),
    ("a truncated object", ['{"unix_ms": 1, "type": "paus'], "line 1: not a JSON event"),
    ("an array instead of an object", ["[1, 2, 3]"], "line 1: an event is a JSON object"),
    ("a huge integer time", [{"unix_ms": 10**400, "type": "paused"}], "line 1: unix_ms"),
    ("a time beyond float range", ['{"unix_ms": 1e999, "type": "paused"}'], "line 1: unix_ms"),
    ("NaN", ['{"unix_ms": NaN, "type": "paused"}'], "line 1: not a JSON event"),
    ("a negative time", [{"unix_ms": -5, "type": "paused"}], "line 1: unix_ms"),
    ("a fractional time", [{"unix_ms": 1.5, "type": "paused"}], "line 1: unix_ms"),
    ("no type", [{"unix_ms": 1}], "line 1: type"),
    ("deeply nested JSON", ["[" * 200_000 + "]" * 200_000], "line 1"),
    ("a line over the length limit", ["x" * (ev.MAX_LINE_BYTES + 10)], "line 1: longer than"),
    ("invalid UTF-8", [b"\xff\xfe{}".decode("latin-1")], "line 1"),
    ("resume without a pause", [_e(0, "paused"), _e(10, "resumed"), _e(20, "resumed")],
     "line 3: resumed without a pause"),
    ("a hook hidden that was never shown", [_e(5, "hook_hidden", hook_id="h9")],
     "line 1: hook 'h9' hidden but never shown"),
    ("a second recording_started", [_e(0, "recording_started"), _e(9, "recording_started")],
     "line 2: a second recording_started"),
    ("two canvases that differ", [_e(0, "canvas", width=1280, height=720, fps=30),
                                  _e(1, "canvas", width=1920, height=1080, fps=30)],
     "line 2: a canvas of 1920x1080"),
    ("an odd canvas side", [_e(0, "canvas", width=1281, height=720, fps=30)], "line 1"),
    ("a layout outside the canvas", [_e(0, "layout", hosts=[_host(x=0.6, w=0.5)])],
     "line 1: hosts[0]"),
    ("a box of no size", [_e(0, "layout", hosts=[_host(w=0.0)])], "line 1: hosts[0]"),
    ("an unknown shape", [_e(0, "layout", hosts=[_host(shape="star")])], "line 1: hosts[0]"),
    ("a feed twice in one layout", [_e(0, "layout", hosts=[_host(), _host(x=0.5)])],
     "on screen twice"),
    ("hosts that are not a list", [_e(0, "layout", hosts={"a": 1})], "line 1: hosts"),
    ("a background with neither colour nor image", [_e(0, "background")], "line 1"),
    ("a background colour that is not #rrggbb", [_e(0, "background", color="red")], "line 1"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "lines", "words"), HOSTILE, ids=[c[0] for c in HOSTILE])
def test_a_hostile_log_is_refused_naming_the_line(
    tmp_path: Path, case: str, lines: list[Any], words: str
) -> None:
    path = tmp_path / "events.jsonl"
    with path.open("wb") as fh:
        for line in lines:
            data = line if isinstance(line, str) else json.dumps(line)
            fh.write(data.encode("latin-1") if "\xff" in data else data.encode())
            fh.write(b"\n")
    with pytest.raises(SceneError) as err:
        read_event_log(path)
    message = str(err.value)
    assert isinstance(err.value, InputError)
    assert "\n" not in message and str(path) in message
    assert words in message, (case, message)


# Each case: the lines, what the log holds after the repair, and the warning's words.
REPAIRS: list[tuple[str, list[Any], str, str]] = [
    ("a pause while paused is the same pause",
     [_e(0, "paused"), _e(100, "paused"), _e(300, "resumed")], "pauses=[(0, 300)]",
     "line 2: paused while already paused"),
    ("a pause never resumed ends with the recording",
     [_e(0, "paused")], "pauses=[(0, 9000)]", "line 1: the pause is never resumed"),
    ("a hook never hidden ends with the recording",
     [_e(50, "hook_shown", hook_id="h1", text="x")], "hooks=[(50, 9000)]",
     "line 1: hook 'h1' is never hidden"),
    ("a hook shown twice is one display",
     [_e(50, "hook_shown", hook_id="h1", text="x"), _e(60, "hook_shown", hook_id="h1", text="y"),
      _e(90, "hook_hidden", hook_id="h1")], "hooks=[(50, 90)]", "line 2: hook 'h1' shown again"),
    ("two layouts at one ms: the later line wins",
     [_e(10, "layout", hosts=[_host(x=0.5)]), _e(10, "layout", hosts=[_host()])],
     "layouts=[(10, 0.0)]", "line 2: a second layout"),
    ("an unknown type is kept and warned about once",
     [_e(1, "confetti", n=1), _e(2, "confetti", n=2)], "unknown=2",
     "unknown event type 'confetti'"),
    ("an unknown field is kept and warned about once",
     [_e(1, "paused", why="x"), _e(2, "resumed"), _e(3, "paused", why="y"), _e(4, "resumed")],
     "fields={'paused': ['why']}", "unknown field 'why' of paused"),
]  # fmt: skip


def _summary(log: ev.EventLog) -> str:
    pauses, hooks = log.spans(T0 + 9000)
    return " ".join(
        [
            f"pauses={[(p.start_unix_ms - T0, p.end_unix_ms - T0) for p in pauses]}",
            f"hooks={[(h.start_unix_ms - T0, h.end_unix_ms - T0) for h in hooks]}",
            f"layouts={[(k.unix_ms - T0, k.hosts[0].x) for k in log.layouts]}",
            f"unknown={len(log.extra.get('unknown_events', []))}",
            f"fields={log.extra.get('unknown_fields', {})}",
        ]
    )


@pytest.mark.parametrize(("case", "lines", "holds", "words"), REPAIRS, ids=[c[0] for c in REPAIRS])
def test_an_unambiguous_contradiction_is_repaired_with_one_warning(
    tmp_path: Path, case: str, lines: list[Any], holds: str, words: str
) -> None:
    log = read_event_log(_write(tmp_path, lines))
    assert holds in _summary(log), (case, _summary(log))
    matching = [w for w in log.warnings if words in w]
    assert len(matching) == 1, (case, log.warnings)


_READ_IN_CHILD = """
import json, resource, sys
from rawcore.errors import SceneError
from rawcore.pipeline.scene.events import read_event_log
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    read_event_log(sys.argv[1])
    error = None
except SceneError as exc:
    error = str(exc)
grown_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(json.dumps({"error": error, "grown_kb": grown_kb}))
"""


def test_a_million_events_stream_in_flat_memory_and_one_more_is_refused(tmp_path: Path) -> None:
    # One more than the limit: the first million are read through (the error names the line
    # after them), and the child process's peak memory says what reading them cost.
    line = json.dumps(_e(1, "cursor_moved", x=0.5)) + "\n"
    path = tmp_path / "events.jsonl"
    path.write_text(line * (MAX_EVENTS + 1))
    out = subprocess.run(
        [sys.executable, "-c", _READ_IN_CHILD, str(path)],
        capture_output=True, text=True, check=True, timeout=300,
    )  # fmt: skip
    result = json.loads(out.stdout)
    assert f"line {MAX_EVENTS + 1}: more than {MAX_EVENTS} events" in result["error"]
    size_mb = path.stat().st_size / 1e6
    assert result["grown_kb"] < 16_000, f"{result['grown_kb']} kB grown for a {size_mb:.0f} MB log"


def test_one_layout_over_the_keyframe_limit_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    with path.open("w") as fh:
        for i in range(MAX_LAYOUT_KEYFRAMES + 1):
            fh.write(json.dumps(_e(i, "layout", hosts=[_host()])) + "\n")
    with pytest.raises(SceneError, match=f"line {MAX_LAYOUT_KEYFRAMES + 1}: more than"):
        read_event_log(path)


def test_a_missing_log_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SceneError, match="no such event log"):
        read_event_log(tmp_path / "nope.jsonl")


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_event_like = st.fixed_dictionaries(
    {"unix_ms": st.integers(-5, 2**60) | st.floats(),
     "type": st.sampled_from(sorted(ev.KNOWN_FIELDS))},
    optional={
        "hosts": st.lists(
            st.dictionaries(st.sampled_from(["participant_id", "x", "w", "shape"]), _json_values),
            max_size=3),
        "hook_id": _json_values, "width": _json_values, "color": _json_values, "text": _json_values,
    },
)  # fmt: skip


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    lines=st.lists(
        st.one_of(st.binary(max_size=40), _event_like.map(lambda e: json.dumps(e).encode())),
        max_size=12,
    )
)
def test_any_log_is_read_or_refused_with_a_scene_error(tmp_path: Path, lines: list[bytes]) -> None:
    """Whatever the bytes, the reader returns a log or raises `SceneError`, nothing else."""
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(line.replace(b"\n", b" ") for line in lines))
    try:
        log = read_event_log(path)
    except SceneError as exc:
        assert "\n" not in str(exc)
        return
    log.spans(2**53)
