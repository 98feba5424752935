//! VP8 RTP payloads (RFC 7741) back into VP8 frames.
//!
//! Each packet starts with a payload descriptor: `X R N S R PID`, then when `X` is set a byte of
//! `I L T K` flags that announce a 7- or 15-bit `PictureID`, the `TL0PICIDX` and a byte of `TID Y
//! KEYIDX`. A frame starts with the packet whose `S` bit is set and partition index is 0; the
//! frame itself is the concatenation of the payloads after their descriptors. The temporal layer
//! fields let [`crate::video`] keep decoding the base layer after an upper-layer frame was lost.

use super::{
    FrameMeta, LayerInfo, PacketInfo, PictureNumber, RefInfo, VideoDepacketizeError,
    VideoDepacketizer, Vp8Layer,
};
use crate::bitstream::vp8::parse_header;

/// The fields of a VP8 payload descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Vp8Descriptor {
    /// `N`: no other frame references this one.
    pub non_reference: bool,
    /// `S`: the packet starts a partition.
    pub partition_start: bool,
    /// `PID`: the partition index.
    pub partition_index: u8,
    /// `PictureID` and its width in bits (7 or 15).
    pub picture_id: Option<(u16, u8)>,
    /// `TL0PICIDX`.
    pub tl0picidx: Option<u8>,
    /// Temporal layer index.
    pub tid: Option<u8>,
    /// `Y`: the frame depends only on the base layer frame.
    pub layer_sync: bool,
    /// `KEYIDX`.
    pub key_idx: Option<u8>,
    /// Bytes of the descriptor; the VP8 data follows.
    pub len: usize,
}

fn short(what: &'static str) -> VideoDepacketizeError {
    VideoDepacketizeError::Descriptor {
        codec: "VP8",
        reason: what,
    }
}

/// Parses the payload descriptor at the start of a VP8 RTP payload.
#[allow(clippy::many_single_char_names)] // the RFC's own flag names read best
pub fn parse_descriptor(payload: &[u8]) -> Result<Vp8Descriptor, VideoDepacketizeError> {
    let mut at = 0usize;
    let mut next = |what| {
        let b = payload.get(at).copied().ok_or_else(|| short(what));
        at += 1;
        b
    };
    let b0 = next("empty payload")?;
    let mut d = Vp8Descriptor {
        non_reference: b0 & 0x20 != 0,
        partition_start: b0 & 0x10 != 0,
        partition_index: b0 & 0x0F,
        ..Vp8Descriptor::default()
    };
    if b0 & 0x80 != 0 {
        let x = next("extension byte missing")?;
        let (i, l, t, k) = (x & 0x80 != 0, x & 0x40 != 0, x & 0x20 != 0, x & 0x10 != 0);
        if i {
            let p0 = next("PictureID missing")?;
            d.picture_id = Some(if p0 & 0x80 != 0 {
                let p1 = next("15-bit PictureID cut short")?;
                (u16::from(p0 & 0x7F) << 8 | u16::from(p1), 15)
            } else {
                (u16::from(p0), 7)
            });
        }
        if l {
            d.tl0picidx = Some(next("TL0PICIDX missing")?);
        }
        if t || k {
            let tk = next("TID/KEYIDX byte missing")?;
            if t {
                d.tid = Some(tk >> 6);
                d.layer_sync = tk & 0x20 != 0;
            }
            if k {
                d.key_idx = Some(tk & 0x1F);
            }
        }
    }
    d.len = at;
    if payload.len() <= d.len {
        return Err(short("no VP8 data after the descriptor"));
    }
    Ok(d)
}

/// Reassembles VP8 frames.
#[derive(Debug, Clone, Default)]
pub struct Vp8Depacketizer;

impl Vp8Depacketizer {
    /// The facts of a frame from its bitstream header and its packets' descriptors.
    fn meta(
        &self,
        frame: &[u8],
        packets: &[(PacketInfo, &[u8])],
    ) -> Result<FrameMeta, VideoDepacketizeError> {
        let header = parse_header(frame).map_err(|source| VideoDepacketizeError::Bitstream {
            codec: "VP8",
            source,
        })?;
        Ok(FrameMeta {
            keyframe: header.keyframe,
            size: header.size,
            config: None,
            refs: self.partial_refs(packets),
        })
    }
}

impl VideoDepacketizer for Vp8Depacketizer {
    fn inspect(&self, payload: &[u8]) -> Result<PacketInfo, VideoDepacketizeError> {
        let d = parse_descriptor(payload)?;
        let starts = d.partition_start && d.partition_index == 0;
        Ok(PacketInfo {
            starts_frame: starts,
            definitive_start: starts,
            header_len: d.len as u16,
            layers: LayerInfo {
                picture_id: d
                    .picture_id
                    .map(|(value, bits)| PictureNumber { value, bits }),
                tid: d.tid,
                layer_sync: d.layer_sync,
                tl0picidx: d.tl0picidx,
                non_reference: d.non_reference,
            },
        })
    }

    fn assemble(
        &mut self,
        packets: &[(PacketInfo, &[u8])],
        out: &mut Vec<u8>,
    ) -> Result<FrameMeta, VideoDepacketizeError> {
        out.clear();
        for (info, payload) in packets {
            out.extend_from_slice(
                payload
                    .get(usize::from(info.header_len)..)
                    .unwrap_or_default(),
            );
        }
        self.meta(out, packets)
    }

    fn assemble_in_place<'p>(
        &mut self,
        packets: &[(PacketInfo, &'p [u8])],
    ) -> Option<Result<(FrameMeta, &'p [u8]), VideoDepacketizeError>> {
        let [(info, payload)] = packets else {
            return None;
        };
        let frame = payload
            .get(usize::from(info.header_len)..)
            .unwrap_or_default();
        Some(self.meta(frame, packets).map(|meta| (meta, frame)))
    }

    /// Every packet's descriptor repeats the picture's `PictureID`, `N` and layer fields, so
    /// any packet of a picture tells them.
    fn partial_refs(&self, packets: &[(PacketInfo, &[u8])]) -> RefInfo {
        let Some((first, _)) = packets.first() else {
            return RefInfo::Unknown;
        };
        let l = first.layers;
        RefInfo::Vp8 {
            picture: l.picture_id,
            non_reference: l.non_reference,
            layer: match (l.tid, l.tl0picidx) {
                (Some(tid), Some(tl0picidx)) => Some(Vp8Layer {
                    tid,
                    layer_sync: l.layer_sync,
                    tl0picidx,
                }),
                _ => None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    // Case tables spell their row types inline, next to the rows.
    #![allow(clippy::type_complexity, clippy::items_after_statements)]

    use super::*;
    use proptest::prelude::*;

    #[test]
    fn descriptor_cases() {
        type Want = Result<
            (
                bool,
                u8,
                Option<(u16, u8)>,
                Option<u8>,
                Option<u8>,
                bool,
                usize,
            ),
            (),
        >;
        let cases: [(&str, &[u8], Want); 10] = [
            (
                "minimal descriptor starting partition 0",
                &[0x10, 0x9d],
                Ok((true, 0, None, None, None, false, 1)),
            ),
            (
                "continuation of partition 1",
                &[0x01, 0],
                Ok((false, 1, None, None, None, false, 1)),
            ),
            (
                "7-bit PictureID",
                &[0x90, 0x80, 0x05, 0],
                Ok((true, 0, Some((5, 7)), None, None, false, 3)),
            ),
            (
                "15-bit PictureID",
                &[0x90, 0x80, 0x81, 0x02, 0],
                Ok((true, 0, Some((0x102, 15)), None, None, false, 4)),
            ),
            (
                "all extensions: PictureID, TL0PICIDX, TID with Y, KEYIDX",
                &[0x90, 0xF0, 0x12, 0x07, 0b1010_0011, 0],
                Ok((true, 0, Some((0x12, 7)), Some(7), Some(2), true, 5)),
            ),
            (
                "K alone still takes the TID byte",
                &[0x90, 0x10, 0x03, 0],
                Ok((true, 0, None, None, None, false, 3)),
            ),
            ("extension byte missing", &[0x90], Err(())),
            ("15-bit PictureID cut short", &[0x90, 0x80, 0x81], Err(())),
            ("descriptor without data", &[0x10], Err(())),
            ("empty payload", &[], Err(())),
        ];
        for (name, input, want) in cases {
            let got = parse_descriptor(input)
                .map(|d| {
                    (
                        d.partition_start,
                        d.partition_index,
                        d.picture_id,
                        d.tl0picidx,
                        d.tid,
                        d.layer_sync,
                        d.len,
                    )
                })
                .map_err(|_| ());
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn keyframe_is_reassembled_with_its_size() {
        let p1: &[u8] = &[0x10, 0x30, 0x51, 0x00, 0x9d, 0x01];
        let p2: &[u8] = &[0x00, 0x2a, 0x40, 0x01, 0xb4, 0x00, 0x00];
        let mut d = Vp8Depacketizer;
        let packets: Vec<_> = [p1, p2]
            .iter()
            .map(|p| (d.inspect(p).expect("valid"), *p))
            .collect();
        assert!(packets[0].0.starts_frame && !packets[1].0.starts_frame);
        let mut out = Vec::new();
        let meta = d.assemble(&packets, &mut out).expect("valid keyframe");
        assert!(meta.keyframe);
        assert_eq!(meta.size, Some((320, 180)));
        assert_eq!(
            out,
            [0x30, 0x51, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xb4, 0x00, 0x00]
        );
    }

    #[test]
    fn a_frame_in_one_packet_is_its_payload_after_the_descriptor() {
        let cases: [(&str, &[u8], Option<Option<(u32, u32)>>); 4] = [
            (
                "a keyframe, short descriptor",
                &[
                    0x10, 0x30, 0x51, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xb4, 0x00,
                ],
                Some(Some((320, 180))),
            ),
            (
                "an inter frame, extended descriptor with a 15-bit PictureID",
                &[0x90, 0x80, 0x81, 0x23, 0x31, 0x02, 0x00, 0x77],
                Some(None),
            ),
            ("a frame whose header is cut off", &[0x10, 0x30, 0x51], None),
            (
                "a keyframe without its start code",
                &[0x10, 0x30, 0x51, 0x00, 0, 0, 0, 0, 0, 0],
                None,
            ),
        ];
        for (name, payload, want) in cases {
            let mut d = Vp8Depacketizer;
            let packets = [(d.inspect(payload).expect(name), payload)];
            let mut out = Vec::new();
            let copied = d.assemble(&packets, &mut out);
            let in_place = d.assemble_in_place(&packets).expect("one packet: in place");
            match (want, copied, in_place) {
                (Some(size), Ok(meta), Ok((meta_in_place, frame))) => {
                    assert_eq!(meta, meta_in_place, "{name}");
                    assert_eq!(meta.size, size, "{name}");
                    assert_eq!(frame, out.as_slice(), "{name}");
                    assert!(
                        std::ptr::eq(
                            frame.as_ptr(),
                            payload[payload.len() - frame.len()..].as_ptr()
                        ),
                        "{name}: not copied"
                    );
                }
                (None, Err(_), Err(_)) => {}
                (_, copied, in_place) => panic!("{name}: {copied:?} / {in_place:?}"),
            }
        }
        let two: &[&[u8]] = &[
            &[0x10, 0x30, 0x51, 0x00, 0x9d, 0x01],
            &[0x00, 0x2a, 0x40, 0x01, 0xb4, 0x00, 0x00],
        ];
        let mut d = Vp8Depacketizer;
        let packets: Vec<_> = two
            .iter()
            .map(|p| (d.inspect(p).expect("valid"), *p))
            .collect();
        assert!(
            d.assemble_in_place(&packets).is_none(),
            "two packets are assembled"
        );
    }

    proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..24)) {
            let mut d = Vp8Depacketizer;
            if let Ok(info) = d.inspect(&data) {
                let _ = d.assemble(&[(info, &data)], &mut Vec::new());
            }
        }
    }
}
