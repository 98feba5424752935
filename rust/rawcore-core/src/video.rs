//! Complete, decodable video frames out of the RTP packets of one track.
//!
//! [`VideoAssembler`] is a pure state machine fed with the RTP packets of one video track in
//! arrival order. It restores sequence order ([`ReorderBuffer`]), extends timestamps
//! ([`TsUnwrapper`]), groups packets into pictures by RTP timestamp and hands each picture to the
//! codec's [`VideoDepacketizer`] only when it is provably complete: its first packet is there
//! (the codec's start bit, and no loss right before it unless the start bit proves the picture
//! begins there), its last packet is there (marker bit, or the next packet follows without a gap
//! with a new timestamp) and no sequence number inside it is missing. Output starts at the first
//! keyframe; after a loss inter frames are skipped until the next keyframe, unless the codec's
//! reference information proves a frame decodable (VP8 temporal layers with `TL0PICIDX`, VP9
//! flexible mode with `P_DIFF`). [`assemble_video`] runs a whole rtpdump capture through it.

#[cfg(test)]
pub(crate) mod tests;

use crate::depacketize::av1::Av1Depacketizer;
use crate::depacketize::h264::{H264Depacketizer, NalFormat};
use crate::depacketize::vp8::Vp8Depacketizer;
use crate::depacketize::vp9::{SpatialLayerPolicy, Vp9Depacketizer};
use crate::depacketize::{
    FrameMeta, PacketInfo, RefInfo, VideoDepacketizeError, VideoDepacketizer,
};
use crate::mux::MuxError;
use crate::reorder::{Popped, PushOutcome, ReorderBuffer};
use crate::rtp::{looks_like_rtcp, RtpPacket};
use crate::rtpdump::{RtpdumpError, RtpdumpReader};
use crate::seq::{SeqUnwrapper, TsUnwrapper};
use crate::track::{choose_track, count_sources, Source};

/// Warnings kept in a report; later ones are only counted.
pub const MAX_WARNINGS: usize = 32;
/// RTP clock of every video payload format.
pub const VIDEO_CLOCK: u64 = 90_000;
/// Deltas between frames remembered to estimate the frame interval.
const INTERVAL_HISTORY: usize = 15;
/// A pause longer than this many frame intervals is a gap.
pub const GAP_INTERVALS: u64 = 3;

/// The video codec of a track.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VideoCodec {
    /// VP8 (RFC 7741).
    #[default]
    Vp8,
    /// VP9 (RFC 9628).
    Vp9,
    /// H.264 (RFC 6184).
    H264,
    /// AV1 (AOM RTP payload format).
    Av1,
}

/// One of the codec depacketizers, dispatched without boxing.
#[derive(Debug, Clone)]
pub enum AnyDepacketizer {
    /// VP8.
    Vp8(Vp8Depacketizer),
    /// VP9.
    Vp9(Vp9Depacketizer),
    /// H.264.
    H264(H264Depacketizer),
    /// AV1.
    Av1(Av1Depacketizer),
}

impl AnyDepacketizer {
    /// The depacketizer for `cfg.codec`.
    #[must_use]
    pub fn new(cfg: &VideoExtractConfig) -> Self {
        match cfg.codec {
            VideoCodec::Vp8 => Self::Vp8(Vp8Depacketizer),
            VideoCodec::Vp9 => Self::Vp9(Vp9Depacketizer::new(cfg.vp9_layers)),
            VideoCodec::H264 => Self::H264(H264Depacketizer::new(cfg.h264_format)),
            VideoCodec::Av1 => Self::Av1(Av1Depacketizer::new()),
        }
    }
}

impl VideoDepacketizer for AnyDepacketizer {
    fn inspect(&self, payload: &[u8]) -> Result<PacketInfo, VideoDepacketizeError> {
        match self {
            Self::Vp8(d) => d.inspect(payload),
            Self::Vp9(d) => d.inspect(payload),
            Self::H264(d) => d.inspect(payload),
            Self::Av1(d) => d.inspect(payload),
        }
    }

    fn assemble(
        &mut self,
        packets: &[(PacketInfo, &[u8])],
        out: &mut Vec<u8>,
    ) -> Result<FrameMeta, VideoDepacketizeError> {
        match self {
            Self::Vp8(d) => d.assemble(packets, out),
            Self::Vp9(d) => d.assemble(packets, out),
            Self::H264(d) => d.assemble(packets, out),
            Self::Av1(d) => d.assemble(packets, out),
        }
    }
}

/// What to assemble and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoExtractConfig {
    /// The codec of the track.
    pub codec: VideoCodec,
    /// The video payload type; `None` takes the dominant one.
    pub payload_type: Option<u8>,
    /// The extmap id of `urn:3gpp:video-orientation`, if negotiated.
    pub cvo_extension_id: Option<u8>,
    /// Packets the reorder buffer waits for a missing one.
    pub reorder_window: usize,
    /// Which VP9 spatial layers to keep.
    pub vp9_layers: SpatialLayerPolicy,
    /// How H.264 NAL units are delimited (AVCC for Matroska).
    pub h264_format: NalFormat,
}

impl Default for VideoExtractConfig {
    fn default() -> Self {
        Self {
            codec: VideoCodec::Vp8,
            payload_type: None,
            cvo_extension_id: None,
            reorder_window: 128,
            vp9_layers: SpatialLayerPolicy::All,
            h264_format: NalFormat::Avcc,
        }
    }
}

/// The orientation a CVO header extension (3GPP TS 26.114) asks the player to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rotation {
    /// Clockwise rotation: 0, 90, 180 or 270.
    pub degrees: u16,
    /// `F`: flip horizontally (after rotating back).
    pub flip: bool,
    /// `C`: back-facing camera.
    pub back_camera: bool,
}

impl Rotation {
    /// Reads the CVO byte `0 0 0 0 C F R1 R0`.
    #[must_use]
    pub fn from_cvo(byte: u8) -> Self {
        Self {
            degrees: u16::from(byte & 3) * 90,
            flip: byte & 0x04 != 0,
            back_camera: byte & 0x08 != 0,
        }
    }
}

/// A complete, decodable frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoFrame<'a> {
    /// Extended RTP timestamp minus the track's first, at 90 kHz.
    pub pts_90k: u64,
    /// Decoding can start here.
    pub keyframe: bool,
    /// The coded frame (VP9 superframe, H.264 access unit, AV1 temporal unit).
    pub data: &'a [u8],
    /// Picture size, when this keyframe states it.
    pub size: Option<(u32, u32)>,
    /// A [`VideoEvent::Config`] with a new decoder configuration came right before.
    pub config_changed: bool,
}

/// What the assembler hands to its sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoEvent<'a> {
    /// A frame to write.
    Frame(&'a VideoFrame<'a>),
    /// The decoder configuration record (`avcC` or `av1C`) changed before the frame at `pts_90k`.
    Config {
        /// Where the new configuration starts.
        pts_90k: u64,
        /// The record.
        codec_private: &'a [u8],
    },
    /// The CVO orientation changed at `pts_90k`.
    Rotation {
        /// Where the new orientation starts.
        pts_90k: u64,
        /// The orientation.
        rotation: Rotation,
    },
}

/// A stretch without frames, for the caller to fill with black frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoGap {
    /// First missing instant (the previous frame's time plus one frame interval), 90 kHz.
    pub start_pts_90k: u64,
    /// Time of the next frame, 90 kHz.
    pub end_pts_90k: u64,
    /// Picture width at the time.
    pub width: u32,
    /// Picture height at the time.
    pub height: u32,
}

/// What an assembly did.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VideoReport {
    /// The payload type assembled.
    pub payload_type: u8,
    /// The SSRC assembled, per segment.
    pub ssrcs: Vec<Option<u32>>,
    /// Packets of the track offered to the assembler.
    pub packets_in: u64,
    /// Frames handed to the sink.
    pub frames_emitted: u64,
    /// Keyframes among them.
    pub keyframes_emitted: u64,
    /// Complete frames dropped because a frame they reference is missing.
    pub frames_undecodable: u64,
    /// Pictures dropped because packets of them are missing.
    pub frames_incomplete: u64,
    /// Complete pictures dropped because their payloads are malformed.
    pub frames_malformed: u64,
    /// Times output waited for a keyframe (at the start or after a loss).
    pub keyframe_waits: u64,
    /// Total time spent waiting, in ms of RTP time.
    pub keyframe_wait_ms: f64,
    /// Sequence numbers never received.
    pub packets_lost: u64,
    /// Packets received twice.
    pub duplicates: u64,
    /// Packets that arrived after their place was passed.
    pub late: u64,
    /// Packets using a packetization rawcore refuses (H.264 interleaved modes).
    pub refused_packetizations: u64,
    /// Packets of the track without payload.
    pub padding_only: u64,
    /// Packets of the track cut by the capture's snap length.
    pub truncated: u64,
    /// RTCP records skipped.
    pub rtcp_records: u64,
    /// RTP records of other payload types (RTX, FEC, audio) or SSRCs skipped.
    pub other_records: u64,
    /// Records that are neither RTP nor RTCP.
    pub invalid_records: u64,
    /// Picture size changes: `(pts_90k, width, height)`, the first size included.
    pub resolution_changes: Vec<(u64, u32, u32)>,
    /// Orientation changes: `(pts_90k, rotation)`.
    pub rotation_changes: Vec<(u64, Rotation)>,
    /// Decoder configuration records announced.
    pub config_changes: u64,
    /// Stretches longer than three frame intervals without frames, and the stretch before the
    /// first frame when the track did not start with one.
    pub gaps: Vec<VideoGap>,
    /// The black fills planned for the output's gaps ([`FillPlan`]): set by
    /// [`crate::video_frames`], empty in the reports of the extractions that write a file.
    pub fill_plan: FillPlan,
    /// The first and last emitted frame times.
    pub first_pts_90k: Option<u64>,
    /// The last emitted frame time.
    pub last_pts_90k: Option<u64>,
    /// The largest picture seen.
    pub max_size: Option<(u32, u32)>,
    /// What looked wrong, bounded by [`MAX_WARNINGS`].
    pub warnings: Vec<String>,
    /// Warnings beyond the bound.
    pub warnings_dropped: u64,
}

impl VideoReport {
    fn warn(&mut self, message: impl FnOnce() -> String) {
        if self.warnings.len() < MAX_WARNINGS {
            self.warnings.push(message());
        } else {
            self.warnings_dropped += 1;
        }
    }

    fn note_size(&mut self, size: (u32, u32)) {
        self.max_size = Some(match self.max_size {
            Some((w, h)) => (w.max(size.0), h.max(size.1)),
            None => size,
        });
    }

    /// Adds the counters of `other` (a later segment) to this report.
    pub fn merge(&mut self, other: VideoReport) {
        self.ssrcs.extend(other.ssrcs);
        self.packets_in += other.packets_in;
        self.frames_emitted += other.frames_emitted;
        self.keyframes_emitted += other.keyframes_emitted;
        self.frames_undecodable += other.frames_undecodable;
        self.frames_incomplete += other.frames_incomplete;
        self.frames_malformed += other.frames_malformed;
        self.keyframe_waits += other.keyframe_waits;
        self.keyframe_wait_ms += other.keyframe_wait_ms;
        self.packets_lost += other.packets_lost;
        self.duplicates += other.duplicates;
        self.late += other.late;
        self.refused_packetizations += other.refused_packetizations;
        self.padding_only += other.padding_only;
        self.truncated += other.truncated;
        self.rtcp_records += other.rtcp_records;
        self.other_records += other.other_records;
        self.invalid_records += other.invalid_records;
        self.resolution_changes.extend(other.resolution_changes);
        self.rotation_changes.extend(other.rotation_changes);
        self.config_changes += other.config_changes;
        self.gaps.extend(other.gaps);
        self.first_pts_90k = self.first_pts_90k.or(other.first_pts_90k);
        self.last_pts_90k = other.last_pts_90k.or(self.last_pts_90k);
        if let Some(size) = other.max_size {
            self.note_size(size);
        }
        for w in other.warnings {
            self.warn(|| w);
        }
        self.warnings_dropped += other.warnings_dropped;
    }
}

/// Why an assembly or extraction failed.
#[derive(thiserror::Error, Debug)]
pub enum VideoError {
    /// A capture's header is unusable.
    #[error("segment {segment}: {source}")]
    Capture {
        /// Index of the segment.
        segment: usize,
        /// The rtpdump error.
        source: RtpdumpError,
    },
    /// No packets of the payload type.
    #[error("no RTP packets of payload type {}", .payload_type.map_or_else(|| "any".to_owned(), |p| p.to_string()))]
    NoPackets {
        /// The payload type looked for (`None`: any).
        payload_type: Option<u8>,
    },
    /// Packets were there but no frame could be decoded (no keyframe arrived).
    #[error("no decodable frame: {frames_incomplete} incomplete, {frames_undecodable} waiting for a keyframe")]
    NoFrames {
        /// Pictures missing packets.
        frames_incomplete: u64,
        /// Complete pictures that could not be decoded.
        frames_undecodable: u64,
    },
    /// A segment offset lies before the output start.
    #[error("segment {segment}: offset {offset_ms} ms is before the output start")]
    NegativeOffset {
        /// Index of the segment.
        segment: usize,
        /// The offset given.
        offset_ms: i64,
    },
    /// The output could not be written.
    #[error(transparent)]
    Mux(#[from] MuxError),
    /// The sink stopped the assembly.
    #[error("stopped by the caller: {reason}")]
    Stopped {
        /// Why.
        reason: String,
    },
}

/// Whether frames can be decoded right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DecodeState {
    /// Only a keyframe can be decoded; `since` is when the first frame was dropped.
    WaitKey { since: Option<u64> },
    /// Every frame since the last keyframe was emitted.
    Intact,
    /// Something was lost since the last keyframe; reference information decides.
    Damaged,
}

/// The verdict on a frame after a loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Decodable,
    /// Undecodable, but later frames may be (an upper layer or a lost reference).
    Skip,
    /// Undecodable and nothing but a keyframe helps.
    NeedKeyframe,
}

/// No VP8 temporal layer is damaged (TID is 2 bits).
const NO_DAMAGED_TID: u8 = 4;

/// What was emitted, to judge references after a loss.
#[derive(Debug, Clone)]
struct RefTracker {
    /// `TL0PICIDX` of the last emitted VP8 base layer frame.
    last_tl0: Option<u8>,
    /// The lowest VP8 temporal layer that may reference a lost frame.
    damaged_from_tid: u8,
    /// VP9 flexible mode: emitted `PictureIDs` and their top spatial layer + 1, by `PictureID` % 256.
    vp9_emitted: Box<[(u16, u8); 256]>,
}

impl Default for RefTracker {
    fn default() -> Self {
        Self {
            last_tl0: None,
            damaged_from_tid: NO_DAMAGED_TID,
            vp9_emitted: Box::new([(0, 0); 256]),
        }
    }
}

impl RefTracker {
    fn on_loss(&mut self) {
        // TL0PICIDX continuity shows whether the base layer survived; upper layers cannot tell.
        self.damaged_from_tid = 1;
    }

    fn on_keyframe(&mut self) {
        self.damaged_from_tid = NO_DAMAGED_TID;
    }

    fn verdict(&self, refs: &RefInfo) -> Verdict {
        match *refs {
            RefInfo::Unknown => Verdict::NeedKeyframe,
            RefInfo::Vp8 {
                tid,
                layer_sync,
                tl0picidx,
            } => {
                let base_intact = if tid == 0 {
                    self.last_tl0 == Some(tl0picidx.wrapping_sub(1))
                } else {
                    self.last_tl0 == Some(tl0picidx)
                };
                if !base_intact {
                    Verdict::NeedKeyframe
                } else if tid == 0 || tid < self.damaged_from_tid || layer_sync {
                    Verdict::Decodable
                } else {
                    Verdict::Skip
                }
            }
            RefInfo::Vp9Flexible {
                picture_id,
                picture_id_bits,
                layers,
                layer_count,
            } => {
                let modulo = if picture_id_bits == 15 {
                    1u16 << 15
                } else {
                    1 << 7
                };
                let all_there = layers
                    .iter()
                    .take(usize::from(layer_count))
                    .filter(|l| l.inter_picture)
                    .all(|l| {
                        l.p_diff_count > 0
                            && l.p_diffs
                                .iter()
                                .take(usize::from(l.p_diff_count))
                                .all(|&d| {
                                    let pid =
                                        (picture_id + modulo - u16::from(d) % modulo) % modulo;
                                    let (seen, top) = self.vp9_emitted[usize::from(pid & 0xFF)];
                                    seen == pid && top > l.sid
                                })
                    });
                if all_there {
                    Verdict::Decodable
                } else {
                    Verdict::Skip
                }
            }
        }
    }

    fn record(&mut self, refs: &RefInfo) {
        match *refs {
            RefInfo::Unknown => {}
            RefInfo::Vp8 {
                tid,
                layer_sync,
                tl0picidx,
            } => {
                if tid == 0 {
                    self.last_tl0 = Some(tl0picidx);
                } else if layer_sync && tid == self.damaged_from_tid {
                    // This layer now predicts from intact frames again; the next one up may not.
                    self.damaged_from_tid += 1;
                }
            }
            RefInfo::Vp9Flexible {
                picture_id,
                layers,
                layer_count,
                ..
            } => {
                let top = layers
                    .iter()
                    .take(usize::from(layer_count))
                    .map(|l| l.sid + 1)
                    .max()
                    .unwrap_or(0);
                self.vp9_emitted[usize::from(picture_id & 0xFF)] = (picture_id, top);
            }
        }
    }
}

/// Finds stretches without frames.
#[derive(Debug, Clone, Default)]
pub struct GapTracker {
    last: Option<u64>,
    deltas: [u64; INTERVAL_HISTORY],
    count: usize,
    /// The gaps found.
    pub gaps: Vec<VideoGap>,
}

impl GapTracker {
    /// Notes a frame at `pts` (non-decreasing) while pictures are `size`.
    pub fn frame(&mut self, pts: u64, size: (u32, u32)) {
        let Some(last) = self.last.replace(pts) else {
            if pts > 0 {
                self.gaps.push(VideoGap {
                    start_pts_90k: 0,
                    end_pts_90k: pts,
                    width: size.0,
                    height: size.1,
                });
            }
            return;
        };
        let delta = pts.saturating_sub(last);
        if delta == 0 {
            return;
        }
        if let Some(interval) = self.interval() {
            if delta > GAP_INTERVALS * interval {
                self.gaps.push(VideoGap {
                    start_pts_90k: last + interval,
                    end_pts_90k: pts,
                    width: size.0,
                    height: size.1,
                });
                return; // a gap says nothing about the frame rate
            }
        }
        if let Some(slot) = self.deltas.get_mut(self.count % INTERVAL_HISTORY) {
            *slot = delta;
        }
        self.count += 1;
    }

    /// The median of the recent frame intervals.
    #[must_use]
    pub fn interval(&self) -> Option<u64> {
        let n = self.count.min(INTERVAL_HISTORY);
        if n == 0 {
            return None;
        }
        let mut recent = self.deltas;
        let recent = recent.get_mut(..n)?;
        recent.sort_unstable();
        recent.get(n / 2).copied()
    }
}

/// Which gaps of a video output get black pictures, planned from all its frames at once.
///
/// A gap is a stretch longer than [`GAP_INTERVALS`] frame intervals (the median of the positive
/// steps between frames, or 1/30 s without any), measured from the frame before it plus one
/// interval; the time before the first frame counts from the output's 0. It is filled only
/// when the frame after it is a keyframe (a black keyframe before an inter frame would break
/// its references) and a picture size is known: the previous frame's, else that frame's.
/// Every other gap counts as unfilled.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FillPlan {
    /// The gaps to fill, on the output timeline, with the picture size to fill them at.
    pub fills: Vec<VideoGap>,
    /// Milliseconds of gaps left as they are (each gap rounded down).
    pub unfilled_ms: u64,
}

impl FillPlan {
    /// Plans the fills of an output's frames, given per frame (in output order): time (90 kHz),
    /// whether it is a keyframe, and the picture size in force (0 while unknown).
    #[must_use]
    pub fn plan(pts_90k: &[u64], keyframe: &[bool], width: &[u32], height: &[u32]) -> Self {
        let pts: Vec<i64> = pts_90k
            .iter()
            .map(|&p| i64::try_from(p).unwrap_or(i64::MAX))
            .collect();
        let mut plan = Self::default();
        if pts.is_empty() {
            return plan;
        }
        let interval = median_positive_step(&pts).unwrap_or(VIDEO_CLOCK as i64 / 30);
        let limit = GAP_INTERVALS as i64 * interval;
        let mut start = 0i64;
        for (i, &at) in pts.iter().enumerate() {
            let length = at.saturating_sub(start);
            if length > limit {
                let prev = i.saturating_sub(1);
                let size = |column: &[u32]| {
                    let of = |j: usize| column.get(j).copied().unwrap_or(0);
                    if of(prev) == 0 {
                        of(i)
                    } else {
                        of(prev)
                    }
                };
                let (w, h) = (size(width), size(height));
                if keyframe.get(i) == Some(&true) && w != 0 && h != 0 {
                    plan.fills.push(VideoGap {
                        start_pts_90k: start as u64,
                        end_pts_90k: at as u64,
                        width: w,
                        height: h,
                    });
                } else {
                    plan.unfilled_ms += length as u64 * 1000 / VIDEO_CLOCK;
                }
            }
            start = at.saturating_add(interval);
        }
        plan
    }

    /// Nothing filled: every gap the assembly reported stays, and counts as unfilled.
    #[must_use]
    pub fn nothing_filled(gaps: &[VideoGap]) -> Self {
        let total: u64 = gaps
            .iter()
            .map(|g| g.end_pts_90k.saturating_sub(g.start_pts_90k))
            .sum();
        Self {
            fills: Vec::new(),
            unfilled_ms: total * 1000 / VIDEO_CLOCK,
        }
    }
}

/// The median of the positive steps between consecutive times (the mean of the two middle ones,
/// rounded down, for an even count); `None` without a positive step.
fn median_positive_step(pts: &[i64]) -> Option<i64> {
    let mut steps: Vec<i64> = pts
        .windows(2)
        .map(|w| w[1].saturating_sub(w[0]))
        .filter(|&d| d > 0)
        .collect();
    steps.sort_unstable();
    let n = steps.len();
    let upper = *steps.get(n / 2)?;
    if n % 2 == 1 {
        Some(upper)
    } else {
        // `n` is even and not 0, so there is a lower middle.
        let lower = steps.get(n / 2 - 1).copied().unwrap_or(upper);
        Some(lower + (upper - lower) / 2)
    }
}

/// A packet held in the reorder buffer.
#[derive(Debug, Clone, Copy)]
struct Held<'a> {
    payload: &'a [u8],
    ts: u64,
    marker: bool,
    cvo: Option<u8>,
}

/// The picture being collected.
#[derive(Debug, Clone)]
struct Pending {
    ts: u64,
    start_ok: bool,
    broken: bool,
    error: Option<VideoDepacketizeError>,
    cvo: Option<u8>,
}

/// Assembles the packets of one video track into complete, decodable frames.
#[derive(Debug)]
pub struct VideoAssembler<'a> {
    depack: AnyDepacketizer,
    cvo_id: Option<u8>,
    seqs: SeqUnwrapper,
    stamps: TsUnwrapper,
    reorder: ReorderBuffer<Held<'a>>,
    warmup: u64,
    base_ts: Option<u64>,
    pending: Option<Pending>,
    packets: Vec<(PacketInfo, &'a [u8])>,
    out: Vec<u8>,
    state: DecodeState,
    refs: RefTracker,
    config: Option<Vec<u8>>,
    config_unsent: bool,
    size: Option<(u32, u32)>,
    rotation: Option<Rotation>,
    last_pts: Option<u64>,
    gaps: GapTracker,
    report: VideoReport,
}

impl<'a> VideoAssembler<'a> {
    /// An assembler for the codec and options in `cfg`.
    #[must_use]
    pub fn new(cfg: &VideoExtractConfig) -> Self {
        Self {
            depack: AnyDepacketizer::new(cfg),
            cvo_id: cfg.cvo_extension_id,
            seqs: SeqUnwrapper::new(),
            stamps: TsUnwrapper::new(),
            reorder: ReorderBuffer::new(cfg.reorder_window),
            warmup: cfg.reorder_window.clamp(1, 64) as u64,
            base_ts: None,
            pending: None,
            packets: Vec::with_capacity(64),
            out: Vec::with_capacity(64 * 1024),
            state: DecodeState::WaitKey { since: None },
            refs: RefTracker::default(),
            config: None,
            config_unsent: false,
            size: None,
            rotation: None,
            last_pts: None,
            gaps: GapTracker::default(),
            report: VideoReport::default(),
        }
    }

    /// Takes the next packet of the track in arrival order; frames it completes go to `sink`.
    pub fn push<E>(
        &mut self,
        packet: &RtpPacket<'a>,
        sink: &mut impl FnMut(VideoEvent<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        self.report.packets_in += 1;
        let seq = self.seqs.unwrap(packet.sequence_number);
        let ts = self.stamps.unwrap(packet.timestamp).0;
        let cvo = self
            .cvo_id
            .and_then(|id| packet.extension(id))
            .and_then(|v| v.first().copied());
        let held = Held {
            payload: packet.payload,
            ts,
            marker: packet.marker,
            cvo,
        };
        if let PushOutcome::TooLate { .. } = self.reorder.push(seq, held) {
            self.report
                .warn(|| format!("packet seq {seq} arrived too late and was dropped"));
        }
        // The reorder buffer releases from the first packet it sees; holding the first few lets
        // a capture that starts with reordered packets still begin at the lowest one.
        if self.report.packets_in < self.warmup {
            return Ok(());
        }
        while let Some(popped) = self.reorder.pop() {
            self.process(popped, sink)?;
        }
        Ok(())
    }

    /// Releases everything still held and returns the report.
    pub fn finish<E>(
        mut self,
        sink: &mut impl FnMut(VideoEvent<'_>) -> Result<(), E>,
    ) -> Result<VideoReport, E> {
        let rest: Vec<_> = self.reorder.flush().collect();
        for popped in rest {
            self.process(popped, sink)?;
        }
        if self.pending.is_some() {
            // The stream ended without the picture's marker: its end cannot be proven.
            self.close(false, sink)?;
        }
        self.report.packets_lost = self.reorder.lost();
        self.report.duplicates = self.reorder.duplicates();
        self.report.late = self.reorder.late();
        self.report.gaps = std::mem::take(&mut self.gaps.gaps);
        Ok(self.report)
    }

    /// The report so far (counters of the reorder buffer are filled in by [`finish`](Self::finish)).
    #[must_use]
    pub fn report(&self) -> &VideoReport {
        &self.report
    }

    #[allow(clippy::needless_pass_by_value)] // a popped packet is used up here
    fn process<E>(
        &mut self,
        popped: Popped<Held<'a>>,
        sink: &mut impl FnMut(VideoEvent<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let Popped {
            seq,
            item,
            lost_before,
        } = popped;
        let base = *self.base_ts.get_or_insert(item.ts);
        let info = self.depack.inspect(item.payload);
        if let Some(cur) = &mut self.pending {
            if cur.ts != item.ts {
                // Without a gap, the previous packet was the last of its picture.
                self.close(lost_before == 0, sink)?;
            } else if lost_before > 0 {
                cur.broken = true;
            }
        }
        if self.pending.is_none() {
            if lost_before > 0 {
                self.on_loss(item.ts.saturating_sub(base));
            }
            let start_ok = info
                .as_ref()
                .is_ok_and(|i| i.starts_frame && (lost_before == 0 || i.definitive_start));
            self.packets.clear();
            self.pending = Some(Pending {
                ts: item.ts,
                start_ok,
                broken: false,
                error: None,
                cvo: None,
            });
        }
        let Some(cur) = &mut self.pending else {
            return Ok(());
        };
        match info {
            Ok(info) => self.packets.push((info, item.payload)),
            Err(e) => {
                if cur.error.is_none() {
                    self.report.warn(|| format!("seq {seq}: {e}"));
                    cur.error = Some(e);
                }
            }
        }
        if item.cvo.is_some() {
            cur.cvo = item.cvo;
        }
        if item.marker {
            self.close(true, sink)?;
        }
        Ok(())
    }

    fn on_loss(&mut self, pts: u64) {
        match &mut self.state {
            DecodeState::WaitKey { since } => {
                since.get_or_insert(pts);
            }
            DecodeState::Intact | DecodeState::Damaged => {
                self.state = DecodeState::Damaged;
                self.refs.on_loss();
            }
        }
    }

    fn close<E>(
        &mut self,
        end_ok: bool,
        sink: &mut impl FnMut(VideoEvent<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let Some(cur) = self.pending.take() else {
            return Ok(());
        };
        let pts = cur.ts.saturating_sub(self.base_ts.unwrap_or(cur.ts));
        if let Some(e) = cur.error {
            self.malformed(pts, &e);
            return Ok(());
        }
        if !(cur.start_ok && end_ok && !cur.broken) {
            self.report.frames_incomplete += 1;
            self.on_loss(pts);
            return Ok(());
        }
        let meta = match self.depack.assemble(&self.packets, &mut self.out) {
            Ok(meta) => meta,
            Err(e) => {
                self.report
                    .warn(|| format!("frame at pts {pts} (90 kHz) dropped: {e}"));
                self.malformed(pts, &e);
                return Ok(());
            }
        };
        if let Some(config) = meta.config {
            self.config = Some(config);
            self.config_unsent = true;
        }
        let verdict = match self.state {
            DecodeState::Intact => Verdict::Decodable,
            _ if meta.keyframe => Verdict::Decodable,
            DecodeState::WaitKey { .. } => Verdict::NeedKeyframe,
            DecodeState::Damaged => self.refs.verdict(&meta.refs),
        };
        match verdict {
            Verdict::Decodable => {}
            Verdict::Skip => {
                self.report.frames_undecodable += 1;
                return Ok(());
            }
            Verdict::NeedKeyframe => {
                self.report.frames_undecodable += 1;
                match &mut self.state {
                    DecodeState::WaitKey { since } => {
                        since.get_or_insert(pts);
                    }
                    _ => self.state = DecodeState::WaitKey { since: Some(pts) },
                }
                return Ok(());
            }
        }
        if meta.keyframe {
            if let DecodeState::WaitKey { since: Some(since) } = self.state {
                self.report.keyframe_waits += 1;
                self.report.keyframe_wait_ms += pts.saturating_sub(since) as f64 / 90.0;
            }
            self.state = DecodeState::Intact;
            self.refs.on_keyframe();
        }
        self.refs.record(&meta.refs);
        self.emit(pts, meta.keyframe, meta.size, cur.cvo, sink)
    }

    fn malformed(&mut self, pts: u64, e: &VideoDepacketizeError) {
        if matches!(e, VideoDepacketizeError::Refused { .. }) {
            self.report.refused_packetizations += 1;
        }
        self.report.frames_malformed += 1;
        self.on_loss(pts);
    }

    fn emit<E>(
        &mut self,
        pts: u64,
        keyframe: bool,
        size: Option<(u32, u32)>,
        cvo: Option<u8>,
        sink: &mut impl FnMut(VideoEvent<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let config_changed = self.config_unsent;
        if self.config_unsent {
            self.config_unsent = false;
            self.report.config_changes += 1;
            if let Some(config) = &self.config {
                sink(VideoEvent::Config {
                    pts_90k: pts,
                    codec_private: config,
                })?;
            }
        }
        if let Some(rotation) = cvo.map(Rotation::from_cvo) {
            if self.rotation != Some(rotation) {
                self.rotation = Some(rotation);
                self.report.rotation_changes.push((pts, rotation));
                sink(VideoEvent::Rotation {
                    pts_90k: pts,
                    rotation,
                })?;
            }
        }
        if let Some(size) = size {
            if self.size != Some(size) {
                self.report.resolution_changes.push((pts, size.0, size.1));
                self.report.note_size(size);
            }
        }
        let gap_size = self.size.or(size).unwrap_or((0, 0));
        if size.is_some() {
            self.size = size;
        }
        // Timestamps that step back (a sender reset or B-frames) are clamped for the caller's
        // muxer, which needs them monotonic.
        let pts = self.last_pts.map_or(pts, |last| pts.max(last));
        self.gaps.frame(pts, gap_size);
        self.last_pts = Some(pts);
        self.report.first_pts_90k.get_or_insert(pts);
        self.report.last_pts_90k = Some(pts);
        self.report.frames_emitted += 1;
        self.report.keyframes_emitted += u64::from(keyframe);
        let frame = VideoFrame {
            pts_90k: pts,
            keyframe,
            data: &self.out,
            size,
            config_changed,
        };
        sink(VideoEvent::Frame(&frame))
    }
}

/// Runs one segment's capture through a fresh assembler.
pub(crate) fn assemble_segment<E>(
    capture: &[u8],
    segment: usize,
    cfg: &VideoExtractConfig,
    sink: &mut impl FnMut(VideoEvent<'_>) -> Result<(), E>,
) -> Result<Result<VideoReport, E>, VideoError> {
    let reader =
        RtpdumpReader::new(capture).map_err(|source| VideoError::Capture { segment, source })?;
    // The track: by the one rule of `crate::track`, per capture.
    let track = count_sources(capture)
        .ok()
        .and_then(|sources| choose_track(&sources, cfg.payload_type));
    let Some(Source {
        payload_type: pt,
        ssrc,
        ..
    }) = track
    else {
        return Err(VideoError::NoPackets {
            payload_type: cfg.payload_type,
        });
    };
    let mut asm = VideoAssembler::new(cfg);
    let (mut rtcp, mut invalid, mut other, mut padding, mut truncated) = (0, 0, 0, 0, 0);
    let mut capture_warning = None;
    for record in reader {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                capture_warning = Some(format!(
                    "segment {segment}: {e}; rest of the capture skipped"
                ));
                break;
            }
        };
        if record.is_rtcp() {
            rtcp += 1;
            continue;
        }
        let packet = match RtpPacket::parse(record.data) {
            Ok(p) => p,
            Err(_) if looks_like_rtcp(record.data) => {
                rtcp += 1;
                continue;
            }
            Err(_) => {
                invalid += 1;
                continue;
            }
        };
        if packet.payload_type != pt || packet.ssrc != ssrc {
            other += 1;
            continue;
        }
        if record.truncated {
            // A packet cut by the snap length would make its frame look complete but be short.
            truncated += 1;
            continue;
        }
        if packet.is_padding_only() {
            padding += 1;
            continue;
        }
        if let Err(e) = asm.push(&packet, sink) {
            return Ok(Err(e));
        }
    }
    let mut report = match asm.finish(sink) {
        Ok(r) => r,
        Err(e) => return Ok(Err(e)),
    };
    report.payload_type = pt;
    report.ssrcs = vec![Some(ssrc)];
    report.rtcp_records = rtcp;
    report.invalid_records = invalid;
    report.other_records = other;
    report.padding_only = padding;
    report.truncated = truncated;
    if let Some(w) = capture_warning {
        report.warn(|| w);
    }
    Ok(Ok(report))
}

/// Assembles the video track of one rtpdump capture, handing events to `sink` in order.
///
/// The track is `cfg.payload_type` (or the capture's dominant payload type) with its busiest SSRC
/// ([`crate::track`]); RTX, other payload types and SSRCs, RTCP, padding-only packets and garbage
/// are skipped and counted.
/// An error from `sink` stops the assembly as [`VideoError::Stopped`].
pub fn assemble_video<E: std::fmt::Display>(
    capture: &[u8],
    cfg: &VideoExtractConfig,
    mut sink: impl FnMut(VideoEvent<'_>) -> Result<(), E>,
) -> Result<VideoReport, VideoError> {
    assemble_segment(capture, 0, cfg, &mut sink)?.map_err(|e| VideoError::Stopped {
        reason: e.to_string(),
    })
}
