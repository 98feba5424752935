//! Video extraction calls: a track's captures in; frame columns, or one written file, out.

use std::fs::File;
use std::io::BufWriter;

/// Output files are written in 1 MiB chunks: far fewer system calls than the 8 KiB default.
const OUT_BUFFER: usize = 1 << 20;
use std::path::PathBuf;

use numpy::IntoPyArray;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use rawcore_core as core;
use rawcore_core::{
    DocChoice, FillFrame, OnLoss, VideoCodec, VideoExtractConfig, VideoSegmentInput,
};

use crate::buffer::{hold_segments, segment_inputs, HeldSegment, SegmentArg};
use crate::errors::CoreError;
use crate::gil::detached;
use crate::mirror::mirror;

mirror! {
    /// What one video assembly did: frames, losses, keyframe waits, sizes and gaps.
    pub struct VideoReport from core::VideoReport as r {
        payload_type: u8,
        packets_in: u64,
        frames_emitted: u64,
        keyframes_emitted: u64,
        frames_undecodable: u64,
        frames_concealed: u64,
        frames_incomplete: u64,
        frames_malformed: u64,
        keyframe_waits: u64,
        keyframe_wait_ms: f64,
        packets_lost: u64,
        duplicates: u64,
        late: u64,
        refused_packetizations: u64,
        padding_only: u64,
        truncated: u64,
        resolution_changes: Vec<(u64, u32, u32)>,
        rotation_changes: Vec<(u64, u16, bool)> = r
            .rotation_changes
            .iter()
            .map(|&(pts, rot)| (pts, rot.degrees, rot.flip))
            .collect(),
        config_changes: u64,
        gaps: Vec<(u64, u64, u32, u32)> = r
            .gaps
            .iter()
            .map(|g| (g.start_pts_90k, g.end_pts_90k, g.width, g.height))
            .collect(),
        first_pts_90k: Option<u64>,
        last_pts_90k: Option<u64>,
        max_size: Option<(u32, u32)>,
        warnings: Vec<String>,
        fills: Vec<(u64, u64, u32, u32)> = r
            .fill_plan
            .fills
            .iter()
            .map(|g| (g.start_pts_90k, g.end_pts_90k, g.width, g.height))
            .collect(),
        unfilled_ms: u64 = r.fill_plan.unfilled_ms,
        stretches: Vec<(u64, u64, &'static str, bool)> = r
            .fill_plan
            .stretches
            .iter()
            .map(|s| (s.start_pts_90k, s.end_pts_90k, s.kind.name(), s.filled))
            .collect(),
        end_pts_90k: u64 = r.fill_plan.end_pts_90k,
    }
}

#[pymethods]
impl VideoReport {
    fn __repr__(&self) -> String {
        format!(
            "VideoReport(frames_emitted={}, keyframes={}, undecodable={}, keyframe_waits={})",
            self.frames_emitted,
            self.keyframes_emitted,
            self.frames_undecodable,
            self.keyframe_waits
        )
    }
}

/// What a video call asks for besides the segments: the core's configuration, from the
/// keyword arguments every video function shares.
struct Options<'a> {
    codec: &'a str,
    payload_type: Option<u8>,
    cvo_extension_id: Option<u8>,
    reorder_window: usize,
    fill_gaps: bool,
    on_loss: &'a str,
    ssrcs: Option<Vec<Option<u32>>>,
}

impl Options<'_> {
    fn config(&self) -> PyResult<VideoExtractConfig> {
        let codec = match self.codec.to_ascii_lowercase().as_str() {
            "vp8" => VideoCodec::Vp8,
            "vp9" => VideoCodec::Vp9,
            "h264" => VideoCodec::H264,
            "av1" => VideoCodec::Av1,
            other => {
                return Err(CoreError::Argument(format!("unknown video codec {other:?}")).into())
            }
        };
        let on_loss = match self.on_loss {
            "freeze" => OnLoss::Freeze,
            "black" => OnLoss::Black,
            "conceal" => OnLoss::Conceal,
            other => {
                return Err(CoreError::Argument(format!(
                    "unknown on_loss {other:?} (freeze, black, conceal)"
                ))
                .into())
            }
        };
        Ok(VideoExtractConfig {
            codec,
            payload_type: self.payload_type,
            cvo_extension_id: self.cvo_extension_id,
            reorder_window: self.reorder_window,
            on_loss,
            fill_gaps: self.fill_gaps,
            ssrcs: self.ssrcs.clone().unwrap_or_default(),
            ..VideoExtractConfig::default()
        })
    }
}

fn inputs(held: &[HeldSegment]) -> Vec<VideoSegmentInput<'_>> {
    segment_inputs(held, |capture, offset_ms, drift_ppm| VideoSegmentInput {
        capture,
        offset_ms,
        drift_ppm,
    })
}

fn fill_frames<'a>(fill: &'a [(u64, Bound<'_, PyBytes>, bool)]) -> Vec<FillFrame<'a>> {
    fill.iter()
        .map(|(pts, data, key)| FillFrame {
            pts_90k: *pts,
            data: data.as_bytes(),
            keyframe: *key,
        })
        .collect()
}

/// The frames a video extraction would write, as `NumPy` columns on the output timeline, and the
/// report with the plan of what the output shows where no new picture comes.
#[pyfunction]
#[pyo3(signature = (segments, *, codec, payload_type=None, cvo_extension_id=None,
                    reorder_window=128, fill_gaps=true, on_loss="freeze", ssrcs=None))]
#[allow(clippy::too_many_arguments)]
pub fn video_frames<'py>(
    py: Python<'py>,
    segments: Vec<SegmentArg<'py>>,
    codec: &str,
    payload_type: Option<u8>,
    cvo_extension_id: Option<u8>,
    reorder_window: usize,
    fill_gaps: bool,
    on_loss: &str,
    ssrcs: Option<Vec<Option<u32>>>,
) -> PyResult<(Bound<'py, PyDict>, VideoReport)> {
    let cfg = Options {
        codec,
        payload_type,
        cvo_extension_id,
        reorder_window,
        fill_gaps,
        on_loss,
        ssrcs,
    }
    .config()?;
    let held = hold_segments(&segments)?;
    let segs = inputs(&held);
    let (cols, report) = detached(py, || core::video_frames(&segs, &cfg))?;
    let out = PyDict::new(py);
    out.set_item("pts_90k", cols.pts_90k.into_pyarray(py))?;
    out.set_item("keyframe", cols.keyframe.into_pyarray(py))?;
    out.set_item("width", cols.width.into_pyarray(py))?;
    out.set_item("height", cols.height.into_pyarray(py))?;
    out.set_item("bytes", cols.bytes.into_pyarray(py))?;
    Ok((out, VideoReport::from(&report)))
}

/// Write one video track to `path`, remuxed, with `fill` frames (`(pts_90k, data, keyframe)`,
/// sorted) merged in by time.
#[pyfunction]
#[pyo3(signature = (segments, path, *, codec, container="auto", payload_type=None,
                    cvo_extension_id=None, fill=Vec::new(), reorder_window=128, fill_gaps=true,
                    on_loss="freeze", ssrcs=None))]
#[allow(clippy::too_many_arguments)]
pub fn extract_video(
    py: Python<'_>,
    segments: Vec<SegmentArg<'_>>,
    path: PathBuf,
    codec: &str,
    container: &str,
    payload_type: Option<u8>,
    cvo_extension_id: Option<u8>,
    fill: Vec<(u64, Bound<'_, PyBytes>, bool)>,
    reorder_window: usize,
    fill_gaps: bool,
    on_loss: &str,
    ssrcs: Option<Vec<Option<u32>>>,
) -> PyResult<VideoReport> {
    let cfg = Options {
        codec,
        payload_type,
        cvo_extension_id,
        reorder_window,
        fill_gaps,
        on_loss,
        ssrcs,
    }
    .config()?;
    let doc = match container {
        "auto" => DocChoice::ByCodec,
        "matroska" => DocChoice::Matroska,
        "webm" => DocChoice::Webm,
        other => {
            return Err(CoreError::Argument(format!(
                "unknown container {other:?} (auto, matroska, webm)"
            ))
            .into())
        }
    };
    let held = hold_segments(&segments)?;
    let segs = inputs(&held);
    let fill_frames = fill_frames(&fill);
    let out_file = File::create(&path).map_err(CoreError::create_output(&path))?;
    let report = detached(py, || {
        core::extract_video_filled(
            &segs,
            &cfg,
            &fill_frames,
            doc,
            BufWriter::with_capacity(OUT_BUFFER, out_file),
        )
    })?;
    Ok(VideoReport::from(&report))
}

/// Video and Opus audio of one participant in one Matroska file, interleaved by time.
/// `audio_offset_ms` is the audio's t=0 minus the video's t=0 on the call timeline.
#[pyfunction]
#[pyo3(signature = (video_segments, audio_segments, path, *, video_codec, audio_offset_ms,
                    video_payload_type=None, audio_payload_type=None, cvo_extension_id=None,
                    fill=Vec::new(), fill_gaps=true, fix_dtx=true, reorder_window=128,
                    on_loss="freeze", fec=true))]
#[allow(clippy::too_many_arguments, clippy::fn_params_excessive_bools)]
pub fn extract_av(
    py: Python<'_>,
    video_segments: Vec<SegmentArg<'_>>,
    audio_segments: Vec<SegmentArg<'_>>,
    path: PathBuf,
    video_codec: &str,
    audio_offset_ms: f64,
    video_payload_type: Option<u8>,
    audio_payload_type: Option<u8>,
    cvo_extension_id: Option<u8>,
    fill: Vec<(u64, Bound<'_, PyBytes>, bool)>,
    fill_gaps: bool,
    fix_dtx: bool,
    reorder_window: usize,
    on_loss: &str,
    fec: bool,
) -> PyResult<(VideoReport, crate::extract::AudioReport)> {
    let vcfg = Options {
        codec: video_codec,
        payload_type: video_payload_type,
        cvo_extension_id,
        reorder_window,
        fill_gaps,
        on_loss,
        ssrcs: None,
    }
    .config()?;
    let acfg = core::AudioExtractConfig {
        payload_type: audio_payload_type,
        codec: core::AudioCodec::Opus,
        channels: 2,
        fill_gaps,
        fix_dtx,
        container: core::AudioContainer::Matroska,
        reorder_window: 512,
        fec,
        ..core::AudioExtractConfig::default()
    };
    if !audio_offset_ms.is_finite() {
        return Err(CoreError::Argument("audio_offset_ms must be finite".to_owned()).into());
    }
    let vheld = hold_segments(&video_segments)?;
    let aheld = hold_segments(&audio_segments)?;
    let vsegs = inputs(&vheld);
    let asegs = crate::extract::inputs(&aheld);
    let fill_frames = fill_frames(&fill);
    let out_file = File::create(&path).map_err(CoreError::create_output(&path))?;
    let offset_ns = (audio_offset_ms * 1e6).round() as i64;
    let (vreport, areport) = detached(py, || {
        let (packets, areport) = core::collect_opus(&asegs, &acfg)?;
        let beside = core::AudioBeside {
            packets: &packets,
            offset_ns,
        };
        let vreport = core::extract_av(
            &vsegs,
            &vcfg,
            &fill_frames,
            beside,
            BufWriter::with_capacity(OUT_BUFFER, out_file),
        )?;
        Ok::<_, CoreError>((vreport, areport))
    })?;
    Ok((
        VideoReport::from(&vreport),
        crate::extract::AudioReport::from(&areport),
    ))
}

/// Annex B H.264 (start codes, as encoders write it) to the 4-byte length prefixes a Matroska
/// track stores.
#[pyfunction]
pub fn annexb_to_avcc<'py>(py: Python<'py>, data: &[u8]) -> Bound<'py, PyBytes> {
    PyBytes::new(py, &core::bitstream::h264::annexb_to_avcc(data))
}
