//! Session descriptions (RFC 8866), as far as rawcore needs them.
//!
//! A recording comes with the SDP that negotiated it; from it rawcore learns which payload type
//! is which codec at which clock rate, which payload types are RTX retransmissions of which
//! (`a=fmtp:<pt> apt=<n>`), which header extension ids mean what, and which SSRCs were announced.
//! The parser is tolerant: CRLF or LF, unknown lines and attributes are kept or skipped, and
//! attributes before the first `m=` line belong to the session. Only lines rawcore relies on
//! (`m=`, `a=rtpmap`, `a=fmtp`, `a=extmap`, `a=ssrc`) are errors when malformed, naming the line.

/// Why a session description could not be parsed.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum SdpError {
    /// No `x=value` line at all.
    #[error("not an SDP: no 'x=value' lines")]
    Empty,
    /// A malformed `m=` line.
    #[error("bad SDP media line {line}: {text:?}")]
    BadMediaLine {
        /// 1-based line number.
        line: usize,
        /// The offending line.
        text: String,
    },
    /// A malformed attribute rawcore relies on.
    #[error("bad SDP a={attribute} on line {line}: {text:?}")]
    BadAttribute {
        /// 1-based line number.
        line: usize,
        /// Attribute name.
        attribute: &'static str,
        /// The offending line.
        text: String,
    },
}

/// An `a=rtpmap` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpMap {
    /// Payload type.
    pub payload_type: u8,
    /// Encoding name as written (e.g. `opus`, `VP8`, `rtx`).
    pub encoding: String,
    /// Clock rate in Hz.
    pub clock_rate: u32,
    /// Channel count, when given.
    pub channels: Option<u16>,
}

/// An `a=extmap` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtMap {
    /// Extension element id.
    pub id: u8,
    /// Direction, when given (`sendonly`, `recvonly`, ...).
    pub direction: Option<String>,
    /// Extension URI.
    pub uri: String,
}

/// One `m=` section.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MediaDescription {
    /// Media type (`audio`, `video`, `application`, ...).
    pub kind: String,
    /// Port.
    pub port: u16,
    /// Transport protocol (e.g. `UDP/TLS/RTP/SAVPF`).
    pub protocol: String,
    /// Numeric payload types listed on the `m=` line.
    pub formats: Vec<u8>,
    /// `a=rtpmap` entries.
    pub rtpmaps: Vec<RtpMap>,
    /// `a=fmtp` entries: payload type and parameter string.
    pub fmtps: Vec<(u8, String)>,
    /// RTX payload types and the payload type each retransmits.
    pub rtx: Vec<(u8, u8)>,
    /// `a=extmap` entries.
    pub extmaps: Vec<ExtMap>,
    /// `a=ssrc` entries: SSRC and attribute (e.g. `cname:xyz`).
    pub ssrcs: Vec<(u32, String)>,
    /// `a=ssrc-group` entries: semantics (e.g. `FID`) and SSRCs.
    pub ssrc_groups: Vec<(String, Vec<u32>)>,
    /// `sendrecv`, `sendonly`, `recvonly` or `inactive`.
    pub direction: Option<String>,
    /// `a=mid`.
    pub mid: Option<String>,
    /// Every other attribute: name and value.
    pub attributes: Vec<(String, Option<String>)>,
}

impl MediaDescription {
    /// The codec mapped to `pt` in this section.
    #[must_use]
    pub fn codec_for(&self, pt: u8) -> Option<&RtpMap> {
        self.rtpmaps.iter().find(|m| m.payload_type == pt)
    }

    /// The `a=fmtp` parameters of `pt`.
    #[must_use]
    pub fn fmtp_for(&self, pt: u8) -> Option<&str> {
        self.fmtps
            .iter()
            .find(|(p, _)| *p == pt)
            .map(|(_, s)| s.as_str())
    }
}

/// A parsed session description.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sdp {
    /// `o=` line value.
    pub origin: Option<String>,
    /// `s=` line value.
    pub session_name: Option<String>,
    /// Session-level attributes (before the first `m=`): name and value.
    pub attributes: Vec<(String, Option<String>)>,
    /// Session-level `a=extmap` entries.
    pub extmaps: Vec<ExtMap>,
    /// The media sections in order.
    pub media: Vec<MediaDescription>,
}

/// Clock rates of the static payload types of RFC 3551 that are still met in practice.
pub(crate) fn static_clock_rate(pt: u8) -> Option<u32> {
    match pt {
        0 | 3 | 4 | 5 | 7 | 8 | 9 | 12 | 13 | 15 | 18 => Some(8000),
        6 => Some(16_000),
        10 | 11 => Some(44_100),
        14 | 25 | 26 | 28 | 31 | 32 | 33 | 34 => Some(90_000),
        _ => None,
    }
}

const DIRECTIONS: [&str; 4] = ["sendrecv", "sendonly", "recvonly", "inactive"];

impl Sdp {
    /// Parses a session description.
    pub fn parse(text: &str) -> Result<Sdp, SdpError> {
        let mut sdp = Sdp::default();
        let mut seen_any = false;
        for (index, raw) in text.lines().enumerate() {
            let line = raw.trim_end_matches('\r').trim();
            let Some((kind, value)) = line.split_once('=') else {
                continue;
            };
            if kind.len() != 1 {
                continue;
            }
            seen_any = true;
            let number = index + 1;
            match kind {
                "o" => sdp.origin = Some(value.to_owned()),
                "s" => sdp.session_name = Some(value.to_owned()),
                "m" => sdp.media.push(parse_media_line(value).ok_or_else(|| {
                    SdpError::BadMediaLine {
                        line: number,
                        text: line.to_owned(),
                    }
                })?),
                "a" => {
                    let bad = |attribute| SdpError::BadAttribute {
                        line: number,
                        attribute,
                        text: line.to_owned(),
                    };
                    match sdp.media.last_mut() {
                        Some(media) => apply_media_attribute(media, value, bad)?,
                        None => apply_session_attribute(&mut sdp, value, bad)?,
                    }
                }
                _ => {}
            }
        }
        if !seen_any {
            return Err(SdpError::Empty);
        }
        Ok(sdp)
    }

    /// The clock rate of `pt`: from the first section that maps it, else from the static table.
    #[must_use]
    pub fn clock_rate(&self, pt: u8) -> Option<u32> {
        self.media
            .iter()
            .find_map(|m| m.codec_for(pt))
            .map(|m| m.clock_rate)
            .or_else(|| static_clock_rate(pt))
    }

    /// Every RTX payload type with the payload type it retransmits, over all sections.
    #[must_use]
    pub fn rtx_apt(&self) -> Vec<(u8, u8)> {
        self.media
            .iter()
            .flat_map(|m| m.rtx.iter().copied())
            .collect()
    }

    /// Every mapped payload type with its clock rate, over all sections (first mapping wins).
    #[must_use]
    pub fn clock_rates(&self) -> Vec<(u8, u32)> {
        let mut out: Vec<(u8, u32)> = Vec::new();
        for map in self.media.iter().flat_map(|m| &m.rtpmaps) {
            if !out.iter().any(|(pt, _)| *pt == map.payload_type) {
                out.push((map.payload_type, map.clock_rate));
            }
        }
        out
    }
}

fn parse_media_line(value: &str) -> Option<MediaDescription> {
    let mut fields = value.split_ascii_whitespace();
    let kind = fields.next()?;
    let port = fields.next()?;
    let protocol = fields.next()?;
    // "port/count" announces several ports; the first is the one that matters.
    let port = port.split('/').next()?.parse().ok()?;
    Some(MediaDescription {
        kind: kind.to_owned(),
        port,
        protocol: protocol.to_owned(),
        // Non-numeric formats (e.g. "webrtc-datachannel") are not RTP payload types.
        formats: fields.filter_map(|f| f.parse().ok()).collect(),
        ..MediaDescription::default()
    })
}

fn split_attribute(value: &str) -> (&str, Option<&str>) {
    match value.split_once(':') {
        Some((name, v)) => (name.trim(), Some(v.trim())),
        None => (value.trim(), None),
    }
}

fn parse_rtpmap(v: &str) -> Option<RtpMap> {
    let (pt, rest) = v.split_once(char::is_whitespace)?;
    let mut parts = rest.trim().split('/');
    let encoding = parts.next()?.trim();
    let clock_rate = parts.next()?.trim().parse().ok()?;
    let channels = match parts.next() {
        Some(c) => Some(c.trim().parse().ok()?),
        None => None,
    };
    if encoding.is_empty() {
        return None;
    }
    Some(RtpMap {
        payload_type: pt.parse().ok()?,
        encoding: encoding.to_owned(),
        clock_rate,
        channels,
    })
}

fn parse_extmap(v: &str) -> Option<ExtMap> {
    let mut fields = v.split_ascii_whitespace();
    let token = fields.next()?;
    let (id, direction) = match token.split_once('/') {
        Some((id, dir)) => (id, Some(dir.to_owned())),
        None => (token, None),
    };
    let uri = fields.next()?;
    Some(ExtMap {
        id: id.parse().ok()?,
        direction,
        uri: uri.to_owned(),
    })
}

fn apply_session_attribute(
    sdp: &mut Sdp,
    value: &str,
    bad: impl Fn(&'static str) -> SdpError,
) -> Result<(), SdpError> {
    let (name, v) = split_attribute(value);
    if name == "extmap" {
        sdp.extmaps
            .push(v.and_then(parse_extmap).ok_or_else(|| bad("extmap"))?);
    } else {
        sdp.attributes.push((name.to_owned(), v.map(str::to_owned)));
    }
    Ok(())
}

fn apply_media_attribute(
    media: &mut MediaDescription,
    value: &str,
    bad: impl Fn(&'static str) -> SdpError,
) -> Result<(), SdpError> {
    let (name, v) = split_attribute(value);
    match (name, v) {
        ("rtpmap", Some(v)) => media
            .rtpmaps
            .push(parse_rtpmap(v).ok_or_else(|| bad("rtpmap"))?),
        ("fmtp", Some(v)) => {
            let (pt, params) = v.split_once(char::is_whitespace).unwrap_or((v, ""));
            let pt: u8 = pt.parse().map_err(|_| bad("fmtp"))?;
            let params = params.trim();
            let apt = params
                .split(';')
                .filter_map(|p| p.trim().split_once('='))
                .find(|(k, _)| k.trim() == "apt")
                .and_then(|(_, n)| n.trim().parse::<u8>().ok());
            if let Some(apt) = apt {
                media.rtx.push((pt, apt));
            }
            media.fmtps.push((pt, params.to_owned()));
        }
        ("extmap", Some(v)) => media
            .extmaps
            .push(parse_extmap(v).ok_or_else(|| bad("extmap"))?),
        ("ssrc", Some(v)) => {
            let (ssrc, attr) = v.split_once(char::is_whitespace).unwrap_or((v, ""));
            let ssrc = ssrc.parse().map_err(|_| bad("ssrc"))?;
            media.ssrcs.push((ssrc, attr.trim().to_owned()));
        }
        ("ssrc-group", Some(v)) => {
            let mut fields = v.split_ascii_whitespace();
            let semantics = fields.next().unwrap_or_default().to_owned();
            let ssrcs = fields
                .map(str::parse)
                .collect::<Result<Vec<u32>, _>>()
                .map_err(|_| bad("ssrc-group"))?;
            media.ssrc_groups.push((semantics, ssrcs));
        }
        ("mid", Some(v)) => media.mid = Some(v.to_owned()),
        (dir, None) if DIRECTIONS.contains(&dir) => media.direction = Some(dir.to_owned()),
        (name, v) => media
            .attributes
            .push((name.to_owned(), v.map(str::to_owned))),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\n\
o=- 4611 2 IN IP4 127.0.0.1\r\n\
s=rawcore test\r\n\
t=0 0\r\n\
a=group:BUNDLE 0 1\r\n\
a=extmap:9 urn:ietf:params:rtp-hdrext:sdes:mid\r\n\
x-unknown line\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111 0\r\n\
a=mid:0\r\n\
a=sendrecv\r\n\
a=rtpmap:111 opus/48000/2\r\n\
a=fmtp:111 minptime=10;useinbandfec=1\r\n\
a=extmap:1/recvonly urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n\
a=ssrc:1001 cname:alice\r\n\
m=video 9/2 UDP/TLS/RTP/SAVPF 96 97\r\n\
a=mid:1\r\n\
a=sendonly\r\n\
a=rtpmap:96 VP8/90000\r\n\
a=rtpmap:97 rtx/90000\r\n\
a=fmtp:97 apt=96\r\n\
a=extmap:3 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n\
a=ssrc-group:FID 2001 2002\r\n\
a=ssrc:2001 cname:alice\r\n\
a=ssrc:2002 cname:alice\r\n\
a=rtcp-fb:96 nack\r\n\
m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n";

    #[test]
    #[allow(clippy::too_many_lines)] // one table of cases reads best in one piece
    fn parses_a_webrtc_offer() {
        let sdp = Sdp::parse(OFFER).expect("valid offer");
        assert_eq!(sdp.session_name.as_deref(), Some("rawcore test"));
        assert_eq!(sdp.media.len(), 3);
        assert_eq!(sdp.extmaps.len(), 1, "session-level extmap");
        assert!(sdp
            .attributes
            .contains(&("group".into(), Some("BUNDLE 0 1".into()))));

        let audio = &sdp.media[0];
        let video = &sdp.media[1];
        let cases: Vec<(&str, bool)> = vec![
            (
                "m= line gives kind, port, protocol and formats",
                audio.kind == "audio"
                    && audio.port == 9
                    && audio.protocol == "UDP/TLS/RTP/SAVPF"
                    && audio.formats == [111, 0],
            ),
            (
                "rtpmap with channels",
                audio.codec_for(111)
                    == Some(&RtpMap {
                        payload_type: 111,
                        encoding: "opus".into(),
                        clock_rate: 48_000,
                        channels: Some(2),
                    }),
            ),
            (
                "rtpmap without channels",
                video.codec_for(96)
                    == Some(&RtpMap {
                        payload_type: 96,
                        encoding: "VP8".into(),
                        clock_rate: 90_000,
                        channels: None,
                    }),
            ),
            (
                "fmtp keeps its parameter string",
                audio.fmtp_for(111) == Some("minptime=10;useinbandfec=1"),
            ),
            (
                "rtx apt comes from fmtp",
                video.rtx == [(97, 96)] && sdp.rtx_apt() == [(97, 96)],
            ),
            (
                "extmap with direction",
                audio.extmaps
                    == [ExtMap {
                        id: 1,
                        direction: Some("recvonly".into()),
                        uri: "urn:ietf:params:rtp-hdrext:ssrc-audio-level".into(),
                    }],
            ),
            (
                "extmap without direction",
                video.extmaps[0].id == 3 && video.extmaps[0].direction.is_none(),
            ),
            (
                "ssrc attributes",
                audio.ssrcs == [(1001, "cname:alice".to_owned())],
            ),
            (
                "ssrc-group FID",
                video.ssrc_groups == [("FID".to_owned(), vec![2001, 2002])],
            ),
            (
                "direction and mid",
                audio.direction.as_deref() == Some("sendrecv")
                    && video.direction.as_deref() == Some("sendonly")
                    && video.mid.as_deref() == Some("1"),
            ),
            ("port/count keeps the first port", video.port == 9),
            (
                "unknown attributes are kept",
                video
                    .attributes
                    .contains(&("rtcp-fb".into(), Some("96 nack".into()))),
            ),
            (
                "non-numeric formats are skipped",
                sdp.media[2].formats.is_empty(),
            ),
            (
                "clock rate from rtpmap",
                sdp.clock_rate(111) == Some(48_000) && sdp.clock_rate(97) == Some(90_000),
            ),
            (
                "clock rate of a static payload type",
                sdp.clock_rate(0) == Some(8000),
            ),
            (
                "unknown payload type has no clock rate",
                sdp.clock_rate(120).is_none(),
            ),
            (
                "clock_rates lists every mapping",
                sdp.clock_rates() == [(111, 48_000), (96, 90_000), (97, 90_000)],
            ),
        ];
        for (name, ok) in cases {
            assert!(ok, "{name}");
        }
    }

    #[test]
    fn lf_and_crlf_parse_alike() {
        let lf = OFFER.replace("\r\n", "\n");
        assert_eq!(Sdp::parse(&lf), Sdp::parse(OFFER));
    }

    #[test]
    fn error_cases() {
        let cases = [
            ("empty text", "", SdpError::Empty),
            ("prose is not SDP", "hello world\n", SdpError::Empty),
            (
                "m= line without protocol",
                "v=0\nm=audio 9\n",
                SdpError::BadMediaLine {
                    line: 2,
                    text: "m=audio 9".into(),
                },
            ),
            (
                "m= line with a port out of range",
                "m=audio 70000 RTP/AVP 0\n",
                SdpError::BadMediaLine {
                    line: 1,
                    text: "m=audio 70000 RTP/AVP 0".into(),
                },
            ),
            (
                "rtpmap without clock rate",
                "m=audio 9 RTP/AVP 111\r\na=rtpmap:111 opus\r\n",
                SdpError::BadAttribute {
                    line: 2,
                    attribute: "rtpmap",
                    text: "a=rtpmap:111 opus".into(),
                },
            ),
            (
                "extmap id that is not a number",
                "m=audio 9 RTP/AVP 111\na=extmap:x urn:foo\n",
                SdpError::BadAttribute {
                    line: 2,
                    attribute: "extmap",
                    text: "a=extmap:x urn:foo".into(),
                },
            ),
        ];
        for (name, input, want) in cases {
            assert_eq!(Sdp::parse(input), Err(want), "{name}");
        }
    }
}
