"""Parse + reorder throughput of the core on long generated captures.

Run with `make bench` (or `.venv/bin/python -m pytest benches --benchmark-enable
--benchmark-only`). Figures go in BENCHMARKS.md.
"""

from __future__ import annotations

import mmap
import random
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.rtpdump import CapturedPacket, write_rtpdump
from rawcore import _core

_RTP = struct.Struct(">BBHII")


def _packets(
    *, minutes: int, pps: int, payload: int, clock: int, seed: int
) -> Iterator[CapturedPacket]:
    """A realistic stream: 1% reordered pairs, 0.5% loss, 0.2% duplicates, seq wraps."""
    rng = random.Random(seed)
    body = bytes(rng.randrange(256) for _ in range(payload))
    step = clock // pps
    held: CapturedPacket | None = None
    for i in range(minutes * 60 * pps):
        if rng.random() < 0.005:
            continue
        header = _RTP.pack(
            0x80,
            96 | (0x80 if i % 4 == 3 else 0),
            (40000 + i) & 0xFFFF,
            (i * step) & 0xFFFFFFFF,
            0x1234,
        )
        pkt = CapturedPacket(arrival_ms=i * 1000 // pps + rng.randrange(3), data=header + body)
        if held is not None:
            yield pkt
            yield held
            held = None
        elif rng.random() < 0.01:
            held = pkt
        else:
            yield pkt
        if rng.random() < 0.002:
            yield pkt


@pytest.fixture(scope="module")
def opus_hour(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bench") / "opus_60min.rtpdump"
    write_rtpdump(
        path,
        _packets(minutes=60, pps=50, payload=90, clock=48000, seed=1),
        start_unix=1_772_359_200.0,
    )
    return path


@pytest.fixture(scope="module")
def video_10min(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bench") / "video_10min.rtpdump"
    write_rtpdump(
        path,
        _packets(minutes=10, pps=120, payload=1100, clock=90000, seed=2),
        start_unix=1_772_359_200.0,
    )
    return path


def _mapped(path: Path) -> mmap.mmap:
    with path.open("rb") as f:
        return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)


@pytest.mark.parametrize("capture", ["opus_hour", "video_10min"])
def test_analyze_capture(benchmark, capture: str, request: pytest.FixtureRequest) -> None:  # type: ignore[no-untyped-def]
    path: Path = request.getfixturevalue(capture)
    data = _mapped(path)
    report = benchmark(_core.analyze_capture, data, clock_rates=[(96, 48000)])
    (stream,) = report.streams
    benchmark.extra_info["bytes"] = len(data)
    benchmark.extra_info["packets"] = stream.packets + stream.duplicates
    mean = benchmark.stats.stats.mean
    benchmark.extra_info["MB_per_s"] = round(len(data) / mean / 1e6, 1)
    benchmark.extra_info["Mpackets_per_s"] = round(report.rtp_records / mean / 1e6, 2)
    assert stream.lost > 0 and stream.duplicates > 0 and stream.reordered > 0


def test_capture_columns(benchmark, opus_hour: Path) -> None:  # type: ignore[no-untyped-def]
    data = _mapped(opus_hour)
    cols = benchmark(_core.capture_columns, data)
    benchmark.extra_info["Mpackets_per_s"] = round(
        len(cols["seq"]) / benchmark.stats.stats.mean / 1e6, 2
    )
