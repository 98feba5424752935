//! RTP payloads back into codec frames, one file per codec.
//!
//! A [`Depacketizer`] receives the packets of one stream in extended sequence order (after the
//! [`crate::reorder::ReorderBuffer`]) and yields complete codec frames. Audio codecs carry one
//! frame per packet, so their depacketizers validate and pass the payload through; video codecs
//! (VP8, VP9, H.264, AV1) reassemble a frame from several packets and must drop a frame whose
//! packets were lost, which is why every packet states how many sequence numbers were skipped
//! right before it.

pub mod opus;

use crate::seq::{ExtTimestamp, SeqNo};

/// Why a payload could not be turned into a frame. The caller counts and skips it.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum DepacketizeError {
    /// The payload is not a valid Opus packet.
    #[error("malformed Opus packet at seq {seq}: {source}")]
    Opus {
        /// The packet's sequence number.
        seq: SeqNo,
        /// What is wrong with it.
        source: opus::OpusError,
    },
}

/// One RTP packet as a depacketizer sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketIn<'a> {
    /// Extended sequence number.
    pub seq: SeqNo,
    /// Extended RTP timestamp.
    pub timestamp: ExtTimestamp,
    /// The RTP marker bit (end of a video frame, start of an audio talkspurt).
    pub marker: bool,
    /// Sequence numbers skipped right before this packet (a partial frame must not be emitted).
    pub lost_before: u64,
    /// The payload, padding removed.
    pub payload: &'a [u8],
}

/// A complete frame; its bytes are in the buffer the caller passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameInfo {
    /// RTP timestamp of the frame.
    pub timestamp: ExtTimestamp,
    /// Whether the frame can be decoded on its own (always true for audio).
    pub keyframe: bool,
    /// Duration in the codec's sample clock, when the bitstream states it (Opus: 48 kHz).
    pub duration: Option<u32>,
}

/// Turns packets of one stream, in sequence order, into complete frames.
pub trait Depacketizer {
    /// Takes the next packet. When it completes a frame, `frame` is overwritten with the frame's
    /// bytes and its description is returned; the buffer is reused to keep the hot path free of
    /// allocations.
    fn push(
        &mut self,
        packet: &PacketIn<'_>,
        frame: &mut Vec<u8>,
    ) -> Result<Option<FrameInfo>, DepacketizeError>;

    /// Emits a frame still being assembled at the end of the stream, if it is complete.
    fn flush(&mut self, frame: &mut Vec<u8>) -> Option<FrameInfo> {
        let _ = frame;
        None
    }
}
pub mod av1;
pub mod h264;
pub mod vp8;
pub mod vp9;
