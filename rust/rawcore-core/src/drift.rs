//! Clock drift made up where nobody hears it: the one rule that decides when and by how much an
//! audio track's output moves against its packets' RTP times.
//!
//! A segment whose media clock runs `ppm` fast or slow against the output clock owes, after
//! `elapsed` output samples, `elapsed · ppm / 10⁶` samples (positive: the output must grow).
//! Frames cannot be stretched, so the debt is paid in steps:
//!
//! - A filled hole (DTX pause, loss, pause between captures) before a frame takes the whole
//!   debt: it is lengthened or shortened (at most to nothing), no sound is touched.
//! - Without a hole, nothing moves while the debt is under [`DRIFT_ACT_MS`]. From there on the
//!   rule watches for a quiet spot: two frames in a row whose decoded level ([`FrameLevel`]) is
//!   below [`QUIET_DBFS`], or within [`QUIET_MARGIN_DB`] of the quietest frame measured in the
//!   segment once [`SETTLE_FRAMES`] were measured (the noise floor of a sender who is never
//!   digitally silent). There a slow clock gets a fill (concealment)
//!   of the debt plus [`DRIFT_ACT_MS`], so the output runs as far ahead as it ran behind, and a
//!   fast one loses that frame (20 ms, from −10 to +10 ms owed). Only frames are measured while
//!   a watch is open (a few percent of them at a few hundred ppm), so the cost stays small.
//! - At [`MAX_DRIFT_DEBT_MS`], or after [`MAX_WATCH_FRAMES`] measured without a quiet spot (the
//!   sound has none now: waiting only grows the error and the decoding), the correction is made
//!   at the next frame, quiet or not.
//!
//! So the output stays within about ±[`DRIFT_ACT_MS`] of the drift-corrected clock, centred on
//! it, and never further than [`MAX_DRIFT_DEBT_MS`] plus a frame. Without a level meter (a codec
//! whose frames are not measured) every frame counts as quiet: the step is made at
//! [`DRIFT_ACT_MS`] owed.

/// Debt (ms) at which the rule starts looking for a quiet spot to correct.
pub const DRIFT_ACT_MS: u64 = 10;

/// Debt (ms) at which the correction is made at the next frame, quiet or not.
pub const MAX_DRIFT_DEBT_MS: u64 = 20;

/// Frames a watch measures before it gives up on a quiet spot (3 s of 20 ms frames): this bounds
/// the decoding to about 150 frames per correction.
pub const MAX_WATCH_FRAMES: u32 = 150;

/// A frame whose decoded RMS level is below this (dBFS) is quiet, whatever came before.
pub const QUIET_DBFS: f32 = -50.0;

/// Once [`SETTLE_FRAMES`] were measured, a frame this close (dB) to the quietest one measured
/// in the segment is quiet enough (speech over steady background noise never reaches
/// [`QUIET_DBFS`]).
pub const QUIET_MARGIN_DB: f32 = 3.0;

/// Frames measured before the quietest one counts as the noise floor (1 s of 20 ms frames,
/// long enough to hold a pause between words).
pub const SETTLE_FRAMES: u64 = 50;

/// Measures the decoded level of frames, in order, while the drift rule watches for a quiet
/// spot.
pub trait FrameLevel {
    /// The RMS level (dBFS) `payload` decodes to, `None` when it cannot be measured. `resume`
    /// says the previous call was not for the frame just before this one (the meter's decoder
    /// state is stale and should start afresh).
    fn level(&mut self, payload: &[u8], resume: bool) -> Option<f32>;
}

/// An open watch for a quiet spot.
#[derive(Debug, Clone, Copy)]
struct Watch {
    /// Frames measured in this watch.
    frames: u32,
    /// Whether the frame before was quiet.
    prev_quiet: bool,
}

/// The drift rule's state for one segment.
#[derive(Debug, Clone)]
pub struct DriftState {
    ppm: f64,
    /// Correction made since the anchor, in output samples.
    applied: i128,
    watch: Option<Watch>,
    /// Frames measured (decoded) so far.
    measured: u64,
    /// The quietest level measured so far (dBFS).
    floor: f32,
}

impl DriftState {
    /// A segment whose media clock runs `ppm` fast (positive: media time stretches to more
    /// output time), clamped to `±max_ppm`; a non-finite value means no drift.
    #[must_use]
    pub fn new(ppm: f64, max_ppm: f64) -> Self {
        let ppm = if ppm.is_finite() {
            ppm.clamp(-max_ppm, max_ppm)
        } else {
            0.0
        };
        Self {
            ppm,
            applied: 0,
            watch: None,
            measured: 0,
            floor: f32::INFINITY,
        }
    }

    /// Whether the clocks run alike: every [`DriftState::adjustment`] is then 0.
    #[must_use]
    pub fn is_none(&self) -> bool {
        self.ppm == 0.0
    }

    /// The segment was re-anchored on the output clock: nothing is owed from before.
    pub fn reanchor(&mut self) {
        self.applied = 0;
        self.watch = None;
    }

    /// Frames whose level was measured.
    #[must_use]
    pub fn measured(&self) -> u64 {
        self.measured
    }

    /// How many output samples to add (positive) or remove (negative) before a frame (`frame`
    /// samples of `payload`), `elapsed` output samples after the anchor, with a hole of `gap` samples
    /// before it (`filled`: the hole will be filled, not closed up). A negative answer without
    /// a hole is always `-frame`: the frame is dropped. `level` measures the frame when asked.
    pub fn adjustment(
        &mut self,
        elapsed: i128,
        rate: i128,
        gap: i128,
        filled: bool,
        (frame, payload): (u64, &[u8]),
        level: Option<&mut dyn FrameLevel>,
    ) -> i128 {
        if self.ppm == 0.0 {
            return 0;
        }
        let owed = (elapsed as f64 * self.ppm / 1e6).round() as i128;
        let debt = owed - self.applied;
        if gap > 0 {
            // A hole closed up (its kind not filled) leaves the output off the wall clock anyway.
            let adj = if filled { debt.max(-gap) } else { 0 };
            self.applied += adj;
            self.watch = None;
            return adj;
        }
        let act = i128::from(DRIFT_ACT_MS) * rate / 1000;
        let force = i128::from(MAX_DRIFT_DEBT_MS) * rate / 1000;
        let frame = i128::from(frame);
        // Only the drift's own direction is corrected (a step overshoots on purpose), and a
        // frame is dropped only once half of it is owed.
        let along = (debt > 0) == (self.ppm > 0.0);
        let threshold = if debt < 0 { act.max(frame / 2) } else { act };
        if debt == 0 || !along || debt.abs() < threshold {
            self.watch = None;
            return 0;
        }
        let quiet_here = match level {
            None => true,
            Some(meter) => {
                let resume = self.watch.is_none();
                let watch = self.watch.get_or_insert(Watch {
                    frames: 0,
                    prev_quiet: false,
                });
                watch.frames += 1;
                let measured = meter.level(payload, resume);
                self.measured += 1;
                if let Some(l) = measured {
                    self.floor = self.floor.min(l);
                }
                let settled = self.measured > SETTLE_FRAMES;
                let quiet = measured.is_some_and(|l| {
                    l <= QUIET_DBFS || (settled && l <= self.floor + QUIET_MARGIN_DB)
                });
                let spot = quiet && watch.prev_quiet;
                watch.prev_quiet = quiet;
                spot || watch.frames > MAX_WATCH_FRAMES
            }
        };
        if !quiet_here && debt.abs() < force.max(threshold) {
            return 0;
        }
        self.watch = None;
        let adj = if debt > 0 { debt + act } else { -frame };
        self.applied += adj;
        adj
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A meter that reads each frame's level from its first byte (minus sign, dB).
    struct ByteLevel;

    impl FrameLevel for ByteLevel {
        fn level(&mut self, payload: &[u8], _resume: bool) -> Option<f32> {
            payload.first().map(|&b| -f32::from(b))
        }
    }

    /// Runs 20 ms frames at 48 kHz through the rule; `loud(i)` says whether frame i is loud.
    /// Returns `(frame index, adjustment)` of every correction and the largest |debt| seen.
    /// Pauses measure `-pause_db` dBFS, speech -10 dBFS.
    fn run(
        ppm: f64,
        frames: u64,
        loud: impl Fn(u64) -> bool,
        pause_db: u8,
        meter: bool,
    ) -> (Vec<(u64, i128)>, i128) {
        let mut state = DriftState::new(ppm, 10_000.0);
        let mut meter_impl = ByteLevel;
        let mut out = Vec::new();
        let mut worst = 0i128;
        for i in 0..frames {
            let elapsed = i128::from(i * 960);
            let payload = [if loud(i) { 10u8 } else { pause_db }];
            let level: Option<&mut dyn FrameLevel> =
                if meter { Some(&mut meter_impl) } else { None };
            let adj = state.adjustment(elapsed, 48_000, 0, true, (960, &payload), level);
            if adj != 0 {
                out.push((i, adj));
            }
            let owed = (elapsed as f64 * ppm / 1e6).round() as i128;
            worst = worst.max((owed - state.applied).abs());
        }
        (out, worst)
    }

    #[test]
    fn corrections_land_in_quiet_spots_and_keep_the_debt_centred() {
        struct Case {
            name: &'static str,
            ppm: f64,
            loud: fn(u64) -> bool,
            /// Level of the pauses, -dBFS.
            pause_db: u8,
            meter: bool,
            /// Every correction made in a quiet frame.
            all_quiet: bool,
            /// Largest |debt| allowed, ms.
            worst_ms: i128,
        }
        let cases = [
            Case {
                name: "slow clock, speech with a pause every 2 s: fills land in the pauses",
                ppm: 300.0,
                loud: |i| i % 100 >= 10,
                pause_db: 80,
                meter: true,
                all_quiet: true,
                worst_ms: 11,
            },
            Case {
                name: "fast clock, same speech: dropped frames are pause frames",
                ppm: -250.0,
                loud: |i| i % 100 >= 10,
                pause_db: 80,
                meter: true,
                all_quiet: true,
                worst_ms: 11,
            },
            Case {
                name: "never digitally silent: the noise floor between words counts as quiet",
                ppm: 300.0,
                loud: |i| i % 100 >= 10,
                pause_db: 40,
                meter: true,
                all_quiet: true,
                worst_ms: 11,
            },
            Case {
                name: "no pause at all: corrected after 3 s of watching anyway",
                ppm: 300.0,
                loud: |_| true,
                pause_db: 80,
                meter: true,
                all_quiet: false,
                worst_ms: 11,
            },
            Case {
                name: "without a meter every frame counts as quiet: corrected at 10 ms",
                ppm: -3000.0,
                loud: |_| true,
                pause_db: 80,
                meter: false,
                all_quiet: false,
                worst_ms: 11,
            },
        ];
        for case in cases {
            let (corrections, worst) = run(case.ppm, 30_000, case.loud, case.pause_db, case.meter);
            assert!(!corrections.is_empty(), "{}", case.name);
            for &(i, adj) in &corrections {
                if case.all_quiet {
                    assert!(
                        !(case.loud)(i) && !(case.loud)(i - 1),
                        "{}: frame {i}",
                        case.name
                    );
                }
                // Slow clocks gain time, fast ones lose a whole frame.
                if case.ppm > 0.0 {
                    assert!(adj >= 480, "{}: {adj}", case.name);
                } else {
                    assert_eq!(adj, -960, "{}", case.name);
                }
            }
            assert!(
                worst <= case.worst_ms * 48,
                "{}: worst debt {worst}",
                case.name
            );
        }
    }

    #[test]
    fn a_steady_clock_is_never_corrected() {
        let (corrections, worst) = run(0.0, 30_000, |_| false, 80, true);
        assert!(corrections.is_empty());
        assert_eq!(worst, 0);
    }
}
