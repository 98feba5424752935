//! Voice activity: how loud a track is, slot by slot, on the same timeline as its extraction.
//!
//! The walk is [`super::audio::walk`], so slot `k` covers exactly the output time
//! `[k·slot_ms, (k+1)·slot_ms)` of the file `extract_audio` writes from the same segments.
//! Opus is decoded with libopus at 8 kHz mono (energy is all that is needed, and 8 kHz costs a
//! fraction of 48 kHz); G.711 and G.722 with the core's own decoders. Holes (DTX, loss,
//! pauses) count as silence. Only the per-slot sums are kept, so memory is one `f64` and one
//! counter per slot.

use opus::{Channels, Decoder};

use super::audio::{build_report, plan, walk};
use super::{AudioCodec, AudioExtractConfig, AudioExtractReport, AudioSegmentInput, ExtractError};
use crate::audio::AudioEvent;
use crate::codec::g711::{decode_alaw, decode_ulaw};
use crate::codec::g722::G722Decoder;

/// The rate Opus is decoded at for activity.
pub const OPUS_ACTIVITY_RATE: u32 = 8_000;
/// The level given to a slot with no energy at all (dBFS).
pub const SILENT_DBFS: f32 = -120.0;

/// The level of every slot of a track and what the walk found.
#[derive(Debug, Clone)]
pub struct Activity {
    /// RMS level per slot, dBFS (full scale = 1.0), [`SILENT_DBFS`] when silent.
    pub levels_dbfs: Vec<f32>,
    /// The length of one slot.
    pub slot_ms: u32,
    /// The walk's report, as `decode_pcm` gives it.
    pub report: AudioExtractReport,
}

/// Sums of squares per slot, at the decode rate.
struct Slots {
    rate: u64,
    slot_samples: u64,
    sums: Vec<f64>,
    counts: Vec<u32>,
}

impl Slots {
    fn new(rate: u32, slot_ms: u32) -> Self {
        Self {
            rate: u64::from(rate),
            slot_samples: (u64::from(rate) * u64::from(slot_ms) / 1000).max(1),
            sums: Vec::new(),
            counts: Vec::new(),
        }
    }

    /// Makes room for the slots up to decode sample `end`.
    fn reach(&mut self, end: u64) {
        let slots = usize::try_from(end.div_ceil(self.slot_samples)).unwrap_or(usize::MAX);
        if slots > self.sums.len() {
            self.sums.resize(slots, 0.0);
            self.counts.resize(slots, 0);
        }
    }

    /// Adds decoded samples (full scale 1.0) starting at decode sample `at`.
    fn add(&mut self, at: u64, samples: impl ExactSizeIterator<Item = f32>) {
        self.reach(at + samples.len() as u64);
        for (k, s) in samples.enumerate() {
            let slot = usize::try_from((at + k as u64) / self.slot_samples).unwrap_or(usize::MAX);
            if let (Some(sum), Some(count)) = (self.sums.get_mut(slot), self.counts.get_mut(slot)) {
                *sum += f64::from(s) * f64::from(s);
                *count += 1;
            }
        }
    }

    fn levels(&self) -> Vec<f32> {
        self.sums
            .iter()
            .zip(&self.counts)
            .map(|(&sum, &count)| {
                // A slot's mean power over its whole length: samples not decoded are silence.
                let mean = sum / (self.slot_samples.max(u64::from(count))) as f64;
                if mean > 0.0 {
                    ((10.0 * mean.log10()) as f32).max(SILENT_DBFS)
                } else {
                    SILENT_DBFS
                }
            })
            .collect()
    }
}

/// The level of every `slot_ms` of a track (Opus, G.711 or G.722) on its extraction timeline.
///
/// # Errors
/// What [`super::decode_pcm`] and [`super::extract_opus`] fail with: unusable captures, no
/// packets of the track.
pub fn voice_activity(
    segments: &[AudioSegmentInput<'_>],
    cfg: &AudioExtractConfig,
    slot_ms: u32,
) -> Result<Activity, ExtractError> {
    let slot_ms = slot_ms.max(1);
    let plan = plan(segments, cfg)?;
    let codec = cfg.codec;
    let out_rate = u64::from(codec.sample_rate());
    let decode_rate = if codec == AudioCodec::Opus {
        OPUS_ACTIVITY_RATE
    } else {
        codec.sample_rate()
    };
    let mut slots = Slots::new(decode_rate, slot_ms);
    // libopus refuses only invalid rates or channel counts; 8 kHz mono is valid.
    let mut opus = if codec == AudioCodec::Opus {
        Some(
            Decoder::new(OPUS_ACTIVITY_RATE, Channels::Mono).map_err(|e| {
                ExtractError::Stopped {
                    reason: format!("libopus: {e}"),
                }
            })?,
        )
    } else {
        None
    };
    let mut g722 = G722Decoder::new();
    let mut pcm: Vec<i16> = Vec::with_capacity(1_024);
    let mut float = vec![0f32; 5_760];
    let mut last_pts = 0u64;
    let mut on_event = |event: AudioEvent<'_>| -> Result<(), ExtractError> {
        match event {
            AudioEvent::Frame {
                pts,
                data,
                duration,
            } => {
                last_pts = pts;
                let at = pts * slots.rate / out_rate;
                if let Some(decoder) = opus.as_mut() {
                    // A frame libopus cannot decode is skipped: it counts as silence.
                    if let Ok(n) = decoder.decode_float(data, &mut float, false) {
                        slots.add(at, float.iter().take(n).copied());
                    }
                } else {
                    pcm.clear();
                    match codec {
                        AudioCodec::Pcmu => decode_ulaw(data, &mut pcm),
                        AudioCodec::Pcma => decode_alaw(data, &mut pcm),
                        AudioCodec::G722 | AudioCodec::Opus => g722.decode(data, &mut pcm),
                    }
                    slots.add(at, pcm.iter().map(|&s| f32::from(s) / 32_768.0));
                }
                slots.reach((pts + duration) * slots.rate / out_rate);
            }
            AudioEvent::Fill { pts, duration, .. } => {
                slots.reach((pts + duration) * slots.rate / out_rate);
            }
        }
        Ok(())
    };
    let (tl, counts) = walk(segments, cfg, &plan, &mut on_event)?;
    let report = build_report(cfg, &plan, 1, tl, counts, last_pts);
    Ok(Activity {
        levels_dbfs: slots.levels(),
        slot_ms,
        report,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_is_the_mean_power_over_its_whole_length() {
        let mut slots = Slots::new(8_000, 20);
        // Half a slot of full-scale samples: -3 dB; the next slot silent; the third quiet.
        slots.add(0, std::iter::repeat_n(1.0f32, 80));
        slots.reach(320);
        slots.add(320, std::iter::repeat_n(0.01f32, 160));
        let levels = slots.levels();
        assert_eq!(levels.len(), 3);
        assert!((levels[0] + 3.01).abs() < 0.01, "{levels:?}");
        assert!((levels[1] - SILENT_DBFS).abs() < f32::EPSILON);
        assert!((levels[2] + 40.0).abs() < 0.01, "{levels:?}");
    }
}
