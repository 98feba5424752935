//! What an assembly did: frames, losses, keyframe waits, sizes, gaps and warnings.

use super::{FillPlan, Rotation, VideoGap, MAX_WARNINGS};

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
    /// Complete frames written although a frame they reference is missing
    /// ([`super::OnLoss::Conceal`]): the decoder conceals what it lacks.
    pub frames_concealed: u64,
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
    /// What the output shows where no new picture comes ([`FillPlan`]: freezes, black fills,
    /// the end), planned over all its pictures: by [`crate::video_frames`] before writing (the
    /// fills to make) and by the extractions that write a file (the same plan, after).
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
    pub(super) fn warn(&mut self, message: impl FnOnce() -> String) {
        if self.warnings.len() < MAX_WARNINGS {
            self.warnings.push(message());
        } else {
            self.warnings_dropped += 1;
        }
    }

    pub(super) fn note_size(&mut self, size: (u32, u32)) {
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
        self.frames_concealed += other.frames_concealed;
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
