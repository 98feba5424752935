//! Call-timeline fits over `NumPy` columns: sender clocks from Sender Reports, and the
//! sender-to-recorder offset from the lower envelope of arrival times.

use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1};
use pyo3::prelude::*;
use rawcore_core::timeline::{self, SrPoint};

use crate::errors::CoreError;
use crate::gil::detached;

/// A stream's sender clock: `sender_ms = a + b * (rtp - rtp0)`.
#[pyclass(frozen, get_all, module = "rawcore._core")]
pub struct ClockFit {
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

impl ClockFit {
    fn core(&self) -> timeline::ClockFit {
        timeline::ClockFit {
            rtp0: self.rtp0,
            a: self.a,
            b: self.b,
            nominal_b: self.nominal_b,
            points: self.points,
            rejected: self.rejected,
            max_residual_ms: self.max_residual_ms,
            slope_ppm: self.slope_ppm,
            clamped: self.clamped,
        }
    }
}

#[pymethods]
impl ClockFit {
    /// Sender time (Unix ms on the sender's clock) of an extended RTP timestamp.
    fn sender_ms(&self, rtp: i64) -> f64 {
        self.core().sender_ms(rtp)
    }

    /// `sender_ms` over an array of extended RTP timestamps.
    fn sender_ms_array<'py>(
        &self,
        py: Python<'py>,
        rtp: PyReadonlyArray1<'py, i64>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let rtp = rtp.as_slice()?;
        Ok(self.core().sender_ms_many(rtp).into_pyarray(py))
    }
}

/// The recorder-minus-sender clock offset over time: `c + d * (sender_ms - t0)`.
#[pyclass(frozen, get_all, module = "rawcore._core")]
pub struct OffsetFit {
    c: f64,
    d: f64,
    t0: f64,
    windows: usize,
    rejected: usize,
    residual_ms: f64,
    drift_ppm: f64,
    clamped: bool,
}

impl OffsetFit {
    fn core(&self) -> timeline::OffsetFit {
        timeline::OffsetFit {
            c: self.c,
            d: self.d,
            t0: self.t0,
            windows: self.windows,
            rejected: self.rejected,
            residual_ms: self.residual_ms,
            drift_ppm: self.drift_ppm,
            clamped: self.clamped,
        }
    }
}

#[pymethods]
impl OffsetFit {
    fn offset_ms(&self, sender_ms: f64) -> f64 {
        self.core().offset_ms(sender_ms)
    }

    /// Recorder-clock time (Unix ms) of a sender time.
    fn recorder_ms(&self, sender_ms: f64) -> f64 {
        self.core().recorder_ms(sender_ms)
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
    Ok(ClockFit {
        rtp0: f.rtp0,
        a: f.a,
        b: f.b,
        nominal_b: f.nominal_b,
        points: f.points,
        rejected: f.rejected,
        max_residual_ms: f.max_residual_ms,
        slope_ppm: f.slope_ppm,
        clamped: f.clamped,
    })
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
    Ok(OffsetFit {
        c: f.c,
        d: f.d,
        t0: f.t0,
        windows: f.windows,
        rejected: f.rejected,
        residual_ms: f.residual_ms,
        drift_ppm: f.drift_ppm,
        clamped: f.clamped,
    })
}
