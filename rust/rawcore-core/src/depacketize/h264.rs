//! H.264 RTP payloads (RFC 6184, packetization modes 0 and 1) back into access units.
//!
//! Single NAL unit packets (types 1–23) carry one NAL, STAP-A (24) several with 16-bit sizes,
//! FU-A (28) one NAL split across packets with start and end bits. The interleaved forms (STAP-B,
//! MTAP16/24, FU-B: 25, 26, 27, 29) belong to packetization mode 2, which rawcore refuses: such a
//! packet breaks its frame and is counted. Access units come out length-prefixed (4-byte AVCC, for
//! Matroska) or with Annex-B start codes. SPS and PPS stay in-band and are also collected into an
//! `avcC` record that is handed to the caller whenever it changes.

use super::{FrameMeta, PacketInfo, RefInfo, VideoDepacketizeError, VideoDepacketizer};
use crate::bitstream::h264::{build_avcc, parse_sps, pps_ids, slice_frame_num, slice_start, Sps};

/// NAL unit types rawcore looks at.
mod nal {
    pub const SLICE: u8 = 1;
    pub const IDR: u8 = 5;
    pub const SEI: u8 = 6;
    pub const SPS: u8 = 7;
    pub const PPS: u8 = 8;
    pub const AUD: u8 = 9;
    pub const STAP_A: u8 = 24;
    pub const FU_A: u8 = 28;
}

/// How NAL units are delimited in the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NalFormat {
    /// 4-byte big-endian length before each NAL (`avcC` with lengthSizeMinusOne = 3).
    #[default]
    Avcc,
    /// `00 00 00 01` before each NAL.
    AnnexB,
}

const CODEC: &str = "H.264";

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

/// Whether a NAL of `nal_type` whose body starts with `body` can open an access unit, and
/// whether it proves it does even after a loss (H.264 7.4.1.2.3: AUD and SPS only come first;
/// a slice with `first_mb_in_slice == 0`, whose `ue(v)` is the single bit 1, starts a picture).
fn opens_access_unit(nal_type: u8, body: &[u8]) -> (bool, bool) {
    match nal_type {
        nal::AUD | nal::SPS => (true, true),
        nal::PPS | nal::SEI | 14 | 15 => (true, false),
        nal::SLICE | nal::IDR => {
            let first_mb_zero = body.first().is_some_and(|b| b & 0x80 != 0);
            (first_mb_zero, first_mb_zero)
        }
        _ => (false, false),
    }
}

fn refused(nal_type: u8) -> VideoDepacketizeError {
    VideoDepacketizeError::Refused {
        codec: CODEC,
        packetization: match nal_type {
            25 => "STAP-B",
            26 => "MTAP16",
            27 => "MTAP24",
            29 => "FU-B",
            _ => "reserved NAL unit type",
        },
    }
}

/// Reassembles H.264 access units and tracks the parameter sets.
#[derive(Debug, Clone, Default)]
pub struct H264Depacketizer {
    format: NalFormat,
    sps: Vec<(u32, Vec<u8>)>,
    pps: Vec<(u32, Vec<u8>)>,
    sets_changed: bool,
    size: Option<(u32, u32)>,
    avcc: Option<Vec<u8>>,
    /// The parsed SPS by id, and each PPS's SPS id: what a slice header's `frame_num` needs.
    parsed_sps: Vec<(u32, Sps)>,
    pps_sps: Vec<(u32, u32)>,
}

/// What one access unit contained.
#[derive(Debug, Default)]
struct Unit {
    idr: bool,
    /// Some slice has `nal_ref_idc != 0`.
    reference: bool,
    /// The first slice's `frame_num` and the SPS it was read with.
    frame_num: Option<(u32, Sps)>,
}

impl H264Depacketizer {
    /// A depacketizer writing NAL units in `format`.
    #[must_use]
    pub fn new(format: NalFormat) -> Self {
        Self {
            format,
            ..Self::default()
        }
    }

    /// The current `avcC` record, once an SPS and a PPS were seen.
    #[must_use]
    pub fn avcc(&self) -> Option<&[u8]> {
        self.avcc.as_deref()
    }

    fn open_nal(&self, out: &mut Vec<u8>) -> usize {
        let at = out.len();
        match self.format {
            NalFormat::Avcc => out.extend_from_slice(&[0, 0, 0, 0]),
            NalFormat::AnnexB => out.extend_from_slice(&[0, 0, 0, 1]),
        }
        at
    }

    /// Patches the length of the NAL opened at `at` and records what it is.
    fn close_nal(&mut self, out: &mut [u8], at: usize, unit: &mut Unit) {
        let len = out.len() - at - 4;
        if self.format == NalFormat::Avcc {
            if let Some(prefix) = out.get_mut(at..at + 4) {
                prefix.copy_from_slice(&(len as u32).to_be_bytes());
            }
        }
        let nal_bytes = out.get(at + 4..).unwrap_or_default();
        let Some(&header) = nal_bytes.first() else {
            return;
        };
        let nal_type = header & 0x1F;
        match nal_type {
            nal::SLICE | nal::IDR => {
                unit.idr |= nal_type == nal::IDR;
                unit.reference |= header & 0x60 != 0;
                if unit.frame_num.is_none() {
                    unit.frame_num = self.frame_num(nal_bytes);
                }
            }
            nal::SPS => {
                if let Ok(sps) = parse_sps(nal_bytes) {
                    self.size = Some((sps.width, sps.height));
                    Self::store(&mut self.sps, sps.id, nal_bytes, &mut self.sets_changed);
                    match self.parsed_sps.iter_mut().find(|(id, _)| *id == sps.id) {
                        Some(slot) => slot.1 = sps,
                        None => self.parsed_sps.push((sps.id, sps)),
                    }
                }
            }
            nal::PPS => {
                if let Ok((id, sps_id)) = pps_ids(nal_bytes) {
                    Self::store(&mut self.pps, id, nal_bytes, &mut self.sets_changed);
                    if let Some(slot) = self.pps_sps.iter_mut().find(|(p, _)| *p == id) {
                        slot.1 = sps_id;
                    } else if self.pps_sps.len() < 256 {
                        // Bounded like the PPS list: 256 ids.
                        self.pps_sps.push((id, sps_id));
                    }
                }
            }
            _ => {}
        }
    }

    /// A slice's `frame_num`, read with the SPS its PPS names (`None` before those arrived).
    fn frame_num(&self, slice: &[u8]) -> Option<(u32, Sps)> {
        let pps = slice_start(slice).ok()?.pps_id;
        let (_, sps_id) = self.pps_sps.iter().find(|(p, _)| *p == pps)?;
        let (_, sps) = self.parsed_sps.iter().find(|(s, _)| s == sps_id)?;
        Some((slice_frame_num(slice, sps).ok()?, *sps))
    }

    fn store(sets: &mut Vec<(u32, Vec<u8>)>, id: u32, nal_bytes: &[u8], changed: &mut bool) {
        let room = sets.len() < 256;
        match sets.iter_mut().find(|(i, _)| *i == id) {
            Some((_, bytes)) if bytes.as_slice() == nal_bytes => {}
            Some((_, bytes)) => {
                bytes.clear();
                bytes.extend_from_slice(nal_bytes);
                *changed = true;
            }
            // Bounded by the id ranges: 32 SPS, 256 PPS.
            None if room => {
                sets.push((id, nal_bytes.to_vec()));
                sets.sort_by_key(|(i, _)| *i);
                *changed = true;
            }
            None => {}
        }
    }

    fn single(&mut self, nal_bytes: &[u8], out: &mut Vec<u8>, unit: &mut Unit) {
        let at = self.open_nal(out);
        out.extend_from_slice(nal_bytes);
        self.close_nal(out, at, unit);
    }
}

impl VideoDepacketizer for H264Depacketizer {
    fn inspect(&self, payload: &[u8]) -> Result<PacketInfo, VideoDepacketizeError> {
        let &header = payload.first().ok_or(descriptor("empty payload"))?;
        if header & 0x80 != 0 {
            return Err(descriptor("forbidden_zero_bit set"));
        }
        let (starts, definitive) = match header & 0x1F {
            t @ 1..=23 => opens_access_unit(t, payload.get(1..).unwrap_or_default()),
            nal::STAP_A => {
                let first = payload
                    .get(3..)
                    .filter(|n| !n.is_empty())
                    .ok_or(descriptor("STAP-A without a NAL unit"))?;
                opens_access_unit(first[0] & 0x1F, first.get(1..).unwrap_or_default())
            }
            nal::FU_A => {
                let &fu = payload
                    .get(1)
                    .ok_or(descriptor("FU-A without its FU header"))?;
                if fu & 0x80 == 0 {
                    (false, false)
                } else {
                    opens_access_unit(fu & 0x1F, payload.get(2..).unwrap_or_default())
                }
            }
            t => return Err(refused(t)),
        };
        Ok(PacketInfo {
            starts_frame: starts,
            definitive_start: definitive,
            ..PacketInfo::default()
        })
    }

    fn assemble(
        &mut self,
        packets: &[(PacketInfo, &[u8])],
        out: &mut Vec<u8>,
    ) -> Result<FrameMeta, VideoDepacketizeError> {
        out.clear();
        let mut unit = Unit::default();
        // Where the open FU-A NAL starts in `out`.
        let mut open: Option<usize> = None;
        for (_, payload) in packets {
            let &header = payload.first().ok_or(descriptor("empty payload"))?;
            match header & 0x1F {
                1..=23 => {
                    if open.is_some() {
                        return Err(fragment("FU-A interrupted by another NAL unit"));
                    }
                    self.single(payload, out, &mut unit);
                }
                nal::STAP_A => {
                    if open.is_some() {
                        return Err(fragment("FU-A interrupted by a STAP-A"));
                    }
                    let mut rest = payload.get(1..).unwrap_or_default();
                    while !rest.is_empty() {
                        let Some(&[hi, lo]) = rest.get(..2) else {
                            return Err(descriptor("STAP-A size cut short"));
                        };
                        let size = usize::from(u16::from_be_bytes([hi, lo]));
                        let nal_bytes = rest
                            .get(2..2 + size)
                            .ok_or(descriptor("STAP-A NAL size beyond the payload"))?;
                        if !nal_bytes.is_empty() {
                            self.single(nal_bytes, out, &mut unit);
                        }
                        rest = rest.get(2 + size..).unwrap_or_default();
                    }
                }
                nal::FU_A => {
                    let &fu = payload
                        .get(1)
                        .ok_or(descriptor("FU-A without its FU header"))?;
                    let body = payload.get(2..).unwrap_or_default();
                    let (start, end) = (fu & 0x80 != 0, fu & 0x40 != 0);
                    if start {
                        if let Some(at) = open.take() {
                            // A new start while one is open: the partial NAL cannot be completed.
                            out.truncate(at);
                            return Err(fragment("FU-A start while a fragmented NAL is open"));
                        }
                        let at = self.open_nal(out);
                        out.push(header & 0xE0 | fu & 0x1F);
                        open = Some(at);
                    } else if open.is_none() {
                        return Err(fragment("FU-A continuation without its start"));
                    }
                    out.extend_from_slice(body);
                    if end {
                        if let Some(at) = open.take() {
                            self.close_nal(out, at, &mut unit);
                        }
                    }
                }
                t => return Err(refused(t)),
            }
        }
        if open.is_some() {
            return Err(fragment("FU-A without its end"));
        }
        let mut config = None;
        if self.sets_changed {
            self.sets_changed = false;
            let sps: Vec<&[u8]> = self.sps.iter().map(|(_, b)| b.as_slice()).collect();
            let pps: Vec<&[u8]> = self.pps.iter().map(|(_, b)| b.as_slice()).collect();
            if let Some(avcc) = build_avcc(&sps, &pps) {
                if self.avcc.as_ref() != Some(&avcc) {
                    config = Some(avcc.clone());
                    self.avcc = Some(avcc);
                }
            }
        }
        // An IDR is only a place to start decoding once the parameter sets are known.
        let keyframe = unit.idr && self.avcc.is_some();
        let refs = match unit.frame_num {
            Some((frame_num, sps)) => RefInfo::H264 {
                frame_num,
                log2_max_frame_num: sps.log2_max_frame_num,
                reference: unit.reference,
                gaps_allowed: sps.gaps_in_frame_num_allowed,
            },
            None => RefInfo::Unknown,
        };
        Ok(FrameMeta {
            keyframe,
            size: if keyframe { self.size } else { None },
            config,
            refs,
        })
    }
}

#[cfg(test)]
mod tests {
    // Case tables spell their row types inline, next to the rows.
    #![allow(clippy::type_complexity, clippy::items_after_statements)]

    use super::*;
    use proptest::prelude::*;

    const SPS: &[u8] = &[
        0x67, 0x64, 0x00, 0x14, 0xac, 0xd9, 0x41, 0x41, 0x9f, 0x9f, 0x01, 0x6a, 0x0c, 0x0c, 0x0d,
        0x4a, 0x00, 0x00, 0x03, 0x00, 0x02, 0x00, 0x00, 0x03, 0x00, 0x79, 0x1e, 0x28, 0x53, 0x2c,
    ];
    const PPS: &[u8] = &[0x68, 0xeb, 0xec, 0xb2, 0x2c];

    fn stap_a(nals: &[&[u8]]) -> Vec<u8> {
        let mut out = vec![24];
        for n in nals {
            out.extend_from_slice(&(n.len() as u16).to_be_bytes());
            out.extend_from_slice(n);
        }
        out
    }

    fn run(payloads: &[Vec<u8>]) -> (Result<FrameMeta, VideoDepacketizeError>, Vec<u8>) {
        let mut d = H264Depacketizer::new(NalFormat::Avcc);
        let packets: Vec<_> = payloads
            .iter()
            .map(|p| (d.inspect(p).unwrap_or_default(), p.as_slice()))
            .collect();
        let mut out = Vec::new();
        let meta = d.assemble(&packets, &mut out);
        (meta, out)
    }

    fn avcc_nals(mut data: &[u8]) -> Vec<Vec<u8>> {
        let mut nals = Vec::new();
        while let Some(&[a, b, c, d]) = data.get(..4) {
            let len = u32::from_be_bytes([a, b, c, d]) as usize;
            nals.push(data[4..4 + len].to_vec());
            data = &data[4 + len..];
        }
        nals
    }

    #[test]
    #[allow(clippy::too_many_lines)] // one table of cases reads best in one piece
    fn assemble_cases() {
        let idr: &[u8] = &[0x65, 0x88, 0x84, 0x00, 0x33];
        let fu = |s: bool, e: bool, body: &[u8]| {
            let mut p = vec![0x7C, u8::from(s) << 7 | u8::from(e) << 6 | 5];
            p.extend_from_slice(body);
            p
        };
        struct Case {
            name: &'static str,
            payloads: Vec<Vec<u8>>,
            want: Result<(bool, Vec<Vec<u8>>), &'static str>,
        }
        let cases = vec![
            Case {
                name: "STAP-A with SPS, PPS and IDR is a keyframe with all three NALs",
                payloads: vec![stap_a(&[SPS, PPS, idr])],
                want: Ok((true, vec![SPS.to_vec(), PPS.to_vec(), idr.to_vec()])),
            },
            Case {
                name: "IDR without known parameter sets is not a keyframe",
                payloads: vec![idr.to_vec()],
                want: Ok((false, vec![idr.to_vec()])),
            },
            Case {
                name: "FU-A across three packets rebuilds the NAL header",
                payloads: vec![
                    stap_a(&[SPS, PPS]),
                    fu(true, false, &[0x88, 1]),
                    fu(false, false, &[2, 3]),
                    fu(false, true, &[4]),
                ],
                want: Ok((
                    true,
                    vec![SPS.to_vec(), PPS.to_vec(), vec![0x65, 0x88, 1, 2, 3, 4]],
                )),
            },
            Case {
                name: "FU-A continuation without start is refused",
                payloads: vec![fu(false, true, &[1])],
                want: Err("FU-A continuation without its start"),
            },
            Case {
                name: "new FU-A start while one is open discards the partial NAL",
                payloads: vec![fu(true, false, &[0x88]), fu(true, true, &[0x88])],
                want: Err("FU-A start while a fragmented NAL is open"),
            },
            Case {
                name: "FU-A without end leaves the frame broken",
                payloads: vec![fu(true, false, &[0x88])],
                want: Err("FU-A without its end"),
            },
            Case {
                name: "STAP-A with a truncated NAL length is refused",
                payloads: vec![{
                    let mut p = stap_a(&[SPS]);
                    p.extend_from_slice(&[0, 9, 0x68]);
                    p
                }],
                want: Err("STAP-A NAL size beyond the payload"),
            },
            Case {
                name: "FU-B is refused",
                payloads: vec![vec![0x7D, 0x85, 0, 1, 0x88]],
                want: Err("FU-B"),
            },
            Case {
                name: "STAP-B is refused",
                payloads: vec![vec![0x79, 0, 1, 0, 1, 0x65]],
                want: Err("STAP-B"),
            },
        ];
        for case in cases {
            let (got, out) = run(&case.payloads);
            match (got, case.want) {
                (Ok(meta), Ok((key, nals))) => {
                    assert_eq!(meta.keyframe, key, "{}", case.name);
                    assert_eq!(avcc_nals(&out), nals, "{}", case.name);
                    if key {
                        assert_eq!(meta.size, Some((320, 180)), "{}", case.name);
                        assert!(meta.config.is_some(), "{}: avcC announced", case.name);
                    }
                }
                (Err(e), Err(want)) => {
                    assert!(e.to_string().contains(want), "{}: {e}", case.name);
                }
                (got, _) => panic!("{}: got {got:?}", case.name),
            }
        }
    }

    #[test]
    fn inspect_cases() {
        let d = H264Depacketizer::default();
        let cases: [(&str, &[u8], Result<(bool, bool), ()>); 8] = [
            (
                "SPS opens an access unit for sure",
                &[0x67, 0x42],
                Ok((true, true)),
            ),
            (
                "slice with first_mb 0 opens a picture",
                &[0x41, 0x9a],
                Ok((true, true)),
            ),
            (
                "slice with first_mb > 0 continues a picture",
                &[0x41, 0x4a],
                Ok((false, false)),
            ),
            (
                "PPS may open one but proves nothing",
                &[0x68, 0xce],
                Ok((true, false)),
            ),
            (
                "FU-A middle does not start",
                &[0x7C, 0x05, 1],
                Ok((false, false)),
            ),
            (
                "STAP-A starting with SPS",
                &[0x78, 0, 2, 0x67, 0x42],
                Ok((true, true)),
            ),
            ("MTAP16 refused", &[0x7A, 0], Err(())),
            ("forbidden bit", &[0xE7], Err(())),
        ];
        for (name, input, want) in cases {
            let got = d
                .inspect(input)
                .map(|i| (i.starts_frame, i.definitive_start))
                .map_err(|_| ());
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn annexb_uses_start_codes_and_changed_pps_is_reported() {
        let mut d = H264Depacketizer::new(NalFormat::AnnexB);
        let p = stap_a(&[SPS, PPS, &[0x65, 0x88]]);
        let mut out = Vec::new();
        let info = d.inspect(&p).expect("valid");
        let first = d.assemble(&[(info, &p)], &mut out).expect("valid");
        assert_eq!(&out[..5], &[0, 0, 0, 1, 0x67]);
        assert!(first.config.is_some());
        let again = d.assemble(&[(info, &p)], &mut out).expect("valid");
        assert!(again.config.is_none(), "same parameter sets, no new record");
        let p2 = stap_a(&[SPS, &[0x68, 0xeb, 0xec, 0xb2, 0x2d], &[0x65, 0x88]]);
        let changed = d.assemble(&[(info, &p2)], &mut out).expect("valid");
        assert!(changed.config.is_some(), "changed PPS gives a new record");
    }

    proptest! {
        #[test]
        fn never_panics(payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..32), 1..4)) {
            let mut d = H264Depacketizer::default();
            let packets: Vec<_> = payloads.iter().map(|p| (d.inspect(p).unwrap_or_default(), p.as_slice())).collect();
            let _ = d.assemble(&packets, &mut Vec::new());
        }
    }
}
