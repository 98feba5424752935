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
seam. Summing and limiting stay on the calling thread, which also owns the order of output; the
limiter is the core's (`_core.MixLimiter`, the one home of its rule).

`mix_opus` is the faster way for Opus tracks still in their captures: the core pulls each
track's packets as `extract-audio` would write them straight from the (mapped) captures, decodes
them with libopus (not where DTX has made the track silent), sums and limits (`_core.OpusMix`),
and this module only encodes the blocks it hands over and releases the capture pages read.
"""

from __future__ import annotations

import contextlib
import math
import mmap
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from rawcore import _core
from rawcore.errors import InputError
from rawcore.media.files import atomic_path, prepare_output_dir
from rawcore.media.formats import MixFormat
from rawcore.media.mix.decode import PlacedTrack, TrackDecoder, measure_loudness
from rawcore.media.mix.encode import ENCODINGS, Mp3Chunks, StreamEncoder, check_encoding
from rawcore.media.mix.types import MixInput, MixReport, OpusTrack, Samples

#: Normalisation gains are capped so a near-silent track is not boosted into noise.
_MAX_NORMALIZE_DB = 20.0
#: Reported peak of an all-silent mix (a finite number keeps reports JSON-friendly).
_FLOOR_DBFS = -120.0
_WINDOW_S = 5
#: The core mix is pulled in blocks of this length (s): long enough that the calls across the
#: binding cost nothing, short enough to keep the encoders fed from the start.
_CORE_BLOCK_S = 2
#: The core mix's rate: Opus decodes at 48 kHz.
MIX_RATE = 48_000
#: The pages of a mapped capture the core mix has read are released in steps of this many bytes.
_RELEASE_BYTES = 1 << 20


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
    rate = sample_rate
    out_path = Path(out_path)
    out_dir, mix_start, total = _mix_frame(
        fmt, rate, bit_rate, channels, [i.start_unix_ms for i in inputs], out_path,
        start_unix_ms, end_unix_ms,
    )  # fmt: skip

    loudness: list[float | None] = [None] * len(inputs)
    if normalize:
        loudness = [measure_loudness(spec, rate, channels) for spec in inputs]

    with contextlib.ExitStack() as stack:
        placed: list[PlacedTrack] = []
        for spec, measured in zip(inputs, loudness, strict=True):
            gain_db = spec.gain_db
            if measured is not None:
                gain_db += max(-_MAX_NORMALIZE_DB, min(_MAX_NORMALIZE_DB, target_lufs - measured))
            placed.append(
                PlacedTrack(
                    track=TrackDecoder(spec, rate, stack, ahead=ENCODINGS[fmt].decode_ahead),
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

        limiter = _core.MixLimiter(rate, channels)
        window_len = limiter.block * max(1, rate * _WINDOW_S // limiter.block)

        def blocks() -> Iterator[Samples]:
            nonlocal total
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
                yield limiter.process(window)
                pos += n
            yield limiter.flush()

        written, peak = _encode(
            blocks(), out_dir, out_path, fmt, rate, channels, bit_rate, expected, progress
        )

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
        peak_dbfs=_peak_dbfs(peak),
        limited_ms=round(limiter.limited_blocks * limiter.block * 1000 / rate),
        inputs=reports,
    )


def _mix_frame(
    fmt: MixFormat,
    rate: int,
    bit_rate: int | None,
    channels: int,
    starts: list[float],
    out_path: Path,
    start_unix_ms: float | None,
    end_unix_ms: float | None,
) -> tuple[Path, float, int | None]:
    """The checks and the frame every mix shares: the encoding and channels are valid, there is
    something to mix, the output folder exists; the mix's start on the call clock (the earliest
    input unless given) and its length in samples when its end is given."""
    check_encoding(fmt, rate, bit_rate)
    if channels not in (1, 2):
        raise InputError(f"channels must be 1 (mono) or 2 (stereo), not {channels}")
    if not starts:
        raise InputError("nothing to mix: no inputs")
    out_dir = prepare_output_dir(out_path.parent)
    mix_start = min(starts) if start_unix_ms is None else start_unix_ms
    total = None if end_unix_ms is None else round((end_unix_ms - mix_start) * rate / 1000)
    if total is not None and total <= 0:
        raise InputError(f"the mix would end ({end_unix_ms}) before it starts ({mix_start})")
    return out_dir, mix_start, total


def _encode(
    blocks: Iterable[Samples],
    out_dir: Path,
    out_path: Path,
    fmt: MixFormat,
    rate: int,
    channels: int,
    bit_rate: int | None,
    expected: int | None,
    progress: Callable[[float], None] | None,
) -> tuple[int, float]:
    """Encode the limited `blocks` into `out_path` (atomically); returns the samples written
    and their peak."""
    peak = 0.0
    written = 0
    with atomic_path(out_dir, out_path.name) as tmp:
        kind = Mp3Chunks if fmt == "mp3" else StreamEncoder
        output = kind(tmp, fmt, rate, channels, bit_rate, out_path.name)
        try:
            for block in blocks:
                if len(block):
                    peak = max(peak, float(np.abs(block).max()))
                    written += len(block)
                    output.write(block)
                    if progress is not None and expected:
                        progress(min(1.0, written / expected))
            output.finish()
        except BaseException:
            output.abort()
            raise
    if progress is not None:
        progress(1.0)
    return written, peak


def _peak_dbfs(peak: float) -> float:
    return round(20 * math.log10(peak), 2) if peak > 0 else _FLOOR_DBFS


def mix_opus(
    tracks: Sequence[OpusTrack],
    out_path: Path,
    *,
    fmt: MixFormat = "mp3",
    channels: int = 1,
    start_unix_ms: float | None = None,
    end_unix_ms: float | None = None,
    bit_rate: int | None = None,
    fill_gaps: bool = True,
    fix_dtx: bool = True,
    fec: bool = True,
    progress: Callable[[float], None] | None = None,
) -> MixReport:
    """Mix Opus tracks straight from their captures into one file at `out_path`, at 48 kHz.

    The core collects each track's packets as `extract-audio` would write them (the same
    placement, gap and DTX fill, FEC rebuilds), decodes them with libopus, sums them with their
    gains and limits the sum, handing over one block at a time with the GIL released; here the
    blocks are only encoded. The result is the mix `mix_audio` makes of the extracted files,
    without writing or re-reading them. Loudness normalisation is not done here (it needs a
    first pass over the decoded tracks: use `mix_audio`).

    Raises `InputError` for bad arguments or unusable captures, `OutputError` when the output
    cannot be written.
    """
    rate = MIX_RATE
    out_path = Path(out_path)
    out_dir, mix_start, end = _mix_frame(
        fmt, rate, bit_rate, channels, [t.start_unix_ms for t in tracks], out_path,
        start_unix_ms, end_unix_ms,
    )  # fmt: skip
    offsets = [round((t.start_unix_ms - mix_start) * rate / 1000) for t in tracks]
    mixer = _core.OpusMix(
        [
            (list(t.segments), offset, 10 ** (t.gain_db / 20), t.payload_type)
            for t, offset in zip(tracks, offsets, strict=True)
        ],
        channels=channels,
        end=end,
        fill_gaps=fill_gaps,
        fix_dtx=fix_dtx,
        fec=fec,
    )
    if end is None:
        ends = [
            o + r.duration_ms * rate / 1000 for o, r in zip(offsets, mixer.reports, strict=True)
        ]
        expected: int | None = round(max(ends)) if ends else None
    else:
        expected = end

    # The pages of mapped captures the mix has read are released as it goes: it never needs
    # them again, and they would otherwise count in the process's memory, growing with the call
    # (they stay in the page cache). The survey has just read every page once: all go first.
    mapped = [
        [seg[0] if isinstance(seg[0], mmap.mmap) else None for seg in t.segments] for t in tracks
    ]
    released = [[0] * len(m) for m in mapped]
    if hasattr(mmap, "MADV_DONTNEED"):
        for buf in (b for m in mapped for b in m if b is not None and len(b)):
            buf.madvise(mmap.MADV_DONTNEED)

    def release_read_pages() -> None:
        if not hasattr(mmap, "MADV_DONTNEED"):
            return
        for t, walked in enumerate(mixer.walked):
            for s, upto in enumerate(walked):
                buf = mapped[t][s]
                if buf is not None and upto - released[t][s] >= _RELEASE_BYTES:
                    buf.madvise(mmap.MADV_DONTNEED, 0, upto - upto % mmap.PAGESIZE)
                    released[t][s] = upto

    def blocks() -> Iterator[Samples]:
        while (block := mixer.next_block(rate * _CORE_BLOCK_S)) is not None:
            release_read_pages()
            yield block

    written, peak = _encode(
        blocks(), out_dir, out_path, fmt, rate, channels, bit_rate, expected, progress
    )
    return MixReport(
        duration_ms=round(written * 1000 / rate),
        sample_rate=rate,
        channels=channels,
        peak_dbfs=_peak_dbfs(peak),
        limited_ms=mixer.limited_ms,
        inputs=[
            {
                "label": t.label,
                "start_ms": round(offset * 1000 / rate),
                "duration_ms": round(decoded * 1000 / rate),
                "loudness_lufs": None,
                "gain_db": round(t.gain_db, 2),
            }
            for t, offset, decoded in zip(tracks, offsets, mixer.decoded, strict=True)
        ],
    )
