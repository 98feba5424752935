//! Call-timeline fits over a stream's columns: sender clocks from Sender Reports, and the
//! sender-to-recorder offset from the lower envelope of arrival times, and the placement of
//! the streams of one sender clock that combines them.

use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1};
use pyo3::prelude::*;
use rawcore_core as core;
use rawcore_core::timeline::{self, Basis, SrPoint, StreamInput};

use crate::buffer::ReadOnlyBytes;

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

/// What the call timeline and the gap policy read of one capture (`stream_columns`): the
/// media stream's timestamps and arrivals, kept in Rust and handed to `place_streams` without a
/// copy, and the SSRC's arrival gaps as small tuples.
#[pyclass(frozen, module = "rawcore._core")]
pub struct StreamColumns {
    pub(crate) cols: core::StreamColumns,
}

#[pymethods]
impl StreamColumns {
    /// Packets of the stream (its SSRC and payload type).
    #[getter]
    fn packets(&self) -> usize {
        self.cols.timestamps.len()
    }

    /// The SSRC's arrival gaps by start time, as `(start_unix_ms, end_unix_ms, cause)` rows;
    /// cause 0.0 is a silence (sequence numbers run on), 1.0 a loss.
    #[getter]
    fn gaps(&self) -> Vec<(f64, f64, f64)> {
        self.cols
            .gaps
            .iter()
            .map(|g| {
                let cause = match g.cause {
                    core::ArrivalCause::Silence => 0.0,
                    core::ArrivalCause::Loss => 1.0,
                };
                (g.start_unix_ms, g.end_unix_ms, cause)
            })
            .collect()
    }
}

/// Read the stream `ssrc` (payload type `payload_type`, any when None) of a capture and the
/// arrival gaps of that SSRC (of every packet when `ssrc` is None), in one pass.
#[pyfunction]
#[pyo3(signature = (data, *, ssrc, payload_type, start_unix_ms))]
pub fn stream_columns(
    py: Python<'_>,
    data: &Bound<'_, PyAny>,
    ssrc: Option<u32>,
    payload_type: Option<u8>,
    start_unix_ms: f64,
) -> PyResult<StreamColumns> {
    let bytes = ReadOnlyBytes::get(data)?;
    let slice = bytes.as_slice();
    let cols = detached(py, || {
        core::stream_columns(slice, ssrc, payload_type, start_unix_ms)
    })?;
    Ok(StreamColumns { cols })
}

/// One stream as Python passes it: its columns (`stream_columns`), its Sender Reports'
/// arrivals (Unix ms), RTP timestamps (32-bit values) and NTP times (Unix ms), and the clock
/// rate.
type StreamArg<'py> = (Bound<'py, StreamColumns>, Vec<f64>, Vec<i64>, Vec<f64>, u32);

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
    // Report timestamps were 32-bit on the wire; only their value modulo 2^32 counts.
    let sr_rtp: Vec<Vec<u32>> = streams
        .iter()
        .map(|s| s.2.iter().map(|&t| t as u32).collect())
        .collect();
    let inputs: Vec<StreamInput<'_>> = streams
        .iter()
        .zip(&sr_rtp)
        .map(
            |((cols, sr_arrival, _, sr_ntp, rate), sr_rtp)| StreamInput {
                timestamps: &cols.get().cols.timestamps,
                arrival_unix_ms: &cols.get().cols.arrival_unix_ms,
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
