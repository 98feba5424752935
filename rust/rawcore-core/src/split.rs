//! Packet captures (pcap, pcapng) and Janus recordings (`.mjr`) turned into rtpdump captures,
//! one per RTP stream, so every later stage reads them as it reads a recorder's own captures.
//!
//! Why rtpdump and not a second in-core packet type: every reader downstream (analysis,
//! columns, the timeline, audio and video extraction, slicing at long gaps) takes a capture as
//! bytes and walks [`crate::rtpdump::RtpdumpReader`]; writing each stream once as an rtpdump
//! capture keeps one home for all of them, at the cost of one copy of the packets and arrival
//! times rounded to the millisecond (the resolution the recorder's captures have too).
//!
//! A stream is one SSRC from one source address. UDP payloads are RTP or RTCP by the RFC 5761
//! rule; anything else (STUN, DTLS, ...) is counted and skipped. RTP over TCP is read with
//! RFC 4571 framing after putting each flow's segments back in sequence order (retransmitted
//! bytes dropped, a gap in the byte stream dropping the frame it cut and resynchronising on
//! the next plausible frame). RTCP goes to the stream of its sender SSRC. All streams share the
//! capture's first packet time as their start, so their arrival times stay comparable.
//! Payload types whose codec nobody names are guessed from the content ([`guess_codec`]).

use std::collections::HashMap;
use std::net::IpAddr;

use crate::mjr::{MjrError, MjrHeader, MjrReader};
use crate::net::{self, Skip, Transport};
use crate::pcap::{FrameReader, PcapError};
use crate::rtp::{looks_like_rtcp, RtpPacket};
use crate::rtpdump::{self, FileHeader, RtpdumpReader};

/// Why a capture cannot be split at all.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum SplitError {
    /// A pcap or pcapng header that cannot be read.
    #[error(transparent)]
    Pcap(#[from] PcapError),
    /// A `.mjr` header that cannot be read.
    #[error(transparent)]
    Mjr(#[from] MjrError),
    /// Neither pcap, pcapng nor `.mjr`.
    #[error("not a pcap, pcapng or Janus .mjr capture")]
    UnknownFormat,
    /// A Janus data-channel recording: it holds no RTP media.
    #[error("a Janus data-channel recording (type \"d\") holds no audio or video")]
    DataChannel,
}

/// A codec and clock for a payload type, from a `.mjr` header or guessed from the content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodecGuess {
    /// Lower-case encoding name as an SDP `rtpmap` writes it (`opus`, `vp8`, `h264`, ...).
    pub codec: &'static str,
    /// RTP clock rate.
    pub clock_rate: u32,
    /// Audio channels, for the codecs that have them in an `rtpmap`.
    pub channels: Option<u8>,
    /// Video (else audio).
    pub video: bool,
}

/// One RTP stream of the capture, written as an rtpdump capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitStream {
    /// Source address (`mjr` for a Janus recording).
    pub src: String,
    /// Source port of its first packet.
    pub src_port: u16,
    /// Destination address of its first packet.
    pub dst: String,
    /// Destination port of its first packet.
    pub dst_port: u16,
    /// `udp`, `tcp` (RFC 4571) or `mjr`.
    pub transport: &'static str,
    /// The stream's SSRC.
    pub ssrc: u32,
    /// Payload type of its first RTP packet.
    pub payload_type: u8,
    /// RTP packets written.
    pub rtp_packets: u64,
    /// RTCP packets written (sent by this SSRC).
    pub rtcp_packets: u64,
    /// The codec the `.mjr` header names, or the guess from the payloads.
    pub codec: Option<CodecGuess>,
    /// The stream as an rtpdump capture.
    pub capture: Vec<u8>,
}

/// A capture split into streams.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SplitReport {
    /// `pcap`, `pcapng` or `mjr`.
    pub format: &'static str,
    /// Time of the first packet (every stream's capture start), Unix µs.
    pub start_unix_us: u64,
    /// The streams, in order of their first packet.
    pub streams: Vec<SplitStream>,
    /// UDP payloads and TCP frames that were neither RTP nor RTCP.
    pub skipped_not_rtp: u64,
    /// Frames with no UDP or TCP payload (other protocols, IP fragments, unknown link types).
    pub skipped_frames: u64,
    /// Problems with their byte offset: where reading stopped, damaged TCP streams.
    pub warnings: Vec<(usize, String)>,
    /// The header of a `.mjr` recording.
    pub mjr: Option<MjrHeader>,
}

/// Splits a pcap, pcapng or `.mjr` capture (detected by its magic) into rtpdump streams.
pub fn split_capture(data: &[u8]) -> Result<SplitReport, SplitError> {
    if crate::mjr::is_mjr(data) {
        split_mjr(data)
    } else if crate::pcap::is_pcap(data) {
        split_pcap(data)
    } else {
        Err(SplitError::UnknownFormat)
    }
}

#[derive(Debug)]
struct Builder {
    report: SplitReport,
    start_us: Option<u64>,
    index: HashMap<(String, u32), usize>,
}

impl Builder {
    fn new(format: &'static str) -> Self {
        Self {
            report: SplitReport {
                format,
                ..SplitReport::default()
            },
            start_us: None,
            index: HashMap::new(),
        }
    }

    /// Writes one RTP or RTCP packet to its stream. `declared` is its length on the wire.
    fn packet(&mut self, flow: &Flow, time_us: u64, data: &[u8], declared: usize, at: usize) {
        if data.len() < 8 || data[0] >> 6 != 2 {
            self.report.skipped_not_rtp += 1;
            return;
        }
        let rtcp = looks_like_rtcp(data);
        let (ssrc, pt) = if rtcp {
            let Some(ssrc) = data.get(4..8) else {
                self.report.skipped_not_rtp += 1;
                return;
            };
            (u32::from_be_bytes([ssrc[0], ssrc[1], ssrc[2], ssrc[3]]), 0)
        } else {
            let Ok(p) = RtpPacket::parse_header_only(data) else {
                self.report.skipped_not_rtp += 1;
                return;
            };
            (p.ssrc, p.payload_type)
        };
        let Ok(plen) = u16::try_from(declared) else {
            self.report.warnings.push((
                at,
                format!("packet of {declared} bytes is too long for a record; skipped"),
            ));
            return;
        };
        let start = *self.start_us.get_or_insert(time_us);
        let key = (flow.src.clone(), ssrc);
        let idx = if let Some(&i) = self.index.get(&key) {
            i
        } else {
            // No room reserved: a hostile capture may hold a new SSRC in every packet.
            let mut capture = Vec::new();
            rtpdump::write_header(
                &mut capture,
                &FileHeader {
                    address: flow.dst.clone(),
                    port: flow.dst_port,
                    start_sec: (start / 1_000_000) as u32,
                    start_usec: (start % 1_000_000) as u32,
                    source: flow.src_v4,
                    source_port: flow.src_port,
                },
            );
            self.report.streams.push(SplitStream {
                src: flow.src.clone(),
                src_port: flow.src_port,
                dst: flow.dst.clone(),
                dst_port: flow.dst_port,
                transport: flow.transport,
                ssrc,
                payload_type: pt,
                rtp_packets: 0,
                rtcp_packets: 0,
                codec: None,
                capture,
            });
            self.index.insert(key, self.report.streams.len() - 1);
            self.report.streams.len() - 1
        };
        let stream = &mut self.report.streams[idx];
        let offset_ms = u32::try_from(time_us.saturating_sub(start) / 1000).unwrap_or(u32::MAX);
        // A record is at most 65535 bytes with its header; the wire length was checked above.
        let data = data.get(..65_527).unwrap_or(data);
        let written = rtpdump::write_record(
            &mut stream.capture,
            offset_ms,
            if rtcp { 0 } else { plen },
            data,
        );
        if written.is_ok() {
            if rtcp {
                stream.rtcp_packets += 1;
            } else {
                if stream.rtp_packets == 0 {
                    stream.payload_type = pt;
                }
                stream.rtp_packets += 1;
            }
        }
    }

    fn finish(mut self, header_codec: Option<CodecGuess>) -> SplitReport {
        self.report.start_unix_us = self.start_us.unwrap_or(0);
        self.report.streams.retain(|s| s.rtp_packets > 0);
        for stream in &mut self.report.streams {
            stream.codec = header_codec.or_else(|| guess_codec(&stream.capture));
        }
        self.report
    }
}

#[derive(Debug, Clone)]
struct Flow {
    src: String,
    src_v4: u32,
    src_port: u16,
    dst: String,
    dst_port: u16,
    transport: &'static str,
}

/// One direction of a TCP connection carrying RFC 4571 frames.
#[derive(Debug, Default)]
struct TcpFlow {
    next_seq: Option<u32>,
    buf: Vec<u8>,
    /// Frame boundaries are known (false after a gap, until a plausible frame is found).
    synced: bool,
}

fn split_pcap(data: &[u8]) -> Result<SplitReport, SplitError> {
    let mut reader = FrameReader::new(data)?;
    let mut b = Builder::new(reader.format());
    let mut tcp: HashMap<(IpAddr, u16, IpAddr, u16), TcpFlow> = HashMap::new();
    let mut skipped_links: Vec<u16> = Vec::new();
    let mut gaps = 0u64;
    for frame in reader.by_ref() {
        let time_us = frame.time_ns / 1000;
        let d = match net::decode(frame.linktype, frame.data) {
            Ok(d) => d,
            Err(skip) => {
                b.report.skipped_frames += 1;
                if let Skip::LinkType(lt) = skip {
                    if !skipped_links.contains(&lt) {
                        skipped_links.push(lt);
                        b.report.warnings.push((
                            frame.byte_offset,
                            format!("link type {lt} is not read; its frames are skipped"),
                        ));
                    }
                }
                continue;
            }
        };
        let flow = Flow {
            src: d.src.to_string(),
            src_v4: match d.src {
                IpAddr::V4(v4) => u32::from(v4),
                IpAddr::V6(_) => 0,
            },
            src_port: d.src_port,
            dst: d.dst.to_string(),
            dst_port: d.dst_port,
            transport: "udp",
        };
        match d.transport {
            Transport::Udp => {
                b.packet(&flow, time_us, d.payload, d.declared_len, frame.byte_offset);
            }
            Transport::Tcp { seq, syn } => {
                let state = tcp
                    .entry((d.src, d.src_port, d.dst, d.dst_port))
                    .or_insert_with(|| TcpFlow {
                        // Frames line up with the byte stream only from its start.
                        synced: syn,
                        ..TcpFlow::default()
                    });
                let seq = if syn { seq.wrapping_add(1) } else { seq };
                let next = *state.next_seq.get_or_insert(seq);
                let ahead = seq.wrapping_sub(next) as i32;
                let mut payload = d.payload;
                if ahead < 0 {
                    // Bytes already seen (a retransmission): keep only what is new.
                    payload = payload
                        .get(ahead.unsigned_abs() as usize..)
                        .unwrap_or_default();
                } else if ahead > 0 {
                    gaps += 1;
                    state.buf.clear();
                    state.synced = false;
                    state.next_seq = Some(seq);
                }
                if payload.is_empty() {
                    continue;
                }
                state.buf.extend_from_slice(payload);
                let seen = payload.len() as u32;
                state.next_seq = Some(state.next_seq.unwrap_or(seq).wrapping_add(seen));
                if d.payload.len() < d.declared_len {
                    // The capture cut this segment: the stream has a hole after it.
                    state.next_seq = Some(
                        state
                            .next_seq
                            .unwrap_or(seq)
                            .wrapping_add((d.declared_len - d.payload.len()) as u32),
                    );
                }
                let tcp_flow = Flow {
                    transport: "tcp",
                    ..flow
                };
                drain_rfc4571(state, &mut b, &tcp_flow, time_us, frame.byte_offset);
            }
        }
    }
    if gaps > 0 {
        b.report.warnings.push((
            data.len(),
            format!("{gaps} gap(s) in RTP-over-TCP byte streams; the frames they cut are lost"),
        ));
    }
    if let Some((at, why)) = reader.stop() {
        b.report.warnings.push((
            *at,
            format!("{}: {why}; reading stopped here", reader.format()),
        ));
    }
    Ok(b.finish(None))
}

fn drain_rfc4571(state: &mut TcpFlow, b: &mut Builder, flow: &Flow, time_us: u64, at: usize) {
    let mut pos = 0;
    loop {
        let rest = &state.buf[pos..];
        let Some(len) = rest
            .get(..2)
            .map(|l| usize::from(u16::from_be_bytes([l[0], l[1]])))
        else {
            break;
        };
        if !state.synced {
            // A frame worth resyncing on: an RTP/RTCP-sized length and a version-2 first byte.
            let plausible = len >= 12 && rest.get(2).is_some_and(|v| v >> 6 == 2);
            if !plausible {
                pos += 1;
                continue;
            }
            state.synced = true;
        }
        let Some(frame) = rest.get(2..2 + len) else {
            break;
        };
        if len < 8 || frame[0] >> 6 != 2 {
            // Not RTP or RTCP: the framing was lost (a capture that began mid-connection).
            state.synced = false;
            pos += 1;
            continue;
        }
        b.packet(flow, time_us, frame, len, at);
        pos += 2 + len;
    }
    state.buf.drain(..pos);
}

/// The codec Janus names in a `.mjr` header, as an `rtpmap` would say it.
#[must_use]
pub fn mjr_codec(codec: &str) -> Option<CodecGuess> {
    let (codec, clock_rate, channels, video) = match codec {
        "opus" => ("opus", 48_000, Some(2), false),
        "multiopus" => ("multiopus", 48_000, Some(2), false),
        "pcmu" => ("pcmu", 8000, None, false),
        "pcma" => ("pcma", 8000, None, false),
        "g722" => ("g722", 8000, None, false),
        "l16" => ("l16", 16_000, Some(1), false),
        "l16-48" => ("l16", 48_000, Some(1), false),
        "vp8" => ("vp8", 90_000, None, true),
        "vp9" => ("vp9", 90_000, None, true),
        "h264" => ("h264", 90_000, None, true),
        "av1" => ("av1", 90_000, None, true),
        "h265" => ("h265", 90_000, None, true),
        _ => return None,
    };
    Some(CodecGuess {
        codec,
        clock_rate,
        channels,
        video,
    })
}

fn split_mjr(data: &[u8]) -> Result<SplitReport, SplitError> {
    let mut reader = MjrReader::new(data)?;
    let header = reader.header().clone();
    if header.kind == 'd' {
        return Err(SplitError::DataChannel);
    }
    let codec = mjr_codec(&header.codec);
    let mut b = Builder::new("mjr");
    if codec.is_none() {
        b.report.warnings.push((
            0,
            format!(
                "codec {:?} in the .mjr header is not one rawcore knows",
                header.codec
            ),
        ));
    }
    let clock = codec.map_or(if header.kind == 'v' { 90_000 } else { 48_000 }, |c| {
        c.clock_rate
    });
    let base_us = header.first_unix_us.map_or(0, |u| u.max(0) as u64);
    let flow = Flow {
        src: "mjr".into(),
        src_v4: 0,
        src_port: 0,
        dst: "0.0.0.0".into(),
        dst_port: 0,
        transport: "mjr",
    };
    // Version 1 keeps no arrival times: the RTP clock since the first packet stands in.
    let mut last_ts: Option<u32> = None;
    let mut ts_ticks: i64 = 0;
    for packet in reader.by_ref() {
        let time_us = if let Some(ms) = packet.offset_ms {
            base_us + u64::from(ms) * 1000
        } else {
            let ts = RtpPacket::parse_header_only(packet.data).map_or(0, |p| p.timestamp);
            if let Some(prev) = last_ts {
                ts_ticks += i64::from(ts.wrapping_sub(prev) as i32);
            }
            last_ts = Some(ts);
            base_us + (ts_ticks.max(0) as u64) * 1_000_000 / u64::from(clock)
        };
        b.packet(
            &flow,
            time_us,
            packet.data,
            packet.data.len(),
            packet.byte_offset,
        );
    }
    if let Some((at, why)) = reader.stop() {
        b.report
            .warnings
            .push((*at, format!(".mjr: {why}; reading stopped here")));
    }
    b.report.mjr = Some(header);
    Ok(b.finish(codec))
}

/// Guesses a stream's codec from its packets: static payload types by number; otherwise the
/// RTP clock rate measured against arrival times (48 kHz is Opus, 90 kHz video) and, for video,
/// which payload format's keyframe signature the payloads carry (a VP8 key frame start code, a
/// VP9 key frame sync code, an H.264 SPS or IDR). `None` when nothing is conclusive.
#[must_use]
pub fn guess_codec(capture: &[u8]) -> Option<CodecGuess> {
    let reader = RtpdumpReader::new(capture).ok()?;
    let mut first: Option<(u32, u32)> = None;
    let mut last: Option<(u32, u32)> = None;
    let mut ticks: i64 = 0;
    let mut pt = None;
    let mut votes = [0u32; 3]; // vp8, vp9, h264
    for record in reader.flatten() {
        if record.is_rtcp() {
            continue;
        }
        let Ok((packet, _)) = record.rtp() else {
            continue;
        };
        pt.get_or_insert(packet.payload_type);
        if let Some((_, prev)) = last {
            ticks += i64::from(packet.timestamp.wrapping_sub(prev) as i32);
        }
        first.get_or_insert((record.offset_ms, packet.timestamp));
        last = Some((record.offset_ms, packet.timestamp));
        let p = packet.payload;
        votes[0] += u32::from(vp8_keyframe(p));
        votes[1] += u32::from(vp9_keyframe(p));
        votes[2] += u32::from(h264_keyframe(p));
    }
    let audio = |codec, clock_rate, channels| CodecGuess {
        codec,
        clock_rate,
        channels,
        video: false,
    };
    match pt? {
        0 => return Some(audio("pcmu", 8000, None)),
        8 => return Some(audio("pcma", 8000, None)),
        9 => return Some(audio("g722", 8000, None)),
        _ => {}
    }
    let span_ms = last?.0.saturating_sub(first?.0);
    let rate = (span_ms >= 500).then(|| ticks as f64 * 1000.0 / f64::from(span_ms));
    let near = |target: f64| rate.is_some_and(|r| (target * 0.8..target * 1.25).contains(&r));
    let best = (0..3).max_by_key(|&i| votes[i]).filter(|&i| votes[i] > 0);
    if near(48_000.0) {
        return Some(audio("opus", 48_000, Some(2)));
    }
    if rate.is_some() && !near(90_000.0) {
        return None;
    }
    let codec = ["vp8", "vp9", "h264"][best?];
    Some(CodecGuess {
        codec,
        clock_rate: 90_000,
        channels: None,
        video: true,
    })
}

/// A VP8 payload descriptor (RFC 7741) at the start of a partition, then a key frame's start
/// code 9d 01 2a.
fn vp8_keyframe(p: &[u8]) -> bool {
    let Some(&b0) = p.first() else { return false };
    if b0 & 0x48 != 0 || b0 & 0x10 == 0 || b0 & 0x07 != 0 {
        return false;
    }
    let mut at = 1;
    if b0 & 0x80 != 0 {
        let Some(&x) = p.get(1) else { return false };
        at = 2;
        if x & 0x80 != 0 {
            at += if p.get(2).is_some_and(|b| b & 0x80 != 0) {
                2
            } else {
                1
            };
        }
        if x & 0x40 != 0 {
            at += 1;
        }
        if x & 0x30 != 0 {
            at += 1;
        }
    }
    p.get(at).is_some_and(|h| h & 0x01 == 0) && p.get(at + 3..at + 6) == Some(&[0x9d, 0x01, 0x2a])
}

/// A VP9 payload descriptor (RFC 9628) starting a non-inter-predicted frame, then the key
/// frame's sync code 49 83 42 (profiles 0-2).
fn vp9_keyframe(payload: &[u8]) -> bool {
    let Some(&first) = payload.first() else {
        return false;
    };
    let has_picture_id = first & 0x80 != 0;
    let inter_predicted = first & 0x40 != 0;
    let has_layer_indices = first & 0x20 != 0;
    let flexible = first & 0x10 != 0;
    let begins_frame = first & 0x08 != 0;
    let has_scalability = first & 0x02 != 0;
    if !begins_frame || inter_predicted || first & 0x01 != 0 {
        return false;
    }
    let mut at = 1;
    if has_picture_id {
        at += if payload.get(at).is_some_and(|m| m & 0x80 != 0) {
            2
        } else {
            1
        };
    }
    if has_layer_indices {
        at += if flexible { 1 } else { 2 };
    }
    if has_scalability {
        let Some(&structure) = payload.get(at) else {
            return false;
        };
        at += 1;
        let layers = usize::from(structure >> 5) + 1;
        if structure & 0x10 != 0 {
            at += 4 * layers;
        }
        if structure & 0x08 != 0 {
            let Some(&groups) = payload.get(at) else {
                return false;
            };
            at += 1;
            for _ in 0..groups {
                let Some(&group) = payload.get(at) else {
                    return false;
                };
                at += 1 + usize::from((group >> 2) & 0x03);
            }
        }
    }
    payload.get(at).is_some_and(|h| h & 0xC0 == 0x80)
        && payload.get(at + 1..at + 4) == Some(&[0x49, 0x83, 0x42])
}

/// An H.264 payload (RFC 6184) holding an SPS or the start of an IDR slice.
fn h264_keyframe(p: &[u8]) -> bool {
    let Some(&b0) = p.first() else { return false };
    if b0 & 0x80 != 0 {
        return false;
    }
    match b0 & 0x1F {
        5 | 7 => true,
        24 => p
            .get(3)
            .is_some_and(|n| n & 0x80 == 0 && matches!(n & 0x1F, 5 | 7)),
        28 => p.get(1).is_some_and(|h| h & 0x80 != 0 && h & 0x1F == 5),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::pcap::write::{pcap_header, pcap_record};
    use crate::rtp::{build, PacketSpec};

    fn rtp(ssrc: u32, seq: u16, ts: u32, pt: u8, payload: &[u8]) -> Vec<u8> {
        build(
            &PacketSpec {
                payload_type: pt,
                sequence_number: seq,
                timestamp: ts,
                ssrc,
                ..PacketSpec::default()
            },
            payload,
        )
    }

    fn addr(last: u8, port: u16) -> (IpAddr, u16) {
        (IpAddr::V4(Ipv4Addr::new(10, 0, 0, last)), port)
    }

    fn records(capture: &[u8]) -> Vec<(u32, Vec<u8>, bool)> {
        RtpdumpReader::new(capture)
            .unwrap()
            .map(|r| r.unwrap())
            .map(|r| (r.offset_ms, r.data.to_vec(), r.is_rtcp()))
            .collect()
    }

    #[test]
    fn udp_packets_are_split_by_source_and_ssrc_with_rtcp_beside_its_sender() {
        let mut file = pcap_header(1);
        let eth = |src, payload: &[u8]| net::write::ethernet_udp(src, addr(9, 5004), &[], payload);
        let a0 = rtp(0xA, 1, 0, 111, b"x");
        let b0 = rtp(0xB, 7, 0, 96, b"y");
        let a1 = rtp(0xA, 2, 960, 111, b"z");
        let mut sr = vec![0x80, 200, 0, 6];
        sr.extend_from_slice(&0xAu32.to_be_bytes());
        sr.extend_from_slice(&[0; 20]);
        let stun = [0u8, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42, 0, 0, 0, 0];
        pcap_record(&mut file, 1_000_000, &eth(addr(1, 4000), &a0));
        pcap_record(&mut file, 1_005_000, &eth(addr(2, 4000), &b0));
        pcap_record(&mut file, 1_010_000, &eth(addr(1, 4000), &stun));
        pcap_record(&mut file, 1_020_000, &eth(addr(1, 4000), &a1));
        pcap_record(&mut file, 1_030_000, &eth(addr(1, 4001), &sr));
        let report = split_capture(&file).unwrap();
        assert_eq!(report.format, "pcap");
        assert_eq!(report.start_unix_us, 1_000_000);
        assert_eq!(report.skipped_not_rtp, 1);
        let got: Vec<_> = report
            .streams
            .iter()
            .map(|s| (s.src.as_str(), s.ssrc))
            .collect();
        assert_eq!(got, [("10.0.0.1", 0xA), ("10.0.0.2", 0xB)]);
        let a = &report.streams[0];
        assert_eq!((a.rtp_packets, a.rtcp_packets, a.payload_type), (2, 1, 111));
        assert_eq!(
            records(&a.capture),
            [(0, a0, false), (20, a1, false), (30, sr, true)]
        );
        assert_eq!(records(&report.streams[1].capture), [(5, b0, false)]);
    }

    #[test]
    fn rfc4571_over_tcp_is_reassembled_across_segments_retransmissions_and_gaps() {
        let packets: Vec<Vec<u8>> = (0..4)
            .map(|i| rtp(0xC, i, u32::from(i) * 960, 111, b"opus"))
            .collect();
        let mut stream = Vec::new();
        for p in &packets {
            stream.extend_from_slice(&(p.len() as u16).to_be_bytes());
            stream.extend_from_slice(p);
        }
        let seg = |seq: usize, bytes: &[u8]| {
            let mut tcp = vec![0x0f, 0xa0, 0x13, 0x8c];
            tcp.extend_from_slice(&(1000 + seq as u32).to_be_bytes());
            tcp.extend_from_slice(&[0, 0, 0, 0, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0]);
            tcp.extend_from_slice(bytes);
            let mut ip = vec![0x45, 0];
            ip.extend_from_slice(&((tcp.len() + 20) as u16).to_be_bytes());
            ip.extend_from_slice(&[0, 0, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
            ip.extend_from_slice(&tcp);
            ip
        };
        let frame = packets[0].len() + 2;
        let mut file = pcap_header(net::LINKTYPE_RAW);
        // First frame split in two segments, the second sent twice, then a lost segment that
        // cuts frame 2, then frame 3 whole after the gap.
        pcap_record(&mut file, 0, &seg(0, &stream[..5]));
        pcap_record(&mut file, 10, &seg(5, &stream[5..frame + 3]));
        pcap_record(&mut file, 20, &seg(5, &stream[5..frame + 3]));
        pcap_record(
            &mut file,
            30,
            &seg(frame + 3, &stream[frame + 3..2 * frame]),
        );
        pcap_record(&mut file, 40, &seg(3 * frame, &stream[3 * frame..]));
        let report = split_capture(&file).unwrap();
        assert_eq!(report.streams.len(), 1);
        let s = &report.streams[0];
        assert_eq!(s.transport, "tcp");
        let got: Vec<_> = records(&s.capture).into_iter().map(|r| r.1).collect();
        assert_eq!(
            got,
            [packets[0].clone(), packets[1].clone(), packets[3].clone()]
        );
        assert!(report.warnings.iter().any(|w| w.1.contains("gap")));
    }

    #[test]
    fn a_tcp_capture_that_starts_mid_frame_resynchronises_on_the_next_frame() {
        let packets: Vec<Vec<u8>> = (0..3)
            .map(|i| rtp(0xE, i, u32::from(i) * 960, 111, &[0x78; 40]))
            .collect();
        let mut stream = Vec::new();
        for p in &packets {
            stream.extend_from_slice(&(p.len() as u16).to_be_bytes());
            stream.extend_from_slice(p);
        }
        let mut tcp = vec![0x0f, 0xa0, 0x13, 0x8c, 0, 0, 0x10, 0];
        tcp.extend_from_slice(&[0, 0, 0, 0, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0]);
        // The capture starts 7 bytes into the first frame: its rest is garbage to the reader.
        tcp.extend_from_slice(&stream[7..]);
        let mut ip = vec![0x45, 0];
        ip.extend_from_slice(&((tcp.len() + 20) as u16).to_be_bytes());
        ip.extend_from_slice(&[0, 0, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
        ip.extend_from_slice(&tcp);
        let mut file = pcap_header(net::LINKTYPE_RAW);
        pcap_record(&mut file, 0, &ip);
        let report = split_capture(&file).unwrap();
        let got: Vec<_> = records(&report.streams[0].capture)
            .into_iter()
            .map(|r| r.1)
            .collect();
        assert_eq!(got, packets[1..]);
    }

    #[test]
    fn a_truncated_packet_keeps_its_wire_length_and_the_cut_is_reported() {
        let p = rtp(0xD, 1, 0, 111, &[7; 200]);
        let frame = net::write::ethernet_udp(addr(1, 1), addr(2, 2), &[], &p);
        let mut file = pcap_header(1);
        pcap_record(&mut file, 0, &frame[..frame.len() - 100]);
        pcap_record(&mut file, 20_000, &frame);
        file.truncate(file.len() - 10);
        let report = split_capture(&file).unwrap();
        let r = RtpdumpReader::new(&report.streams[0].capture)
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        assert!(r.truncated);
        assert_eq!(usize::from(r.plen), p.len());
        assert!(report
            .warnings
            .iter()
            .any(|w| w.1.contains("reading stopped")));
    }

    #[test]
    fn mjr_v1_times_come_from_the_rtp_clock_and_v2_from_the_file() {
        let p: Vec<Vec<u8>> = (0..3)
            .map(|i| rtp(5, i, 1000 + u32::from(i) * 960, 111, b"o"))
            .collect();
        let refs: Vec<&[u8]> = p.iter().map(Vec::as_slice).collect();
        let v1 = crate::mjr::write::v1('a', "opus", 2_000_000, &refs);
        let v2 = crate::mjr::write::v2(
            'a',
            "opus",
            2_000_000,
            &[(0, &p[0]), (25, &p[1]), (41, &p[2])],
        );
        for (name, file, times) in [("v1", v1, [0, 20, 40]), ("v2", v2, [0, 25, 41])] {
            let report = split_capture(&file).expect(name);
            assert_eq!(report.start_unix_us, 2_000_000, "{name}");
            let s = &report.streams[0];
            assert_eq!(s.codec.map(|c| c.codec), Some("opus"), "{name}");
            let got: Vec<_> = records(&s.capture).iter().map(|r| r.0).collect();
            assert_eq!(got, times, "{name}");
        }
        let data = crate::mjr::write::v2('d', "text", 0, &[]);
        assert_eq!(split_capture(&data), Err(SplitError::DataChannel));
    }

    fn capture_of(packets: &[(u32, Vec<u8>)]) -> Vec<u8> {
        let mut out = Vec::new();
        let header = FileHeader {
            address: "10.0.0.1".into(),
            ..FileHeader::default()
        };
        rtpdump::write_header(&mut out, &header);
        for (ms, p) in packets {
            rtpdump::write_rtp_record(&mut out, *ms, p).unwrap();
        }
        out
    }

    #[test]
    fn codecs_are_guessed_from_payload_type_clock_and_keyframe_signatures() {
        let stream = |pt: u8, step: u32, key: &[u8], other: &[u8]| {
            capture_of(
                &(0..50u16)
                    .map(|i| {
                        let payload = if i == 0 { key } else { other };
                        (
                            u32::from(i) * 20,
                            rtp(1, i, u32::from(i) * step, pt, payload),
                        )
                    })
                    .collect::<Vec<_>>(),
            )
        };
        let vp8_key = [0x90, 0x80, 0x01, 0x00, 0x00, 0x00, 0x9d, 0x01, 0x2a, 0, 0];
        let vp9_key = [0x8a, 0x01, 0x00, 0x82, 0x49, 0x83, 0x42, 0x00];
        let h264_key = [0x67, 0x42, 0x00, 0x1f];
        let cases: Vec<(&str, Vec<u8>, Option<&str>)> = vec![
            (
                "PCMU by static type",
                stream(0, 160, b"u", b"u"),
                Some("pcmu"),
            ),
            (
                "Opus by its 48 kHz clock",
                stream(111, 960, &[0x78], &[0x78]),
                Some("opus"),
            ),
            (
                "VP8 by its key frame",
                stream(96, 1800, &vp8_key, &[0x10, 0x01]),
                Some("vp8"),
            ),
            (
                "VP9 by its key frame",
                stream(98, 1800, &vp9_key, &[0x48, 0x00]),
                Some("vp9"),
            ),
            (
                "H.264 by its SPS",
                stream(102, 1800, &h264_key, &[0x41, 0x9a]),
                Some("h264"),
            ),
            (
                "90 kHz with no key frame",
                stream(96, 1800, &[0x41], &[0x41]),
                None,
            ),
            ("an 8 kHz dynamic type", stream(100, 160, b"a", b"a"), None),
        ];
        for (name, capture, want) in cases {
            assert_eq!(guess_codec(&capture).map(|g| g.codec), want, "{name}");
        }
    }

    /// A small valid pcap (Ethernet, UDP, two streams and an SR) and a small .mjr: the seeds the
    /// properties below cut and corrupt.
    fn seeds() -> [Vec<u8>; 2] {
        let mut pcap = pcap_header(1);
        for i in 0..6u16 {
            let p = rtp(u32::from(i % 2), i, u32::from(i) * 960, 111, &[0x78, 1, 2]);
            let f = net::write::ethernet_udp(addr(1, 1), addr(2, 2), &[5], &p);
            pcap_record(&mut pcap, u64::from(i) * 20_000, &f);
        }
        let p: Vec<Vec<u8>> = (0..4)
            .map(|i| rtp(9, i, u32::from(i) * 960, 111, b"o"))
            .collect();
        let mjr = crate::mjr::write::v2('a', "opus", 0, &[(0, &p[0]), (20, &p[1]), (40, &p[2])]);
        [pcap, mjr]
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(proptest::num::u8::ANY, 0..2048)) {
            let _ = split_capture(&data);
            let mut ng = vec![0x0A, 0x0D, 0x0D, 0x0A];
            ng.extend_from_slice(&data);
            let _ = split_capture(&ng);
            let mut mjr = b"MJR00002".to_vec();
            mjr.extend_from_slice(&data);
            let _ = split_capture(&mjr);
        }

        #[test]
        fn cut_or_corrupted_captures_never_panic_and_keep_what_precedes_the_damage(
            which in 0usize..2,
            cut in 0usize..4096,
            flip in proptest::option::of((0usize..4096, proptest::num::u8::ANY)),
        ) {
            let mut data = seeds()[which].clone();
            let whole = split_capture(&data).unwrap();
            if let Some((at, byte)) = flip {
                let at = at % data.len();
                data[at] ^= byte | 1;
            }
            data.truncate(cut.min(data.len()));
            if let Ok(report) = split_capture(&data) {
                let packets: u64 = report.streams.iter().map(|s| s.rtp_packets).sum();
                let all: u64 = whole.streams.iter().map(|s| s.rtp_packets).sum();
                if flip.is_none() {
                    proptest::prop_assert!(packets <= all);
                }
                for s in &report.streams {
                    proptest::prop_assert!(RtpdumpReader::new(&s.capture).unwrap().all(|r| r.is_ok()));
                }
            }
        }
    }
}
