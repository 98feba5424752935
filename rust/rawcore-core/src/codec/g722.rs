//! G.722 decoder, 64 kbit/s (mode 1), after the ITU-T G.722 algorithm description.
//!
//! Each byte carries a 6-bit lower sub-band code (0-4 kHz) and a 2-bit upper sub-band code
//! (4-8 kHz). Each band is an ADPCM decoder: inverse quantizer, logarithmic scale-factor
//! adaptation and a pole-zero predictor (two poles, six zeros) updated by sign-sign gradient
//! rules. The lower band reconstructs its output with all six bits but adapts with the top four,
//! as the embedded coding requires. A 24-tap QMF synthesis then merges the bands into two 16 kHz
//! output samples per byte. All arithmetic is the integer arithmetic of the standard, so the
//! output matches other conforming decoders bit for bit.

/// Lower band inverse quantizer, 6-bit codes (reconstruction).
const QM6: [i32; 64] = [
    -136, -136, -136, -136, -24_808, -21_904, -19_008, -16_704, -14_984, -13_512, -12_280, -11_192,
    -10_232, -9_360, -8_576, -7_856, -7_192, -6_576, -6_000, -5_456, -4_944, -4_464, -4_008,
    -3_576, -3_168, -2_776, -2_400, -2_032, -1_688, -1_360, -1_040, -728, 24_808, 21_904, 19_008,
    16_704, 14_984, 13_512, 12_280, 11_192, 10_232, 9_360, 8_576, 7_856, 7_192, 6_576, 6_000,
    5_456, 4_944, 4_464, 4_008, 3_576, 3_168, 2_776, 2_400, 2_032, 1_688, 1_360, 1_040, 728, 432,
    136, -432, -136,
];
/// Lower band inverse quantizer, 4-bit codes (adaptation).
const QM4: [i32; 16] = [
    0, -20_456, -12_896, -8_968, -6_288, -4_240, -2_584, -1_200, 20_456, 12_896, 8_968, 6_288,
    4_240, 2_584, 1_200, 0,
];
/// Upper band inverse quantizer.
const QM2: [i32; 4] = [-7_408, -1_616, 7_408, 1_616];
/// Lower band scale-factor multipliers, indexed through [`RL42`].
const WL: [i32; 8] = [-60, -30, 58, 172, 334, 538, 1_198, 3_042];
const RL42: [usize; 16] = [0, 7, 6, 5, 4, 3, 2, 1, 7, 6, 5, 4, 3, 2, 1, 0];
/// Upper band scale-factor multipliers, indexed through [`RH2`].
const WH: [i32; 3] = [0, -214, 798];
const RH2: [usize; 4] = [2, 1, 2, 1];
/// Antilog table for the scale factor.
const ILB: [i32; 32] = [
    2_048, 2_093, 2_139, 2_186, 2_233, 2_282, 2_332, 2_383, 2_435, 2_489, 2_543, 2_599, 2_656,
    2_714, 2_774, 2_834, 2_896, 2_960, 3_025, 3_091, 3_158, 3_228, 3_298, 3_371, 3_444, 3_520,
    3_597, 3_676, 3_756, 3_838, 3_922, 4_008,
];
/// QMF synthesis coefficients (half of the symmetric 24-tap filter).
const QMF: [i32; 12] = [3, -11, 12, 32, -210, 951, 3_876, -805, 362, -156, 53, -11];

fn sat16(v: i32) -> i32 {
    v.clamp(i32::from(i16::MIN), i32::from(i16::MAX))
}

/// The adaptive predictor and scale factor of one sub-band.
#[derive(Debug, Clone, Default)]
struct Band {
    /// Predicted signal: pole part + zero part.
    s: i32,
    sp: i32,
    sz: i32,
    /// Reconstructed signal history (pole section).
    r: [i32; 3],
    /// Pole coefficients and their pending update.
    a: [i32; 3],
    ap: [i32; 3],
    /// Partially reconstructed signal history.
    p: [i32; 3],
    /// Quantized difference history (zero section).
    d: [i32; 7],
    /// Zero coefficients and their pending update.
    b: [i32; 7],
    bp: [i32; 7],
    /// Log scale factor and the linear step it yields.
    nb: i32,
    det: i32,
}

impl Band {
    fn new(det: i32) -> Self {
        Self {
            det,
            ..Self::default()
        }
    }

    /// Scale-factor adaptation (LOGSCL, SCALEL): `weight` from the code, `limit` caps the log
    /// factor, `shift` is 8 for the lower band and 10 for the upper.
    fn adapt_scale(&mut self, weight: i32, limit: i32, shift: i32) {
        self.nb = ((self.nb * 127) >> 7) + weight;
        self.nb = self.nb.clamp(0, limit);
        let mantissa = ILB[((self.nb >> 6) & 31) as usize];
        let exp = shift - (self.nb >> 11);
        let linear = if exp < 0 {
            mantissa << -exp
        } else {
            mantissa >> exp
        };
        self.det = linear << 2;
    }

    /// Predictor update with the quantized difference `d` (RECONS to PREDIC).
    fn update(&mut self, d: i32) {
        self.d[0] = d;
        self.r[0] = sat16(self.s + d);
        self.p[0] = sat16(self.sz + d);

        // Second pole (UPPOL2).
        let sg = |v: i32| v >> 15;
        let wd1 = sat16(self.a[1] << 2);
        let wd2 = if sg(self.p[0]) == sg(self.p[1]) {
            -wd1
        } else {
            wd1
        }
        .min(32_767);
        let mut a2 = (wd2 >> 7)
            + if sg(self.p[0]) == sg(self.p[2]) {
                128
            } else {
                -128
            };
        a2 += (self.a[2] * 32_512) >> 15;
        self.ap[2] = a2.clamp(-12_288, 12_288);

        // First pole (UPPOL1), bounded so the predictor stays stable.
        let step = if sg(self.p[0]) == sg(self.p[1]) {
            192
        } else {
            -192
        };
        let a1 = sat16(step + ((self.a[1] * 32_640) >> 15));
        let bound = sat16(15_360 - self.ap[2]);
        self.ap[1] = a1.clamp(-bound, bound);

        // Zeros (UPZERO).
        let step = if d == 0 { 0 } else { 128 };
        for i in 1..7 {
            let wd = if sg(self.d[i]) == sg(d) { step } else { -step };
            self.bp[i] = sat16(wd + ((self.b[i] * 32_640) >> 15));
        }

        // Delays (DELAYA).
        for i in (1..7).rev() {
            self.d[i] = self.d[i - 1];
            self.b[i] = self.bp[i];
        }
        for i in (1..3).rev() {
            self.r[i] = self.r[i - 1];
            self.p[i] = self.p[i - 1];
            self.a[i] = self.ap[i];
        }

        // Prediction (FILTEP, FILTEZ, PREDIC).
        let pole = |a: i32, r: i32| (a * sat16(r + r)) >> 15;
        self.sp = sat16(pole(self.a[1], self.r[1]) + pole(self.a[2], self.r[2]));
        let zeros: i32 = (1..7)
            .map(|i| (self.b[i] * sat16(self.d[i] + self.d[i])) >> 15)
            .sum();
        self.sz = sat16(zeros);
        self.s = sat16(self.sp + self.sz);
    }
}

/// A G.722 decoder at 64 kbit/s; state carries from one payload to the next.
#[derive(Debug, Clone)]
pub struct G722Decoder {
    low: Band,
    high: Band,
    /// QMF synthesis delay line.
    x: [i32; 24],
}

impl Default for G722Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl G722Decoder {
    /// A decoder in the reset state of the standard.
    #[must_use]
    pub fn new() -> Self {
        Self {
            low: Band::new(32),
            high: Band::new(8),
            x: [0; 24],
        }
    }

    /// Appends the two 16 kHz samples of every byte of `payload` to `out`.
    pub fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) {
        out.reserve(payload.len() * 2);
        for &code in payload {
            let (a, b) = self.decode_byte(code);
            out.push(a);
            out.push(b);
        }
    }

    #[allow(clippy::similar_names)] // ilow/rlow/dlow are the standard's signal names
    fn decode_byte(&mut self, code: u8) -> (i16, i16) {
        let ilow = usize::from(code & 0x3F);
        let ihigh = usize::from(code >> 6);

        // Lower band: reconstruct with 6 bits, adapt with the top 4.
        let low = &mut self.low;
        let rlow = (low.s + ((low.det * QM6[ilow]) >> 15)).clamp(-16_384, 16_383);
        let ilow4 = ilow >> 2;
        let dlow = (low.det * QM4[ilow4]) >> 15;
        low.adapt_scale(WL[RL42[ilow4]], 18_432, 8);
        low.update(dlow);

        // Upper band.
        let high = &mut self.high;
        let dhigh = (high.det * QM2[ihigh]) >> 15;
        let rhigh = (high.s + dhigh).clamp(-16_384, 16_383);
        high.adapt_scale(WH[RH2[ihigh]], 22_528, 10);
        high.update(dhigh);

        // QMF synthesis: the sum and difference of the bands enter the delay line.
        self.x.copy_within(2.., 0);
        self.x[22] = rlow + rhigh;
        self.x[23] = rlow - rhigh;
        let mut even = 0i32;
        let mut odd = 0i32;
        for (i, &c) in QMF.iter().enumerate() {
            even += self.x[2 * i] * c;
            odd += self.x[2 * i + 1] * QMF[11 - i];
        }
        (sat16(odd >> 11) as i16, sat16(even >> 11) as i16)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 1 kHz tone at 16 kHz encoded by libavcodec's G.722 encoder; see tests/data/README.md.
    const TONE: &[u8] = include_bytes!("../../tests/data/tone_1khz_16k.g722");

    #[test]
    fn encoded_1khz_tone_decodes_to_a_clean_1khz_sine() {
        let mut out = Vec::new();
        G722Decoder::new().decode(TONE, &mut out);
        assert_eq!(out.len(), TONE.len() * 2, "two samples per byte");
        // Skip the codec's start-up and the QMF delay.
        let s: Vec<f64> = out[800..].iter().map(|&v| f64::from(v)).collect();
        let crossings = s
            .windows(2)
            .filter(|w| (w[0] < 0.0) != (w[1] < 0.0))
            .count();
        let seconds = s.len() as f64 / 16_000.0;
        let freq = crossings as f64 / 2.0 / seconds;
        assert!(
            (freq - 1_000.0).abs() < 10.0,
            "zero crossings give {freq} Hz"
        );
        // Project onto a 1 kHz sine and cosine: the tone must hold nearly all the energy.
        let (mut sc, mut cc, mut energy) = (0.0, 0.0, 0.0);
        for (n, v) in s.iter().enumerate() {
            let phase = 2.0 * std::f64::consts::PI * 1_000.0 * n as f64 / 16_000.0;
            sc += v * phase.sin();
            cc += v * phase.cos();
            energy += v * v;
        }
        let tone = 2.0 * (sc * sc + cc * cc) / s.len() as f64;
        let snr_db = 10.0 * (tone / (energy - tone).max(1.0)).log10();
        assert!(snr_db > 25.0, "tone-to-residue ratio {snr_db:.1} dB");
        let amplitude = (2.0 * tone / s.len() as f64).sqrt();
        assert!(amplitude > 8_000.0, "amplitude {amplitude}");
    }

    #[test]
    fn silence_codes_stay_quiet_and_arbitrary_bytes_never_panic() {
        let mut out = Vec::new();
        let mut d = G722Decoder::new();
        d.decode(&[0xFF; 400], &mut out);
        assert!(
            out.iter().all(|v| v.abs() < 200),
            "idle codes decode near zero"
        );
        let noise: Vec<u8> = (0..4_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        d.decode(&noise, &mut out);
    }
}
