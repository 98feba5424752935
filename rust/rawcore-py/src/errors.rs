//! The one mapping from core errors to the Python hierarchy in `rawcore.errors`.
//!
//! The classes are defined in Python (so pure-Python layers raise the same types) and
//! imported here by name; every core error kind maps to exactly one of them.

use pyo3::import_exception;
use pyo3::PyErr;
use rawcore_core::{ExtractError, MuxError, VideoError};

import_exception!(rawcore.errors, RawcoreError);
import_exception!(rawcore.errors, InputError);
import_exception!(rawcore.errors, CaptureError);
import_exception!(rawcore.errors, SdpError);
import_exception!(rawcore.errors, OutputError);

pub fn capture_err(e: rawcore_core::RtpdumpError) -> PyErr {
    CaptureError::new_err(e.to_string())
}

pub fn sdp_err(e: rawcore_core::SdpError) -> PyErr {
    SdpError::new_err(e.to_string())
}

pub fn extract_err(e: ExtractError) -> PyErr {
    let msg = e.to_string();
    match e {
        ExtractError::Capture { .. } | ExtractError::NoPackets { .. } => CaptureError::new_err(msg),
        ExtractError::UnsupportedCodec { .. }
        | ExtractError::NegativeOffset { .. }
        | ExtractError::Mux(MuxError::NotInWebm { .. }) => InputError::new_err(msg),
        ExtractError::Mux(MuxError::Io { .. }) => OutputError::new_err(msg),
        // The writer's own invariants (track numbers, monotonic time, lacing): a bug here.
        ExtractError::Mux(_) | ExtractError::Stopped { .. } => RawcoreError::new_err(msg),
    }
}

pub fn video_err(e: VideoError) -> PyErr {
    let msg = e.to_string();
    match e {
        VideoError::Capture { .. } | VideoError::NoPackets { .. } | VideoError::NoFrames { .. } => {
            CaptureError::new_err(msg)
        }
        VideoError::NegativeOffset { .. } | VideoError::Mux(MuxError::NotInWebm { .. }) => {
            InputError::new_err(msg)
        }
        VideoError::Mux(MuxError::Io { .. }) => OutputError::new_err(msg),
        VideoError::Mux(_) | VideoError::Stopped { .. } => RawcoreError::new_err(msg),
    }
}

/// A core error carried out of a GIL-free section, converted to Python once back.
pub enum CoreError {
    Extract(ExtractError),
    Video(VideoError),
}

impl From<CoreError> for PyErr {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::Extract(e) => extract_err(e),
            CoreError::Video(e) => video_err(e),
        }
    }
}
