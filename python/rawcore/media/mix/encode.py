"""Encoding the mix as it is produced: one encoder on a worker thread, or MP3 in chunks encoded
in parallel and joined without a seam."""

from __future__ import annotations

import contextlib
import os
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from rawcore.errors import InputError, OutputError
from rawcore.media.mix.types import Samples, one_line


@dataclass(frozen=True)
class Encoding:
    codec: str
    container: str
    #: Default bit rate (bit/s) for mono and stereo; None for lossless codecs.
    bit_rate: tuple[int, int] | None
    options: tuple[tuple[str, str], ...] = ()
    rates: tuple[int, ...] | None = None
    #: Decode each input on a thread of its own (see `TrackDecoder`). Not where one encoder
    #: thread is the bottleneck: more threads only take CPU time from it (Opus: measured 20 %
    #: slower).
    decode_ahead: bool = True


ENCODINGS: dict[str, Encoding] = {
    # LAME quality 5 (of 0 best .. 9 fastest): indistinguishable on speech at these rates and
    # about 20 % faster than LAME's default of 3, which matters for hour-long calls. No bit
    # reservoir: no frame may borrow bytes from the one before, which is what lets chunks
    # encoded in parallel be joined (`Mp3Chunks`); measured to cost < 0.1 dB SNR here.
    "mp3": Encoding(
        "libmp3lame",
        "mp3",
        (64_000, 128_000),
        (("compression_level", "5"), ("reservoir", "0")),
        rates=(8_000, 11_025, 12_000, 16_000, 22_050, 24_000, 32_000, 44_100, 48_000),
    ),
    "opus": Encoding(
        "libopus",
        "ogg",
        (48_000, 96_000),
        rates=(8_000, 12_000, 16_000, 24_000, 48_000),
        decode_ahead=False,
    ),
    "m4a": Encoding("aac", "ipod", (96_000, 160_000), decode_ahead=False),
    "flac": Encoding("flac", "flac", None),
    "wav": Encoding("pcm_s16le", "wav", None),
}


#: Lossy bit rates a mix may ask for (bit/s).
MIN_BIT_RATE, MAX_BIT_RATE = 8_000, 512_000


def check_encoding(fmt: str, sample_rate: int, bit_rate: int | None) -> None:
    """Refuse a format, rate and bit rate that do not go together, with the reason (one home
    for the rule: the mixer and the command line both ask here)."""
    enc = ENCODINGS.get(fmt)
    if enc is None:
        raise InputError(f"unknown mix format {fmt!r}; choose one of {', '.join(ENCODINGS)}")
    if sample_rate <= 0:
        raise InputError(f"sample rate {sample_rate}: it must be positive")
    if enc.rates is not None and sample_rate not in enc.rates:
        rates = ", ".join(str(r) for r in enc.rates)
        raise InputError(f"sample rate {sample_rate} is not possible for {fmt} ({rates})")
    if bit_rate is None:
        return
    if enc.bit_rate is None:
        raise InputError(f"{fmt} is lossless: a bit rate does not apply")
    if not MIN_BIT_RATE <= bit_rate <= MAX_BIT_RATE:
        raise InputError(
            f"bit rate {bit_rate // 1000} kbit/s is out of range "
            f"({MIN_BIT_RATE // 1000}-{MAX_BIT_RATE // 1000})"
        )


#: MP3 is encoded in chunks of about this length by parallel LAME encoders (see `Mp3Chunks`).
MP3_CHUNK_S = 20
#: Samples each MP3 chunk's encoder is run on before and after its chunk (rounded up to whole
#: frames), so that the frames kept at a seam are encoded as if there were no seam. Measured:
#: 1152 samples before is too few (a glitch at every seam), 2304 at 48 kHz and 1728 at 24 kHz
#: before and 576 after are enough; these leave a margin of two.
MP3_PREROLL = 4608
MP3_POSTROLL = 2304
#: Upper bound on encoder threads; each takes one core when busy.
_MAX_ENCODERS = 4


# ---------------------------------------------------------------------------------------------
# Encoding


def encode_threads() -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(_MAX_ENCODERS, cores))


class EncoderOutput:
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

        enc = ENCODINGS[fmt]
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
            raise OutputError(f"{name}: cannot start the encoder ({one_line(exc)})") from None
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
            raise OutputError(f"{self.name}: cannot encode ({one_line(exc)})") from None
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
            raise OutputError(f"{self.name}: cannot finish the file ({one_line(exc)})") from None

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


class StreamEncoder(EncoderOutput):
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


class Mp3Chunks(EncoderOutput):
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
            raise OutputError(f"{name}: cannot start the encoder ({one_line(exc)})") from None
        frame = self.frame
        self.chunk = frame * max(1, round(MP3_CHUNK_S * rate / frame))
        self.pre = frame * -(-MP3_PREROLL // frame)
        self.post = frame * -(-MP3_POSTROLL // frame)
        self._held: list[tuple[int, Samples]] = []  # (timeline position, samples) not yet sent
        self._fed = 0
        self._next = 0  # start of the next chunk to encode

    def _workers(self) -> int:
        return encode_threads()

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
            raise OutputError(f"{self.name}: cannot write ({one_line(exc)})") from None
