"""Splitting packet captures and Janus recordings into per-stream rtpdump captures.

The same 60-minute Opus stream as `test_bench_parse.py` (0.5 % loss, 1 % reordered pairs,
0.2 % duplicates), written as a classic pcap (Ethernet / IPv4 / UDP) and as a `.mjr` v2 by the
test helpers, then split by `_core.split_capture` from a read-only `mmap`. The peer is
`janus-pp-rec --parse` on the same `.mjr` (a whole process: it reads every packet header and
counts them), timed from Python with `subprocess.run`. Figures go in BENCHMARKS.md.
"""

from __future__ import annotations

import mmap
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers.mjr import write_mjr, write_pcap
from rawcore import _core
from test_bench_parse import _packets


@pytest.fixture(scope="module")
def opus_hour_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("split")
    packets = [
        (p.arrival_ms, p.data)
        for p in _packets(minutes=60, pps=50, payload=90, clock=48000, seed=1)
    ]
    write_pcap(folder / "opus_60min.pcap", packets)
    write_mjr(folder / "opus_60min.mjr", packets)
    return {"pcap": folder / "opus_60min.pcap", "mjr": folder / "opus_60min.mjr"}


@pytest.mark.parametrize("fmt", ["pcap", "mjr"])
def test_split_capture(benchmark, opus_hour_files: dict[str, Path], fmt: str) -> None:  # type: ignore[no-untyped-def]
    with opus_hour_files[fmt].open("rb") as f:
        data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    split = benchmark(_core.split_capture, data)
    (stream,) = split.streams
    mean = benchmark.stats.stats.mean
    benchmark.extra_info["bytes"] = len(data)
    benchmark.extra_info["packets"] = stream.rtp_packets
    benchmark.extra_info["MB_per_s"] = round(len(data) / mean / 1e6, 1)
    benchmark.extra_info["Mpackets_per_s"] = round(stream.rtp_packets / mean / 1e6, 2)


@pytest.mark.skipif(shutil.which("janus-pp-rec") is None, reason="needs janus-tools")
def test_peer_janus_pp_rec_parse(benchmark, opus_hour_files: dict[str, Path]) -> None:  # type: ignore[no-untyped-def]
    path = opus_hour_files["mjr"]

    def run() -> str:
        out = subprocess.run(
            ["janus-pp-rec", "--parse", str(path)], capture_output=True, text=True, check=True
        )
        return out.stdout + out.stderr

    text = benchmark.pedantic(run, rounds=3, iterations=1)
    assert "Counted" in text
