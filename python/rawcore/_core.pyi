"""Typed interface of the compiled core (`rawcore._core`).

Every function takes a whole capture as a read-only bytes-like object (`bytes`, an `mmap`
opened for reading, a `memoryview`) and releases the GIL while it works (Ctrl-C is honoured
when it returns). Writable buffers are copied first. Errors are `rawcore.errors` classes:
`CaptureError` (unreadable capture), `SdpError`, `TimelineError` (fits that cannot be made),
`InputError` (bad arguments or unsupported input), `OutputError` (files that cannot be written);
only an argument of the wrong type is a plain `TypeError`.
"""

import os
from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeAlias, final

import numpy as np
import numpy.typing as npt
from typing_extensions import Buffer

#: A capture and where it sits: `(buffer, offset_ms)` or `(buffer, offset_ms, drift_ppm)`, where
#: `drift_ppm` says how fast its media clock runs against the output clock (|drift| <= 10000).
_SegmentArg: TypeAlias = tuple[Buffer, int] | tuple[Buffer, int, float]

__all__ = [
    "AudioReport",
    "CaptureReport",
    "CaptureSplit",
    "ClockFit",
    "Compositor",
    "ExtMap",
    "FileHeader",
    "MediaDescription",
    "MixLimiter",
    "OffsetFit",
    "OpusMix",
    "RemuxReport",
    "RemuxTrack",
    "RtpMap",
    "Sdp",
    "SenderReport",
    "SplitStream",
    "StreamColumns",
    "StreamPlacement",
    "StreamStats",
    "VideoPictures",
    "VideoReport",
    "__version__",
    "analyze_capture",
    "analyze_capture_stream",
    "annexb_to_avcc",
    "capture_columns",
    "decode_pcm",
    "extract_audio",
    "extract_av",
    "extract_video",
    "fit_offset",
    "fit_sender_clock",
    "parse_sdp",
    "place_streams",
    "remux_mp4",
    "rgb_to_yuv",
    "scan_pictures",
    "slice_capture",
    "split_capture",
    "stream_columns",
    "video_frames",
    "voice_activity",
]

__version__: str

@final
class FileHeader:
    """The rtpdump file header: where the capture was recorded and when it started."""

    @property
    def address(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def start_unix_us(self) -> int:
        """Capture start (the header's timeval) in microseconds since the Unix epoch."""
    @property
    def source(self) -> int: ...
    @property
    def source_port(self) -> int: ...

@final
class StreamStats:
    """Statistics of one RTP stream (one SSRC) of a capture."""

    @property
    def ssrc(self) -> int: ...
    @property
    def payload_type(self) -> int: ...
    @property
    def clock_rate(self) -> int | None: ...
    @property
    def packets(self) -> int:
        """RTP packets seen for this SSRC, duplicates and padding-only ones included."""
    @property
    def bytes(self) -> int:
        """Payload bytes (padding excluded) of those packets."""
    @property
    def expected(self) -> int:
        """Packets the sequence number span says were sent."""
    @property
    def lost(self) -> int:
        """Packets never received, after RTX recovery."""
    @property
    def recovered_rtx(self) -> int: ...
    @property
    def duplicates(self) -> int: ...
    @property
    def reordered(self) -> int: ...
    @property
    def late(self) -> int:
        """Packets that arrived after the reorder window had moved past them."""
    @property
    def padding_only(self) -> int: ...
    @property
    def jitter(self) -> float:
        """RFC 3550 interarrival jitter in RTP timestamp units."""
    @property
    def jitter_ms(self) -> float | None: ...
    @property
    def first_arrival_ms(self) -> int:
        """Arrival offset from the capture start, in ms."""
    @property
    def last_arrival_ms(self) -> int: ...
    @property
    def first_seq(self) -> int:
        """Extended (unwrapped) sequence number; counting starts one cycle up (65536), so only
        differences are meaningful."""
    @property
    def last_seq(self) -> int: ...
    @property
    def first_rtp_ts(self) -> int:
        """Extended (unwrapped) RTP timestamp, counted from one cycle up (2**32)."""
    @property
    def last_rtp_ts(self) -> int: ...
    @property
    def first_rtp_ts_raw(self) -> int: ...
    @property
    def marker_count(self) -> int: ...
    @property
    def sender_reports(self) -> int: ...
    @property
    def is_rtx(self) -> bool: ...
    @property
    def rtp_duration_s(self) -> float | None: ...

@final
class SenderReport:
    """One RTCP Sender Report found in a capture."""

    @property
    def ssrc(self) -> int: ...
    @property
    def ntp(self) -> int: ...
    @property
    def ntp_unix_ms(self) -> float: ...
    @property
    def rtp_ts(self) -> int: ...
    @property
    def arrival_ms(self) -> int: ...
    @property
    def packet_count(self) -> int: ...
    @property
    def octet_count(self) -> int: ...

@final
class CaptureReport:
    """What one pass over a capture learned."""

    @property
    def header(self) -> FileHeader: ...
    @property
    def streams(self) -> list[StreamStats]: ...
    @property
    def sender_reports(self) -> list[SenderReport]: ...
    @property
    def primary_ssrc(self) -> int | None:
        """The SSRC of the capture's track, by the rule extraction uses too: media packets
        (padding-only ones and RTX payload types left out) counted per payload type and SSRC;
        the payload type with the most, then its SSRC with the most (ties: the lowest value).
        None without media packets."""
    @property
    def primary_opus_stereo(self) -> bool:
        """Some media packet of that stream has the stereo bit of an Opus TOC (bit 2 of the
        first payload byte): what `extract_audio` needs besides the SSRC to read a capture
        once (`opus_stereo`)."""
    @property
    def cnames(self) -> list[tuple[int, str]]: ...
    @property
    def bye_ssrcs(self) -> list[int]: ...
    @property
    def records(self) -> int: ...
    @property
    def rtp_records(self) -> int: ...
    @property
    def rtcp_records(self) -> int: ...
    @property
    def truncated_records(self) -> int: ...
    @property
    def invalid_records(self) -> int: ...
    @property
    def warnings(self) -> list[tuple[int, str]]:
        """(byte offset, message) pairs: problems that did not stop the pass."""

@final
class RtpMap:
    @property
    def payload_type(self) -> int: ...
    @property
    def encoding(self) -> str: ...
    @property
    def clock_rate(self) -> int: ...
    @property
    def channels(self) -> int | None: ...

@final
class ExtMap:
    @property
    def id(self) -> int: ...
    @property
    def direction(self) -> str | None: ...
    @property
    def uri(self) -> str: ...

@final
class MediaDescription:
    @property
    def kind(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def protocol(self) -> str: ...
    @property
    def formats(self) -> list[int]: ...
    @property
    def rtpmaps(self) -> list[RtpMap]: ...
    @property
    def fmtps(self) -> list[tuple[int, str]]: ...
    @property
    def rtx(self) -> list[tuple[int, int]]:
        """(RTX payload type, original payload type) pairs from `a=fmtp:<pt> apt=<n>`."""
    @property
    def extmaps(self) -> list[ExtMap]: ...
    @property
    def ssrcs(self) -> list[tuple[int, str]]: ...
    @property
    def direction(self) -> str | None: ...
    @property
    def mid(self) -> str | None: ...

@final
class Sdp:
    @property
    def media(self) -> list[MediaDescription]: ...

def analyze_capture(
    data: Buffer,
    *,
    rtx_apt: list[tuple[int, int]] | None = None,
    clock_rates: list[tuple[int, int]] | None = None,
    reorder_window: int = 512,
) -> CaptureReport:
    """Parse a whole rtpdump capture: per-SSRC stats, Sender Reports, CNAMEs, warnings.

    Raises `CaptureError` only when the file header is unusable; damaged records become
    warnings and counters.
    """

def analyze_capture_stream(
    data: Buffer,
    *,
    rtx_apt: list[tuple[int, int]] | None = None,
    clock_rates: list[tuple[int, int]] | None = None,
    reorder_window: int = 512,
) -> tuple[CaptureReport, StreamColumns]:
    """`analyze_capture`, and in the same pass the stream a track of the capture is, equal to
    `stream_columns` of it: the primary SSRC (else the first media stream's) with the payload
    type of its stream (else of the media stream with the most packets); without a media
    stream, the gaps of every packet. For a caller that builds the call timeline next, so the
    capture is read once for both."""

def capture_columns(data: Buffer) -> dict[str, npt.NDArray[np.generic]]:
    """Per-packet columns (arrival_ms, ssrc, payload_type, seq, ext_seq, timestamp, marker,
    payload_len) as NumPy arrays, one row per valid RTP record in file order."""

def slice_capture(data: Buffer, from_ms: int, to_ms: int) -> bytes:
    """The records that arrived `from_ms` <= t < `to_ms` ms after the capture start, as a
    capture of their own: the same header, those records byte for byte, arrival times kept."""

def parse_sdp(text: str) -> Sdp:
    """Parse an SDP document (rtpmap, fmtp, rtx apt, extmap, ssrc)."""

@final
class SplitStream:
    """One RTP stream (one SSRC from one source address) of a split capture."""

    @property
    def src(self) -> str:
        """Source address ("mjr" for a Janus recording)."""
    @property
    def src_port(self) -> int: ...
    @property
    def dst(self) -> str: ...
    @property
    def dst_port(self) -> int: ...
    @property
    def transport(self) -> Literal["udp", "tcp", "mjr"]:
        """ "tcp" is RTP framed by RFC 4571."""
    @property
    def ssrc(self) -> int: ...
    @property
    def payload_type(self) -> int:
        """Payload type of the stream's first RTP packet."""
    @property
    def rtp_packets(self) -> int: ...
    @property
    def rtcp_packets(self) -> int:
        """RTCP packets whose sender is this SSRC, kept in the capture beside its RTP."""
    @property
    def codec(self) -> str | None:
        """The codec the .mjr header names, or the one guessed from the payloads (by static
        payload type, the RTP clock measured against arrival times, and key-frame signatures);
        None when nothing is conclusive. Lower case, as an SDP rtpmap names it."""
    @property
    def clock_rate(self) -> int | None: ...
    @property
    def channels(self) -> int | None: ...
    @property
    def video(self) -> bool | None: ...
    @property
    def capture(self) -> bytes:
        """The stream as an rtpdump capture (RTP and its RTCP), starting at the capture's first
        packet, arrival times in milliseconds."""

@final
class CaptureSplit:
    """A pcap, pcapng or .mjr capture split into rtpdump streams."""

    @property
    def format(self) -> Literal["pcap", "pcapng", "mjr"]: ...
    @property
    def start_unix_us(self) -> int:
        """Time of the first packet, the start of every stream's capture."""
    @property
    def streams(self) -> list[SplitStream]: ...
    @property
    def skipped_not_rtp(self) -> int:
        """UDP payloads and TCP frames that were neither RTP nor RTCP (STUN, DTLS, ...)."""
    @property
    def skipped_frames(self) -> int:
        """Frames without UDP or TCP (other protocols, IP fragments, unknown link types)."""
    @property
    def warnings(self) -> list[tuple[int, str]]:
        """(byte offset, message): where reading stopped, damaged TCP byte streams."""
    @property
    def mjr_kind(self) -> str | None:
        """ "a" or "v" for a Janus recording."""
    @property
    def mjr_codec(self) -> str | None: ...
    @property
    def mjr_version(self) -> int | None:
        """0 (the first layout), 1 or 2."""
    @property
    def mjr_encrypted(self) -> bool: ...

def split_capture(data: Buffer) -> CaptureSplit:
    """Split a pcap, pcapng or Janus .mjr capture (told apart by their magic) into one rtpdump
    capture per RTP stream. Raises CaptureError for a file none of them can read, InputError
    for a Janus data-channel recording."""

@final
class AudioReport:
    """What one audio extraction did: packets, repairs and the output's timeline (ms floats)."""

    @property
    def payload_type(self) -> int: ...
    @property
    def sample_rate(self) -> int: ...
    @property
    def channels(self) -> int: ...
    @property
    def packets_in(self) -> int: ...
    @property
    def packets_written(self) -> int: ...
    @property
    def fill_frames(self) -> int: ...
    @property
    def fec_recovered(self) -> int:
        """Lost Opus frames rebuilt from the next packet's in-band FEC (their time still counts
        in `loss_filled_ms`)."""
    @property
    def dtx_gaps(self) -> int: ...
    @property
    def dtx_filled_ms(self) -> float: ...
    @property
    def loss_gaps(self) -> int: ...
    @property
    def loss_filled_ms(self) -> float: ...
    @property
    def pause_gaps(self) -> int: ...
    @property
    def pause_filled_ms(self) -> float: ...
    @property
    def closed_up_ms(self) -> float:
        """Time removed because its gaps were not to be filled."""
    @property
    def packets_lost(self) -> int: ...
    @property
    def duplicates(self) -> int: ...
    @property
    def late(self) -> int: ...
    @property
    def malformed(self) -> int: ...
    @property
    def padding_only(self) -> int: ...
    @property
    def overlap_dropped(self) -> int: ...
    @property
    def overlap_ms(self) -> float: ...
    @property
    def resets(self) -> int:
        """Sender timestamp resets re-anchored on arrival time."""
    @property
    def drift_corrected_ms(self) -> float:
        """Net time added (positive) or removed (negative) to follow the clock drift."""
    @property
    def drift_dropped(self) -> int:
        """Frames dropped to follow a fast sender clock where no hole came to absorb it."""
    @property
    def drift_steps(self) -> list[tuple[float, float]]:
        """Drift corrections made between frames (no hole to absorb them), at quiet spots:
        `(at_ms, step_ms)`, the output position of the frame they precede and the time added
        (concealment) or removed (a dropped frame). At most 4,096 are kept."""
    @property
    def drift_measured(self) -> int:
        """Frames decoded to find quiet spots for the drift corrections."""
    @property
    def rtcp_records(self) -> int: ...
    @property
    def other_records(self) -> int: ...
    @property
    def invalid_records(self) -> int: ...
    @property
    def first_pts_ms(self) -> float: ...
    @property
    def last_pts_ms(self) -> float: ...
    @property
    def duration_ms(self) -> float: ...
    @property
    def warnings(self) -> list[str]: ...

@final
class OpusMix:
    """A streaming mix of Opus tracks in the core: each track's packets made as `extract_audio`
    would write them (placement, gap and DTX fill, FEC rebuilds), pulled from the captures as
    the mix goes (the buffers are borrowed, not copied: pass an `mmap`, and memory does not
    grow with the call), decoded with libopus (the tracks of a block on parallel threads), summed
    at 48 kHz with its gain and passed through the look-ahead limiter (-1 dBFS ceiling). DTX
    fill after a silent frame plays as silence without decoding. PCM is made one block at a
    time.

    `tracks` holds per track `(segments, offset, gain, payload_type)`: the offset of its first
    sample in mix frames (negative: before the mix), a linear gain. `end` fixes the mix's
    length in frames (None: until the last track ends). Construction walks each track once for
    its report, with the GIL released. Raises CaptureError for unusable captures, InputError
    for bad arguments."""

    def __new__(
        cls,
        tracks: Sequence[tuple[Sequence[_SegmentArg], int, float, int | None]],
        *,
        channels: int = 1,
        end: int | None = None,
        fill_gaps: bool = True,
        fix_dtx: bool = True,
        reorder_window: int = 512,
        fec: bool = True,
    ) -> OpusMix: ...
    def next_block(self, frames: int = 48000) -> npt.NDArray[np.float32] | None:
        """The next block of about `frames` limited frames, shape (n, channels), with the GIL
        released; None when the mix is over."""
    @property
    def reports(self) -> list[AudioReport]:
        """Per track: what collecting its packets did."""
    @property
    def decoded(self) -> list[int]:
        """Per track: frames decoded so far."""
    @property
    def limited_ms(self) -> int:
        """Milliseconds played with the limiter's gain below 1."""
    @property
    def decode_errors(self) -> int:
        """Packets libopus rejected (concealed instead)."""
    @property
    def walked(self) -> list[list[int]]:
        """Per track, per segment: bytes of its capture read so far (the pages before that may
        be released: the mix does not need them again)."""
    @property
    def skipped_ms(self) -> int:
        """Milliseconds of DTX or pause fill played as silence without decoding (the track's
        output was already below -60 dBFS), summed over the tracks."""

@final
class MixLimiter:
    """The mix's look-ahead peak limiter (-1 dBFS ceiling, 5 ms look-ahead, 1 ms gain blocks,
    20 dB per 80 ms release) over (n, channels) float32 blocks. Output lags input by the
    look-ahead; `flush` returns the rest."""

    def __new__(cls, rate: int, channels: int) -> MixLimiter: ...
    def process(self, block: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Feed a block; returns the limited samples that are final so far."""
    def flush(self) -> npt.NDArray[np.float32]:
        """Everything still held back (silence is assumed to follow)."""
    @property
    def block(self) -> int:
        """Frames per gain block (1 ms)."""
    @property
    def limited_blocks(self) -> int:
        """Blocks played with a gain below 1."""
    @property
    def clipped_samples(self) -> int:
        """Samples clipped as a last resort against float rounding (expected 0)."""
    @property
    def ceiling(self) -> float:
        """The ceiling as a linear amplitude."""

def extract_audio(
    segments: Sequence[_SegmentArg],
    path: str | os.PathLike[str],
    *,
    codec: str = "opus",
    container: str = "matroska",
    payload_type: int | None = None,
    channels: int = 2,
    fill_gaps: bool = True,
    fix_dtx: bool = True,
    reorder_window: int = 512,
    fec: bool = True,
    ssrcs: Sequence[int | None] | None = None,
    opus_stereo: bool | None = None,
) -> AudioReport:
    """Write one Opus track to `path` (`container`: matroska, webm or ogg).

    `segments` are (capture, offset in ms on the output timeline) pairs. Every packet sits at
    its RTP timestamp; DTX (`fix_dtx`) and losses/pauses (`fill_gaps`) are filled with frames
    the decoder conceals. With `fec`, a lost frame whose successor carries in-band FEC (SILK or
    hybrid with LBRR) is rebuilt from it with libopus and written as a packet of the stream's
    own coding instead (`AudioReport.fec_recovered`); every received packet is written as it
    came. Raises `CaptureError` when no packet can be used, `OutputError` when the file cannot
    be written.

    The track is chosen per capture by the analysis' rule (`CaptureReport.primary_ssrc`), which
    costs a pass over each capture. A caller that already knows it passes `ssrcs` (one per
    segment, None to let the core choose) with `payload_type` and, for Opus, `opus_stereo`
    (whether a packet of those streams is coded stereo: `CaptureReport.primary_opus_stereo`):
    each capture is then read once, with the same output. A named SSRC without a packet of the
    payload type in its capture raises `CaptureError`.
    """

def decode_pcm(
    segments: Sequence[_SegmentArg],
    sink: Callable[[npt.NDArray[np.int16]], object],
    *,
    codec: str,
    payload_type: int | None = None,
    fill_gaps: bool = True,
    fix_dtx: bool = True,
    reorder_window: int = 512,
) -> AudioReport:
    """Decode a G.711 (`pcmu`, `pcma`) or G.722 track to 16-bit mono PCM on the same timeline,
    calling `sink` with one chunk at a time (gaps are zeros). An exception raised by `sink`
    stops the decode and propagates."""

def voice_activity(
    segments: Sequence[_SegmentArg],
    *,
    codec: str = "opus",
    payload_type: int | None = None,
    slot_ms: int = 20,
    fill_gaps: bool = True,
    fix_dtx: bool = True,
    reorder_window: int = 512,
) -> tuple[npt.NDArray[np.float32], AudioReport]:
    """The RMS level (dBFS, full scale 1.0; -120 for digital silence) of every `slot_ms` of a
    track, on the timeline `extract_audio` writes from the same segments: slot k covers output
    time [k * slot_ms, (k + 1) * slot_ms). Opus is decoded with libopus at 8 kHz mono, G.711
    and G.722 by the core; holes count as silence. One call per track, GIL released."""

@final
class VideoReport:
    """What one video assembly did: frames, losses, keyframe waits, sizes and gaps."""

    @property
    def payload_type(self) -> int: ...
    @property
    def packets_in(self) -> int: ...
    @property
    def frames_emitted(self) -> int: ...
    @property
    def keyframes_emitted(self) -> int: ...
    @property
    def frames_undecodable(self) -> int:
        """Complete frames dropped because a reference was lost (waiting for a keyframe)."""
    @property
    def frames_concealed(self) -> int:
        """Complete frames written although a reference was lost (`on_loss="conceal"`)."""
    @property
    def frames_incomplete(self) -> int: ...
    @property
    def frames_malformed(self) -> int: ...
    @property
    def keyframe_waits(self) -> int: ...
    @property
    def keyframe_wait_ms(self) -> float: ...
    @property
    def packets_lost(self) -> int: ...
    @property
    def duplicates(self) -> int: ...
    @property
    def late(self) -> int: ...
    @property
    def refused_packetizations(self) -> int:
        """H.264 FU-B/STAP-B/MTAP packets, which rawcore refuses."""
    @property
    def padding_only(self) -> int: ...
    @property
    def truncated(self) -> int: ...
    @property
    def resolution_changes(self) -> list[tuple[int, int, int]]:
        """(pts at 90 kHz, width, height) at each keyframe that changed the size."""
    @property
    def rotation_changes(self) -> list[tuple[int, int, bool]]:
        """(pts at 90 kHz, degrees clockwise, flipped) from the video-orientation extension."""
    @property
    def config_changes(self) -> int: ...
    @property
    def gaps(self) -> list[tuple[int, int, int, int]]:
        """(start, end at 90 kHz, width, height) of stretches longer than 3 frame intervals."""
    @property
    def first_pts_90k(self) -> int | None: ...
    @property
    def last_pts_90k(self) -> int | None: ...
    @property
    def max_size(self) -> tuple[int, int] | None: ...
    @property
    def warnings(self) -> list[str]: ...
    @property
    def fills(self) -> list[tuple[int, int, int, int]]:
        """(start, end at 90 kHz, width, height) of the gaps to fill with black pictures."""
    @property
    def unfilled_ms(self) -> int:
        """Milliseconds of pauses and keyframe waits left without black (each rounded down)."""
    @property
    def stretches(self) -> list[tuple[int, int, str, bool]]:
        """(start, end at 90 kHz, kind, filled with black) of every stretch longer than 3 frame
        intervals without a new picture. Kinds: `freeze` (the last picture held after a loss),
        `keyframe_wait` (pictures lost, black or nothing shown until the next keyframe),
        `no_picture` (nothing was sent: black where filled, else the last picture held)."""
    @property
    def end_pts_90k(self) -> int:
        """Where the output ends (90 kHz): one frame interval after the last picture that
        arrived, written or not; the last frame lasts until then."""

def video_frames(
    segments: Sequence[_SegmentArg],
    *,
    codec: str,
    payload_type: int | None = None,
    cvo_extension_id: int | None = None,
    reorder_window: int = 128,
    fill_gaps: bool = True,
    on_loss: str = "freeze",
    ssrcs: Sequence[int | None] | None = None,
) -> tuple[dict[str, npt.NDArray[Any]], VideoReport]:
    """The frames `extract_video` would write, as NumPy columns on the output timeline:
    pts_90k (uint64), keyframe (bool), width and height in force (uint32), bytes (uint32).

    The report also plans what the output shows where no new picture comes (`stretches`,
    `fills`, `unfilled_ms`, `end_pts_90k`), from every picture that arrived, written or not: a
    gap is longer than 3 frame intervals (the median positive step between frames, 1/30 s
    without one), measured from the frame before it plus one interval, the time before the
    first frame and after the last one (to `end_pts_90k`) included. Where pictures arrived but
    were lost, `on_loss` decides: `freeze` holds the last picture, `black` fills black,
    `conceal` writes complete inter frames after a loss anyway and holds through the rest.
    Where nothing was sent, black fills (before the first picture too). Black needs a keyframe
    after it (or the end) and a known size; `fill_gaps` false fills nothing."""

def annexb_to_avcc(data: bytes) -> bytes:
    """H.264 in Annex B framing (start codes, as encoders write it) to the 4-byte length
    prefixes a Matroska track stores (and `extract_video`'s `fill` frames carry)."""

def extract_video(
    segments: Sequence[_SegmentArg],
    path: str | os.PathLike[str],
    *,
    codec: str,
    container: str = "auto",
    payload_type: int | None = None,
    cvo_extension_id: int | None = None,
    fill: Sequence[tuple[int, bytes, bool]] = ...,
    reorder_window: int = 128,
    fill_gaps: bool = True,
    on_loss: str = "freeze",
    ssrcs: Sequence[int | None] | None = None,
) -> VideoReport:
    """Write one video track (`codec`: vp8, vp9, h264, av1) to `path`, remuxed: complete frames
    from the first keyframe on, at their exact RTP times plus segment offsets. `container`:
    auto (WebM for VP8/VP9/AV1, Matroska for H.264), matroska or webm. `fill` frames
    ((pts at 90 kHz, data, keyframe), sorted) are merged in by time. The last frame lasts to
    `end_pts_90k` (a BlockGroup with a BlockDuration), as does the file; the report carries the
    same plan as `video_frames` with these `fill_gaps` and `on_loss`. `ssrcs` (with
    `payload_type`; also in `video_frames`): each segment's SSRC as the analysis chose it
    (`CaptureReport.primary_ssrc`; None lets the core choose, a pass over that capture), as in
    `extract_audio`."""

def extract_av(
    video_segments: Sequence[_SegmentArg],
    audio_segments: Sequence[_SegmentArg],
    path: str | os.PathLike[str],
    *,
    video_codec: str,
    audio_offset_ms: float,
    video_payload_type: int | None = None,
    audio_payload_type: int | None = None,
    cvo_extension_id: int | None = None,
    fill: Sequence[tuple[int, bytes, bool]] = ...,
    fill_gaps: bool = True,
    fix_dtx: bool = True,
    reorder_window: int = 128,
    on_loss: str = "freeze",
    fec: bool = True,
) -> tuple[VideoReport, AudioReport]:
    """Video and Opus audio of one participant in one Matroska file, interleaved by time.
    `audio_offset_ms` is the audio's t=0 minus the video's t=0 on the call timeline; the
    earlier stream starts at 0. The audio is written as `extract_audio` writes it (`fec` the
    same)."""

@final
class ClockFit:
    """A stream's sender clock fitted to its Sender Reports: `a + b * (rtp - rtp0)` ms."""

    @property
    def rtp0(self) -> int: ...
    @property
    def a(self) -> float: ...
    @property
    def b(self) -> float: ...
    @property
    def nominal_b(self) -> float: ...
    @property
    def points(self) -> int: ...
    @property
    def rejected(self) -> int: ...
    @property
    def max_residual_ms(self) -> float: ...
    @property
    def slope_ppm(self) -> float: ...
    @property
    def clamped(self) -> bool: ...
    def sender_ms(self, rtp: int) -> float: ...
    def sender_ms_array(self, rtp: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]: ...

@final
class OffsetFit:
    """Recorder minus sender clock over time: `c + d * (sender_ms - t0)`."""

    @property
    def c(self) -> float: ...
    @property
    def d(self) -> float: ...
    @property
    def t0(self) -> float: ...
    @property
    def windows(self) -> int: ...
    @property
    def rejected(self) -> int: ...
    @property
    def residual_ms(self) -> float: ...
    @property
    def drift_ppm(self) -> float: ...
    @property
    def clamped(self) -> bool: ...
    def offset_ms(self, sender_ms: float) -> float: ...
    def recorder_ms(self, sender_ms: float) -> float: ...

def fit_sender_clock(
    rtp: npt.NDArray[np.int64], sender_ms: npt.NDArray[np.float64], clock_rate: int
) -> ClockFit:
    """Robust line fit of Sender Reports (extended RTP, sender Unix ms); `TimelineError` when
    there is nothing to fit."""

def fit_offset(
    sender_ms: npt.NDArray[np.float64], arrival_ms: npt.NDArray[np.float64], window_ms: float
) -> OffsetFit:
    """The lower envelope of `arrival_ms - sender_ms` (window minima, robust line);
    `TimelineError` when there is nothing to fit."""

@final
class StreamPlacement:
    """Where one stream (a segment's media SSRC) sits on the recorder's clock (Unix ms), and
    what the fits found."""

    @property
    def basis(self) -> Literal["sender_reports", "arrival"]:
        """Placed by the stream's Sender Reports and its sender's envelope, or by its own
        arrival times (no Sender Reports, or reports that cannot be fitted)."""
    @property
    def start_unix_ms(self) -> float:
        """Recorder time of the stream's first RTP timestamp (the earliest of the first 64):
        an output's t=0."""
    @property
    def first_arrival_unix_ms(self) -> float:
        """Arrival of the first packet, for comparison."""
    @property
    def clock_rate(self) -> int: ...
    @property
    def sender_reports(self) -> int:
        """Sender Reports fitted, outliers included (0 when placed by arrival)."""
    @property
    def sr_rejected(self) -> int: ...
    @property
    def sr_residual_ms(self) -> float: ...
    @property
    def slope_ppm(self) -> float:
        """The sender clock's deviation from nominal as fitted."""
    @property
    def offset_ms(self) -> float | None:
        """Recorder minus sender clock at the stream's start; None when placed by arrival."""
    @property
    def drift_ppm(self) -> float:
        """Drift of the envelope the stream was placed with, as fitted."""
    @property
    def envelope_residual_ms(self) -> float: ...
    @property
    def clock_ppm(self) -> float:
        """How fast the stream's media clock runs against the recorder's, in ppm, as outputs
        apply it (the fits' clamped values; the envelope's drift only once it rests on
        `min_drift_windows` windows), rounded to 0.01 ppm."""
    @property
    def warning(self) -> str | None:
        """Why the stream's Sender Reports could not be fitted, when it has some but is placed
        by arrival; None otherwise."""

@final
class StreamColumns:
    """What the call timeline and the gap policy read of one capture (`stream_columns`): the
    media stream's RTP timestamps and arrivals (kept in Rust, handed to `place_streams`
    without a copy) and its SSRC's arrival gaps."""

    @property
    def packets(self) -> int:
        """Packets of the stream (its SSRC and payload type)."""
    @property
    def gaps(self) -> list[tuple[float, float, float]]:
        """Stretches with no packet of the SSRC for longer than 100 ms or 3 packet intervals
        (the median spacing), by start time, as `(start_unix_ms, end_unix_ms, cause)` rows:
        cause 0.0 is a silence (the sequence numbers run on across it: nothing was sent), 1.0 a
        loss (a jump in the sequence numbers, found in sequence order, so one lost packet inside
        continuous media counts as well as a burst)."""

def stream_columns(
    data: Buffer,
    *,
    ssrc: int | None,
    payload_type: int | None,
    start_unix_ms: float,
) -> StreamColumns:
    """Read, in one pass, the stream `ssrc` with payload type `payload_type` (any when None) of
    a capture that started at `start_unix_ms` (its header's time), and the arrival gaps of that
    SSRC (of every packet when `ssrc` is None; the stream is then empty)."""

def place_streams(
    streams: Sequence[tuple[StreamColumns, Sequence[float], Sequence[int], Sequence[float], int]],
    *,
    window_ms: float = 10000.0,
    min_drift_windows: int = 6,
) -> list[StreamPlacement]:
    """Place the streams of one sender clock (all streams of one CNAME), in the order given.

    Each stream is `(columns, sr_arrival_unix_ms, sr_rtp_ts, sr_ntp_unix_ms, clock_rate)`: its
    RTP timestamps as sent and each packet's arrival (`stream_columns`), then each of its Sender
    Reports' arrival, RTP timestamp (32-bit values) and NTP time. Timestamps are unwrapped step
    by step, each report's timestamp is extended next to the packet that arrived with it, every
    stream with reports gets a sender clock fit, and one envelope (`window_ms` windows) over all
    of them gives the offset to the recorder. A stream without reports, or whose reports cannot
    be fitted, is placed by its own arrival times. Raises `TimelineError` when an envelope
    cannot be fitted (no packets, non-finite times)."""

#: The three planes of an I420 picture (Y, U, V) as 1-D uint8 arrays, e.g. NumPy views of a
#: decoded frame's planes (`np.frombuffer(frame.planes[i], np.uint8)`), borrowed without a copy.
_Planes: TypeAlias = tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8], npt.NDArray[np.uint8]]

@final
class Compositor:
    """One I420 canvas of a composition (even sides, at most 7680 and 7680x4320 pixels).

    It keeps what it computes per (picture size, box, shape): the bilinear scale tables and the
    anti-aliased coverage masks of luma and chroma, so each frame costs only scaling and
    blending. Raises `InputError` for a canvas, box, shape or picture it cannot take.
    """

    def __new__(cls, width: int, height: int) -> Compositor: ...
    @property
    def width(self) -> int: ...
    @property
    def height(self) -> int: ...
    def fill(self, y: int, u: int, v: int) -> None:
        """Paint the whole canvas one Y'CbCr colour."""
    def draw(
        self,
        planes: _Planes,
        strides: tuple[int, int, int],
        width: int,
        height: int,
        box: tuple[float, float, float, float],
        shape: Literal["rect", "rounded", "circle"] = "rect",
        radius: float = 0.0,
        picture_id: int | None = None,
    ) -> None:
        """Draw a `width x height` I420 picture (chroma `ceil(w/2) x ceil(h/2)`, rows `strides`
        bytes apart) into `box` (x, y, w, h in canvas fractions, edges rounded to whole
        pixels): scaled to cover the box keeping its aspect, centred, clipped to `shape` with
        anti-aliased edges (`rounded`: corners of `radius`, a fraction of the canvas's shorter
        side; `circle`: the largest circle centred in the box), over what is drawn already.
        `picture_id` names the picture's content: the same picture drawn into the same box
        under the same id again (a held frame, a tile) is blended from the pixels scaled
        before, not scaled again; None scales every time."""
    def frame(self) -> npt.NDArray[np.uint8]:
        """A copy of the canvas: a `(height * 3 // 2, width)` array, Y then U then V (what
        `av.VideoFrame.from_ndarray(..., format="yuv420p")` takes)."""
    def frame_into(
        self,
        planes: tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8], npt.NDArray[np.uint8]],
        strides: tuple[int, int, int],
    ) -> None:
        """Copy the canvas into three writable 1-D I420 planes (an `av.VideoFrame`'s own
        buffers, as `np.frombuffer` views) whose rows are `strides` bytes apart, with the GIL
        released; `InputError` when a plane is too short for the canvas."""

def rgb_to_yuv(r: int, g: int, b: int) -> tuple[int, int, int]:
    """BT.601 limited-range Y'CbCr of an RGB colour (what decoders assume for untagged video)."""

@final
class RemuxTrack:
    """One track of a remuxed MP4."""

    @property
    def number(self) -> int:
        """The Matroska track number."""
    @property
    def kind(self) -> Literal["video", "audio"]: ...
    @property
    def codec(self) -> Literal["vp9", "av1", "h264", "opus"]: ...
    @property
    def frames(self) -> int: ...
    @property
    def start_s(self) -> float:
        """The first frame's time (s)."""
    @property
    def end_s(self) -> float:
        """The last frame's end (s)."""
    @property
    def width(self) -> int: ...
    @property
    def height(self) -> int: ...

@final
class RemuxReport:
    """What `remux_mp4` did."""

    @property
    def written(self) -> bool:
        """False when the MP4 was not written (see `reordered`)."""
    @property
    def reordered(self) -> str | None:
        """Why not: timestamps that go backwards within a track (frames stored in decode
        order), which need composition offsets the core does not write."""
    @property
    def bytes(self) -> int: ...
    @property
    def tracks(self) -> list[RemuxTrack]: ...
    @property
    def truncated_at(self) -> int | None:
        """Where the input was cut short (the frames before it are kept), if it was."""

def remux_mp4(
    source: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    video: bool = True,
    audio: bool = True,
) -> RemuxReport:
    """Remux the first video and (or) audio track of the Matroska/WebM file `source` into the
    fast-start MP4 `output` (VP9, AV1, H.264, Opus; packets and timestamps as they are, an edit
    list for a track that does not start at 0; H.264 stored in decode order, with B-frames,
    gets decode times and composition offsets). Two passes over the file: sample tables first,
    then `moov` and the payloads. Raises `InputError` for a file that is not Matroska, is
    malformed, or has a codec MP4 players do not take; `OutputError` when `output` cannot be
    written."""

@final
class VideoPictures:
    """The first video track of a Matroska/WebM file as its headers describe it."""

    @property
    def codec(self) -> Literal["vp8", "vp9", "h264"]: ...
    @property
    def times_s(self) -> list[float]:
        """Every non-empty frame's time (s), in file order (as FFmpeg's `pts * time_base`)."""
    @property
    def width(self) -> int:
        """The largest picture (by area) a decoder outputs; 0 when no header gave a size."""
    @property
    def height(self) -> int: ...
    @property
    def sizes(self) -> list[tuple[float, int, int]]:
        """`(time_s, width, height)` at the first sized picture and at every size change."""

def scan_pictures(source: str | os.PathLike[str]) -> VideoPictures | None:
    """Picture times and decoded sizes of the first video track of the Matroska/WebM file
    `source`, read from the container and frame headers without decoding (VP8 keyframe size,
    VP9 coded frame size, not `render_size`; H.264 SPS size with cropping), with the GIL
    released. None when the file has no video track or its codec has no header reader here
    (AV1): decode to find them. Raises `InputError` for a file that is not Matroska or is
    malformed."""
