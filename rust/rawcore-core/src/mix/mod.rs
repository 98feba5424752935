//! The mix: Opus tracks placed on the call's timeline, decoded with libopus, summed with their
//! gains at 48 kHz and limited, pulled in blocks of the caller's size.
//!
//! Each track's packets are what [`crate::extract::extract_opus`] writes of its captures,
//! pulled as they are needed from an [`OpusStream`]: placement, gaps, DTX, loss fill and FEC
//! rebuilds have one home, the extraction's plan, and the mix hears what a player of the
//! extracted file hears. The packets are decoded in order (a fill packet carries no audio, so
//! libopus conceals it as a player would), so a track's decoded length is its timeline span.
//! Nothing grows with the call's length: a track holds the packets in flight and the PCM of
//! the block being made. [`limiter`] is the one home of the limiter rule, also used for mixes
//! of decoded files.
//!
//! Where a track is silent (DTX, or between its captures) its fill packets are not decoded:
//! once the decoder's output has fallen below [`QUIET`], a DTX or pause fill packet followed by
//! another one plays as digital silence. What libopus would make of it there is its comfort
//! noise, about −80 dBFS; the last fill packet before the next frame is still decoded, so the
//! decoder meets that frame after a concealed one, as a player's does. In a call where each
//! participant speaks a quarter of the time this skips most of the decoding.
//!
//! The tracks of a block can be rendered in parallel ([`OpusMixer::next_block_with`]); the
//! core itself starts no thread.

pub mod limiter;

use opus::{Channels, Decoder};

pub use limiter::Limiter;

use crate::audio::GapCause;
use crate::extract::{ExtractError, OpusStream, StreamPacket};

/// The mix's sample rate: Opus decodes at 48 kHz.
pub const MIX_RATE: u32 = 48_000;
/// The longest Opus packet (120 ms at 48 kHz), per channel.
const MAX_PACKET_FRAMES: usize = 5_760;
/// Peak below which a track's decoded output counts as silent (−60 dBFS): DTX fill packets
/// after it are not decoded (see the module docs).
pub const QUIET: f32 = 1e-3;

/// Where a track's packets come from.
enum Source<'a> {
    /// Packets held in memory.
    Held {
        bytes: Vec<u8>,
        ends: Vec<usize>,
        next: usize,
    },
    /// Packets pulled from the captures as they are needed.
    Stream(Box<OpusStream<'a>>),
}

impl Source<'_> {
    fn next(&mut self) -> Result<Option<StreamPacket>, ExtractError> {
        match self {
            Self::Held { bytes, ends, next } => {
                let Some(&end) = ends.get(*next) else {
                    return Ok(None);
                };
                let start = if *next == 0 { 0 } else { ends[*next - 1] };
                *next += 1;
                Ok(Some(StreamPacket {
                    data: bytes.get(start..end).unwrap_or_default().to_vec(),
                    fill: None,
                }))
            }
            Self::Stream(stream) => stream.next_packet(),
        }
    }
}

/// One track of the mix: where its packets come from and where its first sample lands.
pub struct MixTrack<'a> {
    channels: u8,
    source: Source<'a>,
    offset: i64,
    gain: f32,
}

impl MixTrack<'static> {
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
            source: Source::Held {
                bytes,
                ends,
                next: 0,
            },
            offset,
            gain,
        }
    }
}

impl<'a> MixTrack<'a> {
    /// A track whose packets are pulled from `stream` as the mix needs them.
    #[must_use]
    pub fn streaming(stream: OpusStream<'a>, offset: i64, gain: f32) -> Self {
        Self {
            channels: stream.channels(),
            source: Source::Stream(Box::new(stream)),
            offset,
            gain,
        }
    }
}

/// A track being decoded; [`OpusMixer::next_block_with`] hands these out to be rendered.
pub struct Track<'a> {
    source: Source<'a>,
    /// The packet after the one being decoded, when it was looked at.
    lookahead: Option<StreamPacket>,
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
    /// Frames of fill played as silence without decoding.
    skipped: u64,
    /// The last decoded packet's output was below [`QUIET`].
    quiet: bool,
    exhausted: bool,
    error: Option<ExtractError>,
    /// The block to render: (mix position, frames, output channels).
    job: Option<(u64, usize, usize)>,
    /// This track's share of the block being made (output channels, gain applied).
    window: Vec<f32>,
}

impl<'a> Track<'a> {
    fn new(track: MixTrack<'a>) -> Self {
        let channels = track.channels.clamp(1, 2);
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
            source: track.source,
            lookahead: None,
            decoder,
            channels: usize::from(channels),
            offset: track.offset,
            gain: track.gain,
            pcm: Vec::new(),
            pcm_at: 0,
            decoded: 0,
            decode_errors: 0,
            skipped: 0,
            quiet: false,
            exhausted: false,
            error: None,
            job: None,
            window: Vec::new(),
        }
    }

    /// Frames decoded but not yet taken.
    fn ready(&self) -> usize {
        (self.pcm.len() - self.pcm_at) / self.channels
    }

    /// The next packet from the source; an error ends the track and is kept for the mixer.
    fn pull(&mut self) -> Option<StreamPacket> {
        match self.source.next() {
            Ok(packet) => packet,
            Err(e) => {
                self.error = Some(e);
                None
            }
        }
    }

    /// Whether every sample of the track has been taken.
    fn finished(&mut self) -> bool {
        if self.exhausted {
            return true;
        }
        if self.ready() > 0 {
            return false;
        }
        if self.lookahead.is_none() {
            self.lookahead = self.pull();
        }
        self.lookahead.is_none()
    }

    /// Decodes the next packet into `pcm` (or plays it as silence, see the module docs); false
    /// at the end of the track.
    fn decode_next(&mut self) -> bool {
        let packet = match self.lookahead.take() {
            Some(p) => Some(p),
            None => self.pull(),
        };
        let Some(packet) = packet else {
            self.exhausted = true;
            return false;
        };
        if self.pcm_at > 0 {
            self.pcm.drain(..self.pcm_at);
            self.pcm_at = 0;
        }
        let have = self.pcm.len();
        let silent_fill =
            |p: &StreamPacket| matches!(p.fill, Some(GapCause::Dtx | GapCause::Pause));
        if self.quiet && silent_fill(&packet) {
            self.lookahead = self.pull();
            if self.lookahead.as_ref().is_some_and(silent_fill) {
                let frames = crate::depacketize::opus::packet_info(&packet.data)
                    .map_or(960, |i| i.duration() as usize)
                    .min(MAX_PACKET_FRAMES);
                self.pcm.resize(have + frames * self.channels, 0.0);
                self.decoded += frames as u64;
                self.skipped += frames as u64;
                return true;
            }
        }
        self.pcm
            .resize(have + MAX_PACKET_FRAMES * self.channels, 0.0);
        let decoded = self
            .decoder
            .decode_float(&packet.data, &mut self.pcm[have..], false);
        let frames = if let Ok(n) = decoded {
            n
        } else {
            // A packet libopus rejects is concealed, as a player would: as long as its TOC
            // says (one 20 ms frame when even that is unreadable).
            self.decode_errors += 1;
            let frames = crate::depacketize::opus::packet_info(&packet.data)
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
        self.quiet = self.pcm[have..].iter().all(|s| s.abs() < QUIET);
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

    /// Renders the block this track was given into its window: its share of the mix frames
    /// `[pos, pos + frames)`, decoding what that needs. A no-op when there is nothing to render.
    pub fn render(&mut self) {
        let Some((pos, frames, out_channels)) = self.job.take() else {
            return;
        };
        self.window.clear();
        self.window.resize(frames * out_channels, 0.0);
        let pos = pos as i64;
        // Window frame where the track's next undelivered sample lands.
        let mut at = self.offset + (self.decoded as i64 - self.ready() as i64) - pos;
        if at < 0 {
            // The track starts before the mix: its first samples are not heard.
            self.skip(at.unsigned_abs() as usize);
            at = 0;
        }
        while (at as usize) < frames {
            if self.ready() == 0 && !self.decode_next() {
                return;
            }
            let n = self.ready().min(frames - at as usize);
            let src = &self.pcm[self.pcm_at..self.pcm_at + n * self.channels];
            let dst =
                &mut self.window[at as usize * out_channels..(at as usize + n) * out_channels];
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
    /// Frames of fill played as silence without decoding (see the module docs).
    pub skipped_frames: u64,
    /// Limiter blocks played with a gain below 1.
    pub limited_blocks: u64,
    /// Frames per limiter block.
    pub limiter_block: u64,
}

/// A streaming mix of Opus tracks (see the module docs): [`OpusMixer::next_block`] until it
/// returns an empty block.
pub struct OpusMixer<'a> {
    tracks: Vec<Track<'a>>,
    channels: usize,
    /// Mix frames fed to the limiter so far.
    pos: u64,
    /// The mix's length in frames, when the caller fixed it; else where the last track ends.
    end: Option<u64>,
    limiter: Limiter,
    frames_out: u64,
    flushed: bool,
}

impl<'a> OpusMixer<'a> {
    /// A mix of `tracks` in `channels` (1 or 2; other values are clamped) channels, `end` frames
    /// long (None: until the last track ends).
    #[must_use]
    pub fn new(tracks: Vec<MixTrack<'a>>, channels: u8, end: Option<u64>) -> Self {
        let channels = channels.clamp(1, 2);
        Self {
            tracks: tracks.into_iter().map(Track::new).collect(),
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
    pub fn next_block(&mut self, frames: usize) -> Result<Vec<f32>, ExtractError> {
        self.next_block_with(frames, |tracks| tracks.iter_mut().for_each(Track::render))
    }

    /// [`OpusMixer::next_block`], with `render` calling [`Track::render`] on every track it is
    /// given, in any order and on any thread (the tracks are independent); a track it leaves
    /// out is rendered here.
    pub fn next_block_with(
        &mut self,
        frames: usize,
        mut render: impl FnMut(&mut [Track<'a>]),
    ) -> Result<Vec<f32>, ExtractError> {
        let mut out = Vec::with_capacity((frames + self.limiter.block() * 8) * self.channels);
        while out.is_empty() && !self.flushed {
            let mut n = match self.end {
                Some(end) => frames.min(end.saturating_sub(self.pos) as usize),
                None => frames,
            };
            for t in &mut self.tracks {
                t.job = Some((self.pos, n, self.channels));
            }
            render(&mut self.tracks);
            let mut window = vec![0f32; n * self.channels];
            for t in &mut self.tracks {
                t.render();
                if let Some(e) = t.error.take() {
                    return Err(e);
                }
                for (d, s) in window.iter_mut().zip(&t.window) {
                    *d += s;
                }
            }
            if self.end.is_none() && self.tracks.iter_mut().all(Track::finished) {
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
        Ok(out)
    }

    /// Per track, per segment: bytes of its capture read so far (see [`OpusStream::walked`];
    /// empty for a track of held packets).
    #[must_use]
    pub fn walked(&self) -> Vec<Vec<usize>> {
        self.tracks
            .iter()
            .map(|t| match &t.source {
                Source::Stream(stream) => stream.walked(),
                Source::Held { .. } => Vec::new(),
            })
            .collect()
    }

    /// What the mix did so far.
    #[must_use]
    pub fn stats(&self) -> MixStats {
        MixStats {
            frames: self.frames_out,
            decoded: self.tracks.iter().map(|t| t.decoded).collect(),
            decode_errors: self.tracks.iter().map(|t| t.decode_errors).sum(),
            skipped_frames: self.tracks.iter().map(|t| t.skipped).sum(),
            limited_blocks: self.limiter.limited_blocks(),
            limiter_block: self.limiter.block() as u64,
        }
    }
}

#[cfg(test)]
mod tests;
