//! G.711 µ-law and A-law expansion to 16-bit linear PCM (ITU-T G.711).
//!
//! µ-law (RTP payload type 0, PCMU) and A-law (payload type 8, PCMA) code each sample as a sign,
//! a 3-bit segment and a 4-bit step. Expansion is pure arithmetic; tables are built at compile
//! time so decoding a byte is one lookup.

/// Expands one µ-law byte.
#[must_use]
pub const fn ulaw_to_linear(code: u8) -> i16 {
    let u = !code;
    let exponent = (u >> 4) & 0x07;
    let mantissa = (u & 0x0F) as i32;
    // The bias of 0x84 makes every segment start on a power of two; it is removed afterwards.
    let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    if u & 0x80 != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

/// Expands one A-law byte.
#[must_use]
pub const fn alaw_to_linear(code: u8) -> i16 {
    // Even bits are inverted on the wire to keep the line busy during silence.
    let a = code ^ 0x55;
    let exponent = (a >> 4) & 0x07;
    let mut magnitude = (((a & 0x0F) as i32) << 4) + 8;
    if exponent != 0 {
        magnitude = (magnitude + 0x100) << (exponent - 1);
    }
    if a & 0x80 != 0 {
        magnitude as i16
    } else {
        -magnitude as i16
    }
}

const fn table(alaw: bool) -> [i16; 256] {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = if alaw {
            alaw_to_linear(i as u8)
        } else {
            ulaw_to_linear(i as u8)
        };
        i += 1;
    }
    t
}

static ULAW: [i16; 256] = table(false);
static ALAW: [i16; 256] = table(true);

/// Appends the samples of a µ-law payload to `out`.
pub fn decode_ulaw(payload: &[u8], out: &mut Vec<i16>) {
    out.extend(payload.iter().map(|&b| ULAW[usize::from(b)]));
}

/// Appends the samples of an A-law payload to `out`.
pub fn decode_alaw(payload: &[u8], out: &mut Vec<i16>) {
    out.extend(payload.iter().map(|&b| ALAW[usize::from(b)]));
}

#[cfg(test)]
#[allow(clippy::type_complexity)] // test tables are tuples named by their doc comments
mod tests {
    use super::*;

    #[test]
    fn known_codes_expand_to_the_g711_values() {
        let cases: [(&str, fn(u8) -> i16, u8, i16); 10] = [
            ("µ-law 0xFF is positive zero", ulaw_to_linear, 0xFF, 0),
            ("µ-law 0x7F is negative zero", ulaw_to_linear, 0x7F, 0),
            (
                "µ-law 0x80 is the positive maximum",
                ulaw_to_linear,
                0x80,
                32_124,
            ),
            (
                "µ-law 0x00 is the negative maximum",
                ulaw_to_linear,
                0x00,
                -32_124,
            ),
            (
                "µ-law 0xFE is the smallest positive step",
                ulaw_to_linear,
                0xFE,
                8,
            ),
            (
                "µ-law 0xF0 ends the first segment",
                ulaw_to_linear,
                0xF0,
                120,
            ),
            (
                "A-law 0xD5 is the smallest positive value",
                alaw_to_linear,
                0xD5,
                8,
            ),
            (
                "A-law 0x55 is the smallest negative value",
                alaw_to_linear,
                0x55,
                -8,
            ),
            (
                "A-law 0xAA is the positive maximum",
                alaw_to_linear,
                0xAA,
                32_256,
            ),
            (
                "A-law 0x2A is the negative maximum",
                alaw_to_linear,
                0x2A,
                -32_256,
            ),
        ];
        for (name, law, code, want) in cases {
            assert_eq!(law(code), want, "{name}");
        }
    }

    #[test]
    fn expansion_is_odd_symmetric_and_monotonic_per_sign() {
        for code in 0..=255u8 {
            assert_eq!(
                ulaw_to_linear(code),
                -ulaw_to_linear(code ^ 0x80),
                "µ-law {code:#x}"
            );
            assert_eq!(
                alaw_to_linear(code),
                -alaw_to_linear(code ^ 0x80),
                "A-law {code:#x}"
            );
        }
        // µ-law codes 0x80..=0xFF descend from the maximum to zero.
        let positive: Vec<i16> = (0x80..=0xFFu8).map(ulaw_to_linear).collect();
        assert!(positive.windows(2).all(|w| w[0] > w[1]));
        let mut out = Vec::new();
        decode_ulaw(&[0xFF, 0x80], &mut out);
        decode_alaw(&[0xD5], &mut out);
        assert_eq!(out, [0, 32_124, 8]);
    }
}
