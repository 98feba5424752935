//! The VP9 uncompressed header (VP9 bitstream spec 6.2) and superframe index (Annex B).
//!
//! rawcore reads just enough of the uncompressed header to tell keyframes, intra-only frames and
//! shown-existing frames apart and to read the frame size where it is coded explicitly. Spatial
//! layers of one picture travel in separate RTP layer frames and are joined back into one
//! superframe, whose trailing index lists every frame's size.

use super::{BitReader, BitstreamError, SlotRefs};

/// The VP9 frame sync code.
const SYNC_CODE: u32 = 0x49_83_42;
/// Colour space value meaning RGB (no colour range, full chroma).
const CS_RGB: u32 = 7;
/// At most 8 frames fit in one superframe.
pub const MAX_SUPERFRAME_FRAMES: usize = 8;

/// What the uncompressed header of a frame says.
#[allow(clippy::struct_excessive_bools)] // one field per flag of the wire format
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Vp9Header {
    /// Profile 0 to 3.
    pub profile: u8,
    /// The frame only tells the decoder to show an earlier one.
    pub show_existing_frame: bool,
    /// `frame_type` is `KEY_FRAME`.
    pub keyframe: bool,
    /// An intra-only (non-key) frame.
    pub intra_only: bool,
    /// Whether the frame is shown.
    pub show_frame: bool,
    /// Size coded in the header (keyframes, intra-only frames, inter frames with explicit size).
    pub size: Option<(u32, u32)>,
    /// The reference slots the frame reads (`ref_frame_idx`, or the slot a shown-existing frame
    /// shows) and writes (`refresh_frame_flags`, all for a keyframe).
    pub refs: SlotRefs,
}

fn color_config(r: &mut BitReader<'_>, profile: u8) -> Result<(), BitstreamError> {
    if profile >= 2 {
        let _ten_or_twelve_bit = r.bit()?;
    }
    let color_space = r.bits(3)?;
    if color_space == CS_RGB {
        if profile == 1 || profile == 3 {
            r.skip(1)?; // reserved_zero
        }
    } else {
        let _color_range = r.bit()?;
        if profile == 1 || profile == 3 {
            r.skip(3)?; // subsampling_x, subsampling_y, reserved_zero
        }
    }
    Ok(())
}

fn frame_size(r: &mut BitReader<'_>) -> Result<(u32, u32), BitstreamError> {
    let w = r.bits(16)? + 1;
    let h = r.bits(16)? + 1;
    Ok((w, h))
}

fn sync_code(r: &mut BitReader<'_>) -> Result<(), BitstreamError> {
    let code = r.bits(24)?;
    if code == SYNC_CODE {
        Ok(())
    } else {
        Err(BitstreamError::Invalid {
            what: "VP9 frame sync code",
            value: u64::from(code),
        })
    }
}

/// Parses the uncompressed header at the start of one (non-super) frame.
pub fn parse_header(frame: &[u8]) -> Result<Vp9Header, BitstreamError> {
    let mut r = BitReader::new(frame, "VP9 uncompressed header");
    let marker = r.bits(2)?;
    if marker != 2 {
        return Err(BitstreamError::Invalid {
            what: "VP9 frame marker",
            value: u64::from(marker),
        });
    }
    let low = r.bits(1)?;
    let high = r.bits(1)?;
    let profile = (high << 1 | low) as u8;
    if profile == 3 {
        r.skip(1)?;
    }
    let mut h = Vp9Header {
        profile,
        ..Vp9Header::default()
    };
    h.show_existing_frame = r.bit()?;
    if h.show_existing_frame {
        h.refs.uses = 1 << r.bits(3)?;
        return Ok(h);
    }
    h.keyframe = !r.bit()?;
    h.show_frame = r.bit()?;
    let error_resilient = r.bit()?;
    if h.keyframe {
        h.refs.refreshes = 0xFF;
        sync_code(&mut r)?;
        color_config(&mut r, profile)?;
        h.size = Some(frame_size(&mut r)?);
        return Ok(h);
    }
    h.intra_only = if h.show_frame { false } else { r.bit()? };
    if !error_resilient {
        r.skip(2)?; // reset_frame_context
    }
    if h.intra_only {
        sync_code(&mut r)?;
        if profile > 0 {
            color_config(&mut r, profile)?;
        }
        h.refs.refreshes = r.bits(8)? as u8;
        h.size = Some(frame_size(&mut r)?);
        return Ok(h);
    }
    h.refs.refreshes = r.bits(8)? as u8;
    for _ in 0..3 {
        h.refs.uses |= 1 << r.bits(3)?; // ref_frame_idx
        r.skip(1)?; // ref_frame_sign_bias
    }
    // frame_size_with_refs: the size is explicit only when no reference lends its own.
    for _ in 0..3 {
        if r.bit()? {
            return Ok(h);
        }
    }
    h.size = Some(frame_size(&mut r)?);
    Ok(h)
}

/// The frames of a superframe (or the frame itself when it has no index), as byte ranges.
#[must_use]
pub fn split_superframe(data: &[u8]) -> Vec<std::ops::Range<usize>> {
    match superframe_sizes(data) {
        Some((sizes, index_len)) => {
            let mut ranges = Vec::with_capacity(sizes.len());
            let mut at = 0usize;
            for size in sizes {
                let end = at + size;
                ranges.push(at..end);
                at = end;
            }
            if at == data.len() - index_len {
                ranges
            } else {
                std::iter::once(0..data.len()).collect()
            }
        }
        None => std::iter::once(0..data.len()).collect(),
    }
}

/// Reads a superframe index at the end of `data`: the frame sizes and the index length.
#[must_use]
pub fn superframe_sizes(data: &[u8]) -> Option<(Vec<usize>, usize)> {
    let &last = data.last()?;
    if last & 0xE0 != 0xC0 {
        return None;
    }
    let frames = usize::from(last & 7) + 1;
    let mag = usize::from(last >> 3 & 3) + 1;
    let index_len = 2 + mag * frames;
    let start = data.len().checked_sub(index_len)?;
    if data.get(start) != Some(&last) {
        return None;
    }
    let sizes = data.get(start + 1..data.len() - 1)?;
    let sizes: Vec<usize> = sizes
        .chunks_exact(mag)
        .map(|c| {
            c.iter()
                .rev()
                .fold(0usize, |acc, &b| acc << 8 | usize::from(b))
        })
        .collect();
    if sizes.iter().sum::<usize>() > start {
        return None;
    }
    Some((sizes, index_len))
}

/// Appends a superframe index for frames of `sizes` (2 to 8 of them, each below 2^32).
pub fn write_superframe_index(out: &mut Vec<u8>, sizes: &[usize]) {
    let frames = sizes.len().clamp(1, MAX_SUPERFRAME_FRAMES);
    let largest = sizes.iter().copied().max().unwrap_or(0);
    let mag = match largest {
        0..=0xFF => 1,
        0x100..=0xFFFF => 2,
        0x1_0000..=0xFF_FFFF => 3,
        _ => 4,
    };
    let marker = 0xC0 | ((mag - 1) << 3) as u8 | (frames - 1) as u8;
    out.push(marker);
    for &size in sizes.iter().take(frames) {
        out.extend_from_slice(&(size as u32).to_le_bytes()[..mag]);
    }
    out.push(marker);
}

#[cfg(test)]
mod tests {
    // Case tables spell their row types inline, next to the rows.
    #![allow(clippy::type_complexity, clippy::items_after_statements)]

    use super::*;
    use proptest::prelude::*;
    use std::fmt::Write as _;

    /// Starts of 320x180 keyframes written by libvpx (GStreamer `vp9enc`): profile 0 from I420
    /// input and profile 3 (high bit depth 4:4:4) from `videotestsrc`'s default format.
    const KEY_PROFILE0: &[u8] = &[
        0x82, 0x49, 0x83, 0x42, 0x20, 0x13, 0xf0, 0x0b, 0x36, 0x0a, 0x38, 0x24,
    ];
    const KEY_PROFILE3: &[u8] = &[
        0xb1, 0x24, 0xc1, 0xa1, 0x48, 0x00, 0x9f, 0x80, 0x59, 0xb0, 0x71, 0xc1,
    ];

    /// An intra-only profile 0 frame of 64x48: marker, profile 0, not shown, `intra_only`,
    /// `reset_frame_context`, sync code, refresh flags, size.
    fn intra_only() -> Vec<u8> {
        let mut bits = String::from("10" /* marker */);
        bits += "00"; // profile 0
        bits += "0"; // show_existing_frame
        bits += "1"; // frame_type non-key
        bits += "0"; // show_frame
        bits += "0"; // error_resilient
        bits += "1"; // intra_only
        bits += "00"; // reset_frame_context
        bits += "010010011000001101000010"; // sync code
        bits += "00000001"; // refresh_frame_flags
        let _ = write!(bits, "{:016b}{:016b}", 63, 47); // width - 1, height - 1
        while bits.len() % 8 != 0 {
            bits.push('0');
        }
        bits.as_bytes()
            .chunks(8)
            .map(|c| u8::from_str_radix(std::str::from_utf8(c).unwrap_or("0"), 2).unwrap_or(0))
            .collect()
    }

    /// Bits ("0"/"1") to bytes, zero-padded.
    fn bytes_of(mut bits: String) -> Vec<u8> {
        while bits.len() % 8 != 0 {
            bits.push('0');
        }
        bits.as_bytes()
            .chunks(8)
            .map(|c| u8::from_str_radix(std::str::from_utf8(c).unwrap_or("0"), 2).unwrap_or(0))
            .collect()
    }

    /// A shown profile 0 inter frame writing `refresh` and reading slots `refs`, its size taken
    /// from the first reference.
    fn inter(refresh: u8, refs: [u8; 3]) -> Vec<u8> {
        let mut bits = String::from("10000110"); // marker, profile 0, not existing, inter, shown, !ER
        bits += "00"; // reset_frame_context
        let _ = write!(bits, "{refresh:08b}");
        for idx in refs {
            let _ = write!(bits, "{idx:03b}0");
        }
        bits += "1"; // found_ref: the size of the first reference
        bytes_of(bits)
    }

    #[test]
    fn reference_slots_cases() {
        let cases: [(&str, Vec<u8>, SlotRefs); 5] = [
            (
                "a keyframe writes every slot",
                KEY_PROFILE0.to_vec(),
                SlotRefs {
                    uses: 0,
                    refreshes: 0xFF,
                },
            ),
            (
                "an intra-only frame writes its refresh flags and reads nothing",
                intra_only(),
                SlotRefs {
                    uses: 0,
                    refreshes: 0x01,
                },
            ),
            (
                "an inter frame reads its three slots and writes its flags",
                inter(0x01, [0, 1, 2]),
                SlotRefs {
                    uses: 0b111,
                    refreshes: 0x01,
                },
            ),
            (
                "a non-reference frame writes nothing",
                inter(0, [0, 0, 3]),
                SlotRefs {
                    uses: 0b1001,
                    refreshes: 0,
                },
            ),
            (
                "a shown-existing frame reads the slot it shows",
                bytes_of("1000".to_owned() + "1" + "101"),
                SlotRefs {
                    uses: 1 << 5,
                    refreshes: 0,
                },
            ),
        ];
        for (name, frame, want) in cases {
            let got = parse_header(&frame).map(|h| h.refs);
            assert_eq!(got, Ok(want), "{name}");
        }
    }

    #[test]
    fn header_cases() {
        let intra = intra_only();
        let cases: [(&str, &[u8], Result<(bool, bool, Option<(u32, u32)>), ()>); 6] = [
            (
                "libvpx profile 0 keyframe",
                KEY_PROFILE0,
                Ok((true, false, Some((320, 180)))),
            ),
            (
                "profile 3 keyframe reads bit depth and subsampling",
                KEY_PROFILE3,
                Ok((true, false, Some((320, 180)))),
            ),
            (
                "intra-only frame carries its size",
                &intra,
                Ok((false, true, Some((64, 48)))),
            ),
            (
                "show_existing_frame has no size",
                &[0x88],
                Ok((false, false, None)),
            ),
            ("bad frame marker", &[0x42, 0x49], Err(())),
            ("keyframe cut in the sync code", &KEY_PROFILE0[..2], Err(())),
        ];
        for (name, input, want) in cases {
            let got = parse_header(input)
                .map(|h| (h.keyframe, h.intra_only, h.size))
                .map_err(|_| ());
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn superframe_index_round_trips() {
        let cases: [(&str, Vec<usize>, u8); 3] = [
            (
                "two small frames use 1-byte sizes",
                vec![10, 200],
                0b1100_0001,
            ),
            (
                "three layers with a 2-byte size",
                vec![100, 300, 20],
                0b1100_1010,
            ),
            ("3-byte sizes", vec![70_000, 5], 0b1101_0001),
        ];
        for (name, sizes, marker) in cases {
            let mut data: Vec<u8> = sizes
                .iter()
                .enumerate()
                .flat_map(|(i, &n)| std::iter::repeat_n(i as u8, n))
                .collect();
            let body = data.len();
            write_superframe_index(&mut data, &sizes);
            assert_eq!(data[body], marker, "{name}: marker byte");
            assert_eq!(data.last(), Some(&marker), "{name}: marker repeated");
            let ranges = split_superframe(&data);
            assert_eq!(ranges.len(), sizes.len(), "{name}");
            for (i, r) in ranges.iter().enumerate() {
                assert!(
                    data[r.clone()].iter().all(|&b| b == i as u8),
                    "{name}: frame {i}"
                );
            }
        }
    }

    #[test]
    fn frame_without_index_is_one_range() {
        assert_eq!(split_superframe(&[0x82, 0xC1]), vec![0..2]);
        assert_eq!(split_superframe(&[]), vec![0..0]);
    }

    proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..48)) {
            let _ = parse_header(&data);
            let _ = split_superframe(&data);
        }
    }
}
