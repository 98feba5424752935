//! RTP packets (RFC 3550), parsed without copying.
//!
//! [`RtpPacket::parse`] checks the version, walks the CSRC list and header extension and strips
//! padding, borrowing everything from the input. Header extensions in the RFC 8285 one-byte
//! (`0xBEDE`) and two-byte (`0x100x`) forms can be iterated element by element; other profiles are
//! kept as raw bytes. [`looks_like_rtcp`] applies the RFC 5761 demultiplexing rule so an RTCP
//! packet that ended up among RTP records is recognised rather than misparsed. [`build`] writes
//! packets for tests and benchmarks.

/// Size of the fixed RTP header.
pub const FIXED_HEADER_LEN: usize = 12;
/// Header extension profile of the RFC 8285 one-byte form.
pub const ONE_BYTE_PROFILE: u16 = 0xBEDE;

/// Why a buffer is not a valid RTP packet.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum RtpError {
    /// Shorter than the header it announces.
    #[error("RTP packet too short: {len} bytes, header needs {needed}")]
    TooShort {
        /// Bytes available.
        len: usize,
        /// Bytes the header needs.
        needed: usize,
    },
    /// The version field is not 2.
    #[error("not RTP: version {version}, expected 2")]
    BadVersion {
        /// The version found.
        version: u8,
    },
    /// The padding count is 0 or exceeds the bytes after the header.
    #[error("bad RTP padding: count {padding_len} with {available} bytes after the header")]
    BadPadding {
        /// The padding count from the last byte.
        padding_len: u8,
        /// Bytes after the header, padding included.
        available: usize,
    },
}

/// The CSRC list of a packet, borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Csrcs<'a>(&'a [u8]);

impl<'a> Csrcs<'a> {
    /// Number of contributing sources.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len() / 4
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The contributing sources in order.
    pub fn iter(&self) -> impl Iterator<Item = u32> + 'a {
        self.0
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
    }
}

/// A parsed RTP packet borrowing from its buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    /// The marker bit.
    pub marker: bool,
    /// Payload type (7 bits).
    pub payload_type: u8,
    /// Sequence number as sent.
    pub sequence_number: u16,
    /// RTP timestamp as sent.
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
    /// Contributing sources.
    pub csrcs: Csrcs<'a>,
    /// Header extension profile, if the X bit is set.
    pub extension_profile: Option<u16>,
    /// Header extension body (without its 4-byte header).
    pub extension_data: &'a [u8],
    /// Payload with padding removed.
    pub payload: &'a [u8],
    /// Padding bytes removed from the end (0 when unpadded).
    pub padding_len: u8,
    /// Length of the header, CSRCs and extension included.
    pub header_len: usize,
}

impl<'a> RtpPacket<'a> {
    /// Parses a complete RTP packet.
    pub fn parse(buf: &'a [u8]) -> Result<Self, RtpError> {
        let mut packet = Self::parse_header_only(buf)?;
        let has_padding = buf.first().is_some_and(|b| b & 0x20 != 0);
        if has_padding {
            let available = packet.payload.len();
            let padding_len = buf.last().copied().unwrap_or(0);
            if padding_len == 0 || usize::from(padding_len) > available {
                return Err(RtpError::BadPadding {
                    padding_len,
                    available,
                });
            }
            packet.payload = packet
                .payload
                .get(..available - usize::from(padding_len))
                .unwrap_or_default();
            packet.padding_len = padding_len;
        }
        Ok(packet)
    }

    /// Parses the header of a packet whose tail may be missing (a capture cut by its snap
    /// length): the payload is whatever follows the header and padding is left untouched.
    pub fn parse_header_only(buf: &'a [u8]) -> Result<Self, RtpError> {
        let Some(fixed) = buf.get(..FIXED_HEADER_LEN) else {
            return Err(RtpError::TooShort {
                len: buf.len(),
                needed: FIXED_HEADER_LEN,
            });
        };
        let version = fixed[0] >> 6;
        if version != 2 {
            return Err(RtpError::BadVersion { version });
        }
        let csrc_count = usize::from(fixed[0] & 0x0F);
        let has_extension = fixed[0] & 0x10 != 0;
        let mut at = FIXED_HEADER_LEN + 4 * csrc_count;
        let too_short = |needed| RtpError::TooShort {
            len: buf.len(),
            needed,
        };
        let csrcs = buf.get(FIXED_HEADER_LEN..at).ok_or(too_short(at))?;
        let (extension_profile, extension_data) = if has_extension {
            let ext_header = buf.get(at..at + 4).ok_or(too_short(at + 4))?;
            let profile = u16::from_be_bytes([ext_header[0], ext_header[1]]);
            let words = usize::from(u16::from_be_bytes([ext_header[2], ext_header[3]]));
            let end = at + 4 + 4 * words;
            let data = buf.get(at + 4..end).ok_or(too_short(end))?;
            at = end;
            (Some(profile), data)
        } else {
            (None, &[][..])
        };
        Ok(Self {
            marker: fixed[1] & 0x80 != 0,
            payload_type: fixed[1] & 0x7F,
            sequence_number: u16::from_be_bytes([fixed[2], fixed[3]]),
            timestamp: u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]),
            ssrc: u32::from_be_bytes([fixed[8], fixed[9], fixed[10], fixed[11]]),
            csrcs: Csrcs(csrcs),
            extension_profile,
            extension_data,
            payload: buf.get(at..).unwrap_or_default(),
            padding_len: 0,
            header_len: at,
        })
    }

    /// Whether the packet carries no media, only padding (e.g. bandwidth probing).
    #[must_use]
    pub fn is_padding_only(&self) -> bool {
        self.payload.is_empty()
    }

    /// The value of the RFC 8285 header extension element `id`, if present.
    #[must_use]
    pub fn extension(&self, id: u8) -> Option<&'a [u8]> {
        self.extensions().find(|&(i, _)| i == id).map(|(_, v)| v)
    }

    /// The RFC 8285 header extension elements in order; empty for other profiles. A malformed
    /// element ends the iteration.
    #[must_use]
    pub fn extensions(&self) -> Extensions<'a> {
        let form = match self.extension_profile {
            Some(ONE_BYTE_PROFILE) => Form::OneByte,
            Some(p) if p & 0xFFF0 == 0x1000 => Form::TwoByte,
            _ => Form::None,
        };
        Extensions {
            data: self.extension_data,
            form,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Form {
    None,
    OneByte,
    TwoByte,
}

/// Iterator over RFC 8285 header extension elements as `(id, value)`.
#[derive(Debug, Clone)]
pub struct Extensions<'a> {
    data: &'a [u8],
    form: Form,
}

impl<'a> Iterator for Extensions<'a> {
    type Item = (u8, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (&first, rest) = self.data.split_first()?;
            // Id 0 is a padding byte in both forms.
            if first == 0 {
                self.data = rest;
                continue;
            }
            let (id, len, rest) = match self.form {
                Form::None => return None,
                Form::OneByte => {
                    let id = first >> 4;
                    // Id 15 is reserved: parsing stops there.
                    if id == 15 {
                        self.data = &[];
                        return None;
                    }
                    (id, usize::from(first & 0x0F) + 1, rest)
                }
                Form::TwoByte => {
                    let Some((&len, rest)) = rest.split_first() else {
                        self.data = &[];
                        return None;
                    };
                    (first, usize::from(len), rest)
                }
            };
            let Some(value) = rest.get(..len) else {
                self.data = &[];
                return None;
            };
            self.data = rest.get(len..).unwrap_or_default();
            return Some((id, value));
        }
    }
}

/// Whether `buf` looks like RTCP by the RFC 5761 rule: version 2 and a second byte (the packet
/// type) in 192..=223, a range no dynamic or static RTP payload type with marker can reach
/// without colliding with RTCP.
#[must_use]
pub fn looks_like_rtcp(buf: &[u8]) -> bool {
    match buf {
        [first, second, ..] => first >> 6 == 2 && (192..=223).contains(second),
        _ => false,
    }
}

/// The fields of a packet to write with [`build`].
#[derive(Debug, Clone, Default)]
pub struct PacketSpec<'a> {
    /// The marker bit.
    pub marker: bool,
    /// Payload type (only the low 7 bits are written).
    pub payload_type: u8,
    /// Sequence number.
    pub sequence_number: u16,
    /// RTP timestamp.
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
    /// Contributing sources (at most 15 are written).
    pub csrcs: &'a [u32],
    /// Header extension profile and body; the body is zero-padded to whole words.
    pub extension: Option<(u16, &'a [u8])>,
    /// Padding bytes to append (0 for none; the last one holds the count).
    pub padding: u8,
}

impl PacketSpec<'_> {
    /// Appends the packet with `payload` to `out`.
    pub fn write(&self, out: &mut Vec<u8>, payload: &[u8]) {
        let csrcs = self.csrcs.get(..15).unwrap_or(self.csrcs);
        let mut first = 0x80 | csrcs.len() as u8;
        if self.padding > 0 {
            first |= 0x20;
        }
        if self.extension.is_some() {
            first |= 0x10;
        }
        out.push(first);
        out.push(u8::from(self.marker) << 7 | (self.payload_type & 0x7F));
        out.extend_from_slice(&self.sequence_number.to_be_bytes());
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        for c in csrcs {
            out.extend_from_slice(&c.to_be_bytes());
        }
        if let Some((profile, body)) = self.extension {
            let body = body.get(..4 * 0xFFFF).unwrap_or(body);
            let words = body.len().div_ceil(4);
            out.extend_from_slice(&profile.to_be_bytes());
            out.extend_from_slice(&(words as u16).to_be_bytes());
            out.extend_from_slice(body);
            out.resize(out.len() + (words * 4 - body.len()), 0);
        }
        out.extend_from_slice(payload);
        if self.padding > 0 {
            out.resize(out.len() + usize::from(self.padding) - 1, 0);
            out.push(self.padding);
        }
    }
}

/// Writes a packet into a new buffer.
#[must_use]
pub fn build(spec: &PacketSpec<'_>, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(FIXED_HEADER_LEN + payload.len() + 64);
    spec.write(&mut out, payload);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> PacketSpec<'static> {
        PacketSpec {
            marker: true,
            payload_type: 111,
            sequence_number: 0xABCD,
            timestamp: 0x1234_5678,
            ssrc: 0xDEAD_BEEF,
            ..PacketSpec::default()
        }
    }

    struct Want {
        payload: &'static [u8],
        padding_len: u8,
        csrcs: &'static [u32],
        profile: Option<u16>,
        extensions: &'static [(u8, &'static [u8])],
    }

    fn plain_want() -> Want {
        Want {
            payload: b"opus",
            padding_len: 0,
            csrcs: &[],
            profile: None,
            extensions: &[],
        }
    }

    #[test]
    #[allow(clippy::too_many_lines)] // one table of cases reads best in one piece
    fn parse_cases() {
        struct Case {
            name: &'static str,
            input: Vec<u8>,
            want: Result<Want, RtpError>,
        }
        let mut bad_version = build(&spec(), b"x");
        bad_version[0] = 0x40;
        let mut zero_padding = build(&spec(), b"abcd");
        zero_padding[0] |= 0x20;
        zero_padding[15] = 0;
        let mut overlong_padding = build(&spec(), b"abc");
        overlong_padding[0] |= 0x20;
        overlong_padding[14] = 9;
        let mut truncated_ext = build(
            &PacketSpec {
                extension: Some((ONE_BYTE_PROFILE, &[0x10, 1, 0, 0])),
                ..spec()
            },
            b"",
        );
        truncated_ext[15] = 9;
        let cases = [
            Case {
                name: "plain packet keeps its payload",
                input: build(&spec(), b"opus"),
                want: Ok(plain_want()),
            },
            Case {
                name: "padding is stripped from the payload",
                input: build(
                    &PacketSpec {
                        padding: 4,
                        ..spec()
                    },
                    b"opus",
                ),
                want: Ok(Want {
                    padding_len: 4,
                    ..plain_want()
                }),
            },
            Case {
                name: "padding-only packet has an empty payload",
                input: build(
                    &PacketSpec {
                        padding: 200,
                        ..spec()
                    },
                    b"",
                ),
                want: Ok(Want {
                    payload: b"",
                    padding_len: 200,
                    ..plain_want()
                }),
            },
            Case {
                name: "CSRC list is read and skipped",
                input: build(
                    &PacketSpec {
                        csrcs: &[1, 0xFFFF_FFFF],
                        ..spec()
                    },
                    b"opus",
                ),
                want: Ok(Want {
                    csrcs: &[1, 0xFFFF_FFFF],
                    ..plain_want()
                }),
            },
            Case {
                name: "one-byte extensions with padding bytes between them",
                input: build(
                    &PacketSpec {
                        extension: Some((ONE_BYTE_PROFILE, &[0x10, 0xAA, 0, 0, 0x33, 1, 2, 3, 4])),
                        ..spec()
                    },
                    b"opus",
                ),
                want: Ok(Want {
                    profile: Some(ONE_BYTE_PROFILE),
                    extensions: &[(1, &[0xAA]), (3, &[1, 2, 3, 4])],
                    ..plain_want()
                }),
            },
            Case {
                name: "one-byte id 15 stops extension parsing",
                input: build(
                    &PacketSpec {
                        extension: Some((ONE_BYTE_PROFILE, &[0x10, 0xAA, 0xF0, 0x20, 0xBB])),
                        ..spec()
                    },
                    b"opus",
                ),
                want: Ok(Want {
                    profile: Some(ONE_BYTE_PROFILE),
                    extensions: &[(1, &[0xAA])],
                    ..plain_want()
                }),
            },
            Case {
                name: "two-byte extensions allow empty values and long ids",
                input: build(
                    &PacketSpec {
                        extension: Some((0x1000, &[200, 0, 0, 7, 2, 9, 9])),
                        ..spec()
                    },
                    b"opus",
                ),
                want: Ok(Want {
                    profile: Some(0x1000),
                    extensions: &[(200, &[]), (7, &[9, 9])],
                    ..plain_want()
                }),
            },
            Case {
                name: "unknown extension profile is kept raw and not iterated",
                input: build(
                    &PacketSpec {
                        extension: Some((0x1234, &[1, 2, 3, 4])),
                        ..spec()
                    },
                    b"opus",
                ),
                want: Ok(Want {
                    profile: Some(0x1234),
                    ..plain_want()
                }),
            },
            Case {
                name: "version other than 2 is rejected",
                input: bad_version,
                want: Err(RtpError::BadVersion { version: 1 }),
            },
            Case {
                name: "padding count of zero is rejected",
                input: zero_padding,
                want: Err(RtpError::BadPadding {
                    padding_len: 0,
                    available: 4,
                }),
            },
            Case {
                name: "padding larger than the payload is rejected",
                input: overlong_padding,
                want: Err(RtpError::BadPadding {
                    padding_len: 9,
                    available: 3,
                }),
            },
            Case {
                name: "shorter than the fixed header is rejected",
                input: vec![0x80, 0, 0],
                want: Err(RtpError::TooShort { len: 3, needed: 12 }),
            },
            Case {
                name: "CSRC count beyond the buffer is rejected",
                input: vec![0x8F, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2],
                want: Err(RtpError::TooShort {
                    len: 14,
                    needed: 72,
                }),
            },
            Case {
                name: "extension length beyond the buffer is rejected",
                input: truncated_ext,
                want: Err(RtpError::TooShort {
                    len: 20,
                    needed: 52,
                }),
            },
        ];
        for case in cases {
            let got = RtpPacket::parse(&case.input);
            match (got, case.want) {
                (Ok(p), Ok(want)) => {
                    assert!(p.marker, "{}", case.name);
                    assert_eq!(p.payload_type, 111, "{}", case.name);
                    assert_eq!(p.sequence_number, 0xABCD, "{}", case.name);
                    assert_eq!(p.timestamp, 0x1234_5678, "{}", case.name);
                    assert_eq!(p.ssrc, 0xDEAD_BEEF, "{}", case.name);
                    assert_eq!(p.payload, want.payload, "{}", case.name);
                    assert_eq!(p.padding_len, want.padding_len, "{}", case.name);
                    assert_eq!(
                        p.csrcs.iter().collect::<Vec<_>>(),
                        want.csrcs,
                        "{}",
                        case.name
                    );
                    assert_eq!(p.extension_profile, want.profile, "{}", case.name);
                    let exts: Vec<_> = p.extensions().collect();
                    assert_eq!(exts, want.extensions, "{}", case.name);
                    for (id, value) in want.extensions {
                        assert_eq!(p.extension(*id), Some(*value), "{}", case.name);
                    }
                }
                (Err(e), Err(want)) => assert_eq!(e, want, "{}", case.name),
                (got, _) => panic!("{}: got {got:?}", case.name),
            }
        }
    }

    #[test]
    fn rtcp_demux_cases() {
        let cases: [(&str, &[u8], bool); 5] = [
            ("sender report is RTCP", &[0x80, 200, 0, 6], true),
            ("receiver report is RTCP", &[0x81, 201, 0, 7], true),
            (
                "dynamic payload type with marker is RTP",
                &[0x80, 0x80 | 0x60, 0, 1],
                false,
            ),
            ("opus without marker is RTP", &[0x80, 111, 0, 1], false),
            ("one byte is not RTCP", &[0x80], false),
        ];
        for (name, input, want) in cases {
            assert_eq!(looks_like_rtcp(input), want, "{name}");
        }
    }
}
