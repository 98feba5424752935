//! Call-timeline fits over `NumPy` columns: sender clocks from Sender Reports, and the
//! sender-to-recorder offset from the lower envelope of arrival times.

use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1};
use pyo3::prelude::*;
use rawcore_core::timeline::{self, SrPoint};

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
