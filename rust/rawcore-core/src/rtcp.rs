//! RTCP compound packets (RFC 3550 section 6).
//!
//! [`parse_compound`] walks the packets of one compound datagram and decodes the kinds rawcore
//! uses: sender reports (the NTP/RTP timestamp pairs that align streams), receiver reports,
//! source descriptions (CNAMEs that tie streams to participants) and goodbyes. Anything else, such
//! as APP or feedback messages, is kept as [`RtcpPacket::Unknown`]. A length field that overruns
//! the datagram stops the walk with an error naming the offset; RTCP is rare next to RTP, so the
//! decoded packets own their data.

/// Seconds between the NTP epoch (1900) and the Unix epoch (1970).
pub const NTP_UNIX_OFFSET_SECS: u64 = 2_208_988_800;

/// Why an RTCP datagram could not be parsed.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum RtcpError {
    /// The datagram is empty.
    #[error("empty RTCP packet")]
    Empty,
    /// Fewer than 4 bytes left for a packet header.
    #[error("RTCP header truncated at byte {offset}: {available} bytes left")]
    TruncatedHeader {
        /// Offset within the datagram.
        offset: usize,
        /// Bytes left.
        available: usize,
    },
    /// The version field is not 2.
    #[error("not RTCP: version {version} at byte {offset}")]
    BadVersion {
        /// Offset within the datagram.
        offset: usize,
        /// The version found.
        version: u8,
    },
    /// The length field runs past the end of the datagram.
    #[error("RTCP packet at byte {offset} overruns the datagram: needs {needed} bytes, {available} available")]
    Overrun {
        /// Offset within the datagram.
        offset: usize,
        /// Bytes the length field asks for.
        needed: usize,
        /// Bytes left.
        available: usize,
    },
    /// The padding count is 0 or larger than the packet.
    #[error("bad RTCP padding at byte {offset}")]
    BadPadding {
        /// Offset within the datagram.
        offset: usize,
    },
    /// The body is too short for what its header announces.
    #[error("malformed RTCP packet type {packet_type} at byte {offset}: {reason}")]
    Malformed {
        /// Offset within the datagram.
        offset: usize,
        /// Packet type.
        packet_type: u8,
        /// What is wrong.
        reason: &'static str,
    },
}

/// A reception report block carried by SR and RR packets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportBlock {
    /// The source this block reports on.
    pub ssrc: u32,
    /// Fraction lost since the last report, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative packets lost (24-bit signed).
    pub cumulative_lost: i32,
    /// Extended highest sequence number received.
    pub highest_seq: u32,
    /// Interarrival jitter in timestamp units.
    pub jitter: u32,
    /// Middle 32 bits of the last SR's NTP timestamp.
    pub last_sr: u32,
    /// Delay since the last SR, in 1/65536 s.
    pub delay_since_last_sr: u32,
}

/// A sender report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderReport {
    /// The sender.
    pub ssrc: u32,
    /// 64-bit NTP timestamp (32.32 fixed point seconds since 1900).
    pub ntp: u64,
    /// RTP timestamp corresponding to `ntp`.
    pub rtp_ts: u32,
    /// Packets sent.
    pub packet_count: u32,
    /// Payload octets sent.
    pub octet_count: u32,
    /// Reception reports.
    pub reports: Vec<ReportBlock>,
}

/// A receiver report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiverReport {
    /// The reporter.
    pub ssrc: u32,
    /// Reception reports.
    pub reports: Vec<ReportBlock>,
}

/// SDES item type of a canonical name.
pub const SDES_CNAME: u8 = 1;

/// One SDES item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdesItem {
    /// Item type (1 = CNAME, 2 = NAME, ...).
    pub kind: u8,
    /// The text, decoded leniently as UTF-8.
    pub value: String,
}

/// The SDES items of one source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdesChunk {
    /// The described source.
    pub ssrc: u32,
    /// Its items.
    pub items: Vec<SdesItem>,
}

impl SdesChunk {
    /// The CNAME item, if present.
    #[must_use]
    pub fn cname(&self) -> Option<&str> {
        self.items
            .iter()
            .find(|i| i.kind == SDES_CNAME)
            .map(|i| i.value.as_str())
    }
}

/// A goodbye.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Goodbye {
    /// Sources leaving.
    pub ssrcs: Vec<u32>,
    /// Reason for leaving, if given.
    pub reason: Option<String>,
}

/// One packet of a compound datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RtcpPacket {
    /// Sender report (PT 200).
    SenderReport(SenderReport),
    /// Receiver report (PT 201).
    ReceiverReport(ReceiverReport),
    /// Source description (PT 202).
    SourceDescription(Vec<SdesChunk>),
    /// Goodbye (PT 203).
    Goodbye(Goodbye),
    /// Any other packet type (APP, feedback, XR, ...), not decoded.
    Unknown {
        /// Packet type.
        pt: u8,
        /// The 5-bit count/subtype field.
        count: u8,
        /// Body length in bytes (after the 4-byte header, padding removed).
        len: usize,
    },
}

fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    let bytes = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

/// Parses every packet of a compound RTCP datagram.
pub fn parse_compound(buf: &[u8]) -> Result<Vec<RtcpPacket>, RtcpError> {
    if buf.is_empty() {
        return Err(RtcpError::Empty);
    }
    let mut packets = Vec::with_capacity(4);
    let mut offset = 0;
    while offset < buf.len() {
        let rest = buf.get(offset..).unwrap_or_default();
        let [first, pt, len_hi, len_lo, ..] = *rest else {
            return Err(RtcpError::TruncatedHeader {
                offset,
                available: rest.len(),
            });
        };
        let version = first >> 6;
        if version != 2 {
            return Err(RtcpError::BadVersion { offset, version });
        }
        let total = (usize::from(u16::from_be_bytes([len_hi, len_lo])) + 1) * 4;
        let packet = rest.get(..total).ok_or(RtcpError::Overrun {
            offset,
            needed: total,
            available: rest.len(),
        })?;
        let mut body = packet.get(4..).unwrap_or_default();
        if first & 0x20 != 0 {
            let padding = usize::from(body.last().copied().unwrap_or(0));
            if padding == 0 || padding > body.len() {
                return Err(RtcpError::BadPadding { offset });
            }
            body = body.get(..body.len() - padding).unwrap_or_default();
        }
        let count = first & 0x1F;
        let malformed = |reason| RtcpError::Malformed {
            offset,
            packet_type: pt,
            reason,
        };
        packets.push(match pt {
            200 => RtcpPacket::SenderReport(parse_sr(body, count).ok_or(malformed(
                "sender info or report blocks shorter than announced",
            ))?),
            201 => {
                let ssrc = be_u32(body, 0).ok_or(malformed("missing reporter SSRC"))?;
                let reports = parse_report_blocks(body.get(4..).unwrap_or_default(), count)
                    .ok_or(malformed("report blocks shorter than announced"))?;
                RtcpPacket::ReceiverReport(ReceiverReport { ssrc, reports })
            }
            202 => RtcpPacket::SourceDescription(
                parse_sdes(body, count).ok_or(malformed("SDES chunks shorter than announced"))?,
            ),
            203 => RtcpPacket::Goodbye(
                parse_bye(body, count).ok_or(malformed("BYE shorter than announced"))?,
            ),
            _ => RtcpPacket::Unknown {
                pt,
                count,
                len: body.len(),
            },
        });
        offset += total;
    }
    Ok(packets)
}

fn parse_report_blocks(body: &[u8], count: u8) -> Option<Vec<ReportBlock>> {
    let blocks = body.get(..usize::from(count) * 24)?;
    Some(
        blocks
            .chunks_exact(24)
            .map(|b| {
                let word = |at| be_u32(b, at).expect("report block chunks are 24 bytes");
                let lost = word(4);
                // Sign-extend the 24-bit cumulative loss.
                let cumulative_lost = ((lost << 8) as i32) >> 8;
                ReportBlock {
                    ssrc: word(0),
                    fraction_lost: (lost >> 24) as u8,
                    cumulative_lost,
                    highest_seq: word(8),
                    jitter: word(12),
                    last_sr: word(16),
                    delay_since_last_sr: word(20),
                }
            })
            .collect(),
    )
}

fn parse_sr(body: &[u8], count: u8) -> Option<SenderReport> {
    let ntp_hi = be_u32(body, 4)?;
    let ntp_lo = be_u32(body, 8)?;
    Some(SenderReport {
        ssrc: be_u32(body, 0)?,
        ntp: u64::from(ntp_hi) << 32 | u64::from(ntp_lo),
        rtp_ts: be_u32(body, 12)?,
        packet_count: be_u32(body, 16)?,
        octet_count: be_u32(body, 20)?,
        reports: parse_report_blocks(body.get(24..)?, count)?,
    })
}

fn parse_sdes(body: &[u8], count: u8) -> Option<Vec<SdesChunk>> {
    let mut chunks = Vec::with_capacity(usize::from(count));
    let mut at = 0;
    for _ in 0..count {
        let ssrc = be_u32(body, at)?;
        at += 4;
        let mut items = Vec::new();
        loop {
            let kind = *body.get(at)?;
            if kind == 0 {
                // The item list ends with a null byte, then pads to the next word.
                at = (at + 4) & !3;
                break;
            }
            let len = usize::from(*body.get(at + 1)?);
            let value = body.get(at + 2..at + 2 + len)?;
            items.push(SdesItem {
                kind,
                value: String::from_utf8_lossy(value).into_owned(),
            });
            at += 2 + len;
        }
        chunks.push(SdesChunk { ssrc, items });
    }
    Some(chunks)
}

fn parse_bye(body: &[u8], count: u8) -> Option<Goodbye> {
    let ssrcs = (0..usize::from(count))
        .map(|i| be_u32(body, i * 4))
        .collect::<Option<Vec<_>>>()?;
    let after = body.get(usize::from(count) * 4..).unwrap_or_default();
    let reason = match after.split_first() {
        Some((&len, rest)) if len > 0 => {
            Some(String::from_utf8_lossy(rest.get(..usize::from(len))?).into_owned())
        }
        _ => None,
    };
    Some(Goodbye { ssrcs, reason })
}

/// Converts a 64-bit NTP timestamp to milliseconds since the Unix epoch.
#[must_use]
pub fn ntp_to_unix_ms(ntp: u64) -> f64 {
    let secs = (ntp >> 32) as f64 - NTP_UNIX_OFFSET_SECS as f64;
    let frac = (ntp & 0xFFFF_FFFF) as f64 / 4_294_967_296.0;
    (secs + frac) * 1000.0
}

/// Writers for tests and benchmarks.
pub mod write {
    /// Appends a sender report without report blocks.
    pub fn sender_report(
        out: &mut Vec<u8>,
        ssrc: u32,
        ntp: u64,
        rtp_ts: u32,
        packets: u32,
        octets: u32,
    ) {
        out.extend_from_slice(&[0x80, 200, 0, 6]);
        for word in [
            ssrc,
            (ntp >> 32) as u32,
            ntp as u32,
            rtp_ts,
            packets,
            octets,
        ] {
            out.extend_from_slice(&word.to_be_bytes());
        }
    }

    /// Appends an SDES packet with one CNAME chunk.
    pub fn sdes_cname(out: &mut Vec<u8>, ssrc: u32, cname: &str) {
        let name = cname.as_bytes().get(..255).unwrap_or(cname.as_bytes());
        // SSRC, type, length, text, then at least one null byte up to a word boundary.
        let chunk_len = (4 + 2 + name.len() + 1).div_ceil(4) * 4;
        out.extend_from_slice(&[0x81, 202]);
        out.extend_from_slice(&(chunk_len as u16 / 4).to_be_bytes());
        out.extend_from_slice(&ssrc.to_be_bytes());
        out.extend_from_slice(&[super::SDES_CNAME, name.len() as u8]);
        out.extend_from_slice(name);
        out.resize(out.len() + chunk_len - 6 - name.len(), 0);
    }

    /// Appends a BYE for `ssrcs` (at most 31).
    pub fn bye(out: &mut Vec<u8>, ssrcs: &[u32]) {
        let ssrcs = ssrcs.get(..31).unwrap_or(ssrcs);
        out.extend_from_slice(&[0x80 | ssrcs.len() as u8, 203]);
        out.extend_from_slice(&(ssrcs.len() as u16).to_be_bytes());
        for s in ssrcs {
            out.extend_from_slice(&s.to_be_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::too_many_lines)] // one table of cases reads best in one piece
    fn compound_cases() {
        struct Case {
            name: &'static str,
            input: Vec<u8>,
            want: Result<Vec<RtcpPacket>, RtcpError>,
        }
        let mut sr_sdes_bye = Vec::new();
        write::sender_report(
            &mut sr_sdes_bye,
            0x1111,
            0xE000_0000_8000_0000,
            48_000,
            10,
            1000,
        );
        write::sdes_cname(&mut sr_sdes_bye, 0x1111, "alice@host");
        write::bye(&mut sr_sdes_bye, &[0x1111]);

        let mut rr = vec![0x81, 201, 0, 7, 0, 0, 0, 9];
        rr.extend_from_slice(&[0, 0, 0x22, 0x22, 0x40, 0xFF, 0xFF, 0xFE]);
        rr.extend_from_slice(&[0, 1, 0, 5, 0, 0, 0, 30, 1, 2, 3, 4, 0, 0, 0, 7]);

        let mut overrun = Vec::new();
        write::sender_report(&mut overrun, 1, 0, 0, 0, 0);
        overrun.extend_from_slice(&[0x80, 203, 0, 9, 0, 0, 0, 1]);

        let mut bye_reason = vec![0x81, 203, 0, 3, 0, 0, 0, 5, 4];
        bye_reason.extend_from_slice(b"done\0\0\0");

        let cases = [
            Case {
                name: "SR, SDES and BYE in one compound",
                input: sr_sdes_bye,
                want: Ok(vec![
                    RtcpPacket::SenderReport(SenderReport {
                        ssrc: 0x1111,
                        ntp: 0xE000_0000_8000_0000,
                        rtp_ts: 48_000,
                        packet_count: 10,
                        octet_count: 1000,
                        reports: vec![],
                    }),
                    RtcpPacket::SourceDescription(vec![SdesChunk {
                        ssrc: 0x1111,
                        items: vec![SdesItem {
                            kind: SDES_CNAME,
                            value: "alice@host".into(),
                        }],
                    }]),
                    RtcpPacket::Goodbye(Goodbye {
                        ssrcs: vec![0x1111],
                        reason: None,
                    }),
                ]),
            },
            Case {
                name: "receiver report block sign-extends cumulative loss",
                input: rr,
                want: Ok(vec![RtcpPacket::ReceiverReport(ReceiverReport {
                    ssrc: 9,
                    reports: vec![ReportBlock {
                        ssrc: 0x2222,
                        fraction_lost: 0x40,
                        cumulative_lost: -2,
                        highest_seq: 0x0001_0005,
                        jitter: 30,
                        last_sr: 0x0102_0304,
                        delay_since_last_sr: 7,
                    }],
                })]),
            },
            Case {
                name: "BYE keeps its reason",
                input: bye_reason,
                want: Ok(vec![RtcpPacket::Goodbye(Goodbye {
                    ssrcs: vec![5],
                    reason: Some("done".into()),
                })]),
            },
            Case {
                name: "APP packet is kept as unknown",
                input: vec![0x81, 204, 0, 2, 0, 0, 0, 1, b'a', b'b', b'c', b'd'],
                want: Ok(vec![RtcpPacket::Unknown {
                    pt: 204,
                    count: 1,
                    len: 8,
                }]),
            },
            Case {
                name: "length that overruns the datagram stops with an error",
                input: overrun,
                want: Err(RtcpError::Overrun {
                    offset: 28,
                    needed: 40,
                    available: 8,
                }),
            },
            Case {
                name: "SR whose count announces missing report blocks is malformed",
                input: {
                    let mut b = Vec::new();
                    write::sender_report(&mut b, 1, 0, 0, 0, 0);
                    b[0] |= 2;
                    b
                },
                want: Err(RtcpError::Malformed {
                    offset: 0,
                    packet_type: 200,
                    reason: "sender info or report blocks shorter than announced",
                }),
            },
            Case {
                name: "wrong version is rejected",
                input: vec![0x40, 200, 0, 0],
                want: Err(RtcpError::BadVersion {
                    offset: 0,
                    version: 1,
                }),
            },
            Case {
                name: "trailing bytes short of a header are rejected",
                input: vec![0x80, 204, 0, 0, 0x80],
                want: Err(RtcpError::TruncatedHeader {
                    offset: 4,
                    available: 1,
                }),
            },
            Case {
                name: "empty datagram is rejected",
                input: vec![],
                want: Err(RtcpError::Empty),
            },
        ];
        for case in cases {
            assert_eq!(parse_compound(&case.input), case.want, "{}", case.name);
        }
    }

    #[test]
    fn ntp_to_unix_ms_cases() {
        let cases = [
            ("unix epoch", NTP_UNIX_OFFSET_SECS << 32, 0.0),
            (
                "half a second after the epoch",
                NTP_UNIX_OFFSET_SECS << 32 | 0x8000_0000,
                500.0,
            ),
            (
                "2021-01-01",
                (NTP_UNIX_OFFSET_SECS + 1_609_459_200) << 32,
                1_609_459_200_000.0,
            ),
        ];
        for (name, ntp, want) in cases {
            assert!((ntp_to_unix_ms(ntp) - want).abs() < 1e-6, "{name}");
        }
    }
}
