//! Call-timeline fits over `NumPy` columns: sender clocks from Sender Reports, and the
//! sender-to-recorder offset from the lower envelope of arrival times, and the placement of
//! the streams of one sender clock that combines them.

use std::borrow::Cow;

use numpy::{Element, IntoPyArray, PyArray1, PyReadonlyArray1};
use pyo3::prelude::*;
use rawcore_core::timeline::{self, Basis, SrPoint, StreamInput};

use crate::errors::CoreError;
use crate::gil::detached;
use crate::mirror::mirror;

mirror! {
    /// A stream's sender clock: `sender_ms = a + b * (rtp - rtp0)`.
    pub struct ClockFit from timeline::ClockFit as f, keep fit {
        rtp0: i64,
        a: f64,
        b: f64,
        nominal_b: f64,
        points: usize,
        rejected: usize,
        max_residual_ms: f64,
        slope_ppm: f64,
        clamped: bool,
    }
}

#[pymethods]
impl ClockFit {
    /// Sender time (Unix ms on the sender's clock) of an extended RTP timestamp.
    fn sender_ms(&self, rtp: i64) -> f64 {
        self.fit.sender_ms(rtp)
    }

    /// `sender_ms` over an array of extended RTP timestamps.
    fn sender_ms_array<'py>(
        &self,
        py: Python<'py>,
        rtp: PyReadonlyArray1<'py, i64>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let rtp = rtp.as_slice()?;
        Ok(self.fit.sender_ms_many(rtp).into_pyarray(py))
    }
}

mirror! {
    /// The recorder-minus-sender clock offset over time: `c + d * (sender_ms - t0)`.
    pub struct OffsetFit from timeline::OffsetFit as f, keep fit {
        c: f64,
        d: f64,
        t0: f64,
        windows: usize,
        rejected: usize,
        residual_ms: f64,
        drift_ppm: f64,
        clamped: bool,
    }
}

#[pymethods]
impl OffsetFit {
    fn offset_ms(&self, sender_ms: f64) -> f64 {
        self.fit.offset_ms(sender_ms)
    }

    /// Recorder-clock time (Unix ms) of a sender time.
    fn recorder_ms(&self, sender_ms: f64) -> f64 {
        self.fit.recorder_ms(sender_ms)
    }
}

/// Fit a stream's sender clock to its Sender Reports (extended RTP, sender Unix ms).
#[pyfunction]
pub fn fit_sender_clock(
    rtp: PyReadonlyArray1<'_, i64>,
    sender_ms: PyReadonlyArray1<'_, f64>,
    clock_rate: u32,
) -> PyResult<ClockFit> {
    let rtp = rtp.as_slice()?;
    let sender = sender_ms.as_slice()?;
    if rtp.len() != sender.len() {
        return Err(CoreError::Argument("rtp and sender_ms differ in length".to_owned()).into());
    }
    let points: Vec<SrPoint> = rtp
        .iter()
        .zip(sender)
        .map(|(&rtp, &sender_ms)| SrPoint { rtp, sender_ms })
        .collect();
    let f = timeline::fit_sender_clock(&points, clock_rate).map_err(CoreError::from)?;
    Ok(ClockFit::from(&f))
}

/// Fit the lower envelope of `arrival_ms - sender_ms` (window minima, robust line).
#[pyfunction]
pub fn fit_offset(
    py: Python<'_>,
    sender_ms: PyReadonlyArray1<'_, f64>,
    arrival_ms: PyReadonlyArray1<'_, f64>,
    window_ms: f64,
) -> PyResult<OffsetFit> {
    let sender = sender_ms.as_slice()?;
    let arrival = arrival_ms.as_slice()?;
    let f = detached(py, || timeline::fit_offset(sender, arrival, window_ms))?;
    Ok(OffsetFit::from(&f))
}

mirror! {
    /// Where one stream (a segment's media SSRC) sits on the recorder's clock, and what the fits
    /// found.
    pub struct StreamPlacement from timeline::StreamPlacement as p {
        basis: &'static str = match p.basis() {
            Basis::SenderReports => "sender_reports",
            Basis::Arrival => "arrival",
        },
        start_unix_ms: f64,
        first_arrival_unix_ms: f64,
        clock_rate: u32,
        sender_reports: usize,
        sr_rejected: usize,
        sr_residual_ms: f64,
        slope_ppm: f64,
        offset_ms: Option<f64>,
        drift_ppm: f64,
        envelope_residual_ms: f64,
        clock_ppm: f64,
        warning: Option<String> = p.fit_error.map(|e| e.to_string()),
    }
}

/// One stream as Python passes it: RTP timestamps (uint32), packet arrivals (Unix ms), Sender
/// Report arrivals (Unix ms), their RTP timestamps (int64 holding 32-bit values) and NTP times
/// (Unix ms), and the clock rate.
type StreamArg<'py> = (
    PyReadonlyArray1<'py, u32>,
    PyReadonlyArray1<'py, f64>,
    PyReadonlyArray1<'py, f64>,
    PyReadonlyArray1<'py, i64>,
    PyReadonlyArray1<'py, f64>,
    u32,
);

/// An array's values, borrowed when contiguous (the usual case), else copied.
fn column<'a, T: Element + Copy>(array: &'a PyReadonlyArray1<'_, T>) -> Cow<'a, [T]> {
    match array.as_slice() {
        Ok(slice) => Cow::Borrowed(slice),
        Err(_) => Cow::Owned(array.as_array().iter().copied().collect()),
    }
}

// The defaults are written out so Python sees them in the signature; they are the core's.
const _: () = assert!(timeline::DEFAULT_WINDOW_MS == 10_000.0 && timeline::MIN_DRIFT_WINDOWS == 6);

/// Place the streams of one sender clock (all streams of one CNAME) on the recorder's clock.
#[pyfunction]
#[pyo3(signature = (streams, *, window_ms=10_000.0, min_drift_windows=6))]
pub fn place_streams(
    py: Python<'_>,
    streams: Vec<StreamArg<'_>>,
    window_ms: f64,
    min_drift_windows: usize,
) -> PyResult<Vec<StreamPlacement>> {
    let held: Vec<_> = streams
        .iter()
        .map(|(ts, arrival, sr_arrival, sr_rtp, sr_ntp, rate)| {
            // Report timestamps were 32-bit on the wire; only their value modulo 2^32 counts.
            let sr_rtp: Vec<u32> = column(sr_rtp).iter().map(|&t| t as u32).collect();
            (
                column(ts),
                column(arrival),
                column(sr_arrival),
                sr_rtp,
                column(sr_ntp),
                *rate,
            )
        })
        .collect();
    let inputs: Vec<StreamInput<'_>> = held
        .iter()
        .map(
            |(ts, arrival, sr_arrival, sr_rtp, sr_ntp, rate)| StreamInput {
                timestamps: ts,
                arrival_unix_ms: arrival,
                sr_arrival_unix_ms: sr_arrival,
                sr_rtp_ts: sr_rtp,
                sr_ntp_unix_ms: sr_ntp,
                clock_rate: *rate,
            },
        )
        .collect();
    let placed = detached(py, || {
        timeline::place_streams(&inputs, window_ms, min_drift_windows)
    })?;
    Ok(placed.iter().map(StreamPlacement::from).collect())
}
