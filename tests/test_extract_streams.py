"""Extraction reads each capture once: it is handed the stream the analysis chose.

Opening a recording analyses every capture, which picks each one's track by the core's rule
(`CaptureReport.primary_ssrc`, `primary_opus_stereo`). `extract-audio` and `extract-video` hand
that choice to the core (`ssrcs=`, `opus_stereo=`), which then skips its own survey of the
capture. The files must be the bytes the core writes when it chooses by itself, and a named
SSRC the capture lacks is a `CaptureError`, not an empty file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers.gst import gst_available
from helpers.recording import RecordingInfo, multiparty_call
from rawcore import _core
from rawcore.errors import CaptureError
from rawcore.media.audio import extract_audio
from rawcore.media.outputs import OutputJob
from rawcore.media.video import extract_video
from rawcore.recording.build import open_recording

pytestmark = pytest.mark.skipif(not gst_available(), reason="GStreamer is not installed")


@pytest.fixture(scope="module")
def call(tmp_path_factory: pytest.TempPathFactory) -> RecordingInfo:
    return multiparty_call(tmp_path_factory.mktemp("streams") / "rec", duration_s=3.0)


def files(root: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.iterdir()
        if p.name != "manifest.json"
    }


EXTRACTORS: dict[str, tuple[str, Callable[..., Any]]] = {
    "audio": ("extract_audio", extract_audio),
    "video": ("extract_video", extract_video),
}


@pytest.mark.parametrize("kind", ["audio", "video"])
def test_the_files_are_the_same_bytes_whether_the_analysis_or_the_core_chooses(
    call: RecordingInfo, kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name, extract = EXTRACTORS[kind]
    handed: list[dict[str, Any]] = []
    real = getattr(_core, name)

    def spy(*args: Any, **kwargs: Any) -> Any:
        handed.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(_core, name, spy)
    with open_recording(call.root) as rec:
        extract(rec, tmp_path / "named", workers=1)
        chosen = {s.capture: s.ssrc for t in rec.tracks for s in t.segments}
    assert handed and all(k["ssrcs"] and None not in k["ssrcs"] for k in handed), handed
    assert {ssrc for k in handed for ssrc in k["ssrcs"]} <= set(chosen.values())
    if kind == "audio":
        assert all(isinstance(k["opus_stereo"], bool) for k in handed)

    # The same run with every stream left to the core.
    monkeypatch.setattr(
        OutputJob, "streams", lambda job: ([None] * len(job.segments), False)
    )
    with open_recording(call.root) as rec:
        extract(rec, tmp_path / "chosen", workers=1)
    named, self_chosen = files(tmp_path / "named"), files(tmp_path / "chosen")
    assert len(named) >= 4
    assert named == self_chosen
    manifest = (tmp_path / "named" / "manifest.json").read_text()
    assert manifest == (tmp_path / "chosen" / "manifest.json").read_text()


def test_the_ssrc_handed_over_is_the_one_a_fresh_analysis_chooses(call: RecordingInfo) -> None:
    with open_recording(call.root) as rec:
        assert rec.archive is not None
        for seg in (s for t in rec.tracks for s in t.segments):
            with rec.archive.open_buffer(seg.capture) as buf:
                report = _core.analyze_capture(buf)
            assert seg.ssrc == report.primary_ssrc is not None
            assert seg.opus_stereo == report.primary_opus_stereo


@pytest.mark.parametrize("kind", ["audio", "video"])
def test_a_named_ssrc_missing_from_its_capture_is_a_capture_error(
    call: RecordingInfo, kind: str, tmp_path: Path
) -> None:
    with open_recording(call.root) as rec:
        assert rec.archive is not None
        track = next(t for t in rec.tracks if t.kind == kind and t.codec in ("opus", "vp8"))
        seg = track.segments[0]
        assert seg.ssrc is not None and seg.payload_type is not None
        with rec.archive.open_buffer(seg.capture) as buf:
            data = bytes(buf)

    def run(ssrc: int | None) -> Any:
        out = tmp_path / f"{kind}-{ssrc}.mkv"
        if kind == "audio":
            return _core.extract_audio(
                [(data, 0)],
                out,
                payload_type=seg.payload_type,
                ssrcs=[ssrc],
                opus_stereo=seg.opus_stereo,
            )
        return _core.extract_video(
            [(data, 0)], out, codec="vp8", payload_type=seg.payload_type, ssrcs=[ssrc]
        )

    wrong = (seg.ssrc + 1) & 0xFFFFFFFF
    with pytest.raises(CaptureError, match=f"no packet of SSRC {wrong:#010x}"):
        run(wrong)
    assert run(None).packets_written if kind == "audio" else run(None).frames_emitted
    assert run(seg.ssrc).packets_in == run(None).packets_in
