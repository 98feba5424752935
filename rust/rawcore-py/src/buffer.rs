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

    /// Run `f` over the bytes with the GIL released.
    pub fn with_slice<T: Send>(&self, py: Python<'_>, f: impl FnOnce(&[u8]) -> T + Send) -> T {
        match self {
            Self::Borrowed(buf) => {
                let len = buf.len_bytes();
                if len == 0 {
                    return py.detach(|| f(&[]));
                }
                let ptr = buf.buf_ptr() as usize;
                py.detach(move || {
                    // SAFETY: `buf` holds the exporter's buffer alive for this whole call, the
                    // exporter declared it read-only and C-contiguous, and `len` is its size in
                    // bytes; nothing can write to it or free it while we hold the export.
                    let slice = unsafe { std::slice::from_raw_parts(ptr as *const u8, len) };
                    f(slice)
                })
            }
            Self::Copied(v) => py.detach(|| f(v)),
        }
    }
}
