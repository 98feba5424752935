//! VP9 RTP payloads (RFC 9628) back into VP9 frames and superframes.
//!
//! The payload descriptor starts with `I P L F B E V Z`: a 7- or 15-bit `PictureID`, layer indices
//! (TID, U, SID, D) with `TL0PICIDX` in non-flexible mode, up to three reference differences
//! (`P_DIFF`) in flexible mode, and a scalability structure (SS) with the resolution of each
//! spatial layer. `B` and `E` delimit one spatial layer frame; the layer frames of a picture (one
//! RTP timestamp) are joined into one superframe with an Annex B index, or reduced to one chosen
//! layer and the lower layers it predicts from ([`SpatialLayerPolicy`]).

use super::{
    FrameMeta, LayerInfo, PacketInfo, PictureNumber, RefInfo, SlotRefs, VideoDepacketizeError,
    VideoDepacketizer, Vp9Flexible, Vp9LayerRefs, MAX_SPATIAL_LAYERS,
};
use crate::bitstream::vp9::{
    parse_header, split_superframe, write_superframe_index, MAX_SUPERFRAME_FRAMES,
};

const CODEC: &str = "VP9";

/// Which spatial layers of a picture to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SpatialLayerPolicy {
    /// Every layer, as one superframe.
    #[default]
    All,
    /// The highest layer present, plus the lower layers it predicts from.
    Highest,
    /// Layer `n` (or the highest below it when absent), plus the lower layers it predicts from.
    Index(u8),
}

/// The fields of a VP9 payload descriptor.
#[allow(clippy::struct_excessive_bools)] // one field per flag of the wire format
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Vp9Descriptor {
    /// `P`: inter-picture predicted.
    pub inter_picture: bool,
    /// `F`: flexible mode.
    pub flexible: bool,
    /// `B`: start of a layer frame.
    pub begin: bool,
    /// `E`: end of a layer frame.
    pub end: bool,
    /// `Z`: not used for inter-layer prediction by the upper layer.
    pub not_upper_ref: bool,
    /// `PictureID` and its width in bits.
    pub picture_id: Option<(u16, u8)>,
    /// Temporal layer.
    pub tid: Option<u8>,
    /// `U`: switching up point.
    pub switching_up: bool,
    /// Spatial layer.
    pub sid: Option<u8>,
    /// `D`: predicted from the spatial layer below.
    pub inter_layer: bool,
    /// `TL0PICIDX` (non-flexible mode).
    pub tl0picidx: Option<u8>,
    /// Reference `PictureID` differences (flexible mode).
    pub p_diffs: [u8; 3],
    /// How many of `p_diffs` are used.
    pub p_diff_count: u8,
    /// Resolutions of the scalability structure, per spatial layer, when it has them.
    pub ss_sizes: [(u16, u16); MAX_SPATIAL_LAYERS],
    /// Spatial layers the scalability structure describes (0: no SS).
    pub ss_layers: u8,
    /// Bytes of the descriptor.
    pub len: usize,
}

fn short(reason: &'static str) -> VideoDepacketizeError {
    VideoDepacketizeError::Descriptor {
        codec: CODEC,
        reason,
    }
}

/// Parses the payload descriptor at the start of a VP9 RTP payload.
pub fn parse_descriptor(payload: &[u8]) -> Result<Vp9Descriptor, VideoDepacketizeError> {
    let mut at = 0usize;
    let mut next = |what| {
        let b = payload.get(at).copied().ok_or_else(|| short(what));
        at += 1;
        b
    };
    let b0 = next("empty payload")?;
    let has = |bit: u8| b0 & bit != 0;
    let mut d = Vp9Descriptor {
        inter_picture: has(0x40),
        flexible: has(0x10),
        begin: has(0x08),
        end: has(0x04),
        not_upper_ref: has(0x01),
        ..Vp9Descriptor::default()
    };
    if has(0x80) {
        let p0 = next("PictureID missing")?;
        d.picture_id = Some(if p0 & 0x80 != 0 {
            (
                u16::from(p0 & 0x7F) << 8 | u16::from(next("15-bit PictureID cut short")?),
                15,
            )
        } else {
            (u16::from(p0), 7)
        });
    }
    if has(0x20) {
        let l = next("layer indices missing")?;
        d.tid = Some(l >> 5);
        d.switching_up = l & 0x10 != 0;
        d.sid = Some(l >> 1 & 7);
        d.inter_layer = l & 1 != 0;
        if !d.flexible {
            d.tl0picidx = Some(next("TL0PICIDX missing")?);
        }
    }
    if d.flexible && d.inter_picture {
        loop {
            let r = next("P_DIFF missing")?;
            let Some(slot) = d.p_diffs.get_mut(usize::from(d.p_diff_count)) else {
                return Err(short("more than 3 P_DIFF"));
            };
            *slot = r >> 1;
            d.p_diff_count += 1;
            if r & 1 == 0 {
                break;
            }
        }
    }
    if has(0x02) {
        let ss = next("scalability structure missing")?;
        let layers = (ss >> 5) + 1;
        if ss & 0x10 != 0 {
            for i in 0..usize::from(layers) {
                let w =
                    u16::from_be_bytes([next("SS width cut short")?, next("SS width cut short")?]);
                let h = u16::from_be_bytes([
                    next("SS height cut short")?,
                    next("SS height cut short")?,
                ]);
                if let Some(slot) = d.ss_sizes.get_mut(i) {
                    *slot = (w, h);
                }
            }
            d.ss_layers = layers;
        }
        if ss & 0x08 != 0 {
            let groups = next("SS picture group count missing")?;
            for _ in 0..groups {
                let g = next("SS picture group cut short")?;
                for _ in 0..(g >> 2 & 3) {
                    next("SS picture group P_DIFF cut short")?;
                }
            }
        }
    }
    d.len = at;
    if payload.len() <= d.len {
        return Err(short("no VP9 data after the descriptor"));
    }
    Ok(d)
}

/// One spatial layer frame of a picture, in the scratch buffer.
#[derive(Debug, Clone)]
struct LayerFrame {
    sid: u8,
    inter_layer: bool,
    refs: Vp9LayerRefs,
    range: std::ops::Range<usize>,
}

/// Reassembles VP9 pictures.
#[derive(Debug, Clone, Default)]
pub struct Vp9Depacketizer {
    policy: SpatialLayerPolicy,
    ss_sizes: [(u16, u16); MAX_SPATIAL_LAYERS],
    ss_layers: u8,
    scratch: Vec<u8>,
    layers: Vec<LayerFrame>,
}

impl Vp9Depacketizer {
    /// A depacketizer keeping the layers `policy` selects.
    #[must_use]
    pub fn new(policy: SpatialLayerPolicy) -> Self {
        Self {
            policy,
            ..Self::default()
        }
    }

    /// Indices into `self.layers` of the layers to output, lowest first.
    fn select(&self) -> Result<Vec<usize>, VideoDepacketizeError> {
        let target = match self.policy {
            SpatialLayerPolicy::All => return Ok((0..self.layers.len()).collect()),
            SpatialLayerPolicy::Highest => self.layers.iter().map(|l| l.sid).max(),
            SpatialLayerPolicy::Index(n) => {
                self.layers.iter().map(|l| l.sid).filter(|&s| s <= n).max()
            }
        };
        let Some(mut sid) = target else {
            return Err(short("no spatial layer at or below the chosen index"));
        };
        let mut chosen = Vec::new();
        loop {
            let i = self.layers.iter().position(|l| l.sid == sid).ok_or(short(
                "a layer predicts from a spatial layer that is missing",
            ))?;
            chosen.push(i);
            let below = self.layers.get(i).filter(|l| l.inter_layer && l.sid > 0);
            match below {
                Some(l) => sid = l.sid - 1,
                None => break,
            }
        }
        chosen.reverse();
        Ok(chosen)
    }
}

impl VideoDepacketizer for Vp9Depacketizer {
    fn inspect(&self, payload: &[u8]) -> Result<PacketInfo, VideoDepacketizeError> {
        let d = parse_descriptor(payload)?;
        let starts = d.begin && d.sid.unwrap_or(0) == 0;
        Ok(PacketInfo {
            starts_frame: starts,
            definitive_start: starts,
            header_len: d.len as u16,
            layers: LayerInfo {
                picture_id: d
                    .picture_id
                    .map(|(value, bits)| PictureNumber { value, bits }),
                tid: d.tid,
                layer_sync: d.switching_up,
                tl0picidx: d.tl0picidx,
                non_reference: false,
            },
        })
    }

    #[allow(clippy::too_many_lines)] // layer collection, selection and superframe in one pass
    fn assemble(
        &mut self,
        packets: &[(PacketInfo, &[u8])],
        out: &mut Vec<u8>,
    ) -> Result<FrameMeta, VideoDepacketizeError> {
        out.clear();
        self.scratch.clear();
        self.layers.clear();
        let mut open = false;
        let mut picture_id = None;
        let mut flexible = true;
        for (_, payload) in packets {
            let d = parse_descriptor(payload)?;
            if d.ss_layers > 0 {
                self.ss_sizes = d.ss_sizes;
                self.ss_layers = d.ss_layers;
            }
            picture_id = picture_id.or(d.picture_id);
            flexible &= d.flexible;
            if d.begin {
                if open {
                    return Err(VideoDepacketizeError::Fragment {
                        codec: CODEC,
                        reason: "layer frame begins before the previous one ended",
                    });
                }
                if self.layers.len() >= MAX_SUPERFRAME_FRAMES {
                    return Err(short("more than 8 layer frames in one picture"));
                }
                open = true;
                let start = self.scratch.len();
                self.layers.push(LayerFrame {
                    sid: d.sid.unwrap_or(0),
                    inter_layer: d.inter_layer,
                    refs: Vp9LayerRefs {
                        sid: d.sid.unwrap_or(0),
                        inter_picture: d.inter_picture,
                        p_diffs: d.p_diffs,
                        p_diff_count: d.p_diff_count,
                    },
                    range: start..start,
                });
            } else if !open {
                return Err(VideoDepacketizeError::Fragment {
                    codec: CODEC,
                    reason: "packet continues a layer frame that never began",
                });
            }
            self.scratch
                .extend_from_slice(payload.get(d.len..).unwrap_or_default());
            if let Some(layer) = self.layers.last_mut() {
                layer.range.end = self.scratch.len();
            }
            if d.end {
                open = false;
            }
        }
        if open {
            return Err(VideoDepacketizeError::Fragment {
                codec: CODEC,
                reason: "layer frame without its end",
            });
        }
        let chosen = self.select()?;
        // A layer frame may itself be a superframe (e.g. with a hidden alt-ref frame): flatten.
        let mut frames: Vec<std::ops::Range<usize>> = Vec::new();
        for &i in &chosen {
            let Some(layer) = self.layers.get(i) else {
                continue;
            };
            let data = self.scratch.get(layer.range.clone()).unwrap_or_default();
            for r in split_superframe(data) {
                frames.push(layer.range.start + r.start..layer.range.start + r.end);
            }
        }
        if frames.len() > MAX_SUPERFRAME_FRAMES {
            return Err(short("more than 8 frames in one superframe"));
        }
        let mut sizes = Vec::with_capacity(frames.len());
        for r in &frames {
            out.extend_from_slice(self.scratch.get(r.clone()).unwrap_or_default());
            sizes.push(r.len());
        }
        if frames.len() > 1 {
            write_superframe_index(out, &sizes);
        }
        let bitstream = |source| VideoDepacketizeError::Bitstream {
            codec: CODEC,
            source,
        };
        let first = frames
            .first()
            .and_then(|r| self.scratch.get(r.clone()))
            .unwrap_or_default();
        let header = parse_header(first).map_err(bitstream)?;
        let keyframe = header.keyframe;
        let mut size = None;
        if keyframe {
            let top = chosen.last().and_then(|&i| self.layers.get(i));
            let from_ss = top
                .and_then(|l| self.ss_sizes.get(usize::from(l.sid)))
                .filter(|_| self.ss_layers > 0)
                .map(|&(w, h)| (u32::from(w), u32::from(h)));
            let from_header = frames
                .last()
                .and_then(|r| self.scratch.get(r.clone()))
                .and_then(|f| parse_header(f).ok())
                .and_then(|h| h.size);
            size = from_ss.or(from_header).or(header.size);
        }
        let flexible = (flexible && picture_id.is_some()).then(|| {
            let mut out = Vp9Flexible::default();
            for &i in &chosen {
                if let (Some(l), Some(slot)) = (
                    self.layers.get(i),
                    out.layers.get_mut(usize::from(out.layer_count)),
                ) {
                    *slot = l.refs;
                    out.layer_count += 1;
                }
            }
            out
        });
        // The frames in decoding order, as one: what they read that no earlier one wrote.
        let slots = frames.iter().try_fold(SlotRefs::default(), |acc, r| {
            let frame = self.scratch.get(r.clone()).unwrap_or_default();
            parse_header(frame).ok().map(|h| acc.then(h.refs))
        });
        Ok(FrameMeta {
            keyframe,
            size,
            config: None,
            refs: RefInfo::Vp9 {
                picture: picture_id.map(|(value, bits)| PictureNumber { value, bits }),
                flexible,
                slots,
            },
        })
    }

    /// Any packet gives the `PictureID`; the first packet of a picture of one spatial layer
    /// holds the uncompressed header of its first frame, which tells the slots when that frame
    /// is shown (a shown frame ends a superframe, so it is the picture's only frame).
    fn partial_refs(&self, packets: &[(PacketInfo, &[u8])]) -> RefInfo {
        let Some(&(info, payload)) = packets.first() else {
            return RefInfo::Unknown;
        };
        let Ok(d) = parse_descriptor(payload) else {
            return RefInfo::Unknown;
        };
        let single_layer = d.sid.is_none() || self.ss_layers <= 1;
        let slots = if info.starts_frame && single_layer {
            parse_header(payload.get(d.len..).unwrap_or_default())
                .ok()
                .filter(|h| h.show_frame || h.show_existing_frame)
                .map(|h| h.refs)
        } else {
            None
        };
        RefInfo::Vp9 {
            picture: info.layers.picture_id,
            flexible: None,
            slots,
        }
    }
}

#[cfg(test)]
mod tests {
    // Case tables spell their row types inline, next to the rows.
    #![allow(clippy::type_complexity, clippy::items_after_statements)]

    use super::*;
    use crate::bitstream::vp9::superframe_sizes;
    use proptest::prelude::*;

    const KEY: &[u8] = &[
        0x82, 0x49, 0x83, 0x42, 0x20, 0x13, 0xf0, 0x0b, 0x36, 0x0a, 0x38, 0x24,
    ];
    /// An inter frame header (profile 0, shown, refs found): marker 10, profile 00,
    /// `show_existing_frame` 0, non-key 1, shown 1, `error_resilient_mode` 0.
    const INTER: &[u8] = &[0x86, 0x00, 0x00, 0x02, 0x11, 0x22];

    #[test]
    fn descriptor_cases() {
        type Want = Result<(Option<(u16, u8)>, Option<u8>, Option<u8>, u8, usize), ()>;
        let cases: [(&str, &[u8], Want); 9] = [
            (
                "bare begin-end packet",
                &[0x0C, 0x82],
                Ok((None, None, None, 0, 1)),
            ),
            (
                "15-bit PictureID",
                &[0x8C, 0x81, 0x23, 0x82],
                Ok((Some((0x123, 15)), None, None, 0, 3)),
            ),
            (
                "non-flexible layer indices with TL0PICIDX",
                &[0xAC, 0x05, 0b0100_0011, 9, 0x82],
                Ok((Some((5, 7)), Some(2), Some(1), 0, 4)),
            ),
            (
                "flexible mode with two P_DIFF",
                &[0xDC, 0x05, 0x03, 0x02, 0x86],
                Ok((Some((5, 7)), None, None, 2, 4)),
            ),
            (
                "flexible mode with layer indices has no TL0PICIDX",
                &[0xFC, 0x05, 0x02, 0x02, 0x86],
                Ok((Some((5, 7)), Some(0), Some(1), 1, 4)),
            ),
            (
                "four P_DIFF are refused",
                &[0xDC, 0x05, 0x03, 0x03, 0x03, 0x03, 0x86],
                Err(()),
            ),
            (
                "scalability structure with two resolutions and a picture group",
                &[
                    0x0E, 0x38, 0x00, 0xA0, 0x00, 0x5A, 0x01, 0x40, 0x00, 0xB4, 0x01, 0x04, 0x02,
                    0x82,
                ],
                Ok((None, None, None, 0, 13)),
            ),
            (
                "SS cut inside a resolution",
                &[0x0E, 0x38, 0x00, 0xA0],
                Err(()),
            ),
            ("descriptor without data", &[0x0C], Err(())),
        ];
        for (name, input, want) in cases {
            let got = parse_descriptor(input)
                .map(|d| (d.picture_id, d.tid, d.sid, d.p_diff_count, d.len))
                .map_err(|_| ());
            assert_eq!(got, want, "{name}");
        }
        let ss = parse_descriptor(&[
            0x0E, 0x38, 0x00, 0xA0, 0x00, 0x5A, 0x01, 0x40, 0x00, 0xB4, 0x01, 0x04, 0x02, 0x82,
        ])
        .expect("valid SS");
        assert_eq!(
            (ss.ss_layers, ss.ss_sizes[0], ss.ss_sizes[1]),
            (2, (160, 90), (320, 180))
        );
    }

    /// Packets of one picture: one per spatial layer, each a whole layer frame.
    fn layer_packets(layers: &[(u8, bool, &[u8])]) -> Vec<Vec<u8>> {
        layers
            .iter()
            .map(|&(sid, d, data)| {
                let mut p = vec![0xAC, 0x07, sid << 1 | u8::from(d), 0];
                p.extend_from_slice(data);
                p
            })
            .collect()
    }

    fn assemble(policy: SpatialLayerPolicy, payloads: &[Vec<u8>]) -> (FrameMeta, Vec<u8>) {
        let mut d = Vp9Depacketizer::new(policy);
        let packets: Vec<_> = payloads
            .iter()
            .map(|p| (d.inspect(p).expect("valid descriptor"), p.as_slice()))
            .collect();
        let mut out = Vec::new();
        let meta = d.assemble(&packets, &mut out).expect("valid picture");
        (meta, out)
    }

    #[test]
    fn spatial_layers_become_one_superframe() {
        let cases: [(&str, Vec<(u8, bool, &[u8])>, Vec<usize>); 2] = [
            (
                "two layers",
                vec![(0, false, KEY), (1, true, INTER)],
                vec![KEY.len(), INTER.len()],
            ),
            (
                "three layers",
                vec![(0, false, KEY), (1, true, INTER), (2, true, INTER)],
                vec![KEY.len(), INTER.len(), INTER.len()],
            ),
        ];
        for (name, layers, sizes) in cases {
            let (meta, out) = assemble(SpatialLayerPolicy::All, &layer_packets(&layers));
            assert!(meta.keyframe, "{name}");
            let (parsed, index_len) = superframe_sizes(&out).expect("index present");
            assert_eq!(parsed, sizes, "{name}");
            assert_eq!(out.len(), sizes.iter().sum::<usize>() + index_len, "{name}");
            assert_eq!(&out[..KEY.len()], KEY, "{name}: layer 0 first");
        }
    }

    #[test]
    fn layer_policy_cases() {
        let layers = [(0, false, KEY), (1, true, INTER), (2, false, INTER)];
        let cases: [(&str, SpatialLayerPolicy, usize); 3] = [
            (
                "highest independent layer alone",
                SpatialLayerPolicy::Highest,
                1,
            ),
            (
                "layer 1 brings layer 0 it predicts from",
                SpatialLayerPolicy::Index(1),
                2,
            ),
            ("layer 0 alone", SpatialLayerPolicy::Index(0), 1),
        ];
        for (name, policy, frames) in cases {
            let (_, out) = assemble(policy, &layer_packets(&layers));
            assert_eq!(split_superframe(&out).len(), frames, "{name}");
        }
    }

    #[test]
    fn layer_frame_split_across_packets_is_joined() {
        let p1 = [&[0x08u8][..], &KEY[..5]].concat();
        let p2 = [&[0x04u8][..], &KEY[5..]].concat();
        let (meta, out) = assemble(SpatialLayerPolicy::All, &[p1, p2]);
        assert_eq!(out, KEY);
        assert_eq!(meta.size, Some((320, 180)));
    }

    proptest! {
        #[test]
        fn never_panics(payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..32), 1..4)) {
            let mut d = Vp9Depacketizer::new(SpatialLayerPolicy::Highest);
            let packets: Vec<_> = payloads.iter().map(|p| (d.inspect(p).unwrap_or_default(), p.as_slice())).collect();
            let _ = d.assemble(&packets, &mut Vec::new());
        }
    }
}
