//! The assembler: RTP packets of one video track in arrival order, complete decodable frames out.

use super::gaps::GapTracker;
use super::refs::{RefTracker, Verdict};
use super::{
    OnLoss, Rotation, VideoCodec, VideoEvent, VideoExtractConfig, VideoFrame, VideoReport,
};
use crate::depacketize::av1::Av1Depacketizer;
use crate::depacketize::h264::H264Depacketizer;
use crate::depacketize::vp8::Vp8Depacketizer;
use crate::depacketize::vp9::Vp9Depacketizer;
use crate::depacketize::{
    FrameMeta, PacketInfo, RefInfo, VideoDepacketizeError, VideoDepacketizer,
};
use crate::reorder::{Popped, PushOutcome, ReorderBuffer};
use crate::rtp::RtpPacket;
use crate::seq::{SeqUnwrapper, TsUnwrapper};

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

    fn assemble_in_place<'p>(
        &mut self,
        packets: &[(PacketInfo, &'p [u8])],
    ) -> Option<Result<(FrameMeta, &'p [u8]), VideoDepacketizeError>> {
        match self {
            Self::Vp8(d) => d.assemble_in_place(packets),
            Self::Vp9(d) => d.assemble_in_place(packets),
            Self::H264(d) => d.assemble_in_place(packets),
            Self::Av1(d) => d.assemble_in_place(packets),
        }
    }

    fn partial_refs(&self, packets: &[(PacketInfo, &[u8])]) -> RefInfo {
        match self {
            Self::Vp8(d) => d.partial_refs(packets),
            Self::Vp9(d) => d.partial_refs(packets),
            Self::H264(d) => d.partial_refs(packets),
            Self::Av1(d) => d.partial_refs(packets),
        }
    }
}

/// Whether frames can be decoded right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DecodeState {
    /// Only a keyframe can be decoded; `since` is when the first frame was dropped.
    WaitKey { since: Option<u64> },
    /// Every frame since the last keyframe was emitted.
    Intact,
    /// Something was lost since the last keyframe; reference information decides. `since` is
    /// when the first frame was skipped, until a frame decodes again.
    Damaged { since: Option<u64> },
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
    /// Packets were lost right before the first packet of it that arrived.
    loss_before: bool,
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
    on_loss: OnLoss,
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
    /// The marker bit of the last packet processed, and whether the sender sets marker bits
    /// at all.
    last_marker: bool,
    marks_ends: bool,
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
            on_loss: cfg.on_loss,
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
            last_marker: false,
            marks_ends: false,
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
                self.refs.lost_packets(lost_before);
                self.on_loss(item.ts.saturating_sub(base));
            }
            // One packet lost right after a picture whose last packet (with the marker) never
            // came was that packet: this one, if it can start a picture, does.
            let tail_was_lost = lost_before == 1 && self.marks_ends && !self.last_marker;
            let start_ok = info.as_ref().is_ok_and(|i| {
                i.starts_frame && (lost_before == 0 || i.definitive_start || tail_was_lost)
            });
            self.packets.clear();
            self.pending = Some(Pending {
                ts: item.ts,
                loss_before: lost_before > 0,
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
        self.last_marker = item.marker;
        self.marks_ends |= item.marker;
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
            DecodeState::Intact => self.state = DecodeState::Damaged { since: None },
            DecodeState::Damaged { .. } => {}
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
            return missed(pts, cur.loss_before, sink);
        }
        if !(cur.start_ok && end_ok && !cur.broken) {
            self.report.frames_incomplete += 1;
            self.lost_picture(pts);
            return missed(pts, cur.loss_before, sink);
        }
        // A frame that is a slice of its one packet is written from the capture, uncopied.
        let assembled = match self.depack.assemble_in_place(&self.packets) {
            Some(in_place) => in_place.map(|(meta, frame)| (meta, Some(frame))),
            None => self
                .depack
                .assemble(&self.packets, &mut self.out)
                .map(|meta| (meta, None)),
        };
        let (meta, in_place) = match assembled {
            Ok(assembled) => assembled,
            Err(e) => {
                self.report
                    .warn(|| format!("frame at pts {pts} (90 kHz) dropped: {e}"));
                self.malformed(pts, &e);
                return missed(pts, cur.loss_before, sink);
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
            DecodeState::Damaged { .. } => self.refs.verdict(&meta.refs),
        };
        // With `OnLoss::Conceal` a frame that misses a reference is written all the same once
        // output has begun (the decoder conceals); the references stay damaged.
        let conceal = self.on_loss == OnLoss::Conceal && self.report.frames_emitted > 0;
        match verdict {
            Verdict::Decodable => {}
            Verdict::Skip | Verdict::NeedKeyframe if conceal => {
                // Written, but not decoded right: what it gives later frames is damaged too.
                self.report.frames_concealed += 1;
                self.refs.missed(&meta.refs);
                if verdict == Verdict::NeedKeyframe {
                    self.wait_for_keyframe(pts);
                }
                let facts = (pts, false, meta.size, cur.cvo, cur.loss_before);
                return self.emit(facts, in_place, sink);
            }
            Verdict::Skip => {
                self.report.frames_undecodable += 1;
                self.refs.missed(&meta.refs);
                if let DecodeState::Damaged { since } = &mut self.state {
                    since.get_or_insert(pts);
                }
                return missed(pts, cur.loss_before, sink);
            }
            Verdict::NeedKeyframe => {
                self.report.frames_undecodable += 1;
                self.refs.missed(&meta.refs);
                self.wait_for_keyframe(pts);
                return missed(pts, cur.loss_before, sink);
            }
        }
        if meta.keyframe {
            if let DecodeState::WaitKey { since: Some(since) }
            | DecodeState::Damaged { since: Some(since) } = self.state
            {
                self.report.keyframe_waits += 1;
                self.report.keyframe_wait_ms += pts.saturating_sub(since) as f64 / 90.0;
            }
            self.state = DecodeState::Intact;
            self.refs.on_keyframe();
        } else if let DecodeState::Damaged { since } = &mut self.state {
            // Decoding resumed without a keyframe: what was skipped was no keyframe wait.
            *since = None;
        }
        self.refs.record(&meta.refs);
        let facts = (pts, meta.keyframe, meta.size, cur.cvo, cur.loss_before);
        self.emit(facts, in_place, sink)
    }

    fn wait_for_keyframe(&mut self, pts: u64) {
        match &mut self.state {
            DecodeState::WaitKey { since } => {
                since.get_or_insert(pts);
            }
            _ => self.state = DecodeState::WaitKey { since: Some(pts) },
        }
    }

    fn malformed(&mut self, pts: u64, e: &VideoDepacketizeError) {
        if matches!(e, VideoDepacketizeError::Refused { .. }) {
            self.report.refused_packetizations += 1;
        }
        self.report.frames_malformed += 1;
        self.lost_picture(pts);
    }

    /// A picture that arrived in part (or malformed) is not written: what its packets tell
    /// about its references decides what its loss damages.
    fn lost_picture(&mut self, pts: u64) {
        let refs = self.depack.partial_refs(&self.packets);
        self.refs.missed(&refs);
        self.on_loss(pts);
    }

    /// Hands the sink a frame: `(pts, keyframe, size, cvo, loss_before)` as `close` gathered
    /// them, its data the assembled frame, or `in_place` in the capture.
    fn emit<E>(
        &mut self,
        (pts, keyframe, size, cvo, loss_before): (u64, bool, Option<(u32, u32)>, Option<u8>, bool),
        in_place: Option<&'a [u8]>,
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
            data: in_place.unwrap_or(&self.out),
            size,
            config_changed,
            loss_before,
        };
        sink(VideoEvent::Frame(&frame))
    }
}

/// Tells the sink about a picture that is not written.
fn missed<E>(
    pts_90k: u64,
    loss_before: bool,
    sink: &mut impl FnMut(VideoEvent<'_>) -> Result<(), E>,
) -> Result<(), E> {
    sink(VideoEvent::Missed {
        pts_90k,
        loss_before,
    })
}
