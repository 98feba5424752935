//! Step 1 of the call timeline: a stream's RTP clock on its sender's wall clock, fitted to its
//! RTCP Sender Reports with a robust line.

use super::line::{kept, least_squares, mad, mean_line, median, reject, Line, MAX_ROUNDS};
use super::{plausible, ticks, TimelineError, MAX_SLOPE_DEVIATION};

/// Sender Report residuals below this are SR scheduling jitter, never outliers.
const MIN_SR_REJECT_MS: f64 = 2.0;

/// One Sender Report: an extended RTP timestamp and the sender's NTP time of it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SrPoint {
    /// Extended RTP timestamp (see [`super::unwrap_rtp_timestamps`]).
    pub rtp: i64,
    /// The sender's NTP time as Unix milliseconds.
    pub sender_ms: f64,
}

/// A stream's RTP clock on the sender's wall clock: `sender_ms = a + b·(rtp − rtp0)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClockFit {
    /// The RTP timestamp the line is anchored at (the first report's).
    pub rtp0: i64,
    /// Sender milliseconds at `rtp0`.
    pub a: f64,
    /// Milliseconds per RTP tick, as used.
    pub b: f64,
    /// `1000 / clock_rate`.
    pub nominal_b: f64,
    /// Reports the line rests on.
    pub points: usize,
    /// Reports dropped as outliers.
    pub rejected: usize,
    /// Largest distance of a used report from the line, in ms.
    pub max_residual_ms: f64,
    /// The fitted slope's deviation from nominal, in ppm, as the data said it (also when
    /// `clamped`).
    pub slope_ppm: f64,
    /// The fitted slope was beyond ±0.5 % of nominal, so `b` is the nominal slope.
    pub clamped: bool,
}

impl ClockFit {
    /// The nominal clock through one known point.
    pub(super) fn nominal(rtp0: i64, sender_ms: f64, clock_rate: u32) -> Self {
        let nominal_b = 1000.0 / f64::from(clock_rate);
        Self {
            rtp0,
            a: sender_ms,
            b: nominal_b,
            nominal_b,
            points: 0,
            rejected: 0,
            max_residual_ms: 0.0,
            slope_ppm: 0.0,
            clamped: false,
        }
    }

    /// Sender milliseconds of an extended RTP timestamp.
    #[must_use]
    pub fn sender_ms(&self, rtp: i64) -> f64 {
        self.a + self.b * ticks(rtp, self.rtp0)
    }

    /// [`ClockFit::sender_ms`] of every timestamp.
    #[must_use]
    pub fn sender_ms_many(&self, rtp: &[i64]) -> Vec<f64> {
        rtp.iter().map(|&r| self.sender_ms(r)).collect()
    }
}

/// Fits a stream's RTP clock to the sender's wall clock from its Sender Reports.
pub fn fit_sender_clock(points: &[SrPoint], clock_rate: u32) -> Result<ClockFit, TimelineError> {
    if clock_rate == 0 {
        return Err(TimelineError::ZeroClockRate);
    }
    let Some(first) = points.first() else {
        return Err(TimelineError::NoSenderReports);
    };
    if let Some(index) = points.iter().position(|p| !plausible(p.sender_ms)) {
        return Err(TimelineError::BadValue {
            what: "sender_ms",
            index,
        });
    }
    let mut fit = ClockFit::nominal(first.rtp, first.sender_ms, clock_rate);
    fit.points = 1;
    if points.len() == 1 {
        return Ok(fit);
    }
    let nominal_b = fit.nominal_b;
    // Work relative to the first report so large Unix times keep their sub-ms precision.
    let xs: Vec<f64> = points.iter().map(|p| ticks(p.rtp, first.rtp)).collect();
    let ys: Vec<f64> = points
        .iter()
        .map(|p| p.sender_ms - first.sender_ms)
        .collect();
    let mut keep = vec![true; points.len()];

    // Round 0 judges against the nominal slope through the median intercept: a single wild
    // report cannot tilt it, which a least-squares start would let it do.
    let mut intercepts: Vec<f64> = xs.iter().zip(&ys).map(|(x, y)| y - nominal_b * x).collect();
    let mut line = Line {
        a: median(&mut intercepts),
        b: nominal_b,
    };
    for round in 0..MAX_ROUNDS {
        let mut residuals: Vec<f64> = kept(&keep).map(|i| ys[i] - line.at(xs[i])).collect();
        let limit = (3.0 * mad(&mut residuals)).max(MIN_SR_REJECT_MS);
        let dropped = reject(&mut keep, |i| (ys[i] - line.at(xs[i])).abs(), limit);
        if dropped == 0 && round > 0 {
            break;
        }
        line = least_squares(&xs, &ys, &keep, nominal_b);
    }

    let slope_ratio = line.b / nominal_b - 1.0;
    fit.slope_ppm = slope_ratio * 1e6;
    if slope_ratio.abs() > MAX_SLOPE_DEVIATION {
        line = mean_line(&xs, &ys, &keep, nominal_b);
        fit.clamped = true;
    }
    fit.a = first.sender_ms + line.a;
    fit.b = line.b;
    fit.points = kept(&keep).count();
    fit.rejected = points.len() - fit.points;
    fit.max_residual_ms = kept(&keep)
        .map(|i| (ys[i] - line.at(xs[i])).abs())
        .fold(0.0, f64::max);
    Ok(fit)
}
