//! Opus into Matroska, WebM or Ogg, or into memory to mux beside video: never re-encoded, holes
//! filled with TOC-only packets the decoder conceals ([`OpusFiller`]), so the decoded length
//! equals the wall-clock span.

use std::io::{Seek, Write};

use super::audio::{build_report, plan, walk, Plan};
use super::{
    AudioCodec, AudioContainer, AudioExtractConfig, AudioExtractReport, AudioSegmentInput,
    ExtractError,
};
use crate::audio::AudioEvent;
use crate::depacketize::opus::{packet_info, OpusFiller, SAMPLE_RATE as OPUS_RATE};
use crate::mux::matroska::{DocType, MatroskaWriter, TrackEntry};
use crate::mux::ogg::OggOpusWriter;
use crate::mux::{MuxError, OpusHead};

/// Ogg stream serial number; fixed so the same input always gives the same bytes.
const OGG_SERIAL: u32 = 0x7261_7763; // "rawc"
/// Fill packets laced into one Matroska block (24 × 120 ms ≈ 2.9 s).
const FILL_LACE: usize = 24;

/// Nanoseconds of `samples` at 48 kHz.
fn opus_ns(samples: u64) -> u64 {
    (u128::from(samples) * 1_000_000_000 / u128::from(OPUS_RATE)) as u64
}

/// The Opus output: the container plus the pending lace of fill packets (Matroska only).
enum OpusOut<W: Write + Seek> {
    Matroska {
        writer: MatroskaWriter<W>,
        lace: bool,
    },
    Ogg(OggOpusWriter<W>),
}

/// Fill packets waiting to be laced into one Matroska block.
#[derive(Default)]
struct Lace {
    pts: u64,
    bytes: Vec<u8>,
    lens: Vec<usize>,
}

impl<W: Write + Seek> OpusOut<W> {
    fn frame(&mut self, pts: u64, duration: u64, data: &[u8]) -> Result<(), MuxError> {
        match self {
            Self::Matroska { writer, .. } => writer.write_frame(0, opus_ns(pts), data, true),
            Self::Ogg(w) => w.write_packet(data, duration as u32),
        }
    }

    fn fill_packet(
        &mut self,
        lace: &mut Lace,
        pts: u64,
        data: &[u8],
        samples: u32,
    ) -> Result<(), MuxError> {
        match self {
            Self::Matroska {
                writer,
                lace: false,
            } => writer.write_frame(0, opus_ns(pts), data, true),
            Self::Matroska { .. } => {
                if lace.lens.is_empty() {
                    lace.pts = pts;
                }
                lace.bytes.extend_from_slice(data);
                lace.lens.push(data.len());
                if lace.lens.len() >= FILL_LACE {
                    self.flush_lace(lace)?;
                }
                Ok(())
            }
            Self::Ogg(w) => w.write_fill_packet(data, samples),
        }
    }

    fn flush_lace(&mut self, lace: &mut Lace) -> Result<(), MuxError> {
        if lace.lens.is_empty() {
            return Ok(());
        }
        if let Self::Matroska { writer, .. } = self {
            let mut frames: Vec<&[u8]> = Vec::with_capacity(lace.lens.len());
            let mut at = 0;
            for &len in &lace.lens {
                frames.push(lace.bytes.get(at..at + len).unwrap_or_default());
                at += len;
            }
            writer.write_laced(0, opus_ns(lace.pts), &frames, true)?;
        }
        lace.bytes.clear();
        lace.lens.clear();
        Ok(())
    }
}

/// Where an Opus extraction's packets go: the track's frames as they are, and the packets that
/// fill its holes.
trait OpusSink {
    fn frame(&mut self, pts: u64, duration: u64, data: &[u8]) -> Result<(), MuxError>;
    fn fill(&mut self, pts: u64, data: &[u8], samples: u32) -> Result<(), MuxError>;
}

/// An Opus file being written, with the fill packets waiting to be laced.
struct OpusFile<W: Write + Seek> {
    out: OpusOut<W>,
    lace: Lace,
}

impl<W: Write + Seek> OpusSink for OpusFile<W> {
    fn frame(&mut self, pts: u64, duration: u64, data: &[u8]) -> Result<(), MuxError> {
        self.out.flush_lace(&mut self.lace)?;
        self.out.frame(pts, duration, data)
    }

    fn fill(&mut self, pts: u64, data: &[u8], samples: u32) -> Result<(), MuxError> {
        self.out.fill_packet(&mut self.lace, pts, data, samples)
    }
}

/// The track of an Opus extraction and its channels: stereo only when the SDP allows it and
/// some packet is coded stereo.
fn opus_plan(
    segments: &[AudioSegmentInput<'_>],
    cfg: &AudioExtractConfig,
    function: &'static str,
) -> Result<(Plan, u8), ExtractError> {
    if cfg.codec != AudioCodec::Opus {
        return Err(ExtractError::UnsupportedCodec {
            function,
            codec: cfg.codec,
        });
    }
    let plan = plan(segments, cfg)?;
    let channels = if plan.stereo && cfg.channels >= 2 {
        2
    } else {
        1
    };
    Ok((plan, channels))
}

/// Runs the track's timeline into `sink`: every frame as it is, every hole as fill packets that
/// copy the coding of the packet before them (before any, a CELT fullband one). Returns the
/// report and the output's end in 48 kHz samples.
fn run_opus(
    segments: &[AudioSegmentInput<'_>],
    cfg: &AudioExtractConfig,
    plan: &Plan,
    channels: u8,
    sink: &mut impl OpusSink,
) -> Result<(AudioExtractReport, u64), ExtractError> {
    let mut filler = OpusFiller::new();
    let mut last_toc = 31u8 << 3 | u8::from(channels == 2) << 2;
    let mut fill_frames = 0u64;
    let mut last_pts = 0u64;
    let mut on_event = |event: AudioEvent<'_>| -> Result<(), ExtractError> {
        match event {
            AudioEvent::Frame {
                pts,
                duration,
                data,
            } => {
                if let Some(&toc) = data.first() {
                    last_toc = toc;
                }
                last_pts = pts;
                sink.frame(pts, duration, data)?;
            }
            AudioEvent::Fill { pts, duration, .. } => {
                let mut at = pts;
                filler.fill(last_toc, duration, |packet, samples| {
                    sink.fill(at, packet, samples)?;
                    at += u64::from(samples);
                    fill_frames += 1;
                    Ok::<_, MuxError>(())
                })?;
            }
        }
        Ok(())
    };
    let (tl, counts) = walk(segments, cfg, plan, &mut on_event)?;
    let end = tl.end;
    let mut report = build_report(cfg, plan, channels, tl, counts, last_pts);
    report.fill_frames = fill_frames;
    Ok((report, end))
}

/// Extracts an Opus track into Matroska, WebM or Ogg with an exact timeline.
///
/// Every packet is written at its RTP timestamp relative to the track's start (plus its
/// segment's offset); holes are filled with packets the decoder conceals, so the decoded length
/// equals the wall-clock span to within 1.25 ms however long the holes. Returns the report; the
/// output is complete when this returns `Ok`.
pub fn extract_opus<W: Write + Seek>(
    segments: &[AudioSegmentInput<'_>],
    cfg: &AudioExtractConfig,
    out: W,
) -> Result<AudioExtractReport, ExtractError> {
    let (plan, channels) = opus_plan(segments, cfg, "extract_opus")?;
    let head = OpusHead {
        channels,
        ..OpusHead::default()
    };
    let out = match cfg.container {
        AudioContainer::Matroska | AudioContainer::Webm => {
            let doc = if cfg.container == AudioContainer::Webm {
                DocType::Webm
            } else {
                DocType::Matroska
            };
            OpusOut::Matroska {
                writer: MatroskaWriter::new(out, doc, vec![TrackEntry::Opus(head)])?,
                lace: doc == DocType::Matroska,
            }
        }
        AudioContainer::Ogg => OpusOut::Ogg(OggOpusWriter::new(out, &head, OGG_SERIAL)?),
    };
    let mut file = OpusFile {
        out,
        lace: Lace::default(),
    };
    let (report, end) = run_opus(segments, cfg, &plan, channels, &mut file)?;
    file.out.flush_lace(&mut file.lace)?;
    match file.out {
        OpusOut::Matroska { mut writer, .. } => {
            writer.set_duration_ns(opus_ns(end));
            writer.finish()?;
        }
        OpusOut::Ogg(w) => {
            w.finish()?;
        }
    }
    Ok(report)
}

/// An Opus track's output packets held compactly in memory (about 18 MB per hour at 32 kbit/s),
/// for muxing beside video, whose frames come from a separate pass.
#[derive(Debug, Default)]
pub struct OpusPackets {
    /// The OpusHead of the track.
    pub head: OpusHead,
    bytes: Vec<u8>,
    /// (pts in 48 kHz samples, end offset into `bytes`) per packet, in time order.
    index: Vec<(u64, usize)>,
    end: u64,
}

impl OpusPackets {
    /// Number of packets held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether no packet is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The packets in time order: (timestamp in ns, data).
    pub fn iter(&self) -> impl Iterator<Item = (u64, &[u8])> + '_ {
        let mut start = 0;
        self.index.iter().map(move |&(pts, end)| {
            let data = self.bytes.get(start..end).unwrap_or_default();
            start = end;
            (opus_ns(pts), data)
        })
    }

    /// End of the last packet, in ns (its start plus its TOC duration).
    #[must_use]
    pub fn last_end_ns(&self) -> u64 {
        self.end
    }

    fn push(&mut self, pts: u64, data: &[u8]) {
        self.bytes.extend_from_slice(data);
        self.index.push((pts, self.bytes.len()));
        let samples = packet_info(data).map_or(0, |i| u64::from(i.duration()));
        self.end = self.end.max(opus_ns(pts + samples));
    }
}

impl OpusSink for OpusPackets {
    fn frame(&mut self, pts: u64, _duration: u64, data: &[u8]) -> Result<(), MuxError> {
        self.push(pts, data);
        Ok(())
    }

    fn fill(&mut self, pts: u64, data: &[u8], _samples: u32) -> Result<(), MuxError> {
        self.push(pts, data);
        Ok(())
    }
}

/// [`extract_opus`]'s timeline, collected into memory instead of a file.
pub fn collect_opus(
    segments: &[AudioSegmentInput<'_>],
    cfg: &AudioExtractConfig,
) -> Result<(OpusPackets, AudioExtractReport), ExtractError> {
    let (plan, channels) = opus_plan(segments, cfg, "collect_opus")?;
    let mut packets = OpusPackets {
        head: OpusHead {
            channels,
            ..OpusHead::default()
        },
        ..OpusPackets::default()
    };
    let (report, _) = run_opus(segments, cfg, &plan, channels, &mut packets)?;
    Ok((packets, report))
}
