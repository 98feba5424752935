//! Containers that rawcore writes: Matroska/WebM ([`matroska`]) and Ogg Opus ([`ogg`]).
//!
//! The writers stream: they hold at most one cluster or page in memory and write to a
//! caller-provided `std::io::Write` (plus `Seek` for Matroska, whose sizes, duration and seek
//! index are patched in place at the end). They never re-encode; frames go in as coded. This
//! module also owns [`OpusHead`], the identification header that both containers carry.

pub mod ebml;
pub mod ids;
pub mod matroska;
pub mod ogg;

/// Why a container could not be written.
#[derive(thiserror::Error, Debug)]
pub enum MuxError {
    /// The output refused a write or seek.
    #[error("writing the {context} failed: {source}")]
    Io {
        /// What was being written.
        context: &'static str,
        /// The writer's error.
        source: std::io::Error,
    },
    /// A frame names a track the file does not have.
    #[error("no track {track}: the file has {tracks} tracks")]
    NoSuchTrack {
        /// The track index given.
        track: usize,
        /// Tracks in the file.
        tracks: usize,
    },
    /// A frame's timestamp is earlier than the previous frame of the same track.
    #[error("track {track}: timestamp {timestamp_ns} ns is before the previous {previous_ns} ns")]
    NonMonotonic {
        /// The track index.
        track: usize,
        /// The previous frame's timestamp.
        previous_ns: u64,
        /// The offending timestamp.
        timestamp_ns: u64,
    },
    /// WebM only allows a few codecs.
    #[error("codec {codec} is not allowed in WebM; use Matroska")]
    NotInWebm {
        /// The Matroska codec ID.
        codec: &'static str,
    },
    /// A file needs at least one track.
    #[error("a file needs at least one track")]
    NoTracks,
}

impl MuxError {
    pub(crate) fn io(context: &'static str) -> impl FnOnce(std::io::Error) -> Self {
        move |source| Self::Io { context, source }
    }
}

/// The Opus identification header (RFC 7845 §5.1), for channel mapping family 0 (mono/stereo).
///
/// `pre_skip` defaults to 0, unlike a file encoded from scratch: WebRTC senders do not signal
/// their encoder delay, and the RTP timestamps already place the first decoded sample at the
/// packet's time. Skipping samples would shift every packet earlier than its timestamp and break
/// the exact timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpusHead {
    /// Output channels, 1 or 2.
    pub channels: u8,
    /// Samples (48 kHz) to discard at the start of decoding.
    pub pre_skip: u16,
    /// The sample rate of the original input, informational.
    pub input_sample_rate: u32,
    /// Gain to apply on output, Q7.8 dB.
    pub output_gain: i16,
}

impl Default for OpusHead {
    fn default() -> Self {
        Self {
            channels: 1,
            pre_skip: 0,
            input_sample_rate: 48_000,
            output_gain: 0,
        }
    }
}

impl OpusHead {
    /// The 19-byte header, as the first Ogg packet and as Matroska's `CodecPrivate`.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(19);
        out.extend_from_slice(b"OpusHead");
        out.push(1); // version
        out.push(self.channels);
        out.extend_from_slice(&self.pre_skip.to_le_bytes());
        out.extend_from_slice(&self.input_sample_rate.to_le_bytes());
        out.extend_from_slice(&self.output_gain.to_le_bytes());
        out.push(0); // channel mapping family 0: mono or stereo, no table
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opus_head_has_the_rfc_7845_layout() {
        let head = OpusHead {
            channels: 2,
            pre_skip: 312,
            input_sample_rate: 48_000,
            output_gain: -256,
        };
        assert_eq!(
            head.to_bytes(),
            [
                b'O', b'p', b'u', b's', b'H', b'e', b'a', b'd', 1, 2, 0x38, 0x01, 0x80, 0xBB, 0, 0,
                0x00, 0xFF, 0
            ]
        );
    }
}
