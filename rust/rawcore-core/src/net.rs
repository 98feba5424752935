//! From a captured link-layer frame to the UDP datagram or TCP segment inside it.
//!
//! Link types: Ethernet (with any number of 802.1Q / 802.1ad tags, stacked as in `QinQ`), raw IP, Linux
//! cooked capture v1 and v2 and BSD null/loopback. Network: IPv4 (options skipped, Ethernet
//! padding cut by the total length, fragments other than whole datagrams refused) and IPv6
//! (hop-by-hop, routing and destination-option headers skipped, fragments refused). Transport:
//! UDP and TCP. A frame the capture cut short still yields its transport header and the bytes
//! that were captured, with the payload length the headers declared.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The transport of a [`Datagram`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// A UDP datagram.
    Udp,
    /// A TCP segment with its sequence number and SYN flag.
    Tcp {
        /// Sequence number of the segment's first byte.
        seq: u32,
        /// The SYN flag (the segment takes one sequence number before its data).
        syn: bool,
    },
}

/// A UDP datagram or TCP segment found in a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Datagram<'a> {
    /// Source address.
    pub src: IpAddr,
    /// Source port.
    pub src_port: u16,
    /// Destination address.
    pub dst: IpAddr,
    /// Destination port.
    pub dst_port: u16,
    /// UDP or TCP.
    pub transport: Transport,
    /// The captured payload bytes.
    pub payload: &'a [u8],
    /// The payload length the headers declare (more than `payload.len()` when cut short).
    pub declared_len: usize,
}

/// Why a frame holds no UDP or TCP payload rawcore reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// A link type rawcore does not read.
    LinkType(u16),
    /// Neither IPv4 nor IPv6 (ARP, LLDP, ...).
    NotIp,
    /// Neither UDP nor TCP (ICMP, ...).
    NotUdpOrTcp,
    /// A fragment of a larger IP datagram.
    Fragment,
    /// The frame ends inside a header.
    Truncated,
}

/// `LINKTYPE_NULL`: BSD loopback, a 4-byte address family in the writer's byte order.
pub const LINKTYPE_NULL: u16 = 0;
/// `LINKTYPE_ETHERNET`.
pub const LINKTYPE_ETHERNET: u16 = 1;
/// `LINKTYPE_RAW`: an IPv4 or IPv6 packet with no link header.
pub const LINKTYPE_RAW: u16 = 101;
/// `LINKTYPE_LOOP`: OpenBSD loopback, the family in network byte order.
pub const LINKTYPE_LOOP: u16 = 108;
/// `LINKTYPE_LINUX_SLL`: Linux cooked capture v1.
pub const LINKTYPE_LINUX_SLL: u16 = 113;
/// `LINKTYPE_IPV4`.
pub const LINKTYPE_IPV4: u16 = 228;
/// `LINKTYPE_IPV6`.
pub const LINKTYPE_IPV6: u16 = 229;
/// `LINKTYPE_LINUX_SLL2`: Linux cooked capture v2.
pub const LINKTYPE_LINUX_SLL2: u16 = 276;

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86DD;
const ETHERTYPE_VLAN: [u16; 3] = [0x8100, 0x88A8, 0x9100];

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The UDP datagram or TCP segment in a frame of link type `linktype`.
pub fn decode(linktype: u16, frame: &[u8]) -> Result<Datagram<'_>, Skip> {
    let ip = match linktype {
        LINKTYPE_ETHERNET => ethernet(frame)?,
        // DLT_RAW is 12 or 14 on some systems; pcap files written there keep the number.
        LINKTYPE_RAW | 12 | 14 | LINKTYPE_IPV4 | LINKTYPE_IPV6 => frame,
        LINKTYPE_LINUX_SLL => by_ethertype(be16(frame, 14).ok_or(Skip::Truncated)?, frame, 16)?,
        LINKTYPE_LINUX_SLL2 => by_ethertype(be16(frame, 0).ok_or(Skip::Truncated)?, frame, 20)?,
        LINKTYPE_NULL | LINKTYPE_LOOP => {
            let family: [u8; 4] = frame
                .get(..4)
                .and_then(|b| b.try_into().ok())
                .ok_or(Skip::Truncated)?;
            // Written in the capturing host's order (NULL) or network order (LOOP): either way
            // the value is small, so whichever reading is small is the right one.
            let le = u32::from_le_bytes(family);
            let family = if le < 256 {
                le
            } else {
                u32::from_be_bytes(family)
            };
            match family {
                2 | 24 | 28 | 30 => &frame[4..],
                _ => return Err(Skip::NotIp),
            }
        }
        other => return Err(Skip::LinkType(other)),
    };
    ip_packet(ip)
}

fn by_ethertype(ethertype: u16, frame: &[u8], at: usize) -> Result<&[u8], Skip> {
    match ethertype {
        ETHERTYPE_IPV4 | ETHERTYPE_IPV6 => frame.get(at..).ok_or(Skip::Truncated),
        _ => Err(Skip::NotIp),
    }
}

fn ethernet(frame: &[u8]) -> Result<&[u8], Skip> {
    let mut at = 12;
    loop {
        let ethertype = be16(frame, at).ok_or(Skip::Truncated)?;
        if ETHERTYPE_VLAN.contains(&ethertype) {
            at += 4;
            continue;
        }
        return by_ethertype(ethertype, frame, at + 2);
    }
}

fn ip_packet(ip: &[u8]) -> Result<Datagram<'_>, Skip> {
    let first = *ip.first().ok_or(Skip::Truncated)?;
    match first >> 4 {
        4 => ipv4(ip),
        6 => ipv6(ip),
        _ => Err(Skip::NotIp),
    }
}

fn ipv4(ip: &[u8]) -> Result<Datagram<'_>, Skip> {
    let ihl = usize::from(ip[0] & 0x0F) * 4;
    if ihl < 20 || ip.len() < ihl {
        return Err(Skip::Truncated);
    }
    let total = usize::from(be16(ip, 2).ok_or(Skip::Truncated)?);
    let flags_frag = be16(ip, 6).ok_or(Skip::Truncated)?;
    if flags_frag & 0x3FFF != 0 {
        return Err(Skip::Fragment);
    }
    let src = Ipv4Addr::from(be32(ip, 12).ok_or(Skip::Truncated)?);
    let dst = Ipv4Addr::from(be32(ip, 16).ok_or(Skip::Truncated)?);
    // The total length cuts off Ethernet padding; a capture cut short has fewer bytes.
    let end = total.max(ihl).min(ip.len());
    let declared = total.saturating_sub(ihl);
    transport(ip[9], &ip[ihl..end], declared, src.into(), dst.into())
}

fn ipv6(ip: &[u8]) -> Result<Datagram<'_>, Skip> {
    if ip.len() < 40 {
        return Err(Skip::Truncated);
    }
    let payload_len = usize::from(be16(ip, 4).ok_or(Skip::Truncated)?);
    let src: [u8; 16] = ip[8..24].try_into().map_err(|_| Skip::Truncated)?;
    let dst: [u8; 16] = ip[24..40].try_into().map_err(|_| Skip::Truncated)?;
    let end = (40 + payload_len).min(ip.len());
    let mut next = ip[6];
    let mut at = 40;
    loop {
        match next {
            // Hop-by-hop, routing, destination options: length in 8-octet units after the first 8.
            0 | 43 | 60 => {
                let len = usize::from(*ip.get(at + 1).ok_or(Skip::Truncated)?) * 8 + 8;
                next = ip[at];
                at += len;
            }
            44 => return Err(Skip::Fragment),
            _ => break,
        }
    }
    let body = ip.get(at..end.max(at)).ok_or(Skip::Truncated)?;
    let declared = (40 + payload_len).saturating_sub(at);
    transport(
        next,
        body,
        declared,
        Ipv6Addr::from(src).into(),
        Ipv6Addr::from(dst).into(),
    )
}

fn transport(
    proto: u8,
    body: &[u8],
    declared: usize,
    src: IpAddr,
    dst: IpAddr,
) -> Result<Datagram<'_>, Skip> {
    let src_port = be16(body, 0).ok_or(Skip::Truncated)?;
    let dst_port = be16(body, 2).ok_or(Skip::Truncated)?;
    let (header, transport, declared) = match proto {
        17 => {
            let udp_len = usize::from(be16(body, 4).ok_or(Skip::Truncated)?);
            // A zero length is a jumbogram or a writer that left it out: trust the IP length.
            let declared = if udp_len >= 8 { udp_len } else { declared };
            (8, Transport::Udp, declared)
        }
        6 => {
            let seq = be32(body, 4).ok_or(Skip::Truncated)?;
            let offset = usize::from(*body.get(12).ok_or(Skip::Truncated)? >> 4) * 4;
            let flags = *body.get(13).ok_or(Skip::Truncated)?;
            if offset < 20 {
                return Err(Skip::Truncated);
            }
            (
                offset,
                Transport::Tcp {
                    seq,
                    syn: flags & 0x02 != 0,
                },
                declared,
            )
        }
        _ => return Err(Skip::NotUdpOrTcp),
    };
    let payload = body.get(header..).ok_or(Skip::Truncated)?;
    let declared_len = declared.saturating_sub(header);
    let payload = payload.get(..declared_len).unwrap_or(payload);
    Ok(Datagram {
        src,
        src_port,
        dst,
        dst_port,
        transport,
        payload,
        declared_len: declared_len.max(payload.len()),
    })
}

/// Writers for tests, benchmarks and fuzz seeds.
pub mod write {
    use std::net::IpAddr;

    /// An Ethernet frame (with `vlans` 802.1Q tags) holding a UDP datagram over IPv4 or IPv6.
    /// Checksums are left 0.
    #[must_use]
    pub fn ethernet_udp(
        src: (IpAddr, u16),
        dst: (IpAddr, u16),
        vlans: &[u16],
        payload: &[u8],
    ) -> Vec<u8> {
        let mut frame = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
        for vlan in vlans {
            frame.extend_from_slice(&0x8100u16.to_be_bytes());
            frame.extend_from_slice(&vlan.to_be_bytes());
        }
        let ip = ip_udp(src, dst, payload);
        let ethertype: u16 = if src.0.is_ipv4() { 0x0800 } else { 0x86DD };
        frame.extend_from_slice(&ethertype.to_be_bytes());
        frame.extend_from_slice(&ip);
        frame
    }

    /// An IPv4 or IPv6 packet holding a UDP datagram (the addresses must be of one family).
    #[must_use]
    pub fn ip_udp(src: (IpAddr, u16), dst: (IpAddr, u16), payload: &[u8]) -> Vec<u8> {
        let mut udp = Vec::with_capacity(payload.len() + 8);
        udp.extend_from_slice(&src.1.to_be_bytes());
        udp.extend_from_slice(&dst.1.to_be_bytes());
        udp.extend_from_slice(&((payload.len() + 8) as u16).to_be_bytes());
        udp.extend_from_slice(&[0, 0]);
        udp.extend_from_slice(payload);
        let mut ip = Vec::with_capacity(udp.len() + 40);
        match (src.0, dst.0) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                ip.extend_from_slice(&[0x45, 0]);
                ip.extend_from_slice(&((udp.len() + 20) as u16).to_be_bytes());
                ip.extend_from_slice(&[0, 0, 0x40, 0, 64, 17, 0, 0]);
                ip.extend_from_slice(&s.octets());
                ip.extend_from_slice(&d.octets());
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                ip.extend_from_slice(&[0x60, 0, 0, 0]);
                ip.extend_from_slice(&(udp.len() as u16).to_be_bytes());
                ip.extend_from_slice(&[17, 64]);
                ip.extend_from_slice(&s.octets());
                ip.extend_from_slice(&d.octets());
            }
            _ => {}
        }
        ip.extend_from_slice(&udp);
        ip
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))
    }

    #[test]
    fn udp_is_found_behind_every_supported_link_layer() {
        let src = (v4(1), 4000);
        let dst = (v4(2), 5004);
        let ip = write::ip_udp(src, dst, b"rtp!");
        let v6 = (IpAddr::V6(Ipv6Addr::LOCALHOST), 6000);
        let cases: Vec<(&str, u16, Vec<u8>)> = vec![
            (
                "ethernet",
                LINKTYPE_ETHERNET,
                write::ethernet_udp(src, dst, &[], b"rtp!"),
            ),
            (
                "one VLAN tag",
                LINKTYPE_ETHERNET,
                write::ethernet_udp(src, dst, &[7], b"rtp!"),
            ),
            (
                "QinQ",
                LINKTYPE_ETHERNET,
                write::ethernet_udp(src, dst, &[7, 8], b"rtp!"),
            ),
            ("raw IP", LINKTYPE_RAW, ip.clone()),
            (
                "linux sll",
                LINKTYPE_LINUX_SLL,
                [&[0u8; 14][..], &[8, 0], &ip].concat(),
            ),
            (
                "linux sll2",
                LINKTYPE_LINUX_SLL2,
                [&[8u8, 0][..], &[0; 18], &ip].concat(),
            ),
            (
                "null, little-endian",
                LINKTYPE_NULL,
                [&[2u8, 0, 0, 0][..], &ip].concat(),
            ),
            (
                "loop, big-endian",
                LINKTYPE_LOOP,
                [&[0u8, 0, 0, 2][..], &ip].concat(),
            ),
            ("ethernet padding cut", LINKTYPE_ETHERNET, {
                let mut f = write::ethernet_udp(src, dst, &[], b"rtp!");
                f.extend_from_slice(&[0; 12]);
                f
            }),
        ];
        for (name, linktype, frame) in cases {
            let d = decode(linktype, &frame).unwrap_or_else(|e| panic!("{name}: {e:?}"));
            assert_eq!(
                (d.src, d.src_port, d.dst, d.dst_port),
                (v4(1), 4000, v4(2), 5004),
                "{name}"
            );
            assert_eq!(d.payload, b"rtp!", "{name}");
            assert_eq!(d.transport, Transport::Udp, "{name}");
        }
        let frame6 = write::ethernet_udp(v6, v6, &[3], b"six");
        let d = decode(LINKTYPE_ETHERNET, &frame6).unwrap();
        assert_eq!((d.src, d.payload), (v6.0, &b"six"[..]));
    }

    #[test]
    fn frames_without_udp_or_tcp_payload_say_why() {
        let ip = write::ip_udp((v4(1), 1), (v4(2), 2), b"x");
        let mut fragment = ip.clone();
        fragment[6] = 0x20; // more fragments
        let mut icmp = ip.clone();
        icmp[9] = 1;
        let arp = [&[0u8; 12][..], &[0x08, 0x06], &[0; 28]].concat();
        let cases: Vec<(&str, u16, Vec<u8>, Skip)> = vec![
            ("fragment", LINKTYPE_RAW, fragment, Skip::Fragment),
            ("icmp", LINKTYPE_RAW, icmp, Skip::NotUdpOrTcp),
            ("arp", LINKTYPE_ETHERNET, arp, Skip::NotIp),
            ("unknown link", 147, ip.clone(), Skip::LinkType(147)),
            (
                "cut in the IP header",
                LINKTYPE_RAW,
                ip[..10].to_vec(),
                Skip::Truncated,
            ),
        ];
        for (name, linktype, frame, want) in cases {
            assert_eq!(decode(linktype, &frame), Err(want), "{name}");
        }
    }

    #[test]
    fn a_datagram_cut_by_the_snap_length_keeps_its_declared_length() {
        let ip = write::ip_udp((v4(1), 1), (v4(2), 2), &[9; 100]);
        let d = decode(LINKTYPE_RAW, &ip[..60]).unwrap();
        assert_eq!((d.payload.len(), d.declared_len), (32, 100));
    }
}
