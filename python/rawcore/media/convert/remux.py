"""remux: the input's packets into MP4 (ISO BMFF) as they are, no decoding, no encoding.

VP9 (`vp09` + `vpcC`), AV1 (`av01` + `av1C`), H.264 (`avc1` + `avcC`) and Opus (`Opus` +
`dOps`) go into an MP4 with `moov` before `mdat` (fast start); a stream that starts after t=0
gets an edit list, so players put its first packet where the source had it. VP8, FLAC and
G.711 have no MP4 sample entry players take: refused, pointing at `--mode editor`.

This module is FFmpeg's mp4 muxer, for what the core's remux (`native`, which takes every
Matroska/WebM input first) does not read: other containers (Ogg, MP4), audio from a second file
(`--audio`, merged by time), and frames other than H.264 stored in decode order (timestamps
going backwards; the core gives H.264 B-frames their composition offsets itself).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from rawcore.errors import InputError, OutputError
from rawcore.media.convert.probe import REMUX_AUDIO, REMUX_VIDEO, Inputs, StreamRef, open_media

#: Options of FFmpeg's mp4 muxer: index first; Opus in MP4 was "experimental" before FFmpeg 6.
MP4_OPTIONS = {"movflags": "+faststart", "strict": "experimental"}


@dataclass(frozen=True)
class RemuxStats:
    packets: int
    duration_s: float


def check_remuxable(inputs: Inputs) -> None:
    """Refuse, in one line, a codec MP4 players do not take."""
    for ref, table in ((inputs.video, REMUX_VIDEO), (inputs.audio, REMUX_AUDIO)):
        if ref is not None and ref.codec not in table:
            raise InputError(
                f"{ref.path}: {ref.kind} codec {ref.codec} cannot go into MP4 without "
                "re-encoding; use --mode editor"
            )


def open_mp4(path: Path) -> Any:
    import av

    try:
        return av.open(str(path), "w", format="mp4", options=dict(MP4_OPTIONS))
    except (av.error.FFmpegError, OSError) as exc:
        raise OutputError(f"{path}: cannot write ({exc})") from None


def merged_packets(
    stack: ExitStack, refs: list[tuple[StreamRef, float]]
) -> Iterator[tuple[float, Any, int]]:
    """`(time_s, packet, which)` of every packet of the streams in `refs` in time order; `which`
    is the position in `refs`, each stream shifted by its offset (s). Streams of one file come
    in the file's own order; two files are merged by time."""
    by_path: dict[Path, list[tuple[int, StreamRef, float]]] = {}
    for i, (ref, offset) in enumerate(refs):
        by_path.setdefault(ref.path, []).append((i, ref, offset))

    def walk(
        path: Path, wanted: list[tuple[int, StreamRef, float]]
    ) -> Iterator[tuple[float, int, Any, int]]:
        c = stack.enter_context(open_media(path))
        # Per stream index: position in `refs`, shift in time-base ticks, time base as float.
        which: dict[int, tuple[int, int, float]] = {}
        for i, ref, offset in wanted:
            tb = c.streams[ref.index].time_base
            which[ref.index] = (i, round(Fraction(offset) / tb) if offset else 0, float(tb))
        streams = [c.streams[ref.index] for _, ref, _ in wanted]
        n = 0
        for packet in c.demux(*streams):
            ts = packet.dts if packet.dts is not None else packet.pts
            if ts is None:
                continue  # the demuxer's flush packet
            i, shift, tb = which[packet.stream.index]
            if shift:
                if packet.pts is not None:
                    packet.pts += shift
                if packet.dts is not None:
                    packet.dts += shift
                ts += shift
            n += 1
            yield ts * tb, n, packet, i

    walks = [walk(p, w) for p, w in by_path.items()]
    if len(walks) == 1:
        for t, _, packet, i in walks[0]:
            yield t, packet, i
        return
    for t, _, packet, i in heapq.merge(*walks, key=lambda item: (item[0], item[1])):
        yield t, packet, i


def remux(
    inputs: Inputs, out: Path, *, on_progress: Callable[[float], None] | None = None
) -> RemuxStats:
    """Write `out` (MP4) with the inputs' packets; raises `InputError` for codecs MP4 players
    do not take (see `check_remuxable`)."""
    check_remuxable(inputs)
    refs = [(r, 0.0) for r in (inputs.video,) if r is not None]
    if inputs.audio is not None:
        refs.append((inputs.audio, inputs.audio_offset_s))
    duration = _duration_s(inputs)
    import av

    packets = 0
    last = 0.0
    with ExitStack() as stack:
        sources = {}
        for ref, _ in refs:
            sources[ref.path] = stack.enter_context(open_media(ref.path))
        output = open_mp4(out)
        stack.callback(output.close)
        # Opaque: the codec parameters are copied as they are, whichever decoder FFmpeg would
        # pick (AV1's is libdav1d, which has no encoder of that name to look up).
        streams = [
            output.add_stream_from_template(sources[r.path].streams[r.index], opaque=True)
            for r, _ in refs
        ]
        try:
            for t, packet, i in merged_packets(stack, refs):
                packet.stream = streams[i]
                output.mux(packet)
                packets += 1
                if on_progress is not None and duration and t - last > 5.0:
                    last = t
                    on_progress(min(1.0, t / duration))
        except av.error.FFmpegError as exc:
            raise InputError(f"{refs[0][0].path}: cannot remux: {exc.strerror}") from None
    return RemuxStats(packets, duration)


def _duration_s(inputs: Inputs) -> float:
    longest = 0.0
    for ref, offset in ((inputs.video, 0.0), (inputs.audio, inputs.audio_offset_s)):
        if ref is None:
            continue
        with open_media(ref.path) as c:
            if c.duration is not None:
                longest = max(longest, c.duration / 1_000_000 + offset)
    return longest


__all__ = [
    "MP4_OPTIONS",
    "RemuxStats",
    "check_remuxable",
    "merged_packets",
    "open_mp4",
    "remux",
]
