//! Complete, decodable video frames out of the RTP packets of one track.
//!
//! [`VideoAssembler`] is a pure state machine fed with the RTP packets of one video track in
//! arrival order. It restores sequence order ([`crate::reorder::ReorderBuffer`]), extends
//! timestamps ([`crate::seq::TsUnwrapper`]), groups packets into pictures by RTP timestamp and
//! hands each picture to the codec's [`crate::depacketize::VideoDepacketizer`] only when it is
//! provably complete: its first packet is there (the codec's start bit, and no loss right before
//! it unless the start bit proves the picture begins there, or the one packet lost was the tail
//! of the picture before), its last packet is there (marker bit, or the next packet follows
//! without a gap with a new timestamp) and no sequence number inside it is missing. Output
//! starts at the first keyframe; after a loss a frame is written only when the codec's own
//! evidence proves its references intact (`refs`: VP8 `N` and temporal layers, VP9 and AV1
//! reference slots and VP9 `P_DIFF`, H.264 `frame_num`, picture numbering), else from the next
//! keyframe on ([`OnLoss::Conceal`] writes complete frames regardless). Every picture not written
//! is reported ([`VideoEvent::Missed`]) so that the output can plan what to show in its place
//! ([`FillPlan`]). [`assemble_video`] runs a whole rtpdump capture through it.
//!
//! The module is split by concept: [`assembler`] (the state machine), `refs` (what a frame may
//! reference after a loss), [`gaps`] (stretches without frames and the plan of freezes, black
//! fills and the output's end), [`report`] (what an assembly did) and [`capture`] (one rtpdump
//! capture through it).

pub mod assembler;
pub mod capture;
pub mod gaps;
mod refs;
pub mod report;
#[cfg(test)]
pub(crate) mod tests;

pub use assembler::{AnyDepacketizer, VideoAssembler};
pub(crate) use capture::assemble_segment;
pub use capture::assemble_video;
pub use gaps::{
    FillPlan, GapTracker, Picture, PictureLog, Stretch, StretchKind, VideoGap, GAP_INTERVALS,
};
pub use report::VideoReport;

use crate::depacketize::h264::NalFormat;
use crate::depacketize::vp9::SpatialLayerPolicy;
use crate::mux::MuxError;
use crate::rtpdump::RtpdumpError;

/// Warnings kept in a report; later ones are only counted.
pub const MAX_WARNINGS: usize = 32;
/// RTP clock of every video payload format.
pub const VIDEO_CLOCK: u64 = 90_000;

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

/// What an output shows after a loss, until the next frame that decodes correctly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnLoss {
    /// The last complete picture stays on screen (what a WebRTC receiver does): nothing is
    /// written for the lost time, the container's timing holds the picture.
    #[default]
    Freeze,
    /// Black pictures from the loss to the next keyframe (where the gap ends at one).
    Black,
    /// Complete inter frames after a loss are written anyway: motion with the decoder's
    /// concealment artefacts until the next keyframe.
    Conceal,
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
    /// What to show after a loss.
    pub on_loss: OnLoss,
    /// Black pictures may fill what has no picture ([`FillPlan`]); else nothing is filled.
    pub fill_gaps: bool,
    /// Each segment's SSRC (in segment order) as an earlier pass chose it by the rule of
    /// [`crate::track`] (the analysis' `primary_ssrc`), used with `payload_type` set: the
    /// capture is then read once. Empty, or `None` for a segment, lets the extraction choose,
    /// which costs a pass over that capture. A named SSRC without a media packet of the payload
    /// type in its capture is an error ([`VideoError::SsrcNotFound`]).
    pub ssrcs: Vec<Option<u32>>,
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
            on_loss: OnLoss::Freeze,
            fill_gaps: true,
            ssrcs: Vec::new(),
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
    /// Packets were lost right before this frame's first packet.
    pub loss_before: bool,
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
    /// A picture arrived (in part or whole) but is not written: packets of it are missing, it
    /// is malformed, or a frame it references is missing. The output plans what to show in its
    /// place from these ([`FillPlan`]).
    Missed {
        /// The picture's time (90 kHz, relative to the track's first packet).
        pts_90k: u64,
        /// Packets were lost right before its first packet that arrived.
        loss_before: bool,
    },
    /// The CVO orientation changed at `pts_90k`.
    Rotation {
        /// Where the new orientation starts.
        pts_90k: u64,
        /// The orientation.
        rotation: Rotation,
    },
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
    /// A segment's named SSRC has no packet of the payload type in its capture.
    #[error("segment {segment}: no packet of SSRC {ssrc:#010x} with payload type {payload_type}")]
    SsrcNotFound {
        /// Index of the segment.
        segment: usize,
        /// The SSRC named for it.
        ssrc: u32,
        /// The payload type extracted.
        payload_type: u8,
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
