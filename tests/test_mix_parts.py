"""The mix follows `--max-fill` as extraction does: where more than max-fill passes with no
participant's packets at all (a broken capture), the mix is split into `_part2`, … instead of
encoding the dead time. Checked on DECODED output (PyAV): each part's length and where each
participant's beep lands in it.

Captures come from GStreamer's opusenc (`opus_packets`); the hole is made by moving the second
half of every track's packets (arrival and RTP time) later by the hole's length.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import rawcore
from helpers.audio_truth import av_available, decode_audio, tone_onsets
from helpers.gst import gst_available, opus_packets
from helpers.recording import RecordingInfo, SessionSpec, TrackSpec, build_recording
from helpers.rtpdump import CapturedPacket, parse_rtp_header, rewrite_rtp, write_rtpdump
from rawcore.pipeline import process

pytestmark = pytest.mark.skipif(
    not (gst_available() and av_available()), reason="needs GStreamer and PyAV"
)

RATE = 48_000
FRAME_S = 0.020 + 1e-6  # one 20 ms frame (and rounding)
#: participant, ssrc, beep (start s of the track's media, length, Hz): one before the hole,
#: one after it.
SPEAKERS = [("user_1", 0x1111, (0.5, 0.3, 440.0)), ("user_2", 0x2222, (3.0, 0.3, 660.0))]
HALF = 100  # packets (2 s) before the hole, as many after it


def call_with_a_hole(tmp: Path, hole_ms: int) -> RecordingInfo:
    """Two participants talking for 4 s, with `hole_ms` after the first 2 s where neither
    track has a single packet."""
    sent = {u: list(opus_packets(4.0, tone_bursts=(b,), ssrc=s)) for u, s, b in SPEAKERS}
    info = build_recording(
        tmp / "rec",
        [
            SessionSpec(
                user,
                "session_1",
                [
                    TrackSpec(
                        "audio",
                        "opus",
                        packets=sent[user],
                        sender_reports=None,
                    )
                ],
            )
            for user in sent
        ],
    )
    for track in info.tracks():
        records = []
        for i, data in enumerate(sent[track.participant_id]):
            later = i >= HALF
            ts = parse_rtp_header(data).ts + (hole_ms * 48 if later else 0)
            at = 20 * i + (hole_ms if later else 0)
            records.append(CapturedPacket(at, rewrite_rtp(data, ts=ts)))
        write_rtpdump(track.rtpdump_path, records, start_unix=track.capture_start_unix_ms / 1000)
    return info


def run_process_all(
    info: RecordingInfo, out: Path, max_fill: str
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RAWCORE_CACHE_DIR": str(out.parent / "cache")}
    return subprocess.run(
        [sys.executable, "-m", "rawcore", "process-all", "--input-dir", str(info.root),
         "-o", str(out), "--max-fill", max_fill, "--mix-format", "wav"],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )  # fmt: skip


def mix_api(info: RecordingInfo, out: Path, max_fill_ms: int) -> list[str]:
    """`mix-audio`'s path (the core mix) with `max_fill_ms`; its warnings."""
    with rawcore.open_recording(info.root) as rec:
        result = process.mix_recording(rec, out, fmt="wav", max_fill_ms=max_fill_ms)
    assert result.failures == []
    return [w for w in result.warnings if "--max-fill" in w]


def mix_cli(info: RecordingInfo, out: Path, max_fill_ms: int) -> list[str]:
    """The `mix-audio` command with `--max-fill`; its exit is 0 and its warnings on stderr."""
    env = {**os.environ, "RAWCORE_CACHE_DIR": str(out.parent / "cache")}
    run = subprocess.run(
        [sys.executable, "-m", "rawcore", "mix-audio", "--input-dir", str(info.root),
         "-o", str(out), "--max-fill", f"{max_fill_ms / 1000:g}s", "--format", "wav"],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    return [w for w in run.stderr.splitlines() if "--max-fill" in w]


def mixes(out: Path) -> list[dict[str, object]]:
    doc = json.loads((out / "manifest.json").read_text())
    return sorted((e for e in doc["outputs"] if e["kind"] == "mix"), key=lambda e: e["path"])


def check_parts(out: Path, hole_ms: int, warnings: list[str]) -> None:
    entries = mixes(out)
    assert [e["path"] for e in entries] == sorted(p.name for p in out.glob("composite_*.wav"))
    if hole_ms <= 5_000:  # one file as before: the hole is filled with silence
        [entry] = entries
        assert warnings == []
        dec = decode_audio(out / str(entry["path"]))
        assert dec.duration_s == pytest.approx(4.0 + hole_ms / 1000, abs=FRAME_S)
        assert tone_onsets(dec.samples, RATE, 440.0) == pytest.approx([0.5], abs=0.01)
        assert tone_onsets(dec.samples, RATE, 660.0) == pytest.approx(
            [3.0 + hole_ms / 1000], abs=0.01
        )
        return
    first, second = entries
    assert str(second["path"]) == str(first["path"]).replace(".wav", "_part2.wav")
    [warning] = warnings
    assert "not filled" in warning
    assert warning.removeprefix("rawcore: warning: ").startswith(f"{second['path']}: ")
    # The manifest tells it too, on the part the gap comes before.
    assert first["warnings"] == []
    assert warning.endswith(str(second["warnings"][0]))  # type: ignore[index]
    one, two = decode_audio(out / str(first["path"])), decode_audio(out / str(second["path"]))
    assert one.duration_s == pytest.approx(2.0, abs=FRAME_S)
    assert two.duration_s == pytest.approx(2.0, abs=FRAME_S)
    assert first["duration_ms"] == pytest.approx(2_000, abs=20)
    assert second["duration_ms"] == pytest.approx(2_000, abs=20)
    # Each beep in its part, at its place; nothing of the other's.
    assert tone_onsets(one.samples, RATE, 440.0) == pytest.approx([0.5], abs=0.01)
    assert tone_onsets(one.samples, RATE, 660.0) == []
    assert tone_onsets(two.samples, RATE, 660.0) == pytest.approx([1.0], abs=0.01)
    assert tone_onsets(two.samples, RATE, 440.0) == []
    gap = int(second["start_unix_ms"]) - int(first["start_unix_ms"])  # type: ignore[call-overload]
    assert gap == pytest.approx(2_000 + hole_ms, abs=20)
    assert first["track_ids"] == second["track_ids"]


@pytest.mark.parametrize("hole_ms", [20_000, 3_000], ids=["hole longer than max-fill", "shorter"])
def test_process_all_splits_the_mix_where_no_track_has_packets_for_longer_than_max_fill(
    tmp_path: Path, hole_ms: int
) -> None:
    info = call_with_a_hole(tmp_path, hole_ms)
    out = tmp_path / "out"
    run = run_process_all(info, out, "5s")
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    warnings = [w for w in run.stderr.splitlines() if "composite_" in w and "--max-fill" in w]
    check_parts(out, hole_ms, warnings)
    # The QA report lists every output the manifest does, the mix's parts and their warnings too.
    manifest = json.loads((out / "manifest.json").read_text())
    qa = json.loads((out / "qa_report.json").read_text())
    assert sorted(o["path"] for o in qa["outputs"]) == sorted(
        o["path"] for o in manifest["outputs"]
    )
    qa_mixes = [o for o in qa["outputs"] if o["path"].startswith("composite_")]
    assert len(qa_mixes) == (2 if hole_ms > 5_000 else 1)
    assert sum(len(o["warnings"]) for o in qa_mixes) == (1 if hole_ms > 5_000 else 0)


@pytest.mark.parametrize("mix", [mix_api, mix_cli], ids=["api", "cli"])
@pytest.mark.parametrize("hole_ms", [20_000, 3_000], ids=["hole longer than max-fill", "shorter"])
def test_the_core_mix_splits_where_no_track_has_packets_for_longer_than_max_fill(
    tmp_path: Path, hole_ms: int, mix: Callable[[RecordingInfo, Path, int], list[str]]
) -> None:
    info = call_with_a_hole(tmp_path, hole_ms)
    out = tmp_path / "out"
    check_parts(out, hole_ms, mix(info, out, 5_000))


def test_a_hole_of_days_costs_no_more_than_a_hole_of_seconds(tmp_path: Path) -> None:
    # The fuzzer's capture: packets 24 days apart in every track. Nothing of the hole is
    # encoded, so the parts are as small as for a 20 s hole.
    days = call_with_a_hole(tmp_path / "days", 24 * 86_400_000)
    out = tmp_path / "days" / "out"
    warnings = mix_api(days, out, 3 * 3_600_000)
    entries = mixes(out)
    assert len(entries) == 2 and len(warnings) == 1
    for entry in entries:
        assert decode_audio(out / str(entry["path"])).duration_s == pytest.approx(2.0, abs=FRAME_S)
        assert int(entry["bytes"]) < 2 * 2 * RATE * 2.1  # type: ignore[call-overload]


@pytest.mark.parametrize("command", ["extract-audio", "mux-av", "process-all"])
def test_a_split_warns_about_files_the_command_wrote_and_lists_it_in_the_manifest(
    tmp_path: Path, command: str
) -> None:
    # mux-av joins the audio and video parts under its own names: its warning must name those,
    # not the single-stream files it never writes.
    info = call_with_a_hole(tmp_path, 20_000)
    out = tmp_path / "out"
    env = {**os.environ, "RAWCORE_CACHE_DIR": str(tmp_path / "cache")}
    run = subprocess.run(
        [sys.executable, "-m", "rawcore", command, "--input-dir", str(info.root),
         "-o", str(out), "--max-fill", "5s"],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    prefix = "rawcore: warning: "
    named = [
        w[len(prefix) :].split(": ", 1)[0] for w in run.stderr.splitlines() if "--max-fill" in w
    ]
    written = {p.name for p in out.iterdir()}
    assert named and set(named) <= written
    assert all("_part2." in name for name in named)
    manifest = json.loads((out / "manifest.json").read_text())
    for entry in manifest["outputs"]:
        split = [w for w in entry["warnings"] if "--max-fill" in w]
        assert len(split) == ("_part2." in entry["path"]), entry
