//! `split_capture`: a pcap, pcapng or Janus `.mjr` file in, one rtpdump capture per RTP stream
//! out, with what the core learned about each stream (addresses, SSRC, payload type, codec).

use pyo3::prelude::*;
use pyo3::types::PyBytes;
use rawcore_core as core;

use crate::buffer::ReadOnlyBytes;
use crate::gil::detached;

/// One RTP stream of a split capture.
#[pyclass(frozen, module = "rawcore._core")]
pub struct SplitStream {
    #[pyo3(get)]
    src: String,
    #[pyo3(get)]
    src_port: u16,
    #[pyo3(get)]
    dst: String,
    #[pyo3(get)]
    dst_port: u16,
    #[pyo3(get)]
    transport: &'static str,
    #[pyo3(get)]
    ssrc: u32,
    #[pyo3(get)]
    payload_type: u8,
    #[pyo3(get)]
    rtp_packets: u64,
    #[pyo3(get)]
    rtcp_packets: u64,
    #[pyo3(get)]
    codec: Option<&'static str>,
    #[pyo3(get)]
    clock_rate: Option<u32>,
    #[pyo3(get)]
    channels: Option<u8>,
    #[pyo3(get)]
    video: Option<bool>,
    #[pyo3(get)]
    capture: Py<PyBytes>,
}

#[pymethods]
impl SplitStream {
    fn __repr__(&self) -> String {
        format!(
            "SplitStream(src={}:{}, ssrc={:#010x}, pt={}, codec={:?}, packets={})",
            self.src, self.src_port, self.ssrc, self.payload_type, self.codec, self.rtp_packets
        )
    }
}

/// A capture split into rtpdump streams.
#[pyclass(frozen, module = "rawcore._core")]
pub struct CaptureSplit {
    #[pyo3(get)]
    format: &'static str,
    #[pyo3(get)]
    start_unix_us: u64,
    #[pyo3(get)]
    streams: Vec<Py<SplitStream>>,
    #[pyo3(get)]
    skipped_not_rtp: u64,
    #[pyo3(get)]
    skipped_frames: u64,
    #[pyo3(get)]
    warnings: Vec<(usize, String)>,
    #[pyo3(get)]
    mjr_kind: Option<char>,
    #[pyo3(get)]
    mjr_codec: Option<String>,
    #[pyo3(get)]
    mjr_version: Option<u8>,
    #[pyo3(get)]
    mjr_encrypted: bool,
}

/// Split a pcap, pcapng or Janus `.mjr` capture into one rtpdump capture per RTP stream.
#[pyfunction]
pub fn split_capture(py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<CaptureSplit> {
    let bytes = ReadOnlyBytes::get(data)?;
    let slice = bytes.as_slice();
    let report = detached(py, || core::split_capture(slice))?;
    let mut streams = Vec::with_capacity(report.streams.len());
    for s in report.streams {
        let stream = SplitStream {
            capture: PyBytes::new(py, &s.capture).unbind(),
            src: s.src,
            src_port: s.src_port,
            dst: s.dst,
            dst_port: s.dst_port,
            transport: s.transport,
            ssrc: s.ssrc,
            payload_type: s.payload_type,
            rtp_packets: s.rtp_packets,
            rtcp_packets: s.rtcp_packets,
            codec: s.codec.map(|c| c.codec),
            clock_rate: s.codec.map(|c| c.clock_rate),
            channels: s.codec.and_then(|c| c.channels),
            video: s.codec.map(|c| c.video),
        };
        streams.push(Py::new(py, stream)?);
    }
    let mjr = report.mjr.as_ref();
    Ok(CaptureSplit {
        format: report.format,
        start_unix_us: report.start_unix_us,
        streams,
        skipped_not_rtp: report.skipped_not_rtp,
        skipped_frames: report.skipped_frames,
        warnings: report.warnings,
        mjr_kind: mjr.map(|h| h.kind),
        mjr_codec: mjr.map(|h| h.codec.clone()),
        mjr_version: mjr.map(|h| h.version),
        mjr_encrypted: mjr.is_some_and(|h| h.encrypted),
    })
}
