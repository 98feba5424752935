//! Frozen result classes: owned snapshots of core values, built once per call.

use pyo3::prelude::*;
use rawcore_core as core;

/// The rtpdump file header: where the capture was recorded and when it started.
#[pyclass(frozen, get_all, module = "rawcore._core")]
pub struct FileHeader {
    address: String,
    port: u16,
    start_unix_us: u64,
    source: u32,
    source_port: u16,
}

impl From<core::FileHeader> for FileHeader {
    fn from(h: core::FileHeader) -> Self {
        Self {
            start_unix_us: h.start_unix_us(),
            address: h.address,
            port: h.port,
            source: h.source,
            source_port: h.source_port,
        }
    }
}

/// Statistics of one RTP stream (one SSRC) in a capture.
#[pyclass(frozen, get_all, module = "rawcore._core")]
pub struct StreamStats {
    ssrc: u32,
    payload_type: u8,
    clock_rate: Option<u32>,
    packets: u64,
    bytes: u64,
    expected: u64,
    lost: u64,
    recovered_rtx: u64,
    duplicates: u64,
    reordered: u64,
    late: u64,
    padding_only: u64,
    jitter: f64,
    jitter_ms: Option<f64>,
    first_arrival_ms: u32,
    last_arrival_ms: u32,
    first_seq: u64,
    last_seq: u64,
    first_rtp_ts: u64,
    last_rtp_ts: u64,
    first_rtp_ts_raw: u32,
    marker_count: u64,
    sender_reports: u64,
    is_rtx: bool,
}

impl From<core::StreamStats> for StreamStats {
    fn from(s: core::StreamStats) -> Self {
        Self {
            ssrc: s.ssrc,
            payload_type: s.payload_type,
            clock_rate: s.clock_rate,
            packets: s.packets,
            bytes: s.bytes,
            expected: s.expected,
            lost: s.lost,
            recovered_rtx: s.recovered_rtx,
            duplicates: s.duplicates,
            reordered: s.reordered,
            late: s.late,
            padding_only: s.padding_only,
            jitter: s.jitter,
            jitter_ms: s.jitter_ms,
            first_arrival_ms: s.first_arrival_ms,
            last_arrival_ms: s.last_arrival_ms,
            first_seq: s.first_seq,
            last_seq: s.last_seq,
            first_rtp_ts: s.first_rtp_ts,
            last_rtp_ts: s.last_rtp_ts,
            first_rtp_ts_raw: s.first_rtp_ts_raw,
            marker_count: s.marker_count,
            sender_reports: s.sender_reports,
            is_rtx: s.is_rtx,
        }
    }
}

#[pymethods]
impl StreamStats {
    /// Span of RTP time covered, in seconds, when the clock rate is known.
    #[getter]
    fn rtp_duration_s(&self) -> Option<f64> {
        self.clock_rate
            .filter(|&r| r > 0)
            .map(|r| (self.last_rtp_ts - self.first_rtp_ts) as f64 / f64::from(r))
    }

    fn __repr__(&self) -> String {
        format!(
            "StreamStats(ssrc={:#010x}, pt={}, packets={}, lost={}, duplicates={}, rtx={})",
            self.ssrc, self.payload_type, self.packets, self.lost, self.duplicates, self.is_rtx
        )
    }
}

/// One RTCP Sender Report seen in a capture.
#[pyclass(frozen, get_all, module = "rawcore._core")]
pub struct SenderReport {
    ssrc: u32,
    ntp: u64,
    ntp_unix_ms: f64,
    rtp_ts: u32,
    arrival_ms: u32,
    packet_count: u32,
    octet_count: u32,
}

impl From<core::SenderReportRecord> for SenderReport {
    fn from(r: core::SenderReportRecord) -> Self {
        Self {
            ssrc: r.ssrc,
            ntp: r.ntp,
            ntp_unix_ms: r.unix_ms_from_ntp,
            rtp_ts: r.rtp_ts,
            arrival_ms: r.arrival_ms,
            packet_count: r.packet_count,
            octet_count: r.octet_count,
        }
    }
}

/// Everything one pass over a capture learned.
#[pyclass(frozen, get_all, module = "rawcore._core")]
pub struct CaptureReport {
    header: Py<FileHeader>,
    streams: Vec<Py<StreamStats>>,
    sender_reports: Vec<Py<SenderReport>>,
    cnames: Vec<(u32, String)>,
    bye_ssrcs: Vec<u32>,
    records: u64,
    rtp_records: u64,
    rtcp_records: u64,
    truncated_records: u64,
    invalid_records: u64,
    warnings: Vec<(usize, String)>,
}

impl CaptureReport {
    pub fn convert(py: Python<'_>, r: core::CaptureReport) -> PyResult<Self> {
        Ok(Self {
            header: Py::new(py, FileHeader::from(r.header))?,
            streams: r
                .streams
                .into_iter()
                .map(|s| Py::new(py, StreamStats::from(s)))
                .collect::<PyResult<_>>()?,
            sender_reports: r
                .sender_reports
                .into_iter()
                .map(|s| Py::new(py, SenderReport::from(s)))
                .collect::<PyResult<_>>()?,
            cnames: r.cnames,
            bye_ssrcs: r.bye_ssrcs,
            records: r.records,
            rtp_records: r.rtp_records,
            rtcp_records: r.rtcp_records,
            truncated_records: r.truncated_records,
            invalid_records: r.invalid_records,
            warnings: r
                .warnings
                .into_iter()
                .map(|w| (w.byte_offset, w.message))
                .collect(),
        })
    }
}

#[pymethods]
impl CaptureReport {
    fn __repr__(&self) -> String {
        format!(
            "CaptureReport(records={}, streams={}, sender_reports={}, warnings={})",
            self.records,
            self.streams.len(),
            self.sender_reports.len(),
            self.warnings.len()
        )
    }
}

/// An `a=rtpmap` line.
#[pyclass(frozen, get_all, module = "rawcore._core")]
#[derive(Clone)]
pub struct RtpMap {
    payload_type: u8,
    encoding: String,
    clock_rate: u32,
    channels: Option<u16>,
}

/// An `a=extmap` line.
#[pyclass(frozen, get_all, module = "rawcore._core")]
#[derive(Clone)]
pub struct ExtMap {
    id: u8,
    direction: Option<String>,
    uri: String,
}

/// One `m=` section of an SDP.
#[pyclass(frozen, get_all, module = "rawcore._core")]
pub struct MediaDescription {
    kind: String,
    port: u16,
    protocol: String,
    formats: Vec<u16>,
    rtpmaps: Vec<RtpMap>,
    fmtps: Vec<(u8, String)>,
    rtx: Vec<(u8, u8)>,
    extmaps: Vec<ExtMap>,
    ssrcs: Vec<(u32, String)>,
    direction: Option<String>,
    mid: Option<String>,
}

impl From<core::MediaDescription> for MediaDescription {
    fn from(m: core::MediaDescription) -> Self {
        Self {
            kind: m.kind,
            port: m.port,
            protocol: m.protocol,
            formats: m.formats.into_iter().map(u16::from).collect(),
            rtpmaps: m
                .rtpmaps
                .into_iter()
                .map(|r| RtpMap {
                    payload_type: r.payload_type,
                    encoding: r.encoding,
                    clock_rate: r.clock_rate,
                    channels: r.channels,
                })
                .collect(),
            fmtps: m.fmtps,
            rtx: m.rtx,
            extmaps: m
                .extmaps
                .into_iter()
                .map(|e| ExtMap {
                    id: e.id,
                    direction: e.direction,
                    uri: e.uri,
                })
                .collect(),
            ssrcs: m.ssrcs,
            direction: m.direction,
            mid: m.mid,
        }
    }
}

/// A parsed SDP document.
#[pyclass(frozen, get_all, module = "rawcore._core")]
pub struct Sdp {
    media: Vec<Py<MediaDescription>>,
}

impl Sdp {
    pub fn convert(py: Python<'_>, s: core::Sdp) -> PyResult<Self> {
        Ok(Self {
            media: s
                .media
                .into_iter()
                .map(|m| Py::new(py, MediaDescription::from(m)))
                .collect::<PyResult<_>>()?,
        })
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<FileHeader>()?;
    m.add_class::<StreamStats>()?;
    m.add_class::<SenderReport>()?;
    m.add_class::<CaptureReport>()?;
    m.add_class::<RtpMap>()?;
    m.add_class::<ExtMap>()?;
    m.add_class::<MediaDescription>()?;
    m.add_class::<Sdp>()?;
    Ok(())
}
