//! Stretches of a video track without frames: found while assembling ([`GapTracker`], the
//! report's gaps and the frame interval), and planned over a whole output ([`FillPlan`]: which
//! show the last picture held, which black, and where the output ends). Both call a stretch a
//! gap when it is longer than [`GAP_INTERVALS`] frame intervals; the tracker knows only the
//! frames so far (the median of the last 15 steps), the plan all of them.

use super::{OnLoss, VIDEO_CLOCK};

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
    /// The median of `deltas` while they are unchanged: a steady frame rate replaces each
    /// interval with an equal one, so it is sorted again only when the history changes.
    median: Option<u64>,
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
            // Until the history is full, every interval is a new one.
            if *slot != delta || self.count < INTERVAL_HISTORY {
                self.median = None;
            }
            *slot = delta;
        }
        self.count += 1;
    }

    /// The median of the recent frame intervals.
    #[must_use]
    pub fn interval(&mut self) -> Option<u64> {
        if self.median.is_none() {
            self.median = self.sorted_median();
        }
        self.median
    }

    fn sorted_median(&self) -> Option<u64> {
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

/// One picture of an output, in output order: written, or seen and not written
/// ([`super::VideoEvent::Missed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Picture {
    /// Output time, 90 kHz.
    pub pts_90k: u64,
    /// The frame is written (else it arrived in part, or could not be decoded).
    pub written: bool,
    /// A written keyframe.
    pub keyframe: bool,
    /// Packets were lost right before the picture's first packet that arrived.
    pub loss_before: bool,
    /// Picture width in force (0 while unknown).
    pub width: u32,
    /// Picture height in force.
    pub height: u32,
}

/// Every picture of an output, written or missed, as the assembly met them: what
/// [`FillPlan::plan`] plans from, and where the output ends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PictureLog {
    /// The pictures in output order.
    pub pictures: Vec<Picture>,
}

impl PictureLog {
    /// Notes a written frame.
    pub fn written(&mut self, pts_90k: u64, keyframe: bool, size: (u32, u32), loss_before: bool) {
        self.pictures.push(Picture {
            pts_90k,
            written: true,
            keyframe,
            loss_before,
            width: size.0,
            height: size.1,
        });
    }

    /// Notes a picture that arrived but is not written, while pictures are `size`.
    pub fn missed(&mut self, pts_90k: u64, size: (u32, u32), loss_before: bool) {
        self.pictures.push(Picture {
            pts_90k,
            written: false,
            keyframe: false,
            loss_before,
            width: size.0,
            height: size.1,
        });
    }

    /// The frame interval (the median of the positive steps between written frames, or 1/30 s
    /// without any) and where the output ends: one interval after the last picture seen, written
    /// or not, so that a track whose last pictures were lost still lasts to its last packet.
    /// `None` when nothing is written.
    #[must_use]
    pub fn timing(&self) -> Option<(u64, u64)> {
        let written: Vec<i64> = self
            .pictures
            .iter()
            .filter(|p| p.written)
            .map(|p| i64::try_from(p.pts_90k).unwrap_or(i64::MAX))
            .collect();
        if written.is_empty() {
            return None;
        }
        let interval = median_positive_step(&written).unwrap_or(VIDEO_CLOCK as i64 / 30) as u64;
        let last = self.pictures.iter().map(|p| p.pts_90k).max().unwrap_or(0);
        Some((interval, last.saturating_add(interval)))
    }
}

/// What is on screen while no new picture comes, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StretchKind {
    /// The last picture held after a loss: packets came, their pictures could not be shown.
    Freeze,
    /// Pictures were lost and nothing is held: black (or nothing, when not filled) until the
    /// next keyframe. With `--on-loss black`, or before the first picture of an output.
    KeyframeWait,
    /// Nothing was sent: a sender pause, the time between captures, or before the first packet.
    /// Black where filled, else the last picture held by the player.
    NoPicture,
}

impl StretchKind {
    /// The name the manifest and the QA report use.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Freeze => "freeze",
            Self::KeyframeWait => "keyframe_wait",
            Self::NoPicture => "no_picture",
        }
    }
}

/// A stretch of an output without a new picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stretch {
    /// Start on the output timeline, 90 kHz.
    pub start_pts_90k: u64,
    /// End (the next picture, or the output's end), 90 kHz.
    pub end_pts_90k: u64,
    /// What is shown, and why.
    pub kind: StretchKind,
    /// Black pictures are planned for it.
    pub filled: bool,
}

/// What an output shows where no new picture comes, planned from all its pictures at once: the
/// one rule for freezes, black fills and the output's end.
///
/// A gap is a stretch longer than [`GAP_INTERVALS`] frame intervals without a written frame
/// (the interval is the median of the positive steps between written frames, or 1/30 s),
/// measured from the written frame before it plus one interval; the time before the first
/// written frame counts from the output's 0, and the time after the last one runs to the
/// output's end ([`PictureLog::timing`]: one interval after the last picture seen). The
/// pictures seen in between tell its parts apart: where consecutive pictures are more than
/// [`GAP_INTERVALS`] intervals apart with no packet lost before the later one, nothing was sent
/// (a pause, [`StretchKind::NoPicture`]); everything else had packets whose pictures were lost.
///
/// What is shown, by `on_loss` ([`OnLoss`]):
/// - before the first written frame nothing can be held: black, the lost part counting as a
///   keyframe wait;
/// - `Freeze` and `Conceal`: the last picture is held through lost parts; black starts at the
///   gap's first pause and runs to its end;
/// - `Black`: the whole gap is black.
///
/// Black pictures need a keyframe after them (a black keyframe before an inter frame would break
/// its references) or nothing after them (the output's end), and a known picture size (the
/// previous written frame's, else the next one's); with `fill` false there are none. Where black
/// cannot be, a lost part shows the held picture (a freeze) and the rest counts as unfilled.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FillPlan {
    /// The gaps to fill with black, on the output timeline, with the picture size to fill them at.
    pub fills: Vec<VideoGap>,
    /// Every stretch without a new picture, by what is shown (adjacent parts of one kind merged).
    pub stretches: Vec<Stretch>,
    /// Milliseconds of pauses and keyframe waits left without black (each part rounded down).
    pub unfilled_ms: u64,
    /// Where the output ends, 90 kHz: one frame interval after the last picture seen.
    pub end_pts_90k: u64,
}

/// A picture the plan walks past: its time (kept from going back) and whether loss preceded it.
#[derive(Debug, Clone, Copy)]
struct Seen {
    at: u64,
    loss_before: bool,
}

impl FillPlan {
    /// Plans what `log`'s output shows where no new picture comes (see the type's docs).
    #[must_use]
    pub fn plan(log: &PictureLog, on_loss: OnLoss, fill: bool) -> Self {
        let mut plan = Self::default();
        let Some((interval, end)) = log.timing() else {
            return plan;
        };
        plan.end_pts_90k = end;
        let mut walk = Walk {
            interval,
            limit: GAP_INTERVALS * interval,
            on_loss,
            fill,
            plan: &mut plan,
        };
        let mut at = 0u64;
        let mut anchor: Option<u64> = None; // the last written frame's time
        let mut previous: Option<&Picture> = None;
        let mut seen: Vec<Seen> = Vec::new(); // pictures since it (it first)
        for p in &log.pictures {
            at = at.max(p.pts_90k); // times never go back
            let here = Seen {
                at,
                loss_before: p.loss_before,
            };
            if p.written {
                walk.gap(anchor, &seen, here, p.keyframe, size_of(previous, p));
                anchor = Some(at);
                previous = Some(p);
                seen.clear();
            }
            seen.push(here);
        }
        // After the last written frame: the output's end, where black may stop.
        if let Some(last) = previous {
            let terminal = Seen {
                at: end.max(at),
                loss_before: false,
            };
            walk.gap(anchor, &seen, terminal, true, (last.width, last.height));
        }
        plan
    }
}

/// The picture size to fill a gap before `next` with: the previous written frame's, else
/// `next`'s.
fn size_of(previous: Option<&Picture>, next: &Picture) -> (u32, u32) {
    match previous {
        Some(p) if p.width != 0 && p.height != 0 => (p.width, p.height),
        _ => (next.width, next.height),
    }
}

/// The plan being made, with what every gap needs.
struct Walk<'p> {
    interval: u64,
    limit: u64,
    on_loss: OnLoss,
    fill: bool,
    plan: &'p mut FillPlan,
}

impl Walk<'_> {
    /// One stretch between written frames: `anchor` is the time of the written frame before it
    /// (`None`: the output's start), `seen` the pictures from that frame on (it first), `next`
    /// the written frame (or the output's end) after it.
    fn gap(
        &mut self,
        anchor: Option<u64>,
        seen: &[Seen],
        next: Seen,
        next_is_key: bool,
        size: (u32, u32),
    ) {
        let start = anchor.map_or(0, |a| a.saturating_add(self.interval));
        if next.at.saturating_sub(start) <= self.limit {
            return;
        }
        // Parts of [start, next): pauses where nothing was sent, the rest lost.
        let mut pauses: Vec<(u64, u64)> = Vec::new();
        let anchors: Vec<Seen> = seen.iter().copied().chain(std::iter::once(next)).collect();
        if anchor.is_none() {
            if let Some(first) = anchors.first() {
                pauses.push((0, first.at)); // nothing seen before the first picture
            }
        }
        for pair in anchors.windows(2) {
            let (x, y) = (pair[0], pair[1]);
            if !y.loss_before && y.at.saturating_sub(x.at) > self.limit {
                pauses.push((x.at.saturating_add(self.interval), y.at));
            }
        }
        let mut parts: Vec<(u64, u64, bool)> = Vec::new(); // (from, to, pause)
        let mut cursor = start;
        for (a, b) in pauses {
            let (a, b) = (a.max(cursor), b.min(next.at));
            if a >= b {
                continue;
            }
            if a > cursor {
                parts.push((cursor, a, false));
            }
            parts.push((a, b, true));
            cursor = b;
        }
        if cursor < next.at {
            parts.push((cursor, next.at, false));
        }
        let can_black = self.fill && next_is_key && size.0 != 0 && size.1 != 0;
        // Where black starts, if anywhere.
        let black_from = if !can_black {
            None
        } else if anchor.is_none() || self.on_loss == OnLoss::Black {
            Some(start)
        } else {
            parts.iter().find(|p| p.2).map(|p| p.0)
        };
        if let Some(from) = black_from {
            self.plan.fills.push(VideoGap {
                start_pts_90k: from,
                end_pts_90k: next.at,
                width: size.0,
                height: size.1,
            });
        }
        for (a, b, pause) in parts {
            let filled = black_from.is_some_and(|from| a >= from);
            let kind = if pause {
                StretchKind::NoPicture
            } else if filled || anchor.is_none() {
                StretchKind::KeyframeWait
            } else {
                StretchKind::Freeze
            };
            if !filled && kind != StretchKind::Freeze {
                self.plan.unfilled_ms += (b - a) * 1000 / VIDEO_CLOCK;
            }
            self.push(Stretch {
                start_pts_90k: a,
                end_pts_90k: b,
                kind,
                filled,
            });
        }
    }

    fn push(&mut self, s: Stretch) {
        if let Some(last) = self.plan.stretches.last_mut() {
            if last.end_pts_90k == s.start_pts_90k && last.kind == s.kind && last.filled == s.filled
            {
                last.end_pts_90k = s.end_pts_90k;
                return;
            }
        }
        self.plan.stretches.push(s);
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
    let n = steps.len();
    if n == 0 {
        return None;
    }
    // The middle ones by selection, not a full sort: the upper middle in its sorted place, the
    // steps before it no larger, so the lower middle is the largest of those.
    let (below, &mut upper, _) = steps.select_nth_unstable(n / 2);
    if n % 2 == 1 {
        Some(upper)
    } else {
        // `n` is even and not 0, so there is a lower middle.
        let lower = below.iter().copied().max().unwrap_or(upper);
        Some(lower + (upper - lower) / 2)
    }
}

#[cfg(test)]
mod tests {
    use super::median_positive_step;

    /// The median as a full sort gives it.
    fn sorted_median(pts: &[i64]) -> Option<i64> {
        let mut steps: Vec<i64> = pts
            .windows(2)
            .map(|w| w[1].saturating_sub(w[0]))
            .filter(|&d| d > 0)
            .collect();
        steps.sort_unstable();
        let n = steps.len();
        let upper = *steps.get(n / 2)?;
        if n % 2 == 1 {
            return Some(upper);
        }
        Some(steps[n / 2 - 1] + (upper - steps[n / 2 - 1]) / 2)
    }

    #[test]
    fn median_step_cases() {
        let cases: [(&str, &[i64], Option<i64>); 5] = [
            ("no step", &[5], None),
            ("no positive step", &[5, 5, 3], None),
            ("one step", &[0, 3000], Some(3000)),
            (
                "even count: the mean of the middle two, rounded down",
                &[0, 1, 4, 8, 9],
                Some(2),
            ),
            (
                "odd count: the middle one",
                &[0, 3000, 6000, 6001],
                Some(3000),
            ),
        ];
        for (name, pts, want) in cases {
            assert_eq!(median_positive_step(pts), want, "{name}");
        }
    }

    proptest::proptest! {
        #[test]
        fn median_step_is_the_sorted_median(
            pts in proptest::collection::vec(-50i64..50_000, 0..300),
        ) {
            proptest::prop_assert_eq!(median_positive_step(&pts), sorted_median(&pts));
        }
    }
}
