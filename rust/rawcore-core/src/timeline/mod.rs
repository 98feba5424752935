//! Where every track of a call sits on the call's wall clock.
//!
//! rawcore places all media on one clock: the recorder's, in Unix milliseconds, the clock that
//! stamped each packet's arrival. A track's RTP timestamps get there in two steps.
//!
//! 1. **Sender clock, per stream** ([`fit_sender_clock`]). Each RTCP Sender Report pairs an
//!    extended RTP timestamp with the sender's NTP time. A least-squares line
//!    `sender_ms = a + b·(rtp − rtp0)` through those pairs maps RTP ticks to the sender's wall
//!    clock. The fit starts from the nominal slope `1000 / clock_rate`, then repeatedly drops
//!    reports whose residual exceeds `max(3 × MAD, 2 ms)` and refits, keeping at least two. A
//!    slope more than ±0.5 % from nominal is not a real clock, so the nominal slope is used and
//!    the fit is flagged. One report gives the nominal slope through it; none gives an error and
//!    the caller falls back to arrival times (step 4). The line also covers media before the first
//!    report.
//! 2. **Sender to recorder, per participant** ([`fit_offset`]). A sender's audio and video share
//!    its clock (one CNAME), so the samples `(sender_ms, arrival_ms)` of all its streams go in
//!    together. `arrival − sender` is the clock offset plus network and jitter-buffer delay, so it
//!    never falls below `offset + min delay`. The fit takes the lower envelope: the minimum of
//!    `arrival − sender` per window of sender time (10 s by default), then a line
//!    `offset(t) = c + d·(t − t0)` through those minima, dropping minima more than 5 ms above it
//!    (congested windows) and refitting. `d` is the drift between the two clocks, clamped to
//!    ±500 ppm. The line is finally lowered until it touches the lowest kept minimum, so it
//!    estimates `offset + min delay` rather than an average delay.
//! 3. **Placement** ([`Placement`]). `recorder_ms(rtp) = s + offset(s)` with `s = sender_ms(rtp)`.
//!    A sender NTP clock that is seconds off does not matter: the offset absorbs it.
//! 4. **Without Sender Reports** ([`Placement::from_arrivals`]). The track's own RTP time is
//!    taken at its nominal rate from its first timestamp, and the same envelope fit on
//!    `arrival − nominal` anchors it, which also removes any extra delay of the first packet.
//!    The result says which [`Basis`] it stands on.
//!
//! [`place_streams`] applies these steps to the streams of one sender clock and says where each
//! segment's first timestamp (its output's t=0) sits and how fast its media clock runs.
//!
//! Everything here is arithmetic on slices; NaN, infinite or absurd (beyond ±10¹⁵ ms) inputs are
//! a [`TimelineError`], never a panic.

mod place;

pub use place::{first_timestamp, place_streams, StreamInput, StreamPlacement, MIN_DRIFT_WINDOWS};

use crate::seq::extend_ts_near;

/// The default width of an envelope window, in sender milliseconds.
pub const DEFAULT_WINDOW_MS: f64 = 10_000.0;
/// How far from nominal a sender's fitted RTP clock may run before it is distrusted.
pub const MAX_SLOPE_DEVIATION: f64 = 0.005;
/// The largest drift between a sender's clock and the recorder's that the envelope fit
/// believes, in ppm; a steeper envelope is clamped to it.
pub const MAX_ENVELOPE_DRIFT_PPM: f64 = 500.0;
/// The largest clock drift a segment may be extracted with (1 %): more is a broken clock, not
/// drift. One bound for the audio timeline, the video frame times and the binding's argument
/// check; every `clock_ppm` [`place_streams`] gives lies far inside it (slope within
/// [`MAX_SLOPE_DEVIATION`], envelope within [`MAX_ENVELOPE_DRIFT_PPM`]).
pub const MAX_DRIFT_PPM: f64 = 10_000.0;
/// Window minima further than this above the offset line are congested and dropped.
pub const ENVELOPE_REJECT_MS: f64 = 5.0;
/// The envelope never uses more windows than this; a longer span widens them instead.
pub const MAX_WINDOWS: usize = 100_000;

/// Times beyond this magnitude (about 31 700 years) are treated as garbage; the bound also keeps
/// every sum and square below in range.
const MAX_ABS_MS: f64 = 1e15;
/// Sender Report residuals below this are SR scheduling jitter, never outliers.
const MIN_SR_REJECT_MS: f64 = 2.0;
/// Rejection rounds; each one peels a layer, and real data settles in two or three.
const MAX_ROUNDS: usize = 8;

/// Why a timeline cannot be fitted.
#[derive(thiserror::Error, Debug, Clone, Copy, PartialEq)]
pub enum TimelineError {
    /// The stream has no Sender Reports; place it with [`Placement::from_arrivals`].
    #[error("no sender reports to fit the sender clock")]
    NoSenderReports,
    /// An RTP clock rate of 0 Hz.
    #[error("RTP clock rate is 0")]
    ZeroClockRate,
    /// Nothing to fit.
    #[error("no samples to fit")]
    NoSamples,
    /// Parallel slices differ in length.
    #[error("{left} has {left_len} values but {right} has {right_len}")]
    LengthMismatch {
        /// The first slice.
        left: &'static str,
        /// Its length.
        left_len: usize,
        /// The second slice.
        right: &'static str,
        /// Its length.
        right_len: usize,
    },
    /// A time is NaN, infinite or beyond ±10¹⁵ ms.
    #[error("{what}[{index}] is NaN, infinite or beyond ±1e15 ms")]
    BadValue {
        /// The slice.
        what: &'static str,
        /// The position in it.
        index: usize,
    },
    /// The envelope window is not a positive, finite width.
    #[error("envelope window must be a positive finite number of ms, got {window_ms}")]
    BadWindow {
        /// The width given.
        window_ms: f64,
    },
}

/// One Sender Report: an extended RTP timestamp and the sender's NTP time of it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SrPoint {
    /// Extended RTP timestamp (see [`unwrap_rtp_timestamps`]).
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
    fn nominal(rtp0: i64, sender_ms: f64, clock_rate: u32) -> Self {
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

/// What a [`Placement`] stands on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// The stream's Sender Reports and its participant's envelope.
    SenderReports,
    /// The stream's arrival times only.
    Arrival,
}

/// A track's RTP time on the recorder's clock.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Placement {
    /// What the placement stands on.
    pub basis: Basis,
    /// RTP to sender time (for [`Basis::Arrival`]: nominal ms since the first packet).
    pub clock: ClockFit,
    /// Sender time to recorder time.
    pub offset: OffsetFit,
}

impl Placement {
    /// Places a stream from its Sender Report fit and its participant's offset.
    #[must_use]
    pub fn from_sender_reports(clock: ClockFit, offset: OffsetFit) -> Self {
        Self {
            basis: Basis::SenderReports,
            clock,
            offset,
        }
    }

    /// Places a stream that has no Sender Reports from its packets' extended RTP timestamps and
    /// arrival times (Unix ms), in arrival order: nominal media time from the stream's first
    /// timestamp ([`first_timestamp`]), anchored by the lower envelope of `arrival − media time`.
    pub fn from_arrivals(
        rtp: &[i64],
        arrival_ms: &[f64],
        clock_rate: u32,
        window_ms: f64,
    ) -> Result<Self, TimelineError> {
        if clock_rate == 0 {
            return Err(TimelineError::ZeroClockRate);
        }
        check_lengths("rtp", rtp.len(), "arrival_ms", arrival_ms.len())?;
        let Some(first) = first_timestamp(rtp) else {
            return Err(TimelineError::NoSamples);
        };
        let clock = ClockFit::nominal(first, 0.0, clock_rate);
        // Ticks times 1000 over the rate (not ticks times `clock.b`): the rounding the call
        // timeline has always used, so placements stay bit-for-bit what they were.
        let rate = f64::from(clock_rate);
        let media_ms: Vec<f64> = rtp
            .iter()
            .map(|&r| ticks(r, first) * 1000.0 / rate)
            .collect();
        if let Some(index) = media_ms.iter().position(|&m| !plausible(m)) {
            return Err(TimelineError::BadValue { what: "rtp", index });
        }
        let offset = fit_offset(&media_ms, arrival_ms, window_ms)?;
        Ok(Self {
            basis: Basis::Arrival,
            clock,
            offset,
        })
    }

    /// Recorder milliseconds of an extended RTP timestamp.
    #[must_use]
    pub fn recorder_ms(&self, rtp: i64) -> f64 {
        self.offset.recorder_ms(self.clock.sender_ms(rtp))
    }

    /// [`Placement::recorder_ms`] of every timestamp.
    #[must_use]
    pub fn recorder_ms_many(&self, rtp: &[i64]) -> Vec<f64> {
        rtp.iter().map(|&r| self.recorder_ms(r)).collect()
    }
}

/// Extends 32-bit RTP timestamps of one stream, in arrival order, across wraps: each step from
/// the packet before is taken the shortest way round ([`extend_ts_near`]).
///
/// The first value comes out as it went in; later ones continue from it, so a timestamp sent just
/// before the first one (slight reordering) is smaller, possibly negative.
#[must_use]
pub fn unwrap_rtp_timestamps(ts: &[u32]) -> Vec<i64> {
    let mut out = Vec::with_capacity(ts.len());
    let mut previous: Option<(i64, u32)> = None;
    for &raw in ts {
        let ext = previous.map_or(i64::from(raw), |(ext, prev_raw)| {
            extend_ts_near(raw, ext, prev_raw)
        });
        out.push(ext);
        previous = Some((ext, raw));
    }
    out
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

/// Fits the offset from a sender's clock to the recorder's from samples of all its streams:
/// each packet's sender time and its arrival time on the recorder's clock, both Unix ms.
///
/// `window_ms` is usually [`DEFAULT_WINDOW_MS`]; a span that would need more than
/// [`MAX_WINDOWS`] windows widens them instead.
pub fn fit_offset(
    sender_ms: &[f64],
    arrival_ms: &[f64],
    window_ms: f64,
) -> Result<OffsetFit, TimelineError> {
    check_lengths("sender_ms", sender_ms.len(), "arrival_ms", arrival_ms.len())?;
    if sender_ms.is_empty() {
        return Err(TimelineError::NoSamples);
    }
    if !(window_ms.is_finite() && window_ms > 0.0) {
        return Err(TimelineError::BadWindow { window_ms });
    }
    let (mut t_min, mut t_max) = (f64::INFINITY, f64::NEG_INFINITY);
    for (index, (&s, &a)) in sender_ms.iter().zip(arrival_ms).enumerate() {
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
    for (&s, &a) in sender_ms.iter().zip(arrival_ms) {
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

/// `y = a + b·x`.
#[derive(Debug, Clone, Copy)]
struct Line {
    a: f64,
    b: f64,
}

impl Line {
    fn at(self, x: f64) -> f64 {
        self.a + self.b * x
    }
}

/// RTP ticks from `from` to `to`, exact in i128 so no pair of extended timestamps overflows.
fn ticks(to: i64, from: i64) -> f64 {
    (i128::from(to) - i128::from(from)) as f64
}

fn plausible(ms: f64) -> bool {
    ms.is_finite() && ms.abs() <= MAX_ABS_MS
}

fn check_lengths(
    left: &'static str,
    left_len: usize,
    right: &'static str,
    right_len: usize,
) -> Result<(), TimelineError> {
    if left_len == right_len {
        Ok(())
    } else {
        Err(TimelineError::LengthMismatch {
            left,
            left_len,
            right,
            right_len,
        })
    }
}

fn kept(keep: &[bool]) -> impl Iterator<Item = usize> + '_ {
    keep.iter().enumerate().filter_map(|(i, &k)| k.then_some(i))
}

/// Drops kept points whose `score` exceeds `limit`, but always leaves the two lowest-scoring
/// ones, since a line needs two. Returns how many were dropped.
fn reject(keep: &mut [bool], score: impl Fn(usize) -> f64, limit: f64) -> usize {
    let mut scored: Vec<(f64, usize)> = kept(keep).map(|i| (score(i), i)).collect();
    scored.sort_unstable_by(|x, y| x.0.total_cmp(&y.0));
    let mut dropped = 0;
    for &(s, i) in scored.iter().skip(2) {
        if s > limit {
            keep[i] = false;
            dropped += 1;
        }
    }
    dropped
}

/// Least squares over the kept points; `fallback_b` when they share one x.
fn least_squares(xs: &[f64], ys: &[f64], keep: &[bool], fallback_b: f64) -> Line {
    let n = kept(keep).count() as f64;
    let mx = kept(keep).map(|i| xs[i]).sum::<f64>() / n;
    let my = kept(keep).map(|i| ys[i]).sum::<f64>() / n;
    let (mut sxx, mut sxy) = (0.0, 0.0);
    for i in kept(keep) {
        let dx = xs[i] - mx;
        sxx += dx * dx;
        sxy += dx * (ys[i] - my);
    }
    let b = if sxx > 0.0 { sxy / sxx } else { fallback_b };
    Line { a: my - b * mx, b }
}

/// The least-squares line over the kept points with its slope fixed at `b`.
fn mean_line(xs: &[f64], ys: &[f64], keep: &[bool], b: f64) -> Line {
    let n = kept(keep).count() as f64;
    let a = kept(keep).map(|i| ys[i] - b * xs[i]).sum::<f64>() / n;
    Line { a, b }
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_unstable_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 0 {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    }
}

/// Median absolute deviation from the median.
fn mad(v: &mut [f64]) -> f64 {
    let m = median(v);
    for x in v.iter_mut() {
        *x = (*x - m).abs();
    }
    median(v)
}

#[cfg(test)]
mod tests {
    // Tables of cases read best as tuples in one piece.
    #![allow(clippy::type_complexity, clippy::too_many_lines)]

    use super::*;
    use proptest::prelude::*;

    /// A call's start on the recorder's clock, Unix ms.
    const T0: f64 = 1.7e12;

    /// Seeded uniform numbers in `[0, 1)`; tests need reproducible noise, not a rand crate.
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self) -> f64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    fn close(got: f64, want: f64, tol: f64) -> bool {
        (got - want).abs() <= tol
    }

    /// Sender Reports every 5 s for `secs` of a clock running `ppm` fast against nominal.
    fn reports(rate: u32, ppm: f64, secs: u32) -> Vec<SrPoint> {
        let b = 1000.0 / f64::from(rate) * (1.0 + ppm * 1e-6);
        (0..secs / 5)
            .map(|k| {
                let rtp = 1_000_000 + i64::from(k) * 5 * i64::from(rate);
                SrPoint {
                    rtp,
                    sender_ms: T0 + b * (rtp - 1_000_000) as f64,
                }
            })
            .collect()
    }

    /// What a clock fit should report.
    #[derive(Debug)]
    struct WantClock {
        /// Slope deviation as fitted.
        ppm: f64,
        points: usize,
        rejected: usize,
        clamped: bool,
        /// The line passes exactly through the (noise-free) first report.
        exact_intercept: bool,
    }

    const fn want_clock(ppm: f64, points: usize, rejected: usize) -> WantClock {
        WantClock {
            ppm,
            points,
            rejected,
            clamped: false,
            exact_intercept: true,
        }
    }

    #[test]
    fn sender_clock_fit_cases() {
        let mut outlier = reports(48_000, 40.0, 600);
        outlier[60].sender_ms += 250.0;
        let mut jittered = reports(90_000, -25.0, 600);
        let mut rng = Lcg(7);
        for p in &mut jittered {
            p.sender_ms += rng.next() - 0.5;
        }
        let mut same_rtp = reports(48_000, 0.0, 10);
        same_rtp[1] = SrPoint {
            sender_ms: same_rtp[0].sender_ms + 1.0,
            ..same_rtp[0]
        };
        let mut nan = reports(48_000, 0.0, 30);
        nan[3].sender_ms = f64::NAN;
        let mut inf = reports(48_000, 0.0, 30);
        inf[0].sender_ms = f64::NEG_INFINITY;
        let bad = |index| {
            Err(TimelineError::BadValue {
                what: "sender_ms",
                index,
            })
        };
        let cases: Vec<(&str, Vec<SrPoint>, u32, Result<WantClock, TimelineError>)> = vec![
            (
                "clean reports recover slope and intercept",
                reports(48_000, 40.0, 600),
                48_000,
                Ok(want_clock(40.0, 120, 0)),
            ),
            (
                "a report 250 ms off is rejected and the line survives",
                outlier,
                48_000,
                Ok(want_clock(40.0, 119, 1)),
            ),
            (
                "sub-millisecond report jitter is kept",
                jittered,
                90_000,
                Ok(WantClock {
                    exact_intercept: false,
                    ..want_clock(-25.0, 120, 0)
                }),
            ),
            (
                "a single report gives the nominal slope through it",
                reports(48_000, 0.0, 5),
                48_000,
                Ok(want_clock(0.0, 1, 0)),
            ),
            (
                "two reports fit exactly",
                reports(8_000, 300.0, 10),
                8_000,
                Ok(want_clock(300.0, 2, 0)),
            ),
            (
                "reports sharing one RTP timestamp give the nominal slope through their mean",
                same_rtp,
                48_000,
                Ok(WantClock {
                    exact_intercept: false,
                    ..want_clock(0.0, 2, 0)
                }),
            ),
            (
                "a slope 0.8 % off nominal falls back to nominal and is flagged",
                reports(48_000, 8_000.0, 600),
                48_000,
                Ok(WantClock {
                    clamped: true,
                    exact_intercept: false,
                    ..want_clock(8_000.0, 120, 0)
                }),
            ),
            (
                "no reports is an error so the caller falls back",
                vec![],
                48_000,
                Err(TimelineError::NoSenderReports),
            ),
            (
                "a NaN sender time is an error naming its index",
                nan,
                48_000,
                bad(3),
            ),
            ("an infinite sender time is an error", inf, 48_000, bad(0)),
            (
                "a zero clock rate is an error",
                reports(48_000, 0.0, 30),
                0,
                Err(TimelineError::ZeroClockRate),
            ),
        ];
        for (name, points, rate, want) in cases {
            let got = fit_sender_clock(&points, rate);
            let (fit, want) = match (got, want) {
                (Ok(fit), Ok(want)) => (fit, want),
                (got, want) => {
                    assert_eq!(got.err(), want.err(), "{name}");
                    continue;
                }
            };
            let nominal = 1000.0 / f64::from(rate);
            assert!(close(fit.slope_ppm, want.ppm, 1.0), "{name}: {fit:?}");
            assert_eq!(
                (fit.points, fit.rejected, fit.clamped),
                (want.points, want.rejected, want.clamped),
                "{name}"
            );
            let used_ppm = if want.clamped { 0.0 } else { want.ppm };
            assert!(
                close(fit.b, nominal * (1.0 + used_ppm * 1e-6), nominal * 2e-6),
                "{name}: {fit:?}"
            );
            if want.exact_intercept {
                assert!(close(fit.a, T0, 1e-3), "{name}: {fit:?}");
                assert!(fit.max_residual_ms < 1e-3, "{name}: {fit:?}");
            }
            // It is a line: one second before the first report is one second of ticks earlier.
            let before = fit.sender_ms(fit.rtp0 - i64::from(rate));
            assert!(
                close(before, fit.a - fit.b * f64::from(rate), 1e-6),
                "{name}"
            );
        }
    }

    #[test]
    fn unwrap_rtp_timestamps_cases() {
        const WRAP: i64 = 1 << 32;
        let cases: [(&str, &[u32], &[i64]); 5] = [
            ("empty input gives nothing", &[], &[]),
            (
                "the first value comes out as-is",
                &[1234, 2194],
                &[1234, 2194],
            ),
            (
                "a wrap keeps counting upwards",
                &[0xFFFF_FF00, 0x0000_0100],
                &[0xFFFF_FF00, WRAP + 0x100],
            ),
            (
                "a late timestamp from before a wrap stays before it",
                &[0xFFFF_FF00, 0x100, 0xFFFF_FFF0],
                &[0xFFFF_FF00, WRAP + 0x100, 0xFFFF_FFF0],
            ),
            (
                "a late timestamp from before the first value goes below it",
                &[5, 0xFFFF_FFF0, 965],
                &[5, -16, 965],
            ),
        ];
        for (name, input, want) in cases {
            assert_eq!(unwrap_rtp_timestamps(input), want, "{name}");
        }
    }

    /// One stream's packets: every `step_ms` of true (recorder) time over `secs`, arriving after
    /// `extra(t) + uniform [0, 20) ms`. Returns (`sender_ms`, `arrival_ms`) for a sender whose clock
    /// reads `recorder − c − drift·(t − T0)`, i.e. whose true offset at sender time s is
    /// `c + ppm·1e-6·(s − T0)` to first order.
    fn stream(
        rng: &mut Lcg,
        secs: f64,
        step_ms: f64,
        c: f64,
        ppm: f64,
        extra: impl Fn(f64) -> Option<f64>,
    ) -> (Vec<f64>, Vec<f64>) {
        let (mut s, mut a) = (vec![], vec![]);
        let mut t = T0;
        while t < T0 + secs * 1000.0 {
            if let Some(extra) = extra(t - T0) {
                // sender = t − offset(sender) solved for a linear offset anchored at T0.
                let sender = (t - c + ppm * 1e-6 * T0) / (1.0 + ppm * 1e-6);
                s.push(sender);
                a.push(t + extra + 20.0 * rng.next());
            }
            t += step_ms;
        }
        (s, a)
    }

    #[test]
    fn offset_fit_cases() {
        struct Case {
            name: &'static str,
            secs: f64,
            c: f64,
            ppm: f64,
            // Extra delay of the two streams (audio every 20 ms, video every 33 ms) by time.
            audio: fn(f64) -> Option<f64>,
            video: fn(f64) -> Option<f64>,
            tol_ms: f64,
            want_rejected: bool,
            want_clamped: bool,
        }
        let cases = [
            Case {
                name: "constant offset under random positive delays is recovered within 1 ms",
                secs: 600.0,
                c: -3_456.7,
                ppm: 0.0,
                audio: |_| Some(0.0),
                video: |_| None,
                tol_ms: 1.0,
                want_rejected: false,
                want_clamped: false,
            },
            Case {
                name: "the envelope follows the stream without 80 ms extra delay",
                secs: 600.0,
                c: 42_000.0,
                ppm: 0.0,
                audio: |_| Some(0.0),
                video: |_| Some(80.0),
                tol_ms: 1.0,
                want_rejected: false,
                want_clamped: false,
            },
            Case {
                name: "windows where only the delayed stream speaks are dropped",
                secs: 600.0,
                c: 12.5,
                ppm: 0.0,
                audio: |t| (!(200_000.0..400_000.0).contains(&t)).then_some(0.0),
                video: |_| Some(80.0),
                tol_ms: 1.0,
                want_rejected: true,
                want_clamped: false,
            },
            Case {
                name: "100 ppm of drift over an hour is recovered",
                secs: 3_600.0,
                c: -250.0,
                ppm: 100.0,
                audio: |_| Some(0.0),
                video: |_| Some(30.0),
                tol_ms: 1.0,
                want_rejected: false,
                want_clamped: false,
            },
            Case {
                name: "drift beyond 500 ppm is clamped and flagged",
                secs: 600.0,
                c: 0.0,
                ppm: 2_000.0,
                audio: |_| Some(0.0),
                video: |_| None,
                tol_ms: f64::INFINITY,
                want_rejected: false,
                want_clamped: true,
            },
        ];
        for case in cases {
            let mut rng = Lcg(11);
            let (mut s, mut a) = stream(&mut rng, case.secs, 20.0, case.c, case.ppm, case.audio);
            let (vs, va) = stream(&mut rng, case.secs, 33.3, case.c, case.ppm, case.video);
            s.extend(vs);
            a.extend(va);
            let fit = fit_offset(&s, &a, DEFAULT_WINDOW_MS).expect(case.name);
            assert_eq!(fit.clamped, case.want_clamped, "{}: {fit:?}", case.name);
            assert_eq!(
                fit.rejected > 0,
                case.want_rejected,
                "{}: {fit:?}",
                case.name
            );
            if case.want_clamped {
                assert!(close(fit.drift_ppm, case.ppm, 50.0), "{}", case.name);
                assert!(
                    close(fit.d, MAX_ENVELOPE_DRIFT_PPM * 1e-6, 1e-12),
                    "{}",
                    case.name
                );
                continue;
            }
            assert!(
                close(fit.drift_ppm, case.ppm, 5.0),
                "{}: {fit:?}",
                case.name
            );
            for &t in &[s[0], s[s.len() / 3], s[s.len() / 2 - 1]] {
                let truth = case.c + case.ppm * 1e-6 * (t - T0);
                let got = fit.offset_ms(t);
                assert!(
                    close(got, truth, case.tol_ms),
                    "{}: {got} vs {truth}",
                    case.name
                );
            }
        }
    }

    #[test]
    fn one_window_gives_the_global_minimum_without_drift() {
        let s = [T0, T0 + 1_000.0, T0 + 4_000.0];
        let a = [T0 + 530.0, T0 + 1_510.0, T0 + 4_545.0];
        let fit = fit_offset(&s, &a, DEFAULT_WINDOW_MS).expect("one window fits");
        assert_eq!((fit.windows, fit.rejected, fit.d), (1, 0, 0.0));
        assert!(close(fit.c, 510.0, 1e-3));
        assert!(close(fit.recorder_ms(T0 + 100.0), T0 + 610.0, 1e-3));
    }

    #[test]
    fn offset_fit_rejects_unusable_input() {
        let ok = [T0, T0 + 20.0];
        let cases: [(&str, &[f64], &[f64], f64, TimelineError); 6] = [
            ("empty input", &[], &[], 1e4, TimelineError::NoSamples),
            (
                "slices of different lengths",
                &ok,
                &ok[..1],
                1e4,
                TimelineError::LengthMismatch {
                    left: "sender_ms",
                    left_len: 2,
                    right: "arrival_ms",
                    right_len: 1,
                },
            ),
            (
                "a NaN sender time",
                &[T0, f64::NAN],
                &ok,
                1e4,
                TimelineError::BadValue {
                    what: "sender_ms",
                    index: 1,
                },
            ),
            (
                "an infinite arrival time",
                &ok,
                &[f64::INFINITY, T0],
                1e4,
                TimelineError::BadValue {
                    what: "arrival_ms",
                    index: 0,
                },
            ),
            (
                "a zero window",
                &ok,
                &ok,
                0.0,
                TimelineError::BadWindow { window_ms: 0.0 },
            ),
            (
                "a negative window",
                &ok,
                &ok,
                -1.0,
                TimelineError::BadWindow { window_ms: -1.0 },
            ),
        ];
        for (name, s, a, w, want) in cases {
            assert_eq!(fit_offset(s, a, w), Err(want), "{name}");
        }
        assert!(
            matches!(
                fit_offset(&ok, &ok, f64::NAN),
                Err(TimelineError::BadWindow { .. })
            ),
            "a NaN window"
        );
    }

    /// A sender whose NTP clock reads 3.7 s ahead and runs 20 ppm fast, sending 48 kHz audio and
    /// 90 kHz video with independent random RTP bases.
    #[test]
    fn placement_absorbs_a_sender_clock_3_7_s_off_and_keeps_lip_sync() {
        let sender_clock = |t: f64| t + 3_700.0 + 20e-6 * (t - T0);
        let mut rng = Lcg(3);
        let mut all_sender = vec![];
        let mut all_arrival = vec![];
        let mut tracks = vec![];
        for (rate, rtp_base, step_ms) in [(48_000u32, 123_456_789i64, 20.0), (90_000, 7, 33.3)] {
            let ticks_per_ms = f64::from(rate) / 1000.0;
            let rtp_at = |t: f64| {
                rtp_base + ((sender_clock(t) - sender_clock(T0)) * ticks_per_ms).round() as i64
            };
            let srs: Vec<SrPoint> = (0..120)
                .map(|k| {
                    let t = T0 + f64::from(k) * 5_000.0;
                    SrPoint {
                        rtp: rtp_at(t),
                        sender_ms: sender_clock(t) + 0.3 * (rng.next() - 0.5),
                    }
                })
                .collect();
            let clock = fit_sender_clock(&srs, rate).expect("reports fit");
            assert!(
                close(clock.slope_ppm, 0.0, 1.0),
                "media clock is locked to the NTP clock"
            );
            let mut truth = vec![];
            let mut rtp = vec![];
            let mut t = T0;
            while t < T0 + 600_000.0 {
                truth.push(t);
                rtp.push(rtp_at(t));
                all_arrival.push(t + 25.0 * rng.next());
                t += step_ms;
            }
            all_sender.extend(clock.sender_ms_many(&rtp));
            tracks.push((clock, rtp, truth));
        }
        let offset = fit_offset(&all_sender, &all_arrival, DEFAULT_WINDOW_MS).expect("offset fits");
        assert!(close(offset.c, -3_700.0, 1.0), "{offset:?}");
        for (clock, rtp, truth) in tracks {
            let placement = Placement::from_sender_reports(clock, offset);
            assert_eq!(placement.basis, Basis::SenderReports);
            let placed = placement.recorder_ms_many(&rtp);
            for (i, (&got, &want)) in placed.iter().zip(&truth).enumerate() {
                assert!(close(got, want, 1.0), "packet {i}: {got} vs {want}");
                assert!(
                    close(got, placement.recorder_ms(rtp[i]), 0.0),
                    "vectorised equals single"
                );
            }
        }
    }

    #[test]
    fn arrival_placement_removes_the_first_packets_extra_delay() {
        let mut rng = Lcg(5);
        let rtp: Vec<i64> = (0..30_000).map(|k| 4_000_000_000 + k * 960).collect();
        let truth: Vec<f64> = (0..30_000).map(|k| T0 + f64::from(k) * 20.0).collect();
        let mut arrival: Vec<f64> = truth.iter().map(|t| t + 10.0 * rng.next()).collect();
        arrival[0] += 150.0;
        let placement =
            Placement::from_arrivals(&rtp, &arrival, 48_000, DEFAULT_WINDOW_MS).expect("fits");
        assert_eq!(placement.basis, Basis::Arrival);
        for (&r, &t) in rtp.iter().zip(&truth) {
            assert!(close(placement.recorder_ms(r), t, 1.0));
        }
    }

    #[test]
    fn arrival_placement_rejects_unusable_input() {
        let cases: [(&str, &[i64], &[f64], u32, TimelineError); 4] = [
            ("no packets", &[], &[], 48_000, TimelineError::NoSamples),
            (
                "a zero clock rate",
                &[0],
                &[T0],
                0,
                TimelineError::ZeroClockRate,
            ),
            (
                "more timestamps than arrivals",
                &[0, 960],
                &[T0],
                48_000,
                TimelineError::LengthMismatch {
                    left: "rtp",
                    left_len: 2,
                    right: "arrival_ms",
                    right_len: 1,
                },
            ),
            (
                "timestamps too far apart for any clock",
                &[i64::MIN, i64::MAX],
                &[T0, T0],
                1,
                TimelineError::BadValue {
                    what: "rtp",
                    index: 1,
                },
            ),
        ];
        for (name, rtp, arrival, rate, want) in cases {
            assert_eq!(
                Placement::from_arrivals(rtp, arrival, rate, DEFAULT_WINDOW_MS),
                Err(want),
                "{name}"
            );
        }
    }

    proptest! {
        #[test]
        fn fits_never_panic_on_any_input(
            s in proptest::collection::vec(any::<f64>(), 0..64),
            a in proptest::collection::vec(any::<f64>(), 0..64),
            rtp in proptest::collection::vec(any::<i64>(), 0..64),
            window in any::<f64>(),
            rate in any::<u32>(),
        ) {
            let _ = fit_offset(&s, &a, window);
            let n = s.len().min(a.len());
            let _ = fit_offset(&s[..n], &a[..n], window);
            let points: Vec<SrPoint> = rtp.iter().zip(&s).map(|(&rtp, &sender_ms)| SrPoint { rtp, sender_ms }).collect();
            if let Ok(fit) = fit_sender_clock(&points, rate) {
                let _ = fit.sender_ms_many(&rtp);
            }
            let m = rtp.len().min(a.len());
            if let Ok(p) = Placement::from_arrivals(&rtp[..m], &a[..m], rate, window) {
                let _ = p.recorder_ms_many(&rtp);
            }
        }

        /// Every window holds one packet with at most `eps` of delay, the rest any delay: the
        /// envelope never places the offset above the truth plus the largest `eps`, plus the
        /// drift over one window (a packet elsewhere in the window can undercut the near-zero
        /// one by that much).
        #[test]
        fn envelope_never_exceeds_truth_plus_the_largest_minimum_delay(
            c in -1e7..1e7f64,
            ppm in -200.0..200.0f64,
            windows in proptest::collection::vec(
                (proptest::collection::vec((0.0..1.0f64, 0.0..300.0f64), 0..20), 0.0..1.0f64, 0.0..2.0f64),
                3..20,
            ),
        ) {
            let truth = |t: f64| c + ppm * 1e-6 * (t - T0);
            let (mut s, mut a) = (vec![], vec![]);
            let mut max_eps = 0.0f64;
            let mut interior = vec![];
            for (w, (packets, near_at, eps)) in windows.iter().enumerate() {
                // Window 0's near-zero packet starts it, so the fit's windows align with these.
                let near_at = if w == 0 { 0.0 } else { *near_at };
                max_eps = max_eps.max(*eps);
                let base = T0 + w as f64 * DEFAULT_WINDOW_MS;
                for &(at, delay) in packets.iter().chain([(near_at, *eps)].iter()) {
                    let t = base + at * DEFAULT_WINDOW_MS;
                    s.push(t);
                    a.push(t + truth(t) + delay);
                    if w > 0 && w + 1 < windows.len() {
                        interior.push(t);
                    }
                }
            }
            let fit = fit_offset(&s, &a, DEFAULT_WINDOW_MS).expect("valid input fits");
            for t in interior {
                let slack = max_eps + ppm.abs() * 1e-6 * DEFAULT_WINDOW_MS + 1e-3;
                prop_assert!(fit.offset_ms(t) <= truth(t) + slack, "{fit:?} at {t}");
            }
        }
    }
}
