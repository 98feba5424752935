//! Packet captures as `tcpdump`, Wireshark and `dumpcap` write them: classic pcap and pcapng.
//!
//! Both are read over a byte slice into [`Frame`]s: a link-layer frame, its link type, its
//! capture time in nanoseconds since the Unix epoch and its length on the wire. Classic pcap is
//! read in either byte order with micro- or nanosecond stamps; pcapng by its blocks (Section
//! Header, Interface Description with its own link type, `if_tsresol` and `if_tsoffset`,
//! Enhanced, Simple and the obsolete Packet block), in either byte order, section by section.
//! Other blocks are skipped. A file header that cannot be read is an error; a capture cut short
//! or damaged later ends the frames, and [`FrameReader::stop`] says where and why, so a
//! truncated capture still yields every frame before the damage. Nothing here panics on input.

/// Why a packet capture cannot be read at all.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum PcapError {
    /// The file is shorter than its header.
    #[error("{format} header truncated: needs {needed} bytes, {available} available")]
    TruncatedHeader {
        /// "pcap" or "pcapng".
        format: &'static str,
        /// Bytes the header needs.
        needed: usize,
        /// Bytes in the file.
        available: usize,
    },
    /// The pcapng Section Header Block has no valid byte-order magic.
    #[error("pcapng section header at byte {byte_offset} has no byte-order magic")]
    BadByteOrder {
        /// Start of the block.
        byte_offset: usize,
    },
    /// Not a pcap or pcapng file.
    #[error("not a pcap or pcapng capture")]
    NotPcap,
}

/// One link-layer frame, borrowed from the capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Where the frame's record or block starts in the file.
    pub byte_offset: usize,
    /// The link type of the interface that captured it (`LINKTYPE_*`).
    pub linktype: u16,
    /// Capture time, nanoseconds since the Unix epoch.
    pub time_ns: u64,
    /// The captured bytes (at most the snap length).
    pub data: &'a [u8],
    /// The frame's length on the wire.
    pub orig_len: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    Little,
    Big,
}

impl Order {
    fn u16(self, b: &[u8], at: usize) -> Option<u16> {
        let s: [u8; 2] = b.get(at..at.checked_add(2)?)?.try_into().ok()?;
        Some(match self {
            Self::Little => u16::from_le_bytes(s),
            Self::Big => u16::from_be_bytes(s),
        })
    }

    fn u32(self, b: &[u8], at: usize) -> Option<u32> {
        let s: [u8; 4] = b.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(match self {
            Self::Little => u32::from_le_bytes(s),
            Self::Big => u32::from_be_bytes(s),
        })
    }

    fn i64(self, b: &[u8], at: usize) -> Option<i64> {
        let s: [u8; 8] = b.get(at..at.checked_add(8)?)?.try_into().ok()?;
        Some(match self {
            Self::Little => i64::from_le_bytes(s),
            Self::Big => i64::from_be_bytes(s),
        })
    }
}

/// A pcapng interface: its link type and clock.
#[derive(Debug, Clone, Copy)]
struct Interface {
    linktype: u16,
    /// Timestamp units per second (10^n or 2^n).
    units_per_sec: u64,
    offset_sec: i64,
}

impl Interface {
    fn time_ns(&self, ticks: u64) -> u64 {
        let ns = u128::from(ticks) * 1_000_000_000 / u128::from(self.units_per_sec.max(1));
        let offset = i128::from(self.offset_sec) * 1_000_000_000;
        u64::try_from((ns as i128 + offset).max(0)).unwrap_or(u64::MAX)
    }
}

#[derive(Debug, Clone)]
enum Kind {
    Classic {
        order: Order,
        nanos: bool,
        linktype: u16,
    },
    Ng {
        order: Order,
        interfaces: Vec<Interface>,
        last_time_ns: u64,
    },
}

/// Reads the frames of a pcap or pcapng capture without copying them.
#[derive(Debug, Clone)]
pub struct FrameReader<'a> {
    data: &'a [u8],
    pos: usize,
    kind: Kind,
    stop: Option<(usize, String)>,
}

const PCAP_HEADER_LEN: usize = 24;
const PCAP_RECORD_LEN: usize = 16;
const NG_SHB: u32 = 0x0A0D_0D0A;
const NG_BOM: u32 = 0x1A2B_3C4D;
const NG_IDB: u32 = 1;
const NG_PB: u32 = 2;
const NG_SPB: u32 = 3;
const NG_EPB: u32 = 6;
/// Largest block or record accepted; anything larger is damage, not a packet.
const MAX_RECORD: usize = 1 << 24;

/// Whether `data` starts like a classic pcap or a pcapng capture.
#[must_use]
pub fn is_pcap(data: &[u8]) -> bool {
    matches!(
        data.get(..4),
        Some(
            [0xD4, 0xC3, 0xB2, 0xA1]
                | [0xA1, 0xB2, 0xC3, 0xD4]
                | [0x4D, 0x3C, 0xB2, 0xA1]
                | [0xA1, 0xB2, 0x3C, 0x4D]
                | [0x0A, 0x0D, 0x0D, 0x0A]
        )
    )
}

impl<'a> FrameReader<'a> {
    /// Reads the file header (classic) or the first Section Header Block (pcapng).
    pub fn new(data: &'a [u8]) -> Result<Self, PcapError> {
        let magic = data.get(..4).ok_or(PcapError::NotPcap)?;
        let classic = match magic {
            [0xD4, 0xC3, 0xB2, 0xA1] => Some((Order::Little, false)),
            [0xA1, 0xB2, 0xC3, 0xD4] => Some((Order::Big, false)),
            [0x4D, 0x3C, 0xB2, 0xA1] => Some((Order::Little, true)),
            [0xA1, 0xB2, 0x3C, 0x4D] => Some((Order::Big, true)),
            [0x0A, 0x0D, 0x0D, 0x0A] => None,
            _ => return Err(PcapError::NotPcap),
        };
        if let Some((order, nanos)) = classic {
            let linktype = order.u32(data, 20).ok_or(PcapError::TruncatedHeader {
                format: "pcap",
                needed: PCAP_HEADER_LEN,
                available: data.len(),
            })?;
            return Ok(Self {
                data,
                pos: PCAP_HEADER_LEN,
                // The upper bits carry FCS information, not the link type.
                kind: Kind::Classic {
                    order,
                    nanos,
                    linktype: (linktype & 0xFFFF) as u16,
                },
                stop: None,
            });
        }
        let order = section_order(data, 0)?;
        Ok(Self {
            data,
            pos: 0,
            kind: Kind::Ng {
                order,
                interfaces: Vec::new(),
                last_time_ns: 0,
            },
            stop: None,
        })
    }

    /// Where and why reading stopped before the end of the file, if it did.
    #[must_use]
    pub fn stop(&self) -> Option<&(usize, String)> {
        self.stop.as_ref()
    }

    /// "pcap" or "pcapng".
    #[must_use]
    pub fn format(&self) -> &'static str {
        match self.kind {
            Kind::Classic { .. } => "pcap",
            Kind::Ng { .. } => "pcapng",
        }
    }

    fn halt(&mut self, at: usize, why: String) -> Option<Frame<'a>> {
        self.stop = Some((at, why));
        self.pos = self.data.len();
        None
    }

    fn next_classic(&mut self, order: Order, nanos: bool, linktype: u16) -> Option<Frame<'a>> {
        let at = self.pos;
        let rest = self.data.get(at..).unwrap_or_default();
        if rest.is_empty() {
            return None;
        }
        let (Some(sec), Some(frac), Some(incl), Some(orig)) = (
            order.u32(rest, 0),
            order.u32(rest, 4),
            order.u32(rest, 8),
            order.u32(rest, 12),
        ) else {
            return self.halt(at, "capture ends inside a record header".into());
        };
        let incl = incl as usize;
        if incl > MAX_RECORD {
            return self.halt(at, format!("record claims {incl} bytes; capture damaged"));
        }
        let Some(data) = rest.get(PCAP_RECORD_LEN..PCAP_RECORD_LEN + incl) else {
            return self.halt(
                at,
                format!(
                    "capture cut short: record needs {incl} bytes, {} available",
                    rest.len() - PCAP_RECORD_LEN
                ),
            );
        };
        self.pos = at + PCAP_RECORD_LEN + incl;
        let frac_ns = if nanos {
            u64::from(frac)
        } else {
            u64::from(frac) * 1000
        };
        Some(Frame {
            byte_offset: at,
            linktype,
            time_ns: u64::from(sec) * 1_000_000_000 + frac_ns,
            data,
            orig_len: orig,
        })
    }

    // One loop over the block types, each arm a few lines: split up it would read worse.
    #[allow(clippy::too_many_lines)]
    fn next_ng(&mut self) -> Option<Frame<'a>> {
        loop {
            let at = self.pos;
            let rest = self.data.get(at..).unwrap_or_default();
            if rest.is_empty() {
                return None;
            }
            let Kind::Ng { order, .. } = self.kind else {
                return None;
            };
            // A new section may change the byte order.
            let order = if rest.get(..4) == Some(&NG_SHB.to_be_bytes()) {
                match section_order(self.data, at) {
                    Ok(o) => o,
                    Err(e) => return self.halt(at, e.to_string()),
                }
            } else {
                order
            };
            let (Some(block_type), Some(total)) = (order.u32(rest, 0), order.u32(rest, 4)) else {
                return self.halt(at, "capture ends inside a block header".into());
            };
            let total = total as usize;
            if total < 12 || total % 4 != 0 || total > MAX_RECORD {
                return self.halt(
                    at,
                    format!("block of type {block_type:#x} has length {total}"),
                );
            }
            let Some(block) = rest.get(..total) else {
                return self.halt(
                    at,
                    format!(
                        "capture cut short: block needs {total} bytes, {} available",
                        rest.len()
                    ),
                );
            };
            self.pos = at + total;
            let body = &block[8..total - 4];
            let Kind::Ng {
                order: ref mut cur,
                ref mut interfaces,
                ref mut last_time_ns,
            } = self.kind
            else {
                return None;
            };
            *cur = order;
            match block_type {
                NG_SHB => interfaces.clear(),
                NG_IDB => interfaces.push(parse_idb(order, body)),
                NG_EPB | NG_PB => {
                    let (iface, hi, lo, cap, orig, data_at) = if block_type == NG_EPB {
                        (
                            order.u32(body, 0).map(|v| v as usize),
                            order.u32(body, 4),
                            order.u32(body, 8),
                            order.u32(body, 12),
                            order.u32(body, 16),
                            20,
                        )
                    } else {
                        (
                            order.u16(body, 0).map(usize::from),
                            order.u32(body, 4),
                            order.u32(body, 8),
                            order.u32(body, 12),
                            order.u32(body, 16),
                            20,
                        )
                    };
                    let (Some(iface), Some(hi), Some(lo), Some(cap), Some(orig)) =
                        (iface, hi, lo, cap, orig)
                    else {
                        return self.halt(at, "packet block too short for its fields".into());
                    };
                    let Some(interface) = interfaces.get(iface).copied() else {
                        return self
                            .halt(at, format!("packet block names unknown interface {iface}"));
                    };
                    let Some(data) = body.get(data_at..data_at + cap as usize) else {
                        return self
                            .halt(at, "packet block shorter than its captured length".into());
                    };
                    let time_ns = interface.time_ns((u64::from(hi) << 32) | u64::from(lo));
                    *last_time_ns = time_ns;
                    return Some(Frame {
                        byte_offset: at,
                        linktype: interface.linktype,
                        time_ns,
                        data,
                        orig_len: orig,
                    });
                }
                NG_SPB => {
                    let Some(interface) = interfaces.first().copied() else {
                        return self.halt(at, "simple packet block before any interface".into());
                    };
                    let Some(orig) = order.u32(body, 0) else {
                        return self.halt(at, "simple packet block too short".into());
                    };
                    let data = body.get(4..).unwrap_or_default();
                    let data = data.get(..orig as usize).unwrap_or(data);
                    // A Simple Packet Block has no time: it arrived no earlier than the last.
                    return Some(Frame {
                        byte_offset: at,
                        linktype: interface.linktype,
                        time_ns: *last_time_ns,
                        data,
                        orig_len: orig,
                    });
                }
                _ => {}
            }
        }
    }
}

fn section_order(data: &[u8], at: usize) -> Result<Order, PcapError> {
    let bom: [u8; 4] = data
        .get(at + 8..at + 12)
        .and_then(|b| b.try_into().ok())
        .ok_or(PcapError::TruncatedHeader {
            format: "pcapng",
            needed: 28,
            available: data.len().saturating_sub(at),
        })?;
    if u32::from_le_bytes(bom) == NG_BOM {
        Ok(Order::Little)
    } else if u32::from_be_bytes(bom) == NG_BOM {
        Ok(Order::Big)
    } else {
        Err(PcapError::BadByteOrder { byte_offset: at })
    }
}

fn parse_idb(order: Order, body: &[u8]) -> Interface {
    let mut iface = Interface {
        linktype: order.u16(body, 0).unwrap_or(0),
        units_per_sec: 1_000_000,
        offset_sec: 0,
    };
    let mut at = 8;
    while let (Some(code), Some(len)) = (order.u16(body, at), order.u16(body, at + 2)) {
        let len = usize::from(len);
        let Some(value) = body.get(at + 4..at + 4 + len) else {
            break;
        };
        match (code, value) {
            (0, _) => break,
            (9, [res]) => {
                let exp = u32::from(res & 0x7F);
                iface.units_per_sec = if res & 0x80 == 0 {
                    10u64.checked_pow(exp).unwrap_or(u64::MAX)
                } else {
                    2u64.checked_pow(exp).unwrap_or(u64::MAX)
                };
            }
            (14, _) => iface.offset_sec = order.i64(value, 0).unwrap_or(0),
            _ => {}
        }
        at += 4 + len.div_ceil(4) * 4;
    }
    iface
}

impl<'a> Iterator for FrameReader<'a> {
    type Item = Frame<'a>;

    fn next(&mut self) -> Option<Frame<'a>> {
        match self.kind {
            Kind::Classic {
                order,
                nanos,
                linktype,
            } => self.next_classic(order, nanos, linktype),
            Kind::Ng { .. } => self.next_ng(),
        }
    }
}

/// Writers for tests, benchmarks and fuzz seeds: frames in, capture bytes out.
pub mod write {
    /// A classic little-endian microsecond pcap header for `linktype`.
    #[must_use]
    pub fn pcap_header(linktype: u16) -> Vec<u8> {
        let mut out = Vec::with_capacity(24);
        out.extend_from_slice(&0xA1B2_C3D4u32.to_le_bytes());
        out.extend_from_slice(&2u16.to_le_bytes());
        out.extend_from_slice(&4u16.to_le_bytes());
        out.extend_from_slice(&[0; 8]);
        out.extend_from_slice(&65_535u32.to_le_bytes());
        out.extend_from_slice(&u32::from(linktype).to_le_bytes());
        out
    }

    /// Appends one classic pcap record stamped `time_us`.
    pub fn pcap_record(out: &mut Vec<u8>, time_us: u64, frame: &[u8]) {
        out.extend_from_slice(&((time_us / 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&((time_us % 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(frame);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ng_block(kind: u32, body: &[u8]) -> Vec<u8> {
        let mut padded = body.to_vec();
        padded.resize(body.len().div_ceil(4) * 4, 0);
        let total = (padded.len() + 12) as u32;
        let mut out = kind.to_le_bytes().to_vec();
        out.extend_from_slice(&total.to_le_bytes());
        out.extend_from_slice(&padded);
        out.extend_from_slice(&total.to_le_bytes());
        out
    }

    fn shb() -> Vec<u8> {
        let mut body = NG_BOM.to_le_bytes().to_vec();
        body.extend_from_slice(&1u16.to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        body.extend_from_slice(&(-1i64).to_le_bytes());
        ng_block(NG_SHB, &body)
    }

    fn idb(linktype: u16, tsresol: Option<u8>) -> Vec<u8> {
        let mut body = linktype.to_le_bytes().to_vec();
        body.extend_from_slice(&[0, 0]);
        body.extend_from_slice(&0u32.to_le_bytes());
        if let Some(res) = tsresol {
            body.extend_from_slice(&9u16.to_le_bytes());
            body.extend_from_slice(&1u16.to_le_bytes());
            body.extend_from_slice(&[res, 0, 0, 0]);
            body.extend_from_slice(&[0, 0, 0, 0]);
        }
        ng_block(NG_IDB, &body)
    }

    fn epb(iface: u32, ticks: u64, data: &[u8]) -> Vec<u8> {
        let mut body = iface.to_le_bytes().to_vec();
        body.extend_from_slice(&((ticks >> 32) as u32).to_le_bytes());
        body.extend_from_slice(&(ticks as u32).to_le_bytes());
        body.extend_from_slice(&(data.len() as u32).to_le_bytes());
        body.extend_from_slice(&(data.len() as u32).to_le_bytes());
        body.extend_from_slice(data);
        ng_block(NG_EPB, &body)
    }

    #[test]
    fn classic_pcap_in_both_byte_orders_and_resolutions_gives_the_same_times() {
        let le_us = {
            let mut f = write::pcap_header(1);
            write::pcap_record(&mut f, 1_500_000, b"abc");
            f
        };
        let mut be_ns = vec![0xA1, 0xB2, 0x3C, 0x4D, 0, 2, 0, 4];
        be_ns.extend_from_slice(&[0; 8]);
        be_ns.extend_from_slice(&65_535u32.to_be_bytes());
        be_ns.extend_from_slice(&1u32.to_be_bytes());
        be_ns.extend_from_slice(&1u32.to_be_bytes());
        be_ns.extend_from_slice(&500_000_000u32.to_be_bytes());
        be_ns.extend_from_slice(&3u32.to_be_bytes());
        be_ns.extend_from_slice(&3u32.to_be_bytes());
        be_ns.extend_from_slice(b"abc");
        for (name, file) in [("little-endian µs", le_us), ("big-endian ns", be_ns)] {
            let frames: Vec<_> = FrameReader::new(&file).expect(name).collect();
            assert_eq!(frames.len(), 1, "{name}");
            assert_eq!(frames[0].time_ns, 1_500_000_000, "{name}");
            assert_eq!(frames[0].data, b"abc", "{name}");
            assert_eq!(frames[0].linktype, 1, "{name}");
        }
    }

    #[test]
    fn pcapng_reads_each_interface_with_its_own_linktype_and_resolution() {
        let mut file = shb();
        file.extend(idb(1, None)); // µs
        file.extend(idb(101, Some(9))); // ns
        file.extend(ng_block(5, b"stats")); // skipped
        file.extend(epb(0, 2_000_000, b"eth"));
        file.extend(epb(1, 3_000_000_000, b"raw"));
        let frames: Vec<_> = FrameReader::new(&file).unwrap().collect();
        assert_eq!(frames.len(), 2);
        assert_eq!((frames[0].linktype, frames[0].time_ns), (1, 2_000_000_000));
        assert_eq!(
            (frames[1].linktype, frames[1].time_ns),
            (101, 3_000_000_000)
        );
        assert_eq!(frames[1].data, b"raw");
    }

    #[test]
    fn a_truncated_capture_keeps_the_frames_before_the_cut_and_says_where() {
        let mut file = write::pcap_header(1);
        write::pcap_record(&mut file, 0, b"first");
        let cut = file.len();
        write::pcap_record(&mut file, 10, b"second");
        file.truncate(file.len() - 2);
        let mut reader = FrameReader::new(&file).unwrap();
        assert_eq!(reader.by_ref().count(), 1);
        assert_eq!(reader.stop().map(|s| s.0), Some(cut));
    }

    #[test]
    fn headers_that_cannot_be_read_are_errors() {
        for (name, data, want) in [
            ("empty", &b""[..], PcapError::NotPcap),
            ("text", b"hello world", PcapError::NotPcap),
        ] {
            assert_eq!(FrameReader::new(data).unwrap_err(), want, "{name}");
        }
        assert!(matches!(
            FrameReader::new(&[0xD4, 0xC3, 0xB2, 0xA1, 2, 0]),
            Err(PcapError::TruncatedHeader { .. })
        ));
        let mut bad_bom = shb();
        bad_bom[8] = 0;
        assert!(matches!(
            FrameReader::new(&bad_bom),
            Err(PcapError::BadByteOrder { byte_offset: 0 })
        ));
    }
}
