//! Borrowing a Python buffer as `&[u8]` while the GIL is released.
//!
//! Captures can be gigabytes, so they are never copied into Rust: a read-only buffer
//! (`bytes`, an `mmap` opened for reading, a read-only `memoryview`) is borrowed in place.
//! A writable buffer could change under us once the GIL is gone, so it is copied first.
#![allow(unsafe_code)]

use pyo3::buffer::PyBuffer;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use rawcore_core::timeline::MAX_DRIFT_PPM;

use crate::errors::CoreError;

pub enum ReadOnlyBytes {
    Borrowed(PyBuffer<u8>),
    Copied(Vec<u8>),
}

impl ReadOnlyBytes {
    pub fn get(obj: &Bound<'_, PyAny>) -> PyResult<Self> {
        let buf = PyBuffer::<u8>::get(obj).map_err(|_| {
            PyTypeError::new_err("expected a bytes-like object (bytes, mmap, memoryview)")
        })?;
        if !buf.is_c_contiguous() {
            return Err(PyTypeError::new_err("expected a contiguous buffer"));
        }
        if buf.readonly() {
            Ok(Self::Borrowed(buf))
        } else {
            Ok(Self::Copied(buf.to_vec(obj.py())?))
        }
    }

    /// The bytes, valid for as long as `self` holds the buffer export.
    pub fn as_slice(&self) -> &[u8] {
        match self {
            Self::Borrowed(buf) => {
                let len = buf.len_bytes();
                if len == 0 {
                    return &[];
                }
                // SAFETY: `buf` keeps the exporter's buffer alive (and un-resizable) while
                // `self` lives, which bounds the returned lifetime; the exporter declared it
                // read-only and C-contiguous, and `len` is its size in bytes.
                unsafe { std::slice::from_raw_parts(buf.buf_ptr() as *const u8, len) }
            }
            Self::Copied(v) => v,
        }
    }
}

/// A segment as Python passes it: `(capture buffer, offset in ms)` or
/// `(capture buffer, offset in ms, clock drift in ppm)`.
#[derive(FromPyObject)]
pub enum SegmentArg<'py> {
    Drifting((Bound<'py, PyAny>, i64, f64)),
    Plain((Bound<'py, PyAny>, i64)),
}

/// One segment held for one call: its bytes, offset (ms) and clock drift (ppm).
pub struct HeldSegment {
    pub bytes: ReadOnlyBytes,
    pub offset_ms: i64,
    pub drift_ppm: f64,
}

/// Borrows every segment's buffer.
pub fn hold_segments(segments: &[SegmentArg<'_>]) -> PyResult<Vec<HeldSegment>> {
    segments
        .iter()
        .map(|arg| {
            let (buf, offset_ms, drift_ppm) = match arg {
                SegmentArg::Drifting((buf, offset, drift)) => (buf, *offset, *drift),
                SegmentArg::Plain((buf, offset)) => (buf, *offset, 0.0),
            };
            if !drift_ppm.is_finite() || drift_ppm.abs() > MAX_DRIFT_PPM {
                return Err(CoreError::Argument(format!(
                    "clock drift {drift_ppm} ppm is outside ±{MAX_DRIFT_PPM} ppm"
                ))
                .into());
            }
            Ok(HeldSegment {
                bytes: ReadOnlyBytes::get(buf)?,
                offset_ms,
                drift_ppm,
            })
        })
        .collect()
}

/// The held segments as the core's inputs (audio and video inputs share this shape).
pub fn segment_inputs<'a, T>(
    held: &'a [HeldSegment],
    make: impl Fn(&'a [u8], i64, f64) -> T,
) -> Vec<T> {
    held.iter()
        .map(|h| make(h.bytes.as_slice(), h.offset_ms, h.drift_ppm))
        .collect()
}
