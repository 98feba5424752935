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
//!
//! The module is split by step: [`clock`] (step 1), [`envelope`] (step 2), `line` (the robust
//! line fits both use), [`place`] (steps 3 and 4 for a clock group); this file holds the shared
//! types, bounds and errors.

pub mod clock;
pub mod envelope;
mod line;
pub mod place;
#[cfg(test)]
mod tests;

pub use clock::{fit_sender_clock, ClockFit, SrPoint};
pub use envelope::{fit_offset, OffsetFit};
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
        let media_ms = move |r: i64| ticks(r, first) * 1000.0 / rate;
        if let Some(index) = rtp.iter().position(|&r| !plausible(media_ms(r))) {
            return Err(TimelineError::BadValue { what: "rtp", index });
        }
        // Media time is derived on the fly in both of the fit's passes: no column of it.
        let offset = envelope::fit_offset_samples(
            || {
                rtp.iter()
                    .map(|&r| media_ms(r))
                    .zip(arrival_ms.iter().copied())
            },
            window_ms,
        )?;
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

/// RTP ticks from `from` to `to`, exact in i128 so no pair of extended timestamps overflows.
/// The difference is the same integer either way, so it rounds to the same `f64`; i64 is taken
/// when it holds it, as converting i128 is a library call per packet.
pub(crate) fn ticks(to: i64, from: i64) -> f64 {
    match to.checked_sub(from) {
        Some(d) => d as f64,
        None => (i128::from(to) - i128::from(from)) as f64,
    }
}

pub(crate) fn plausible(ms: f64) -> bool {
    ms.is_finite() && ms.abs() <= MAX_ABS_MS
}

pub(crate) fn check_lengths(
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
