//! Exact-timeline audio extraction: captures of one track in, a playable file or PCM out.
//!
//! [`extract_opus`] and [`decode_pcm`] are what the bindings call. Both first survey the
//! captures to pick the track ([`crate::track`]: the configured payload type, or the dominant
//! one over all captures, and per capture its busiest SSRC), then walk every record once: RTCP, padding-only, garbage and malformed
//! packets are counted and skipped, the rest go through an [`AudioTimeline`] that places each
//! packet at its RTP timestamp and reports the holes. Opus is never re-encoded: holes become
//! TOC-only packets the decoder conceals ([`OpusFiller`]), muxed into Matroska, WebM or Ogg.
//! G.711 and G.722 are decoded to 16-bit PCM with holes as zeros. Memory stays flat in the
//! duration: frames stream into clusters, pages or caller-sized PCM chunks.

use std::io::{Seek, Write};

use crate::audio::{AudioEvent, AudioPacket, AudioTimeline, TimelineConfig, TimelineReport};
use crate::codec::g711::{decode_alaw, decode_ulaw};
use crate::codec::g722::G722Decoder;
use crate::depacketize::opus::{packet_info, OpusFiller, SAMPLE_RATE as OPUS_RATE};
use crate::mux::matroska::{DocType, MatroskaWriter, TrackEntry};
use crate::mux::ogg::OggOpusWriter;
use crate::mux::{MuxError, OpusHead};
use crate::rtp::{looks_like_rtcp, RtpPacket};
use crate::rtpdump::{RtpdumpError, RtpdumpReader};
use crate::track::{choose_track, count_sources, dominant_payload_type};

/// Ogg stream serial number; fixed so the same input always gives the same bytes.
const OGG_SERIAL: u32 = 0x7261_7763; // "rawc"
/// Fill packets laced into one Matroska block (24 × 120 ms ≈ 2.9 s).
const FILL_LACE: usize = 24;
/// PCM samples handed to the sink per call.
const PCM_CHUNK: usize = 8_192;

/// The container [`extract_opus`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioContainer {
    /// Matroska (`.mka`).
    Matroska,
    /// WebM (`.webm`); fill packets are not laced, as browsers' WebM parsers reject lacing.
    Webm,
    /// Ogg Opus (`.opus`).
    Ogg,
}

/// The audio codec of the track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioCodec {
    /// Opus, 48 kHz RTP clock.
    Opus,
    /// G.711 µ-law (payload type 0).
    Pcmu,
    /// G.711 A-law (payload type 8).
    Pcma,
    /// G.722 (payload type 9): 16 kHz audio on an 8 kHz RTP clock (RFC 3551 §4.5.2).
    G722,
}

impl AudioCodec {
    /// The RTP clock rate.
    #[must_use]
    pub fn rtp_clock(self) -> u32 {
        match self {
            Self::Opus => OPUS_RATE,
            Self::Pcmu | Self::Pcma | Self::G722 => 8_000,
        }
    }

    /// Samples per second of the decoded audio.
    #[must_use]
    pub fn sample_rate(self) -> u32 {
        match self {
            Self::Opus => OPUS_RATE,
            Self::Pcmu | Self::Pcma => 8_000,
            Self::G722 => 16_000,
        }
    }

    /// Output samples a payload decodes to; `None` when it is malformed.
    fn duration(self, payload: &[u8]) -> Option<u64> {
        match self {
            Self::Opus => packet_info(payload).ok().map(|i| u64::from(i.duration())),
            Self::Pcmu | Self::Pcma => Some(payload.len() as u64),
            Self::G722 => Some(payload.len() as u64 * 2),
        }
    }
}

/// One capture of the track and where it sits on the output.
#[derive(Debug, Clone, Copy)]
pub struct AudioSegmentInput<'a> {
    /// The rtpdump capture.
    pub capture: &'a [u8],
    /// Where this segment's first packet sits on the output timeline, in ms (0 = output start).
    pub offset_ms: i64,
    /// How fast the segment's media clock runs against the output's (wall) clock, in ppm:
    /// media time `t` belongs at `t · (1 + drift_ppm / 10⁶)`. The difference is made up
    /// gradually inside the holes the timeline fills (see [`crate::audio`]); 0 places packets
    /// at their nominal RTP times.
    pub drift_ppm: f64,
}

/// What to extract and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioExtractConfig {
    /// The audio payload type from the SDP; `None` takes the dominant payload type.
    pub payload_type: Option<u8>,
    /// The codec of that payload type.
    pub codec: AudioCodec,
    /// Channels the SDP allows. For Opus the stream decides: stereo only if this is at least 2
    /// and some packet's TOC has the stereo bit (every Opus rtpmap says `/2`, so the SDP alone
    /// cannot tell). G.711 and G.722 are mono.
    pub channels: u8,
    /// Fill holes caused by loss and the pauses between segments.
    pub fill_gaps: bool,
    /// Fill holes caused by DTX.
    pub fix_dtx: bool,
    /// The container for Opus.
    pub container: AudioContainer,
    /// Packets the reorder buffer waits for a missing one.
    pub reorder_window: usize,
}

impl Default for AudioExtractConfig {
    fn default() -> Self {
        Self {
            payload_type: None,
            codec: AudioCodec::Opus,
            channels: 2,
            fill_gaps: true,
            fix_dtx: true,
            container: AudioContainer::Matroska,
            reorder_window: 64,
        }
    }
}

/// What an extraction did. Durations are in ms of output.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AudioExtractReport {
    /// The payload type extracted.
    pub payload_type: u8,
    /// The SSRC taken from each segment (`None` when a segment had no packets of the type).
    pub ssrcs: Vec<Option<u32>>,
    /// Output sample rate.
    pub sample_rate: u32,
    /// Output channels.
    pub channels: u8,
    /// Packets of the track offered to the timeline.
    pub packets_in: u64,
    /// Packets written as frames.
    pub packets_written: u64,
    /// Opus fill packets written (0 for PCM).
    pub fill_frames: u64,
    /// DTX holes filled and their total length.
    pub dtx_gaps: u64,
    /// Total DTX fill.
    pub dtx_filled_ms: f64,
    /// Loss holes filled.
    pub loss_gaps: u64,
    /// Total loss fill.
    pub loss_filled_ms: f64,
    /// Pauses between segments filled.
    pub pause_gaps: u64,
    /// Total pause fill.
    pub pause_filled_ms: f64,
    /// Time removed because its holes were not to be filled.
    pub closed_up_ms: f64,
    /// Sequence numbers never received.
    pub packets_lost: u64,
    /// Packets received twice.
    pub duplicates: u64,
    /// Packets that arrived after their place was passed.
    pub late: u64,
    /// Packets of the track that are not valid for the codec (or were cut by the snap length).
    pub malformed: u64,
    /// Packets of the track without payload (padding only).
    pub padding_only: u64,
    /// Packets dropped because they lay inside already-written time.
    pub overlap_dropped: u64,
    /// How far packets were pushed past their timestamps by overlapping time.
    pub overlap_ms: f64,
    /// Sender timestamp resets re-anchored on arrival time.
    pub resets: u64,
    /// Net time added (positive) or removed (negative) to follow the segments' clock drift.
    pub drift_corrected_ms: f64,
    /// Frames dropped to follow a fast sender clock where no hole came to absorb it.
    pub drift_dropped: u64,
    /// RTCP records skipped.
    pub rtcp_records: u64,
    /// RTP records of other payload types or SSRCs skipped.
    pub other_records: u64,
    /// Records that are neither RTP nor RTCP.
    pub invalid_records: u64,
    /// Position of the first frame.
    pub first_pts_ms: f64,
    /// Position of the last frame.
    pub last_pts_ms: f64,
    /// Length of the output.
    pub duration_ms: f64,
    /// What looked wrong, bounded.
    pub warnings: Vec<String>,
}

/// Why an extraction failed.
#[derive(thiserror::Error, Debug)]
pub enum ExtractError {
    /// A capture's header is unusable.
    #[error("segment {segment}: {source}")]
    Capture {
        /// Index of the segment.
        segment: usize,
        /// The rtpdump error.
        source: RtpdumpError,
    },
    /// No segment has packets of the payload type.
    #[error("no RTP packets of payload type {}", .payload_type.map_or_else(|| "any".to_owned(), |p| p.to_string()))]
    NoPackets {
        /// The payload type looked for (`None`: any).
        payload_type: Option<u8>,
    },
    /// The function does not handle this codec.
    #[error("{function} cannot extract {codec:?}")]
    UnsupportedCodec {
        /// The function called.
        function: &'static str,
        /// The codec configured.
        codec: AudioCodec,
    },
    /// A segment offset lies before the output start.
    #[error("segment {segment}: offset {offset_ms} ms is before the output start")]
    NegativeOffset {
        /// Index of the segment.
        segment: usize,
        /// The offset given.
        offset_ms: i64,
    },
    /// The output could not be written.
    #[error(transparent)]
    Mux(#[from] MuxError),
    /// The PCM sink stopped the extraction (e.g. the caller was interrupted).
    #[error("stopped by the caller: {reason}")]
    Stopped {
        /// Why.
        reason: String,
    },
}

/// The track chosen from the survey.
#[derive(Debug, Clone)]
struct Plan {
    pt: u8,
    ssrcs: Vec<Option<u32>>,
    stereo: bool,
}

/// Picks the track by the one rule of [`crate::track`]: the payload type for all segments (the
/// configured one, else the one with the most media packets over all of them), then each
/// segment's SSRC.
fn plan(
    segments: &[AudioSegmentInput<'_>],
    cfg: &AudioExtractConfig,
) -> Result<Plan, ExtractError> {
    let surveys = segments
        .iter()
        .enumerate()
        .map(|(segment, s)| {
            count_sources(s.capture).map_err(|source| ExtractError::Capture { segment, source })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let pt = match cfg.payload_type {
        Some(pt) => pt,
        None => dominant_payload_type(surveys.iter().flatten())
            .ok_or(ExtractError::NoPackets { payload_type: None })?,
    };
    let mut stereo = false;
    let ssrcs: Vec<Option<u32>> = surveys
        .iter()
        .map(|sources| {
            let track = choose_track(sources, Some(pt))?;
            stereo |= track.opus_stereo;
            Some(track.ssrc)
        })
        .collect();
    if ssrcs.iter().all(Option::is_none) {
        return Err(ExtractError::NoPackets {
            payload_type: cfg.payload_type,
        });
    }
    Ok(Plan { pt, ssrcs, stereo })
}

/// Counters of the record walk, outside the timeline.
#[derive(Debug, Default)]
struct WalkCounts {
    malformed: u64,
    padding_only: u64,
    rtcp: u64,
    other: u64,
    invalid: u64,
    warnings: Vec<String>,
}

/// Walks every segment's records through the timeline; `on_event` writes the output.
fn walk<'a>(
    segments: &[AudioSegmentInput<'a>],
    cfg: &AudioExtractConfig,
    plan: &Plan,
    on_event: &mut impl FnMut(AudioEvent<'a>) -> Result<(), ExtractError>,
) -> Result<(TimelineReport, WalkCounts), ExtractError> {
    let rate = cfg.codec.sample_rate();
    let mut tl_cfg = TimelineConfig::new(cfg.codec.rtp_clock(), rate);
    tl_cfg.fill_gaps = cfg.fill_gaps;
    tl_cfg.fix_dtx = cfg.fix_dtx;
    tl_cfg.reorder_window = cfg.reorder_window;
    let mut timeline = AudioTimeline::new(tl_cfg);
    let mut counts = WalkCounts::default();

    let mut order: Vec<usize> = (0..segments.len()).collect();
    order.sort_by_key(|&i| segments.get(i).map_or(0, |s| s.offset_ms));
    for i in order {
        let (Some(segment), Some(&Some(ssrc))) = (segments.get(i), plan.ssrcs.get(i)) else {
            continue;
        };
        let offset_ms =
            u64::try_from(segment.offset_ms).map_err(|_| ExtractError::NegativeOffset {
                segment: i,
                offset_ms: segment.offset_ms,
            })?;
        let offset = (u128::from(offset_ms) * u128::from(rate) / 1000) as u64;
        timeline.begin_drifting_segment(offset, segment.drift_ppm, on_event)?;
        let reader = RtpdumpReader::new(segment.capture)
            .map_err(|source| ExtractError::Capture { segment: i, source })?;
        for record in reader {
            let record = match record {
                Ok(r) => r,
                Err(e) => {
                    if counts.warnings.len() < crate::audio::MAX_WARNINGS {
                        counts
                            .warnings
                            .push(format!("segment {i}: {e}; rest of the capture skipped"));
                    }
                    break;
                }
            };
            if record.is_rtcp() {
                counts.rtcp += 1;
                continue;
            }
            let packet = match RtpPacket::parse(record.data) {
                Ok(p) => p,
                Err(_) if looks_like_rtcp(record.data) => {
                    counts.rtcp += 1;
                    continue;
                }
                Err(_) => {
                    counts.invalid += 1;
                    continue;
                }
            };
            if packet.payload_type != plan.pt || packet.ssrc != ssrc {
                counts.other += 1;
                continue;
            }
            if packet.is_padding_only() {
                counts.padding_only += 1;
                continue;
            }
            let duration = if record.truncated {
                None
            } else {
                cfg.codec.duration(packet.payload)
            };
            let Some(duration) = duration else {
                counts.malformed += 1;
                if counts.warnings.len() < crate::audio::MAX_WARNINGS {
                    counts.warnings.push(format!(
                        "segment {i}: malformed packet seq {} at byte {} skipped",
                        packet.sequence_number, record.byte_offset
                    ));
                }
                continue;
            };
            let audio = AudioPacket {
                seq: packet.sequence_number,
                timestamp: packet.timestamp,
                arrival_ms: record.offset_ms,
                duration,
                payload: packet.payload,
            };
            timeline.push(audio, on_event)?;
        }
    }
    let report = timeline.finish(on_event)?;
    Ok((report, counts))
}

fn build_report(
    cfg: &AudioExtractConfig,
    plan: &Plan,
    channels: u8,
    tl: TimelineReport,
    counts: WalkCounts,
    last_pts: u64,
) -> AudioExtractReport {
    let rate = cfg.codec.sample_rate();
    let ms = |samples: u64| samples as f64 * 1000.0 / f64::from(rate);
    let mut warnings = counts.warnings;
    warnings.extend(tl.warnings);
    if tl.warnings_dropped > 0 {
        warnings.push(format!("{} more timeline warnings", tl.warnings_dropped));
    }
    AudioExtractReport {
        payload_type: plan.pt,
        ssrcs: plan.ssrcs.clone(),
        sample_rate: rate,
        channels,
        packets_in: tl.packets_in,
        packets_written: tl.frames,
        fill_frames: 0,
        dtx_gaps: tl.dtx_filled.0,
        dtx_filled_ms: ms(tl.dtx_filled.1),
        loss_gaps: tl.loss_filled.0,
        loss_filled_ms: ms(tl.loss_filled.1),
        pause_gaps: tl.pause_filled.0,
        pause_filled_ms: ms(tl.pause_filled.1),
        closed_up_ms: ms(tl.closed_up),
        packets_lost: tl.packets_lost,
        duplicates: tl.duplicates,
        late: tl.late,
        malformed: counts.malformed,
        padding_only: counts.padding_only,
        overlap_dropped: tl.overlap_dropped,
        overlap_ms: ms(tl.overlap),
        resets: tl.resets,
        drift_corrected_ms: tl.drift_corrected as f64 * 1000.0 / f64::from(rate),
        drift_dropped: tl.drift_dropped,
        rtcp_records: counts.rtcp,
        other_records: counts.other,
        invalid_records: counts.invalid,
        first_pts_ms: ms(tl.first_pts.unwrap_or(0)),
        last_pts_ms: ms(last_pts),
        duration_ms: ms(tl.end),
        warnings,
    }
}

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
    if cfg.codec != AudioCodec::Opus {
        return Err(ExtractError::UnsupportedCodec {
            function: "extract_opus",
            codec: cfg.codec,
        });
    }
    let plan = plan(segments, cfg)?;
    let channels = if plan.stereo && cfg.channels >= 2 {
        2
    } else {
        1
    };
    let head = OpusHead {
        channels,
        ..OpusHead::default()
    };
    let mut output = match cfg.container {
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
    let mut filler = OpusFiller::new();
    let mut lace = Lace::default();
    // Fill packets copy the coding of the packet before them; before any, a CELT fullband one.
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
                output.flush_lace(&mut lace)?;
                if let Some(&toc) = data.first() {
                    last_toc = toc;
                }
                last_pts = pts;
                output.frame(pts, duration, data)?;
            }
            AudioEvent::Fill { pts, duration, .. } => {
                let mut at = pts;
                filler.fill(last_toc, duration, |packet, samples| {
                    output.fill_packet(&mut lace, at, packet, samples)?;
                    at += u64::from(samples);
                    fill_frames += 1;
                    Ok::<_, MuxError>(())
                })?;
            }
        }
        Ok(())
    };
    let (tl, counts) = walk(segments, cfg, &plan, &mut on_event)?;
    output.flush_lace(&mut lace)?;
    match output {
        OpusOut::Matroska { mut writer, .. } => {
            writer.set_duration_ns(opus_ns(tl.end));
            writer.finish()?;
        }
        OpusOut::Ogg(w) => {
            w.finish()?;
        }
    }
    let mut report = build_report(cfg, &plan, channels, tl, counts, last_pts);
    report.fill_frames = fill_frames;
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

/// [`extract_opus`]'s timeline, collected into memory instead of a file.
pub fn collect_opus(
    segments: &[AudioSegmentInput<'_>],
    cfg: &AudioExtractConfig,
) -> Result<(OpusPackets, AudioExtractReport), ExtractError> {
    if cfg.codec != AudioCodec::Opus {
        return Err(ExtractError::UnsupportedCodec {
            function: "collect_opus",
            codec: cfg.codec,
        });
    }
    let plan = plan(segments, cfg)?;
    let channels = if plan.stereo && cfg.channels >= 2 {
        2
    } else {
        1
    };
    let mut packets = OpusPackets {
        head: OpusHead {
            channels,
            ..OpusHead::default()
        },
        ..OpusPackets::default()
    };
    let mut filler = OpusFiller::new();
    let mut last_toc = 31u8 << 3 | u8::from(channels == 2) << 2;
    let mut fill_frames = 0u64;
    let mut last_pts = 0u64;
    let mut on_event = |event: AudioEvent<'_>| -> Result<(), ExtractError> {
        match event {
            AudioEvent::Frame { pts, data, .. } => {
                if let Some(&toc) = data.first() {
                    last_toc = toc;
                }
                last_pts = pts;
                packets.push(pts, data);
            }
            AudioEvent::Fill { pts, duration, .. } => {
                let mut at = pts;
                filler.fill(last_toc, duration, |packet, samples| {
                    packets.push(at, packet);
                    at += u64::from(samples);
                    fill_frames += 1;
                    Ok::<_, MuxError>(())
                })?;
            }
        }
        Ok(())
    };
    let (tl, counts) = walk(segments, cfg, &plan, &mut on_event)?;
    let mut report = build_report(cfg, &plan, channels, tl, counts, last_pts);
    report.fill_frames = fill_frames;
    Ok((packets, report))
}

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

#[cfg(test)]
#[allow(clippy::float_cmp)] // the ms figures compared are exact: whole samples at 48 kHz
mod tests {
    use super::*;
    use crate::mux::ebml::reader::{parse, Element};
    use crate::mux::ids;
    use crate::rtp::{build, PacketSpec};
    use crate::rtpdump::{write_header, write_record, write_rtp_record, FileHeader};
    use std::io::Cursor;

    const SSRC: u32 = 0xA0D1_0000;

    /// `(seq, ts, arrival_ms, payload)` records of payload type `pt` into a capture.
    fn capture(pt: u8, packets: &[(u16, u32, u32, Vec<u8>)]) -> Vec<u8> {
        let mut out = Vec::new();
        write_header(
            &mut out,
            &FileHeader {
                address: "192.0.2.1".into(),
                port: 5004,
                ..FileHeader::default()
            },
        );
        for (seq, ts, ms, payload) in packets {
            let spec = PacketSpec {
                payload_type: pt,
                sequence_number: *seq,
                timestamp: *ts,
                ssrc: SSRC,
                ..PacketSpec::default()
            };
            write_rtp_record(&mut out, *ms, &build(&spec, payload)).expect("record fits");
        }
        out
    }

    /// A mono CELT fullband 20 ms Opus packet with `n` bytes of (meaningless) body.
    fn opus20(n: usize) -> Vec<u8> {
        let mut p = vec![0xF8];
        p.resize(n + 1, 0x55);
        p
    }

    fn cfg(container: AudioContainer) -> AudioExtractConfig {
        AudioExtractConfig {
            payload_type: Some(111),
            container,
            ..AudioExtractConfig::default()
        }
    }

    /// Sums the 48 kHz durations of every frame in a Matroska file, laces included, and returns
    /// (total samples, block times in ms, Info duration).
    fn matroska_audio(data: &[u8]) -> (u64, Vec<u64>, f64) {
        let top = parse(data, 0..data.len());
        let segment: &Element = &top[1];
        let duration = segment
            .find(ids::INFO)
            .and_then(|i| i.find(ids::DURATION))
            .expect("duration")
            .float(data);
        let mut total = 0u64;
        let mut times = Vec::new();
        for cluster in segment.all(ids::CLUSTER) {
            let base = cluster.find(ids::TIMESTAMP).expect("timestamp").uint(data);
            for block in cluster.all(ids::SIMPLE_BLOCK) {
                let body = &data[block.body.clone()];
                let rel = i16::from_be_bytes([body[1], body[2]]);
                times.push((base as i64 + i64::from(rel)) as u64);
                let flags = body[3];
                let frames: Vec<&[u8]> = match flags & 0x06 {
                    0 => vec![&body[4..]],
                    0x04 => {
                        let n = usize::from(body[4]) + 1;
                        body[5..].chunks((body.len() - 5) / n).collect()
                    }
                    0x02 => {
                        let n = usize::from(body[4]) + 1;
                        let mut at = 5;
                        let mut lens = Vec::new();
                        for _ in 0..n - 1 {
                            let mut len = 0;
                            loop {
                                let b = body[at];
                                at += 1;
                                len += usize::from(b);
                                if b < 255 {
                                    break;
                                }
                            }
                            lens.push(len);
                        }
                        let mut frames = Vec::new();
                        for len in lens {
                            frames.push(&body[at..at + len]);
                            at += len;
                        }
                        frames.push(&body[at..]);
                        frames
                    }
                    _ => panic!("EBML lacing is never written"),
                };
                for f in frames {
                    total += u64::from(packet_info(f).expect("valid Opus").duration());
                }
            }
        }
        (total, times, duration)
    }

    /// 1 s of speech, a 2 s DTX pause, 2 lost packets, 1 s of speech.
    fn talk_with_holes() -> Vec<(u16, u32, u32, Vec<u8>)> {
        let mut packets = Vec::new();
        let mut seq = 1000u16;
        for i in 0..50u32 {
            packets.push((seq, 3_000_000 + i * 960, i * 20, opus20(60)));
            seq += 1;
        }
        // DTX: the timestamp jumps 2 s with contiguous sequence numbers.
        let resume = 3_000_000 + 50 * 960 + 96_000;
        for i in 0..50u32 {
            if i == 10 || i == 11 {
                seq += 1; // lost
                continue;
            }
            packets.push((seq, resume + i * 960, 3_000 + i * 20, opus20(60)));
            seq += 1;
        }
        packets
    }

    #[test]
    fn opus_into_matroska_keeps_the_exact_timeline() {
        let input = capture(111, &talk_with_holes());
        let segments = [AudioSegmentInput {
            capture: &input,
            offset_ms: 0,
            drift_ppm: 0.0,
        }];
        let out = Cursor::new(Vec::new());
        let mut buf = out;
        let report =
            extract_opus(&segments, &cfg(AudioContainer::Matroska), &mut buf).expect("extract");
        let data = buf.into_inner();
        let (samples, times, duration) = matroska_audio(&data);
        assert_eq!(
            samples,
            4 * 48_000,
            "decoded length is the 4 s wall-clock span"
        );
        assert_eq!(duration, 4_000.0);
        assert!(
            times.windows(2).all(|w| w[0] <= w[1]),
            "block times monotonic"
        );
        assert!(times.contains(&3_000), "speech resumes at 3 s");
        assert_eq!(report.packets_written, 98);
        assert_eq!((report.dtx_gaps, report.dtx_filled_ms), (1, 2_000.0));
        assert_eq!((report.loss_gaps, report.loss_filled_ms), (1, 40.0));
        assert_eq!(report.packets_lost, 2);
        assert_eq!(report.duration_ms, 4_000.0);
        assert_eq!(report.channels, 1, "no stereo TOC in the stream");
        assert_eq!(report.ssrcs, [Some(SSRC)]);
    }

    #[test]
    fn options_off_close_the_holes_up() {
        let input = capture(111, &talk_with_holes());
        let segments = [AudioSegmentInput {
            capture: &input,
            offset_ms: 0,
            drift_ppm: 0.0,
        }];
        let cases = [
            (
                "fix_dtx off removes the 2 s pause",
                false,
                true,
                2_000.0 + 40.0 - 40.0,
                2_000.0,
            ),
            (
                "fill_gaps off removes the 40 ms loss",
                true,
                false,
                4_000.0 - 40.0,
                40.0,
            ),
            (
                "both off leave only the packets",
                false,
                false,
                1_960.0,
                2_040.0,
            ),
        ];
        for (name, fix_dtx, fill_gaps, want_ms, closed_ms) in cases {
            let c = AudioExtractConfig {
                fill_gaps,
                fix_dtx,
                ..cfg(AudioContainer::Matroska)
            };
            let mut buf = Cursor::new(Vec::new());
            let report = extract_opus(&segments, &c, &mut buf).expect("extract");
            let (samples, _, _) = matroska_audio(buf.get_ref());
            assert_eq!(samples as f64 / 48.0, want_ms, "{name}");
            assert_eq!(report.duration_ms, want_ms, "{name}");
            assert_eq!(report.closed_up_ms, closed_ms, "{name}");
        }
    }

    #[test]
    fn a_three_hour_gap_costs_a_few_hundred_kilobytes() {
        let hours3 = 3 * 3_600 * 48_000u32;
        let packets = vec![
            (1, 0, 0, opus20(60)),
            (2, 960 + hours3, 10_800_020, opus20(60)),
        ];
        let input = capture(111, &packets);
        let segments = [AudioSegmentInput {
            capture: &input,
            offset_ms: 0,
            drift_ppm: 0.0,
        }];
        for container in [AudioContainer::Matroska, AudioContainer::Ogg] {
            let mut buf = Cursor::new(Vec::new());
            let report = extract_opus(&segments, &cfg(container), &mut buf).expect("extract");
            let size = buf.get_ref().len();
            assert!(
                size < 350_000,
                "{container:?}: {size} bytes for 3 h of fill"
            );
            assert_eq!(report.dtx_filled_ms, 10_800_000.0, "{container:?}");
            assert_eq!(report.resets, 0);
            if container == AudioContainer::Matroska {
                let (samples, _, _) = matroska_audio(buf.get_ref());
                assert_eq!(samples, u64::from(hours3) + 2 * 960);
            }
        }
    }

    #[test]
    fn ogg_granule_ends_at_the_span_and_segments_sit_at_their_offsets() {
        let first = capture(
            111,
            &(0..50u16)
                .map(|i| (i, u32::from(i) * 960, u32::from(i) * 20, opus20(40)))
                .collect::<Vec<_>>(),
        );
        // The second session starts 5 s into the output with new sequence numbers and timestamps.
        let second = capture(
            111,
            &(0..50u16)
                .map(|i| {
                    (
                        30_000 + i,
                        777 + u32::from(i) * 960,
                        u32::from(i) * 20,
                        opus20(40),
                    )
                })
                .collect::<Vec<_>>(),
        );
        let segments = [
            AudioSegmentInput {
                capture: &second,
                offset_ms: 5_000,
                drift_ppm: 0.0,
            },
            AudioSegmentInput {
                capture: &first,
                offset_ms: 0,
                drift_ppm: 0.0,
            },
        ];
        let mut buf = Cursor::new(Vec::new());
        let report = extract_opus(&segments, &cfg(AudioContainer::Ogg), &mut buf).expect("extract");
        let data = buf.into_inner();
        // The last page's granule is the decoded length (pre-skip 0): 6 s.
        let last_page = data.windows(4).rposition(|w| w == b"OggS").expect("a page");
        let granule =
            u64::from_le_bytes(data[last_page + 6..last_page + 14].try_into().expect("8"));
        assert_eq!(granule, 6 * 48_000);
        assert_eq!(data[last_page + 5] & 0x04, 0x04, "end of stream flagged");
        assert_eq!((report.pause_gaps, report.pause_filled_ms), (1, 4_000.0));
        assert_eq!(report.last_pts_ms, 5_980.0);
    }

    #[test]
    fn stereo_is_decided_by_the_stream() {
        let packets: Vec<_> = (0..5u16)
            .map(|i| {
                (
                    i,
                    u32::from(i) * 960,
                    u32::from(i) * 20,
                    vec![0xFC | 0x04, 1, 2],
                )
            })
            .collect();
        let input = capture(111, &packets);
        let segments = [AudioSegmentInput {
            capture: &input,
            offset_ms: 0,
            drift_ppm: 0.0,
        }];
        for (channels, want) in [(2, 2), (1, 1)] {
            let c = AudioExtractConfig {
                channels,
                ..cfg(AudioContainer::Webm)
            };
            let report = extract_opus(&segments, &c, Cursor::new(Vec::new())).expect("extract");
            assert_eq!(report.channels, want, "SDP allows {channels}");
        }
    }

    #[test]
    fn garbage_is_counted_and_skipped() {
        let mut input = capture(
            111,
            &[
                (1, 0, 0, opus20(10)),
                (2, 960, 20, vec![]),
                (3, 1_920, 40, vec![0xFB, 0]),
            ],
        );
        write_rtp_record(&mut input, 50, &[0x12, 0x34]).expect("garbage");
        write_record(&mut input, 55, 0, &[0x80, 200, 0, 1, 0, 0, 0, 0]).expect("rtcp");
        let other = build(
            &PacketSpec {
                payload_type: 0,
                ssrc: 9,
                ..PacketSpec::default()
            },
            &[0xFF; 160],
        );
        write_rtp_record(&mut input, 60, &other).expect("other pt");
        input.extend_from_slice(&[0, 40, 0]); // a cut-off record
        let segments = [AudioSegmentInput {
            capture: &input,
            offset_ms: 0,
            drift_ppm: 0.0,
        }];
        let report = extract_opus(
            &segments,
            &cfg(AudioContainer::Matroska),
            Cursor::new(Vec::new()),
        )
        .expect("extract");
        assert_eq!(report.packets_written, 1);
        assert_eq!(report.padding_only, 1, "an empty payload carries no media");
        assert_eq!(report.malformed, 1, "code 3 with zero frames");
        assert_eq!(
            (
                report.invalid_records,
                report.rtcp_records,
                report.other_records
            ),
            (1, 1, 1)
        );
        assert!(
            report.warnings.iter().any(|w| w.contains("truncated")),
            "{:?}",
            report.warnings
        );
    }

    #[test]
    fn unusable_input_is_a_typed_error() {
        let input = capture(111, &[(1, 0, 0, opus20(10))]);
        let seg = |capture| {
            [AudioSegmentInput {
                capture,
                offset_ms: 0,
                drift_ppm: 0.0,
            }]
        };
        let run = |segments: &[AudioSegmentInput<'_>], c: &AudioExtractConfig| {
            extract_opus(segments, c, Cursor::new(Vec::new()))
        };
        assert!(matches!(
            run(&seg(b"nope"), &cfg(AudioContainer::Ogg)),
            Err(ExtractError::Capture { segment: 0, .. })
        ));
        let wrong_pt = AudioExtractConfig {
            payload_type: Some(96),
            ..cfg(AudioContainer::Ogg)
        };
        assert!(matches!(
            run(&seg(&input), &wrong_pt),
            Err(ExtractError::NoPackets {
                payload_type: Some(96)
            })
        ));
        let pcmu = AudioExtractConfig {
            codec: AudioCodec::Pcmu,
            ..cfg(AudioContainer::Ogg)
        };
        assert!(matches!(
            run(&seg(&input), &pcmu),
            Err(ExtractError::UnsupportedCodec { .. })
        ));
        let negative = [AudioSegmentInput {
            capture: &input,
            offset_ms: -5,
            drift_ppm: 0.0,
        }];
        assert!(matches!(
            run(&negative, &cfg(AudioContainer::Ogg)),
            Err(ExtractError::NegativeOffset { .. })
        ));
    }

    #[test]
    fn g711_and_g722_decode_to_pcm_on_the_exact_timeline() {
        struct Case {
            name: &'static str,
            codec: AudioCodec,
            pt: u8,
            /// Payload bytes per 20 ms packet.
            bytes: usize,
            /// Output samples per 20 ms.
            samples: usize,
        }
        let cases = [
            Case {
                name: "µ-law",
                codec: AudioCodec::Pcmu,
                pt: 0,
                bytes: 160,
                samples: 160,
            },
            Case {
                name: "A-law",
                codec: AudioCodec::Pcma,
                pt: 8,
                bytes: 160,
                samples: 160,
            },
            Case {
                name: "G.722 at 16 kHz on an 8 kHz clock",
                codec: AudioCodec::G722,
                pt: 9,
                bytes: 160,
                samples: 320,
            },
        ];
        for case in cases {
            // Three packets, then a 100 ms DTX pause (RTP clock 8 kHz for all three), then one.
            let mut packets: Vec<_> = (0..3u16)
                .map(|i| {
                    (
                        i,
                        u32::from(i) * 160,
                        u32::from(i) * 20,
                        vec![0x80; case.bytes],
                    )
                })
                .collect();
            packets.push((3, 3 * 160 + 800, 160, vec![0x80; case.bytes]));
            let input = capture(case.pt, &packets);
            let segments = [AudioSegmentInput {
                capture: &input,
                offset_ms: 0,
                drift_ppm: 0.0,
            }];
            let c = AudioExtractConfig {
                payload_type: None,
                codec: case.codec,
                ..AudioExtractConfig::default()
            };
            let mut pcm = Vec::new();
            let report = decode_pcm(&segments, &c, |chunk| {
                pcm.extend_from_slice(chunk);
                Ok(())
            })
            .expect("decode");
            let per_ms = case.samples / 20;
            assert_eq!(
                pcm.len(),
                180 * per_ms,
                "{}: 60 ms + 100 ms + 20 ms",
                case.name
            );
            assert!(
                pcm[60 * per_ms..160 * per_ms].iter().all(|&s| s == 0),
                "{}: silence fill",
                case.name
            );
            assert!(
                pcm[..60 * per_ms].iter().any(|&s| s != 0),
                "{}: audio",
                case.name
            );
            assert_eq!(report.dtx_filled_ms, 100.0, "{}", case.name);
            assert_eq!(report.sample_rate as usize, per_ms * 1000, "{}", case.name);
        }
    }
}
