"""Properties of the core over damaged packet sequences of one valid Opus stream.

Hypothesis renumbers a real 2 s Opus stream (so sequence numbers and timestamps may wrap),
drops, duplicates and locally reorders its packets, and runs the result through the real core:
`_core.extract_audio` writes Matroska that PyAV decodes, `_core.analyze_capture` counts. Whatever
the damage, the output's timestamps only increase, no frame appears twice, and the decoded
length equals the span of the packets that survived (to one frame); the analysis counts exactly
the duplicates and the interior losses that were made.
"""

from __future__ import annotations

import io
import itertools
from pathlib import Path

import pytest
from helpers.audio_truth import av_available
from helpers.gst import gst_available, opus_packets
from helpers.rtpdump import CapturedPacket, rewrite_rtp, write_rtpdump
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.skipif(
    not (gst_available() and av_available()), reason="needs GStreamer and PyAV"
)

FRAME = 960  # 20 ms at 48 kHz
COUNT = 100
MAX_DISPLACEMENT = 8  # well inside the core's reorder window
PROPERTY_SETTINGS = settings(
    max_examples=25,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def stream() -> list[bytes]:
    return list(opus_packets(COUNT * 0.02))[:COUNT]


@st.composite
def damage(draw: st.DrawFn) -> dict[str, object]:
    lost = draw(st.sets(st.integers(0, COUNT - 1), max_size=15))
    if len(lost) == COUNT:
        lost.discard(0)
    return {
        # Near the top of the ranges about half the time, so wraps happen inside the stream.
        "seq0": draw(st.one_of(st.integers(0, 0xFFFF), st.integers(0xFFFF - COUNT, 0xFFFF))),
        "ts0": draw(
            st.one_of(
                st.integers(0, 0xFFFF_FFFF),
                st.integers(0xFFFF_FFFF - COUNT * FRAME, 0xFFFF_FFFF),
            )
        ),
        "lost": lost,
        "duplicated": draw(st.sets(st.integers(0, COUNT - 1), max_size=15)),
        "jitter": draw(st.lists(st.integers(0, MAX_DISPLACEMENT), min_size=COUNT, max_size=COUNT)),
    }


def _capture(stream: list[bytes], d: dict[str, object]) -> tuple[bytes, list[int], int]:
    """The damaged capture, the stream indices that survived (each once) and the index of the
    first packet to arrive."""
    seq0, ts0 = int(d["seq0"]), int(d["ts0"])  # type: ignore[call-overload]
    lost: set[int] = d["lost"]  # type: ignore[assignment]
    duplicated: set[int] = d["duplicated"]  # type: ignore[assignment]
    jitter: list[int] = d["jitter"]  # type: ignore[assignment]
    kept = [i for i in range(COUNT) if i not in lost]
    # Arrival order: sorted by send slot plus a bounded displacement; a duplicate comes 1-3
    # slots after its original.
    arrivals: list[tuple[float, int]] = []
    for i in kept:
        arrivals.append((i + jitter[i] + 0.1, i))
        if i in duplicated:
            arrivals.append((i + jitter[i] + 1 + jitter[i] % 3 + 0.2, i))
    arrivals.sort()
    records = [
        CapturedPacket(
            20 * n,
            rewrite_rtp(stream[i], seq=seq0 + i, ts=ts0 + i * FRAME),
        )
        for n, (_, i) in enumerate(arrivals)
    ]
    out = io.BytesIO()
    write_rtpdump(out, records, start_unix=1_772_359_200.0)
    return out.getvalue(), kept, arrivals[0][1]


def _decode(path: Path) -> tuple[list[int], int]:
    """Packet timestamps in demux order (laced frames without one are skipped) and the
    decoded samples."""
    import av

    pts: list[int] = []
    samples = 0
    with av.open(str(path)) as container:
        audio = container.streams.audio[0]
        for packet in container.demux(audio):
            if packet.size == 0:
                continue
            if packet.pts is not None:
                pts.append(int(packet.pts * packet.time_base * 48_000))
            samples += sum(f.samples for f in packet.decode())
    return pts, samples


@PROPERTY_SETTINGS
@given(d=damage())
def test_damaged_stream_extracts_to_its_span(
    d: dict[str, object], stream: list[bytes], tmp_path: Path
) -> None:
    from rawcore import _core

    capture, kept, _ = _capture(stream, d)
    out = tmp_path / "out.mkv"
    report = _core.extract_audio([(capture, 0)], str(out), container="matroska", payload_type=111)
    assert report.packets_written == len(kept)
    pts, samples = _decode(out)
    assert all(b > a for a, b in itertools.pairwise(pts)), "timestamps must increase"
    span = (kept[-1] - kept[0] + 1) * FRAME
    assert abs(samples - span) <= FRAME, (samples, span)
    assert report.duration_ms == pytest.approx(span / 48, abs=20)


@PROPERTY_SETTINGS
@given(d=damage())
def test_damaged_stream_is_counted_exactly(d: dict[str, object], stream: list[bytes]) -> None:
    from rawcore import _core

    capture, kept, first = _capture(stream, d)
    duplicated: set[int] = d["duplicated"]  # type: ignore[assignment]
    report = _core.analyze_capture(capture, clock_rates=[(111, 48_000)])
    [s] = report.streams
    dups = len([i for i in kept if i in duplicated])
    assert s.packets == len(kept) + dups
    assert s.duplicates == dups
    # Statistics start at the first packet to arrive: one sent before it that arrives later is
    # late, not lost and not expected.
    before = [i for i in kept if i < first]
    assert s.late == len(before)
    assert s.expected == kept[-1] - first + 1
    assert s.lost == s.expected - (len(kept) - len(before))
    assert s.first_seq & 0xFFFF == (int(d["seq0"]) + first) & 0xFFFF  # type: ignore[call-overload]
