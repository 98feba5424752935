//! The mix in the core: Opus tracks from their captures to limited PCM blocks, pulled from
//! Python one block at a time with the GIL released, the tracks of a block decoded on threads
//! of their own; and the limiter on its own, for mixes of decoded files.

use std::num::NonZeroUsize;
use std::sync::Mutex;

use numpy::{IntoPyArray, PyArray2, PyArrayMethods, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::prelude::*;
use rawcore_core as core;
use rawcore_core::mix::{Limiter, MixTrack, OpusMixer, Track};
use rawcore_core::{AudioSegmentInput, OpusStream};

use crate::buffer::{hold_segments, HeldSegment, SegmentArg};
use crate::errors::CoreError;
use crate::extract::{config, inputs, AudioReport};
use crate::gil::detached;

/// A track as Python passes it: `(segments, offset in mix frames, linear gain, payload type)`.
type TrackArg<'py> = (Vec<SegmentArg<'py>>, i64, f32, Option<u8>);

fn check_channels(channels: u8) -> PyResult<()> {
    if channels == 1 || channels == 2 {
        Ok(())
    } else {
        Err(CoreError::Argument(format!(
            "channels must be 1 (mono) or 2 (stereo), not {channels}"
        ))
        .into())
    }
}

fn to_array(
    py: Python<'_>,
    samples: Vec<f32>,
    channels: usize,
) -> PyResult<Bound<'_, PyArray2<f32>>> {
    let frames = samples.len() / channels;
    samples.into_pyarray(py).reshape([frames, channels])
}

/// A segment whose capture the mix holds for as long as it lives (see [`OpusMix`]).
#[allow(unsafe_code)]
fn held_for_the_mix(segment: AudioSegmentInput<'_>) -> AudioSegmentInput<'static> {
    // SAFETY: the capture is a buffer export held in `OpusMix::_captures` (or a copy owned
    // there, whose heap bytes do not move with it), which outlives the mixer borrowing it:
    // `mixer` is declared before `_captures`, so it is dropped first, and the mixer never hands
    // the borrow out. The exporter cannot free or resize the memory while the export is held
    // (an `mmap` refuses to close).
    unsafe { std::mem::transmute::<AudioSegmentInput<'_>, AudioSegmentInput<'static>>(segment) }
}

/// Renders a block's tracks on up to one thread per core (the calling one included).
fn render_in_parallel(tracks: &mut [Track<'_>]) {
    let threads = std::thread::available_parallelism()
        .map_or(1, NonZeroUsize::get)
        .min(tracks.len());
    if threads <= 1 {
        tracks.iter_mut().for_each(Track::render);
        return;
    }
    let per_thread = tracks.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let mut chunks = tracks.chunks_mut(per_thread);
        let own = chunks.next();
        for chunk in chunks {
            scope.spawn(move || chunk.iter_mut().for_each(Track::render));
        }
        if let Some(chunk) = own {
            chunk.iter_mut().for_each(Track::render);
        }
    });
}

/// A streaming mix of Opus tracks decoded with libopus, summed and limited in the core. Each
/// track's packets are pulled from its captures as the mix goes, so memory does not grow with
/// the call's length: the captures (an `mmap` each, normally) are borrowed, not copied.
#[pyclass(module = "rawcore._core", frozen)]
pub struct OpusMix {
    // Declared before `_captures`, which it borrows: fields are dropped in order.
    mixer: Mutex<OpusMixer<'static>>,
    reports: Vec<Py<AudioReport>>,
    _captures: Vec<Vec<HeldSegment>>,
}

#[pymethods]
impl OpusMix {
    #[new]
    #[pyo3(signature = (tracks, *, channels=1, end=None, fill_gaps=true, fix_dtx=true,
                        reorder_window=512, fec=true))]
    #[allow(clippy::too_many_arguments, clippy::fn_params_excessive_bools)]
    fn new(
        py: Python<'_>,
        tracks: Vec<TrackArg<'_>>,
        channels: u8,
        end: Option<u64>,
        fill_gaps: bool,
        fix_dtx: bool,
        reorder_window: usize,
        fec: bool,
    ) -> PyResult<Self> {
        check_channels(channels)?;
        let mut mix_tracks = Vec::with_capacity(tracks.len());
        let mut reports = Vec::with_capacity(tracks.len());
        let mut captures = Vec::with_capacity(tracks.len());
        for (segments, offset, gain, payload_type) in &tracks {
            if !gain.is_finite() || *gain < 0.0 {
                return Err(CoreError::Argument(format!(
                    "a track gain of {gain} cannot be applied"
                ))
                .into());
            }
            let cfg = config(
                "opus",
                "matroska",
                *payload_type,
                2,
                fill_gaps,
                fix_dtx,
                reorder_window,
                fec,
            )?;
            let held = hold_segments(segments)?;
            let segs: Vec<AudioSegmentInput<'static>> =
                inputs(&held).into_iter().map(held_for_the_mix).collect();
            let (offset, gain) = (*offset, *gain);
            // The report first, from a walk that keeps nothing; then the stream the mix pulls.
            let (track, report) = detached(py, || {
                let report = core::survey_opus(&segs, &cfg)?;
                let stream = OpusStream::new(&segs, &cfg)?;
                Ok::<_, core::ExtractError>((MixTrack::streaming(stream, offset, gain), report))
            })?;
            mix_tracks.push(track);
            reports.push(Py::new(py, AudioReport::from(&report))?);
            captures.push(held);
        }
        Ok(Self {
            mixer: Mutex::new(OpusMixer::new(mix_tracks, channels, end)),
            reports,
            _captures: captures,
        })
    }

    /// The next block of about `frames` limited frames, shape (n, channels), float32; None when
    /// the mix is over.
    #[pyo3(signature = (frames=48_000))]
    fn next_block<'py>(
        &self,
        py: Python<'py>,
        frames: usize,
    ) -> PyResult<Option<Bound<'py, PyArray2<f32>>>> {
        let (block, channels) = detached(py, || {
            let mut mixer = self.mixer.lock().map_err(|_| {
                CoreError::Argument("the mix failed earlier and cannot go on".to_owned())
            })?;
            let block = mixer.next_block_with(frames.max(1), render_in_parallel)?;
            Ok::<_, CoreError>((block, usize::from(mixer.channels())))
        })?;
        if block.is_empty() {
            return Ok(None);
        }
        to_array(py, block, channels).map(Some)
    }

    /// Per track, per segment: bytes of its capture read so far.
    #[getter]
    fn walked(&self) -> PyResult<Vec<Vec<usize>>> {
        let mixer = self
            .mixer
            .lock()
            .map_err(|_| CoreError::Argument("the mix failed earlier".to_owned()))?;
        Ok(mixer.walked())
    }

    /// Per track: what collecting its packets did (the extraction's report).
    #[getter]
    fn reports(&self, py: Python<'_>) -> Vec<Py<AudioReport>> {
        self.reports.iter().map(|r| r.clone_ref(py)).collect()
    }

    /// Per track: frames decoded so far.
    #[getter]
    fn decoded(&self) -> PyResult<Vec<u64>> {
        Ok(self.stats()?.decoded)
    }

    /// Milliseconds played with the limiter's gain below 1.
    #[getter]
    fn limited_ms(&self) -> PyResult<u64> {
        let s = self.stats()?;
        Ok(s.limited_blocks * s.limiter_block * 1000 / u64::from(core::mix::MIX_RATE))
    }

    /// Packets libopus rejected (concealed instead).
    #[getter]
    fn decode_errors(&self) -> PyResult<u64> {
        Ok(self.stats()?.decode_errors)
    }

    /// Milliseconds of DTX or pause fill played as silence without decoding (summed over the
    /// tracks).
    #[getter]
    fn skipped_ms(&self) -> PyResult<u64> {
        Ok(self.stats()?.skipped_frames * 1000 / u64::from(core::mix::MIX_RATE))
    }
}

impl OpusMix {
    fn stats(&self) -> PyResult<core::mix::MixStats> {
        let mixer = self
            .mixer
            .lock()
            .map_err(|_| CoreError::Argument("the mix failed earlier".to_owned()))?;
        Ok(mixer.stats())
    }
}

/// The mix's look-ahead peak limiter over (n, channels) float32 blocks.
#[pyclass(module = "rawcore._core", frozen)]
pub struct MixLimiter {
    limiter: Mutex<Limiter>,
    channels: usize,
}

#[pymethods]
impl MixLimiter {
    #[new]
    fn new(rate: u32, channels: u8) -> PyResult<Self> {
        check_channels(channels)?;
        if rate == 0 {
            return Err(CoreError::Argument("the sample rate must be positive".to_owned()).into());
        }
        Ok(Self {
            limiter: Mutex::new(Limiter::new(rate, channels)),
            channels: usize::from(channels),
        })
    }

    /// Feed a block; returns the limited samples that are final so far.
    fn process<'py>(
        &self,
        py: Python<'py>,
        block: PyReadonlyArray2<'py, f32>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        if block.shape()[1] != self.channels {
            return Err(CoreError::Argument(format!(
                "expected {} channel(s), got {}",
                self.channels,
                block.shape()[1]
            ))
            .into());
        }
        let samples = block.as_slice().map_or_else(
            |_| block.as_array().iter().copied().collect(),
            <[f32]>::to_vec,
        );
        let out = detached(py, || {
            let mut out = Vec::with_capacity(samples.len() + 1024);
            self.lock()?.process(&samples, &mut out);
            Ok::<_, CoreError>(out)
        })?;
        to_array(py, out, self.channels)
    }

    /// Everything still held back (silence is assumed to follow).
    fn flush<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let mut out = Vec::new();
        self.lock()?.flush(&mut out);
        to_array(py, out, self.channels)
    }

    /// Frames per gain block (1 ms).
    #[getter]
    fn block(&self) -> PyResult<usize> {
        Ok(self.lock()?.block())
    }

    /// Blocks played with a gain below 1.
    #[getter]
    fn limited_blocks(&self) -> PyResult<u64> {
        Ok(self.lock()?.limited_blocks())
    }

    /// Samples clipped as a last resort against float rounding (expected 0).
    #[getter]
    fn clipped_samples(&self) -> PyResult<u64> {
        Ok(self.lock()?.clipped_samples())
    }

    /// The ceiling as a linear amplitude.
    #[getter]
    fn ceiling(&self) -> PyResult<f32> {
        Ok(self.lock()?.ceiling())
    }
}

impl MixLimiter {
    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Limiter>, CoreError> {
        self.limiter
            .lock()
            .map_err(|_| CoreError::Argument("the limiter failed earlier".to_owned()))
    }
}
