"""Decode video files and measure them; build video recordings whose frames are known exactly.

This module owns the video side of "check the decoded output, not the writer's word": it decodes
every frame of a file with PyAV (FFmpeg's decoders), counting what the decoder rejects or
complains about, and reduces each frame to its time, size and mean brightness, so a white flash
frame (from `gst`'s `flashes=`) or a black filler frame can be found by time. It also builds raw
recordings (via `recording.build_recording`) of one video track per codec: clean, lossy,
reordered with duplicates, wrapping its sequence numbers and timestamps, changing resolution,
pausing its sender, and a participant who rejoins.

Each builder returns a `VideoTruth` computed from the packets the sender produced and the ones
the capture actually holds: which frames a correct extractor writes (complete frames from the
first keyframe on; after a frame with a missing packet, nothing until the next complete
keyframe), the time of each (RTP time over 90 kHz, relative to the first written frame), the
flashes among them, and the stretches without frames. The generated streams carry no VP8
temporal-layer indices, so no inter frame after a loss is provably decodable.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from . import av1, gst
from .audio_truth import read_rtpdump_packets
from .impair import rewrite, unwrap_timestamps
from .recording import (
    Impairments,
    RecordingInfo,
    SenderReports,
    SessionSpec,
    TrackSpec,
    TrackTruth,
    build_recording,
    is_keyframe_start,
)
from .rtpdump import parse_rtp_header, rtp_payload

__all__ = [
    "BLACK_LUMA",
    "PSNR_DAMAGED_DB",
    "VIDEO_CLOCK",
    "DecodedVideo",
    "RejoinVideoTruth",
    "ScreenTime",
    "SentFrame",
    "VideoTruth",
    "black_spans",
    "container_video_size",
    "decode_video",
    "flash_times",
    "frames_of",
    "lossy_call",
    "paused_call",
    "rejoin_video_call",
    "resolution_change_call",
    "screen_time",
    "video_call",
    "video_packets",
]

VIDEO_CLOCK = 90_000
#: Mean luma below which a frame counts as black. The generator's dark background is Y=16
#: (video black), so only scenarios without flashes can tell filler from content this way.
BLACK_LUMA = 20.0

FloatArray = npt.NDArray[np.float64]


# ---------------------------------------------------------------------------------------------
# Decoding


@dataclass(frozen=True)
class DecodedVideo:
    """One video stream, every frame decoded the way FFmpeg plays it.

    `errors` counts packets the decoder rejected (an exception) plus messages FFmpeg logged at
    error level or worse while demuxing and decoding (concealed corruption, missing references:
    decoders log those and still return a picture); `error_messages` holds the latter's text.
    Per decoded frame: `pts_s` (from `frame.time`), `sizes` (width, height), `luma` (mean Y,
    0-255) and `keyframes`.
    """

    frames: int
    errors: int
    pts_s: FloatArray
    sizes: list[tuple[int, int]]
    luma: FloatArray
    keyframes: npt.NDArray[np.bool_]
    codec_name: str
    container_duration_s: float | None
    #: Counter-clockwise degrees from the display matrix, None when the file carries none.
    rotation: float | None
    packets: int
    first_packet_keyframe: bool
    error_messages: tuple[str, ...] = ()

    def gaps(self, longer_than_s: float) -> list[tuple[float, float]]:
        """`(pts, next pts)` of consecutive frames further apart than `longer_than_s`."""
        return [
            (float(a), float(b)) for a, b in itertools.pairwise(self.pts_s) if b - a > longer_than_s
        ]


def decode_video(path: str | Path, *, stream_index: int = 0) -> DecodedVideo:
    """Decode the `stream_index`-th video stream of `path` with PyAV, single-threaded.

    A packet the decoder rejects (`av.error.FFmpegError`, e.g. `InvalidDataError`) is counted
    in `errors` and skipped, never raised; so is every FFmpeg log message at error level.
    Raises `FileNotFoundError` for a missing file, `ValueError` for one without video.
    """
    import av
    import av.logging

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(path)
    pts: list[float] = []
    sizes: list[tuple[int, int]] = []
    luma: list[float] = []
    keys: list[bool] = []
    errors = packets = 0
    rotation: float | None = None
    first_packet_key = False
    previous_level = av.logging.get_level()
    av.logging.set_level(av.logging.ERROR)
    try:
        with av.logging.Capture(local=False) as logs, av.open(str(path)) as container:
            video = container.streams.video
            if len(video) <= stream_index:
                raise ValueError(f"{path} has {len(video)} video stream(s), not {stream_index + 1}")
            stream = video[stream_index]
            stream.codec_context.thread_count = 1
            codec_name = stream.codec_context.name
            container_duration = None if container.duration is None else container.duration / 1e6
            demuxed = container.demux(stream)
            while True:
                try:
                    packet = next(demuxed)
                except StopIteration:
                    break
                except av.error.FFmpegError:
                    errors += 1  # a demuxer error ends the stream for FFmpeg too
                    break
                if packet.size:
                    if packets == 0:
                        first_packet_key = bool(packet.is_keyframe)
                    packets += 1
                try:
                    frames = packet.decode()
                except av.error.FFmpegError:
                    errors += 1
                    continue
                for frame in frames:
                    pts.append(float(frame.time) if frame.time is not None else float("nan"))
                    sizes.append((frame.width, frame.height))
                    y = frame.planes[0]
                    plane = np.frombuffer(memoryview(y), dtype=np.uint8).reshape(-1, y.line_size)
                    luma.append(float(plane[:, : frame.width].mean()))
                    keys.append(bool(frame.key_frame))
                    if rotation is None and _has_display_matrix(frame):
                        rotation = float(frame.rotation)
        messages = tuple(f"{name}: {msg.strip()}" for level, name, msg in logs if level <= 16)
    finally:
        av.logging.set_level(previous_level)
    return DecodedVideo(
        frames=len(pts),
        errors=errors + len(messages),
        pts_s=np.asarray(pts, dtype=np.float64),
        sizes=sizes,
        luma=np.asarray(luma, dtype=np.float64),
        keyframes=np.asarray(keys, dtype=np.bool_),
        codec_name=codec_name,
        container_duration_s=container_duration,
        rotation=rotation,
        packets=packets,
        first_packet_keyframe=first_packet_key,
        error_messages=messages,
    )


def _has_display_matrix(frame: Any) -> bool:
    try:
        return any("DISPLAYMATRIX" in str(getattr(sd, "type", "")) for sd in frame.side_data)
    except (AttributeError, TypeError):
        return False


def container_video_size(path: str | Path) -> tuple[int, int] | None:
    """The (PixelWidth, PixelHeight) the first video TrackEntry of a Matroska/WebM file declares,
    read from the EBML header itself (what a player sizes its window by before decoding)."""
    blob = Path(path).read_bytes()[: 1 << 20]

    def vint(pos: int, *, keep_marker: bool) -> tuple[int, int, bool]:
        """(value, next position, all value bits set: the "unknown size" marker)."""
        first = blob[pos]
        length = 1
        while length <= 8 and not first & (0x80 >> (length - 1)):
            length += 1
        if length > 8:
            raise ValueError(f"bad EBML varint at byte {pos}")
        value = first if keep_marker else first & (0xFF >> length)
        for b in blob[pos + 1 : pos + length]:
            value = (value << 8) | b
        return value, pos + length, value == (1 << (7 * length)) - 1

    def children(start: int, end: int) -> list[tuple[int, int, int]]:
        out: list[tuple[int, int, int]] = []
        pos = start
        while pos < min(end, len(blob)):
            ident, pos, _ = vint(pos, keep_marker=True)
            size, pos, unknown = vint(pos, keep_marker=False)
            body_end = min(end, len(blob)) if unknown else min(pos + size, len(blob))
            out.append((ident, pos, body_end))
            pos = body_end
        return out

    def uint(start: int, end: int) -> int:
        return int.from_bytes(blob[start:end], "big")

    for ident, body, end in children(0, len(blob)):
        if ident != 0x18538067:  # Segment
            continue
        for sub, sbody, send in children(body, end):
            if sub != 0x1654AE6B:  # Tracks
                continue
            for entry, ebody, eend in children(sbody, send):
                if entry != 0xAE:  # TrackEntry
                    continue
                for item, ibody, iend in children(ebody, eend):
                    if item != 0xE0:  # Video
                        continue
                    dims = {k: uint(b, e) for k, b, e in children(ibody, iend)}
                    if 0xB0 in dims and 0xBA in dims:
                        return dims[0xB0], dims[0xBA]
    return None


# ---------------------------------------------------------------------------------------------
# Measuring


def flash_times(decoded: DecodedVideo, *, threshold: float = 60.0) -> list[float]:
    """Times of frames much brighter than the picture usually is: the single white flash frames
    `gst`'s `flashes=` puts on a dark background.

    A frame is a flash when its mean luma exceeds the median of all frames by `threshold` and
    is a local maximum (an encoder leaving a flash may need a frame to get dark again; that
    frame is dimmer than the flash itself, so only the flash counts).
    """
    y = decoded.luma
    if y.size == 0:
        return []
    base = float(np.median(y))
    out: list[float] = []
    for i, v in enumerate(y):
        if v - base < threshold:
            continue
        if i > 0 and y[i - 1] > v:
            continue
        if i + 1 < y.size and y[i + 1] >= v:
            continue
        out.append(float(decoded.pts_s[i]))
    return out


def black_spans(
    decoded: DecodedVideo, *, level: float = BLACK_LUMA
) -> list[tuple[float, float, int]]:
    """`(start_s, end_s, frames)` of each run of consecutive frames whose mean luma is below
    `level`: from the first black frame's time to the next frame's time (the container's end
    for a run that ends the file), with the number of frames in the run."""
    spans: list[tuple[float, float, int]] = []
    y, t = decoded.luma, decoded.pts_s
    i = 0
    while i < y.size:
        if y[i] >= level:
            i += 1
            continue
        j = i
        while j < y.size and y[j] < level:
            j += 1
        # A run that ends the file lasts until the container's end.
        end = float(t[j]) if j < y.size else decoded.container_duration_s or float(t[j - 1])
        spans.append((float(t[i]), end, j - i))
        i = j
    return spans


#: Luma PSNR below which a decoded picture is damaged (not the source picture it stands for).
PSNR_DAMAGED_DB = 22.0


def luma_psnr(a: npt.NDArray[np.uint8], b: npt.NDArray[np.uint8]) -> float:
    """Peak signal-to-noise ratio of two luma planes of one size, in dB (inf when equal)."""
    mse = float(np.mean((a.astype(np.float32) - b.astype(np.float32)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


@dataclass(frozen=True)
class ScreenTime:
    """What a viewer of a decoded output sees over its track's span, in seconds.

    Every frame time the sender used, from the output's t=0 to the track's true end, is one
    slot of one frame interval. The picture on screen then is the last decoded frame at or
    before it (FFmpeg's frame times, the way a player holds a picture until the next one);
    it is `correct` when it is that slot's source picture (luma PSNR at least
    `PSNR_DAMAGED_DB`), `held` when it is an earlier source picture, intact, `black` when its
    mean luma is below `BLACK_LUMA`, `damaged` otherwise (a picture decoded against lost
    references), `missing` when nothing is on screen (before the first frame or after the
    file's end)."""

    span_s: float
    correct_s: float
    held_s: float
    black_s: float
    damaged_s: float
    missing_s: float
    #: Where the file ends (the container's duration) and the track's true end.
    end_s: float
    true_end_s: float

    @property
    def shown_s(self) -> float:
        """Correct or held: a right picture on screen."""
        return self.correct_s + self.held_s

    def row(self) -> dict[str, float]:
        return {
            "correct_s": round(self.correct_s, 2),
            "held_s": round(self.held_s, 2),
            "black_s": round(self.black_s, 2),
            "damaged_s": round(self.damaged_s, 2),
            "missing_s": round(self.missing_s, 2),
            "shown_pct": round(100 * self.shown_s / self.span_s, 2) if self.span_s else 0.0,
            "end_s": round(self.end_s, 3),
            "true_end_s": round(self.true_end_s, 3),
        }


def _decode_tolerantly(container: Any, stream: Any) -> Any:
    """Every frame the decoder gives, skipping the packets it refuses (as a player does: dav1d
    refuses an AV1 frame whose references are missing)."""
    import av

    for packet in container.demux(stream):
        try:
            yield from packet.decode()
        except av.error.FFmpegError:
            continue


def screen_time(path: str | Path, truth: VideoTruth, *, stream_index: int = 0) -> ScreenTime:
    """Measure `path` against the scrolling-pattern source `truth` was made from
    (`flashes=None`): decode every frame with PyAV and compare it with the source picture of
    its own time (`gst.pattern_planes`), then walk the sender's frame times (see
    `ScreenTime`)."""
    import av

    width, height = truth.frames_sent[0].size
    fps = truth.fps
    origin = truth.origin_s
    # Per decoded frame: time on the output, the source picture it carries, PSNR, mean luma.
    shown: list[tuple[float, int, float, float]] = []
    with av.open(str(path)) as container:
        stream = container.streams.video[stream_index]
        stream.codec_context.thread_count = 1
        end_s = container.duration / 1e6 if container.duration is not None else 0.0
        for frame in _decode_tolerantly(container, stream):
            t = float(frame.time)
            j = round((t + origin) * fps)
            y = frame.to_ndarray(format="gray")
            mean = float(y.mean())
            psnr = 0.0
            if y.shape == (height, width):
                psnr = luma_psnr(y, gst.pattern_planes(j, width, height)[0])
            shown.append((t, j, psnr, mean))
    times = np.asarray([s[0] for s in shown])
    slot = 1.0 / fps
    counts = dict.fromkeys(("correct", "held", "black", "damaged", "missing"), 0)
    true_end = truth.end_s
    first = round(origin * VIDEO_CLOCK)
    for f in truth.frames_sent:
        if f.ts < first:
            continue
        t = (f.ts - first) / VIDEO_CLOCK
        k = round(f.ts * fps / VIDEO_CLOCK)
        if t >= true_end - slot / 2:
            break
        i = int(np.searchsorted(times, t + 0.002, side="right")) - 1
        if i < 0 or t >= end_s:
            counts["missing"] += 1
            continue
        _, j, psnr, mean = shown[i]
        if mean < BLACK_LUMA:
            counts["black"] += 1
        elif psnr >= PSNR_DAMAGED_DB:
            counts["correct" if j == k else "held"] += 1
        else:
            counts["damaged"] += 1
    total = sum(counts.values())
    return ScreenTime(
        span_s=total * slot,
        correct_s=counts["correct"] * slot,
        held_s=counts["held"] * slot,
        black_s=counts["black"] * slot,
        damaged_s=counts["damaged"] * slot,
        missing_s=counts["missing"] * slot,
        end_s=end_s,
        true_end_s=true_end,
    )


# ---------------------------------------------------------------------------------------------
# Ground truth


@dataclass(frozen=True)
class SentFrame:
    """One picture as the sender put it on the wire."""

    #: RTP timestamp, unwrapped, relative to the first frame sent.
    ts: int
    seqs: tuple[int, ...]
    keyframe: bool
    size: tuple[int, int]
    flash: bool = False


def frames_of(
    codec: str,
    packets: Sequence[bytes],
    *,
    size: tuple[int, int],
    flash_ts: Sequence[int] = (),
) -> list[SentFrame]:
    """Group packets (in send order) into frames by RTP timestamp. `flash_ts` are the raw RTP
    timestamps of the flash frames."""
    if not packets:
        return []
    headers = [parse_rtp_header(p) for p in packets]
    ext = unwrap_timestamps([h.ts for h in headers])
    flashes = {t & 0xFFFFFFFF for t in flash_ts}
    frames: list[SentFrame] = []
    cur_ts: int | None = None
    seqs: list[int] = []
    key = False
    raw_ts = 0

    def close() -> None:
        if cur_ts is not None:
            frames.append(
                SentFrame(cur_ts - ext[0], tuple(seqs), key, size, flash=raw_ts in flashes)
            )

    for p, h, e in zip(packets, headers, ext, strict=True):
        if e != cur_ts:
            close()
            cur_ts, seqs, key, raw_ts = e, [], False, h.ts
        seqs.append(h.seq)
        key = key or is_keyframe_start(codec, rtp_payload(p))
    close()
    return frames


@dataclass(frozen=True)
class VideoTruth:
    """What a correct `extract-video` of the scenario's track contains.

    `times_s` are the frames a correct extractor writes, relative to the first of them (t=0);
    `keyframe_times_s` the keyframes among them; `flashes_s` the flash frames among them (those
    whose frame was lost or undecodable are in `lost_flashes_s`, relative to the same origin);
    `sizes` the picture size of each written frame. `gaps_s` are the stretches between written
    frames longer than three frame intervals (as `(last frame before, first frame after)`).
    Counters: `incomplete` frames missing a packet, `undecodable` complete frames that follow
    a loss before the next keyframe, `keyframe_waits` waits for a keyframe after a loss that a
    keyframe ended (a wait still open at the end of the track is not counted).
    """

    recording: RecordingInfo
    track: TrackTruth
    codec: str
    fps: int
    frames_sent: tuple[SentFrame, ...]
    captured_seqs: frozenset[int]
    times_s: tuple[float, ...]
    keyframe_times_s: tuple[float, ...]
    flashes_s: tuple[float, ...]
    lost_flashes_s: tuple[float, ...]
    sizes: tuple[tuple[int, int], ...]
    gaps_s: tuple[tuple[float, float], ...]
    incomplete: int
    undecodable: int
    keyframe_waits: int
    #: Arrival (Unix ms) of the first packet of the first written frame.
    start_unix_ms: int | None
    extra: dict[str, Any] = field(default_factory=dict)
    #: The first written frame's time, relative to the first frame sent (the output's t=0).
    origin_s: float = 0.0

    @property
    def frame_s(self) -> float:
        return 1.0 / self.fps

    @property
    def last_s(self) -> float:
        return self.times_s[-1] if self.times_s else 0.0

    @property
    def end_s(self) -> float:
        """The track's true end on the output's clock: one frame after the last picture that
        arrived, in whole or in part (its last packet's RTP time)."""
        arrived = [f for f in self.frames_sent if any(s in self.captured_seqs for s in f.seqs)]
        last = arrived[-1].ts / VIDEO_CLOCK if arrived else 0.0
        return last - self.origin_s + self.frame_s

    def conceal_times_s(self) -> tuple[float, ...]:
        """The frames `--on-loss conceal` writes: every complete frame from the first written
        keyframe on, references or not."""
        origin = round(self.origin_s * VIDEO_CLOCK)
        return tuple(
            (f.ts - origin) / VIDEO_CLOCK
            for f in self.frames_sent
            if f.ts >= origin and all(s in self.captured_seqs for s in f.seqs)
        )


def _captured(track: TrackTruth) -> tuple[frozenset[int], dict[int, int]]:
    """Sequence numbers of the track's RTP packets in the capture, and each one's first arrival
    (ms after capture start)."""
    seqs: set[int] = set()
    arrival: dict[int, int] = {}
    for at, data in read_rtpdump_packets(track.rtpdump_path):
        try:
            h = parse_rtp_header(data)
        except ValueError:
            continue
        if h.ssrc != track.ssrc or h.pt != track.pt:
            continue
        seqs.add(h.seq)
        arrival.setdefault(h.seq, at)
    return frozenset(seqs), arrival


def _truth(
    info: RecordingInfo,
    track: TrackTruth,
    codec: str,
    fps: int,
    frames: Sequence[SentFrame],
    **extra: Any,
) -> VideoTruth:
    captured, arrival = _captured(track)
    written: list[SentFrame] = []
    lost_flash_ts: list[int] = []
    incomplete = undecodable = waits = 0
    decodable = False
    waiting = False
    for f in frames:
        complete = all(s in captured for s in f.seqs)
        if not complete:
            incomplete += 1
            decodable, waiting = False, True
        elif f.keyframe:
            # A wait counts once it ends; one still open when the track ends cost no time
            # the output shows.
            waits += waiting
            decodable, waiting = True, False
        elif not decodable and waiting and written:
            undecodable += 1
        if complete and decodable:
            written.append(f)
        elif f.flash:
            lost_flash_ts.append(f.ts)
    origin = written[0].ts if written else 0
    times = tuple((f.ts - origin) / VIDEO_CLOCK for f in written)
    interval = 1.0 / fps
    gaps = tuple((a, b) for a, b in itertools.pairwise(times) if b - a > 3 * interval + 1e-6)
    start_unix = None
    if written and track.capture_start_unix_ms is not None:
        first_seq = written[0].seqs[0]
        if first_seq in arrival:
            start_unix = track.capture_start_unix_ms + arrival[first_seq]
    return VideoTruth(
        recording=info,
        track=track,
        codec=codec,
        fps=fps,
        frames_sent=tuple(frames),
        captured_seqs=captured,
        times_s=times,
        keyframe_times_s=tuple(t for t, f in zip(times, written, strict=True) if f.keyframe),
        flashes_s=tuple(t for t, f in zip(times, written, strict=True) if f.flash),
        lost_flashes_s=tuple((ts - origin) / VIDEO_CLOCK for ts in lost_flash_ts),
        sizes=tuple(f.size for f in written),
        gaps_s=gaps,
        incomplete=incomplete,
        undecodable=undecodable,
        keyframe_waits=waits,
        start_unix_ms=start_unix,
        extra=dict(extra),
        origin_s=origin / VIDEO_CLOCK,
    )


# ---------------------------------------------------------------------------------------------
# Scenarios

_MAKERS = {
    "vp8": gst.vp8_packets,
    "vp9": gst.vp9_packets,
    "h264": gst.h264_packets,
    "av1": av1.av1_packets,
}
_SSRCS = {"vp8": 0x5EED_0008, "vp9": 0x5EED_0009, "h264": 0x5EED_0264, "av1": 0x5EED_0A01}


def video_packets(
    codec: str,
    duration_s: float,
    *,
    width: int = 320,
    height: int = 180,
    fps: int = 15,
    flashes: Sequence[float] | None = None,
    keyframe_interval: int | None = None,
    ssrc: int | None = None,
    seq_offset: int | None = None,
    ts_offset: int | None = None,
    bitrate_kbps: int = 150,
) -> tuple[list[bytes], list[SentFrame]]:
    """GStreamer-made packets of one codec and the frames they form (flashes marked)."""
    if codec not in _MAKERS:
        raise ValueError(f"no RTP payloader for {codec!r} here")
    ssrc = _SSRCS[codec] if ssrc is None else ssrc
    seq = 1000 if seq_offset is None else seq_offset
    ts = 90_000 * 10 if ts_offset is None else ts_offset
    packets = _MAKERS[codec](
        duration_s,
        width=width,
        height=height,
        fps=fps,
        flashes=None if flashes is None else list(flashes),
        keyframe_interval=keyframe_interval or 3 * fps,
        ssrc=ssrc,
        seq_offset=seq,
        ts_offset=ts,
        bitrate_kbps=bitrate_kbps,
    )
    step = VIDEO_CLOCK // fps
    flash_ts = [ts + round(at * fps) * step for at in flashes or ()]
    return packets, frames_of(codec, packets, size=(width, height), flash_ts=flash_ts)


def _record(
    root: Path,
    codec: str,
    packets: Sequence[bytes],
    *,
    impairments: Impairments | None = None,
    kind: str = "video",
    participant_id: str = "user_1",
    session_id: str = "session_1",
    start_offset_s: float = 0.0,
    max_frame_dimension: tuple[int, int] | None = None,
) -> tuple[RecordingInfo, TrackTruth]:
    spec = TrackSpec(
        kind,  # type: ignore[arg-type]
        codec,  # type: ignore[arg-type]
        packets=list(packets),
        start_offset_s=start_offset_s,
        impairments=impairments or Impairments(),
        sender_reports=SenderReports(),
        max_frame_dimension=max_frame_dimension,
    )
    info = build_recording(root, [SessionSpec(participant_id, session_id, [spec])])
    return info, info.sessions[0].tracks[0]


def video_call(
    root: Path,
    codec: str,
    *,
    duration_s: float = 3.0,
    fps: int = 15,
    width: int = 320,
    height: int = 180,
    flashes: Sequence[float] | None = (0.5, 1.5, 2.5),
    keyframe_interval: int | None = None,
    impairments: Impairments | None = None,
    seq_offset: int | None = None,
    ts_offset: int | None = None,
    kind: str = "video",
) -> VideoTruth:
    """One participant, one video track: dark with white flashes at `flashes` (or a scrolling
    pattern with `flashes=None`), through the given network `impairments` (use `lossy_call` for
    loss that must spare the first frame)."""
    packets, frames = video_packets(
        codec,
        duration_s,
        width=width,
        height=height,
        fps=fps,
        flashes=flashes,
        keyframe_interval=keyframe_interval,
        seq_offset=seq_offset,
        ts_offset=ts_offset,
    )
    info, track = _record(root, codec, packets, impairments=impairments, kind=kind)
    return _truth(info, track, codec, fps, frames)


def lossy_call(
    root: Path,
    codec: str,
    *,
    drop_frames: Sequence[int] = (),
    partial_frames: Sequence[int] = (),
    loss: float = 0.0,
    seed: int = 1,
    duration_s: float = 4.0,
    fps: int = 15,
    flashes: Sequence[float] | None = (0.5, 1.5, 2.5, 3.5),
    keyframe_interval: int | None = None,
    width: int = 320,
    height: int = 180,
    bitrate_kbps: int = 150,
) -> VideoTruth:
    """A track that loses every packet of the frames numbered `drop_frames`, the last packet
    of the first multi-packet frame at or after each of `partial_frames` (so a frame arrives
    in part), and, with `loss`, a seeded random share of the other packets. The first frame
    always arrives, so output starts at the track start. Lost packets leave sequence-number
    gaps, as network loss does. `extra["partial"]` lists the frames that arrived in part."""
    packets, frames = video_packets(
        codec,
        duration_s,
        fps=fps,
        flashes=flashes,
        keyframe_interval=keyframe_interval,
        width=width,
        height=height,
        bitrate_kbps=bitrate_kbps,
    )
    rng = random.Random(seed)
    dropped = {s for i in drop_frames for s in frames[i].seqs}
    partial: list[int] = []
    for i in partial_frames:
        j = next(k for k in range(i, len(frames)) if len(frames[k].seqs) > 1)
        partial.append(j)
        dropped.add(frames[j].seqs[-1])
    first = set(frames[0].seqs)
    for p in packets:
        seq = parse_rtp_header(p).seq
        if loss > 0 and seq not in first and rng.random() < loss:
            dropped.add(seq)
    kept = [p for p in packets if parse_rtp_header(p).seq not in dropped]
    info, track = _record(root, codec, kept)
    return _truth(
        info, track, codec, fps, frames, dropped_seqs=frozenset(dropped), partial=tuple(partial)
    )


def paused_call(
    root: Path,
    codec: str,
    *,
    pause_from_s: float = 1.0,
    pause_s: float = 3.0,
    duration_s: float = 6.0,
    fps: int = 15,
) -> VideoTruth:
    """A sender that stops for `pause_s` and resumes with a keyframe: a scrolling pattern (no
    dark frames, so black filler is unmistakable) with a keyframe every second. Frames after
    the one at `pause_from_s` up to the first keyframe at least `pause_s` later are never sent;
    sequence numbers run on without a gap (nothing was lost), RTP time jumps."""
    packets, frames = video_packets(codec, duration_s, fps=fps, flashes=None, keyframe_interval=fps)
    step = VIDEO_CLOCK // fps
    last_before = round(pause_from_s * fps)
    resume = next(
        i
        for i, f in enumerate(frames)
        if i > last_before and f.keyframe and (i - last_before) * step >= pause_s * VIDEO_CLOCK
    )
    frame_of = {s: i for i, f in enumerate(frames) for s in f.seqs}
    head = [p for p in packets if frame_of[parse_rtp_header(p).seq] <= last_before]
    tail = [p for p in packets if frame_of[parse_rtp_header(p).seq] >= resume]
    next_seq = (parse_rtp_header(head[-1]).seq + 1) & 0xFFFF
    tail = rewrite(tail, seq_offset=next_seq)
    offset = frames[resume].seqs[0] - next_seq
    sent = list(frames[: last_before + 1]) + [
        SentFrame(f.ts, tuple((s - offset) & 0xFFFF for s in f.seqs), f.keyframe, f.size, f.flash)
        for f in frames[resume:]
    ]
    info, track = _record(root, codec, head + tail)
    return _truth(
        info,
        track,
        codec,
        fps,
        sent,
        pause_start_s=frames[last_before].ts / VIDEO_CLOCK,
        pause_end_s=frames[resume].ts / VIDEO_CLOCK,
    )


def resolution_change_call(
    root: Path,
    codec: str,
    *,
    first: tuple[int, int] = (320, 180),
    second: tuple[int, int] = (640, 360),
    each_s: float = 2.0,
    fps: int = 15,
) -> VideoTruth:
    """A sender that switches from `first` to `second` size after `each_s`, the new size
    starting with a keyframe, sequence numbers and RTP time continuous across the switch. A
    flash 0.5 s into each half; `extra["change_s"]` is when the new size starts."""
    a, frames_a = video_packets(
        codec, each_s, width=first[0], height=first[1], fps=fps, flashes=(0.5,)
    )
    b, frames_b = video_packets(
        codec, each_s, width=second[0], height=second[1], fps=fps, flashes=(0.5,),
        ssrc=_SSRCS[codec] + 1,
    )  # fmt: skip
    last = parse_rtp_header(a[-1])
    step = VIDEO_CLOCK // fps
    b = rewrite(b, seq_offset=(last.seq + 1) & 0xFFFF, ts_offset=last.ts + step, ssrc=_SSRCS[codec])
    frames = frames_of(codec, a + b, size=first)
    change = frames_a[-1].ts + step
    flash_ts = {f.ts for f in frames_a if f.flash} | {change + f.ts for f in frames_b if f.flash}
    frames = [
        SentFrame(f.ts, f.seqs, f.keyframe, first if f.ts < change else second, f.ts in flash_ts)
        for f in frames
    ]
    info, track = _record(
        root, codec, a + b, max_frame_dimension=max(first, second, key=lambda wh: wh[0] * wh[1])
    )
    return _truth(info, track, codec, fps, frames, change_s=change / VIDEO_CLOCK)


@dataclass(frozen=True)
class RejoinVideoTruth:
    """One participant's camera in two user sessions, `second_start_s` apart on the wall clock
    (capture start offsets: both captures see their first packet after the same network delay).
    `flashes_s` are relative to the first session's first frame."""

    recording: RecordingInfo
    sessions: tuple[VideoTruth, VideoTruth]
    second_start_s: float
    times_s: tuple[float, ...]
    flashes_s: tuple[float, ...]


def rejoin_video_call(
    root: Path,
    codec: str = "vp8",
    *,
    first_s: float = 3.0,
    pause_s: float = 2.0,
    second_s: float = 3.0,
    fps: int = 15,
) -> RejoinVideoTruth:
    """user_1 in session_1 with flashes at 0.5 and 1.5 s, leaves, and rejoins as session_2
    `pause_s` after session_1's last frame with a flash 1.0 s in (unrelated SSRC and RTP
    timestamp base)."""
    pa, fa = video_packets(codec, first_s, fps=fps, flashes=(0.5, 1.5))
    pb, fb = video_packets(
        codec, second_s, fps=fps, flashes=(1.0,), ssrc=_SSRCS[codec] ^ 0xFFFF,
        seq_offset=40_000, ts_offset=123_456_789,
    )  # fmt: skip
    second_start = first_s + pause_s
    specs = [
        SessionSpec(
            "user_1",
            sid,
            [TrackSpec("video", codec, packets=p, start_offset_s=off)],  # type: ignore[arg-type]
        )
        for sid, p, off in (("session_1", pa, 0.0), ("session_2", pb, second_start))
    ]
    info = build_recording(root, specs)
    t1 = _truth(info, info.sessions[0].tracks[0], codec, fps, fa)
    t2 = _truth(info, info.sessions[1].tracks[0], codec, fps, fb)
    times = t1.times_s + tuple(second_start + t for t in t2.times_s)
    flashes = t1.flashes_s + tuple(second_start + t for t in t2.flashes_s)
    return RejoinVideoTruth(info, (t1, t2), second_start, times, flashes)
