//! `remux_mp4`: a Matroska or `WebM` file remuxed into a fast-start MP4 by the core, in two passes
//! over the file (read here in chunks, with the GIL released); see `rawcore_core::remux`.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use pyo3::prelude::*;
use rawcore_core::remux::pictures::{PictureScan, ScanOutcome};
use rawcore_core::remux::{Plan, RemuxError, Scan, Select};

use crate::errors::CoreError;
use crate::gil::detached;

/// Bytes read per call into the core.
const CHUNK: usize = 1 << 20;

/// One track of the MP4.
#[pyclass(frozen, module = "rawcore._core")]
pub struct RemuxTrack {
    #[pyo3(get)]
    number: u64,
    #[pyo3(get)]
    kind: &'static str,
    #[pyo3(get)]
    codec: &'static str,
    #[pyo3(get)]
    frames: usize,
    #[pyo3(get)]
    start_s: f64,
    #[pyo3(get)]
    end_s: f64,
    #[pyo3(get)]
    width: u32,
    #[pyo3(get)]
    height: u32,
}

/// What `remux_mp4` did.
#[pyclass(frozen, module = "rawcore._core")]
pub struct RemuxReport {
    #[pyo3(get)]
    written: bool,
    #[pyo3(get)]
    reordered: Option<String>,
    #[pyo3(get)]
    bytes: u64,
    #[pyo3(get)]
    tracks: Vec<Py<RemuxTrack>>,
    #[pyo3(get)]
    truncated_at: Option<u64>,
}

fn each_chunk(
    path: &Path,
    mut f: impl FnMut(&[u8]) -> Result<(), CoreError>,
) -> Result<(), CoreError> {
    let mut file = File::open(path).map_err(CoreError::read_input(path))?;
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = file.read(&mut buf).map_err(CoreError::read_input(path))?;
        if n == 0 {
            return Ok(());
        }
        f(&buf[..n])?;
    }
}

fn write_mp4(source: &Path, output: &Path, plan: &Plan) -> Result<(), CoreError> {
    let file = File::create(output).map_err(CoreError::create_output(output))?;
    let mut out = BufWriter::with_capacity(4 * CHUNK, file);
    let write_err = CoreError::create_output(output);
    out.write_all(plan.header())
        .map_err(CoreError::create_output(output))?;
    let mut copy = plan.copy();
    each_chunk(source, |chunk| {
        copy.feed(chunk, &mut |payload: &[u8]| out.write_all(payload))
            .map_err(|e| match e {
                Ok(io) => CoreError::create_output(output)(io),
                Err(e) => CoreError::from(e),
            })
    })?;
    copy.finish()?;
    // Flushed, not synced: like every rawcore output, the file is renamed into place by the
    // caller once complete; durability against a power cut is the file system's.
    out.into_inner().map_err(|e| write_err(e.into_error()))?;
    Ok(())
}

/// Remux the first video and/or audio track of the Matroska/WebM file `source` into the MP4
/// `output`; `written` is False (and nothing written) when timestamps go backwards.
#[pyfunction]
#[pyo3(signature = (source, output, *, video=true, audio=true))]
pub fn remux_mp4(
    py: Python<'_>,
    source: PathBuf,
    output: PathBuf,
    video: bool,
    audio: bool,
) -> PyResult<RemuxReport> {
    let select = Select { video, audio };
    let outcome = detached(py, || -> Result<Result<Plan, String>, CoreError> {
        let mut scan = Scan::new(select);
        each_chunk(&source, |chunk| scan.feed(chunk).map_err(CoreError::from))?;
        match scan.finish() {
            Ok(plan) => {
                write_mp4(&source, &output, &plan)?;
                Ok(Ok(plan))
            }
            Err(e @ RemuxError::Reordered { .. }) => Ok(Err(e.to_string())),
            Err(e) => Err(e.into()),
        }
    })?;
    let plan = match outcome {
        Ok(plan) => plan,
        Err(reason) => {
            return Ok(RemuxReport {
                written: false,
                reordered: Some(reason),
                bytes: 0,
                tracks: Vec::new(),
                truncated_at: None,
            })
        }
    };
    let mut tracks = Vec::with_capacity(plan.tracks.len());
    for t in &plan.tracks {
        let track = RemuxTrack {
            number: t.number,
            kind: if t.codec == "opus" { "audio" } else { "video" },
            codec: t.codec,
            frames: t.frames,
            start_s: t.start_s,
            end_s: t.end_s,
            width: t.width,
            height: t.height,
        };
        tracks.push(Py::new(py, track)?);
    }
    Ok(RemuxReport {
        written: true,
        reordered: None,
        bytes: plan.total_bytes(),
        tracks,
        truncated_at: plan.truncated_at,
    })
}

/// Picture times and sizes of the first video track of a Matroska/WebM file, from headers.
#[pyclass(frozen, module = "rawcore._core")]
pub struct VideoPictures {
    #[pyo3(get)]
    codec: &'static str,
    #[pyo3(get)]
    times_s: Vec<f64>,
    #[pyo3(get)]
    width: u32,
    #[pyo3(get)]
    height: u32,
    #[pyo3(get)]
    sizes: Vec<(f64, u32, u32)>,
}

/// Read the picture times and sizes of the first video track of the Matroska/WebM file
/// `source` without decoding; None when it has no video track or its codec has no header
/// reader (then decode to find them).
#[pyfunction]
pub fn scan_pictures(py: Python<'_>, source: PathBuf) -> PyResult<Option<VideoPictures>> {
    let outcome = detached(py, || -> Result<ScanOutcome, CoreError> {
        let mut scan = PictureScan::new();
        let mut more = true;
        each_chunk(&source, |chunk| {
            if more {
                more = scan
                    .feed(chunk)
                    .map_err(|e| CoreError::from(RemuxError::from(e)))?;
            }
            Ok(())
        })?;
        scan.finish()
            .map_err(|e| CoreError::from(RemuxError::from(e)))
    })?;
    Ok(match outcome {
        ScanOutcome::Read(p) => Some(VideoPictures {
            codec: p.codec,
            times_s: p.times_s,
            width: p.width,
            height: p.height,
            sizes: p.sizes,
        }),
        ScanOutcome::NoVideo | ScanOutcome::Unsupported(_) => None,
    })
}
