//! Which RTP stream of a capture is the track: one rule for the capture analysis and for audio
//! and video extraction.
//!
//! A capture of one track usually holds one media stream, but it may also carry retransmissions
//! (RTX), FEC, padding-only probes, or a second SSRC after the sender restarted. The rule counts
//! the RTP packets that carry media (padding-only packets do not count) per payload type and
//! SSRC ([`SourceCounter`], or [`count_sources`] over a whole capture), then [`choose_track`]:
//! the payload type is the one the caller names, else the one with the most media packets
//! (ties: the lowest); the SSRC is the one with the most media packets of that payload type
//! (ties: the lowest). Callers that know which payload types are RTX leave them out first (the
//! analysis does); extraction names its payload type. At most [`MAX_SOURCES`] pairs are counted,
//! so a capture of garbage cannot grow the table without bound.

use std::cmp::Reverse;

use crate::rtp::{looks_like_rtcp, RtpPacket};
use crate::rtpdump::{RtpdumpError, RtpdumpReader};

/// (payload type, SSRC) pairs counted per capture; later new pairs are ignored.
pub const MAX_SOURCES: usize = 256;

/// The media packets of one (payload type, SSRC) pair of a capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source {
    /// The payload type.
    pub payload_type: u8,
    /// The SSRC.
    pub ssrc: u32,
    /// Packets with a payload.
    pub packets: u64,
    /// Some packet's first payload byte has bit 2 set: the stereo flag, when it is Opus's TOC.
    pub opus_stereo: bool,
}

/// Counts media packets per (payload type, SSRC), in first-seen order.
#[derive(Debug, Clone, Default)]
pub struct SourceCounter {
    sources: Vec<Source>,
    /// The pair counted last: consecutive packets mostly share it.
    last: usize,
}

impl SourceCounter {
    /// Counts one RTP packet whose payload (padding excluded) is `payload_len` bytes long.
    pub fn count(&mut self, packet: &RtpPacket<'_>, payload_len: usize) {
        if payload_len == 0 {
            return;
        }
        let stereo = packet.payload.first().is_some_and(|b| b & 0x04 != 0);
        let same = |s: &Source| s.payload_type == packet.payload_type && s.ssrc == packet.ssrc;
        let hit = match self.sources.get(self.last) {
            Some(s) if same(s) => Some(self.last),
            _ => self.sources.iter().position(same),
        };
        if let Some(i) = hit {
            self.last = i;
            if let Some(s) = self.sources.get_mut(i) {
                s.packets += 1;
                s.opus_stereo |= stereo;
            }
        } else if self.sources.len() < MAX_SOURCES {
            self.last = self.sources.len();
            self.sources.push(Source {
                payload_type: packet.payload_type,
                ssrc: packet.ssrc,
                packets: 1,
                opus_stereo: stereo,
            });
        }
    }

    /// The pairs counted, in first-seen order.
    #[must_use]
    pub fn sources(&self) -> &[Source] {
        &self.sources
    }

    /// The pairs counted, in first-seen order.
    #[must_use]
    pub fn into_sources(self) -> Vec<Source> {
        self.sources
    }
}

/// Counts the media packets of a whole capture; only an unusable file header is an error, and
/// counting stops quietly at a cut-off tail.
pub fn count_sources(capture: &[u8]) -> Result<Vec<Source>, RtpdumpError> {
    let reader = RtpdumpReader::new(capture)?;
    let mut counter = SourceCounter::default();
    for record in reader.map_while(Result::ok) {
        if record.is_rtcp() || looks_like_rtcp(record.data) {
            continue;
        }
        if let Ok((packet, payload_len)) = record.rtp() {
            counter.count(&packet, payload_len);
        }
    }
    Ok(counter.into_sources())
}

/// The payload type with the most media packets (ties: the lowest); `None` without any.
pub fn dominant_payload_type<'a>(sources: impl IntoIterator<Item = &'a Source>) -> Option<u8> {
    let mut per_type = [0u64; 128];
    for s in sources {
        if let Some(n) = per_type.get_mut(usize::from(s.payload_type)) {
            *n += s.packets;
        }
    }
    let (pt, &n) = per_type
        .iter()
        .enumerate()
        .max_by_key(|&(pt, n)| (*n, Reverse(pt)))?;
    (n > 0).then_some(pt as u8)
}

/// The track among `sources`: of `payload_type` (else the dominant one), the SSRC with the most
/// media packets (ties: the lowest). `None` when no media packet has that payload type.
#[must_use]
pub fn choose_track(sources: &[Source], payload_type: Option<u8>) -> Option<Source> {
    let pt = match payload_type {
        Some(pt) => pt,
        None => dominant_payload_type(sources)?,
    };
    sources
        .iter()
        .filter(|s| s.payload_type == pt)
        .max_by_key(|s| (s.packets, Reverse(s.ssrc)))
        .copied()
}

#[cfg(test)]
mod tests {
    // Case tables spell their row types inline, next to the rows.
    #![allow(clippy::type_complexity)]

    use super::*;
    use crate::rtp::{build, PacketSpec};
    use crate::rtpdump::{write_header, write_rtp_record, FileHeader};

    fn source(payload_type: u8, ssrc: u32, packets: u64) -> Source {
        Source {
            payload_type,
            ssrc,
            packets,
            opus_stereo: false,
        }
    }

    #[test]
    fn choose_track_cases() {
        let cases: [(&str, Vec<Source>, Option<u8>, Option<(u8, u32)>); 7] = [
            ("nothing counted", vec![], None, None),
            (
                "the busiest SSRC of the dominant payload type",
                vec![source(96, 1, 10), source(96, 2, 30), source(97, 3, 35)],
                None,
                Some((96, 2)),
            ),
            (
                "a named payload type wins over the dominant one",
                vec![source(96, 1, 10), source(97, 3, 35)],
                Some(96),
                Some((96, 1)),
            ),
            (
                "a named payload type without packets gives nothing",
                vec![source(96, 1, 10)],
                Some(111),
                None,
            ),
            (
                "equal payload types: the lowest",
                vec![source(97, 1, 10), source(96, 2, 10)],
                None,
                Some((96, 2)),
            ),
            (
                "equal SSRCs: the lowest",
                vec![source(96, 9, 10), source(96, 4, 10)],
                None,
                Some((96, 4)),
            ),
            (
                "first seen does not matter",
                vec![source(96, 1, 3), source(96, 2, 300)],
                None,
                Some((96, 2)),
            ),
        ];
        for (name, sources, pt, want) in cases {
            let got = choose_track(&sources, pt).map(|s| (s.payload_type, s.ssrc));
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn counting_skips_rtcp_padding_and_garbage_and_is_bounded() {
        let mut capture = Vec::new();
        let header = FileHeader {
            address: "10.0.0.1".to_owned(),
            port: 5004,
            ..FileHeader::default()
        };
        write_header(&mut capture, &header);
        let mut at = 0;
        let mut put = |ssrc: u32, pt: u8, payload: &[u8], padding: u8| {
            let spec = PacketSpec {
                payload_type: pt,
                ssrc,
                padding,
                ..PacketSpec::default()
            };
            write_rtp_record(&mut capture, at, &build(&spec, payload)).expect("small packet");
            at += 1;
        };
        put(1, 111, &[0x04, 1], 0); // stereo TOC
        put(1, 111, &[0x00, 1], 0);
        put(2, 111, &[], 4); // padding only: not media
        put(2, 111, &[], 4);
        put(2, 111, &[], 4);
        put(3, 96, &[1, 2, 3], 0);
        for ssrc in 0..400 {
            put(1000 + ssrc, 100, &[1], 0);
        }
        write_rtp_record(&mut capture, at, &[0x80, 200, 0, 1, 0, 0, 0, 1]).expect("RTCP-like");
        let sources = count_sources(&capture).expect("header is fine");
        assert_eq!(sources.len(), MAX_SOURCES, "bounded");
        assert_eq!(
            sources[0],
            Source {
                opus_stereo: true,
                ..source(111, 1, 2)
            }
        );
        assert_eq!(
            sources[1],
            source(96, 3, 1),
            "the padding-only SSRC is not counted"
        );
        assert_eq!(
            choose_track(&sources, Some(111)).map(|s| s.ssrc),
            Some(1),
            "padding does not make an SSRC busier"
        );
        assert!(count_sources(b"not a capture").is_err());
    }
}
