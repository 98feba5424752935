//! The VP8 frame tag and keyframe header (RFC 6386 9.1).
//!
//! The first three bytes of every VP8 frame say whether it is a keyframe; a keyframe then carries
//! the start code `9d 01 2a` and its size as two little-endian 14-bit values with 2-bit scaling.

use super::BitstreamError;

/// What the start of a VP8 frame says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vp8Header {
    /// Whether it is a keyframe (`P` bit 0).
    pub keyframe: bool,
    /// Whether the frame is shown.
    pub show_frame: bool,
    /// Width and height in pixels, for keyframes.
    pub size: Option<(u32, u32)>,
}

/// Parses the frame tag (and for keyframes the start code and size) at the start of a frame.
pub fn parse_header(frame: &[u8]) -> Result<Vp8Header, BitstreamError> {
    let Some(&[tag0, _, _]) = frame.get(..3) else {
        return Err(BitstreamError::Exhausted {
            what: "VP8 frame tag",
            bit: frame.len() * 8,
        });
    };
    let keyframe = tag0 & 1 == 0;
    let show_frame = tag0 & 0x10 != 0;
    if !keyframe {
        return Ok(Vp8Header {
            keyframe,
            show_frame,
            size: None,
        });
    }
    let Some(&[s0, s1, s2, w0, w1, h0, h1]) = frame.get(3..10) else {
        return Err(BitstreamError::Exhausted {
            what: "VP8 keyframe header",
            bit: frame.len() * 8,
        });
    };
    if [s0, s1, s2] != [0x9d, 0x01, 0x2a] {
        return Err(BitstreamError::Invalid {
            what: "VP8 keyframe start code",
            value: u64::from(u32::from_be_bytes([0, s0, s1, s2])),
        });
    }
    // The top two bits are the upscaling mode, not part of the size.
    let width = u32::from(u16::from_le_bytes([w0, w1]) & 0x3FFF);
    let height = u32::from(u16::from_le_bytes([h0, h1]) & 0x3FFF);
    Ok(Vp8Header {
        keyframe,
        show_frame,
        size: Some((width, height)),
    })
}

#[cfg(test)]
mod tests {
    // Case tables spell their row types inline, next to the rows.
    #![allow(clippy::type_complexity, clippy::items_after_statements)]

    use super::*;
    use proptest::prelude::*;

    /// The first bytes of a 320x180 keyframe written by libvpx (GStreamer `vp8enc`).
    const KEYFRAME_320X180: &[u8] = &[
        0x30, 0x51, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xb4, 0x00, 0x00, 0x47,
    ];

    #[test]
    fn header_cases() {
        let mut scaled = KEYFRAME_320X180.to_vec();
        scaled[7] |= 0xC0; // upscaling bits must not leak into the width
        let mut bad_code = KEYFRAME_320X180.to_vec();
        bad_code[4] = 0;
        let cases: [(&str, &[u8], Result<(bool, Option<(u32, u32)>), ()>); 5] = [
            (
                "libvpx keyframe",
                KEYFRAME_320X180,
                Ok((true, Some((320, 180)))),
            ),
            (
                "scaling bits are masked",
                &scaled,
                Ok((true, Some((320, 180)))),
            ),
            (
                "inter frame has no size",
                &[0x31, 0x02, 0x00],
                Ok((false, None)),
            ),
            ("bad start code", &bad_code, Err(())),
            ("keyframe cut short", &KEYFRAME_320X180[..6], Err(())),
        ];
        for (name, input, want) in cases {
            let got = parse_header(input)
                .map(|h| (h.keyframe, h.size))
                .map_err(|_| ());
            assert_eq!(got, want, "{name}");
        }
    }

    proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..16)) {
            let _ = parse_header(&data);
        }
    }
}
