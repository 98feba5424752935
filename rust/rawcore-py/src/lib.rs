//! `rawcore._core`: the thin binding over `rawcore-core`.
//!
//! Every call here takes a whole capture (any read-only buffer: `bytes`, `mmap`, a
//! `memoryview`), releases the GIL for the work, and hands back small frozen classes or
//! `NumPy` columns. No Python object is made per packet, and errors go through the one
//! mapping in `errors.rs`.

// `#[pyfunction]` arguments arrive as owned values extracted from Python objects.
#![allow(clippy::needless_pass_by_value)]

mod buffer;
mod compose;
mod errors;
mod extract;
mod gil;
mod mirror;
mod mix;
mod remux;
mod split;
mod timeline;
mod types;
mod video;

use numpy::IntoPyArray;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use rawcore_core as core;

use crate::buffer::ReadOnlyBytes;
use crate::errors::CoreError;
use crate::gil::detached;
use crate::types::{CaptureReport, Sdp};

fn config(
    rtx_apt: Option<Vec<(u8, u8)>>,
    clock_rates: Option<Vec<(u8, u32)>>,
    reorder_window: usize,
) -> core::AnalyzeConfig {
    core::AnalyzeConfig {
        rtx_apt: rtx_apt.unwrap_or_default(),
        clock_rates: clock_rates.unwrap_or_default(),
        reorder_window,
    }
}

/// Parse a whole rtpdump capture and return its per-stream statistics.
#[pyfunction]
#[pyo3(signature = (data, *, rtx_apt=None, clock_rates=None, reorder_window=512))]
fn analyze_capture(
    py: Python<'_>,
    data: &Bound<'_, PyAny>,
    rtx_apt: Option<Vec<(u8, u8)>>,
    clock_rates: Option<Vec<(u8, u32)>>,
    reorder_window: usize,
) -> PyResult<CaptureReport> {
    let cfg = config(rtx_apt, clock_rates, reorder_window);
    let bytes = ReadOnlyBytes::get(data)?;
    let slice = bytes.as_slice();
    let report = detached(py, || core::analyze_capture(slice, &cfg))?;
    Ok(CaptureReport::from(&report))
}

/// `analyze_capture`, and in the same pass the stream a track of the capture is, as
/// `stream_columns` reads it.
#[pyfunction]
#[pyo3(signature = (data, *, rtx_apt=None, clock_rates=None, reorder_window=512))]
fn analyze_capture_stream(
    py: Python<'_>,
    data: &Bound<'_, PyAny>,
    rtx_apt: Option<Vec<(u8, u8)>>,
    clock_rates: Option<Vec<(u8, u32)>>,
    reorder_window: usize,
) -> PyResult<(CaptureReport, timeline::StreamColumns)> {
    let cfg = config(rtx_apt, clock_rates, reorder_window);
    let bytes = ReadOnlyBytes::get(data)?;
    let slice = bytes.as_slice();
    let (report, cols) = detached(py, || core::analyze_capture_stream(slice, &cfg))?;
    Ok((
        CaptureReport::from(&report),
        timeline::StreamColumns { cols },
    ))
}

/// Per-packet columns of a capture as `NumPy` arrays, one row per valid RTP record.
#[pyfunction]
fn capture_columns<'py>(py: Python<'py>, data: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyDict>> {
    let bytes = ReadOnlyBytes::get(data)?;
    let slice = bytes.as_slice();
    let cols = detached(py, || core::capture_columns(slice))?;
    let out = PyDict::new(py);
    out.set_item("arrival_ms", cols.arrival_ms.into_pyarray(py))?;
    out.set_item("ssrc", cols.ssrc.into_pyarray(py))?;
    out.set_item("payload_type", cols.payload_type.into_pyarray(py))?;
    out.set_item("seq", cols.seq.into_pyarray(py))?;
    out.set_item("ext_seq", cols.ext_seq.into_pyarray(py))?;
    out.set_item("timestamp", cols.timestamp.into_pyarray(py))?;
    out.set_item("marker", cols.marker.into_pyarray(py))?;
    out.set_item("payload_len", cols.payload_len.into_pyarray(py))?;
    Ok(out)
}

/// The records of a capture that arrived in `from_ms..to_ms` after its start, as a capture.
#[pyfunction]
fn slice_capture<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
    from_ms: u32,
    to_ms: u32,
) -> PyResult<Bound<'py, PyBytes>> {
    let bytes = ReadOnlyBytes::get(data)?;
    let slice = bytes.as_slice();
    let out = detached(py, || core::slice_capture(slice, from_ms, to_ms))?;
    Ok(PyBytes::new(py, &out))
}

/// Parse an SDP document.
#[pyfunction]
fn parse_sdp(text: &str) -> PyResult<Sdp> {
    Ok(Sdp::from(&core::Sdp::parse(text).map_err(CoreError::from)?))
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(analyze_capture, m)?)?;
    m.add_function(wrap_pyfunction!(analyze_capture_stream, m)?)?;
    m.add_function(wrap_pyfunction!(capture_columns, m)?)?;
    m.add_function(wrap_pyfunction!(slice_capture, m)?)?;
    m.add_function(wrap_pyfunction!(parse_sdp, m)?)?;
    m.add_function(wrap_pyfunction!(split::split_capture, m)?)?;
    m.add_class::<split::CaptureSplit>()?;
    m.add_class::<split::SplitStream>()?;
    m.add_function(wrap_pyfunction!(extract::extract_audio, m)?)?;
    m.add_function(wrap_pyfunction!(extract::decode_pcm, m)?)?;
    m.add_function(wrap_pyfunction!(extract::voice_activity, m)?)?;
    m.add_class::<extract::AudioReport>()?;
    m.add_class::<mix::OpusMix>()?;
    m.add_class::<mix::MixLimiter>()?;
    m.add_function(wrap_pyfunction!(video::video_frames, m)?)?;
    m.add_function(wrap_pyfunction!(video::extract_video, m)?)?;
    m.add_function(wrap_pyfunction!(video::extract_av, m)?)?;
    m.add_class::<video::VideoReport>()?;
    m.add_function(wrap_pyfunction!(video::annexb_to_avcc, m)?)?;
    m.add_function(wrap_pyfunction!(timeline::fit_sender_clock, m)?)?;
    m.add_function(wrap_pyfunction!(timeline::fit_offset, m)?)?;
    m.add_class::<timeline::ClockFit>()?;
    m.add_class::<timeline::OffsetFit>()?;
    m.add_function(wrap_pyfunction!(timeline::stream_columns, m)?)?;
    m.add_class::<timeline::StreamColumns>()?;
    m.add_function(wrap_pyfunction!(timeline::place_streams, m)?)?;
    m.add_class::<timeline::StreamPlacement>()?;
    m.add_class::<compose::Compositor>()?;
    m.add_function(wrap_pyfunction!(compose::rgb_to_yuv, m)?)?;
    m.add_function(wrap_pyfunction!(remux::remux_mp4, m)?)?;
    m.add_class::<remux::RemuxReport>()?;
    m.add_class::<remux::RemuxTrack>()?;
    m.add_function(wrap_pyfunction!(remux::scan_pictures, m)?)?;
    m.add_class::<remux::VideoPictures>()?;
    types::register(m)?;
    Ok(())
}
