//! RTP payloads back into codec frames, one file per codec.
//!
//! A [`VideoDepacketizer`] gets the packets of one picture once the assembler
//! ([`crate::video::VideoAssembler`]) has proven it complete, in sequence order, and writes the
//! codec frame (VP8 frame, VP9 superframe, H.264 access unit, AV1 temporal unit). Before that it
//! reads each packet's payload header ([`PacketInfo`]: the start bit, descriptor length, layer
//! fields) so the assembler can find where pictures begin. Besides the frame it reports what the
//! assembler cannot see in the payload headers alone ([`FrameMeta`]): keyframes, picture sizes,
//! decoder configuration records and reference information for decodability after a loss.
//! Opus needs no reassembly (one packet is one frame): [`opus`] validates packets and writes the
//! packets that fill holes.

pub mod av1;
pub mod h264;
pub mod opus;
pub mod vp8;
pub mod vp9;

use crate::bitstream::BitstreamError;
pub use crate::bitstream::SlotRefs;

/// Spatial layers a VP9 picture may carry (3-bit SID).
pub const MAX_SPATIAL_LAYERS: usize = 8;

/// Layer and picture fields of a VP8 or VP9 payload descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LayerInfo {
    /// `PictureID`.
    pub picture_id: Option<PictureNumber>,
    /// Temporal layer index.
    pub tid: Option<u8>,
    /// VP8 `Y` (layer sync) or VP9 `U` (switching up point).
    pub layer_sync: bool,
    /// `TL0PICIDX`.
    pub tl0picidx: Option<u8>,
    /// VP8 `N`: no other frame references this one.
    pub non_reference: bool,
}

/// What a depacketizer reads from one packet's payload header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PacketInfo {
    /// The packet can be the first of its picture (the codec's start bit).
    pub starts_frame: bool,
    /// The packet is certainly the first of its picture, even right after a loss.
    pub definitive_start: bool,
    /// Bytes of payload header before the codec data (VP8, VP9 descriptors).
    pub header_len: u16,
    /// Layer fields, when the payload format has them.
    pub layers: LayerInfo,
}

/// The references of one VP9 spatial layer frame in flexible mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Vp9LayerRefs {
    /// Spatial layer.
    pub sid: u8,
    /// `P`: predicted from earlier pictures (listed in `p_diffs`).
    pub inter_picture: bool,
    /// `PictureID` differences to the referenced pictures.
    pub p_diffs: [u8; 3],
    /// How many of `p_diffs` are used.
    pub p_diff_count: u8,
}

/// A number that counts pictures, so that consecutive ones prove no picture between them was
/// lost: the VP8/VP9 `PictureID`, or AV1's `order_hint` of a temporal unit of one shown frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PictureNumber {
    /// The number.
    pub value: u16,
    /// Its width in bits: it counts modulo `1 << bits`.
    pub bits: u8,
}

impl PictureNumber {
    /// Whether `self` comes right after `previous` (same width, one more, wrapping).
    #[must_use]
    pub fn follows(self, previous: PictureNumber) -> bool {
        let modulo = 1u32 << self.bits.min(16);
        self.bits == previous.bits
            && u32::from(self.value) == (u32::from(previous.value) + 1) % modulo
    }

    /// How many pictures the number counts before it wraps.
    #[must_use]
    pub fn modulo(self) -> u64 {
        1 << self.bits.min(16)
    }
}

/// VP8 temporal layering fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Vp8Layer {
    /// Temporal layer.
    pub tid: u8,
    /// `Y`: depends only on the base layer frame `tl0picidx`.
    pub layer_sync: bool,
    /// `TL0PICIDX`.
    pub tl0picidx: u8,
}

/// The spatial layer frames of a VP9 flexible-mode picture and what each references.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Vp9Flexible {
    /// The output spatial layers and their references.
    pub layers: [Vp9LayerRefs; MAX_SPATIAL_LAYERS],
    /// How many of `layers` are used.
    pub layer_count: u8,
}

/// What a picture references, and what it is referenced as, as far as the payload format and
/// the codec's headers tell: the codec's own evidence for which frames after a loss decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RefInfo {
    /// Nothing: after a loss only a keyframe is safe.
    #[default]
    Unknown,
    /// VP8: the payload descriptor.
    Vp8 {
        /// `PictureID`.
        picture: Option<PictureNumber>,
        /// `N`: no frame references this one.
        non_reference: bool,
        /// Temporal layering (`TID`, `Y`, `TL0PICIDX`).
        layer: Option<Vp8Layer>,
    },
    /// VP9: the payload descriptor and the frames' uncompressed headers.
    Vp9 {
        /// `PictureID`.
        picture: Option<PictureNumber>,
        /// Flexible mode: `P_DIFF` references per spatial layer.
        flexible: Option<Vp9Flexible>,
        /// The reference slots the picture's frames read and write (`ref_frame_idx`,
        /// `refresh_frame_flags`).
        slots: Option<SlotRefs>,
    },
    /// H.264: the first slice header.
    H264 {
        /// `frame_num`.
        frame_num: u32,
        /// Its width in bits.
        log2_max_frame_num: u8,
        /// `nal_ref_idc != 0`: a reference picture.
        reference: bool,
        /// `gaps_in_frame_num_value_allowed_flag`: `frame_num` may skip without a loss.
        gaps_allowed: bool,
    },
    /// AV1: the temporal unit's frame headers.
    Av1 {
        /// `order_hint` of a unit of one shown frame.
        picture: Option<PictureNumber>,
        /// The reference slots its frames read and write.
        slots: Option<SlotRefs>,
    },
}

impl RefInfo {
    /// The number that counts pictures, when the codec has one.
    #[must_use]
    pub fn picture(&self) -> Option<PictureNumber> {
        match *self {
            Self::Vp8 { picture, .. } | Self::Vp9 { picture, .. } | Self::Av1 { picture, .. } => {
                picture
            }
            Self::Unknown | Self::H264 { .. } => None,
        }
    }
}

/// What a depacketizer learned from a whole picture.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FrameMeta {
    /// Decoding can start here.
    pub keyframe: bool,
    /// Picture size, when a keyframe states it.
    pub size: Option<(u32, u32)>,
    /// A new decoder configuration record (`avcC`, `av1C`) when it changed with this frame.
    pub config: Option<Vec<u8>>,
    /// Reference information for decodability after a loss.
    pub refs: RefInfo,
}

/// Why a video payload could not be turned into a frame; the frame is dropped and counted.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum VideoDepacketizeError {
    /// The payload header is malformed.
    #[error("malformed {codec} payload: {reason}")]
    Descriptor {
        /// The codec.
        codec: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// A packetization rawcore does not support.
    #[error("{codec} {packetization} packetization refused")]
    Refused {
        /// The codec.
        codec: &'static str,
        /// The packetization.
        packetization: &'static str,
    },
    /// Fragments of a picture do not fit together.
    #[error("{codec} fragmentation broken: {reason}")]
    Fragment {
        /// The codec.
        codec: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// The codec bitstream inside is malformed.
    #[error("{codec} bitstream: {source}")]
    Bitstream {
        /// The codec.
        codec: &'static str,
        /// The header error.
        source: BitstreamError,
    },
}

/// Turns the packets of one picture back into one codec frame.
pub trait VideoDepacketizer {
    /// Reads one packet's payload header (cheap; called for every packet in sequence order).
    fn inspect(&self, payload: &[u8]) -> Result<PacketInfo, VideoDepacketizeError>;

    /// Writes the frame made of `packets` (one picture, complete, in sequence order, each with
    /// what [`inspect`](Self::inspect) said) into `out`, replacing its contents.
    fn assemble(
        &mut self,
        packets: &[(PacketInfo, &[u8])],
        out: &mut Vec<u8>,
    ) -> Result<FrameMeta, VideoDepacketizeError>;

    /// [`assemble`](Self::assemble) for a frame that is a slice of one packet's payload (a
    /// VP8 picture in one packet is the payload after its descriptor): its facts and that
    /// slice, so the caller writes it without a copy. `None` (the default) when the frame must
    /// be assembled.
    fn assemble_in_place<'p>(
        &mut self,
        packets: &[(PacketInfo, &'p [u8])],
    ) -> Option<Result<(FrameMeta, &'p [u8]), VideoDepacketizeError>> {
        let _ = packets;
        None
    }

    /// What the packets that arrived of an incomplete picture tell about its references (its
    /// number, whether it is a reference, the slots it writes); [`RefInfo::Unknown`] when they
    /// cannot tell.
    fn partial_refs(&self, packets: &[(PacketInfo, &[u8])]) -> RefInfo {
        let _ = packets;
        RefInfo::Unknown
    }
}
