//! Extraction: the captures of one track in, a playable file (or PCM, or frame columns) out.
//!
//! Audio ([`audio`], [`opus`], [`pcm`]): [`extract_opus`] and [`decode_pcm`] are what the
//! bindings call. Both first pick the track ([`crate::track`]: the configured payload type, or
//! the dominant one over all captures, and per capture its busiest SSRC), then walk every record
//! once through an [`crate::audio::AudioTimeline`] that places each packet at its RTP timestamp
//! and reports the holes. Opus is remuxed: holes become TOC-only packets the decoder conceals,
//! muxed into Matroska, WebM or Ogg, except a lost frame whose successor carries in-band FEC,
//! which [`fec`] rebuilds with libopus into a packet of the stream's own coding. Clock drift
//! is made up at quiet spots ([`crate::drift`]), which [`level`] finds by decoding frames. G.711 and G.722 are decoded to 16-bit PCM with
//! holes as zeros. Memory stays flat in the duration: frames stream into clusters, pages or
//! caller-sized PCM chunks.
//!
//! [`activity`] walks the same timeline and keeps only a level per slot (Opus decoded at
//! 8 kHz), for voice activity.
//!
//! Video ([`video`], [`av`]): [`video_frames`] surveys the frames an output would hold and plans
//! its gap fills; [`extract_video`] and [`extract_av`] write the file in one assembly pass,
//! with the caller's fill frames (and Opus audio) merged in by time.

pub mod activity;
pub mod audio;
pub mod av;
pub mod fec;
pub mod level;
pub mod opus;
pub mod pcm;
#[cfg(test)]
mod tests;
pub mod video;

pub use activity::{voice_activity, Activity};
pub use audio::{
    AudioCodec, AudioContainer, AudioExtractConfig, AudioExtractReport, AudioSegmentInput,
    ExtractError,
};
pub use av::{extract_av, extract_video, extract_video_filled, AudioBeside, DocChoice, FillFrame};
pub use opus::{collect_opus, extract_opus, survey_opus, OpusPackets, OpusStream, StreamPacket};
pub use pcm::decode_pcm;
pub use video::{video_frames, VideoFrameColumns, VideoSegmentInput};
