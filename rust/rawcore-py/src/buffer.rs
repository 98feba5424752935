//! Borrowing a Python buffer as `&[u8]` while the GIL is released.
//!
//! Captures can be gigabytes, so they are never copied into Rust: a read-only buffer
//! (`bytes`, an `mmap` opened for reading, a read-only `memoryview`) is borrowed in place.
//! A writable buffer could change under us once the GIL is gone, so it is copied first.
#![allow(unsafe_code)]

use pyo3::buffer::PyBuffer;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;

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

    /// Run `f` over the bytes with the GIL released.
    pub fn with_slice<T: Send>(&self, py: Python<'_>, f: impl FnOnce(&[u8]) -> T + Send) -> T {
        let slice = self.as_slice();
        py.detach(|| f(slice))
    }
}

/// Segments as Python passes them: (capture buffer, offset in ms), held for one call.
pub type HeldSegments = Vec<(ReadOnlyBytes, i64)>;

/// Borrows every segment's buffer.
pub fn hold_segments(segments: &[(Bound<'_, PyAny>, i64)]) -> PyResult<HeldSegments> {
    segments
        .iter()
        .map(|(buf, offset)| Ok((ReadOnlyBytes::get(buf)?, *offset)))
        .collect()
}

/// The held segments as the core's inputs (audio and video inputs share this shape).
pub fn segment_inputs<'a, T>(
    held: &'a [(ReadOnlyBytes, i64)],
    make: impl Fn(&'a [u8], i64) -> T,
) -> Vec<T> {
    held.iter()
        .map(|(b, offset)| make(b.as_slice(), *offset))
        .collect()
}
