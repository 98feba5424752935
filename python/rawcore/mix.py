"""mix: one audio file of the whole call from the per-participant tracks.

The mixer owns the call's common timeline. Every input (normally a timeline-exact file from
`extract-audio`) is placed with sample accuracy at its wall-clock start, decoded by its own
FFmpeg filter graph and pulled in fixed windows, so memory stays flat however long the call
is: nothing holds more than a few seconds of any track. Each window is summed in NumPy with
the per-input gains, passed through a look-ahead peak limiter that never lets a sample above
-1 dBFS, and encoded as it goes (MP3, Ogg Opus, M4A/AAC, FLAC or WAV). Optional loudness
normalisation measures each input first (EBU R128 integrated loudness, FFmpeg's `ebur128`
filter) and evens them out to a target before they are summed.

Work is spread over the cores, since FFmpeg's decoders and encoders run without the GIL:
inputs decode ahead on threads of their own, the encoder runs on a worker thread, and MP3 (the
slowest encoder, and the default) is cut into chunks encoded in parallel and joined without a
seam. Summing and limiting stay on the calling thread, which also owns the order of output.
"""

from __future__ import annotations

import contextlib
import math
import os
import queue
import string
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from rawcore.errors import InputError, OutputError
from rawcore.output import atomic_path, prepare_output_dir, safe_component

__all__ = [
    "MIX_FORMATS",
    "MixFormat",
    "MixInput",
    "MixReport",
    "mix_audio",
    "mixed_name",
]

MixFormat = Literal["mp3", "opus", "m4a", "flac", "wav"]
MIX_FORMATS: tuple[MixFormat, ...] = ("mp3", "opus", "m4a", "flac", "wav")

Samples = npt.NDArray[np.float32]


@dataclass(frozen=True)
class _Encoding:
    codec: str
    container: str
    #: Default bit rate (bit/s) for mono and stereo; None for lossless codecs.
    bit_rate: tuple[int, int] | None
    options: tuple[tuple[str, str], ...] = ()
    rates: tuple[int, ...] | None = None
    #: Decode each input on a thread of its own (see `_Track`). Not where one encoder thread is
    #: the bottleneck: more threads only take CPU time from it (Opus: measured 20 % slower).
    decode_ahead: bool = True


_ENCODINGS: dict[str, _Encoding] = {
    # LAME quality 5 (of 0 best .. 9 fastest): indistinguishable on speech at these rates and
    # about 20 % faster than LAME's default of 3, which matters for hour-long calls. No bit
    # reservoir: no frame may borrow bytes from the one before, which is what lets chunks
    # encoded in parallel be joined (`_Mp3Chunks`); measured to cost < 0.1 dB SNR here.
    "mp3": _Encoding(
        "libmp3lame",
        "mp3",
        (64_000, 128_000),
        (("compression_level", "5"), ("reservoir", "0")),
        rates=(8_000, 11_025, 12_000, 16_000, 22_050, 24_000, 32_000, 44_100, 48_000),
    ),
    "opus": _Encoding(
        "libopus",
        "ogg",
        (48_000, 96_000),
        rates=(8_000, 12_000, 16_000, 24_000, 48_000),
        decode_ahead=False,
    ),
    "m4a": _Encoding("aac", "ipod", (96_000, 160_000), decode_ahead=False),
    "flac": _Encoding("flac", "flac", None),
    "wav": _Encoding("pcm_s16le", "wav", None),
}

#: The limiter's ceiling: -1 dBFS leaves lossy encoders room for their overshoot.
CEILING_DBFS = -1.0
#: How far the limiter looks ahead, i.e. how long its attack ramp is.
_LOOKAHEAD_MS = 5
#: Release speed: the gain climbs back linearly in dB, 20 dB in 80 ms.
_RELEASE_DB_PER_MS = 0.25
#: Normalisation gains are capped so a near-silent track is not boosted into noise.
_MAX_NORMALIZE_DB = 20.0
#: Below this integrated loudness a track is treated as silent (BS.1770's absolute gate).
_SILENT_LUFS = -70.0
#: Reported peak of an all-silent mix (a finite number keeps reports JSON-friendly).
_FLOOR_DBFS = -120.0
_WINDOW_S = 5
#: Length of the blocks the decoding filter graph hands over (s), and how many each track's
#: decoding thread may run ahead of the mixing; see `_Track`.
_DECODE_BLOCK_S = 1
_DECODE_AHEAD = 4
#: MP3 is encoded in chunks of about this length by parallel LAME encoders (see `_Mp3Chunks`).
_MP3_CHUNK_S = 20
#: Samples each MP3 chunk's encoder is run on before and after its chunk (rounded up to whole
#: frames), so that the frames kept at a seam are encoded as if there were no seam. Measured:
#: 1152 samples before is too few (a glitch at every seam), 2304 at 48 kHz and 1728 at 24 kHz
#: before and 576 after are enough; these leave a margin of two.
_MP3_PREROLL = 4608
_MP3_POSTROLL = 2304
#: Upper bound on encoder threads; each takes one core when busy.
_MAX_ENCODERS = 4


@dataclass(frozen=True)
class MixInput:
    """One track of the mix."""

    #: Any audio file PyAV can decode; normally a file written by `extract-audio`.
    path: Path
    #: Wall-clock time (Unix ms) of the file's first sample.
    start_unix_ms: float
    #: Participant id, for reports and error messages.
    label: str
    gain_db: float = 0.0


@dataclass(frozen=True)
class MixReport:
    """What `mix_audio` wrote."""

    duration_ms: int
    sample_rate: int
    channels: int
    #: Highest sample of the mix before encoding (-120 for a silent mix).
    peak_dbfs: float
    #: Time during which the limiter held the gain below 1.
    limited_ms: int
    #: Per input: label, start_ms (from the mix start), duration_ms (decoded),
    #: loudness_lufs (measured when normalising, else None) and gain_db (applied in total).
    inputs: list[dict[str, Any]]


def mixed_name(call_type: str | None, call_id: str | None, call_start_ms: int, fmt: str) -> str:
    """The file name stream-cli gives a call's mixed audio:
    `composite_{callType}_{callId}_audio_{callStartMs}.{ext}`."""
    if fmt not in MIX_FORMATS:
        raise InputError(f"unknown mix format {fmt!r}; choose one of {', '.join(MIX_FORMATS)}")
    call_type_part = safe_component(call_type, fallback="call")
    call_id_part = safe_component(call_id, fallback="unknown")
    return f"composite_{call_type_part}_{call_id_part}_audio_{call_start_ms}.{fmt}"


# ---------------------------------------------------------------------------------------------
# Decoding


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _ff_error(exc: BaseException) -> str:
    """An FFmpeg error's reason without its file name (which for the decoding graph would be
    the whole graph description)."""
    reason = getattr(exc, "strerror", None)
    return reason if isinstance(reason, str) and reason else _one_line(exc)


_GRAPH_PLAIN = frozenset(string.ascii_letters + string.digits + "/._-")


def _escape(text: str) -> str:
    return "".join(c if c in _GRAPH_PLAIN or ord(c) > 127 else "\\" + c for c in text)


def _graph_value(text: str) -> str:
    """`text` as one option value in a filter graph description: escaped once for the filter's
    option list and once more for the graph (FFmpeg's two quoting levels). Every ASCII
    punctuation and blank is escaped, so no file name can be taken for syntax."""
    return _escape(_escape(text))


class _Track:
    """One input's decoder: float32 samples at the mix rate, read sequentially, on demand.

    Samples come in the input's own channel count reduced to mono or stereo (FFmpeg downmixes
    anything wider to stereo). Frame timestamps are not consulted: an extracted file's decoded
    samples are its timeline, gaps already filled.

    Decoding runs in an FFmpeg filter graph (lavfi's `amovie`, then `aformat` for float at the
    mix rate and `asetnsamples` for blocks of `_DECODE_BLOCK_S`): all of it in C with the GIL
    released, one Python step per block rather than per 20 ms codec frame, which used to cost
    more than the decoding itself and kept other threads waiting for the GIL.
    """

    def __init__(
        self, spec: MixInput, rate: int, stack: contextlib.ExitStack, *, ahead: bool = True
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
        except (av.error.FFmpegError, OSError) as exc:
            raise InputError(f"{spec.path}: cannot open audio ({_one_line(exc)})") from None
        #: The container's idea of the length (s), for progress only.
        self.declared_s = duration
        layout = "mono" if self.channels == 1 else "stereo"
        graph = (
            f"amovie=filename={_graph_value(os.path.abspath(spec.path))}:s={index},"
            f"aformat=sample_fmts=flt:sample_rates={rate}:channel_layouts={layout},"
            f"asetnsamples=n={max(1, round(rate * _DECODE_BLOCK_S))}:p=0"
        )
        try:
            container: Any = stack.enter_context(av.open(graph, format="lavfi"))
        except (av.error.FFmpegError, OSError) as exc:
            raise InputError(f"{spec.path}: cannot decode audio ({_ff_error(exc)})") from None
        self._pending: Samples = np.zeros((0, self.channels), dtype=np.float32)
        self.consumed = 0
        self.exhausted = False
        self._direct: Iterator[Samples] | None = None
        if not ahead:
            self._direct = self._source(container)
            return
        # Decoding runs ahead on its own thread, at most `_DECODE_AHEAD` blocks, so the tracks
        # decode in parallel with each other and with the mixing. Stopped and joined before the
        # container closes (the exit stack runs callbacks last in, first out).
        self._blocks: queue.Queue[Samples | BaseException | None] = queue.Queue(_DECODE_AHEAD)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._decode_ahead, args=(container,), name="rawcore-mix-decode", daemon=True
        )
        stack.callback(self._close)
        self._thread.start()

    def _source(self, container: Any) -> Iterator[Samples]:
        import av

        try:
            for packet in container.demux(container.streams.audio[0]):
                if packet.size:
                    # Packed float (lavfi's sink only gives packed formats); a view, no copy.
                    yield np.frombuffer(packet, dtype=np.float32).reshape(-1, self.channels)
        except av.error.FFmpegError as exc:
            raise InputError(f"{self.spec.path}: cannot decode audio ({_ff_error(exc)})") from None

    def _decode_ahead(self, container: Any) -> None:
        try:
            for block in self._source(container):
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


def _to_channels(block: Samples, channels: int) -> Samples:
    """Centre a mono block in stereo (both sides at full level), or average stereo to mono."""
    if block.shape[1] == channels:
        return block
    if channels == 2:
        return block  # (n, 1) broadcasts over both channels where it is added
    averaged: Samples = block.mean(axis=1, keepdims=True, dtype=np.float32)
    return averaged


@dataclass
class _Placed:
    track: _Track
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
            block = _to_channels(piece, window.shape[1])
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


def _measure_loudness(spec: MixInput, rate: int, channels: int) -> float | None:
    """Integrated loudness (LUFS, EBU R128) of one input as the mix will hear it, or None when
    the track is silent; a first pass over the input with FFmpeg's `ebur128` filter."""
    import av

    layout = "mono" if channels == 1 else "stereo"
    with contextlib.ExitStack() as stack:
        track = _Track(spec, rate, stack)
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
                np.broadcast_to(_to_channels(data, channels), (len(data), channels))
            )
            frame = av.AudioFrame.from_ndarray(block.reshape(1, -1), format="flt", layout=layout)
            frame.sample_rate = rate
            frame.pts = pts
            pts += len(block)
            src.push(frame)
            drain()
        src.push(None)
        drain()
    if loudness is None or not math.isfinite(loudness) or loudness <= _SILENT_LUFS:
        return None
    return loudness


# ---------------------------------------------------------------------------------------------
# Limiting


class _Limiter:
    """A look-ahead peak limiter that never lets a sample above the ceiling.

    Gains are computed per block of about 1 ms, all vectorised. A block's required gain is
    min(1, ceiling / its peak). Attack: the gain is the minimum required over the next
    `lookahead + 1` blocks, averaged over `lookahead` blocks, so it ramps down smoothly and has
    reached each block's requirement by the time the block plays. Release: the gain may rise by
    at most `release` dB per block, g[k] = min(want[k], g[k-1] + r), which unrolls to
    r*k + running_min(want[j] - r*j) (one `np.minimum.accumulate`). Within a block the gain is
    interpolated linearly between the gains at its two ends, both of which satisfy that block's
    requirement. Output lags input by the look-ahead; `flush` returns the rest.
    """

    def __init__(self, rate: int, channels: int) -> None:
        self.block = max(1, rate // 1000)
        self.channels = channels
        self.lookahead = max(1, round(_LOOKAHEAD_MS * rate / 1000 / self.block))
        self.ceiling = np.float32(10 ** (CEILING_DBFS / 20))
        # Aim a hair under the ceiling so float32 rounding of x * gain cannot cross it.
        self._aim = float(self.ceiling) * (1.0 - 2.0**-20)
        self.release_db = _RELEASE_DB_PER_MS * self.block * 1000 / rate
        self._samples: Samples = np.zeros((0, channels), dtype=np.float32)
        self._required = np.zeros(0, dtype=np.float64)  # per pending block
        self._released_db = 0.0  # released gain of the last finished block
        self._history = np.ones(self.lookahead - 1, dtype=np.float64)  # for the moving average
        self._last_gain = 1.0  # gain at the end of the last finished block
        self._started = False
        self._queued = 0  # input samples fed so far
        self._emitted = 0  # samples returned so far
        self.limited_blocks = 0
        self.clipped_samples = 0

    def process(self, x: Samples) -> Samples:
        """Feed samples; returns the limited samples that are final so far."""
        self._queued += len(x)
        self._samples = np.concatenate([self._samples, x]) if len(self._samples) else x
        whole = len(self._samples) // self.block * self.block
        known = len(self._required)
        fresh = self._samples[known * self.block : whole]
        if len(fresh):
            peaks = np.abs(fresh.reshape(-1, self.block * self.channels)).max(axis=1)
            need = np.minimum(1.0, self._aim / np.maximum(peaks.astype(np.float64), 1e-30))
            self._required = np.concatenate([self._required, need])
        return self._emit(len(self._required) - self.lookahead)

    def flush(self) -> Samples:
        """Everything still held back (silence is assumed to follow)."""
        owed = self._queued - self._emitted
        pad = (self.block - len(self._samples) % self.block) % self.block
        out = self.process(np.zeros((pad + self.lookahead * self.block, self.channels), np.float32))
        return out[:owed]

    def _emit(self, blocks: int) -> Samples:
        if blocks <= 0:
            return np.zeros((0, self.channels), dtype=np.float32)
        span = self.lookahead + 1
        required = self._required[: blocks + self.lookahead]
        held = np.lib.stride_tricks.sliding_window_view(required, span).min(axis=1)
        # Release: g[k] = min(held[k], g[k-1] + r) with g[-1] the previous call's last gain.
        held_db = 20.0 * np.log10(held)
        steps = self.release_db * np.arange(1, blocks + 1)
        released_db = np.minimum(
            np.minimum.accumulate(held_db - steps) + steps, self._released_db + steps
        )
        released_db = np.minimum(released_db, 0.0)
        released = np.where(released_db == 0.0, 1.0, 10.0 ** (released_db / 20.0))
        if not self._started:
            # Nothing played before the first block, so nothing to ramp from: start at its gain.
            self._started = True
            self._history = np.full(self.lookahead - 1, released[0])
            self._last_gain = float(released[0])
        # Attack smoothing: the mean over the last `lookahead` released gains.
        series = np.concatenate([self._history, released])
        gains = np.lib.stride_tricks.sliding_window_view(series, self.lookahead).sum(axis=1)
        gains = np.minimum(gains / self.lookahead, 1.0)
        starts = np.concatenate([[self._last_gain], gains[:-1]])

        samples = self._samples[: blocks * self.block]
        if np.all(gains == 1.0) and self._last_gain == 1.0:
            out = samples
        else:
            ramp = np.arange(1, self.block + 1, dtype=np.float64) / self.block
            per_sample = starts[:, None] + (gains - starts)[:, None] * ramp[None, :]
            out = samples * per_sample.reshape(-1, 1).astype(np.float32)
            self.limited_blocks += int(np.count_nonzero(np.minimum(starts, gains) < 1.0))
        # Last line of defence against float rounding: count and clip anything over.
        over = np.abs(out) > self.ceiling
        if over.any():
            self.clipped_samples += int(np.count_nonzero(over))
            out = np.clip(out, -self.ceiling, self.ceiling)

        self._released_db = float(released_db[-1])
        self._history = series[len(series) - (self.lookahead - 1) :]
        self._last_gain = float(gains[-1])
        self._samples = self._samples[blocks * self.block :]
        self._required = self._required[blocks:]
        self._emitted += len(out)
        return out


# ---------------------------------------------------------------------------------------------
# Encoding


def _encode_threads() -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(_MAX_ENCODERS, cores))


class _Output:
    """The output file, encoded on worker threads while the calling thread decodes and mixes.

    PyAV releases the GIL inside the encoder, so this overlaps the two on separate cores.
    Work goes out in order through a short queue of futures (at most `workers + 1` jobs
    outstanding, so memory stays bounded), and their results are taken back in order.
    Subclasses say what a job does; the container is only touched by one thread at a time.
    """

    def __init__(
        self, path: Path, fmt: str, rate: int, channels: int, bit_rate: int | None, name: str
    ) -> None:
        import av

        enc = _ENCODINGS[fmt]
        self.encoding = enc
        self.name = name
        self.rate = rate
        self.channels = channels
        self.layout = "mono" if channels == 1 else "stereo"
        self.bit_rate = None if enc.bit_rate is None else bit_rate or enc.bit_rate[channels - 1]
        self._out: Any = None
        try:
            self._out = av.open(str(path), "w", format=enc.container)
            stream: Any = self._out.add_stream(enc.codec, rate=rate, options=dict(enc.options))
            stream.layout = self.layout
            if self.bit_rate is not None:
                stream.bit_rate = self.bit_rate
            self._stream = stream
        except av.error.FFmpegError as exc:
            self.abort()
            raise OutputError(f"{name}: cannot start the encoder ({_one_line(exc)})") from None
        self.workers = self._workers()
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="rawcore-mix")
        self._jobs: deque[Future[Any]] = deque()

    def _workers(self) -> int:
        return 1

    def write(self, samples: Samples) -> None:
        raise NotImplementedError

    def _flush(self) -> None:
        raise NotImplementedError

    def _done(self, result: Any) -> None:
        """Take back one job's result, in submission order."""

    def _submit(self, job: Callable[..., Any], *args: Any) -> None:
        self._jobs.append(self._pool.submit(job, *args))
        while len(self._jobs) > self.workers + 1 or (self._jobs and self._jobs[0].done()):
            self._collect()

    def _collect(self) -> None:
        import av

        job = self._jobs.popleft()
        try:
            result = job.result()
        except av.error.FFmpegError as exc:
            raise OutputError(f"{self.name}: cannot encode ({_one_line(exc)})") from None
        self._done(result)

    def _frame(self, samples: Samples, pts: int) -> Any:
        import av

        # Planar float is what LAME and AAC take, so PyAV only has to re-frame (it converts for
        # the other encoders; mono is the same either way).
        planar = np.ascontiguousarray(samples.T)
        frame = av.AudioFrame.from_ndarray(planar, format="fltp", layout=self.layout)
        frame.sample_rate = self.rate
        frame.pts = pts
        return frame

    def finish(self) -> None:
        """Encode what is left, wait for every job and close the file."""
        import av

        self._flush()
        while self._jobs:
            self._collect()
        self._pool.shutdown()
        out, self._out = self._out, None
        try:
            out.close()
        except av.error.FFmpegError as exc:
            raise OutputError(f"{self.name}: cannot finish the file ({_one_line(exc)})") from None

    def abort(self) -> None:
        """On error: drop queued jobs, wait for running ones (they are short), close quietly."""
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
            self._jobs.clear()
        out, self._out = self._out, None
        if out is not None:
            with contextlib.suppress(Exception):
                out.close()


class _StreamEncoder(_Output):
    """One encoder (Opus, AAC, FLAC, PCM) on one worker thread, which owns the container until
    `finish`: each job encodes one block and muxes its packets."""

    def __init__(
        self, path: Path, fmt: str, rate: int, channels: int, bit_rate: int | None, name: str
    ) -> None:
        super().__init__(path, fmt, rate, channels, bit_rate, name)
        self.pts = 0

    def write(self, samples: Samples) -> None:
        if len(samples):
            self._submit(self._encode, self._frame(samples, self.pts))
            self.pts += len(samples)

    def _flush(self) -> None:
        self._submit(self._encode, None)

    def _encode(self, frame: Any) -> None:
        for packet in self._stream.encode(frame):
            self._out.mux(packet)


class _Mp3Chunks(_Output):
    """MP3 by several LAME encoders at once, each on its own chunk of the mix, joined into one
    stream that decodes exactly as if one encoder had made it.

    MP3 frames lie on a fixed grid (`frame` samples; packet j decodes to output samples
    [j*frame, (j+1)*frame), the encoder delay trimmed by the player from the LAME header).
    Chunk boundaries are on that grid. Each chunk's encoder is fed `pre` samples before the
    chunk and `post` after it, both whole frames, with timestamps on the common timeline, and
    only the packets of the chunk's own frames are kept: the encoder has settled before the
    first kept frame and has seen past the last, so the overlap-add at a seam joins two
    encodings of the same signal. With the bit reservoir off no kept frame refers to a
    dropped one. The last chunk keeps the encoder's final packets, whose side data gives the
    muxer the end padding for the LAME header. Packets are muxed in order here, on the
    calling thread.
    """

    def __init__(
        self, path: Path, fmt: str, rate: int, channels: int, bit_rate: int | None, name: str
    ) -> None:
        import av

        super().__init__(path, fmt, rate, channels, bit_rate, name)
        try:
            self.frame = int(self._codec().frame_size)
        except av.error.FFmpegError as exc:
            self.abort()
            raise OutputError(f"{name}: cannot start the encoder ({_one_line(exc)})") from None
        frame = self.frame
        self.chunk = frame * max(1, round(_MP3_CHUNK_S * rate / frame))
        self.pre = frame * -(-_MP3_PREROLL // frame)
        self.post = frame * -(-_MP3_POSTROLL // frame)
        self._held: list[tuple[int, Samples]] = []  # (timeline position, samples) not yet sent
        self._fed = 0
        self._next = 0  # start of the next chunk to encode

    def _workers(self) -> int:
        return _encode_threads()

    def _codec(self) -> Any:
        import av

        codec: Any = av.CodecContext.create(self.encoding.codec, "w")
        codec.sample_rate = self.rate
        codec.layout = self.layout
        codec.format = "fltp"
        codec.bit_rate = self.bit_rate
        codec.time_base = Fraction(1, self.rate)
        codec.options = dict(self.encoding.options)
        codec.open()
        return codec

    def write(self, samples: Samples) -> None:
        if len(samples):
            self._held.append((self._fed, samples))
            self._fed += len(samples)
        # Strictly more than the chunk and its post-roll, so that the last chunk is never empty.
        while self._fed > self._next + self.chunk + self.post:
            self._send(self._next + self.chunk, last=False)

    def _flush(self) -> None:
        self._send(self._fed, last=True)  # never empty unless the whole mix is

    def _send(self, end: int, *, last: bool) -> None:
        """Queue the chunk [self._next, end) with its pre- and post-roll."""
        start = self._next
        first = max(0, start - self.pre)
        stop = end if last else end + self.post
        parts = [s[max(0, first - at) : stop - at] for at, s in self._held if at < stop]
        data = np.concatenate(parts) if parts else np.zeros((0, self.channels), np.float32)
        keep = (start // self.frame, None if last else end // self.frame)
        self._submit(self._encode, data, first, keep)
        self._next = end
        self._held = [(at, s) for at, s in self._held if at + len(s) > end - self.pre]

    def _encode(self, data: Samples, first: int, keep: tuple[int, int | None]) -> list[Any]:
        codec = self._codec()
        packets: list[Any] = []
        # Whole frames of about a second at a time: one frame of the whole chunk would be
        # copied three times over on its way into LAME, times every chunk in flight.
        step = self.frame * max(1, self.rate // self.frame)
        for at in range(0, len(data), step):
            packets += codec.encode(self._frame(data[at : at + step], first + at))
        packets += codec.encode(None)
        lo, hi = keep
        offset = first // self.frame  # packet i of this encoder is frame first/frame + i
        return [
            p for i, p in enumerate(packets) if lo <= offset + i and (hi is None or offset + i < hi)
        ]

    def _done(self, result: Any) -> None:
        import av

        try:
            for packet in result:
                packet.stream = self._stream
                self._out.mux(packet)
        except av.error.FFmpegError as exc:
            raise OutputError(f"{self.name}: cannot write ({_one_line(exc)})") from None


# ---------------------------------------------------------------------------------------------
# Mixing


def mix_audio(
    inputs: Sequence[MixInput],
    out_path: Path,
    *,
    fmt: MixFormat = "mp3",
    sample_rate: int = 48_000,
    channels: int = 1,
    normalize: bool = False,
    target_lufs: float = -23.0,
    start_unix_ms: float | None = None,
    end_unix_ms: float | None = None,
    bit_rate: int | None = None,
    progress: Callable[[float], None] | None = None,
) -> MixReport:
    """Mix `inputs` on their common wall-clock timeline into one file at `out_path`.

    The mix starts at `start_unix_ms` (default: the earliest input) and ends at `end_unix_ms`
    (default: where the last input ends). `channels` is 1 (mono) or 2 (stereo, every input
    centred at full level). With `normalize`, each input is first measured (EBU R128
    integrated loudness) and brought to `target_lufs`, by at most ±20 dB; silent inputs are
    left alone. `gain_db` of each input is applied on top. The sum passes a look-ahead limiter
    with a -1 dBFS ceiling, so the mix never clips. `bit_rate` overrides the lossy codecs'
    defaults (MP3 64/128, Opus 48/96, AAC 96/160 kbit/s for mono/stereo). `progress` is called
    with the fraction done. The file appears under its name only when complete.

    Raises `InputError` for an unreadable input or bad arguments, `OutputError` when the output
    cannot be written.
    """
    if fmt not in _ENCODINGS:
        raise InputError(f"unknown mix format {fmt!r}; choose one of {', '.join(MIX_FORMATS)}")
    if channels not in (1, 2):
        raise InputError(f"channels must be 1 (mono) or 2 (stereo), not {channels}")
    allowed = _ENCODINGS[fmt].rates
    if sample_rate <= 0 or (allowed is not None and sample_rate not in allowed):
        raise InputError(f"sample rate {sample_rate} is not possible for {fmt}")
    if not inputs:
        raise InputError("nothing to mix: no inputs")
    out_path = Path(out_path)
    out_dir = prepare_output_dir(out_path.parent)
    rate = sample_rate
    mix_start = min(i.start_unix_ms for i in inputs) if start_unix_ms is None else start_unix_ms
    total: int | None = None
    if end_unix_ms is not None:
        total = round((end_unix_ms - mix_start) * rate / 1000)
        if total <= 0:
            raise InputError(f"the mix would end ({end_unix_ms}) before it starts ({mix_start})")

    loudness: list[float | None] = [None] * len(inputs)
    if normalize:
        loudness = [_measure_loudness(spec, rate, channels) for spec in inputs]

    with contextlib.ExitStack() as stack:
        placed: list[_Placed] = []
        for spec, measured in zip(inputs, loudness, strict=True):
            gain_db = spec.gain_db
            if measured is not None:
                gain_db += max(-_MAX_NORMALIZE_DB, min(_MAX_NORMALIZE_DB, target_lufs - measured))
            placed.append(
                _Placed(
                    track=_Track(spec, rate, stack, ahead=_ENCODINGS[fmt].decode_ahead),
                    offset=round((spec.start_unix_ms - mix_start) * rate / 1000),
                    gain=1.0 if gain_db == 0.0 else 10 ** (gain_db / 20),
                    gain_db=gain_db,
                    loudness=measured,
                )
            )
        expected = total
        if expected is None:
            ends = [
                p.offset + p.track.declared_s * rate
                for p in placed
                if p.track.declared_s is not None
            ]
            expected = round(max(ends)) if ends else None

        limiter = _Limiter(rate, channels)
        window_len = limiter.block * max(1, rate * _WINDOW_S // limiter.block)
        peak = 0.0
        written = 0
        with atomic_path(out_dir, out_path.name) as tmp:
            kind = _Mp3Chunks if fmt == "mp3" else _StreamEncoder
            output = kind(tmp, fmt, rate, channels, bit_rate, out_path.name)
            try:

                def emit(block: Samples) -> None:
                    nonlocal peak, written
                    if len(block):
                        peak = max(peak, float(np.abs(block).max()))
                        written += len(block)
                        output.write(block)

                pos = 0
                while True:
                    n = window_len if total is None else min(window_len, total - pos)
                    if n <= 0:
                        break
                    window = np.zeros((n, channels), dtype=np.float32)
                    for p in placed:
                        p.add_into(window, pos)
                    if total is None and all(p.track.exhausted for p in placed):
                        end = max(p.end for p in placed)
                        n = max(0, min(n, end - pos))
                        window = window[:n]
                        total = pos + n
                    emit(limiter.process(window))
                    pos += n
                    if progress is not None and expected:
                        progress(min(1.0, pos / expected))
                emit(limiter.flush())
                output.finish()
            except BaseException:
                output.abort()
                raise
        if progress is not None:
            progress(1.0)

    duration_ms = round(written * 1000 / rate)
    reports = [
        {
            "label": p.track.spec.label,
            "start_ms": round(p.offset * 1000 / rate),
            "duration_ms": round(p.track.consumed * 1000 / rate),
            "loudness_lufs": None if p.loudness is None else round(p.loudness, 2),
            "gain_db": round(p.gain_db, 2),
        }
        for p in placed
    ]
    return MixReport(
        duration_ms=duration_ms,
        sample_rate=rate,
        channels=channels,
        peak_dbfs=round(20 * math.log10(peak), 2) if peak > 0 else _FLOOR_DBFS,
        limited_ms=round(limiter.limited_blocks * limiter.block * 1000 / rate),
        inputs=reports,
    )
