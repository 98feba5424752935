//! Step 2 of the call timeline: the offset from a sender's clock to the recorder's, the lower
//! envelope of arrival minus sender time over all the sender's streams.

use super::line::{kept, least_squares, mean_line, reject, MAX_ROUNDS};
use super::{
    check_lengths, plausible, TimelineError, ENVELOPE_REJECT_MS, MAX_ENVELOPE_DRIFT_PPM,
    MAX_WINDOWS,
};

/// The offset from a sender's clock to the recorder's: `offset(t) = c + d·(t − t0)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OffsetFit {
    /// Offset plus minimum delay at `t0`, in ms.
    pub c: f64,
    /// Drift, ms per ms, as used (within ±500 ppm).
    pub d: f64,
    /// The sender time the line is anchored at (the earliest sample's).
    pub t0: f64,
    /// Windows the line rests on.
    pub windows: usize,
    /// Windows dropped as congested.
    pub rejected: usize,
    /// How far the highest used window minimum lies above the line, in ms.
    pub residual_ms: f64,
    /// The fitted drift in ppm, as the data said it (also when `clamped`).
    pub drift_ppm: f64,
    /// The fitted drift was beyond ±500 ppm, so `d` is clamped to that.
    pub clamped: bool,
}

impl OffsetFit {
    /// The offset to add to a sender time.
    #[must_use]
    pub fn offset_ms(&self, sender_ms: f64) -> f64 {
        self.c + self.d * (sender_ms - self.t0)
    }

    /// A sender time on the recorder's clock.
    #[must_use]
    pub fn recorder_ms(&self, sender_ms: f64) -> f64 {
        sender_ms + self.offset_ms(sender_ms)
    }
}

/// Fits the offset from a sender's clock to the recorder's from samples of all its streams:
/// each packet's sender time and its arrival time on the recorder's clock, both Unix ms.
///
/// `window_ms` is usually [`super::DEFAULT_WINDOW_MS`]; a span that would need more than
/// [`MAX_WINDOWS`] windows widens them instead.
pub fn fit_offset(
    sender_ms: &[f64],
    arrival_ms: &[f64],
    window_ms: f64,
) -> Result<OffsetFit, TimelineError> {
    check_lengths("sender_ms", sender_ms.len(), "arrival_ms", arrival_ms.len())?;
    fit_offset_samples(
        || sender_ms.iter().copied().zip(arrival_ms.iter().copied()),
        window_ms,
    )
}

/// [`fit_offset`] of the `(sender_ms, arrival_ms)` pairs `samples()` yields (the same ones each
/// call), so a caller that derives them (sender time from RTP timestamps, several streams in a
/// row) needs no columns of its own: two passes over them, no copy.
pub(crate) fn fit_offset_samples<I>(
    samples: impl Fn() -> I,
    window_ms: f64,
) -> Result<OffsetFit, TimelineError>
where
    I: Iterator<Item = (f64, f64)>,
{
    if samples().next().is_none() {
        return Err(TimelineError::NoSamples);
    }
    if !(window_ms.is_finite() && window_ms > 0.0) {
        return Err(TimelineError::BadWindow { window_ms });
    }
    let (mut t_min, mut t_max) = (f64::INFINITY, f64::NEG_INFINITY);
    for (index, (s, a)) in samples().enumerate() {
        let what = match (plausible(s), plausible(a)) {
            (true, true) => {
                t_min = t_min.min(s);
                t_max = t_max.max(s);
                continue;
            }
            (false, _) => "sender_ms",
            (true, false) => "arrival_ms",
        };
        return Err(TimelineError::BadValue { what, index });
    }

    let span = t_max - t_min;
    let window = window_ms.max(span / (MAX_WINDOWS - 1) as f64);
    let n_windows = ((span / window) as usize + 1).min(MAX_WINDOWS);
    // (minimum of arrival − sender, sender time of that minimum) per window; one pass.
    let mut minima = vec![(f64::INFINITY, 0.0); n_windows];
    for (s, a) in samples() {
        let slot = &mut minima[(((s - t_min) / window) as usize).min(n_windows - 1)];
        let diff = a - s;
        if diff < slot.0 {
            *slot = (diff, s);
        }
    }
    let (ys, xs): (Vec<f64>, Vec<f64>) = minima
        .into_iter()
        .filter(|m| m.0.is_finite())
        .map(|(diff, t)| (diff, t - t_min))
        .unzip();

    let mut fit = OffsetFit {
        c: 0.0,
        d: 0.0,
        t0: t_min,
        windows: xs.len(),
        rejected: 0,
        residual_ms: 0.0,
        drift_ppm: 0.0,
        clamped: false,
    };
    if xs.len() < 2 {
        // One window cannot show drift: the global minimum is the offset.
        fit.c = ys.iter().copied().fold(f64::INFINITY, f64::min);
        return Ok(fit);
    }

    let mut keep = vec![true; xs.len()];
    let mut line = least_squares(&xs, &ys, &keep, 0.0);
    for _ in 0..MAX_ROUNDS {
        // One-sided: a window minimum can only be too high (congestion), and a half-congested
        // call pulls the first fit up, so each round peels the layer above the line.
        if reject(&mut keep, |i| ys[i] - line.at(xs[i]), ENVELOPE_REJECT_MS) == 0 {
            break;
        }
        line = least_squares(&xs, &ys, &keep, 0.0);
    }
    fit.drift_ppm = line.b * 1e6;
    let max_d = MAX_ENVELOPE_DRIFT_PPM * 1e-6;
    if line.b.abs() > max_d {
        line = mean_line(&xs, &ys, &keep, line.b.clamp(-max_d, max_d));
        fit.clamped = true;
    }
    // Lower the line onto the envelope: it then bounds offset + min delay from below instead of
    // sitting at the average delay of the windows.
    let lowest = kept(&keep)
        .map(|i| ys[i] - line.at(xs[i]))
        .fold(f64::INFINITY, f64::min);
    line.a += lowest;
    fit.c = line.a;
    fit.d = line.b;
    fit.windows = kept(&keep).count();
    fit.rejected = xs.len() - fit.windows;
    fit.residual_ms = kept(&keep)
        .map(|i| ys[i] - line.at(xs[i]))
        .fold(0.0, f64::max);
    Ok(fit)
}
