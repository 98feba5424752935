//! What a frame may reference after a loss, from the codec's own evidence ([`RefInfo`]), so that
//! a lost frame nothing references costs only itself:
//!
//! - picture numbering (VP8/VP9 `PictureID`, AV1 `order_hint`): consecutive numbers around a
//!   loss prove that no whole picture went missing, only the ones that arrived in part;
//! - VP8: the `N` bit (a non-reference frame), temporal layers (`TID`, `Y`, `TL0PICIDX`
//!   continuity of the base layer);
//! - VP9 and AV1: the eight reference slots, from each frame's header (`ref_frame_idx` read,
//!   `refresh_frame_flags` written): a frame decodes when every slot it reads holds a picture
//!   decoded right; VP9 flexible mode's `P_DIFF` says the same per spatial layer;
//! - H.264: `frame_num` counts reference pictures, so a picture whose `frame_num` follows the
//!   last written reference picture's lost no reference picture in between (`nal_ref_idc == 0`
//!   pictures do not count).
//!
//! Anything the evidence does not cover waits for the next keyframe.

use crate::depacketize::{PictureNumber, RefInfo, SlotRefs, Vp8Layer, Vp9Flexible};

/// The verdict on a frame after a loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    Decodable,
    /// Undecodable, but later frames may be (an upper layer or a lost reference).
    Skip,
    /// Undecodable and nothing but a keyframe helps.
    NeedKeyframe,
}

/// No VP8 temporal layer is damaged (TID is 2 bits).
const NO_DAMAGED_TID: u8 = 4;
/// Every VP9/AV1 reference slot.
const ALL_SLOTS: u8 = 0xFF;

/// What was written, to judge references after a loss.
#[derive(Debug, Clone)]
pub(super) struct RefTracker {
    /// The number of the last picture seen, written or not.
    last_number: Option<PictureNumber>,
    /// Packets lost since the last picture seen, that no picture seen accounts for yet.
    unexplained: u64,
    /// VP8 without temporal layers: a frame that may be a reference was not written.
    vp8_broken: bool,
    /// `TL0PICIDX` of the last written VP8 base layer frame.
    last_tl0: Option<u8>,
    /// The lowest VP8 temporal layer that may reference a lost frame.
    damaged_from_tid: u8,
    /// VP9 flexible mode: written `PictureIDs` and their top spatial layer + 1, by `PictureID` %
    /// 256.
    vp9_emitted: Box<[(u16, u8); 256]>,
    /// VP9/AV1: the slots that hold a picture decoded right.
    intact_slots: u8,
    /// H.264: `frame_num` of the last written reference picture, and packets lost since.
    h264_last_ref: Option<u32>,
    h264_lost: u64,
}

impl Default for RefTracker {
    fn default() -> Self {
        Self {
            last_number: None,
            unexplained: 0,
            vp8_broken: false,
            last_tl0: None,
            damaged_from_tid: NO_DAMAGED_TID,
            vp9_emitted: Box::new([(0, 0); 256]),
            intact_slots: ALL_SLOTS,
            h264_last_ref: None,
            h264_lost: 0,
        }
    }
}

impl RefTracker {
    /// `count` packets never arrived, between two pictures.
    pub(super) fn lost_packets(&mut self, count: u64) {
        self.unexplained = self.unexplained.saturating_add(count);
        self.h264_lost = self.h264_lost.saturating_add(count);
    }

    pub(super) fn on_keyframe(&mut self) {
        self.vp8_broken = false;
        self.damaged_from_tid = NO_DAMAGED_TID;
        self.intact_slots = ALL_SLOTS;
    }

    /// A picture arrived (in part or whole) and is not written, or is written damaged: what it
    /// would have given later frames is missing.
    pub(super) fn missed(&mut self, refs: &RefInfo) {
        self.account(refs);
        match *refs {
            RefInfo::Vp8 {
                non_reference,
                layer,
                ..
            } => match layer {
                _ if non_reference => {}
                Some(Vp8Layer { tid, .. }) if tid > 0 => {
                    self.damaged_from_tid = self.damaged_from_tid.min(tid);
                }
                // A base layer frame: the next base frame's TL0PICIDX shows the gap.
                Some(_) => {}
                None => self.vp8_broken = true,
            },
            RefInfo::Vp9 { slots, .. } | RefInfo::Av1 { slots, .. } => match slots {
                Some(s) => self.intact_slots &= !s.refreshes,
                None => self.intact_slots = 0,
            },
            // `frame_num` shows a missing reference picture by itself.
            RefInfo::H264 { .. } => {}
            RefInfo::Unknown => self.whole_pictures_lost(),
        }
    }

    /// Whether a complete frame decodes, given what was written and missed before it.
    pub(super) fn verdict(&mut self, refs: &RefInfo) -> Verdict {
        self.account(refs);
        match *refs {
            RefInfo::Unknown => Verdict::NeedKeyframe,
            RefInfo::Vp8 { layer, .. } => match layer {
                Some(layer) => self.vp8_layer_verdict(layer),
                None if self.vp8_broken => Verdict::NeedKeyframe,
                None => Verdict::Decodable,
            },
            RefInfo::Vp9 {
                picture,
                flexible,
                slots,
            } => {
                if let (Some(pic), Some(flex)) = (picture, flexible) {
                    if self.vp9_flexible_intact(pic, &flex) {
                        return Verdict::Decodable;
                    }
                }
                match slots {
                    Some(s) => self.slots_verdict(s),
                    None if flexible.is_some() => Verdict::Skip,
                    None => Verdict::NeedKeyframe,
                }
            }
            RefInfo::Av1 { slots, .. } => match slots {
                Some(s) => self.slots_verdict(s),
                None => Verdict::NeedKeyframe,
            },
            RefInfo::H264 {
                frame_num,
                log2_max_frame_num,
                gaps_allowed,
                ..
            } => {
                let modulo = 1u64 << log2_max_frame_num.min(16);
                // Fewer lost packets than `frame_num` values: it cannot have wrapped around.
                let follows = self.h264_last_ref.is_some_and(|last| {
                    u64::from(frame_num) == (u64::from(last) + 1) % modulo
                        && self.h264_lost < modulo
                });
                if follows && !gaps_allowed {
                    Verdict::Decodable
                } else {
                    Verdict::NeedKeyframe
                }
            }
        }
    }

    /// A frame was written and decodes right: what it gives later frames is intact.
    pub(super) fn record(&mut self, refs: &RefInfo) {
        self.account(refs);
        match *refs {
            RefInfo::Unknown => {}
            RefInfo::Vp8 { layer, .. } => {
                if let Some(Vp8Layer {
                    tid,
                    layer_sync,
                    tl0picidx,
                }) = layer
                {
                    if tid == 0 {
                        self.last_tl0 = Some(tl0picidx);
                    } else if layer_sync && tid == self.damaged_from_tid {
                        // This layer now predicts from intact frames again; the next one up
                        // may not.
                        self.damaged_from_tid += 1;
                    }
                }
            }
            RefInfo::Vp9 {
                picture,
                flexible,
                slots,
            } => {
                if let (Some(pic), Some(flex)) = (picture, flexible) {
                    let top = flex
                        .layers
                        .iter()
                        .take(usize::from(flex.layer_count))
                        .map(|l| l.sid + 1)
                        .max()
                        .unwrap_or(0);
                    self.vp9_emitted[usize::from(pic.value & 0xFF)] = (pic.value, top);
                }
                if let Some(s) = slots {
                    self.intact_slots |= s.refreshes;
                }
            }
            RefInfo::Av1 { slots, .. } => {
                if let Some(s) = slots {
                    self.intact_slots |= s.refreshes;
                }
            }
            RefInfo::H264 {
                frame_num,
                reference,
                ..
            } => {
                if reference {
                    self.h264_last_ref = Some(frame_num);
                    self.h264_lost = 0;
                }
            }
        }
    }

    /// Settles lost packets with the picture that follows them: when its number follows the
    /// last one seen, the loss was inside pictures seen (each judged by its own evidence);
    /// otherwise whole pictures may be gone.
    fn account(&mut self, refs: &RefInfo) {
        let number = refs.picture();
        if self.unexplained > 0 {
            let explained = match (number, self.last_number) {
                (Some(n), Some(last)) => n.follows(last) && self.unexplained < n.modulo(),
                _ => false,
            };
            if !explained {
                self.whole_pictures_lost();
            }
            self.unexplained = 0;
        }
        if number.is_some() || !matches!(refs, RefInfo::Unknown) {
            self.last_number = number;
        }
    }

    /// Pictures of unknown kind were lost: every reference they may have written is damaged.
    fn whole_pictures_lost(&mut self) {
        self.vp8_broken = true;
        // TL0PICIDX continuity shows whether the base layer survived; upper layers cannot tell.
        self.damaged_from_tid = self.damaged_from_tid.min(1);
        self.intact_slots = 0;
    }

    fn vp8_layer_verdict(&self, layer: Vp8Layer) -> Verdict {
        let Vp8Layer {
            tid,
            layer_sync,
            tl0picidx,
        } = layer;
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

    fn slots_verdict(&self, slots: SlotRefs) -> Verdict {
        if slots.uses & !self.intact_slots == 0 {
            Verdict::Decodable
        } else if self.intact_slots == 0 {
            Verdict::NeedKeyframe
        } else {
            Verdict::Skip
        }
    }

    /// Every `P_DIFF` of every inter-predicted layer points at a written picture that had
    /// that layer.
    fn vp9_flexible_intact(&self, picture: PictureNumber, flex: &Vp9Flexible) -> bool {
        let modulo = 1u16 << picture.bits.clamp(1, 15);
        flex.layers
            .iter()
            .take(usize::from(flex.layer_count))
            .filter(|l| l.inter_picture)
            .all(|l| {
                l.p_diff_count > 0
                    && l.p_diffs
                        .iter()
                        .take(usize::from(l.p_diff_count))
                        .all(|&d| {
                            let pid =
                                (picture.value % modulo + modulo - u16::from(d) % modulo) % modulo;
                            let (seen, top) = self.vp9_emitted[usize::from(pid & 0xFF)];
                            seen == pid && top > l.sid
                        })
            })
    }
}
