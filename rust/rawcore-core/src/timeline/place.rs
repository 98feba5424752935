//! Where each segment of one sender clock starts on the recorder's clock, and how fast it runs.
//!
//! [`place_streams`] is the placement rule of the call timeline for one clock group (every stream
//! of one CNAME). Each stream's timestamps are unwrapped ([`unwrap_rtp_timestamps`]), its Sender
//! Reports extended next to the packet that arrived with them and fitted ([`fit_sender_clock`]);
//! one envelope ([`fit_offset`]) over all the fitted streams of the group maps sender time to
//! recorder time. A stream without Sender Reports, or whose reports cannot be fitted, is placed
//! by its own arrival times ([`Placement::from_arrivals`]). Streams come in and placements go out
//! in the same order.

use super::envelope::fit_offset_samples;
use super::{
    check_lengths, fit_sender_clock, unwrap_rtp_timestamps, Basis, ClockFit, OffsetFit, Placement,
    SrPoint, TimelineError,
};
use crate::seq::extend_ts_near;

/// Timestamps searched for a stream's first: reordering at the very start is bounded by the
/// reorder window, so the earliest of the first 64 is the one an output starts with.
pub const FIRST_TIMESTAMP_SPAN: usize = 64;
/// Envelope windows a drift estimate needs before outputs follow it: over fewer, jitter in a few
/// window minima would pass for drift, and real drift cannot amount to much yet.
pub const MIN_DRIFT_WINDOWS: usize = 6;

/// One stream (the media SSRC of one segment) as [`place_streams`] takes it.
#[derive(Debug, Clone, Copy)]
pub struct StreamInput<'a> {
    /// RTP timestamps as sent, in arrival order.
    pub timestamps: &'a [u32],
    /// Each packet's arrival on the recorder's clock, Unix ms.
    pub arrival_unix_ms: &'a [f64],
    /// Each Sender Report's arrival on the recorder's clock, Unix ms.
    pub sr_arrival_unix_ms: &'a [f64],
    /// The RTP timestamp each report pairs with its NTP time, as sent.
    pub sr_rtp_ts: &'a [u32],
    /// Each report's NTP time as Unix ms (the sender's clock).
    pub sr_ntp_unix_ms: &'a [f64],
    /// The stream's RTP clock rate.
    pub clock_rate: u32,
}

/// Where one stream sits on the recorder's clock, and what the fits found.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamPlacement {
    /// The placement itself: any extended timestamp of the stream to recorder time.
    pub placement: Placement,
    /// Recorder time (Unix ms) of the stream's first timestamp ([`first_timestamp`]).
    pub start_unix_ms: f64,
    /// Arrival of the first packet, for comparison.
    pub first_arrival_unix_ms: f64,
    /// The RTP clock rate.
    pub clock_rate: u32,
    /// Sender Reports fitted, outliers included (0 when placed by arrival).
    pub sender_reports: usize,
    /// Sender Reports dropped as outliers.
    pub sr_rejected: usize,
    /// Largest distance of a used report from the sender clock line, ms.
    pub sr_residual_ms: f64,
    /// The sender clock's deviation from nominal as fitted, ppm.
    pub slope_ppm: f64,
    /// Recorder minus sender clock at the stream's start (`None` when placed by arrival).
    pub offset_ms: Option<f64>,
    /// Drift of the envelope the stream was placed with, ppm as fitted.
    pub drift_ppm: f64,
    /// How far the highest used window minimum of that envelope lies above it, ms.
    pub envelope_residual_ms: f64,
    /// Recorder ms per nominal media ms, minus one, in ppm as outputs apply it (the fits'
    /// clamped values, the envelope's drift only over [`MIN_DRIFT_WINDOWS`] or the caller's
    /// bound), rounded to 0.01 ppm: 36 µs per hour.
    pub clock_ppm: f64,
    /// Why the stream's Sender Reports could not be fitted, when it has some but is placed by
    /// arrival.
    pub fit_error: Option<TimelineError>,
}

impl StreamPlacement {
    /// What the placement stands on.
    #[must_use]
    pub fn basis(&self) -> Basis {
        self.placement.basis
    }
}

/// The output's t=0 of a stream: the earliest of its first [`FIRST_TIMESTAMP_SPAN`] extended
/// timestamps (the one a reorder buffer releases first).
#[must_use]
pub fn first_timestamp(ext: &[i64]) -> Option<i64> {
    ext.iter().take(FIRST_TIMESTAMP_SPAN).min().copied()
}

/// Places the streams of one sender clock (all streams of one CNAME), in the order given.
///
/// `window_ms` is the envelope window ([`super::DEFAULT_WINDOW_MS`] usually);
/// `min_drift_windows` how many envelope windows a drift needs before `clock_ppm` follows it
/// ([`MIN_DRIFT_WINDOWS`] usually). A stream whose reports cannot be fitted is placed by arrival
/// and carries the fit's error; an envelope that cannot be fitted is an error of the call.
pub fn place_streams(
    streams: &[StreamInput<'_>],
    window_ms: f64,
    min_drift_windows: usize,
) -> Result<Vec<StreamPlacement>, TimelineError> {
    let prepared = streams
        .iter()
        .map(Prepared::new)
        .collect::<Result<Vec<_>, _>>()?;
    // None: no reports; Some(Err): reports that cannot be fitted.
    let clocks: Vec<Option<Result<ClockFit, TimelineError>>> = prepared
        .iter()
        .map(|p| (!p.reports.is_empty()).then(|| fit_sender_clock(&p.reports, p.input.clock_rate)))
        .collect();
    // Audio and video of a sender share its clock: one envelope over every fitted stream, its
    // samples (sender time of each packet, its arrival) taken stream after stream.
    let fitted: Vec<(&Prepared<'_>, &ClockFit)> = prepared
        .iter()
        .zip(&clocks)
        .filter_map(|(p, clock)| match clock {
            Some(Ok(clock)) => Some((p, clock)),
            _ => None,
        })
        .collect();
    let shared = if fitted.is_empty() {
        None
    } else {
        let samples = || {
            fitted.iter().flat_map(|&(p, clock)| {
                let sender = p.ext.iter().map(move |&rtp| clock.sender_ms(rtp));
                sender.zip(p.input.arrival_unix_ms.iter().copied())
            })
        };
        Some(fit_offset_samples(samples, window_ms)?)
    };
    prepared
        .iter()
        .zip(clocks)
        .map(|(p, clock)| match (clock, shared) {
            (Some(Ok(clock)), Some(offset)) => {
                Ok(p.by_sender_reports(clock, offset, min_drift_windows))
            }
            (clock, _) => p.by_arrival(window_ms, min_drift_windows, clock.and_then(Result::err)),
        })
        .collect()
}

/// A stream with its timestamps extended and its Sender Reports as fit points.
struct Prepared<'a> {
    input: &'a StreamInput<'a>,
    ext: Vec<i64>,
    first: i64,
    first_arrival: f64,
    reports: Vec<SrPoint>,
}

impl<'a> Prepared<'a> {
    fn new(input: &'a StreamInput<'a>) -> Result<Self, TimelineError> {
        let s = input;
        for (left, left_len, right, right_len) in [
            (
                "timestamps",
                s.timestamps.len(),
                "arrival_unix_ms",
                s.arrival_unix_ms.len(),
            ),
            (
                "sr_arrival_unix_ms",
                s.sr_arrival_unix_ms.len(),
                "sr_rtp_ts",
                s.sr_rtp_ts.len(),
            ),
            (
                "sr_rtp_ts",
                s.sr_rtp_ts.len(),
                "sr_ntp_unix_ms",
                s.sr_ntp_unix_ms.len(),
            ),
        ] {
            check_lengths(left, left_len, right, right_len)?;
        }
        let ext = unwrap_rtp_timestamps(s.timestamps);
        let (Some(first), Some(&first_arrival)) =
            (first_timestamp(&ext), s.arrival_unix_ms.first())
        else {
            return Err(TimelineError::NoSamples);
        };
        let last = ext.len() - 1;
        let reports = s
            .sr_arrival_unix_ms
            .iter()
            .zip(s.sr_rtp_ts)
            .zip(s.sr_ntp_unix_ms)
            .map(|((&at, &rtp), &sender_ms)| {
                // A report's timestamp is extended next to the packet that arrived with it (the
                // next one, or the last); `j <= last` indexes both columns, which have one length.
                let j = search_sorted(s.arrival_unix_ms, at).min(last);
                SrPoint {
                    rtp: extend_ts_near(rtp, ext[j], s.timestamps[j]),
                    sender_ms,
                }
            })
            .collect();
        Ok(Self {
            input,
            ext,
            first,
            first_arrival,
            reports,
        })
    }

    fn by_sender_reports(
        &self,
        clock: ClockFit,
        offset: OffsetFit,
        min_drift_windows: usize,
    ) -> StreamPlacement {
        let sender_first = clock.sender_ms(self.first);
        StreamPlacement {
            placement: Placement::from_sender_reports(clock, offset),
            start_unix_ms: offset.recorder_ms(sender_first),
            first_arrival_unix_ms: self.first_arrival,
            clock_rate: self.input.clock_rate,
            sender_reports: clock.points + clock.rejected,
            sr_rejected: clock.rejected,
            sr_residual_ms: clock.max_residual_ms,
            slope_ppm: clock.slope_ppm,
            offset_ms: Some(offset.offset_ms(sender_first)),
            drift_ppm: offset.drift_ppm,
            envelope_residual_ms: offset.residual_ms,
            clock_ppm: clock_ppm(clock.b / clock.nominal_b, &offset, min_drift_windows),
            fit_error: None,
        }
    }

    fn by_arrival(
        &self,
        window_ms: f64,
        min_drift_windows: usize,
        fit_error: Option<TimelineError>,
    ) -> Result<StreamPlacement, TimelineError> {
        let placement = Placement::from_arrivals(
            &self.ext,
            self.input.arrival_unix_ms,
            self.input.clock_rate,
            window_ms,
        )?;
        let offset = placement.offset;
        Ok(StreamPlacement {
            placement,
            // The nominal clock is anchored at the first timestamp: media time 0 there.
            start_unix_ms: offset.recorder_ms(0.0),
            first_arrival_unix_ms: self.first_arrival,
            clock_rate: self.input.clock_rate,
            sender_reports: 0,
            sr_rejected: 0,
            sr_residual_ms: 0.0,
            slope_ppm: 0.0,
            offset_ms: None,
            drift_ppm: offset.drift_ppm,
            envelope_residual_ms: offset.residual_ms,
            clock_ppm: clock_ppm(1.0, &offset, min_drift_windows),
            fit_error,
        })
    }
}

/// Recorder ms per nominal media ms, minus one, in ppm: the sender clock's slope against
/// nominal and the envelope's drift together, the drift only once `min_drift_windows` windows
/// carry it. Rounded to 0.01 ppm as Python's `round(x, 2)` does (exact decimal, ties to even),
/// so reports stay readable.
fn clock_ppm(slope_ratio: f64, offset: &OffsetFit, min_drift_windows: usize) -> f64 {
    let drift = if offset.windows >= min_drift_windows {
        offset.d
    } else {
        0.0
    };
    let ppm = (slope_ratio * (1.0 + drift) - 1.0) * 1e6;
    // Formatting to two decimals is exact and rounds ties to even; reading it back is exact too.
    format!("{ppm:.2}").parse().unwrap_or(ppm)
}

/// `numpy.searchsorted(values, key)` (side "left"): the first index whose value is not below
/// `key`, by the bisection `NumPy` uses, so out-of-order arrivals give the index they always gave.
/// NaN sorts last.
fn search_sorted(values: &[f64], key: f64) -> usize {
    let below = |v: f64| v < key || (key.is_nan() && !v.is_nan());
    let (mut lo, mut hi) = (0, values.len());
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if values.get(mid).is_some_and(|&v| below(v)) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

#[cfg(test)]
mod tests {
    // Tables of cases read best in one piece; the exact comparisons are of copied values.
    #![allow(clippy::too_many_lines, clippy::float_cmp)]

    use super::*;
    use crate::timeline::DEFAULT_WINDOW_MS;

    /// The call's start on the recorder's clock, Unix ms.
    const T0: f64 = 1.7e12;
    /// Every packet's minimum network delay in these streams.
    const MIN_DELAY_MS: f64 = 20.0;

    /// A synthetic stream: media sampled every `step_ms` of recorder time from `T0` for `secs`,
    /// sent by a sender whose NTP clock reads `ahead_ms` ahead of the recorder and runs `ppm`
    /// fast, with the RTP clock locked to it; packets arrive `MIN_DELAY_MS` plus up to 10 ms
    /// late. Sender Reports every 5 s when `reports`.
    #[derive(Debug, Clone, Copy)]
    struct Synth {
        rate: u32,
        step_ms: f64,
        ts0: u32,
        secs: f64,
        ahead_ms: f64,
        ppm: f64,
        reports: bool,
    }

    const AUDIO: Synth = Synth {
        rate: 48_000,
        step_ms: 20.0,
        ts0: 123_456_789,
        secs: 120.0,
        ahead_ms: 3_700.0,
        ppm: 0.0,
        reports: true,
    };
    const VIDEO: Synth = Synth {
        rate: 90_000,
        step_ms: 33.3,
        ts0: 7,
        ..AUDIO
    };

    #[derive(Debug, Default)]
    struct Columns {
        ts: Vec<u32>,
        arrival: Vec<f64>,
        sr_arrival: Vec<f64>,
        sr_rtp: Vec<u32>,
        sr_ntp: Vec<f64>,
        rate: u32,
    }

    impl Columns {
        fn input(&self) -> StreamInput<'_> {
            StreamInput {
                timestamps: &self.ts,
                arrival_unix_ms: &self.arrival,
                sr_arrival_unix_ms: &self.sr_arrival,
                sr_rtp_ts: &self.sr_rtp,
                sr_ntp_unix_ms: &self.sr_ntp,
                clock_rate: self.rate,
            }
        }
    }

    fn synth(s: Synth, seed: u64) -> Columns {
        let mut state = seed;
        let mut noise = move || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let sender = |t: f64| t + s.ahead_ms + s.ppm * 1e-6 * (t - T0);
        let rtp = |t: f64| {
            let ticks = ((sender(t) - sender(T0)) * f64::from(s.rate) / 1000.0).round();
            s.ts0.wrapping_add(ticks as i64 as u32)
        };
        let mut c = Columns {
            rate: s.rate,
            ..Columns::default()
        };
        let mut next_report = T0 + 1_000.0;
        let mut t = T0;
        while t < T0 + s.secs * 1000.0 {
            c.ts.push(rtp(t));
            c.arrival.push(t + MIN_DELAY_MS + 10.0 * noise());
            if s.reports && t >= next_report {
                c.sr_arrival.push(t + MIN_DELAY_MS + 5.0);
                c.sr_rtp.push(rtp(t));
                c.sr_ntp.push(sender(t));
                next_report += 5_000.0;
            }
            t += s.step_ms;
        }
        c
    }

    fn close(got: f64, want: f64, tol: f64) -> bool {
        (got - want).abs() <= tol
    }

    /// What one placement should say.
    #[derive(Debug, Clone, Copy)]
    struct Want {
        basis: Basis,
        /// `start_unix_ms - T0`, within 1 ms.
        start: f64,
        /// `offset_ms`, within 1 ms, when placed by Sender Reports.
        offset: Option<f64>,
        /// `clock_ppm`, within 5 ppm.
        clock_ppm: f64,
        fit_error: Option<TimelineError>,
    }

    const BY_REPORTS: Want = Want {
        basis: Basis::SenderReports,
        start: MIN_DELAY_MS,
        offset: Some(MIN_DELAY_MS - 3_700.0),
        clock_ppm: 0.0,
        fit_error: None,
    };
    const BY_ARRIVAL: Want = Want {
        basis: Basis::Arrival,
        offset: None,
        ..BY_REPORTS
    };

    #[test]
    fn placement_cases() {
        let mut bad_reports = synth(VIDEO, 2);
        bad_reports.sr_ntp[0] = f64::NAN;
        let drifting = Synth {
            ppm: 100.0,
            ..AUDIO
        };
        let cases: Vec<(&str, Vec<Columns>, usize, Vec<Want>)> = vec![
            (
                "a sender's audio and video share one envelope and start at their true time",
                vec![synth(AUDIO, 1), synth(VIDEO, 2)],
                MIN_DRIFT_WINDOWS,
                vec![BY_REPORTS, BY_REPORTS],
            ),
            (
                "reports that cannot be fitted: placed by arrival, with the fit's error",
                vec![synth(AUDIO, 1), bad_reports],
                MIN_DRIFT_WINDOWS,
                vec![
                    BY_REPORTS,
                    Want {
                        fit_error: Some(TimelineError::BadValue {
                            what: "sender_ms",
                            index: 0,
                        }),
                        ..BY_ARRIVAL
                    },
                ],
            ),
            (
                "no Sender Reports: placed by arrival, without an error",
                vec![synth(
                    Synth {
                        reports: false,
                        ..AUDIO
                    },
                    3,
                )],
                MIN_DRIFT_WINDOWS,
                vec![BY_ARRIVAL],
            ),
            (
                "a timestamp wrap in the middle of the stream changes nothing",
                vec![synth(
                    Synth {
                        ts0: u32::MAX - 48_000 * 30,
                        ..AUDIO
                    },
                    4,
                )],
                MIN_DRIFT_WINDOWS,
                vec![BY_REPORTS],
            ),
            (
                "a drift over enough envelope windows reaches clock_ppm",
                vec![synth(drifting, 5)],
                MIN_DRIFT_WINDOWS,
                vec![Want {
                    clock_ppm: -100.0,
                    ..BY_REPORTS
                }],
            ),
            (
                "a drift over fewer windows than the gate leaves clock_ppm alone",
                vec![synth(drifting, 5)],
                13,
                vec![BY_REPORTS],
            ),
            (
                "the gate holds for arrival placements too",
                vec![
                    synth(
                        Synth {
                            reports: false,
                            ..drifting
                        },
                        6,
                    ),
                    synth(
                        Synth {
                            reports: false,
                            ..drifting
                        },
                        6,
                    ),
                ],
                0,
                vec![
                    Want {
                        clock_ppm: -100.0,
                        ..BY_ARRIVAL
                    },
                    Want {
                        clock_ppm: -100.0,
                        ..BY_ARRIVAL
                    },
                ],
            ),
        ];
        for (name, streams, min_windows, want) in cases {
            let inputs: Vec<StreamInput<'_>> = streams.iter().map(Columns::input).collect();
            let got = place_streams(&inputs, DEFAULT_WINDOW_MS, min_windows).expect(name);
            assert_eq!(got.len(), want.len(), "{name}");
            for (i, (p, w)) in got.iter().zip(&want).enumerate() {
                assert_eq!(p.basis(), w.basis, "{name} [{i}]");
                assert_eq!(p.fit_error, w.fit_error, "{name} [{i}]");
                assert!(
                    close(p.start_unix_ms - T0, w.start, 1.0),
                    "{name} [{i}]: {p:?}"
                );
                match (p.offset_ms, w.offset) {
                    (Some(got), Some(want)) => assert!(close(got, want, 1.0), "{name} [{i}]"),
                    (got, want) => assert_eq!(got.is_some(), want.is_some(), "{name} [{i}]"),
                }
                assert!(close(p.clock_ppm, w.clock_ppm, 5.0), "{name} [{i}]: {p:?}");
                assert_eq!(
                    p.clock_ppm,
                    (p.clock_ppm * 100.0).round() / 100.0,
                    "{name} [{i}]: clock_ppm is in hundredths"
                );
                let c = &streams[i];
                assert_eq!(p.first_arrival_unix_ms, c.arrival[0], "{name} [{i}]");
                assert_eq!(p.clock_rate, c.rate, "{name} [{i}]");
                if p.basis() == Basis::SenderReports {
                    assert_eq!(p.sender_reports, c.sr_ntp.len(), "{name} [{i}]");
                } else {
                    assert_eq!((p.sender_reports, p.slope_ppm), (0, 0.0), "{name} [{i}]");
                }
            }
        }
    }

    #[test]
    fn a_failed_stream_leaves_the_group_envelope_to_the_others() {
        let audio = synth(AUDIO, 1);
        let mut video = synth(VIDEO, 2);
        video.sr_ntp.iter_mut().for_each(|t| *t = f64::INFINITY);
        let alone = place_streams(&[audio.input()], DEFAULT_WINDOW_MS, MIN_DRIFT_WINDOWS)
            .expect("audio alone");
        let both = place_streams(
            &[audio.input(), video.input()],
            DEFAULT_WINDOW_MS,
            MIN_DRIFT_WINDOWS,
        )
        .expect("audio and video");
        assert_eq!(both[0], alone[0]);
    }

    #[test]
    fn unusable_streams_are_errors() {
        let ok = synth(AUDIO, 1);
        let empty = Columns {
            rate: 48_000,
            ..Columns::default()
        };
        let mut short = synth(AUDIO, 1);
        short.arrival.pop();
        let mut reports = synth(AUDIO, 1);
        reports.sr_rtp.pop();
        let cases: [(&str, &Columns, TimelineError); 3] = [
            ("a stream without packets", &empty, TimelineError::NoSamples),
            (
                "fewer arrivals than timestamps",
                &short,
                TimelineError::LengthMismatch {
                    left: "timestamps",
                    left_len: ok.ts.len(),
                    right: "arrival_unix_ms",
                    right_len: ok.ts.len() - 1,
                },
            ),
            (
                "report columns of different lengths",
                &reports,
                TimelineError::LengthMismatch {
                    left: "sr_arrival_unix_ms",
                    left_len: ok.sr_rtp.len(),
                    right: "sr_rtp_ts",
                    right_len: ok.sr_rtp.len() - 1,
                },
            ),
        ];
        for (name, stream, want) in cases {
            let got = place_streams(&[ok.input(), stream.input()], DEFAULT_WINDOW_MS, 6);
            assert_eq!(got, Err(want), "{name}");
        }
    }

    #[test]
    fn first_timestamp_is_the_earliest_of_the_first_64() {
        let late_start: Vec<i64> = [960, 0]
            .into_iter()
            .chain((2..100).map(|k| k * 960))
            .collect();
        let mut far: Vec<i64> = (0..100).map(|k| 1_000 + k).collect();
        far[64] = 0;
        let cases: [(&str, &[i64], Option<i64>); 3] = [
            ("no timestamps", &[], None),
            ("a reordered start", &late_start, Some(0)),
            (
                "an earlier one after the first 64 does not count",
                &far,
                Some(1_000),
            ),
        ];
        for (name, ext, want) in cases {
            assert_eq!(first_timestamp(ext), want, "{name}");
        }
    }

    #[test]
    fn search_sorted_bisects_like_numpy() {
        let cases: [(&str, &[f64], f64, usize); 6] = [
            ("empty", &[], 1.0, 0),
            ("before all", &[1.0, 2.0, 3.0], 0.5, 0),
            ("equal goes left", &[1.0, 2.0, 2.0, 3.0], 2.0, 1),
            ("after all", &[1.0, 2.0, 3.0], 9.0, 3),
            (
                "unsorted input: NumPy's answer",
                &[5.0, 1.0, 2.0, 0.0, 9.0],
                3.0,
                4,
            ),
            ("NaN sorts last", &[1.0, 2.0, f64::NAN], f64::NAN, 2),
        ];
        for (name, values, key, want) in cases {
            assert_eq!(search_sorted(values, key), want, "{name}");
        }
    }
}
