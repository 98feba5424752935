//! Sans-IO core of rawcore: bytes of server-side call recordings in, typed values out.
//!
//! The crate reads rtpdump captures ([`rtpdump`]), parses the RTP and RTCP packets inside them
//! ([`rtp`], [`rtcp`]), extends sequence numbers and timestamps across rollover ([`seq`]),
//! restores packet order ([`reorder`]), reads the session descriptions that say what the payload
//! types mean ([`sdp`]) and condenses a capture into per-stream statistics ([`stats`],
//! [`analyze`]) or per-packet columns ([`columns`]); [`track`] is the one rule for which stream of a capture is the track. The call
//! timeline ([`timeline`]) places every stream on the recorder's clock. Packet captures
//! ([`pcap`], decoded down to UDP/TCP by [`net`]) and Janus recordings ([`mjr`]) are split into
//! per-stream rtpdump captures ([`split`]) so every stage reads them the same way. For extraction it places
//! audio packets on an exact timeline ([`audio`]), following clock drift where nobody hears it
//! ([`drift`]), turns RTP payloads back into codec frames
//! ([`depacketize`], reading codec headers with [`bitstream`]), assembles complete decodable
//! video frames ([`video`]), decodes telephony codecs ([`codec`]) and muxes into Matroska, WebM
//! and Ogg ([`mux`]), and remuxes Matroska into fast-start MP4 ([`remux`]); [`extract`] ties
//! these together, with libopus (statically linked) to rebuild lost Opus frames from in-band FEC
//! ([`extract::fec`]). For re-composing a call it draws pictures into a YUV 4:2:0 canvas:
//! cover-scaled, clipped to anti-aliased shapes, blended ([`compose`]). It opens no files, reads no
//! clocks and starts no threads; callers hand it byte slices. No input can make it panic: malformed data
//! becomes a typed error or a warning that names the byte offset.

pub mod analyze;
pub mod audio;
pub mod bitstream;
pub mod codec;
pub mod columns;
pub mod compose;
pub mod depacketize;
pub mod drift;
pub mod extract;
pub mod mix;
pub mod mjr;
pub mod mux;
pub mod net;
pub mod pcap;
pub mod remux;
pub mod reorder;
pub mod rtcp;
pub mod rtp;
pub mod rtpdump;
pub mod sdp;
pub mod seq;
pub mod split;
pub mod stats;
pub mod timeline;
pub mod track;
pub mod video;

pub use analyze::{
    analyze_capture, analyze_capture_stream, AnalyzeConfig, CaptureReport, CaptureWarning,
    SenderReportRecord,
};
pub use audio::{AudioEvent, AudioTimeline, GapCause, TimelineConfig, TimelineReport};
pub use columns::{
    capture_columns, stream_columns, ArrivalCause, ArrivalGap, CaptureColumns, StreamColumns,
};
pub use depacketize::h264::NalFormat;
pub use depacketize::vp9::SpatialLayerPolicy;
pub use depacketize::VideoDepacketizer;
pub use extract::{
    collect_opus, decode_pcm, extract_av, extract_opus, extract_video, extract_video_filled,
    video_frames, voice_activity, Activity, AudioBeside, AudioCodec, AudioContainer,
    AudioExtractConfig, AudioExtractReport, AudioSegmentInput, DocChoice, ExtractError, FillFrame,
    OpusPackets, VideoFrameColumns, VideoSegmentInput,
};
pub use extract::{survey_opus, OpusStream, StreamPacket};
pub use mix::{Limiter, MixStats, MixTrack, OpusMixer};
pub use mux::matroska::{DocType, MatroskaWriter, TrackEntry};
pub use mux::ogg::OggOpusWriter;
pub use mux::{MuxError, OpusHead};
pub use remux::{mkv::MkvError, remux_bytes, Plan, RemuxError, Scan, Select};
pub use rtcp::RtcpError;
pub use rtp::RtpError;
pub use rtpdump::{slice_capture, FileHeader, RtpdumpError};
pub use sdp::{ExtMap, MediaDescription, RtpMap, Sdp, SdpError};
pub use seq::{ExtTimestamp, SeqNo};
pub use split::{split_capture, CodecGuess, SplitError, SplitReport, SplitStream};
pub use stats::StreamStats;
pub use timeline::{
    fit_offset, fit_sender_clock, place_streams, unwrap_rtp_timestamps, Basis, ClockFit, OffsetFit,
    Placement, SrPoint, StreamInput, StreamPlacement, TimelineError,
};
pub use video::{
    assemble_video, FillPlan, OnLoss, Picture, PictureLog, Rotation, Stretch, StretchKind,
    VideoAssembler, VideoCodec, VideoError, VideoEvent, VideoExtractConfig, VideoFrame, VideoGap,
    VideoReport,
};
