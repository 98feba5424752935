//! The look-ahead peak limiter every mix passes through: no sample above the ceiling.
//!
//! Gains are computed per block of about 1 ms. A block's required gain is
//! `min(1, ceiling / its peak)`. Attack: the gain is the minimum required over the block and the
//! `lookahead` blocks after it, then averaged over `lookahead` blocks, so it ramps down smoothly
//! and has reached each block's requirement by the time the block plays. Release: the gain rises
//! by at most [`RELEASE_DB_PER_MS`] dB per millisecond. Within a block the gain moves linearly
//! between the gains at its two ends, both of which satisfy that block's requirement. Output
//! lags input by the look-ahead; [`Limiter::flush`] returns the rest.

use std::collections::VecDeque;

/// The ceiling in dBFS: -1 dBFS leaves lossy encoders room for their overshoot.
pub const CEILING_DBFS: f64 = -1.0;
/// How far the limiter looks ahead, i.e. how long its attack ramp is.
pub const LOOKAHEAD_MS: u32 = 5;
/// Release speed: the gain climbs back linearly in dB, 20 dB in 80 ms.
pub const RELEASE_DB_PER_MS: f64 = 0.25;

/// A streaming look-ahead peak limiter over interleaved `f32` samples (see the module docs).
#[derive(Debug)]
pub struct Limiter {
    channels: usize,
    /// Frames per gain block (1 ms).
    block: usize,
    lookahead: usize,
    ceiling: f32,
    /// A hair under the ceiling, so float rounding of `x * gain` cannot cross it.
    aim: f64,
    release_db: f64,
    /// Interleaved input not yet emitted.
    samples: VecDeque<f32>,
    /// Required gain per whole block of `samples` (in order).
    required: VecDeque<f64>,
    /// Released gain (dB) of the last emitted block.
    released_db: f64,
    /// The last `lookahead - 1` released gains, for the moving average.
    history: VecDeque<f64>,
    /// Gain at the end of the last emitted block.
    last_gain: f64,
    started: bool,
    queued: u64,
    emitted: u64,
    limited_blocks: u64,
    clipped_samples: u64,
}

impl Limiter {
    /// A limiter for `rate` Hz and `channels` (at least 1) interleaved channels.
    #[must_use]
    pub fn new(rate: u32, channels: u8) -> Self {
        let block = (rate / 1000).max(1) as usize;
        let lookahead =
            ((f64::from(LOOKAHEAD_MS) * f64::from(rate) / 1000.0 / block as f64).round() as usize)
                .max(1);
        let ceiling = 10f64.powf(CEILING_DBFS / 20.0) as f32;
        Self {
            channels: usize::from(channels.max(1)),
            block,
            lookahead,
            ceiling,
            aim: f64::from(ceiling) * (1.0 - 2f64.powi(-20)),
            release_db: RELEASE_DB_PER_MS * block as f64 * 1000.0 / f64::from(rate),
            samples: VecDeque::new(),
            required: VecDeque::new(),
            released_db: 0.0,
            history: VecDeque::new(),
            last_gain: 1.0,
            started: false,
            queued: 0,
            emitted: 0,
            limited_blocks: 0,
            clipped_samples: 0,
        }
    }

    /// Frames per gain block.
    #[must_use]
    pub fn block(&self) -> usize {
        self.block
    }

    /// The ceiling as a linear amplitude.
    #[must_use]
    pub fn ceiling(&self) -> f32 {
        self.ceiling
    }

    /// Blocks played with a gain below 1 so far.
    #[must_use]
    pub fn limited_blocks(&self) -> u64 {
        self.limited_blocks
    }

    /// Samples the last line of defence had to clip (float rounding; expected 0).
    #[must_use]
    pub fn clipped_samples(&self) -> u64 {
        self.clipped_samples
    }

    /// Feeds interleaved samples (a whole number of frames); appends the limited samples that are
    /// final so far to `out`.
    pub fn process(&mut self, x: &[f32], out: &mut Vec<f32>) {
        let frames = x.len() / self.channels;
        let x = &x[..frames * self.channels];
        self.queued += frames as u64;
        self.samples.extend(x.iter().copied());
        let width = self.block * self.channels;
        let whole = self.samples.len() / width;
        for k in self.required.len()..whole {
            let peak = self
                .samples
                .range(k * width..(k + 1) * width)
                .fold(0f32, |m, &s| m.max(s.abs()));
            let need = (self.aim / f64::from(peak).max(1e-30)).min(1.0);
            self.required.push_back(need);
        }
        while self.required.len() > self.lookahead {
            self.emit_block(out);
        }
    }

    /// Everything still held back (silence is assumed to follow).
    pub fn flush(&mut self, out: &mut Vec<f32>) {
        let owed = (self.queued - self.emitted) as usize;
        let width = self.block * self.channels;
        let pad = (width - self.samples.len() % width) % width;
        let zeros = vec![0f32; pad + self.lookahead * width];
        let before = out.len();
        self.process(&zeros, out);
        out.truncate(before + owed * self.channels);
        self.emitted = self.queued;
    }

    /// Plays the oldest pending block.
    // Gains are compared with 1 exactly: a unity gain is the bit-exact pass-through.
    #[allow(clippy::float_cmp)]
    fn emit_block(&mut self, out: &mut Vec<f32>) {
        let held = self
            .required
            .iter()
            .take(self.lookahead + 1)
            .fold(1f64, |m, &g| m.min(g));
        let held_db = 20.0 * held.log10();
        let released_db = held_db.min(self.released_db + self.release_db).min(0.0);
        let released = if released_db == 0.0 {
            1.0
        } else {
            10f64.powf(released_db / 20.0)
        };
        if !self.started {
            // Nothing played before the first block, so nothing to ramp from: start at its gain.
            self.started = true;
            self.history = std::iter::repeat_n(released, self.lookahead - 1).collect();
            self.last_gain = released;
        }
        let gain = ((self.history.iter().sum::<f64>() + released) / self.lookahead as f64).min(1.0);
        let start = self.last_gain;
        let width = self.block * self.channels;
        if gain == 1.0 && start == 1.0 {
            out.extend(self.samples.drain(..width));
        } else {
            if start.min(gain) < 1.0 {
                self.limited_blocks += 1;
            }
            let step = (gain - start) / self.block as f64;
            let ceiling = self.ceiling;
            let mut clipped = 0;
            for (i, s) in self.samples.drain(..width).enumerate() {
                let g = start + step * (i / self.channels + 1) as f64;
                let mut y = s * g as f32;
                if y.abs() > ceiling {
                    clipped += 1;
                    y = y.clamp(-ceiling, ceiling);
                }
                out.push(y);
            }
            self.clipped_samples += clipped;
        }
        if self.lookahead > 1 {
            self.history.pop_front();
            self.history.push_back(released);
        }
        self.released_db = released_db;
        self.last_gain = gain;
        self.required.pop_front();
        self.emitted += self.block as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(limiter: &mut Limiter, x: &[f32], chunk: usize) -> Vec<f32> {
        let mut out = Vec::new();
        for piece in x.chunks(chunk) {
            limiter.process(piece, &mut out);
        }
        limiter.flush(&mut out);
        out
    }

    fn tone(amplitude: f32, frames: usize) -> Vec<f32> {
        (0..frames)
            .map(|i| amplitude * (i as f32 * 2.0 * std::f32::consts::PI * 440.0 / 48_000.0).sin())
            .collect()
    }

    #[test]
    fn quiet_signal_passes_unchanged_and_in_full() {
        let x = tone(0.5, 48_000 + 17);
        let mut lim = Limiter::new(48_000, 1);
        let y = run(&mut lim, &x, 4_801);
        assert_eq!(y, x);
        assert_eq!(lim.limited_blocks(), 0);
    }

    #[test]
    fn loud_signal_never_exceeds_the_ceiling_and_is_not_clipped() {
        let x = tone(3.0, 48_000);
        let mut lim = Limiter::new(48_000, 1);
        let y = run(&mut lim, &x, 1_000);
        assert_eq!(y.len(), x.len());
        let peak = y.iter().fold(0f32, |m, s| m.max(s.abs()));
        assert!(peak <= lim.ceiling());
        assert!(peak > lim.ceiling() * 0.95, "peak {peak}");
        assert_eq!(lim.clipped_samples(), 0);
        assert!(lim.limited_blocks() > 900);
    }

    #[test]
    fn a_burst_is_attenuated_before_it_and_released_after_it() {
        // Quiet tone, 100 ms burst at 4x, quiet again: the gain is 1 well before the burst and
        // climbs back to 1 within the release time after it.
        let mut x = tone(0.25, 48_000);
        for s in &mut x[24_000..28_800] {
            *s *= 16.0;
        }
        let mut lim = Limiter::new(48_000, 1);
        let y = run(&mut lim, &x, 960);
        assert_eq!(&y[..23_000], &x[..23_000]);
        assert!(y[24_000..28_800].iter().all(|s| s.abs() <= lim.ceiling()));
        // 4x = 12 dB above the ceiling-ish: released within 12 / 0.25 = 48 ms (+ slack).
        assert_eq!(&y[28_800 + 4_800..], &x[28_800 + 4_800..]);
    }

    #[test]
    fn stereo_blocks_use_the_peak_of_both_channels() {
        let mono = tone(2.0, 4_800);
        let x: Vec<f32> = mono.iter().flat_map(|&s| [s * 0.1, s]).collect();
        let mut lim = Limiter::new(48_000, 2);
        let y = run(&mut lim, &x, 999 * 2);
        assert_eq!(y.len(), x.len());
        assert!(y.iter().all(|s| s.abs() <= lim.ceiling()));
        // Both channels get the same gain: their ratio is kept.
        for f in y.chunks(2).skip(500).take(1000) {
            if f[1].abs() > 1e-3 {
                assert!((f[0] / f[1] - 0.1).abs() < 1e-4);
            }
        }
    }
}
