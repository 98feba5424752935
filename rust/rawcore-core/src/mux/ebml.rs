//! EBML, the binary encoding beneath Matroska and WebM (RFC 8794).
//!
//! Every element is an ID, a size as a variable-length integer (a leading 1 bit after `n - 1`
//! zero bits marks an `n`-byte number) and a body. This module owns the encodings: IDs, sizes
//! (minimal or padded to a fixed width so they can be patched later), unsigned integers in as few
//! bytes as needed, IEEE floats, strings and master elements built in memory. It writes into a
//! `Vec<u8>`; the Matroska writer decides what reaches the output and when.

/// A size of all ones in 8 bytes: "unknown", valid for Segment and Cluster.
pub const UNKNOWN_SIZE: [u8; 8] = [0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];
/// The largest size an 8-byte vint can carry (all ones is reserved for "unknown").
pub const MAX_SIZE: u64 = (1 << 56) - 2;

/// Appends an element ID; IDs keep their marker bits, so they are written as their
/// significant bytes.
pub fn write_id(out: &mut Vec<u8>, id: u32) {
    let bytes = id.to_be_bytes();
    let skip = (id.leading_zeros() / 8).min(3) as usize;
    out.extend_from_slice(bytes.get(skip..).unwrap_or(&bytes));
}

/// Bytes of the shortest vint for `size`. A value of all ones in `n` bytes means "unknown", so
/// `2^(7n) - 1` needs `n + 1` bytes.
#[must_use]
pub fn size_len(size: u64) -> usize {
    (1..=8).find(|&n| size < (1u64 << (7 * n)) - 1).unwrap_or(8)
}

/// Appends `size` as a vint of exactly `len` bytes (1-8). Sizes that do not fit are written as
/// "unknown" rather than corrupted; no in-memory element can reach them.
pub fn write_size_fixed(out: &mut Vec<u8>, size: u64, len: usize) {
    let len = len.clamp(1, 8);
    if size > MAX_SIZE || size >= (1u64 << (7 * len)) - 1 {
        out.extend_from_slice(&UNKNOWN_SIZE);
        return;
    }
    let marked = size | 1u64 << (7 * len);
    out.extend_from_slice(marked.to_be_bytes().get(8 - len..).unwrap_or_default());
}

/// Appends `size` as the shortest vint.
pub fn write_size(out: &mut Vec<u8>, size: u64) {
    write_size_fixed(out, size, size_len(size));
}

/// Appends an unsigned integer element in the fewest bytes (at least one).
pub fn write_uint(out: &mut Vec<u8>, id: u32, value: u64) {
    let len = (8 - value.leading_zeros() as usize / 8).max(1);
    write_id(out, id);
    write_size(out, len as u64);
    out.extend_from_slice(value.to_be_bytes().get(8 - len..).unwrap_or_default());
}

/// Appends a signed integer element in the fewest bytes (two's complement, at least one).
pub fn write_int(out: &mut Vec<u8>, id: u32, value: i64) {
    let bytes = value.to_be_bytes();
    // Drop leading bytes that only repeat the sign of the byte after them.
    let mut start = 0;
    while start < 7 {
        let (b, next) = (bytes[start], bytes[start + 1]);
        if (b == 0 && next & 0x80 == 0) || (b == 0xFF && next & 0x80 != 0) {
            start += 1;
        } else {
            break;
        }
    }
    write_id(out, id);
    write_size(out, (8 - start) as u64);
    out.extend_from_slice(bytes.get(start..).unwrap_or_default());
}

/// Appends an unsigned integer element padded to 8 bytes, so it can be patched in place.
pub fn write_uint_fixed(out: &mut Vec<u8>, id: u32, value: u64) {
    write_id(out, id);
    write_size(out, 8);
    out.extend_from_slice(&value.to_be_bytes());
}

/// Appends an 8-byte float element.
pub fn write_float(out: &mut Vec<u8>, id: u32, value: f64) {
    write_id(out, id);
    write_size(out, 8);
    out.extend_from_slice(&value.to_be_bytes());
}

/// Appends a binary (or UTF-8 / ASCII string) element.
pub fn write_bytes(out: &mut Vec<u8>, id: u32, value: &[u8]) {
    write_id(out, id);
    write_size(out, value.len() as u64);
    out.extend_from_slice(value);
}

/// Appends a master element whose children `body` writes.
pub fn write_master(out: &mut Vec<u8>, id: u32, body: impl FnOnce(&mut Vec<u8>)) {
    let mut inner = Vec::new();
    body(&mut inner);
    write_id(out, id);
    write_size(out, inner.len() as u64);
    out.extend_from_slice(&inner);
}

/// Appends a Void element occupying exactly `total` bytes (at least 2).
pub fn write_void(out: &mut Vec<u8>, total: usize) {
    let total = total.max(2);
    // One ID byte; the size field takes 1 byte up to 126 bytes of body, 8 beyond.
    let (size_len, body) = if total - 2 <= 126 {
        (1, total - 2)
    } else {
        (8, total - 9)
    };
    write_id(out, super::ids::VOID);
    write_size_fixed(out, body as u64, size_len);
    out.resize(out.len() + body, 0);
}

/// A minimal EBML reader for tests: walks the element tree of a finished file.
#[cfg(test)]
pub(crate) mod reader {
    /// One element: ID, body range in the file, children when it is a master.
    #[derive(Debug, Clone)]
    pub struct Element {
        pub id: u32,
        pub start: usize,
        pub body: std::ops::Range<usize>,
        pub children: Vec<Element>,
    }

    impl Element {
        pub fn find(&self, id: u32) -> Option<&Element> {
            self.children.iter().find(|e| e.id == id)
        }

        pub fn all(&self, id: u32) -> impl Iterator<Item = &Element> {
            self.children.iter().filter(move |e| e.id == id)
        }

        pub fn uint(&self, data: &[u8]) -> u64 {
            data[self.body.clone()]
                .iter()
                .fold(0, |acc, &b| acc << 8 | u64::from(b))
        }

        pub fn float(&self, data: &[u8]) -> f64 {
            let b: [u8; 8] = data[self.body.clone()].try_into().expect("8-byte float");
            f64::from_be_bytes(b)
        }
    }

    fn vint(data: &[u8], at: usize, keep_marker: bool) -> (u64, usize) {
        let first = data[at];
        let len = first.leading_zeros() as usize + 1;
        assert!(len <= 8, "vint at {at}");
        let mut value = if keep_marker {
            u64::from(first)
        } else {
            u64::from(first) & (0xFF >> len)
        };
        for &b in &data[at + 1..at + len] {
            value = value << 8 | u64::from(b);
        }
        (value, len)
    }

    const MASTERS: &[u32] = &[
        0x1A45_DFA3,
        0x1853_8067,
        0x114D_9B74,
        0x4DBB,
        0x1549_A966,
        0x1654_AE6B,
        0xAE,
        0xE0,
        0xE1,
        0x1F43_B675,
        0x1C53_BB6B,
        0xBB,
        0xB7,
        0xA0,
    ];

    /// Parses the elements in `data[range]`, descending into known masters.
    pub fn parse(data: &[u8], range: std::ops::Range<usize>) -> Vec<Element> {
        let mut out = Vec::new();
        let mut at = range.start;
        while at < range.end {
            let (id, id_len) = vint(data, at, true);
            let (size, size_len) = vint(data, at + id_len, false);
            let body_start = at + id_len + size_len;
            let body_end = if size == (1 << (7 * size_len)) - 1 {
                range.end
            } else {
                body_start + size as usize
            };
            assert!(
                body_end <= range.end,
                "element {id:X} at {at} overruns its parent"
            );
            let id = id as u32;
            let children = if MASTERS.contains(&id) {
                parse(data, body_start..body_end)
            } else {
                Vec::new()
            };
            out.push(Element {
                id,
                start: at,
                body: body_start..body_end,
                children,
            });
            at = body_end;
        }
        out
    }
}

#[cfg(test)]
#[allow(clippy::type_complexity)] // test tables are tuples named by their doc comments
mod tests {
    use super::*;

    #[test]
    fn sizes_use_the_shortest_vint_and_avoid_the_unknown_pattern() {
        let cases: [(&str, u64, &[u8]); 8] = [
            ("zero", 0, &[0x80]),
            ("largest 1-byte value", 126, &[0xFE]),
            ("127 would read as unknown in 1 byte", 127, &[0x40, 0x7F]),
            ("largest 2-byte value", 16_382, &[0x7F, 0xFE]),
            ("16383 needs 3 bytes", 16_383, &[0x20, 0x3F, 0xFF]),
            (
                "2^21 - 1 needs 4 bytes",
                (1 << 21) - 1,
                &[0x10, 0x1F, 0xFF, 0xFF],
            ),
            (
                "largest 8-byte value",
                MAX_SIZE,
                &[0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE],
            ),
            (
                "beyond 8 bytes is written as unknown",
                u64::MAX,
                &UNKNOWN_SIZE,
            ),
        ];
        for (name, size, want) in cases {
            let mut out = Vec::new();
            write_size(&mut out, size);
            assert_eq!(out, want, "{name}");
            assert_eq!(size_len(size), want.len(), "{name}");
        }
    }

    #[test]
    fn fixed_width_sizes_pad_with_leading_zero_bits() {
        let mut out = Vec::new();
        write_size_fixed(&mut out, 5, 8);
        assert_eq!(out, [0x01, 0, 0, 0, 0, 0, 0, 5]);
        out.clear();
        write_size_fixed(&mut out, 300, 1);
        assert_eq!(
            out, UNKNOWN_SIZE,
            "too large for the width: unknown, not corrupt"
        );
    }

    #[test]
    fn elements_encode_ids_uints_and_floats_minimally() {
        let cases: [(&str, fn(&mut Vec<u8>), &[u8]); 6] = [
            (
                "1-byte ID, zero",
                |o| write_uint(o, 0xD7, 0),
                &[0xD7, 0x81, 0],
            ),
            (
                "4-byte ID",
                |o| write_uint(o, 0x002A_D7B1, 1_000_000),
                &[0x2A, 0xD7, 0xB1, 0x83, 0x0F, 0x42, 0x40],
            ),
            (
                "uint of 256 takes 2 bytes",
                |o| write_uint(o, 0x83, 256),
                &[0x83, 0x82, 1, 0],
            ),
            (
                "fixed uint keeps 8 bytes",
                |o| write_uint_fixed(o, 0x53AC, 1),
                &[0x53, 0xAC, 0x88, 0, 0, 0, 0, 0, 0, 0, 1],
            ),
            (
                "float",
                |o| write_float(o, 0x4489, 1.0),
                &[0x44, 0x89, 0x88, 0x3F, 0xF0, 0, 0, 0, 0, 0, 0],
            ),
            (
                "string",
                |o| write_bytes(o, 0x4282, b"webm"),
                &[0x42, 0x82, 0x84, b'w', b'e', b'b', b'm'],
            ),
        ];
        for (name, write, want) in cases {
            let mut out = Vec::new();
            write(&mut out);
            assert_eq!(out, want, "{name}");
        }
    }

    #[test]
    fn signed_ints_use_the_fewest_twos_complement_bytes() {
        let cases: [(i64, &[u8]); 6] = [
            (0, &[0x00]),
            (-1, &[0xFF]),
            (127, &[0x7F]),
            (128, &[0x00, 0x80]),
            (-128, &[0x80]),
            (-129, &[0xFF, 0x7F]),
        ];
        for (value, body) in cases {
            let mut out = Vec::new();
            write_int(&mut out, 0xFB, value);
            assert_eq!(out[0], 0xFB, "{value}");
            assert_eq!(usize::from(out[1] & 0x7F), body.len(), "{value}");
            assert_eq!(&out[2..], body, "{value}");
        }
    }

    #[test]
    fn void_elements_fill_exactly_the_requested_bytes() {
        for total in [2usize, 3, 128, 129, 130, 500] {
            let mut out = Vec::new();
            write_void(&mut out, total);
            assert_eq!(out.len(), total, "void of {total}");
            let parsed = reader::parse(&out, 0..out.len());
            assert_eq!(parsed.len(), 1, "one element for {total}");
        }
    }
}
