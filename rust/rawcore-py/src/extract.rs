//! Audio extraction calls: whole tracks in, one written file (or PCM chunks) out.
//!
//! The output file is opened here because the core only takes a `Write + Seek`; which file,
//! and renaming it into place when complete, is the Python layer's business.

use std::fs::File;
use std::io::BufWriter;

/// Output files are written in 1 MiB chunks: far fewer system calls than the 8 KiB default.
const OUT_BUFFER: usize = 1 << 20;
use std::path::PathBuf;

use numpy::IntoPyArray;
use pyo3::prelude::*;
use rawcore_core as core;
use rawcore_core::{AudioCodec, AudioContainer, AudioExtractConfig, AudioSegmentInput};

use crate::buffer::{hold_segments, segment_inputs, HeldSegment, SegmentArg};
use crate::errors::CoreError;
use crate::gil::detached;
use crate::mirror::mirror;

mirror! {
    /// What one audio extraction did: packets, repairs and the output's timeline.
    pub struct AudioReport from core::AudioExtractReport as r {
        payload_type: u8,
        sample_rate: u32,
        channels: u8,
        packets_in: u64,
        packets_written: u64,
        fill_frames: u64,
        fec_recovered: u64,
        dtx_gaps: u64,
        dtx_filled_ms: f64,
        loss_gaps: u64,
        loss_filled_ms: f64,
        pause_gaps: u64,
        pause_filled_ms: f64,
        closed_up_ms: f64,
        packets_lost: u64,
        duplicates: u64,
        late: u64,
        malformed: u64,
        padding_only: u64,
        overlap_dropped: u64,
        overlap_ms: f64,
        resets: u64,
        drift_corrected_ms: f64,
        drift_dropped: u64,
        drift_steps: Vec<(f64, f64)>,
        drift_measured: u64,
        rtcp_records: u64,
        other_records: u64,
        invalid_records: u64,
        first_pts_ms: f64,
        last_pts_ms: f64,
        duration_ms: f64,
        warnings: Vec<String>,
    }
}

#[pymethods]
impl AudioReport {
    fn __repr__(&self) -> String {
        format!(
            "AudioReport(packets_written={}, duration_ms={:.1}, dtx_filled_ms={:.1}, \
             loss_filled_ms={:.1}, pause_filled_ms={:.1})",
            self.packets_written,
            self.duration_ms,
            self.dtx_filled_ms,
            self.loss_filled_ms,
            self.pause_filled_ms
        )
    }
}

fn codec(name: &str) -> PyResult<AudioCodec> {
    match name.to_ascii_lowercase().as_str() {
        "opus" => Ok(AudioCodec::Opus),
        "pcmu" => Ok(AudioCodec::Pcmu),
        "pcma" => Ok(AudioCodec::Pcma),
        "g722" => Ok(AudioCodec::G722),
        other => Err(CoreError::Argument(format!("unknown audio codec {other:?}")).into()),
    }
}

fn container(name: &str) -> PyResult<AudioContainer> {
    match name {
        "matroska" => Ok(AudioContainer::Matroska),
        "webm" => Ok(AudioContainer::Webm),
        "ogg" => Ok(AudioContainer::Ogg),
        other => Err(CoreError::Argument(format!(
            "unknown container {other:?} (matroska, webm, ogg)"
        ))
        .into()),
    }
}

pub fn inputs(held: &[HeldSegment]) -> Vec<AudioSegmentInput<'_>> {
    segment_inputs(held, |capture, offset_ms, drift_ppm| AudioSegmentInput {
        capture,
        offset_ms,
        drift_ppm,
    })
}

#[allow(clippy::too_many_arguments, clippy::fn_params_excessive_bools)]
pub fn config(
    codec_name: &str,
    container_name: &str,
    payload_type: Option<u8>,
    channels: u8,
    fill_gaps: bool,
    fix_dtx: bool,
    reorder_window: usize,
    fec: bool,
) -> PyResult<AudioExtractConfig> {
    Ok(AudioExtractConfig {
        payload_type,
        codec: codec(codec_name)?,
        channels,
        fill_gaps,
        fix_dtx,
        container: container(container_name)?,
        reorder_window,
        fec,
        ..AudioExtractConfig::default()
    })
}

/// Write one Opus track (its segments placed at their offsets, in ms) to `path`.
#[pyfunction]
#[pyo3(signature = (segments, path, *, codec="opus", container="matroska", payload_type=None,
                    channels=2, fill_gaps=true, fix_dtx=true, reorder_window=512, fec=true,
                    ssrcs=None, opus_stereo=None))]
#[allow(clippy::too_many_arguments, clippy::fn_params_excessive_bools)]
pub fn extract_audio(
    py: Python<'_>,
    segments: Vec<SegmentArg<'_>>,
    path: PathBuf,
    codec: &str,
    container: &str,
    payload_type: Option<u8>,
    channels: u8,
    fill_gaps: bool,
    fix_dtx: bool,
    reorder_window: usize,
    fec: bool,
    ssrcs: Option<Vec<Option<u32>>>,
    opus_stereo: Option<bool>,
) -> PyResult<AudioReport> {
    let cfg = AudioExtractConfig {
        ssrcs: ssrcs.unwrap_or_default(),
        opus_stereo,
        ..config(
            codec,
            container,
            payload_type,
            channels,
            fill_gaps,
            fix_dtx,
            reorder_window,
            fec,
        )?
    };
    let held = hold_segments(&segments)?;
    let file = File::create(&path).map_err(CoreError::create_output(&path))?;
    let segs = inputs(&held);
    let report = detached(py, || {
        core::extract_opus(&segs, &cfg, BufWriter::with_capacity(OUT_BUFFER, file))
    })?;
    Ok(AudioReport::from(&report))
}

/// Decode a G.711/G.722 track to 16-bit PCM, handing `sink` one `NumPy` chunk at a time.
#[pyfunction]
#[pyo3(signature = (segments, sink, *, codec, payload_type=None, fill_gaps=true, fix_dtx=true,
                    reorder_window=512))]
#[allow(clippy::too_many_arguments, clippy::fn_params_excessive_bools)]
pub fn decode_pcm(
    py: Python<'_>,
    segments: Vec<SegmentArg<'_>>,
    sink: Py<PyAny>,
    codec: &str,
    payload_type: Option<u8>,
    fill_gaps: bool,
    fix_dtx: bool,
    reorder_window: usize,
) -> PyResult<AudioReport> {
    let cfg = config(
        codec,
        "matroska",
        payload_type,
        1,
        fill_gaps,
        fix_dtx,
        reorder_window,
        false,
    )?;
    let held = hold_segments(&segments)?;
    let segs = inputs(&held);
    // An exception raised by the sink stops the decode and is re-raised as it was.
    let mut sink_error: Option<PyErr> = None;
    let report = detached(py, || {
        core::decode_pcm(&segs, &cfg, |chunk: &[i16]| {
            Python::attach(|py| {
                let array = chunk.to_vec().into_pyarray(py);
                let result = sink.call1(py, (array,)).and_then(|_| py.check_signals());
                result.map_err(|e| {
                    sink_error = Some(e);
                    core::ExtractError::Stopped {
                        reason: "the PCM sink raised".to_owned(),
                    }
                })
            })
        })
    });
    if let Some(err) = sink_error {
        return Err(err);
    }
    Ok(AudioReport::from(&report?))
}

/// The RMS level (dBFS) of every `slot_ms` of a track on its extraction timeline, as a
/// `NumPy` float32 array, with the walk's report.
#[pyfunction]
#[pyo3(signature = (segments, *, codec="opus", payload_type=None, slot_ms=20, fill_gaps=true,
                    fix_dtx=true, reorder_window=512))]
#[allow(clippy::too_many_arguments, clippy::fn_params_excessive_bools)]
pub fn voice_activity<'py>(
    py: Python<'py>,
    segments: Vec<SegmentArg<'_>>,
    codec: &str,
    payload_type: Option<u8>,
    slot_ms: u32,
    fill_gaps: bool,
    fix_dtx: bool,
    reorder_window: usize,
) -> PyResult<(Bound<'py, numpy::PyArray1<f32>>, AudioReport)> {
    let cfg = config(
        codec,
        "matroska",
        payload_type,
        1,
        fill_gaps,
        fix_dtx,
        reorder_window,
        false,
    )?;
    let held = hold_segments(&segments)?;
    let segs = inputs(&held);
    let activity = detached(py, || core::voice_activity(&segs, &cfg, slot_ms))?;
    let report = AudioReport::from(&activity.report);
    Ok((activity.levels_dbfs.into_pyarray(py), report))
}
