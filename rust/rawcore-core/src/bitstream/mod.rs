//! Bit-level readers and the codec headers rawcore needs to look into.
//!
//! Video extraction never decodes pictures, but it must know which frames are keyframes, how big
//! they are and what the decoder configuration records hold. This module owns the primitives for
//! that: an MSB-first [`BitReader`] with Exp-Golomb codes (H.264) and `uvlc`/`leb128` (AV1),
//! removal of H.264 emulation prevention bytes, and one submodule per codec header: [`h264`]
//! (SPS, `avcC`), [`vp8`] (keyframe header), [`vp9`] (uncompressed header, superframe index) and
//! [`av1`] (OBU header, sequence header, `av1C`). Every reader is bounds-checked: malformed input
//! is a [`BitstreamError`], never a panic.

pub mod av1;
pub mod h264;
pub mod vp8;
pub mod vp9;

/// Why a header could not be read.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum BitstreamError {
    /// The data ended inside a field.
    #[error("{what}: data ends at bit {bit}")]
    Exhausted {
        /// The structure being read.
        what: &'static str,
        /// Bit position where the data ran out.
        bit: usize,
    },
    /// A field holds a value the specification forbids.
    #[error("{what}: invalid value {value}")]
    Invalid {
        /// The field.
        what: &'static str,
        /// The value found.
        value: u64,
    },
}

/// Which of the 8 reference slots (VP9 and AV1 keep decoded pictures in eight numbered slots) a
/// frame, or the frames of one picture in order, read from and which they overwrite: enough to
/// tell after a loss whether a frame's references are intact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SlotRefs {
    /// Slots read (bit `i` for slot `i`), not counting those an earlier frame of the same
    /// picture wrote.
    pub uses: u8,
    /// Slots written.
    pub refreshes: u8,
}

impl SlotRefs {
    /// The frames of one picture in decoding order as one: `next` follows `self`.
    #[must_use]
    pub fn then(self, next: SlotRefs) -> SlotRefs {
        SlotRefs {
            uses: self.uses | (next.uses & !self.refreshes),
            refreshes: self.refreshes | next.refreshes,
        }
    }
}

/// Reads bits MSB first from a byte slice.
#[derive(Debug, Clone)]
pub struct BitReader<'a> {
    data: &'a [u8],
    bit: usize,
    what: &'static str,
}

impl<'a> BitReader<'a> {
    /// A reader at the first bit of `data`; `what` names the structure in errors.
    #[must_use]
    pub fn new(data: &'a [u8], what: &'static str) -> Self {
        Self { data, bit: 0, what }
    }

    fn exhausted(&self) -> BitstreamError {
        BitstreamError::Exhausted {
            what: self.what,
            bit: self.bit,
        }
    }

    /// The bit position.
    #[must_use]
    pub fn position(&self) -> usize {
        self.bit
    }

    /// Reads one bit.
    pub fn bit(&mut self) -> Result<bool, BitstreamError> {
        let byte = *self
            .data
            .get(self.bit / 8)
            .ok_or_else(|| self.exhausted())?;
        let value = byte >> (7 - (self.bit % 8)) & 1 == 1;
        self.bit += 1;
        Ok(value)
    }

    /// Reads `n` (at most 32) bits as an unsigned number.
    pub fn bits(&mut self, n: u32) -> Result<u32, BitstreamError> {
        debug_assert!(n <= 32, "fields are at most 32 bits wide");
        if self.bit + n as usize > self.data.len() * 8 {
            return Err(self.exhausted());
        }
        let mut value = 0u64;
        for _ in 0..n {
            value = value << 1 | u64::from(self.bit()?);
        }
        Ok(value as u32)
    }

    /// Skips `n` bits.
    pub fn skip(&mut self, n: usize) -> Result<(), BitstreamError> {
        if self.bit + n > self.data.len() * 8 {
            return Err(self.exhausted());
        }
        self.bit += n;
        Ok(())
    }

    /// Reads an unsigned Exp-Golomb code, `ue(v)` (H.264 9.1).
    pub fn ue(&mut self) -> Result<u32, BitstreamError> {
        let mut zeros = 0u32;
        while !self.bit()? {
            zeros += 1;
            // 32 leading zeros would exceed u32; no conforming field gets there.
            if zeros > 31 {
                return Err(BitstreamError::Invalid {
                    what: self.what,
                    value: u64::from(zeros),
                });
            }
        }
        let rest = self.bits(zeros)?;
        Ok(((1u64 << zeros) - 1 + u64::from(rest)) as u32)
    }

    /// Reads a signed Exp-Golomb code, `se(v)`.
    pub fn se(&mut self) -> Result<i32, BitstreamError> {
        let k = i64::from(self.ue()?);
        let value = if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) };
        Ok(value as i32)
    }

    /// Reads an AV1 `uvlc()` code.
    pub fn uvlc(&mut self) -> Result<u32, BitstreamError> {
        let mut zeros = 0u32;
        while !self.bit()? {
            zeros += 1;
            if zeros >= 32 {
                return Ok(u32::MAX);
            }
        }
        let rest = self.bits(zeros)?;
        Ok(((1u64 << zeros) - 1 + u64::from(rest)).min(u64::from(u32::MAX)) as u32)
    }
}

/// Removes H.264 emulation prevention bytes: every `00 00 03` becomes `00 00`.
#[must_use]
pub fn unescape_rbsp(nal: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(nal.len());
    let mut zeros = 0usize;
    for &b in nal {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

/// Reads a `leb128()` value (AV1 4.10.5): at most 8 bytes, value below 2^32. Returns the value and
/// the bytes it took.
pub fn read_leb128(data: &[u8]) -> Result<(u64, usize), BitstreamError> {
    let mut value = 0u64;
    for i in 0..8 {
        let Some(&byte) = data.get(i) else {
            return Err(BitstreamError::Exhausted {
                what: "leb128",
                bit: i * 8,
            });
        };
        value |= u64::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            if value > u64::from(u32::MAX) {
                return Err(BitstreamError::Invalid {
                    what: "leb128",
                    value,
                });
            }
            return Ok((value, i + 1));
        }
    }
    Err(BitstreamError::Invalid {
        what: "leb128 longer than 8 bytes",
        value,
    })
}

/// Appends the shortest `leb128()` encoding of `value`.
pub fn write_leb128(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let byte = (value & 0x7F) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

#[cfg(test)]
mod tests {
    // Case tables spell their row types inline, next to the rows.
    #![allow(clippy::type_complexity, clippy::items_after_statements)]

    use super::*;
    use proptest::prelude::*;

    #[test]
    fn exp_golomb_cases() {
        // Bits: 1 | 010 | 011 | 00100 | 00101 | 0001000
        let data = [0b1010_0110, 0b0100_0010, 0b1000_1000];
        let mut r = BitReader::new(&data, "test");
        assert_eq!(r.ue(), Ok(0), "single 1 is zero");
        assert_eq!(r.ue(), Ok(1), "010 is one");
        assert_eq!(r.ue(), Ok(2), "011 is two");
        assert_eq!(r.se(), Ok(2), "00100 is ue 3, se +2");
        assert_eq!(r.se(), Ok(-2), "00101 is ue 4, se -2");
        assert_eq!(r.ue(), Ok(7), "0001000 is seven");
        assert!(r.ue().is_err(), "reading past the end fails");
    }

    #[test]
    fn exp_golomb_rejects_33_leading_zeros() {
        let data = [0u8; 8];
        assert!(BitReader::new(&data, "t").ue().is_err());
    }

    #[test]
    fn unescape_cases() {
        let cases: [(&str, &[u8], &[u8]); 4] = [
            ("escape removed", &[0, 0, 3, 1], &[0, 0, 1]),
            ("two escapes in a row", &[0, 0, 3, 0, 0, 3], &[0, 0, 0, 0]),
            ("03 after one zero kept", &[0, 3, 0], &[0, 3, 0]),
            ("trailing escape removed", &[9, 0, 0, 3], &[9, 0, 0]),
        ];
        for (name, input, want) in cases {
            assert_eq!(unescape_rbsp(input), want, "{name}");
        }
    }

    #[test]
    fn leb128_cases() {
        let cases: [(&str, &[u8], Result<(u64, usize), ()>); 7] = [
            ("one byte", &[0x05], Ok((5, 1))),
            ("two bytes", &[0x80, 0x01], Ok((128, 2))),
            (
                "non-minimal encoding is accepted",
                &[0x85, 0x80, 0x00],
                Ok((5, 3)),
            ),
            (
                "largest value",
                &[0xFF, 0xFF, 0xFF, 0xFF, 0x0F],
                Ok((u64::from(u32::MAX), 5)),
            ),
            (
                "above 2^32-1 rejected",
                &[0x80, 0x80, 0x80, 0x80, 0x10],
                Err(()),
            ),
            ("unterminated", &[0x80, 0x80], Err(())),
            ("nine bytes rejected", &[0x80; 9], Err(())),
        ];
        for (name, input, want) in cases {
            assert_eq!(read_leb128(input).map_err(|_| ()), want, "{name}");
        }
        for value in [0u64, 127, 128, 16_383, 16_384, u64::from(u32::MAX)] {
            let mut out = Vec::new();
            write_leb128(&mut out, value);
            assert_eq!(
                read_leb128(&out),
                Ok((value, out.len())),
                "round trip {value}"
            );
        }
    }

    proptest! {
        #[test]
        fn readers_never_panic(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut r = BitReader::new(&data, "fuzz");
            for _ in 0..40 {
                let _ = r.ue();
                let _ = r.se();
                let _ = r.uvlc();
                let _ = r.bits(17);
            }
            let _ = read_leb128(&data);
            let _ = unescape_rbsp(&data);
        }
    }
}
