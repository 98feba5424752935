//! Timeline fit tests: synthetic senders with known clocks, each case named for what it proves.

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

#[test]
fn ticks_are_the_exact_difference_rounded_once_at_every_range() {
    let exact = |to: i64, from: i64| (i128::from(to) - i128::from(from)) as f64;
    let cases = [
        ("a step forward", 1_000, 40),
        ("a step back (reordering)", 40, 1_000),
        (
            "beyond 2^53, where rounding starts",
            1 << 60,
            -(1 << 60) + 3,
        ),
        (
            "the widest pair, whose difference needs i128",
            i64::MAX,
            i64::MIN,
        ),
        ("the widest pair backwards", i64::MIN, i64::MAX),
        ("equal", 77, 77),
    ];
    for (name, to, from) in cases {
        assert_eq!(
            super::ticks(to, from).to_bits(),
            exact(to, from).to_bits(),
            "{name}"
        );
    }
}
