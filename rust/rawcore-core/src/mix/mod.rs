//! The mix: Opus tracks placed on the call's timeline, decoded with libopus, summed with their
//! gains at 48 kHz and limited, pulled in blocks of the caller's size.
//!
//! Each track's packets are what [`crate::extract::collect_opus`] makes of its captures, the
//! same packets a per-track extraction writes: placement, gaps, DTX, loss fill and FEC rebuilds
//! have one home, the extraction's plan, and the mix hears exactly what a player of the
//! extracted file hears. The packets are decoded in order (a fill packet carries no audio, so
//! libopus conceals it as a player would), so a track's decoded length is its timeline span.
//! Only compressed packets are held (about 15 MB per track-hour of continuous speech, far less
//! with DTX); PCM exists only for the block being made, so memory does not grow with the
//! decoded length. [`limiter`] is the one home of the limiter rule, also used for mixes of
//! decoded files.

pub mod limiter;

use opus::{Channels, Decoder};

pub use limiter::Limiter;

use crate::extract::OpusPackets;

/// The mix's sample rate: Opus decodes at 48 kHz.
pub const MIX_RATE: u32 = 48_000;
/// The longest Opus packet (120 ms at 48 kHz), per channel.
const MAX_PACKET_FRAMES: usize = 5_760;

/// One track of the mix: its packets, held compactly, and where its first sample lands.
#[derive(Debug, Clone)]
pub struct MixTrack {
    channels: u8,
    bytes: Vec<u8>,
    ends: Vec<usize>,
    offset: i64,
    gain: f32,
}

impl MixTrack {
    /// A track of `channels` (1 or 2) channels whose packets, decoded in order, start at mix
    /// frame `offset` (negative: before the mix), played at linear `gain`.
    pub fn new<'p>(
        channels: u8,
        packets: impl IntoIterator<Item = &'p [u8]>,
        offset: i64,
        gain: f32,
    ) -> Self {
        let mut bytes = Vec::new();
        let mut ends = Vec::new();
        for data in packets {
            bytes.extend_from_slice(data);
            ends.push(bytes.len());
        }
        Self {
            channels: channels.clamp(1, 2),
            bytes,
            ends,
            offset,
            gain,
        }
    }

    /// A track of the packets an extraction collected ([`crate::extract::collect_opus`]).
    #[must_use]
    pub fn from_extraction(packets: &OpusPackets, offset: i64, gain: f32) -> Self {
        Self::new(
            packets.head.channels,
            packets.iter().map(|(_, data)| data),
            offset,
            gain,
        )
    }
}

/// A track being decoded.
struct TrackState {
    /// Packet boundaries into `bytes`; decoded in order.
    bytes: Vec<u8>,
    ends: Vec<usize>,
    next: usize,
    decoder: Decoder,
    channels: usize,
    offset: i64,
    gain: f32,
    /// Decoded samples (interleaved, track channels) not yet mixed, from `pcm_at`.
    pcm: Vec<f32>,
    pcm_at: usize,
    /// Frames decoded so far (the track's timeline position of the end of `pcm`).
    decoded: u64,
    decode_errors: u64,
    exhausted: bool,
}

impl TrackState {
    fn new(track: MixTrack) -> Self {
        let channels = track.channels;
        let decoder = Decoder::new(
            MIX_RATE,
            if channels == 2 {
                Channels::Stereo
            } else {
                Channels::Mono
            },
        )
        .expect("libopus accepts 48 kHz mono or stereo");
        Self {
            bytes: track.bytes,
            ends: track.ends,
            next: 0,
            decoder,
            channels: usize::from(channels),
            offset: track.offset,
            gain: track.gain,
            pcm: Vec::new(),
            pcm_at: 0,
            decoded: 0,
            decode_errors: 0,
            exhausted: false,
        }
    }

    /// Frames decoded but not yet taken.
    fn ready(&self) -> usize {
        (self.pcm.len() - self.pcm_at) / self.channels
    }

    /// Decodes the next packet into `pcm`; false at the end of the track.
    fn decode_next(&mut self) -> bool {
        let Some(&end) = self.ends.get(self.next) else {
            self.exhausted = true;
            return false;
        };
        let start = if self.next == 0 {
            0
        } else {
            self.ends[self.next - 1]
        };
        self.next += 1;
        if self.pcm_at > 0 {
            self.pcm.drain(..self.pcm_at);
            self.pcm_at = 0;
        }
        let have = self.pcm.len();
        self.pcm
            .resize(have + MAX_PACKET_FRAMES * self.channels, 0.0);
        let packet = &self.bytes[start..end];
        let decoded = self
            .decoder
            .decode_float(packet, &mut self.pcm[have..], false);
        let frames = if let Ok(n) = decoded {
            n
        } else {
            // A packet libopus rejects is concealed, as a player would: as long as its TOC
            // says (one 20 ms frame when even that is unreadable).
            self.decode_errors += 1;
            let frames = crate::depacketize::opus::packet_info(packet)
                .map_or(960, |i| i.duration() as usize)
                .min(MAX_PACKET_FRAMES);
            self.decoder
                .decode_float(
                    &[],
                    &mut self.pcm[have..have + frames * self.channels],
                    false,
                )
                .unwrap_or(0)
        };
        self.pcm.truncate(have + frames * self.channels);
        self.decoded += frames as u64;
        true
    }

    /// Skips the track's first `frames` samples (it starts before the mix).
    fn skip(&mut self, mut frames: usize) {
        while frames > 0 {
            if self.ready() == 0 && !self.decode_next() {
                return;
            }
            let n = frames.min(self.ready());
            self.pcm_at += n * self.channels;
            frames -= n;
        }
    }

    /// Adds this track's share of mix frames `[pos, pos + frames)` into `window`
    /// (interleaved, `out_channels`).
    fn add_into(&mut self, window: &mut [f32], out_channels: usize, pos: u64) {
        let frames = window.len() / out_channels;
        let pos = pos as i64;
        // Window frame where the track's next undelivered sample lands.
        let mut at = self.offset + (self.decoded as i64 - self.ready() as i64) - pos;
        if at < 0 {
            // The track starts before the mix: its first samples are not heard.
            self.skip(at.unsigned_abs() as usize);
            at = 0;
        }
        if at >= frames as i64 {
            return;
        }
        while (at as usize) < frames {
            if self.ready() == 0 && !self.decode_next() {
                return;
            }
            let n = self.ready().min(frames - at as usize);
            let src = &self.pcm[self.pcm_at..self.pcm_at + n * self.channels];
            let dst = &mut window[at as usize * out_channels..(at as usize + n) * out_channels];
            mix_into(dst, out_channels, src, self.channels, self.gain);
            self.pcm_at += n * self.channels;
            at += n as i64;
        }
    }
}

/// `dst += gain * src`, converting channels: mono is centred in stereo at full level on both
/// sides, stereo is averaged to mono.
fn mix_into(dst: &mut [f32], out_channels: usize, src: &[f32], in_channels: usize, gain: f32) {
    match (in_channels, out_channels) {
        (1, 2) => {
            for (d, &s) in dst.chunks_exact_mut(2).zip(src) {
                d[0] += s * gain;
                d[1] += s * gain;
            }
        }
        (2, 1) => {
            for (d, s) in dst.iter_mut().zip(src.chunks_exact(2)) {
                *d += (s[0] + s[1]) * 0.5 * gain;
            }
        }
        _ => {
            for (d, &s) in dst.iter_mut().zip(src) {
                *d += s * gain;
            }
        }
    }
}

/// What a mix did, for its report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MixStats {
    /// Frames returned so far.
    pub frames: u64,
    /// Per track: frames decoded so far.
    pub decoded: Vec<u64>,
    /// Packets libopus rejected (concealed instead).
    pub decode_errors: u64,
    /// Limiter blocks played with a gain below 1.
    pub limited_blocks: u64,
    /// Frames per limiter block.
    pub limiter_block: u64,
}

/// A streaming mix of Opus tracks (see the module docs): [`OpusMixer::next_block`] until it
/// returns an empty block.
pub struct OpusMixer {
    tracks: Vec<TrackState>,
    channels: usize,
    /// Mix frames fed to the limiter so far.
    pos: u64,
    /// The mix's length in frames, when the caller fixed it; else where the last track ends.
    end: Option<u64>,
    limiter: Limiter,
    frames_out: u64,
    flushed: bool,
}

impl OpusMixer {
    /// A mix of `tracks` in `channels` (1 or 2; other values are clamped) channels, `end` frames
    /// long (None: until the last track ends).
    #[must_use]
    pub fn new(tracks: Vec<MixTrack>, channels: u8, end: Option<u64>) -> Self {
        let channels = channels.clamp(1, 2);
        let tracks: Vec<TrackState> = tracks.into_iter().map(TrackState::new).collect();
        Self {
            tracks,
            channels: usize::from(channels),
            pos: 0,
            end,
            limiter: Limiter::new(MIX_RATE, channels),
            frames_out: 0,
            flushed: false,
        }
    }

    /// Output channels.
    #[must_use]
    pub fn channels(&self) -> u8 {
        self.channels as u8
    }

    /// The next limited, interleaved block of about `frames` frames (the limiter's look-ahead
    /// makes the first a few ms shorter, the last longer); empty when the mix is over.
    pub fn next_block(&mut self, frames: usize) -> Vec<f32> {
        let mut out = Vec::with_capacity((frames + self.limiter.block() * 8) * self.channels);
        while out.is_empty() && !self.flushed {
            let n = match self.end {
                Some(end) => frames.min(end.saturating_sub(self.pos) as usize),
                None => frames,
            };
            let mut window = vec![0f32; n.max(1) * self.channels];
            window.truncate(n * self.channels);
            for t in &mut self.tracks {
                t.add_into(&mut window, self.channels, self.pos);
            }
            let mut n = n;
            if self.end.is_none()
                && self
                    .tracks
                    .iter()
                    .all(|t| t.exhausted || t.ready() == 0 && t.next >= t.ends.len())
            {
                let last = self
                    .tracks
                    .iter()
                    .map(|t| (t.offset + t.decoded as i64).max(0) as u64)
                    .max()
                    .unwrap_or(0);
                n = n.min(last.saturating_sub(self.pos) as usize);
                window.truncate(n * self.channels);
                self.end = Some(self.pos + n as u64);
            }
            self.limiter.process(&window, &mut out);
            self.pos += n as u64;
            if self.end == Some(self.pos) {
                self.limiter.flush(&mut out);
                self.flushed = true;
            }
        }
        self.frames_out += (out.len() / self.channels) as u64;
        out
    }

    /// What the mix did so far.
    #[must_use]
    pub fn stats(&self) -> MixStats {
        MixStats {
            frames: self.frames_out,
            decoded: self.tracks.iter().map(|t| t.decoded).collect(),
            decode_errors: self.tracks.iter().map(|t| t.decode_errors).sum(),
            limited_blocks: self.limiter.limited_blocks(),
            limiter_block: self.limiter.block() as u64,
        }
    }
}

#[cfg(test)]
mod tests;
