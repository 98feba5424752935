//! Frame level meters for the drift rule ([`crate::drift`]): how loud a frame decodes, so drift
//! corrections go where nobody hears them.
//!
//! Opus frames are decoded with libopus (mono, whatever the stream) only while the rule watches
//! for a quiet spot; a watch that opens after frames went unmeasured starts a fresh decoder,
//! whose first frame already tells silence from sound. G.711 frames are decoded directly.

use opus::{Channels, Decoder};

use crate::codec::g711::{decode_alaw, decode_ulaw};
use crate::depacketize::opus::SAMPLE_RATE;
use crate::drift::FrameLevel;

/// RMS of `pcm` in dBFS (full scale 1.0), floored at -120 dB.
fn dbfs(sum_sq: f64, n: usize) -> f32 {
    if n == 0 {
        return -120.0;
    }
    let mean = sum_sq / n as f64;
    (10.0 * mean.max(1e-12).log10()) as f32
}

/// Decodes Opus frames to measure them.
pub struct OpusLevel {
    decoder: Option<Decoder>,
    buf: Vec<f32>,
}

impl OpusLevel {
    /// A meter with no decoder yet.
    #[must_use]
    pub fn new() -> Self {
        Self {
            decoder: None,
            buf: vec![0f32; 5_760],
        }
    }
}

impl Default for OpusLevel {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameLevel for OpusLevel {
    fn level(&mut self, payload: &[u8], resume: bool) -> Option<f32> {
        if resume || self.decoder.is_none() {
            self.decoder = Decoder::new(SAMPLE_RATE, Channels::Mono).ok();
        }
        let decoder = self.decoder.as_mut()?;
        let Ok(n) = decoder.decode_float(payload, &mut self.buf, false) else {
            // A decoder that failed may hold any state: start afresh next time.
            self.decoder = None;
            return None;
        };
        let pcm = self.buf.get(..n)?;
        let sum: f64 = pcm.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
        Some(dbfs(sum, n))
    }
}

/// Decodes G.711 frames (µ-law or A-law) to measure them.
pub struct G711Level {
    alaw: bool,
    buf: Vec<i16>,
}

impl G711Level {
    /// A meter for µ-law (`alaw` false) or A-law frames.
    #[must_use]
    pub fn new(alaw: bool) -> Self {
        Self {
            alaw,
            buf: Vec::new(),
        }
    }
}

impl FrameLevel for G711Level {
    fn level(&mut self, payload: &[u8], _resume: bool) -> Option<f32> {
        self.buf.clear();
        if self.alaw {
            decode_alaw(payload, &mut self.buf);
        } else {
            decode_ulaw(payload, &mut self.buf);
        }
        let sum: f64 = self
            .buf
            .iter()
            .map(|&x| {
                let v = f64::from(x) / 32_768.0;
                v * v
            })
            .sum();
        Some(dbfs(sum, self.buf.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_measures_quiet_and_a_tone_loud() {
        use opus::{Application, Encoder};
        let mut enc = Encoder::new(SAMPLE_RATE, Channels::Mono, Application::Audio).unwrap();
        let tone: Vec<f32> = (0..960)
            .map(|i| 0.5 * (i as f32 * 2.0 * std::f32::consts::PI * 1000.0 / 48_000.0).sin())
            .collect();
        let silence = vec![0f32; 960];
        let mut meter = OpusLevel::new();
        let mut levels = Vec::new();
        for (i, pcm) in [
            &silence, &silence, &tone, &tone, &silence, &silence, &silence,
        ]
        .iter()
        .enumerate()
        {
            let packet = enc.encode_vec_float(pcm, 1500).unwrap();
            levels.push(meter.level(&packet, i == 0).unwrap());
        }
        assert!(levels[0] < crate::drift::QUIET_DBFS, "{levels:?}");
        assert!(levels[3] > -12.0, "{levels:?}");
        assert!(levels[6] < crate::drift::QUIET_DBFS, "{levels:?}");

        let mut g711 = G711Level::new(false);
        assert!(g711.level(&[0xFF; 160], false).unwrap() < crate::drift::QUIET_DBFS);
        assert!(g711.level(&[0x80; 160], false).unwrap() > -3.0);
    }
}
