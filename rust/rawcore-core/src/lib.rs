//! Sans-IO core of rawcore: bytes of server-side call recordings in, typed values out.
//!
//! The crate reads rtpdump captures ([`rtpdump`]), parses the RTP and RTCP packets inside them
//! ([`rtp`], [`rtcp`]), extends sequence numbers and timestamps across rollover ([`seq`]),
//! restores packet order ([`reorder`]), reads the session descriptions that say what the payload
//! types mean ([`sdp`]) and condenses a capture into per-stream statistics ([`stats`],
//! [`analyze`]). It opens no files, reads no clocks and starts no threads; callers hand it byte
//! slices. No input can make it panic: malformed data becomes a typed error or a warning that
//! names the byte offset.

pub mod analyze;
pub mod reorder;
pub mod rtcp;
pub mod rtp;
pub mod rtpdump;
pub mod sdp;
pub mod seq;
pub mod stats;

pub use analyze::{
    analyze_capture, capture_columns, AnalyzeConfig, CaptureColumns, CaptureReport, CaptureWarning,
    SenderReportRecord,
};
pub use rtcp::RtcpError;
pub use rtp::RtpError;
pub use rtpdump::{FileHeader, RtpdumpError};
pub use sdp::{ExtMap, MediaDescription, RtpMap, Sdp, SdpError};
pub use seq::{ExtTimestamp, SeqNo};
pub use stats::StreamStats;

/// Any error of the core, for callers that handle them alike.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The capture container is unusable.
    #[error(transparent)]
    Rtpdump(#[from] RtpdumpError),
    /// A packet is not valid RTP.
    #[error(transparent)]
    Rtp(#[from] RtpError),
    /// A datagram is not valid RTCP.
    #[error(transparent)]
    Rtcp(#[from] RtcpError),
    /// A session description is malformed.
    #[error(transparent)]
    Sdp(#[from] SdpError),
}
