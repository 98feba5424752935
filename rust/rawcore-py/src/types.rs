//! Frozen result classes of the capture analysis and the SDP parser: owned snapshots of core
//! values, declared with [`mirror!`] and built once per call.

use pyo3::prelude::*;
use rawcore_core as core;

use crate::mirror::mirror;

mirror! {
    /// The rtpdump file header: where the capture was recorded and when it started.
    #[derive(Clone)]
    pub struct FileHeader from core::FileHeader as h {
        address: String,
        port: u16,
        start_unix_us: u64 = h.start_unix_us(),
        source: u32,
        source_port: u16,
    }
}

mirror! {
    /// Statistics of one RTP stream (one SSRC) in a capture.
    #[derive(Clone)]
    pub struct StreamStats from core::StreamStats as s {
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

mirror! {
    /// One RTCP Sender Report seen in a capture.
    #[derive(Clone)]
    pub struct SenderReport from core::SenderReportRecord as r {
        ssrc: u32,
        ntp: u64,
        ntp_unix_ms: f64 = r.unix_ms_from_ntp,
        rtp_ts: u32,
        arrival_ms: u32,
        packet_count: u32,
        octet_count: u32,
    }
}

mirror! {
    /// Everything one pass over a capture learned.
    pub struct CaptureReport from core::CaptureReport as r {
        header: FileHeader = FileHeader::from(&r.header),
        streams: Vec<StreamStats> = r.streams.iter().map(StreamStats::from).collect(),
        sender_reports: Vec<SenderReport> = r.sender_reports.iter().map(SenderReport::from).collect(),
        primary_ssrc: Option<u32>,
        primary_opus_stereo: bool,
        cnames: Vec<(u32, String)>,
        bye_ssrcs: Vec<u32>,
        records: u64,
        rtp_records: u64,
        rtcp_records: u64,
        truncated_records: u64,
        invalid_records: u64,
        warnings: Vec<(usize, String)> =
            r.warnings.iter().map(|w| (w.byte_offset, w.message.clone())).collect(),
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

mirror! {
    /// An `a=rtpmap` line.
    #[derive(Clone)]
    pub struct RtpMap from core::RtpMap as r {
        payload_type: u8,
        encoding: String,
        clock_rate: u32,
        channels: Option<u16>,
    }
}

mirror! {
    /// An `a=extmap` line.
    #[derive(Clone)]
    pub struct ExtMap from core::ExtMap as e {
        id: u8,
        direction: Option<String>,
        uri: String,
    }
}

mirror! {
    /// One `m=` section of an SDP.
    #[derive(Clone)]
    pub struct MediaDescription from core::MediaDescription as m {
        kind: String,
        port: u16,
        protocol: String,
        formats: Vec<u16> = m.formats.iter().copied().map(u16::from).collect(),
        rtpmaps: Vec<RtpMap> = m.rtpmaps.iter().map(RtpMap::from).collect(),
        fmtps: Vec<(u8, String)>,
        rtx: Vec<(u8, u8)>,
        extmaps: Vec<ExtMap> = m.extmaps.iter().map(ExtMap::from).collect(),
        ssrcs: Vec<(u32, String)>,
        direction: Option<String>,
        mid: Option<String>,
    }
}

mirror! {
    /// A parsed SDP document.
    pub struct Sdp from core::Sdp as s {
        media: Vec<MediaDescription> = s.media.iter().map(MediaDescription::from).collect(),
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
