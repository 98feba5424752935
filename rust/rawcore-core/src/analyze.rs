//! One-pass analysis of an rtpdump capture.
//!
//! [`analyze_capture`] walks every record once: RTP records feed a [`StreamTracker`] per SSRC
//! (streams listed in first-seen order), RTX packets are unwrapped and credited to the stream they
//! repair, and RTCP records yield sender reports, CNAMEs and goodbyes. A damaged capture is
//! reported, not refused: garbage and snap-length-truncated records become counted warnings, and a
//! cut-off tail ends the pass with a warning naming its byte offset. Only an unusable file header
//! is an error. The per-packet view of the same capture is [`crate::columns`].

use std::collections::HashMap;

use crate::columns::{stream_columns, PacketRow, StreamCollector, StreamColumns};
use crate::rtcp::{self, RtcpPacket};
use crate::rtp::{looks_like_rtcp, RtpPacket};
use crate::rtpdump::{FileHeader, Record, RtpdumpError, RtpdumpReader};
use crate::sdp::{static_clock_rate, Sdp};
use crate::stats::{PacketInfo, StreamStats, StreamTracker};
use crate::track::{choose_track, Source, SourceCounter};

/// Warnings kept per kind before the rest are only counted.
pub const MAX_WARNINGS_PER_KIND: usize = 10;
/// Distinct CNAME and BYE entries kept, so a flood of garbage RTCP cannot grow memory unbounded.
const MAX_RTCP_ENTRIES: usize = 4096;

/// What the analysis needs to know from the session description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnalyzeConfig {
    /// RTX payload type and the payload type it retransmits.
    pub rtx_apt: Vec<(u8, u8)>,
    /// Clock rate per payload type.
    pub clock_rates: Vec<(u8, u32)>,
    /// How many packets the reorder buffer waits for a missing one.
    pub reorder_window: usize,
}

impl Default for AnalyzeConfig {
    fn default() -> Self {
        Self {
            rtx_apt: Vec::new(),
            clock_rates: Vec::new(),
            reorder_window: 512,
        }
    }
}

impl AnalyzeConfig {
    /// Payload type information taken from a session description, default window.
    #[must_use]
    pub fn from_sdp(sdp: &Sdp) -> Self {
        Self {
            rtx_apt: sdp.rtx_apt(),
            clock_rates: sdp.clock_rates(),
            ..Self::default()
        }
    }
}

/// An RTCP sender report as captured.
#[derive(Debug, Clone, PartialEq)]
pub struct SenderReportRecord {
    /// The sender.
    pub ssrc: u32,
    /// 64-bit NTP timestamp.
    pub ntp: u64,
    /// `ntp` as milliseconds since the Unix epoch.
    pub unix_ms_from_ntp: f64,
    /// RTP timestamp corresponding to `ntp`.
    pub rtp_ts: u32,
    /// Arrival, ms since the capture start.
    pub arrival_ms: u32,
    /// Packets sent so far.
    pub packet_count: u32,
    /// Payload octets sent so far.
    pub octet_count: u32,
}

/// Something wrong with the capture that did not stop the analysis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureWarning {
    /// Where in the capture.
    pub byte_offset: usize,
    /// One line saying what.
    pub message: String,
}

/// Everything [`analyze_capture`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct CaptureReport {
    /// The capture's file header.
    pub header: FileHeader,
    /// One entry per SSRC, in first-seen order.
    pub streams: Vec<StreamStats>,
    /// Sender reports in capture order.
    pub sender_reports: Vec<SenderReportRecord>,
    /// The track's SSRC by the one rule of [`crate::track`] (RTX payload types left out):
    /// `None` without media packets.
    pub primary_ssrc: Option<u32>,
    /// Some media packet of that stream has bit 2 of its first payload byte set: the stereo
    /// flag of Opus's TOC, what extraction needs to know besides the SSRC to read the capture
    /// once ([`crate::track::Source::opus_stereo`]).
    pub primary_opus_stereo: bool,
    /// Distinct (SSRC, CNAME) pairs in first-seen order.
    pub cnames: Vec<(u32, String)>,
    /// Distinct SSRCs that sent a BYE, in first-seen order.
    pub bye_ssrcs: Vec<u32>,
    /// Records read.
    pub records: u64,
    /// Records that parsed as RTP.
    pub rtp_records: u64,
    /// Records that parsed as RTCP.
    pub rtcp_records: u64,
    /// Records the capture cut short (their RTP header is still used when intact).
    pub truncated_records: u64,
    /// Records that are neither valid RTP nor valid RTCP.
    pub invalid_records: u64,
    /// Problems found, at most [`MAX_WARNINGS_PER_KIND`] per kind plus a count of the rest.
    pub warnings: Vec<CaptureWarning>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WarningKind {
    TruncatedRecord,
    InvalidRtp,
    InvalidRtcp,
    CaptureEnd,
}

impl WarningKind {
    const ALL: [WarningKind; 4] = [
        Self::TruncatedRecord,
        Self::InvalidRtp,
        Self::InvalidRtcp,
        Self::CaptureEnd,
    ];

    fn label(self) -> &'static str {
        match self {
            Self::TruncatedRecord => "truncated-record",
            Self::InvalidRtp => "invalid-RTP",
            Self::InvalidRtcp => "invalid-RTCP",
            Self::CaptureEnd => "capture-end",
        }
    }
}

/// Warnings capped per kind; messages are only formatted while under the cap.
#[derive(Debug, Default)]
struct Warnings {
    list: Vec<CaptureWarning>,
    /// Per kind: warnings seen, and the offset of the first one suppressed.
    seen: [(usize, usize); 4],
}

impl Warnings {
    fn push(&mut self, kind: WarningKind, byte_offset: usize, message: impl FnOnce() -> String) {
        let (count, first_suppressed) = &mut self.seen[kind as usize];
        *count += 1;
        if *count <= MAX_WARNINGS_PER_KIND {
            self.list.push(CaptureWarning {
                byte_offset,
                message: message(),
            });
        } else if *count == MAX_WARNINGS_PER_KIND + 1 {
            *first_suppressed = byte_offset;
        }
    }

    fn finish(mut self) -> Vec<CaptureWarning> {
        for kind in WarningKind::ALL {
            let (count, first_suppressed) = self.seen[kind as usize];
            if count > MAX_WARNINGS_PER_KIND {
                self.list.push(CaptureWarning {
                    byte_offset: first_suppressed,
                    message: format!(
                        "{} more {} warnings suppressed, the first at byte {first_suppressed}",
                        count - MAX_WARNINGS_PER_KIND,
                        kind.label()
                    ),
                });
            }
        }
        self.list
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct PtInfo {
    clock_rate: Option<u32>,
    /// For an RTX payload type, the payload type it retransmits.
    apt: Option<u8>,
}

#[derive(Debug)]
struct Stream {
    tracker: StreamTracker,
    /// For an RTX stream, the index of the stream it repairs, once found.
    rtx_target: Option<usize>,
    apt: Option<u8>,
}

struct Analyzer {
    pts: [PtInfo; 128],
    window: usize,
    streams: Vec<Stream>,
    by_ssrc: HashMap<u32, usize>,
    /// The last SSRC looked up and its index: consecutive packets mostly share a stream.
    last: Option<(u32, usize)>,
    sender_reports: Vec<SenderReportRecord>,
    sr_counts: HashMap<u32, u64>,
    sources: SourceCounter,
    cnames: Vec<(u32, String)>,
    bye_ssrcs: Vec<u32>,
    warnings: Warnings,
    /// The stream read kept in the same pass ([`analyze_capture_stream`]).
    collector: Option<StreamCollector>,
    records: u64,
    rtp_records: u64,
    rtcp_records: u64,
    truncated_records: u64,
    invalid_records: u64,
}

impl Analyzer {
    fn new(cfg: &AnalyzeConfig) -> Self {
        let mut pts = [PtInfo::default(); 128];
        for (pt, info) in pts.iter_mut().enumerate() {
            info.clock_rate = static_clock_rate(pt as u8);
        }
        for &(pt, rate) in &cfg.clock_rates {
            if let Some(info) = pts.get_mut(usize::from(pt)) {
                info.clock_rate = Some(rate);
            }
        }
        for &(rtx, apt) in &cfg.rtx_apt {
            let apt_rate = pts.get(usize::from(apt)).and_then(|i| i.clock_rate);
            if let Some(info) = pts.get_mut(usize::from(rtx)) {
                info.apt = Some(apt);
                // RFC 4588: an RTX payload type runs at the clock rate of what it repairs.
                info.clock_rate = info.clock_rate.or(apt_rate);
            }
        }
        Self {
            pts,
            window: cfg.reorder_window,
            streams: Vec::new(),
            by_ssrc: HashMap::new(),
            last: None,
            sender_reports: Vec::new(),
            sr_counts: HashMap::new(),
            sources: SourceCounter::default(),
            cnames: Vec::new(),
            bye_ssrcs: Vec::new(),
            warnings: Warnings::default(),
            collector: None,
            records: 0,
            rtp_records: 0,
            rtcp_records: 0,
            truncated_records: 0,
            invalid_records: 0,
        }
    }

    fn on_record(&mut self, record: &Record<'_>) {
        self.records += 1;
        if record.truncated {
            self.truncated_records += 1;
            self.warnings
                .push(WarningKind::TruncatedRecord, record.byte_offset, || {
                    format!(
                        "record at byte {} holds {} of {} packet bytes (cut by the capture)",
                        record.byte_offset,
                        record.data.len(),
                        record.plen
                    )
                });
        }
        if record.is_rtcp() || looks_like_rtcp(record.data) {
            self.on_rtcp(record);
        } else {
            self.on_rtp(record);
        }
    }

    fn stream_index(&mut self, packet: &RtpPacket<'_>) -> usize {
        if let Some((ssrc, index)) = self.last {
            if ssrc == packet.ssrc {
                return index;
            }
        }
        let next_index = self.streams.len();
        let index = *self.by_ssrc.entry(packet.ssrc).or_insert(next_index);
        if index == next_index {
            let info = self
                .pts
                .get(usize::from(packet.payload_type))
                .copied()
                .unwrap_or_default();
            self.streams.push(Stream {
                tracker: StreamTracker::new(
                    packet.ssrc,
                    packet.payload_type,
                    info.clock_rate,
                    info.apt.is_some(),
                    self.window,
                ),
                rtx_target: None,
                apt: info.apt,
            });
        }
        self.last = Some((packet.ssrc, index));
        index
    }

    fn on_rtp(&mut self, record: &Record<'_>) {
        let (packet, payload_len) = match record.rtp() {
            Ok(p) => p,
            Err(e) => {
                self.invalid_records += 1;
                self.warnings
                    .push(WarningKind::InvalidRtp, record.byte_offset, || {
                        format!("record at byte {} is not RTP: {e}", record.byte_offset)
                    });
                return;
            }
        };
        self.rtp_records += 1;
        self.sources.count(&packet, payload_len);
        let index = self.stream_index(&packet);
        if let Some(collector) = &mut self.collector {
            // The row `PacketRow::of` reads: an RTP record whose header parsed.
            collector.push(
                index,
                PacketRow {
                    arrival_ms: record.offset_ms,
                    ssrc: packet.ssrc,
                    timestamp: packet.timestamp,
                    seq: packet.sequence_number,
                    payload_type: packet.payload_type,
                },
            );
        }
        let Some(stream) = self.streams.get_mut(index) else {
            return;
        };
        stream.tracker.on_packet(&PacketInfo {
            arrival_ms: record.offset_ms,
            seq: packet.sequence_number,
            timestamp: packet.timestamp,
            marker: packet.marker,
            payload_len,
            padding_only: payload_len == 0,
        });
        // RFC 4588: an RTX payload starts with the original sequence number.
        let (Some(apt), Some(&[hi, lo])) = (stream.apt, packet.payload.get(..2)) else {
            return;
        };
        let target = if stream.rtx_target.is_some() {
            stream.rtx_target
        } else {
            let found = self.find_rtx_target(apt);
            if let Some(stream) = self.streams.get_mut(index) {
                stream.rtx_target = found;
            }
            found
        };
        if let Some(target) = target.and_then(|t| self.streams.get_mut(t)) {
            target
                .tracker
                .on_retransmission(u16::from_be_bytes([hi, lo]));
        }
    }

    /// The stream an RTX stream repairs: the most recently active non-RTX stream of payload type
    /// `apt` (the capture carries no explicit SSRC association).
    fn find_rtx_target(&self, apt: u8) -> Option<usize> {
        self.streams
            .iter()
            .enumerate()
            .filter(|(_, s)| s.apt.is_none() && s.tracker.stats().payload_type == apt)
            .max_by_key(|(i, s)| (s.tracker.stats().last_arrival_ms, *i))
            .map(|(i, _)| i)
    }

    fn on_rtcp(&mut self, record: &Record<'_>) {
        let packets = match rtcp::parse_compound(record.data) {
            Ok(p) => p,
            Err(e) => {
                self.invalid_records += 1;
                self.warnings
                    .push(WarningKind::InvalidRtcp, record.byte_offset, || {
                        format!(
                            "record at byte {} is not valid RTCP: {e}",
                            record.byte_offset
                        )
                    });
                return;
            }
        };
        self.rtcp_records += 1;
        for packet in packets {
            match packet {
                RtcpPacket::SenderReport(sr) => {
                    *self.sr_counts.entry(sr.ssrc).or_default() += 1;
                    self.sender_reports.push(SenderReportRecord {
                        ssrc: sr.ssrc,
                        ntp: sr.ntp,
                        unix_ms_from_ntp: rtcp::ntp_to_unix_ms(sr.ntp),
                        rtp_ts: sr.rtp_ts,
                        arrival_ms: record.offset_ms,
                        packet_count: sr.packet_count,
                        octet_count: sr.octet_count,
                    });
                }
                RtcpPacket::SourceDescription(chunks) => {
                    for chunk in &chunks {
                        let Some(cname) = chunk.cname() else { continue };
                        let known = self
                            .cnames
                            .iter()
                            .any(|(s, c)| *s == chunk.ssrc && c == cname);
                        if !known && self.cnames.len() < MAX_RTCP_ENTRIES {
                            self.cnames.push((chunk.ssrc, cname.to_owned()));
                        }
                    }
                }
                RtcpPacket::Goodbye(bye) => {
                    for ssrc in bye.ssrcs {
                        if !self.bye_ssrcs.contains(&ssrc)
                            && self.bye_ssrcs.len() < MAX_RTCP_ENTRIES
                        {
                            self.bye_ssrcs.push(ssrc);
                        }
                    }
                }
                RtcpPacket::ReceiverReport(_) | RtcpPacket::Unknown { .. } => {}
            }
        }
    }

    fn finish(self, header: FileHeader) -> CaptureReport {
        let pts = self.pts;
        let media: Vec<Source> = self
            .sources
            .into_sources()
            .into_iter()
            .filter(|s| {
                pts.get(usize::from(s.payload_type))
                    .is_some_and(|i| i.apt.is_none())
            })
            .collect();
        let primary = choose_track(&media, None);
        let sr_counts = self.sr_counts;
        let streams = self
            .streams
            .into_iter()
            .map(|s| {
                let mut stats = s.tracker.finish();
                stats.sender_reports = sr_counts.get(&stats.ssrc).copied().unwrap_or(0);
                stats
            })
            .collect();
        CaptureReport {
            header,
            streams,
            sender_reports: self.sender_reports,
            primary_ssrc: primary.map(|s| s.ssrc),
            primary_opus_stereo: primary.is_some_and(|s| s.opus_stereo),
            cnames: self.cnames,
            bye_ssrcs: self.bye_ssrcs,
            records: self.records,
            rtp_records: self.rtp_records,
            rtcp_records: self.rtcp_records,
            truncated_records: self.truncated_records,
            invalid_records: self.invalid_records,
            warnings: self.warnings.finish(),
        }
    }
}

/// Analyses a whole capture in one pass; errors only when the file header is unusable.
pub fn analyze_capture(data: &[u8], cfg: &AnalyzeConfig) -> Result<CaptureReport, RtpdumpError> {
    let mut reader = RtpdumpReader::new(data)?;
    let header = reader.header().clone();
    let mut analyzer = Analyzer::new(cfg);
    for record in reader.by_ref() {
        match record {
            Ok(record) => analyzer.on_record(&record),
            Err(e) => {
                analyzer
                    .warnings
                    .push(WarningKind::CaptureEnd, e.byte_offset(), || e.to_string());
            }
        }
    }
    Ok(analyzer.finish(header))
}

impl CaptureReport {
    /// The stream a track of this capture is, as (SSRC, payload type): the primary SSRC (else
    /// the first media stream's), and the payload type of its stream (else of the media stream
    /// with the most packets, the first of equals). Media streams are the non-RTX streams with a
    /// packet that is not padding only. `(None, None)` when there is no media stream.
    #[must_use]
    pub fn track_stream(&self) -> (Option<u32>, Option<u8>) {
        let media = || {
            self.streams
                .iter()
                .filter(|s| !s.is_rtx && s.packets > s.padding_only)
        };
        let ssrc = self.primary_ssrc.or_else(|| media().next().map(|s| s.ssrc));
        let main = media()
            .find(|s| Some(s.ssrc) == self.primary_ssrc)
            .or_else(|| {
                // The first of equals, as Python's `max` picks.
                media().fold(None, |best: Option<&StreamStats>, s| match best {
                    Some(b) if b.packets >= s.packets => Some(b),
                    _ => Some(s),
                })
            });
        (ssrc, main.map(|s| s.payload_type))
    }
}

/// [`analyze_capture`], and in the same pass the stream a track of the capture is
/// ([`CaptureReport::track_stream`]) as the call timeline and the gap policy read it: equal to
/// [`stream_columns`] of that SSRC and payload type, with the capture read once. Without a media
/// stream, the gaps are every packet's (as [`stream_columns`] gives them for no SSRC).
pub fn analyze_capture_stream(
    data: &[u8],
    cfg: &AnalyzeConfig,
) -> Result<(CaptureReport, StreamColumns), RtpdumpError> {
    let mut reader = RtpdumpReader::new(data)?;
    let header = reader.header().clone();
    let mut analyzer = Analyzer::new(cfg);
    analyzer.collector = Some(StreamCollector::for_capture(data.len()));
    for record in reader.by_ref() {
        match record {
            Ok(record) => analyzer.on_record(&record),
            Err(e) => {
                analyzer
                    .warnings
                    .push(WarningKind::CaptureEnd, e.byte_offset(), || e.to_string());
            }
        }
    }
    let collector = analyzer.collector.take().unwrap_or_default();
    let report = analyzer.finish(header);
    let start_unix_ms = report.header.start_unix_us() as f64 / 1000.0;
    let stream = match report.track_stream() {
        (Some(ssrc), payload_type) => {
            // Streams are reported in the order the collector numbered them.
            match report.streams.iter().position(|s| s.ssrc == ssrc) {
                Some(index) => collector.stream(index, payload_type, start_unix_ms),
                None => StreamColumns::default(),
            }
        }
        // No media stream (rare: RTX or padding only): the gaps of every packet, read again.
        (None, payload_type) => {
            drop(collector);
            stream_columns(data, None, payload_type, start_unix_ms)?
        }
    };
    Ok((report, stream))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::rtcp::write as rtcp_write;
    use crate::rtp::{build, PacketSpec};
    use crate::rtpdump::{write_header, write_record, write_rtp_record};
    use proptest::prelude::*;

    pub(crate) const A: u32 = 0xAAAA;
    pub(crate) const B: u32 = 0xBBBB;
    const C: u32 = 0xCCCC;

    /// Builds captures in memory, one record per call.
    pub(crate) struct Capture(pub(crate) Vec<u8>);

    impl Capture {
        pub(crate) fn new() -> Self {
            let mut out = Vec::new();
            let header = FileHeader {
                address: "10.1.2.3".into(),
                port: 5004,
                start_sec: 1_700_000_000,
                ..FileHeader::default()
            };
            write_header(&mut out, &header);
            Self(out)
        }

        pub(crate) fn packet(
            mut self,
            ms: u32,
            ssrc: u32,
            pt: u8,
            seq: u16,
            payload: &[u8],
            padding: u8,
        ) -> Self {
            let spec = PacketSpec {
                payload_type: pt,
                sequence_number: seq,
                timestamp: u32::from(seq).wrapping_mul(960),
                ssrc,
                padding,
                ..PacketSpec::default()
            };
            write_rtp_record(&mut self.0, ms, &build(&spec, payload)).expect("small packet");
            self
        }

        pub(crate) fn rtp(self, ssrc: u32, seqs: impl IntoIterator<Item = u16>) -> Self {
            seqs.into_iter().fold(self, |c, s| {
                let ms = u32::from(s) * 20;
                c.packet(ms, ssrc, 111, s, &[0xAB; 100], 0)
            })
        }

        pub(crate) fn video(self, ssrc: u32, seqs: impl IntoIterator<Item = u16>) -> Self {
            seqs.into_iter().fold(self, |c, s| {
                c.packet(u32::from(s), ssrc, 96, s, &[1; 50], 0)
            })
        }

        pub(crate) fn rtx(self, ssrc: u32, seq: u16, original: u16) -> Self {
            let mut payload = original.to_be_bytes().to_vec();
            payload.extend_from_slice(&[1; 50]);
            self.packet(1000, ssrc, 97, seq, &payload, 0)
        }

        pub(crate) fn raw(mut self, plen: u16, data: &[u8]) -> Self {
            write_record(&mut self.0, 5, plen, data).expect("small record");
            self
        }

        pub(crate) fn tail(mut self, bytes: &[u8]) -> Self {
            self.0.extend_from_slice(bytes);
            self
        }
    }

    /// Per stream: `(ssrc, packets, expected, lost, duplicates, reordered + late, recovered, is_rtx)`.
    type StreamWant = (u32, u64, u64, u64, u64, u64, u64, bool);

    struct Case {
        name: &'static str,
        input: Vec<u8>,
        streams: Vec<StreamWant>,
        /// (records, rtp, rtcp, truncated, invalid)
        counts: (u64, u64, u64, u64, u64),
        /// Byte offsets of the warnings.
        warnings: Vec<usize>,
    }

    fn summarize(s: &StreamStats) -> StreamWant {
        (
            s.ssrc,
            s.packets,
            s.expected,
            s.lost,
            s.duplicates,
            s.reordered + s.late,
            s.recovered_rtx,
            s.is_rtx,
        )
    }

    fn rtx_cfg() -> AnalyzeConfig {
        AnalyzeConfig {
            rtx_apt: vec![(97, 96)],
            clock_rates: vec![(111, 48_000), (96, 90_000)],
            ..AnalyzeConfig::default()
        }
    }

    #[test]
    #[allow(clippy::too_many_lines)] // one table of cases reads best in one piece
    fn analyze_cases() {
        let header_len = Capture::new().0.len();
        let garbage_at = Capture::new().rtp(A, 0..3).0.len();
        let tail_at = Capture::new().rtp(A, 0..5).0.len();
        let cases = [
            Case {
                name: "in-order stream has no loss",
                input: Capture::new().rtp(A, 0..100).0,
                streams: vec![(A, 100, 100, 0, 0, 0, 0, false)],
                counts: (100, 100, 0, 0, 0),
                warnings: vec![],
            },
            Case {
                name: "missing sequence numbers are lost",
                input: Capture::new()
                    .rtp(A, (0..100).filter(|s| !(10..13).contains(s)))
                    .0,
                streams: vec![(A, 97, 100, 3, 0, 0, 0, false)],
                counts: (97, 97, 0, 0, 0),
                warnings: vec![],
            },
            Case {
                name: "a repeated packet is one duplicate, not a gain",
                input: Capture::new().rtp(A, (0..10).chain([4, 4]).chain(10..20)).0,
                streams: vec![(A, 22, 20, 0, 2, 0, 0, false)],
                counts: (22, 22, 0, 0, 0),
                warnings: vec![],
            },
            Case {
                name: "reordered packets are neither lost nor duplicates",
                input: Capture::new().rtp(A, [0, 1, 3, 2, 6, 5, 4, 7]).0,
                streams: vec![(A, 8, 8, 0, 0, 3, 0, false)],
                counts: (8, 8, 0, 0, 0),
                warnings: vec![],
            },
            Case {
                name: "sequence rollover is neither loss nor reordering",
                input: Capture::new().rtp(A, (65_500..=65_535).chain(0..40)).0,
                streams: vec![(A, 76, 76, 0, 0, 0, 0, false)],
                counts: (76, 76, 0, 0, 0),
                warnings: vec![],
            },
            Case {
                name: "a late packet from before a rollover is reordered, not lost",
                input: Capture::new().rtp(A, [65_533, 65_534, 0, 65_535, 1]).0,
                streams: vec![(A, 5, 5, 0, 0, 1, 0, false)],
                counts: (5, 5, 0, 0, 0),
                warnings: vec![],
            },
            Case {
                name: "an RTX packet carrying a lost sequence number recovers it",
                input: Capture::new()
                    .video(A, (0..20).filter(|&s| s != 5))
                    .rtx(B, 300, 5)
                    .0,
                streams: vec![(A, 19, 20, 0, 0, 0, 1, false), (B, 1, 1, 0, 0, 0, 0, true)],
                counts: (20, 20, 0, 0, 0),
                warnings: vec![],
            },
            Case {
                name: "an RTX packet repeating a received packet is a duplicate",
                input: Capture::new().video(A, 0..20).rtx(B, 300, 5).0,
                streams: vec![(A, 20, 20, 0, 1, 0, 0, false), (B, 1, 1, 0, 0, 0, 0, true)],
                counts: (21, 21, 0, 0, 0),
                warnings: vec![],
            },
            Case {
                name: "an SSRC change starts a new stream, listed in first-seen order",
                input: Capture::new().rtp(C, 0..10).rtp(A, 500..510).0,
                streams: vec![
                    (C, 10, 10, 0, 0, 0, 0, false),
                    (A, 10, 10, 0, 0, 0, 0, false),
                ],
                counts: (20, 20, 0, 0, 0),
                warnings: vec![],
            },
            Case {
                name: "a garbage record is counted and warned about, the stream goes on",
                input: Capture::new()
                    .rtp(A, 0..3)
                    .raw(20, &[0x11; 20])
                    .rtp(A, 3..6)
                    .0,
                streams: vec![(A, 6, 6, 0, 0, 0, 0, false)],
                counts: (7, 6, 0, 0, 1),
                warnings: vec![garbage_at],
            },
            Case {
                name: "a cut-off tail ends the pass with a warning at its offset",
                input: Capture::new()
                    .rtp(A, 0..5)
                    .tail(&[0, 200, 0, 180, 0, 0, 0, 1, 0x80])
                    .0,
                streams: vec![(A, 5, 5, 0, 0, 0, 0, false)],
                counts: (5, 5, 0, 0, 0),
                warnings: vec![tail_at],
            },
            Case {
                name: "a record shorter than its header ends the pass with a warning",
                input: Capture::new()
                    .rtp(A, 0..5)
                    .tail(&[0, 3, 0, 0, 0, 0, 0, 0])
                    .0,
                streams: vec![(A, 5, 5, 0, 0, 0, 0, false)],
                counts: (5, 5, 0, 0, 0),
                warnings: vec![tail_at],
            },
            Case {
                name: "a snap-length-truncated record still counts through its header",
                input: {
                    let full = build(
                        &PacketSpec {
                            ssrc: A,
                            sequence_number: 1,
                            payload_type: 111,
                            ..PacketSpec::default()
                        },
                        &[7; 1000],
                    );
                    Capture::new()
                        .rtp(A, [0])
                        .raw(1012, &full[..40])
                        .rtp(A, [2])
                        .0
                },
                streams: vec![(A, 3, 3, 0, 0, 0, 0, false)],
                counts: (3, 3, 0, 1, 0),
                warnings: vec![header_len + 8 + 112],
            },
            Case {
                name: "padding-only packets keep the sequence intact",
                input: Capture::new()
                    .rtp(A, 0..3)
                    .packet(60, A, 111, 3, &[], 200)
                    .rtp(A, 4..6)
                    .0,
                streams: vec![(A, 6, 6, 0, 0, 0, 0, false)],
                counts: (6, 6, 0, 0, 0),
                warnings: vec![],
            },
            Case {
                name: "empty capture has no streams",
                input: Capture::new().0,
                streams: vec![],
                counts: (0, 0, 0, 0, 0),
                warnings: vec![],
            },
        ];
        for case in cases {
            let report = analyze_capture(&case.input, &rtx_cfg()).expect("valid header");
            let streams: Vec<_> = report.streams.iter().map(summarize).collect();
            assert_eq!(streams, case.streams, "{}: streams", case.name);
            let counts = (
                report.records,
                report.rtp_records,
                report.rtcp_records,
                report.truncated_records,
                report.invalid_records,
            );
            assert_eq!(counts, case.counts, "{}: counts", case.name);
            let offsets: Vec<_> = report.warnings.iter().map(|w| w.byte_offset).collect();
            assert_eq!(
                offsets, case.warnings,
                "{}: warnings {:?}",
                case.name, report.warnings
            );
            for w in &report.warnings {
                assert!(
                    w.message.contains(&format!("byte {}", w.byte_offset)),
                    "{}: warning names its offset: {}",
                    case.name,
                    w.message
                );
            }
        }
    }

    #[test]
    fn primary_ssrc_cases() {
        let padding = |c: Capture, ssrc: u32, n: u16| {
            (0..n).fold(c, |c, s| c.packet(u32::from(s), ssrc, 111, s, &[], 8))
        };
        let cases: [(&str, Capture, AnalyzeConfig, Option<u32>); 6] = [
            ("no packets", Capture::new(), AnalyzeConfig::default(), None),
            (
                "the only stream",
                Capture::new().rtp(A, 0..10),
                AnalyzeConfig::default(),
                Some(A),
            ),
            (
                "a restarted sender: the SSRC with more media packets",
                Capture::new().rtp(A, 0..5).rtp(B, 0..20),
                AnalyzeConfig::default(),
                Some(B),
            ),
            (
                "RTX never, however busy",
                (0..30).fold(Capture::new().video(A, 0..10), |c, s| c.rtx(C, s, s % 10)),
                rtx_cfg(),
                Some(A),
            ),
            (
                "padding-only packets do not count",
                padding(Capture::new().rtp(A, 0..5), B, 50),
                AnalyzeConfig::default(),
                Some(A),
            ),
            (
                "the dominant payload type first",
                Capture::new().video(A, 0..8).video(B, 0..8).rtp(C, 0..12),
                AnalyzeConfig::default(),
                Some(A),
            ),
        ];
        for (name, capture, cfg, want) in cases {
            let report = analyze_capture(&capture.0, &cfg).expect(name);
            assert_eq!(report.primary_ssrc, want, "{name}");
        }
    }

    #[test]
    fn rtcp_records_yield_sender_reports_cnames_and_byes() {
        let ntp = (rtcp::NTP_UNIX_OFFSET_SECS + 1_700_000_000) << 32;
        let mut compound = Vec::new();
        rtcp_write::sender_report(&mut compound, A, ntp, 96_000, 50, 5000);
        rtcp_write::sdes_cname(&mut compound, A, "alice");
        let mut bye = Vec::new();
        rtcp_write::bye(&mut bye, &[A]);
        let mut muxed = Vec::new();
        rtcp_write::sender_report(&mut muxed, A, ntp + (1 << 32), 144_000, 100, 10_000);
        rtcp_write::sdes_cname(&mut muxed, A, "alice");
        let plen = u16::try_from(muxed.len()).expect("small packet");
        let input = Capture::new()
            .rtp(A, 0..10)
            .raw(0, &compound)
            .raw(plen, &muxed)
            .raw(0, &bye)
            .raw(0, &[0x80, 200, 0, 40])
            .0;
        let report = analyze_capture(&input, &rtx_cfg()).expect("valid header");
        assert_eq!(report.rtcp_records, 3, "SR, muxed SR and BYE records");
        assert_eq!(report.invalid_records, 1, "the overrunning RTCP record");
        assert_eq!(report.sender_reports.len(), 2);
        let sr = &report.sender_reports[0];
        assert_eq!(
            (sr.ssrc, sr.ntp, sr.rtp_ts, sr.arrival_ms),
            (A, ntp, 96_000, 5)
        );
        assert_eq!((sr.packet_count, sr.octet_count), (50, 5000));
        assert!((sr.unix_ms_from_ntp - 1_700_000_000_000.0).abs() < 1e-3);
        assert_eq!(report.streams[0].sender_reports, 2);
        assert_eq!(
            report.cnames,
            vec![(A, "alice".to_owned())],
            "CNAMEs deduplicated"
        );
        assert_eq!(report.bye_ssrcs, vec![A]);
        assert!((report.streams[0].jitter_ms.expect("opus clock known")).abs() < 1e-9);
    }

    #[test]
    fn warnings_are_capped_per_kind_with_a_summary() {
        let input = (0..50)
            .fold(Capture::new(), |c, _| c.raw(20, &[0x11; 20]))
            .0;
        let report = analyze_capture(&input, &AnalyzeConfig::default()).expect("valid header");
        assert_eq!(report.invalid_records, 50);
        assert_eq!(report.warnings.len(), MAX_WARNINGS_PER_KIND + 1);
        let summary = report.warnings.last().expect("summary warning");
        assert!(
            summary.message.starts_with("40 more invalid-RTP warnings"),
            "{}",
            summary.message
        );
    }

    #[test]
    fn unusable_header_is_the_only_error() {
        let err = analyze_capture(b"RIFF....", &AnalyzeConfig::default()).unwrap_err();
        assert_eq!(err, RtpdumpError::BadMagic { byte_offset: 0 });
    }

    /// Seq numbers `start..start+n` shuffled by at most `spread` places, with some repeated.
    fn jittered_arrivals() -> impl Strategy<Value = (u16, Vec<u16>, usize)> {
        (any::<u16>(), 1usize..300, 0usize..40).prop_flat_map(|(start, n, spread)| {
            (
                proptest::collection::vec(0..=spread, n),
                proptest::collection::vec((0..n, 0..=spread), 0..20),
            )
                .prop_map(move |(shifts, dups)| {
                    let mut order: Vec<(usize, usize, u16)> = shifts
                        .iter()
                        .enumerate()
                        .map(|(i, s)| (i + s, 0, start.wrapping_add(i as u16)))
                        .collect();
                    for (i, (at, extra)) in dups.iter().enumerate() {
                        order.push((at + extra + 1, i + 1, start.wrapping_add(*at as u16)));
                    }
                    order.sort_unstable();
                    (
                        start,
                        order.into_iter().map(|(_, _, s)| s).collect(),
                        dups.len(),
                    )
                })
        })
    }

    proptest! {
        #[test]
        fn shuffles_within_the_window_lose_nothing((_start, seqs, dups) in jittered_arrivals()) {
            let input = seqs.iter().fold(Capture::new(), |c, &s| c.packet(0, A, 111, s, &[1; 10], 0)).0;
            let report = analyze_capture(&input, &AnalyzeConfig::default()).expect("valid header");
            prop_assert_eq!(report.streams.len(), 1);
            let s = &report.streams[0];
            prop_assert_eq!(s.lost, 0);
            prop_assert_eq!(s.duplicates, dups as u64);
            prop_assert_eq!(s.packets, seqs.len() as u64);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let mut capture = Capture::new().0;
            capture.extend_from_slice(&bytes);
            let _ = analyze_capture(&capture, &rtx_cfg());
            let _ = crate::columns::capture_columns(&capture);
            let _ = analyze_capture(&bytes, &rtx_cfg());
            if let Ok(reader) = RtpdumpReader::new(&capture) {
                for record in reader.flatten() {
                    let _ = RtpPacket::parse(record.data);
                    let _ = rtcp::parse_compound(record.data);
                }
            }
            let _ = RtpPacket::parse(&bytes);
            let _ = RtpPacket::parse(&bytes).map(|p| p.extensions().count());
            let _ = rtcp::parse_compound(&bytes);
            let _ = Sdp::parse(&String::from_utf8_lossy(&bytes));
        }

        #[test]
        fn records_of_arbitrary_packets_never_panic(
            packets in proptest::collection::vec((any::<u16>(), proptest::collection::vec(any::<u8>(), 0..80)), 0..30)
        ) {
            let input = packets.iter().fold(Capture::new(), |mut c, (plen, data)| {
                write_record(&mut c.0, 0, *plen, data).expect("small record");
                c
            }).0;
            let report = analyze_capture(&input, &rtx_cfg()).expect("valid header");
            prop_assert_eq!(report.records, packets.len() as u64);
        }

        #[test]
        fn mixed_streams_with_rtx_keep_their_invariants(
            packets in proptest::collection::vec(
                (0u32..3, proptest::sample::select(vec![96u8, 97, 111]), any::<u16>(), 0usize..6, any::<bool>()),
                0..200,
            )
        ) {
            let input = packets.iter().fold(Capture::new(), |c, &(ssrc, pt, seq, len, pad)| {
                let payload = [seq.to_be_bytes(), [1, 2], [3, 4]].concat();
                c.packet(u32::from(seq), ssrc, pt, seq, &payload[..len], u8::from(pad) * 3)
            }).0;
            let report = analyze_capture(&input, &rtx_cfg()).expect("valid header");
            prop_assert_eq!(report.rtp_records, packets.len() as u64);
            prop_assert_eq!(report.streams.iter().map(|s| s.packets).sum::<u64>(), packets.len() as u64);
            for s in &report.streams {
                prop_assert!(s.lost <= s.expected, "lost {} of {}", s.lost, s.expected);
                prop_assert!(s.first_seq <= s.last_seq);
            }
        }

        #[test]
        fn rtp_headers_with_any_fields_parse(
            first in any::<u8>(), rest in proptest::collection::vec(any::<u8>(), 11..200)
        ) {
            let mut bytes = vec![0x80 | (first & 0x3F)];
            bytes.extend_from_slice(&rest);
            if let Ok(p) = RtpPacket::parse(&bytes) {
                prop_assert!(p.header_len + p.payload.len() + usize::from(p.padding_len) == bytes.len());
                for (_, value) in p.extensions() {
                    prop_assert!(value.len() <= p.extension_data.len());
                }
            }
        }
    }
}
