//! What an audio extraction takes and reports, which stream of each capture it takes, and the
//! one walk over the records that places every packet on the [`AudioTimeline`].
//!
//! The walk counts and skips RTCP, padding-only, garbage and malformed packets and hands the
//! rest to the timeline, which places each packet at its RTP timestamp plus its segment's
//! offset and reports the holes; [`super::opus`] and [`super::pcm`] turn its events into output.

use super::level::{G711Level, OpusLevel};
use crate::audio::{AudioEvent, AudioPacket, AudioTimeline, TimelineConfig, TimelineReport};
use crate::depacketize::opus::{packet_info, SAMPLE_RATE as OPUS_RATE};
use crate::mux::MuxError;
use crate::rtp::{looks_like_rtcp, RtpPacket};
use crate::rtpdump::{RtpdumpError, RtpdumpReader};
use crate::track::{choose_track, count_sources, dominant_payload_type};

/// The container [`super::extract_opus`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioContainer {
    /// Matroska (`.mka`).
    Matroska,
    /// WebM (`.webm`).
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
    pub(super) fn duration(self, payload: &[u8]) -> Option<u64> {
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
    /// inside the holes the timeline fills and at quiet spots (see [`crate::drift`]); 0 places packets
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
    /// Rebuild a lost Opus frame from the in-band FEC (LBRR) of the packet after it
    /// ([`super::fec`]) instead of concealing it.
    pub fec: bool,
    /// Each segment's SSRC (in segment order) as an earlier pass chose it by the rule of
    /// [`crate::track`] (the analysis' `primary_ssrc`), used with `payload_type` set (and, for
    /// Opus, `opus_stereo`): the capture is then read once. Empty, or `None` for a segment, lets
    /// the extraction choose, which costs a pass over that capture. A named SSRC without a
    /// packet of the payload type in its capture is an error ([`ExtractError::SsrcNotFound`]).
    pub ssrcs: Vec<Option<u32>>,
    /// Whether some packet of the named SSRCs' streams has the Opus TOC's stereo bit, as the
    /// same earlier pass counted it; `None` lets the extraction count it (a pass per capture).
    pub opus_stereo: Option<bool>,
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
            fec: true,
            ssrcs: Vec::new(),
            opus_stereo: None,
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
    /// Lost Opus frames rebuilt from their successor's in-band FEC (their time still counts in
    /// `loss_filled_ms`).
    pub fec_recovered: u64,
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
    /// Corrections made between frames, where no hole came to absorb the drift: `(at_ms,
    /// step_ms)`, the output position of the frame they precede and the time added (positive,
    /// concealment) or removed (negative, the frame dropped); at most 4,096 kept.
    pub drift_steps: Vec<(f64, f64)>,
    /// Frames decoded to find quiet spots for the drift corrections.
    pub drift_measured: u64,
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
    /// A segment's named SSRC has no packet of the payload type in its capture.
    #[error("segment {segment}: no packet of SSRC {ssrc:#010x} with payload type {payload_type}")]
    SsrcNotFound {
        /// Index of the segment.
        segment: usize,
        /// The SSRC named for it.
        ssrc: u32,
        /// The payload type extracted.
        payload_type: u8,
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
pub(super) struct Plan {
    pub(super) pt: u8,
    pub(super) ssrcs: Vec<Option<u32>>,
    pub(super) stereo: bool,
    /// Per segment: its SSRC was named by the caller, not counted, so the walk checks it.
    pub(super) named: Vec<bool>,
}

/// Picks the track by the one rule of [`crate::track`]: the payload type for all segments (the
/// configured one, else the one with the most media packets over all of them), then each
/// segment's SSRC. A segment whose SSRC the caller names (with the payload type, and for Opus
/// whether it is stereo) is not counted: its capture is read once, by the walk.
pub(super) fn plan(
    segments: &[AudioSegmentInput<'_>],
    cfg: &AudioExtractConfig,
) -> Result<Plan, ExtractError> {
    let named = |segment: usize| -> Option<u32> {
        let complete = cfg.payload_type.is_some()
            && (cfg.codec != AudioCodec::Opus || cfg.opus_stereo.is_some());
        complete.then(|| cfg.ssrcs.get(segment).copied().flatten())?
    };
    let surveys = segments
        .iter()
        .enumerate()
        .map(|(segment, s)| {
            if named(segment).is_some() {
                return Ok(None);
            }
            count_sources(s.capture)
                .map(Some)
                .map_err(|source| ExtractError::Capture { segment, source })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let pt = match cfg.payload_type {
        Some(pt) => pt,
        None => dominant_payload_type(surveys.iter().flatten().flatten())
            .ok_or(ExtractError::NoPackets { payload_type: None })?,
    };
    let mut stereo = cfg.opus_stereo.unwrap_or(false);
    let ssrcs: Vec<Option<u32>> = surveys
        .iter()
        .enumerate()
        .map(|(segment, sources)| match sources {
            None => named(segment),
            Some(sources) => {
                let track = choose_track(sources, Some(pt))?;
                stereo |= track.opus_stereo;
                Some(track.ssrc)
            }
        })
        .collect();
    if ssrcs.iter().all(Option::is_none) {
        return Err(ExtractError::NoPackets {
            payload_type: cfg.payload_type,
        });
    }
    let named = surveys.iter().map(Option::is_none).collect();
    Ok(Plan {
        pt,
        ssrcs,
        stereo,
        named,
    })
}

/// Counters of the record walk, outside the timeline.
#[derive(Debug, Default)]
pub(super) struct WalkCounts {
    malformed: u64,
    padding_only: u64,
    rtcp: u64,
    other: u64,
    invalid: u64,
    warnings: Vec<String>,
}

/// Walks every segment's records through the timeline; `on_event` writes the output.
pub(super) fn walk<'a>(
    segments: &[AudioSegmentInput<'a>],
    cfg: &AudioExtractConfig,
    plan: &Plan,
    on_event: &mut impl FnMut(AudioEvent<'a>) -> Result<(), ExtractError>,
) -> Result<(TimelineReport, WalkCounts), ExtractError> {
    let mut walk = Walk::new(segments, cfg, plan);
    while walk.step(on_event)? {}
    walk.finish(on_event)
}

/// Records taken per [`Walk::step`]: enough that a step costs nothing next to its caller's
/// work, few enough that a streaming caller holds only a few packets.
const STEP_RECORDS: usize = 16;

/// The walk of [`walk`], resumable: [`Walk::step`] walks a few records at a time, so a caller
/// can pull a track's events as it needs them (the mix) instead of holding the whole track.
pub(super) struct Walk<'a> {
    /// (index, segment, SSRC, SSRC named by the caller) in output order.
    segments: Vec<(usize, AudioSegmentInput<'a>, u32, bool)>,
    next_segment: usize,
    reader: Option<(usize, RtpdumpReader<'a>)>,
    /// Packets of the track in the current segment.
    matched: u64,
    pt: u8,
    codec: AudioCodec,
    rate: u32,
    timeline: AudioTimeline<'a>,
    counts: WalkCounts,
}

impl<'a> Walk<'a> {
    pub(super) fn new(
        segments: &[AudioSegmentInput<'a>],
        cfg: &AudioExtractConfig,
        plan: &Plan,
    ) -> Self {
        let rate = cfg.codec.sample_rate();
        let mut tl_cfg = TimelineConfig::new(cfg.codec.rtp_clock(), rate);
        tl_cfg.fill_gaps = cfg.fill_gaps;
        tl_cfg.fix_dtx = cfg.fix_dtx;
        tl_cfg.reorder_window = cfg.reorder_window;
        let mut timeline = AudioTimeline::new(tl_cfg);
        match cfg.codec {
            AudioCodec::Opus => timeline.set_level_meter(Box::new(OpusLevel::new())),
            AudioCodec::Pcmu => timeline.set_level_meter(Box::new(G711Level::new(false))),
            AudioCodec::Pcma => timeline.set_level_meter(Box::new(G711Level::new(true))),
            // G.722's adaptive decoder cannot start mid-stream: its frames count as quiet.
            AudioCodec::G722 => {}
        }
        let mut order: Vec<(usize, AudioSegmentInput<'a>, u32, bool)> = segments
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                let named = plan.named.get(i).copied().unwrap_or(false);
                Some((i, *s, (*plan.ssrcs.get(i)?)?, named))
            })
            .collect();
        order.sort_by_key(|(_, s, _, _)| s.offset_ms);
        Self {
            segments: order,
            next_segment: 0,
            reader: None,
            matched: 0,
            pt: plan.pt,
            codec: cfg.codec,
            rate,
            timeline,
            counts: WalkCounts::default(),
        }
    }

    /// Walks a few records; false once every record is walked (then call [`Walk::finish`]).
    pub(super) fn step(
        &mut self,
        on_event: &mut impl FnMut(AudioEvent<'a>) -> Result<(), ExtractError>,
    ) -> Result<bool, ExtractError> {
        if self.reader.is_none() {
            let Some(&(i, segment, _, _)) = self.segments.get(self.next_segment) else {
                return Ok(false);
            };
            let offset_ms =
                u64::try_from(segment.offset_ms).map_err(|_| ExtractError::NegativeOffset {
                    segment: i,
                    offset_ms: segment.offset_ms,
                })?;
            let offset = (u128::from(offset_ms) * u128::from(self.rate) / 1000) as u64;
            self.timeline
                .begin_drifting_segment(offset, segment.drift_ppm, on_event)?;
            let reader = RtpdumpReader::new(segment.capture)
                .map_err(|source| ExtractError::Capture { segment: i, source })?;
            self.reader = Some((i, reader));
            self.matched = 0;
        }
        let Some((i, reader)) = &mut self.reader else {
            return Ok(false);
        };
        let i = *i;
        let (_, _, ssrc, named) = self.segments[self.next_segment];
        let counts = &mut self.counts;
        for _ in 0..STEP_RECORDS {
            let record = match reader.next() {
                Some(Ok(r)) => r,
                end => {
                    if let Some(Err(e)) = end {
                        if counts.warnings.len() < crate::audio::MAX_WARNINGS {
                            counts
                                .warnings
                                .push(format!("segment {i}: {e}; rest of the capture skipped"));
                        }
                    }
                    if named && self.matched == 0 {
                        return Err(ExtractError::SsrcNotFound {
                            segment: i,
                            ssrc,
                            payload_type: self.pt,
                        });
                    }
                    self.reader = None;
                    self.next_segment += 1;
                    return Ok(true);
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
            if packet.payload_type != self.pt || packet.ssrc != ssrc {
                counts.other += 1;
                continue;
            }
            self.matched += 1;
            if packet.is_padding_only() {
                counts.padding_only += 1;
                continue;
            }
            let duration = if record.truncated {
                None
            } else {
                self.codec.duration(packet.payload)
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
            self.timeline.push(audio, on_event)?;
        }
        Ok(true)
    }

    /// Per segment, in the order they were given: bytes of its capture walked so far (all of
    /// it once the walk has moved past it; 0 for a segment it takes nothing from).
    pub(super) fn walked(&self, segments: usize) -> Vec<usize> {
        let mut walked = vec![0; segments];
        for (k, (i, segment, _, _)) in self.segments.iter().enumerate() {
            let bytes = match &self.reader {
                _ if k < self.next_segment => segment.capture.len(),
                Some((_, reader)) if k == self.next_segment => reader.position(),
                _ => 0,
            };
            if let Some(w) = walked.get_mut(*i) {
                *w = bytes;
            }
        }
        walked
    }

    /// Ends the walk: the timeline's last events and what it saw.
    pub(super) fn finish(
        self,
        on_event: &mut impl FnMut(AudioEvent<'a>) -> Result<(), ExtractError>,
    ) -> Result<(TimelineReport, WalkCounts), ExtractError> {
        let report = self.timeline.finish(on_event)?;
        Ok((report, self.counts))
    }
}

pub(super) fn build_report(
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
        fec_recovered: 0,
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
        drift_steps: tl
            .drift_steps
            .iter()
            .map(|&(pts, step)| (ms(pts), step as f64 * 1000.0 / f64::from(rate)))
            .collect(),
        drift_measured: tl.drift_measured,
        rtcp_records: counts.rtcp,
        other_records: counts.other,
        invalid_records: counts.invalid,
        first_pts_ms: ms(tl.first_pts.unwrap_or(0)),
        last_pts_ms: ms(last_pts),
        duration_ms: ms(tl.end),
        warnings,
    }
}
