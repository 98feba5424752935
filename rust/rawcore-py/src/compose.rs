//! The compositor: an I420 canvas that keeps its prepared layers between frames. Pictures come
//! in as `NumPy` views of decoded planes (no copy) and are drawn with the GIL released.

use numpy::{IntoPyArray, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadwriteArray1};
use pyo3::prelude::*;
use rawcore_core::compose::{self, Picture, Plane, Shape};

use crate::errors::CoreError;
use crate::gil::detached;

/// One canvas of a composition and the per-box tables and masks it has prepared.
#[pyclass(module = "rawcore._core")]
pub struct Compositor {
    inner: compose::Compositor,
}

type Planes<'py> = (
    PyReadonlyArray1<'py, u8>,
    PyReadonlyArray1<'py, u8>,
    PyReadonlyArray1<'py, u8>,
);

#[pymethods]
impl Compositor {
    #[new]
    fn new(width: usize, height: usize) -> PyResult<Self> {
        let inner = compose::Compositor::new(width, height).map_err(CoreError::from)?;
        Ok(Self { inner })
    }

    #[getter]
    fn width(&self) -> usize {
        self.inner.width()
    }

    #[getter]
    fn height(&self) -> usize {
        self.inner.height()
    }

    /// Paint the whole canvas one `Y'CbCr` colour.
    fn fill(&mut self, y: u8, u: u8, v: u8) {
        self.inner.fill(y, u, v);
    }

    /// Draw an I420 picture into a box (canvas fractions), cover-scaled and clipped to `shape`.
    #[pyo3(signature = (planes, strides, width, height, r#box, shape="rect", radius=0.0, picture_id=None))]
    #[allow(clippy::too_many_arguments)]
    fn draw(
        &mut self,
        py: Python<'_>,
        planes: Planes<'_>,
        strides: (usize, usize, usize),
        width: usize,
        height: usize,
        r#box: (f64, f64, f64, f64),
        shape: &str,
        radius: f64,
        picture_id: Option<u64>,
    ) -> PyResult<()> {
        let shape = Shape::parse(shape, radius).map_err(CoreError::from)?;
        let (y, u, v) = (
            planes.0.as_slice()?,
            planes.1.as_slice()?,
            planes.2.as_slice()?,
        );
        let picture = Picture {
            width,
            height,
            planes: [
                Plane {
                    data: y,
                    stride: strides.0,
                },
                Plane {
                    data: u,
                    stride: strides.1,
                },
                Plane {
                    data: v,
                    stride: strides.2,
                },
            ],
        };
        let bx = [r#box.0, r#box.1, r#box.2, r#box.3];
        let inner = &mut self.inner;
        detached(py, move || inner.draw(&picture, bx, shape, picture_id))
    }

    /// The canvas as it stands: a `(height * 3 / 2, width)` array of the Y, U and V planes.
    fn frame<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<u8>>> {
        let (w, h) = (self.inner.width(), self.inner.height());
        let flat = self.inner.frame().to_vec().into_pyarray(py);
        flat.reshape([h * 3 / 2, w])
    }

    /// Copy the canvas into three writable I420 planes (an `av.VideoFrame`'s own buffers) whose
    /// rows are `strides` bytes apart, with the GIL released: no intermediate array.
    fn frame_into(
        &self,
        py: Python<'_>,
        planes: (
            PyReadwriteArray1<'_, u8>,
            PyReadwriteArray1<'_, u8>,
            PyReadwriteArray1<'_, u8>,
        ),
        strides: (usize, usize, usize),
    ) -> PyResult<()> {
        let (mut y, mut u, mut v) = planes;
        let dst = [y.as_slice_mut()?, u.as_slice_mut()?, v.as_slice_mut()?];
        let inner = &self.inner;
        detached(py, move || {
            inner.copy_into(dst, [strides.0, strides.1, strides.2])
        })
    }
}

/// BT.601 limited-range `Y'CbCr` of an RGB colour.
#[pyfunction]
pub fn rgb_to_yuv(r: u8, g: u8, b: u8) -> (u8, u8, u8) {
    compose::rgb_to_yuv(r, g, b)
}
