//! G.711 and G.722 decoded to 16-bit PCM on the exact timeline, holes as zeros, handed to the
//! caller in chunks so memory stays flat in the duration.

use super::audio::{build_report, plan, walk};
use super::{AudioCodec, AudioExtractConfig, AudioExtractReport, AudioSegmentInput, ExtractError};
use crate::audio::AudioEvent;
use crate::codec::g711::{decode_alaw, decode_ulaw};
use crate::codec::g722::G722Decoder;

/// PCM samples handed to the sink per call.
const PCM_CHUNK: usize = 8_192;

/// Decodes a G.711 or G.722 track to 16-bit mono PCM at the codec's audio rate (8 or 16 kHz),
/// handing it to `sink` in chunks; holes become zeros (when filled) on the exact timeline.
pub fn decode_pcm(
    segments: &[AudioSegmentInput<'_>],
    cfg: &AudioExtractConfig,
    mut sink: impl FnMut(&[i16]) -> Result<(), ExtractError>,
) -> Result<AudioExtractReport, ExtractError> {
    if cfg.codec == AudioCodec::Opus {
        return Err(ExtractError::UnsupportedCodec {
            function: "decode_pcm",
            codec: cfg.codec,
        });
    }
    let plan = plan(segments, cfg)?;
    let codec = cfg.codec;
    let mut g722 = G722Decoder::new();
    let mut chunk: Vec<i16> = Vec::with_capacity(PCM_CHUNK * 2);
    let mut last_pts = 0u64;
    let mut on_event = |event: AudioEvent<'_>| -> Result<(), ExtractError> {
        match event {
            AudioEvent::Frame { pts, data, .. } => {
                last_pts = pts;
                match codec {
                    AudioCodec::Pcmu => decode_ulaw(data, &mut chunk),
                    AudioCodec::Pcma => decode_alaw(data, &mut chunk),
                    AudioCodec::G722 | AudioCodec::Opus => g722.decode(data, &mut chunk),
                }
            }
            AudioEvent::Fill { duration, .. } => {
                let mut left = duration;
                while left > 0 {
                    let room = (PCM_CHUNK.saturating_sub(chunk.len())).max(1) as u64;
                    let n = left.min(room);
                    chunk.resize(chunk.len() + n as usize, 0);
                    left -= n;
                    if chunk.len() >= PCM_CHUNK {
                        sink(&chunk)?;
                        chunk.clear();
                    }
                }
            }
        }
        if chunk.len() >= PCM_CHUNK {
            sink(&chunk)?;
            chunk.clear();
        }
        Ok(())
    };
    let (tl, counts) = walk(segments, cfg, &plan, &mut on_event)?;
    if !chunk.is_empty() {
        sink(&chunk)?;
    }
    Ok(build_report(cfg, &plan, 1, tl, counts, last_pts))
}
