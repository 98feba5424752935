"""`rawcore scene` on the command line: the project it prints, the schema, names, and one-line
errors with the documented exit codes (a bad log refused before the recording is opened)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from helpers.gst import gst_available
from helpers.recording import DEFAULT_CALL_START, RecordingInfo, multiparty_call, pack_zip
from rawcore.cli import ExitCode, main
from rawcore.pipeline.scene.model import load_scene

pytestmark = pytest.mark.skipif(not gst_available(), reason="GStreamer is not installed")

T0 = round(DEFAULT_CALL_START.timestamp() * 1000)


@pytest.fixture(scope="module")
def call(tmp_path_factory: pytest.TempPathFactory) -> RecordingInfo:
    return multiparty_call(tmp_path_factory.mktemp("scene-cli") / "rec", duration_s=4.0)


def run_main(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    code = exc.value.code
    assert isinstance(code, int)
    return code, out, err


def test_print_schema_needs_no_recording(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_main(capsys, "scene", "--print-schema")
    assert code == ExitCode.OK
    schema = json.loads(out)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert "layout" in schema["properties"]


def test_a_project_from_an_archive_with_names_and_a_log(
    call: RecordingInfo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = pack_zip(call.root, tmp_path / "recording.zip")
    names = tmp_path / "names.json"
    names.write_text(json.dumps({"user_1": "Ada", "user_2": "Bo"}))
    events = tmp_path / "events.jsonl"
    hosts = [{"participant_id": "user_1", "source": "camera", "x": 0, "y": 0, "w": 1, "h": 1}]
    events.write_text(
        json.dumps({"unix_ms": T0, "type": "recording_started", "recording_id": "r1"})
        + "\n"
        + json.dumps({"unix_ms": T0 + 1234, "type": "layout", "hosts": hosts})
        + "\n"
    )
    out_dir = tmp_path / "project"
    code, out, err = run_main(
        capsys, "scene", "--input-file", archive, "--events", events,
        "--participants", names, "--output", out_dir,
    )  # fmt: skip
    assert code == ExitCode.OK, err
    lines = out.splitlines()
    assert lines[:2] == [str(out_dir / "scene.json"), str(out_dir / "scene.otio")]
    scene = load_scene(out_dir / "scene.json")
    assert [str(out_dir / t.path) for t in scene.tracks] == lines[2:]
    assert {t.participant_id: t.name for t in scene.tracks} == {
        "user_1": "Ada", "user_2": "Bo", "user_3": "user_3"
    }  # fmt: skip
    assert [k.t_ms for k in scene.layout] == [1234]
    assert scene.recording_id == "r1"
    assert "no clip" in err  # a 4 s call is too short for one, and the command says so


@pytest.mark.parametrize(
    ("case", "log", "names", "code", "words"),
    [
        ("a garbage line in the log", '{"unix_ms": 1, "type": "paused"}\nnot json\n', None,
         ExitCode.INPUT, "events.jsonl: line 2: not a JSON event"),
        ("a host who is not in the call",
         json.dumps({"unix_ms": T0, "type": "layout", "hosts": [
             {"participant_id": "zed", "source": "camera", "x": 0, "y": 0, "w": 1, "h": 1}]}),
         None, ExitCode.INPUT, "line 1: host 'zed' is not a participant"),
        ("names that are not a map", "", "[1, 2]", ExitCode.INPUT, "names.json: a JSON object"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_and_writes_nothing(
    call: RecordingInfo,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    case: str,
    log: str,
    names: str | None,
    code: int,
    words: str,
) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text(log)
    args: list[str | Path] = ["scene", call.root, "--events", events, "-o", tmp_path / "p"]
    if names is not None:
        (tmp_path / "names.json").write_text(names)
        args += ["--participants", tmp_path / "names.json"]
    got, out, err = run_main(capsys, *args)
    assert got == code, (case, err)
    assert out == "" and err.count("\n") == 1 and err.startswith("rawcore: error: ")
    assert words in err, (case, err)
    assert not (tmp_path / "p").exists()


def test_a_bad_log_is_refused_before_the_recording_is_opened(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text('{"unix_ms": 5, "type": "resumed"}\n')
    missing = tmp_path / "no-such-recording.zip"
    code, _, err = run_main(
        capsys, "scene", "--input-file", missing, "--events", events, "-o", tmp_path / "p"
    )
    assert code == ExitCode.INPUT
    assert "resumed without a pause" in err and "no-such-recording" not in err


def test_the_output_folder_is_required(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run_main(capsys, "scene", tmp_path)
    assert code == ExitCode.USAGE and "--output" in err
