"""Decoding the mix's inputs: one FFmpeg filter graph per input, read in blocks, placed on the
mix timeline with its gain; and the EBU R128 loudness measurement that normalisation uses."""

from __future__ import annotations

import contextlib
import math
import os
import queue
import string
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from rawcore.errors import InputError
from rawcore.media.mix.types import MixInput, Samples, one_line

#: Below this integrated loudness a track is treated as silent (BS.1770's absolute gate).
SILENT_LUFS = -70.0
#: Length of the blocks the decoding filter graph hands over (s), and how many each track's
#: decoding thread may run ahead of the mixing; see `TrackDecoder`.
_DECODE_BLOCK_S = 1
_DECODE_AHEAD = 4
#: A read that starts this far into a track seeks there instead of decoding up to it.
_SEEK_AFTER_S = 2.0
#: The seek aims this much before the first sample wanted: the landing point is a packet at or
#: before the aim, and the decoder settles (Opus' pre-roll) before the samples that count.
_SEEK_MARGIN_S = 0.5


# ---------------------------------------------------------------------------------------------
# Decoding


def _ff_error(exc: BaseException) -> str:
    """An FFmpeg error's reason without its file name (which for the decoding graph would be
    the whole graph description)."""
    reason = getattr(exc, "strerror", None)
    return reason if isinstance(reason, str) and reason else one_line(exc)


_GRAPH_PLAIN = frozenset(string.ascii_letters + string.digits + "/._-")


def _escape(text: str) -> str:
    return "".join(c if c in _GRAPH_PLAIN or ord(c) > 127 else "\\" + c for c in text)


def _graph_value(text: str) -> str:
    """`text` as one option value in a filter graph description: escaped once for the filter's
    option list and once more for the graph (FFmpeg's two quoting levels). Every ASCII
    punctuation and blank is escaped, so no file name can be taken for syntax."""
    return _escape(_escape(text))


class TrackDecoder:
    """One input's decoder: float32 samples at the mix rate, read sequentially, on demand.

    Samples come in the input's own channel count reduced to mono or stereo (FFmpeg downmixes
    anything wider to stereo). Frame timestamps are not consulted: an extracted file's decoded
    samples are its timeline, gaps already filled.

    Decoding runs in an FFmpeg filter graph (lavfi's `amovie`, then `aformat` for float at the
    mix rate and `asetnsamples` for blocks of `_DECODE_BLOCK_S`): all of it in C with the GIL
    released, one Python step per block rather than per 20 ms codec frame, which used to cost
    more than the decoding itself and kept other threads waiting for the GIL.

    `start` (samples at the mix rate from the track's first sample) is where the first read
    will be: when it is more than `_SEEK_AFTER_S` in, the graph seeks to just before it (the
    movie source's seek point) and the position of the first decoded block is taken from its
    timestamp against the track's first decoded frame, so a read late in a long track costs
    what it reads, not the whole track before it. The block is placed as exactly as the
    container stamps its packets: within a millisecond in Matroska/WebM (whole-millisecond
    timestamps), to the sample in WAV. A file the demuxer cannot seek in is decoded from its
    start, as without `start`. `decoded` counts the samples the graph produced (the work).
    """

    def __init__(
        self,
        spec: MixInput,
        rate: int,
        stack: contextlib.ExitStack,
        *,
        ahead: bool = True,
        start: int = 0,
    ) -> None:
        import av

        self.spec = spec
        self.rate = rate
        try:
            with av.open(str(spec.path)) as probe:
                audio = probe.streams.audio
                if not audio:
                    raise InputError(f"{spec.path}: has no audio stream")
                stream = audio[0]
                index = stream.index
                self.channels = 1 if (stream.codec_context.channels or 1) == 1 else 2
                duration = None
                if stream.duration is not None and stream.time_base is not None:
                    duration = float(stream.duration * stream.time_base)
                elif probe.duration is not None:
                    duration = probe.duration / 1e6
                seek_s = start / rate - _SEEK_MARGIN_S if start > _SEEK_AFTER_S * rate else 0.0
                origin = 0
                if seek_s > 0:
                    # Where the graph's timestamps put the track's first sample (a stream
                    # that does not start at 0, an encoder delay already taken off).
                    first = next(probe.decode(stream), None)
                    if first is not None and first.time is not None:
                        origin = round(float(first.time) * rate)
        except (av.error.FFmpegError, OSError) as exc:
            raise InputError(f"{spec.path}: cannot open audio ({one_line(exc)})") from None
        #: The container's idea of the length (s), for progress only.
        self.declared_s = duration
        layout = "mono" if self.channels == 1 else "stereo"

        def graph(seek_s: float) -> str:
            seek = f":sp={seek_s:.6f}" if seek_s > 0 else ""
            return (
                f"amovie=filename={_graph_value(os.path.abspath(spec.path))}:s={index}{seek},"
                f"aformat=sample_fmts=flt:sample_rates={rate}:channel_layouts={layout},"
                f"asetnsamples=n={max(1, round(rate * _DECODE_BLOCK_S))}:p=0"
            )

        container: Any = None
        if seek_s > 0:
            # A file the demuxer cannot seek in is decoded from its start instead.
            with contextlib.suppress(av.error.FFmpegError, OSError):
                container = stack.enter_context(av.open(graph(seek_s), format="lavfi"))
            if container is None:
                seek_s = 0.0
        if container is None:
            try:
                container = stack.enter_context(av.open(graph(0.0), format="lavfi"))
            except (av.error.FFmpegError, OSError) as exc:
                raise InputError(f"{spec.path}: cannot decode audio ({_ff_error(exc)})") from None
        self._pending: Samples = np.zeros((0, self.channels), dtype=np.float32)
        self.consumed = 0
        #: Samples the graph has produced so far: the decoding work, seek or not.
        self.decoded = 0
        self._first_pts: int | None = None
        self.exhausted = False
        self._direct: Iterator[Samples] | None = None
        source = self._source(container)
        if seek_s > 0:
            self._place_first(source, start, origin)
        if not ahead:
            self._direct = source
            return
        # Decoding runs ahead on its own thread, at most `_DECODE_AHEAD` blocks, so the tracks
        # decode in parallel with each other and with the mixing. Stopped and joined before the
        # container closes (the exit stack runs callbacks last in, first out).
        self._blocks: queue.Queue[Samples | BaseException | None] = queue.Queue(_DECODE_AHEAD)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._decode_ahead, args=(source,), name="rawcore-mix-decode", daemon=True
        )
        stack.callback(self._close)
        self._thread.start()

    def _source(self, container: Any) -> Iterator[Samples]:
        import av

        try:
            for packet in container.demux(container.streams.audio[0]):
                if packet.size:
                    if self._first_pts is None and packet.pts is not None:
                        tb = packet.time_base
                        self._first_pts = round(packet.pts * tb * self.rate) if tb else 0
                    # Packed float (lavfi's sink only gives packed formats); a view, no copy.
                    block = np.frombuffer(packet, dtype=np.float32).reshape(-1, self.channels)
                    self.decoded += len(block)
                    yield block
        except av.error.FFmpegError as exc:
            raise InputError(f"{self.spec.path}: cannot decode audio ({_ff_error(exc)})") from None

    def _place_first(self, source: Iterator[Samples], start: int, origin: int) -> None:
        """After a seek: the first block becomes the pending samples at its own position
        (`consumed`), so reads and skips count from the track's first sample as without it."""
        block = next(source, None)
        if block is None:  # the seek went past the end: nothing from `start` on
            self.exhausted = True
            self.consumed = start
            return
        at = (self._first_pts or 0) - origin
        if at < 0:  # stamped before the first sample: drop what lies before it
            block, at = block[-at:], 0
        if at > start:
            # Landed after the first sample wanted (a container whose index overshoots by
            # more than the margin): the samples in between are not there to read; silence
            # stands for them rather than shifting the rest.
            gap = np.zeros((at - start, self.channels), dtype=np.float32)
            block, at = np.concatenate([gap, block]), start
        self._pending = block
        self.consumed = at

    def _decode_ahead(self, source: Iterator[Samples]) -> None:
        try:
            for block in source:
                if not self._put(block):
                    return
            self._put(None)
        except BaseException as exc:  # handed to the mixing thread, which raises it
            self._put(exc)

    def _put(self, item: Samples | BaseException | None) -> bool:
        while not self._stop.is_set():
            with contextlib.suppress(queue.Full):
                self._blocks.put(item, timeout=0.05)
                return True
        return False

    def _next_block(self) -> Samples | None:
        if self._direct is not None:
            return next(self._direct, None)
        item = self._blocks.get()
        if isinstance(item, BaseException):
            raise item
        return item

    def _close(self) -> None:
        self._stop.set()
        self._thread.join()

    def pieces(self, count: int) -> Iterator[Samples]:
        """The next `count` samples (fewer only at the end) as consecutive (n, channels)
        pieces, without copying. `exhausted` is set once a read finds the end."""
        while count > 0:
            if not len(self._pending):
                block = None if self.exhausted else self._next_block()
                if block is None:
                    self.exhausted = True
                    return
                self._pending = block
            piece = self._pending[:count]
            self._pending = self._pending[count:]
            count -= len(piece)
            self.consumed += len(piece)
            yield piece

    def read(self, count: int) -> Samples:
        """Up to `count` next samples, shape (n, channels); fewer only at the end."""
        parts = list(self.pieces(count))
        if len(parts) == 1:
            return parts[0]
        if not parts:
            return np.zeros((0, self.channels), dtype=np.float32)
        return np.concatenate(parts)

    def skip(self, count: int) -> None:
        for _ in self.pieces(count):
            pass


def to_channels(block: Samples, channels: int) -> Samples:
    """Centre a mono block in stereo (both sides at full level), or average stereo to mono."""
    if block.shape[1] == channels:
        return block
    if channels == 2:
        return block  # (n, 1) broadcasts over both channels where it is added
    averaged: Samples = block.mean(axis=1, keepdims=True, dtype=np.float32)
    return averaged


@dataclass
class PlacedTrack:
    track: TrackDecoder
    offset: int  # first sample's position on the mix timeline (negative: starts before it)
    gain: float
    gain_db: float
    loudness: float | None

    def add_into(self, window: Samples, pos: int) -> None:
        """Add this track's share of the mix samples [pos, pos + len(window))."""
        n = len(window)
        first = max(0, pos - self.offset)  # first input sample the window needs
        last = pos + n - self.offset  # one past the last
        if last <= 0 or self.track.exhausted:
            return
        if first > self.track.consumed:
            self.track.skip(first - self.track.consumed)
        at = self.offset + first - pos
        for piece in self.track.pieces(last - first):
            block = to_channels(piece, window.shape[1])
            target = window[at : at + len(piece)]
            if self.gain != 1.0:
                target += block * np.float32(self.gain)
            else:
                target += block
            at += len(piece)

    @property
    def end(self) -> int:
        """Where the track ends on the mix timeline (final once the track is exhausted)."""
        return self.offset + self.track.consumed


# ---------------------------------------------------------------------------------------------
# Loudness


def measure_loudness(spec: MixInput, rate: int, channels: int) -> float | None:
    """Integrated loudness (LUFS, EBU R128) of one input as the mix will hear it, or None when
    the track is silent; a first pass over the input with FFmpeg's `ebur128` filter."""
    import av

    layout = "mono" if channels == 1 else "stereo"
    with contextlib.ExitStack() as stack:
        track = TrackDecoder(spec, rate, stack)
        graph = av.filter.Graph()
        src = graph.add_abuffer(
            format="flt", sample_rate=rate, layout=layout, time_base=Fraction(1, rate)
        )
        meter = graph.add("ebur128", "metadata=1")
        sink = graph.add("abuffersink")
        src.link_to(meter)
        meter.link_to(sink)
        graph.configure()
        loudness: float | None = None
        pts = 0

        def drain() -> None:
            nonlocal loudness
            while True:
                try:
                    frame = sink.pull()
                except (av.error.BlockingIOError, av.error.EOFError):
                    return
                value = frame.metadata.get("lavfi.r128.I")
                if value is not None:
                    loudness = float(value)

        while True:
            data = track.read(rate)
            if not len(data):
                break
            block = np.ascontiguousarray(
                np.broadcast_to(to_channels(data, channels), (len(data), channels))
            )
            frame = av.AudioFrame.from_ndarray(block.reshape(1, -1), format="flt", layout=layout)
            frame.sample_rate = rate
            frame.pts = pts
            pts += len(block)
            src.push(frame)
            drain()
        src.push(None)
        drain()
    if loudness is None or not math.isfinite(loudness) or loudness <= SILENT_LUFS:
        return None
    return loudness
