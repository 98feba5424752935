//! The one mapping from core errors to the Python hierarchy in `rawcore.errors`.
//!
//! The classes are defined in Python (so pure-Python layers raise the same types) and
//! imported here by name; every core error kind maps to exactly one of them.

use pyo3::import_exception;
use pyo3::PyErr;

import_exception!(rawcore.errors, CaptureError);
import_exception!(rawcore.errors, SdpError);

// By value so it fits `map_err` directly.
#[allow(clippy::needless_pass_by_value)]
pub fn capture_err(e: rawcore_core::RtpdumpError) -> PyErr {
    CaptureError::new_err(e.to_string())
}

#[allow(clippy::needless_pass_by_value)]
pub fn sdp_err(e: rawcore_core::SdpError) -> PyErr {
    SdpError::new_err(e.to_string())
}
