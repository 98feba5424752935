//! Janus recordings (`.mjr`), one RTP stream per file, read over a byte slice.
//!
//! Three layouts exist, all big-endian:
//!
//! - version 2, `MJR00002`: a u16 length and a JSON header (`"t"`: `"a"`, `"v"` or `"d"`;
//!   `"c"`: codec; `"s"`: file created, Unix µs; `"u"`: first packet written, Unix µs; optional
//!   `"f"` fmtp, `"x"` extensions, `"e"` end-to-end encrypted), then per packet `MEET`, a u32
//!   of milliseconds since `"u"`, a u16 length and the RTP packet;
//! - version 1, `MJR00001`: the same header, then per packet `MEETECHO`, a u16 length and the
//!   packet: no arrival time, so times come from the RTP timestamps;
//! - the first layout, `MEETECHO` with a 5-byte `audio` / `video` header (VP8 or Opus), then
//!   packets as in version 1.
//!
//! The header JSON is flat; a small scanner reads the keys rawcore needs and skips the rest.

/// Why a Janus recording cannot be read at all.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum MjrError {
    /// Not an `.mjr` file.
    #[error("not a Janus .mjr recording (no MJR00001/MJR00002/MEETECHO magic)")]
    BadMagic,
    /// The header is cut short or is not the JSON Janus writes.
    #[error(".mjr header at byte {byte_offset} is unreadable: {reason}")]
    BadHeader {
        /// Where the header starts.
        byte_offset: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// What the header of a recording says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MjrHeader {
    /// 0 for the first layout, 1 or 2.
    pub version: u8,
    /// `a` (audio), `v` (video) or `d` (data channel).
    pub kind: char,
    /// The codec Janus names (`opus`, `vp8`, `h264`, ...), lower case.
    pub codec: String,
    /// When the file was created, Unix µs (version 1 and 2).
    pub created_unix_us: Option<i64>,
    /// When the first packet was written, Unix µs (version 1 and 2).
    pub first_unix_us: Option<i64>,
    /// The fmtp line the recorder kept, if any.
    pub fmtp: Option<String>,
    /// The media was end-to-end encrypted (the payloads cannot be decoded).
    pub encrypted: bool,
}

/// One packet of a recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MjrPacket<'a> {
    /// Where its frame header starts.
    pub byte_offset: usize,
    /// Milliseconds since the header's first-packet time (version 2 only).
    pub offset_ms: Option<u32>,
    /// The packet.
    pub data: &'a [u8],
}

/// Reads a recording's header, then its packets through the iterator.
#[derive(Debug, Clone)]
pub struct MjrReader<'a> {
    data: &'a [u8],
    pos: usize,
    header: MjrHeader,
    stop: Option<(usize, String)>,
}

/// Whether `data` starts like a Janus recording.
#[must_use]
pub fn is_mjr(data: &[u8]) -> bool {
    data.starts_with(b"MJR00001") || data.starts_with(b"MJR00002") || data.starts_with(b"MEETECHO")
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

impl<'a> MjrReader<'a> {
    /// Reads the header.
    pub fn new(data: &'a [u8]) -> Result<Self, MjrError> {
        let bad = |reason| MjrError::BadHeader {
            byte_offset: 0,
            reason,
        };
        let version = match data.get(..8) {
            Some(b"MJR00002") => 2,
            Some(b"MJR00001") => 1,
            Some(b"MEETECHO") => 0,
            _ => return Err(MjrError::BadMagic),
        };
        let len = usize::from(be16(data, 8).ok_or(bad("cut short before its length"))?);
        let body = data
            .get(10..10 + len)
            .ok_or(bad("cut short inside the header"))?;
        let header = if version == 0 {
            match body {
                b"audio" => MjrHeader {
                    kind: 'a',
                    codec: "opus".into(),
                    ..MjrHeader::default()
                },
                b"video" => MjrHeader {
                    kind: 'v',
                    codec: "vp8".into(),
                    ..MjrHeader::default()
                },
                _ => return Err(bad("first-layout header is neither 'audio' nor 'video'")),
            }
        } else {
            let text = std::str::from_utf8(body).map_err(|_| bad("header is not UTF-8"))?;
            let fields = json_fields(text).ok_or(bad("header is not a JSON object"))?;
            let get = |key: &str| fields.iter().find(|(k, _)| k == key).map(|(_, v)| v);
            let kind = match get("t").and_then(JsonValue::as_str) {
                Some("a") => 'a',
                Some("v") => 'v',
                Some("d") => 'd',
                _ => return Err(bad("header has no type \"t\" of a, v or d")),
            };
            let codec = get("c")
                .and_then(JsonValue::as_str)
                .ok_or(bad("header has no codec \"c\""))?
                .to_ascii_lowercase();
            MjrHeader {
                version,
                kind,
                codec,
                created_unix_us: get("s").and_then(JsonValue::as_int),
                first_unix_us: get("u").and_then(JsonValue::as_int),
                fmtp: get("f").and_then(JsonValue::as_str).map(str::to_owned),
                encrypted: matches!(get("e"), Some(JsonValue::Bool(true))),
            }
        };
        Ok(Self {
            data,
            pos: 10 + len,
            header,
            stop: None,
        })
    }

    /// The recording's header.
    #[must_use]
    pub fn header(&self) -> &MjrHeader {
        &self.header
    }

    /// Where and why reading stopped before the end of the file, if it did.
    #[must_use]
    pub fn stop(&self) -> Option<&(usize, String)> {
        self.stop.as_ref()
    }

    fn halt(&mut self, why: String) -> Option<MjrPacket<'a>> {
        self.stop = Some((self.pos, why));
        self.pos = self.data.len();
        None
    }
}

impl<'a> Iterator for MjrReader<'a> {
    type Item = MjrPacket<'a>;

    fn next(&mut self) -> Option<MjrPacket<'a>> {
        let at = self.pos;
        let rest = self.data.get(at..).unwrap_or_default();
        if rest.is_empty() {
            return None;
        }
        let (offset_ms, len_at) = if self.header.version == 2 {
            if !rest.starts_with(b"MEET") {
                return self.halt("no MEET frame marker".into());
            }
            (be32(rest, 4), 8)
        } else {
            if !rest.starts_with(b"MEETECHO") {
                return self.halt("no MEETECHO frame marker".into());
            }
            (None, 8)
        };
        let Some(len) = be16(rest, len_at) else {
            return self.halt("cut short inside a frame header".into());
        };
        if self.header.version == 2 && offset_ms.is_none() {
            return self.halt("cut short inside a frame header".into());
        }
        let len = usize::from(len);
        let Some(data) = rest.get(len_at + 2..len_at + 2 + len) else {
            return self.halt(format!(
                "cut short: packet needs {len} bytes, {} available",
                rest.len() - len_at - 2
            ));
        };
        self.pos = at + len_at + 2 + len;
        Some(MjrPacket {
            byte_offset: at,
            offset_ms,
            data,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
enum JsonValue {
    Str(String),
    Int(i64),
    Bool(bool),
    Other,
}

impl JsonValue {
    fn as_str(&self) -> Option<&str> {
        match self {
            Self::Str(s) => Some(s),
            _ => None,
        }
    }

    fn as_int(&self) -> Option<i64> {
        match self {
            Self::Int(v) => Some(*v),
            _ => None,
        }
    }
}

/// The top-level members of a JSON object; nested values are skipped as `Other`.
fn json_fields(text: &str) -> Option<Vec<(String, JsonValue)>> {
    let b = text.as_bytes();
    let mut at = skip_ws(b, 0);
    if b.get(at) != Some(&b'{') {
        return None;
    }
    at = skip_ws(b, at + 1);
    let mut out = Vec::new();
    if b.get(at) == Some(&b'}') {
        return Some(out);
    }
    loop {
        let (key, next) = json_string(b, at)?;
        at = skip_ws(b, next);
        if b.get(at) != Some(&b':') {
            return None;
        }
        at = skip_ws(b, at + 1);
        let (value, next) = json_value(b, at)?;
        out.push((key, value));
        at = skip_ws(b, next);
        match b.get(at)? {
            b',' => at = skip_ws(b, at + 1),
            b'}' => return Some(out),
            _ => return None,
        }
    }
}

fn skip_ws(b: &[u8], mut at: usize) -> usize {
    while b.get(at).is_some_and(u8::is_ascii_whitespace) {
        at += 1;
    }
    at
}

fn json_string(b: &[u8], at: usize) -> Option<(String, usize)> {
    if b.get(at) != Some(&b'"') {
        return None;
    }
    let mut out = Vec::new();
    let mut i = at + 1;
    loop {
        match *b.get(i)? {
            b'"' => return Some((String::from_utf8(out).ok()?, i + 1)),
            b'\\' => {
                let esc = *b.get(i + 1)?;
                match esc {
                    b'n' => out.push(b'\n'),
                    b't' => out.push(b'\t'),
                    b'u' => {
                        // Janus writes ASCII; keep the escape's text rather than decode it.
                        out.extend_from_slice(b.get(i..i + 6)?);
                        i += 4;
                    }
                    other => out.push(other),
                }
                i += 2;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
}

fn json_value(b: &[u8], at: usize) -> Option<(JsonValue, usize)> {
    match *b.get(at)? {
        b'"' => json_string(b, at).map(|(s, n)| (JsonValue::Str(s), n)),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut i = at;
            loop {
                match *b.get(i)? {
                    b'"' => {
                        i = json_string(b, i)?.1;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some((JsonValue::Other, i + 1));
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
        }
        _ => {
            let end = b[at..]
                .iter()
                .position(|c| matches!(c, b',' | b'}' | b']') || c.is_ascii_whitespace())
                .map_or(b.len(), |p| at + p);
            let word = std::str::from_utf8(&b[at..end]).ok()?;
            let value = match word {
                "true" => JsonValue::Bool(true),
                "false" => JsonValue::Bool(false),
                _ => word
                    .parse::<i64>()
                    .map(JsonValue::Int)
                    .or_else(|_| word.parse::<f64>().map(|_| JsonValue::Other))
                    .ok()
                    .or((word == "null").then_some(JsonValue::Other))?,
            };
            Some((value, end))
        }
    }
}

/// Writers for tests, benchmarks and fuzz seeds.
pub mod write {
    /// A version 2 recording of `packets` (`(ms since "u", RTP bytes)`).
    #[must_use]
    pub fn v2(kind: char, codec: &str, first_unix_us: i64, packets: &[(u32, &[u8])]) -> Vec<u8> {
        let json = format!(
            "{{\"t\":\"{kind}\",\"c\":\"{codec}\",\"s\":{first_unix_us},\"u\":{first_unix_us}}}"
        );
        let mut out = b"MJR00002".to_vec();
        out.extend_from_slice(&(json.len() as u16).to_be_bytes());
        out.extend_from_slice(json.as_bytes());
        for (ms, data) in packets {
            out.extend_from_slice(b"MEET");
            out.extend_from_slice(&ms.to_be_bytes());
            out.extend_from_slice(&(data.len() as u16).to_be_bytes());
            out.extend_from_slice(data);
        }
        out
    }

    /// A version 1 recording of `packets` (no arrival times).
    #[must_use]
    pub fn v1(kind: char, codec: &str, first_unix_us: i64, packets: &[&[u8]]) -> Vec<u8> {
        let json = format!(
            "{{\"t\":\"{kind}\",\"c\":\"{codec}\",\"s\":{first_unix_us},\"u\":{first_unix_us}}}"
        );
        let mut out = b"MJR00001".to_vec();
        out.extend_from_slice(&(json.len() as u16).to_be_bytes());
        out.extend_from_slice(json.as_bytes());
        for data in packets {
            out.extend_from_slice(b"MEETECHO");
            out.extend_from_slice(&(data.len() as u16).to_be_bytes());
            out.extend_from_slice(data);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_layout_gives_its_header_and_packets() {
        let v2 = write::v2('a', "opus", 1_000_000, &[(0, b"one"), (20, b"two")]);
        let v1 = write::v1('v', "VP8", 5, &[b"one", b"two"]);
        let mut v0 = b"MEETECHO\x00\x05video".to_vec();
        for p in [&b"one"[..], b"two"] {
            v0.extend_from_slice(b"MEETECHO");
            v0.extend_from_slice(&(p.len() as u16).to_be_bytes());
            v0.extend_from_slice(p);
        }
        for (name, file, version, kind, codec, times) in [
            ("v2", v2, 2, 'a', "opus", [Some(0), Some(20)]),
            ("v1", v1, 1, 'v', "vp8", [None, None]),
            ("first layout", v0, 0, 'v', "vp8", [None, None]),
        ] {
            let mut reader = MjrReader::new(&file).expect(name);
            let h = reader.header().clone();
            assert_eq!(
                (h.version, h.kind, h.codec.as_str()),
                (version, kind, codec),
                "{name}"
            );
            let packets: Vec<_> = reader.by_ref().collect();
            assert_eq!(packets.len(), 2, "{name}");
            assert_eq!(packets[1].data, b"two", "{name}");
            assert_eq!(
                [packets[0].offset_ms, packets[1].offset_ms],
                times,
                "{name}"
            );
            assert!(reader.stop().is_none(), "{name}");
        }
    }

    #[test]
    fn the_header_json_is_read_with_nested_members_skipped() {
        let json = r#"{"t":"v","c":"h264","x":{"1":"urn:a,b}"},"f":"packetization-mode=1","s":10,"u":12,"e":true}"#;
        let mut file = b"MJR00002".to_vec();
        file.extend_from_slice(&(json.len() as u16).to_be_bytes());
        file.extend_from_slice(json.as_bytes());
        let h = MjrReader::new(&file).unwrap().header().clone();
        assert_eq!(h.codec, "h264");
        assert_eq!(h.fmtp.as_deref(), Some("packetization-mode=1"));
        assert_eq!(
            (h.created_unix_us, h.first_unix_us, h.encrypted),
            (Some(10), Some(12), true)
        );
    }

    #[test]
    fn unreadable_headers_are_errors_and_a_cut_file_keeps_its_whole_packets() {
        for (name, data) in [
            ("no magic", &b"RIFF...."[..]),
            ("cut length", b"MJR00002\x00"),
            ("cut json", b"MJR00002\x00\x10{}"),
            ("not json", b"MJR00002\x00\x02[]"),
            ("no type", b"MJR00002\x00\x0c{\"c\":\"opus\"}"),
        ] {
            assert!(MjrReader::new(data).is_err(), "{name}");
        }
        let mut file = write::v2('a', "opus", 0, &[(0, b"one"), (20, b"two")]);
        file.truncate(file.len() - 1);
        let mut reader = MjrReader::new(&file).unwrap();
        assert_eq!(reader.by_ref().count(), 1);
        assert!(reader.stop().is_some());
    }
}
