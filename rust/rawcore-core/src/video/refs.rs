//! What a frame may reference after a loss: VP8 temporal layers (`TL0PICIDX` continuity) and
//! VP9 flexible mode (`P_DIFF` to emitted pictures) decide whether a frame is decodable without
//! waiting for the next keyframe.

use crate::depacketize::RefInfo;

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

/// What was emitted, to judge references after a loss.
#[derive(Debug, Clone)]
pub(super) struct RefTracker {
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
    pub(super) fn on_loss(&mut self) {
        // TL0PICIDX continuity shows whether the base layer survived; upper layers cannot tell.
        self.damaged_from_tid = 1;
    }

    pub(super) fn on_keyframe(&mut self) {
        self.damaged_from_tid = NO_DAMAGED_TID;
    }

    pub(super) fn verdict(&self, refs: &RefInfo) -> Verdict {
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

    pub(super) fn record(&mut self, refs: &RefInfo) {
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
