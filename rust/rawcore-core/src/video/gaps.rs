//! Stretches of a video track without frames: found while assembling ([`GapTracker`], the
//! report's gaps and the frame interval), and planned for black fills over a whole output
//! ([`FillPlan`]). Both call a stretch a gap when it is longer than [`GAP_INTERVALS`] frame
//! intervals; the tracker knows only the frames so far (the median of the last
//! 15 steps), the plan all of them.

use super::VIDEO_CLOCK;

/// Deltas between frames remembered to estimate the frame interval.
const INTERVAL_HISTORY: usize = 15;
/// A pause longer than this many frame intervals is a gap.
pub const GAP_INTERVALS: u64 = 3;

/// A stretch without frames, for the caller to fill with black frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoGap {
    /// First missing instant (the previous frame's time plus one frame interval), 90 kHz.
    pub start_pts_90k: u64,
    /// Time of the next frame, 90 kHz.
    pub end_pts_90k: u64,
    /// Picture width at the time.
    pub width: u32,
    /// Picture height at the time.
    pub height: u32,
}

/// Finds stretches without frames.
#[derive(Debug, Clone, Default)]
pub struct GapTracker {
    last: Option<u64>,
    deltas: [u64; INTERVAL_HISTORY],
    count: usize,
    /// The gaps found.
    pub gaps: Vec<VideoGap>,
}

impl GapTracker {
    /// Notes a frame at `pts` (non-decreasing) while pictures are `size`.
    pub fn frame(&mut self, pts: u64, size: (u32, u32)) {
        let Some(last) = self.last.replace(pts) else {
            if pts > 0 {
                self.gaps.push(VideoGap {
                    start_pts_90k: 0,
                    end_pts_90k: pts,
                    width: size.0,
                    height: size.1,
                });
            }
            return;
        };
        let delta = pts.saturating_sub(last);
        if delta == 0 {
            return;
        }
        if let Some(interval) = self.interval() {
            if delta > GAP_INTERVALS * interval {
                self.gaps.push(VideoGap {
                    start_pts_90k: last + interval,
                    end_pts_90k: pts,
                    width: size.0,
                    height: size.1,
                });
                return; // a gap says nothing about the frame rate
            }
        }
        if let Some(slot) = self.deltas.get_mut(self.count % INTERVAL_HISTORY) {
            *slot = delta;
        }
        self.count += 1;
    }

    /// The median of the recent frame intervals.
    #[must_use]
    pub fn interval(&self) -> Option<u64> {
        let n = self.count.min(INTERVAL_HISTORY);
        if n == 0 {
            return None;
        }
        let mut recent = self.deltas;
        let recent = recent.get_mut(..n)?;
        recent.sort_unstable();
        recent.get(n / 2).copied()
    }
}

/// Which gaps of a video output get black pictures, planned from all its frames at once.
///
/// A gap is a stretch longer than [`GAP_INTERVALS`] frame intervals (the median of the positive
/// steps between frames, or 1/30 s without any), measured from the frame before it plus one
/// interval; the time before the first frame counts from the output's 0. It is filled only
/// when the frame after it is a keyframe (a black keyframe before an inter frame would break
/// its references) and a picture size is known: the previous frame's, else that frame's.
/// Every other gap counts as unfilled.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FillPlan {
    /// The gaps to fill, on the output timeline, with the picture size to fill them at.
    pub fills: Vec<VideoGap>,
    /// Milliseconds of gaps left as they are (each gap rounded down).
    pub unfilled_ms: u64,
}

impl FillPlan {
    /// Plans the fills of an output's frames, given per frame (in output order): time (90 kHz),
    /// whether it is a keyframe, and the picture size in force (0 while unknown).
    #[must_use]
    pub fn plan(pts_90k: &[u64], keyframe: &[bool], width: &[u32], height: &[u32]) -> Self {
        let pts: Vec<i64> = pts_90k
            .iter()
            .map(|&p| i64::try_from(p).unwrap_or(i64::MAX))
            .collect();
        let mut plan = Self::default();
        if pts.is_empty() {
            return plan;
        }
        let interval = median_positive_step(&pts).unwrap_or(VIDEO_CLOCK as i64 / 30);
        let limit = GAP_INTERVALS as i64 * interval;
        let mut start = 0i64;
        for (i, &at) in pts.iter().enumerate() {
            let length = at.saturating_sub(start);
            if length > limit {
                let prev = i.saturating_sub(1);
                let size = |column: &[u32]| {
                    let of = |j: usize| column.get(j).copied().unwrap_or(0);
                    if of(prev) == 0 {
                        of(i)
                    } else {
                        of(prev)
                    }
                };
                let (w, h) = (size(width), size(height));
                if keyframe.get(i) == Some(&true) && w != 0 && h != 0 {
                    plan.fills.push(VideoGap {
                        start_pts_90k: start as u64,
                        end_pts_90k: at as u64,
                        width: w,
                        height: h,
                    });
                } else {
                    plan.unfilled_ms += length as u64 * 1000 / VIDEO_CLOCK;
                }
            }
            start = at.saturating_add(interval);
        }
        plan
    }

    /// Nothing filled: every gap the assembly reported stays, and counts as unfilled.
    #[must_use]
    pub fn nothing_filled(gaps: &[VideoGap]) -> Self {
        let total: u64 = gaps
            .iter()
            .map(|g| g.end_pts_90k.saturating_sub(g.start_pts_90k))
            .sum();
        Self {
            fills: Vec::new(),
            unfilled_ms: total * 1000 / VIDEO_CLOCK,
        }
    }
}

/// The median of the positive steps between consecutive times (the mean of the two middle ones,
/// rounded down, for an even count); `None` without a positive step.
fn median_positive_step(pts: &[i64]) -> Option<i64> {
    let mut steps: Vec<i64> = pts
        .windows(2)
        .map(|w| w[1].saturating_sub(w[0]))
        .filter(|&d| d > 0)
        .collect();
    steps.sort_unstable();
    let n = steps.len();
    let upper = *steps.get(n / 2)?;
    if n % 2 == 1 {
        Some(upper)
    } else {
        // `n` is even and not 0, so there is a lower middle.
        let lower = steps.get(n / 2 - 1).copied().unwrap_or(upper);
        Some(lower + (upper - lower) / 2)
    }
}
