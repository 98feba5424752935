//! AV1 RTP payloads (the AOM "RTP Payload Format for AV1") back into temporal units.
//!
//! Each packet starts with an aggregation header `Z Y W N`: `Z` says the first element continues
//! an OBU from the previous packet, `Y` that the last element continues in the next one, `W` how
//! many elements there are (0: each prefixed by its `leb128` length; 1–3: all but the last
//! prefixed) and `N` that the packet starts a new coded video sequence. The OBUs are written back
//! in the low-overhead bitstream format that Matroska and WebM store: every OBU with
//! `obu_has_size_field` set and its size re-encoded, extension headers kept, temporal delimiters
//! and tile lists dropped. The sequence header gives the `av1C` record and the picture size.

use super::{
    FrameMeta, PacketInfo, PictureNumber, RefInfo, SlotRefs, VideoDepacketizeError,
    VideoDepacketizer,
};
use crate::bitstream::av1::{
    build_av1c, frame_is_key, obu_type, parse_frame_refs, parse_sequence_header, split_obu,
    FrameRefs, Obu, SequenceHeader,
};
use crate::bitstream::{read_leb128, write_leb128};

const CODEC: &str = "AV1";

fn descriptor(reason: &'static str) -> VideoDepacketizeError {
    VideoDepacketizeError::Descriptor {
        codec: CODEC,
        reason,
    }
}

fn fragment(reason: &'static str) -> VideoDepacketizeError {
    VideoDepacketizeError::Fragment {
        codec: CODEC,
        reason,
    }
}

/// The aggregation header of an AV1 RTP payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AggregationHeader {
    /// `Z`: the first element continues an OBU from the previous packet.
    pub continues: bool,
    /// `Y`: the last element continues in the next packet.
    pub continued: bool,
    /// `W`: element count (0: every element is length-prefixed).
    pub count: u8,
    /// `N`: first packet of a coded video sequence.
    pub new_sequence: bool,
}

impl AggregationHeader {
    /// Reads the header byte.
    #[must_use]
    pub fn parse(byte: u8) -> Self {
        Self {
            continues: byte & 0x80 != 0,
            continued: byte & 0x40 != 0,
            count: byte >> 4 & 3,
            new_sequence: byte & 0x08 != 0,
        }
    }
}

/// Splits the elements after the aggregation header.
pub fn elements(payload: &[u8]) -> Result<(AggregationHeader, Vec<&[u8]>), VideoDepacketizeError> {
    let (&first, mut rest) = payload.split_first().ok_or(descriptor("empty payload"))?;
    let header = AggregationHeader::parse(first);
    let mut out = Vec::with_capacity(usize::from(header.count.max(1)));
    let mut index = 0u8;
    while !rest.is_empty() {
        index += 1;
        let last_unprefixed = header.count != 0 && index == header.count;
        if last_unprefixed {
            out.push(rest);
            break;
        }
        let (len, used) = read_leb128(rest).map_err(|_| descriptor("bad OBU element length"))?;
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        let element = rest
            .get(used..used.saturating_add(len))
            .ok_or(descriptor("OBU element length beyond the payload"))?;
        out.push(element);
        rest = rest.get(used + len..).unwrap_or_default();
    }
    if header.count != 0 && usize::from(header.count) != out.len() {
        return Err(descriptor("fewer OBU elements than W announces"));
    }
    Ok((header, out))
}

/// Reassembles AV1 temporal units.
#[derive(Debug, Clone, Default)]
pub struct Av1Depacketizer {
    fragment: Vec<u8>,
    seq: Option<SequenceHeader>,
    seq_obu: Vec<u8>,
    av1c: Option<Vec<u8>>,
}

/// What one temporal unit contained.
#[derive(Debug, Default)]
struct Unit {
    has_sequence_header: bool,
    seq_changed: bool,
    /// `Some(is_key)` once the first frame header was read.
    first_frame_key: Option<bool>,
    /// Frame headers read, and the slots they read and write together (`None` once one could
    /// not be read).
    frames: u8,
    slots: Option<SlotRefs>,
    /// The first frame's references.
    first: Option<FrameRefs>,
}

impl Unit {
    fn new() -> Self {
        Self {
            slots: Some(SlotRefs::default()),
            ..Self::default()
        }
    }

    /// The unit's reference information: its slots, and its `order_hint` as the number that
    /// counts units when it is one shown frame.
    fn refs(&self, seq: Option<&SequenceHeader>) -> RefInfo {
        let picture = match (self.frames, self.first, seq) {
            (1, Some(f), Some(seq)) if f.shown && !f.shows_existing => {
                f.order_hint.map(|hint| PictureNumber {
                    value: hint as u16,
                    bits: seq.frames.order_hint_bits,
                })
            }
            _ => None,
        };
        RefInfo::Av1 {
            picture,
            slots: if self.frames > 0 { self.slots } else { None },
        }
    }
}

/// The references of a frame (or frame header) OBU, its layer ids from the extension header.
fn frame_refs(obu: &Obu<'_>, seq: &SequenceHeader) -> Option<FrameRefs> {
    let ext = obu.header.get(1).copied().unwrap_or(0);
    parse_frame_refs(obu.payload, seq, ext >> 5, ext >> 3 & 3).ok()
}

impl Av1Depacketizer {
    /// A fresh depacketizer.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes one complete OBU element in the low-overhead format.
    fn write_obu(
        &mut self,
        element: &[u8],
        out: &mut Vec<u8>,
        unit: &mut Unit,
    ) -> Result<(), VideoDepacketizeError> {
        let (obu, _) = split_obu(element).map_err(|source| VideoDepacketizeError::Bitstream {
            codec: CODEC,
            source,
        })?;
        if matches!(
            obu.obu_type,
            obu_type::TEMPORAL_DELIMITER | obu_type::TILE_LIST
        ) {
            return Ok(());
        }
        let start = out.len();
        let Some((&h0, ext)) = obu.header.split_first() else {
            return Ok(());
        };
        out.push(h0 | 0x02);
        out.extend_from_slice(ext);
        write_leb128(out, obu.payload.len() as u64);
        out.extend_from_slice(obu.payload);
        match obu.obu_type {
            obu_type::SEQUENCE_HEADER => {
                let seq = parse_sequence_header(obu.payload).map_err(|source| {
                    VideoDepacketizeError::Bitstream {
                        codec: CODEC,
                        source,
                    }
                })?;
                unit.has_sequence_header = true;
                let written = out.get(start..).unwrap_or_default();
                if self.seq_obu != written {
                    self.seq_obu.clear();
                    self.seq_obu.extend_from_slice(written);
                    unit.seq_changed = true;
                }
                self.seq = Some(seq);
            }
            obu_type::FRAME_HEADER | obu_type::FRAME => {
                let refs = self.seq.as_ref().and_then(|seq| frame_refs(&obu, seq));
                if unit.first_frame_key.is_none() {
                    unit.first_frame_key = Some(match &self.seq {
                        Some(seq) => frame_is_key(obu.payload, seq).unwrap_or(false),
                        None => false,
                    });
                    unit.first = refs;
                }
                unit.frames = unit.frames.saturating_add(1);
                unit.slots = match (unit.slots, refs) {
                    (Some(acc), Some(f)) => Some(acc.then(f.refs)),
                    _ => None,
                };
            }
            _ => {}
        }
        Ok(())
    }
}

impl VideoDepacketizer for Av1Depacketizer {
    fn inspect(&self, payload: &[u8]) -> Result<PacketInfo, VideoDepacketizeError> {
        let (header, elements) = elements(payload)?;
        let first_type = elements
            .first()
            .and_then(|e| e.first())
            .map(|b| b >> 3 & 0x0F);
        let starts = !header.continues && first_type.is_some();
        let opens_sequence = header.new_sequence
            || matches!(
                first_type,
                Some(obu_type::SEQUENCE_HEADER | obu_type::TEMPORAL_DELIMITER)
            );
        Ok(PacketInfo {
            starts_frame: starts,
            definitive_start: starts && opens_sequence,
            ..PacketInfo::default()
        })
    }

    fn assemble(
        &mut self,
        packets: &[(PacketInfo, &[u8])],
        out: &mut Vec<u8>,
    ) -> Result<FrameMeta, VideoDepacketizeError> {
        out.clear();
        self.fragment.clear();
        let mut open = false;
        let mut unit = Unit::new();
        for (_, payload) in packets {
            let (header, elements) = elements(payload)?;
            let last = elements.len().saturating_sub(1);
            for (i, element) in elements.into_iter().enumerate() {
                let continues_previous = i == 0 && header.continues;
                let continues_in_next = i == last && header.continued;
                if continues_previous != open {
                    return Err(fragment(if open {
                        "OBU fragment not continued by the next packet"
                    } else {
                        "continuation of an OBU fragment that never began"
                    }));
                }
                if continues_in_next {
                    self.fragment.extend_from_slice(element);
                    open = true;
                } else if open {
                    self.fragment.extend_from_slice(element);
                    let whole = std::mem::take(&mut self.fragment);
                    let written = self.write_obu(&whole, out, &mut unit);
                    self.fragment = whole;
                    self.fragment.clear();
                    written?;
                    open = false;
                } else {
                    self.write_obu(element, out, &mut unit)?;
                }
            }
        }
        if open {
            return Err(fragment("OBU fragment without its end"));
        }
        let mut config = None;
        if unit.seq_changed {
            if let Some(seq) = &self.seq {
                let av1c = build_av1c(seq, &self.seq_obu);
                if self.av1c.as_ref() != Some(&av1c) {
                    config = Some(av1c.clone());
                    self.av1c = Some(av1c);
                }
            }
        }
        // A keyframe only starts decoding with a sequence header in hand.
        let keyframe = unit.first_frame_key == Some(true) && self.seq.is_some();
        let size = if keyframe {
            self.seq.map(|s| (s.max_width, s.max_height))
        } else {
            None
        };
        let _ = unit.has_sequence_header;
        Ok(FrameMeta {
            keyframe,
            size,
            config,
            refs: unit.refs(self.seq.as_ref()),
        })
    }

    /// The first packet of a unit holds the start of its first frame header, which tells the
    /// unit's slots and number when that frame is shown and has no layers: a unit without layers
    /// shows one frame, and encoders put the hidden frames a unit may carry before it, so a
    /// unit that opens with its shown frame holds no other.
    fn partial_refs(&self, packets: &[(PacketInfo, &[u8])]) -> RefInfo {
        let (Some(&(info, payload)), Some(seq)) = (packets.first(), self.seq.as_ref()) else {
            return RefInfo::Unknown;
        };
        if !info.starts_frame {
            return RefInfo::Unknown;
        }
        let Ok((_, elements)) = elements(payload) else {
            return RefInfo::Unknown;
        };
        for element in elements {
            let Ok((obu, _)) = split_obu(element) else {
                break;
            };
            if !matches!(obu.obu_type, obu_type::FRAME_HEADER | obu_type::FRAME) {
                continue;
            }
            let Some(first) = frame_refs(&obu, seq).filter(|f| f.shown && obu.header.len() == 1)
            else {
                break;
            };
            let unit = Unit {
                frames: 1,
                slots: Some(first.refs),
                first: Some(first),
                ..Unit::default()
            };
            return unit.refs(Some(seq));
        }
        RefInfo::Unknown
    }
}

#[cfg(test)]
mod tests {
    // Case tables spell their row types inline, next to the rows.
    #![allow(clippy::type_complexity, clippy::items_after_statements)]

    use super::*;
    use crate::bitstream::av1::Obu;
    use proptest::prelude::*;

    /// `tests/data/av1_160x90_4tu.obu`: 4 temporal units of libaom output (see the README there).
    const STREAM: &[u8] = include_bytes!("../../tests/data/av1_160x90_4tu.obu");

    /// The OBUs of the stream, split into temporal units at each temporal delimiter.
    fn temporal_units() -> Vec<Vec<Obu<'static>>> {
        let mut units: Vec<Vec<Obu<'static>>> = Vec::new();
        let mut rest = STREAM;
        while !rest.is_empty() {
            let (obu, next) = split_obu(rest).expect("valid stream");
            if obu.obu_type == obu_type::TEMPORAL_DELIMITER {
                units.push(Vec::new());
            }
            if let Some(u) = units.last_mut() {
                u.push(obu);
            }
            rest = next;
        }
        units
    }

    /// An OBU as an RTP element: header without the size flag, then the payload.
    fn element(obu: &Obu<'_>) -> Vec<u8> {
        let mut e = obu.header.to_vec();
        e[0] &= !0x02;
        e.extend_from_slice(obu.payload);
        e
    }

    /// Packs elements into one packet with W = 0 (all length-prefixed).
    fn packet(header: u8, elements: &[&[u8]]) -> Vec<u8> {
        let mut p = vec![header];
        for e in elements {
            write_leb128(&mut p, e.len() as u64);
            p.extend_from_slice(e);
        }
        p
    }

    fn run(payloads: &[Vec<u8>]) -> Result<(FrameMeta, Vec<u8>), VideoDepacketizeError> {
        let mut d = Av1Depacketizer::new();
        let packets: Vec<_> = payloads
            .iter()
            .map(|p| (d.inspect(p).unwrap_or_default(), p.as_slice()))
            .collect();
        let mut out = Vec::new();
        d.assemble(&packets, &mut out).map(|m| (m, out))
    }

    /// The expected low-overhead output of a temporal unit: its OBUs minus the delimiter.
    fn expected(unit: &[Obu<'_>]) -> Vec<u8> {
        let mut out = Vec::new();
        for obu in unit
            .iter()
            .filter(|o| o.obu_type != obu_type::TEMPORAL_DELIMITER)
        {
            out.push(obu.header[0] | 0x02);
            out.extend_from_slice(&obu.header[1..]);
            write_leb128(&mut out, obu.payload.len() as u64);
            out.extend_from_slice(obu.payload);
        }
        out
    }

    #[test]
    fn keyframe_unit_with_w2_aggregation() {
        let units = temporal_units();
        assert_eq!(units.len(), 4);
        let key = &units[0];
        let elems: Vec<Vec<u8>> = key.iter().map(element).collect();
        // Delimiter and sequence header length-prefixed, the frame OBU last without a length.
        assert_eq!(elems.len(), 3);
        let mut p = vec![0b0011_1000]; // W = 3, N = 1
        for e in &elems[..2] {
            write_leb128(&mut p, e.len() as u64);
            p.extend_from_slice(e);
        }
        p.extend_from_slice(&elems[2]);
        let (meta, out) = run(&[p]).expect("valid unit");
        assert!(meta.keyframe);
        assert_eq!(meta.size, Some((160, 90)));
        assert!(meta.config.is_some(), "av1C announced");
        assert_eq!(
            out,
            expected(key),
            "temporal delimiter dropped, sizes added"
        );
        // W = 2: sequence header prefixed, frame last.
        let mut p = vec![0b0010_1000];
        write_leb128(&mut p, elems[1].len() as u64);
        p.extend_from_slice(&elems[1]);
        p.extend_from_slice(&elems[2]);
        let (meta, out) = run(&[p]).expect("valid unit");
        assert!(meta.keyframe);
        assert_eq!(out, expected(key));
    }

    #[test]
    fn frame_obu_fragmented_across_three_packets() {
        let units = temporal_units();
        let key = &units[0];
        let seq = element(&key[1]);
        let frame = element(&key[2]);
        let (a, rest) = frame.split_at(frame.len() / 3);
        let (b, c) = rest.split_at(rest.len() / 2);
        let payloads = vec![
            packet(0b0100_1000, &[&seq, a]), // Y = 1, N = 1
            packet(0b1100_0000, &[b]),       // Z = 1, Y = 1
            packet(0b1000_0000, &[c]),       // Z = 1
        ];
        let (meta, out) = run(&payloads).expect("valid unit");
        assert!(meta.keyframe);
        assert_eq!(out, expected(key));
    }

    #[test]
    fn inter_unit_is_not_a_keyframe() {
        let units = temporal_units();
        let mut d = Av1Depacketizer::new();
        let mut out = Vec::new();
        for (i, unit) in units.iter().enumerate() {
            let elems: Vec<Vec<u8>> = unit.iter().map(element).collect();
            let refs: Vec<&[u8]> = elems.iter().map(Vec::as_slice).collect();
            let p = packet(if i == 0 { 0x08 } else { 0 }, &refs);
            let info = d.inspect(&p).expect("valid");
            let meta = d.assemble(&[(info, &p)], &mut out).expect("valid unit");
            assert_eq!(meta.keyframe, i == 0, "unit {i}");
            assert_eq!(out, expected(unit), "unit {i}");
        }
    }

    #[test]
    fn fragment_errors() {
        let cases: [(&str, Vec<Vec<u8>>, &str); 4] = [
            (
                "continuation without start",
                vec![packet(0x80, &[&[0x30, 1]])],
                "never began",
            ),
            (
                "fragment never ended",
                vec![packet(0x40, &[&[0x30, 1]])],
                "without its end",
            ),
            (
                "fragment not continued",
                vec![packet(0x40, &[&[0x30, 1]]), packet(0x00, &[&[0x30, 1]])],
                "not continued",
            ),
            (
                "element length beyond payload",
                vec![vec![0x00, 0x05, 0x30]],
                "beyond the payload",
            ),
        ];
        for (name, payloads, want) in cases {
            let err = run(&payloads).expect_err(name);
            assert!(err.to_string().contains(want), "{name}: {err}");
        }
    }

    #[test]
    fn extension_header_is_kept() {
        // Padding OBU (type 15) with an extension byte, sent without a size field.
        let (_, out) = run(&[packet(0, &[&[0x7C, 0x28, 0xAA, 0xBB]])]).expect("valid");
        assert_eq!(out, [0x7E, 0x28, 0x02, 0xAA, 0xBB]);
    }

    proptest! {
        #[test]
        fn never_panics(payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..32), 1..4)) {
            let _ = run(&payloads);
        }
    }
}
