"""mix: one audio file of the whole call from the per-participant tracks.

The mixer owns the call's common timeline. Every input (normally a timeline-exact file from
`extract-audio`) is placed with sample accuracy at its wall-clock start, decoded by its own
PyAV decoder and pulled in fixed windows, so memory stays flat however long the call is:
nothing holds more than one window of any track. Each window is summed in NumPy with the
per-input gains, passed through a look-ahead peak limiter that never lets a sample above
-1 dBFS, and encoded as it goes (MP3, Ogg Opus, M4A/AAC, FLAC or WAV). Optional loudness
normalisation measures each input first (EBU R128 integrated loudness, FFmpeg's `ebur128`
filter) and evens them out to a target before they are summed.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
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


_ENCODINGS: dict[str, _Encoding] = {
    # LAME quality 5 (of 0 best .. 9 fastest): indistinguishable on speech at these rates and
    # about 20 % faster than LAME's default of 3, which matters for hour-long calls.
    "mp3": _Encoding("libmp3lame", "mp3", (64_000, 128_000), (("compression_level", "5"),)),
    "opus": _Encoding(
        "libopus", "ogg", (48_000, 96_000), rates=(8_000, 12_000, 16_000, 24_000, 48_000)
    ),
    "m4a": _Encoding("aac", "ipod", (96_000, 160_000)),
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
#: Decoder sample formats converted without FFmpeg's resampler: (dtype, scale, planar).
_DIRECT_FORMATS: dict[str, tuple[type[np.generic], float | None, bool]] = {
    "flt": (np.float32, None, False),
    "fltp": (np.float32, None, True),
    "s16": (np.int16, 1 / 32768, False),
    "s16p": (np.int16, 1 / 32768, True),
}


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


class _Track:
    """One input's decoder: float32 samples at the mix rate, read sequentially, on demand.

    Samples come in the input's own channel count reduced to mono or stereo (FFmpeg downmixes
    anything wider to stereo). Frame timestamps are not consulted: an extracted file's decoded
    samples are its timeline, gaps already filled.
    """

    def __init__(self, spec: MixInput, rate: int, stack: contextlib.ExitStack) -> None:
        import av

        self.spec = spec
        self.rate = rate
        try:
            self._container: Any = stack.enter_context(av.open(str(spec.path)))
        except (av.error.FFmpegError, OSError) as exc:
            raise InputError(f"{spec.path}: cannot open audio ({_one_line(exc)})") from None
        audio = self._container.streams.audio
        if not audio:
            raise InputError(f"{spec.path}: has no audio stream")
        self._stream = audio[0]
        self.channels = 1 if (self._stream.codec_context.channels or 1) == 1 else 2
        duration = None
        if self._stream.duration is not None and self._stream.time_base is not None:
            duration = float(self._stream.duration * self._stream.time_base)
        elif self._container.duration is not None:
            duration = self._container.duration / 1e6
        #: The container's idea of the length (s), for progress only.
        self.declared_s = duration
        self._chunks = self._decode()
        self._pending: Samples = np.zeros((0, self.channels), dtype=np.float32)
        self.consumed = 0
        self.exhausted = False

    def _decode(self) -> Iterator[Samples]:
        import av

        layout = "mono" if self.channels == 1 else "stereo"
        resampler = av.AudioResampler(format="flt", layout=layout, rate=self.rate)
        resampled = False
        try:
            for packet in self._container.demux(self._stream):
                for frame in packet.decode():
                    direct = None if resampled else self._direct(frame)
                    if direct is not None:
                        yield direct
                        continue
                    # Once the resampler has been used it may hold samples back: stay on it.
                    resampled = True
                    for out in resampler.resample(frame):
                        yield self._packed(out)
            if resampled:
                for out in resampler.resample(None):
                    yield self._packed(out)
        except av.error.FFmpegError as exc:
            raise InputError(f"{self.spec.path}: cannot decode audio ({_one_line(exc)})") from None

    def _packed(self, frame: Any) -> Samples:
        """A resampler output frame (packed float) as (n, channels)."""
        data: Samples = np.asarray(frame.to_ndarray(), dtype=np.float32)
        return data.reshape(-1, self.channels)

    def _direct(self, frame: Any) -> Samples | None:
        """The frame's samples without the resampler, when they need no conversion but to
        float: the usual case (Opus decodes to float at 48 kHz), and PyAV's resampler costs
        more per 20 ms frame than the decoding itself."""
        if frame.sample_rate != self.rate or len(frame.layout.channels) != self.channels:
            return None
        kind = _DIRECT_FORMATS.get(frame.format.name)
        if kind is None:
            return None
        dtype, scale, planar = kind
        n = frame.samples
        if planar or self.channels == 1:
            planes = [np.frombuffer(p, dtype=dtype, count=n) for p in frame.planes[: self.channels]]
            data = planes[0][:, None] if len(planes) == 1 else np.stack(planes, axis=1)
        else:
            data = np.frombuffer(frame.planes[0], dtype=dtype, count=n * self.channels)
            data = data.reshape(n, self.channels)
        if scale is None:
            out: Samples = data.astype(np.float32, copy=True)
        else:
            out = data.astype(np.float32) * np.float32(scale)
        return out

    def read(self, count: int) -> Samples:
        """Up to `count` next samples, shape (n, channels); fewer only at the end."""
        parts: list[Samples] = []
        have = 0
        if len(self._pending):
            take = self._pending[:count]
            self._pending = self._pending[count:]
            parts.append(take)
            have = len(take)
        while have < count and not self.exhausted:
            chunk = next(self._chunks, None)
            if chunk is None:
                self.exhausted = True
                break
            need = count - have
            if len(chunk) > need:
                self._pending = chunk[need:]
                chunk = chunk[:need]
            parts.append(chunk)
            have += len(chunk)
        self.consumed += have
        if len(parts) == 1:
            return parts[0]
        if not parts:
            return np.zeros((0, self.channels), dtype=np.float32)
        return np.concatenate(parts)

    def skip(self, count: int) -> None:
        while count > 0 and not self.exhausted:
            count -= len(self.read(min(count, self.rate * _WINDOW_S)))


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
        data = self.track.read(last - first)
        if not len(data):
            return
        at = self.offset + first - pos
        block = _to_channels(data, window.shape[1])
        if self.gain != 1.0:
            block = block * np.float32(self.gain)
        window[at : at + len(data)] += block

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


class _Encoder:
    def __init__(
        self,
        path: Path,
        fmt: str,
        rate: int,
        channels: int,
        bit_rate: int | None,
        name: str,
    ) -> None:
        import av

        enc = _ENCODINGS[fmt]
        self.name = name
        self.rate = rate
        self.layout = "mono" if channels == 1 else "stereo"
        self.pts = 0
        try:
            self._out: Any = av.open(str(path), "w", format=enc.container)
            stream: Any = self._out.add_stream(enc.codec, rate=rate, options=dict(enc.options))
            stream.layout = self.layout
            if enc.bit_rate is not None:
                stream.bit_rate = bit_rate or enc.bit_rate[channels - 1]
            self._stream = stream
        except av.error.FFmpegError as exc:
            raise OutputError(f"{name}: cannot start the encoder ({_one_line(exc)})") from None

    def write(self, samples: Samples | None) -> None:
        import av

        try:
            frame = None
            if samples is not None:
                if not len(samples):
                    return
                frame = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(samples).reshape(1, -1), format="flt", layout=self.layout
                )
                frame.sample_rate = self.rate
                frame.pts = self.pts
                self.pts += len(samples)
            for packet in self._stream.encode(frame):
                self._out.mux(packet)
        except av.error.FFmpegError as exc:
            raise OutputError(f"{self.name}: cannot encode ({_one_line(exc)})") from None

    def close(self) -> None:
        import av

        try:
            self._out.close()
        except av.error.FFmpegError as exc:
            raise OutputError(f"{self.name}: cannot finish the file ({_one_line(exc)})") from None


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
                    track=_Track(spec, rate, stack),
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
            encoder = _Encoder(tmp, fmt, rate, channels, bit_rate, out_path.name)
            try:

                def emit(block: Samples) -> None:
                    nonlocal peak, written
                    if len(block):
                        peak = max(peak, float(np.abs(block).max()))
                        written += len(block)
                        encoder.write(block)

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
                encoder.write(None)
            finally:
                encoder.close()
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
