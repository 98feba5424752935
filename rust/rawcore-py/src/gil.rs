//! The one way a long call enters the core (polars' `enter_polars`): the GIL released while the
//! core works, Ctrl-C honoured when it returns, and its error converted through the one mapping
//! in `errors.rs`.

use pyo3::prelude::*;

use crate::errors::CoreError;

/// Runs `work` with the GIL released, so other Python threads run meanwhile; then raises
/// `KeyboardInterrupt` if Ctrl-C came in during it, else the core's error as its Python class.
pub fn detached<T, E>(py: Python<'_>, work: impl Send + FnOnce() -> Result<T, E>) -> PyResult<T>
where
    T: Send,
    E: Send + Into<CoreError>,
{
    let result = py.detach(work);
    py.check_signals()?;
    result.map_err(|e| PyErr::from(e.into()))
}
