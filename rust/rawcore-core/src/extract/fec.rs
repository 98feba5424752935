//! In-band FEC: a lost Opus frame rebuilt from the low-bitrate copy its successor carries.
//!
//! WebRTC senders run Opus with `useinbandfec=1`: in SILK and hybrid frames, packet N+1 carries
//! a low-bitrate redundant copy (LBRR) of frame N ([`lbrr_flag`] finds it). When N was lost and
//! N+1 arrived, libopus decodes N from that copy (`opus_decode(..., decode_fec=1)`) far better
//! than concealment guesses it: on speech-like sound coded as SILK wideband at 24 kbit/s, lost
//! slots come back at about 9.6 dB SNR against the source instead of -0.3 dB.
//!
//! The output stays a remux, so the rebuilt audio has to become an Opus packet of its own:
//! [`Rebuilder::rebuild`] decodes the packets written before the hole (a fresh libopus decoder
//! over the last [`HISTORY`] samples, as a player's decoder hears them), decodes frame N from
//! N+1's LBRR and N+1 itself, then encodes frame N with a fresh encoder at the stream's coding
//! (the successor's mode, bandwidth, frame size and channels, its neighbours' bitrate), warmed
//! on the [`WARM_UP`] samples of decoded audio before the slot so its state (pitch, filters,
//! energies) joins the stream without a click. The encoder's input is the decoded audio
//! shifted by its lookahead, so the packet decodes to the slot's own time. A packet that comes
//! out in another coding (the encoder chose another mode or bandwidth) is not used: the slot is
//! concealed as before. Measured on the same sound the rebuilt slots reach about 8.5 dB.
//!
//! Only libopus does codec work here; the rebuilder holds no files, clocks or threads.

use std::borrow::Cow;
use std::collections::VecDeque;

use opus::{Application, Bandwidth, Bitrate, Channels, Decoder, Encoder, Signal};

use crate::depacketize::opus::{lbrr_flag, packet_info, Mode, SAMPLE_RATE};

/// Packets before the slot decoded (48 kHz samples, 200 ms): enough for a fresh decoder to
/// converge (about 100 ms) before the encoder's warm-up starts.
pub const HISTORY: u64 = 9_600;
/// Decoded audio the encoder codes (and throws away) before the rebuilt frame (100 ms).
pub const WARM_UP: usize = 4_800;
/// Encoder complexity during the warm-up; the rebuilt frame itself is coded at 10.
const WARM_UP_COMPLEXITY: i32 = 5;
/// The largest packet the encoder may write.
const MAX_PACKET: usize = 1_500;
/// Packets held before the ones outside the history are dropped: far more than the history
/// needs (at most 81 packets of 2.5 ms), few enough to stay small.
const TRIM_AT: usize = 256;

/// A packet already written, as a player's decoder will see it.
struct Written<'a> {
    data: Cow<'a, [u8]>,
    samples: u64,
    /// A packet of the capture (not a fill or a rebuilt frame): its size tells the bitrate.
    received: bool,
}

/// Rebuilds lost frames of one Opus track from their successors' LBRR (see the module docs).
pub struct Rebuilder<'a> {
    channels: u8,
    written: VecDeque<Written<'a>>,
    written_samples: u64,
}

impl<'a> Rebuilder<'a> {
    /// A rebuilder for a track decoded with `channels` (1 or 2) channels.
    #[must_use]
    pub fn new(channels: u8) -> Self {
        Self {
            channels: channels.clamp(1, 2),
            written: VecDeque::new(),
            written_samples: 0,
        }
    }

    /// Notes a packet written to the output (every one, in order: received frames, fill
    /// packets, rebuilt frames), keeping the last [`HISTORY`] samples of them.
    pub fn wrote(&mut self, data: Cow<'a, [u8]>, samples: u64, received: bool) {
        self.written.push_back(Written {
            data,
            samples,
            received,
        });
        self.written_samples += samples;
        // Trimmed a batch at a time: the packets kept are the same (see `history`), and a
        // packet written costs a push, not a push and a pop.
        if self.written.len() >= TRIM_AT {
            let stale = self.stale();
            for w in self.written.drain(..stale) {
                self.written_samples -= w.samples;
            }
        }
    }

    /// How many of the oldest packets held lie wholly outside the history: the front ones
    /// without which the rest still spans [`HISTORY`] samples. Dropping them one at a time as
    /// each packet is written leaves the same packets as dropping them all at once later,
    /// since what follows a packet only grows.
    fn stale(&self) -> usize {
        let mut rest = self.written_samples;
        let mut stale = 0;
        for w in &self.written {
            if rest - w.samples < HISTORY {
                break;
            }
            rest -= w.samples;
            stale += 1;
        }
        stale
    }

    /// The packets of the history: the last [`HISTORY`] samples written, in order.
    fn history(&self) -> std::collections::vec_deque::Iter<'_, Written<'a>> {
        self.written.range(self.stale()..)
    }

    /// Whether `next`, the packet right after a loss, carries LBRR for the frame before it.
    #[must_use]
    pub fn can_rebuild(next: &[u8]) -> bool {
        lbrr_flag(next) == Some(true)
    }

    /// The packet that stands for the frame lost just before `next` (whose duration it has),
    /// made from `next`'s LBRR and coded like `next`; `None` when `next` carries no LBRR or
    /// libopus cannot make a packet of the same coding. Call it after [`wrote`](Self::wrote)
    /// has seen everything written before the rebuilt frame's slot.
    #[must_use]
    pub fn rebuild(&self, next: &[u8]) -> Option<Vec<u8>> {
        if !Self::can_rebuild(next) {
            return None;
        }
        let info = packet_info(next).ok()?;
        let frame = info.duration() as usize;
        let ch = usize::from(self.channels);
        let channels = if ch == 2 {
            Channels::Stereo
        } else {
            Channels::Mono
        };

        // What a player hears: the packets before the slot, the slot from the LBRR, then next.
        let mut decoder = Decoder::new(SAMPLE_RATE, channels).ok()?;
        let mut buf = vec![0f32; 5_760 * ch];
        let mut pcm: Vec<f32> = Vec::with_capacity((HISTORY as usize + 2 * frame) * ch);
        for w in self.history() {
            let n = decoder.decode_float(&w.data, &mut buf, false).ok()?;
            pcm.extend_from_slice(buf.get(..n * ch)?);
        }
        let slot = pcm.len() / ch;
        let n = decoder
            .decode_float(next, buf.get_mut(..frame * ch)?, true)
            .ok()?;
        if n != frame {
            return None;
        }
        pcm.extend_from_slice(buf.get(..frame * ch)?);
        let n = decoder.decode_float(next, &mut buf, false).ok()?;
        pcm.extend_from_slice(buf.get(..n * ch)?);

        let mut encoder = self.encoder(next, channels)?;
        let lookahead = usize::try_from(encoder.get_lookahead().ok()?).ok()?;
        if lookahead > frame {
            return None;
        }
        // Frame k of the encoder's input is the decoded audio `lookahead` later, so what it
        // codes decodes to the slot's own time.
        let input =
            |start: usize| pcm.get((start + lookahead) * ch..(start + lookahead + frame) * ch);
        let warm = (WARM_UP / frame).min(slot / frame);
        // The warm-up only sets the encoder's state; a lower complexity does that as well (the
        // rebuilt slots' SNR moved by 0.1 dB) at half the cost.
        encoder.set_complexity(WARM_UP_COMPLEXITY).ok()?;
        for back in (1..=warm).rev() {
            encoder
                .encode_vec_float(input(slot - back * frame)?, MAX_PACKET)
                .ok()?;
        }
        encoder.set_complexity(10).ok()?;
        let packet = encoder.encode_vec_float(input(slot)?, MAX_PACKET).ok()?;
        let made = packet_info(&packet).ok()?;
        (made.toc == info.toc).then_some(packet)
    }

    /// A fresh encoder set up to code like `next`: its bandwidth and channels, speech, the
    /// bitrate of the received packets around the slot, no FEC of its own.
    fn encoder(&self, next: &[u8], channels: Channels) -> Option<Encoder> {
        let info = packet_info(next).ok()?;
        let bandwidth = match (info.toc.mode(), info.toc.config) {
            (Mode::Silk, 0..=3) => Bandwidth::Narrowband,
            (Mode::Silk, 4..=7) => Bandwidth::Mediumband,
            (Mode::Silk, _) => Bandwidth::Wideband,
            (Mode::Hybrid, 12 | 13) => Bandwidth::Superwideband,
            (Mode::Hybrid, _) => Bandwidth::Fullband,
            (Mode::Celt, _) => return None,
        };
        let (bytes, samples) = self
            .history()
            .filter(|w| w.received)
            .map(|w| (w.data.len() as u64, w.samples))
            .chain(std::iter::once((
                next.len() as u64,
                u64::from(info.duration()),
            )))
            .fold((0, 0), |(b, s), (wb, ws)| (b + wb, s + ws));
        let bitrate = (bytes * 8 * u64::from(SAMPLE_RATE) / samples.max(1)).clamp(6_000, 510_000);
        let mut encoder = Encoder::new(SAMPLE_RATE, channels, Application::Voip).ok()?;
        encoder.set_bandwidth(bandwidth).ok()?;
        encoder.set_max_bandwidth(bandwidth).ok()?;
        encoder.set_bitrate(Bitrate::Bits(bitrate as i32)).ok()?;
        encoder.set_signal(Signal::Voice).ok()?;
        encoder.set_inband_fec(false).ok()?;
        encoder.set_packet_loss_perc(0).ok()?;
        let forced = if info.toc.stereo {
            Channels::Stereo
        } else {
            Channels::Mono
        };
        encoder.set_force_channels(Some(forced)).ok()?;
        Some(encoder)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn history_is_the_last_history_samples_however_late_it_is_trimmed(
            samples in proptest::collection::vec(0u64..6_000, 0..1_200),
        ) {
            // Reference: the oldest packet dropped as soon as the rest spans HISTORY samples.
            let mut eager: VecDeque<u64> = VecDeque::new();
            let mut total = 0;
            let mut rebuilder = Rebuilder::new(1);
            for (i, &n) in samples.iter().enumerate() {
                eager.push_back(n);
                total += n;
                while let Some(&front) = eager.front() {
                    if total - front < HISTORY {
                        break;
                    }
                    total -= front;
                    eager.pop_front();
                }
                let data = (i as u32).to_be_bytes().to_vec();
                rebuilder.wrote(Cow::Owned(data), n, i % 3 == 0);
                let kept: Vec<u64> = rebuilder.history().map(|w| w.samples).collect();
                proptest::prop_assert_eq!(&kept, &Vec::from(eager.clone()));
                proptest::prop_assert!(rebuilder.written.len() <= TRIM_AT);
                // The packets kept are the newest ones, in order.
                let last: Vec<u32> = rebuilder
                    .history()
                    .map(|w| u32::from_be_bytes(w.data[..4].try_into().expect("4 bytes")))
                    .collect();
                let want: Vec<u32> = (i + 1 - kept.len()..=i).map(|k| k as u32).collect();
                proptest::prop_assert_eq!(last, want);
            }
        }
    }
}
