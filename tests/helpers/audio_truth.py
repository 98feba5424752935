"""Decode audio files and measure them; build Opus recordings whose timing is known exactly.

This module owns the audio side of "check the decoded output, not the writer's word": it decodes
any container FFmpeg reads (through PyAV) into one mono float32 signal, finds where tone bursts
start (a short-window Goertzel detector) and where the signal is silent, and builds raw
recordings (via `recording.build_recording`) of Opus tracks with DTX, loss, reordering,
duplicates, sequence and timestamp wraps, every Opus frame size and a participant who rejoins.
Each builder returns an `AudioTruth`: the wall-clock span the decoded track must have and the
times the tone bursts start, both measured from the track start (the RTP time of the earliest
packet the capture holds), computed from the packets actually written to disk.

Timing conventions: the sender's audio sample `n` is stamped `ts0 + n` (after `gst.opus_packets`
snaps timestamps), so a burst at `start_s` in the source sits at RTP time `start_s` after the
first packet. A decoder fed the RTP payloads alone (no Ogg/Matroska pre-skip) hears everything
`OPUS_LOOKAHEAD_S` later, the encoder's lookahead; a writer that declares that pre-skip removes it.
"""

from __future__ import annotations

import hashlib
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .impair import unwrap_timestamps
from .recording import (
    Impairments,
    OpusSource,
    RecordingInfo,
    SenderReports,
    SessionSpec,
    TrackSpec,
    TrackTruth,
    build_recording,
)
from .rtpdump import parse_rtp_header, rtp_payload

__all__ = [
    "OPUS_LOOKAHEAD_S",
    "OPUS_RATE",
    "AudioTruth",
    "Burst",
    "CaptureTiming",
    "Decoded",
    "RejoinTruth",
    "av_available",
    "capture_truth",
    "decode_audio",
    "decode_capture",
    "dtx_call",
    "expected_samples",
    "frame_size_call",
    "goertzel_envelope",
    "impaired_call",
    "opus_call",
    "opus_packet_samples",
    "read_rtpdump_packets",
    "rejoin_call",
    "silence_spans",
    "tone_onsets",
    "wrap_call",
]

OPUS_RATE = 48_000
#: libopus' encoder delay at 48 kHz (the pre-skip it declares in Ogg): 312 samples, 6.5 ms.
OPUS_LOOKAHEAD_S = 312 / OPUS_RATE

#: (start_s, length_s, frequency_hz) of a sine burst in the source signal.
Burst = tuple[float, float, float]

FloatArray = npt.NDArray[np.float32]


def av_available() -> bool:
    """True if PyAV can be imported (tests that decode output skip otherwise)."""
    try:
        import av  # noqa: F401
    except ImportError:
        return False
    return True


# ---------------------------------------------------------------------------------------------
# Decoding


@dataclass(frozen=True)
class Decoded:
    """One audio stream, decoded the way FFmpeg plays it.

    `samples` is every decoded sample, channels averaged to mono, in decode order; gaps in the
    container's timestamps are *not* filled (that is what the file really plays: players and
    `ffmpeg` without `-af aresample=async` do not invent samples). `duration_s` comes from the
    sample count; `timestamp_gaps_s` adds up where frame timestamps jumped ahead of the samples
    decoded so far, so a file that relies on timestamp gaps for its silences shows them there.
    """

    samples: FloatArray
    rate: int
    channels: int
    duration_s: float
    container_duration_s: float | None
    start_time_s: float
    codec_name: str
    frames: int
    errors: int
    timestamp_gaps_s: float = 0.0


def _frame_to_mono(frame: Any) -> FloatArray:
    """A PyAV AudioFrame as float32 mono in [-1, 1]."""
    arr = frame.to_ndarray()
    channels = max(1, len(frame.layout.channels))
    fmt = frame.format
    if not fmt.is_planar:
        arr = arr.reshape(-1, channels).T
    name = fmt.name.rstrip("p")
    if name in ("flt", "dbl"):
        data = arr.astype(np.float32)
    elif name == "s16":
        data = arr.astype(np.float32) / 32768.0
    elif name == "s32":
        data = (arr.astype(np.float64) / 2_147_483_648.0).astype(np.float32)
    elif name == "u8":
        data = (arr.astype(np.float32) - 128.0) / 128.0
    elif name == "s64":
        data = (arr.astype(np.float64) / 9_223_372_036_854_775_808.0).astype(np.float32)
    else:  # pragma: no cover - FFmpeg has no other sample formats
        raise ValueError(f"unsupported sample format {fmt.name}")
    mono: FloatArray = data.mean(axis=0, dtype=np.float32)
    return mono


def decode_audio(path: str | Path, *, stream_index: int = 0) -> Decoded:
    """Decode the `stream_index`-th audio stream of `path` with PyAV (FFmpeg).

    Every packet is decoded; a packet the decoder rejects (`av.error.FFmpegError`, e.g.
    `InvalidDataError`) is counted in `errors` and skipped, never raised. Pre-skip / codec delay
    and end trimming are applied exactly as FFmpeg applies them (Ogg pre-skip, Matroska
    CodecDelay), so `duration_s` is what a player plays. Raises `FileNotFoundError` for a missing
    file and `ValueError` for a file with no audio stream.
    """
    import av

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(path)
    chunks: list[FloatArray] = []
    frames = errors = 0
    rate = channels = 0
    first_pts_s: float | None = None
    decoded_samples = 0
    gaps_s = 0.0
    with av.open(str(path)) as container:
        audio = container.streams.audio
        if len(audio) <= stream_index:
            raise ValueError(f"{path} has {len(audio)} audio stream(s), not {stream_index + 1}")
        stream = audio[stream_index]
        codec_name = stream.codec_context.name
        container_duration = None if container.duration is None else container.duration / 1e6
        packets = container.demux(stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                break
            except av.error.FFmpegError:
                # A demuxer error ends the stream for FFmpeg too; count it and stop.
                errors += 1
                break
            try:
                decoded = packet.decode()
            except av.error.FFmpegError:
                errors += 1
                continue
            for frame in decoded:
                frames += 1
                rate = frame.sample_rate
                channels = max(channels, len(frame.layout.channels))
                if frame.pts is not None and frame.time_base is not None:
                    pts_s = float(frame.pts * frame.time_base)
                    if first_pts_s is None:
                        first_pts_s = pts_s
                    expected_s = first_pts_s + decoded_samples / rate
                    # A jump of more than 1 ms past the samples so far is a gap, not rounding.
                    if pts_s - expected_s > 0.001:
                        gaps_s += pts_s - expected_s
                        decoded_samples += round((pts_s - expected_s) * rate)
                chunks.append(_frame_to_mono(frame))
                decoded_samples += frame.samples
    samples = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)
    return Decoded(
        samples=samples.astype(np.float32, copy=False),
        rate=rate,
        channels=channels,
        duration_s=len(samples) / rate if rate else 0.0,
        container_duration_s=container_duration,
        start_time_s=first_pts_s or 0.0,
        codec_name=codec_name,
        frames=frames,
        errors=errors,
        timestamp_gaps_s=gaps_s,
    )


# ---------------------------------------------------------------------------------------------
# Measuring


def goertzel_envelope(
    samples: npt.ArrayLike, rate: int, freq: float, *, window_s: float = 0.005, hop_s: float = 0.001
) -> tuple[FloatArray, FloatArray, float, float]:
    """Amplitude of the `freq` component, and the tone's share of the signal's power, in sliding
    rectangular windows.

    Returns `(amplitude, purity, window_s, hop_s)`: `amplitude[k]` is the estimated sine
    amplitude (a full-scale sine reads 1.0) in the window starting at sample
    `round(k * hop_s * rate)`, and `purity[k]` is that sine's power over the window's mean power
    (about 1 for a clean tone, near 0 for silence, clicks or another frequency). Computed as the
    single-bin DFT (what a Goertzel filter yields) of every window at once.
    """
    x = np.asarray(samples, dtype=np.float64)
    n = max(8, round(window_s * rate))
    hop = max(1, round(hop_s * rate))
    if len(x) < n:
        empty = np.zeros(0, dtype=np.float32)
        return empty, empty, n / rate, hop / rate
    phase = 2 * np.pi * freq * np.arange(len(x)) / rate
    # Sliding sums of x*cos and x*sin give the DFT bin of each window; the window's own phase
    # offset only rotates the bin, which the magnitude ignores.
    c = np.concatenate(([0.0], np.cumsum(x * np.cos(phase))))
    s = np.concatenate(([0.0], np.cumsum(x * np.sin(phase))))
    e = np.concatenate(([0.0], np.cumsum(x * x)))
    starts = np.arange(0, len(x) - n + 1, hop)
    re = c[starts + n] - c[starts]
    im = s[starts + n] - s[starts]
    amp = (2.0 / n) * np.hypot(re, im)
    mean_power = (e[starts + n] - e[starts]) / n
    purity = np.where(mean_power > 1e-12, (amp * amp / 2) / np.maximum(mean_power, 1e-12), 0.0)
    return amp.astype(np.float32), purity.astype(np.float32), n / rate, hop / rate


def tone_onsets(
    samples: npt.ArrayLike,
    rate: int,
    freq: float,
    *,
    min_gap_s: float = 0.2,
    threshold: float | None = None,
    min_len_s: float = 0.03,
    purity: float = 0.5,
    window_s: float = 0.005,
) -> list[float]:
    """Times (s from the first sample) where a sine burst of `freq` starts.

    A 5 ms window "has the tone" when the tone's amplitude is at least `threshold` (linear;
    default a quarter of the loudest window, at least 0.01) and carries at least `purity` of the
    window's power, which rejects clicks, codec transients and other frequencies. A burst starts
    where the tone holds for `min_len_s` (80 % of its windows) after at least `min_gap_s` without
    it. Its onset is placed where the amplitude first reaches half the burst's plateau (median
    over the next 40 ms): for a rectangular window sliding over a step that is the window centre
    at the step, so the estimate is unbiased and, with 1 ms hops and interpolation, good to about
    a millisecond on clean audio. Opus coding smears an attack by a few milliseconds at most.
    """
    amp, pure, win_s, hop_s = goertzel_envelope(samples, rate, freq, window_s=window_s)
    if amp.size == 0:
        return []
    thr = threshold if threshold is not None else max(0.01, 0.25 * float(amp.max()))
    has_tone = (amp >= thr) & (pure >= purity)
    gap_windows = max(1, round(min_gap_s / hop_s))
    hold_windows = max(1, round(min_len_s / hop_s))
    plateau_windows = max(1, round(0.040 / hop_s))
    back_windows = round(win_s / hop_s) + 1
    onsets: list[float] = []
    in_burst = False
    quiet_run = 0
    for k in range(amp.size):
        if in_burst:
            quiet_run = 0 if has_tone[k] else quiet_run + 1
            in_burst = quiet_run < gap_windows
            continue
        if not has_tone[k] or k + hold_windows > amp.size:
            continue
        if np.count_nonzero(has_tone[k : k + hold_windows]) < 0.8 * hold_windows:
            continue
        in_burst, quiet_run = True, 0
        half = float(np.median(amp[k : k + plateau_windows])) / 2
        # Walk back to the last window below half the plateau (the step lies within one
        # window length of the first window that has the tone).
        j = k
        while j > 0 and k - j < back_windows and amp[j] >= half:
            j -= 1
        if amp[j] >= half:
            pos = float(j)
        else:
            lo, hi = float(amp[j]), float(amp[j + 1])
            pos = j + (half - lo) / (hi - lo) if hi > lo else float(j + 1)
        onsets.append(pos * hop_s + win_s / 2)
    return onsets


def silence_spans(
    samples: npt.ArrayLike,
    rate: int,
    *,
    floor_db: float = -50.0,
    min_len_s: float = 0.1,
    window_s: float = 0.010,
) -> list[tuple[float, float]]:
    """`(start_s, end_s)` of every stretch at least `min_len_s` long whose RMS level, in
    `window_s` windows, stays below `floor_db` dBFS (a full-scale sine is -3 dBFS)."""
    x = np.asarray(samples, dtype=np.float64)
    n = max(1, round(window_s * rate))
    count = len(x) // n
    if count == 0:
        return []
    rms = np.sqrt(np.mean(x[: count * n].reshape(count, n) ** 2, axis=1))
    quiet = rms < 10 ** (floor_db / 20)
    spans: list[tuple[float, float]] = []
    k = 0
    while k < count:
        if not quiet[k]:
            k += 1
            continue
        j = k
        while j < count and quiet[j]:
            j += 1
        start, end = k * n / rate, (len(x) / rate if j == count else j * n / rate)
        if end - start >= min_len_s - 1e-9:
            spans.append((start, end))
        k = j
    return spans


# ---------------------------------------------------------------------------------------------
# Ground truth from a capture


def read_rtpdump_packets(path: str | Path) -> list[tuple[int, bytes]]:
    """`(arrival_ms, bytes)` of every RTP record of an rtpdump file (RTCP records skipped)."""
    blob = Path(path).read_bytes()
    pos = blob.index(b"\n") + 1 + 16
    out: list[tuple[int, bytes]] = []
    while pos + 8 <= len(blob):
        length, plen, offset = struct.unpack_from(">HHI", blob, pos)
        if length < 8:
            raise ValueError(f"record at byte {pos} has length {length}")
        if plen:
            out.append((offset, blob[pos + 8 : pos + length]))
        pos += length
    return out


def opus_packet_samples(payload: bytes, rate: int = OPUS_RATE) -> int:
    """How many samples (at `rate`) one Opus packet decodes to, from its TOC (RFC 6716, 3.1)."""
    if not payload:
        return 0
    toc = payload[0]
    config = toc >> 3
    if config < 12:  # SILK-only: 10, 20, 40, 60 ms
        frame_us = (10_000, 20_000, 40_000, 60_000)[config & 3]
    elif config < 16:  # hybrid: 10, 20 ms
        frame_us = (10_000, 20_000)[config & 1]
    else:  # CELT-only: 2.5, 5, 10, 20 ms
        frame_us = (2_500, 5_000, 10_000, 20_000)[config & 3]
    code = toc & 3
    if code == 0:
        count = 1
    elif code in (1, 2):
        count = 2
    else:
        count = payload[1] & 0x3F if len(payload) > 1 else 0
    return count * frame_us * rate // 1_000_000


@dataclass(frozen=True)
class CaptureTiming:
    """Span of the RTP packets of one capture, measured on the packets themselves."""

    packets: int
    unique_packets: int
    first_ts: int
    #: Extended (unwrapped) RTP time of the earliest packet, relative to the first record's.
    start_rel: int
    end_rel: int
    rate: int

    @property
    def span_s(self) -> float:
        return (self.end_rel - self.start_rel) / self.rate


def capture_truth(path: str | Path, *, rate: int = OPUS_RATE) -> CaptureTiming:
    """The span of an Opus capture: from the earliest packet's RTP time to the end of the
    latest packet (its timestamp plus the samples it decodes to), wraps and reordering handled."""
    recs = read_rtpdump_packets(path)
    if not recs:
        raise ValueError(f"{path} holds no RTP packets")
    headers = [parse_rtp_header(d) for _, d in recs]
    ext = unwrap_timestamps([h.ts for h in headers])
    base = ext[0]
    start = min(ext) - base
    end = max(
        e - base + opus_packet_samples(rtp_payload(d)) for e, (_, d) in zip(ext, recs, strict=True)
    )
    return CaptureTiming(
        packets=len(recs),
        unique_packets=len({h.seq for h in headers}),
        first_ts=headers[0].ts,
        start_rel=start,
        end_rel=end,
        rate=rate,
    )


def decode_capture(path: str | Path, *, ssrc: int | None = None) -> Decoded:
    """The reference an `extract-audio` output must match: every Opus packet of the capture
    (one SSRC, the first one seen by default; duplicates dropped) decoded with FFmpeg's Opus
    decoder in RTP timestamp order, each placed at its timestamp relative to the earliest one,
    with zeros wherever no packet covers the timeline (DTX, loss, pauses). No pre-skip is
    removed, so onsets sit `OPUS_LOOKAHEAD_S` after the source's."""
    import av

    recs = read_rtpdump_packets(path)
    headers = [parse_rtp_header(d) for _, d in recs]
    want = ssrc if ssrc is not None else (headers[0].ssrc if headers else 0)
    picked = [(h, d) for h, (_, d) in zip(headers, recs, strict=True) if h.ssrc == want]
    ext = unwrap_timestamps([h.ts for h, _ in picked])
    order: dict[int, tuple[int, bytes]] = {}
    for e, (h, d) in zip(ext, picked, strict=True):
        order.setdefault(h.seq, (e, d))
    timeline = sorted(order.values(), key=lambda item: item[0])
    ctx = av.CodecContext.create("opus", "r")
    ctx.sample_rate = OPUS_RATE
    ctx.layout = "mono"
    chunks: list[FloatArray] = []
    pos = frames = errors = 0
    start = timeline[0][0] if timeline else 0
    for e, d in timeline:
        rel = e - start
        if rel > pos:
            chunks.append(np.zeros(rel - pos, dtype=np.float32))
            pos = rel
        try:
            decoded = ctx.decode(av.Packet(rtp_payload(d)))
        except av.error.FFmpegError:
            errors += 1
            continue
        for frame in decoded:
            mono = _frame_to_mono(frame)
            # A packet that overlaps the previous one (a retransmitted or re-timestamped frame)
            # overwrites nothing: only its part past the current end is kept.
            skip = max(0, pos - rel)
            chunks.append(mono[skip:])
            pos = max(pos, rel + len(mono))
            rel += len(mono)
            frames += 1
    samples = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)
    return Decoded(
        samples=samples,
        rate=OPUS_RATE,
        channels=1,
        duration_s=len(samples) / OPUS_RATE,
        container_duration_s=None,
        start_time_s=0.0,
        codec_name="opus",
        frames=frames,
        errors=errors,
    )


# ---------------------------------------------------------------------------------------------
# Scenarios


@dataclass(frozen=True)
class AudioTruth:
    """What a correct `extract-audio` of the scenario's track decodes to.

    `span_s` is the wall-clock span (earliest packet's RTP time to the end of the latest
    packet); `onsets_s[i]` is where burst `bursts[i]` starts, relative to that same track start.
    Both describe the source signal; decoding RTP payloads without a declared pre-skip hears the
    onsets `OPUS_LOOKAHEAD_S` later. A burst whose first packets were lost starts later or
    quieter: `lost_seqs` says which packets those were.
    """

    recording: RecordingInfo
    track: TrackTruth
    rtpdump_path: Path
    sdp_path: Path
    span_s: float
    onsets_s: tuple[float, ...]
    bursts: tuple[Burst, ...]
    frame_ms: int
    dtx: bool
    packets: int
    lost_seqs: tuple[int, ...]


def _bursts(speech: Sequence[Sequence[float]]) -> tuple[Burst, ...]:
    out: list[Burst] = []
    for b in speech:
        start, length, freq = (float(v) for v in b)
        out.append((start, length, freq))
    return tuple(out)


def _truth_for(
    info: RecordingInfo,
    track: TrackTruth,
    bursts: tuple[Burst, ...],
    *,
    frame_ms: int,
    dtx: bool,
    ts0: int,
) -> AudioTruth:
    """Truth for a track whose sender stamped its first source sample `ts0`."""
    timing = capture_truth(track.rtpdump_path, rate=track.clock_rate)
    # The earliest captured packet may come after ts0 when the first packets were lost.
    first_after_ts0 = (timing.first_ts - ts0) & 0xFFFFFFFF
    if first_after_ts0 >= 0x8000_0000:
        first_after_ts0 -= 0x1_0000_0000
    start_s = (first_after_ts0 + timing.start_rel) / timing.rate
    return AudioTruth(
        recording=info,
        track=track,
        rtpdump_path=track.rtpdump_path,
        sdp_path=track.sdp_path,
        span_s=timing.span_s,
        onsets_s=tuple(b[0] - start_s for b in bursts),
        bursts=bursts,
        frame_ms=frame_ms,
        dtx=dtx,
        packets=timing.packets,
        lost_seqs=track.lost_seqs,
    )


def _default_ts0(participant_id: str, session_id: str) -> int:
    """A stable, arbitrary initial RTP timestamp, so the truth knows the sender's origin."""
    digest = hashlib.blake2b(f"{participant_id}/{session_id}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") & 0x7FFF_FFFF


def opus_call(
    root: Path,
    *,
    duration_s: float,
    speech: Sequence[Sequence[float]] = (),
    frame_ms: int = 20,
    dtx: bool = False,
    impairments: Impairments | None = None,
    seq_offset: int | None = None,
    ts_offset: int | None = None,
    start_offset_s: float = 0.0,
    participant_id: str = "user_1",
    session_id: str = "session_1",
    sender_reports: bool = True,
) -> AudioTruth:
    """One participant, one Opus track of `duration_s` that is silent but for `speech` bursts
    (`(start_s, length_s, freq_hz)`), written as a raw recording under `root`."""
    bursts = _bursts(speech)
    source = OpusSource(duration_s, frame_ms=frame_ms, dtx=dtx, tone_bursts=bursts)
    return _single_track(
        root,
        source,
        impairments=impairments or Impairments(),
        seq_offset=seq_offset,
        ts_offset=ts_offset,
        start_offset_s=start_offset_s,
        participant_id=participant_id,
        session_id=session_id,
        sender_reports=sender_reports,
    )


def _single_track(
    root: Path,
    source: OpusSource,
    *,
    impairments: Impairments,
    seq_offset: int | None,
    ts_offset: int | None,
    start_offset_s: float,
    participant_id: str,
    session_id: str,
    sender_reports: bool,
) -> AudioTruth:
    ts0 = _default_ts0(participant_id, session_id) if ts_offset is None else ts_offset
    spec = _opus_spec(
        source, impairments, seq_offset, ts0, start_offset_s, sender_reports=sender_reports
    )
    info = build_recording(root, [SessionSpec(participant_id, session_id, [spec])])
    track = info.sessions[0].tracks[0]
    bursts = source.tone_bursts or ()
    return _truth_for(info, track, bursts, frame_ms=source.frame_ms, dtx=source.dtx, ts0=ts0)


def _opus_spec(
    source: OpusSource,
    impairments: Impairments,
    seq_offset: int | None,
    ts_offset: int | None,
    start_offset_s: float,
    *,
    sender_reports: bool,
) -> TrackSpec:
    return TrackSpec(
        "audio",
        "opus",
        source=source,
        start_offset_s=start_offset_s,
        seq_offset=seq_offset,
        ts_offset=ts_offset,
        impairments=impairments,
        sender_reports=SenderReports() if sender_reports else None,
    )


def dtx_call(
    root: Path,
    *,
    duration_s: float = 30.0,
    speech: Sequence[Sequence[float]] | None = None,
    frame_ms: int = 20,
    impairments: Impairments | None = None,
) -> AudioTruth:
    """A DTX track (the encoder and payloader stop sending during silence, one comfort-noise
    packet every 400 ms): by default 1.5 s bursts at 440/660/880 Hz with 4-6 s of silence
    between them, so a writer that ignores timestamp gaps comes out seconds short."""
    if speech is None:
        speech = _default_speech(duration_s)
    return opus_call(
        root,
        duration_s=duration_s,
        speech=speech,
        frame_ms=frame_ms,
        dtx=True,
        impairments=impairments,
    )


def _default_speech(duration_s: float) -> list[Burst]:
    freqs = (440.0, 660.0, 880.0)
    out: list[Burst] = []
    t, i = 1.0, 0
    while t + 1.5 <= duration_s - 0.5:
        out.append((t, 1.5, freqs[i % 3]))
        t += 1.5 + 4.0 + (i % 3)
        i += 1
    return out


def impaired_call(
    root: Path,
    *,
    duration_s: float = 10.0,
    loss: float = 0.0,
    reorder: float = 0.0,
    duplicate: float = 0.0,
    jitter_ms: int = 0,
    seed: int = 1,
    dtx: bool = False,
    frame_ms: int = 20,
) -> AudioTruth:
    """A track with one 1 s burst every 2 s and the given network impairments."""
    speech = [(t + 0.5, 1.0, 440.0) for t in range(0, int(duration_s) - 1, 2)]
    imp = Impairments(
        loss=loss, reorder=reorder, duplicate=duplicate, jitter_ms=jitter_ms, seed=seed
    )
    return opus_call(
        root, duration_s=duration_s, speech=speech, frame_ms=frame_ms, dtx=dtx, impairments=imp
    )


def wrap_call(
    root: Path,
    *,
    duration_s: float = 6.0,
    seq_wrap_after_s: float | None = 2.0,
    ts_wrap_after_s: float | None = 3.0,
    frame_ms: int = 20,
    dtx: bool = False,
) -> AudioTruth:
    """A track whose sequence numbers wrap `seq_wrap_after_s` in and whose RTP timestamps wrap
    `ts_wrap_after_s` in (None for no wrap)."""
    per_s = 1000 // frame_ms
    seq = None if seq_wrap_after_s is None else 0x1_0000 - round(seq_wrap_after_s * per_s)
    ts = None if ts_wrap_after_s is None else 0x1_0000_0000 - round(ts_wrap_after_s * OPUS_RATE)
    speech = [(t + 0.25, 0.5, 660.0) for t in range(int(duration_s))]
    return opus_call(
        root,
        duration_s=duration_s,
        speech=speech,
        frame_ms=frame_ms,
        dtx=dtx,
        seq_offset=seq,
        ts_offset=ts,
    )


def frame_size_call(root: Path, *, frame_ms: int, duration_s: float = 5.0) -> AudioTruth:
    """A track of `frame_ms` (10, 20, 40 or 60) packets with a burst each second."""
    speech = [(t + 0.3, 0.4, 880.0) for t in range(int(duration_s))]
    return opus_call(root, duration_s=duration_s, speech=speech, frame_ms=frame_ms)


@dataclass(frozen=True)
class RejoinTruth:
    """One participant in two user sessions with `pause_s` of nothing between them.

    `span_s` runs from the first session's track start to the end of the second session's last
    packet on the wall clock (capture start offsets, not RTP, relate the two sessions, which
    have unrelated SSRCs and timestamp bases); `onsets_s` are relative to the first track start.
    """

    recording: RecordingInfo
    sessions: tuple[AudioTruth, AudioTruth]
    pause_s: float
    second_start_s: float
    span_s: float
    onsets_s: tuple[float, ...]


def rejoin_call(
    root: Path,
    *,
    first_s: float = 4.0,
    pause_s: float = 3.0,
    second_s: float = 4.0,
    dtx_second: bool = True,
) -> RejoinTruth:
    """user_1 speaks in session_1, leaves, and rejoins as session_2 `pause_s` after the end of
    session_1 (with DTX there by default, as a browser that rejoins muted-ish would)."""
    s1 = _bursts([(t + 0.5, 1.0, 440.0) for t in range(0, int(first_s) - 1, 2)])
    s2 = _bursts([(t + 0.5, 1.0, 660.0) for t in range(0, int(second_s) - 1, 2)])
    src1 = OpusSource(first_s, tone_bursts=s1)
    src2 = OpusSource(second_s, dtx=dtx_second, tone_bursts=s2)
    second_start = first_s + pause_s
    ts1, ts2 = _default_ts0("user_1", "session_1"), _default_ts0("user_1", "session_2")
    spec1 = _opus_spec(src1, Impairments(), None, ts1, 0.0, sender_reports=True)
    spec2 = _opus_spec(src2, Impairments(), None, ts2, second_start, sender_reports=True)
    info = build_recording(
        root,
        [SessionSpec("user_1", "session_1", [spec1]), SessionSpec("user_1", "session_2", [spec2])],
    )
    t1 = info.sessions[0].tracks[0]
    t2 = info.sessions[1].tracks[0]
    a1 = _truth_for(info, t1, s1, frame_ms=20, dtx=False, ts0=ts1)
    a2 = _truth_for(info, t2, s2, frame_ms=20, dtx=dtx_second, ts0=ts2)
    # Both captures start sending at their capture start plus the same network delay, so the
    # wall-clock offset between the two tracks is the difference of their start offsets.
    span = second_start + a2.span_s
    onsets = a1.onsets_s + tuple(second_start + o for o in a2.onsets_s)
    return RejoinTruth(info, (a1, a2), pause_s, second_start, span, onsets)


def expected_samples(span_s: float, rate: int = OPUS_RATE) -> int:
    """The sample count a decoder must produce for a track spanning `span_s` at `rate`."""
    return math.floor(span_s * rate + 0.5)
