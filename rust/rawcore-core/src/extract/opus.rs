//! Opus into Matroska, WebM or Ogg, or into memory to mux beside video: never re-encoded, holes
//! filled with TOC-only packets the decoder conceals ([`OpusFiller`]), so the decoded length
//! equals the wall-clock span.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::io::{Seek, Write};

use super::audio::{build_report, plan, walk, Plan, Walk, WalkCounts};
use super::fec::Rebuilder;
use super::{
    AudioCodec, AudioContainer, AudioExtractConfig, AudioExtractReport, AudioSegmentInput,
    ExtractError,
};
use crate::audio::{AudioEvent, GapCause, TimelineReport};
use crate::depacketize::opus::{packet_info, OpusFiller, SAMPLE_RATE as OPUS_RATE};
use crate::mux::matroska::{DocType, MatroskaWriter, TrackEntry};
use crate::mux::ogg::OggOpusWriter;
use crate::mux::{MuxError, OpusHead};

/// Ogg stream serial number; fixed so the same input always gives the same bytes.
const OGG_SERIAL: u32 = 0x7261_7763; // "rawc"

/// Nanoseconds of `samples` at 48 kHz, rounded down: in 64 bits for any time under six
/// thousand years (a 128-bit division is a library call, and this runs per packet).
fn opus_ns(samples: u64) -> u64 {
    const NS_PER_TICK: (u64, u64) = (1_000_000_000 / 16_000, OPUS_RATE as u64 / 16_000); // 62500/3
    samples.checked_mul(NS_PER_TICK.0).map_or_else(
        || (u128::from(samples) * 1_000_000_000 / u128::from(OPUS_RATE)) as u64,
        |n| n / NS_PER_TICK.1,
    )
}

/// Where an Opus extraction's packets go: the track's frames as they are, and the packets that
/// fill its holes (with the reason for the hole).
trait OpusSink {
    fn frame(&mut self, pts: u64, duration: u64, data: &[u8]) -> Result<(), MuxError>;
    fn fill(
        &mut self,
        pts: u64,
        data: &[u8],
        samples: u32,
        cause: GapCause,
    ) -> Result<(), MuxError>;
}

impl<S: OpusSink> OpusSink for &mut S {
    fn frame(&mut self, pts: u64, duration: u64, data: &[u8]) -> Result<(), MuxError> {
        (**self).frame(pts, duration, data)
    }

    fn fill(
        &mut self,
        pts: u64,
        data: &[u8],
        samples: u32,
        cause: GapCause,
    ) -> Result<(), MuxError> {
        (**self).fill(pts, data, samples, cause)
    }
}

/// An Opus file being written.
///
/// Every packet, fill packets included, is a block (Matroska) or packet (Ogg) of its own. Fill
/// packets are never laced several to a Matroska block: FFmpeg's Opus decoder turns laced
/// packets of empty SILK or hybrid frames (`7b 06`) into loud noise where the speaker was
/// silent (RMS 0.15), apparently reading on into the lace entries after the packet, while the
/// same packet alone in its block, followed by FFmpeg's zero padding, decodes to silence.
/// libopus conceals both alike. A block costs 6 bytes more than a lace entry, 50 bytes per
/// second of silence: an hour of it takes 260 kB instead of 90 kB.
enum OpusFile<W: Write + Seek> {
    Matroska(Box<MatroskaWriter<W>>),
    Ogg(OggOpusWriter<W>),
}

impl<W: Write + Seek> OpusSink for OpusFile<W> {
    fn frame(&mut self, pts: u64, duration: u64, data: &[u8]) -> Result<(), MuxError> {
        match self {
            Self::Matroska(w) => w.write_frame(0, opus_ns(pts), data, true),
            Self::Ogg(w) => w.write_packet(data, duration as u32),
        }
    }

    fn fill(&mut self, pts: u64, data: &[u8], samples: u32, _: GapCause) -> Result<(), MuxError> {
        match self {
            Self::Matroska(w) => w.write_frame(0, opus_ns(pts), data, true),
            Self::Ogg(w) => w.write_fill_packet(data, samples),
        }
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

/// Writes the timeline's events into a sink: every frame as it is, every hole as fill packets
/// that copy the coding of the packet before them (before any, a CELT fullband one), and, with
/// FEC on, a lost frame whose successor carries LBRR as the frame [`Rebuilder`] makes of it. A
/// loss hole waits for the frame after it to decide.
struct OpusOutput<'a, S: OpusSink> {
    sink: S,
    filler: OpusFiller,
    last_toc: u8,
    last_pts: u64,
    fill_frames: u64,
    fec: Option<Rebuilder<'a>>,
    fec_recovered: u64,
    /// A loss hole `(pts, duration)` waiting for the frame after it.
    pending: Option<(u64, u64)>,
}

impl<'a, S: OpusSink> OpusOutput<'a, S> {
    fn new(sink: S, channels: u8, fec: bool) -> Self {
        Self {
            sink,
            filler: OpusFiller::new(),
            last_toc: 31u8 << 3 | u8::from(channels == 2) << 2,
            last_pts: 0,
            fill_frames: 0,
            fec: fec.then(|| Rebuilder::new(channels)),
            fec_recovered: 0,
            pending: None,
        }
    }

    fn event(&mut self, event: AudioEvent<'a>) -> Result<(), ExtractError> {
        match event {
            AudioEvent::Frame {
                pts,
                duration,
                data,
            } => {
                if let Some(hole) = self.pending.take() {
                    self.close_loss(hole, data)?;
                }
                if let Some(&toc) = data.first() {
                    self.last_toc = toc;
                }
                self.last_pts = pts;
                self.sink.frame(pts, duration, data)?;
                if let Some(fec) = &mut self.fec {
                    fec.wrote(Cow::Borrowed(data), duration, true);
                }
            }
            AudioEvent::Fill {
                pts,
                duration,
                cause,
            } => {
                self.finish()?;
                if cause == GapCause::Loss && self.fec.is_some() {
                    self.pending = Some((pts, duration));
                } else {
                    self.fill(pts, duration, cause)?;
                }
            }
        }
        Ok(())
    }

    /// Writes a loss hole that `next` follows: its last frame rebuilt from `next`'s LBRR when
    /// that works, the rest (or all of it) as fill.
    fn close_loss(&mut self, (pts, duration): (u64, u64), next: &[u8]) -> Result<(), MuxError> {
        let frame = packet_info(next).map_or(0, |i| u64::from(i.duration()));
        let rebuildable = frame > 0 && frame <= duration && Rebuilder::can_rebuild(next);
        if !rebuildable {
            return self.fill(pts, duration, GapCause::Loss);
        }
        self.fill(pts, duration - frame, GapCause::Loss)?;
        let rebuilt = self.fec.as_ref().and_then(|fec| fec.rebuild(next));
        let Some(packet) = rebuilt else {
            return self.fill(pts + duration - frame, frame, GapCause::Loss);
        };
        let at = pts + duration - frame;
        self.sink.frame(at, frame, &packet)?;
        if let Some(&toc) = packet.first() {
            self.last_toc = toc;
        }
        self.last_pts = at;
        self.fec_recovered += 1;
        if let Some(fec) = &mut self.fec {
            fec.wrote(Cow::Owned(packet), frame, false);
        }
        Ok(())
    }

    fn fill(&mut self, pts: u64, duration: u64, cause: GapCause) -> Result<(), MuxError> {
        let mut at = pts;
        let Self {
            sink,
            filler,
            fec,
            fill_frames,
            last_toc,
            ..
        } = self;
        filler.fill(*last_toc, duration, |packet, samples| {
            sink.fill(at, packet, samples, cause)?;
            if let Some(fec) = fec {
                fec.wrote(Cow::Owned(packet.to_vec()), u64::from(samples), false);
            }
            at += u64::from(samples);
            *fill_frames += 1;
            Ok::<_, MuxError>(())
        })?;
        Ok(())
    }

    /// Writes a loss hole still waiting (one that no frame followed).
    fn finish(&mut self) -> Result<(), MuxError> {
        match self.pending.take() {
            Some((pts, duration)) => self.fill(pts, duration, GapCause::Loss),
            None => Ok(()),
        }
    }
}

/// Runs the track's timeline into `sink` through an [`OpusOutput`]. Returns the report and the
/// output's end in 48 kHz samples.
fn run_opus(
    segments: &[AudioSegmentInput<'_>],
    cfg: &AudioExtractConfig,
    plan: &Plan,
    channels: u8,
    sink: impl OpusSink,
) -> Result<(AudioExtractReport, u64), ExtractError> {
    let mut out = OpusOutput::new(sink, channels, cfg.fec);
    let (tl, counts) = walk(segments, cfg, plan, &mut |event| out.event(event))?;
    out.finish()?;
    Ok(out.report(cfg, plan, channels, tl, counts))
}

impl<S: OpusSink> OpusOutput<'_, S> {
    /// The extraction's report, and the output's end in 48 kHz samples.
    fn report(
        &self,
        cfg: &AudioExtractConfig,
        plan: &Plan,
        channels: u8,
        tl: TimelineReport,
        counts: WalkCounts,
    ) -> (AudioExtractReport, u64) {
        let end = tl.end;
        let mut report = build_report(cfg, plan, channels, tl, counts, self.last_pts);
        report.fill_frames = self.fill_frames;
        report.fec_recovered = self.fec_recovered;
        (report, end)
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
    let (plan, channels) = opus_plan(segments, cfg, "extract_opus")?;
    let head = OpusHead {
        channels,
        ..OpusHead::default()
    };
    let mut file = match cfg.container {
        AudioContainer::Matroska | AudioContainer::Webm => {
            let doc = if cfg.container == AudioContainer::Webm {
                DocType::Webm
            } else {
                DocType::Matroska
            };
            let writer = MatroskaWriter::new(out, doc, vec![TrackEntry::Opus(head)])?;
            OpusFile::Matroska(Box::new(writer))
        }
        AudioContainer::Ogg => OpusFile::Ogg(OggOpusWriter::new(out, &head, OGG_SERIAL)?),
    };
    let (report, end) = run_opus(segments, cfg, &plan, channels, &mut file)?;
    match file {
        OpusFile::Matroska(mut writer) => {
            writer.set_duration_ns(opus_ns(end));
            writer.finish()?;
        }
        OpusFile::Ogg(w) => {
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

    fn fill(&mut self, pts: u64, data: &[u8], _: u32, _: GapCause) -> Result<(), MuxError> {
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

/// [`extract_opus`]'s report alone: the whole walk, every packet dropped as it is made.
pub fn survey_opus(
    segments: &[AudioSegmentInput<'_>],
    cfg: &AudioExtractConfig,
) -> Result<AudioExtractReport, ExtractError> {
    struct Drop;
    impl OpusSink for Drop {
        fn frame(&mut self, _: u64, _: u64, _: &[u8]) -> Result<(), MuxError> {
            Ok(())
        }
        fn fill(&mut self, _: u64, _: &[u8], _: u32, _: GapCause) -> Result<(), MuxError> {
            Ok(())
        }
    }
    let (plan, channels) = opus_plan(segments, cfg, "survey_opus")?;
    Ok(run_opus(segments, cfg, &plan, channels, Drop)?.0)
}

/// One packet of an [`OpusStream`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamPacket {
    /// The packet, as [`extract_opus`] writes it.
    pub data: Vec<u8>,
    /// For a packet that fills a hole, why the hole is there; `None` for a frame of the track
    /// (received, or rebuilt from FEC).
    pub fill: Option<GapCause>,
}

/// The packets an [`OpusStream`] has made and not yet handed over.
#[derive(Debug, Default)]
struct Queue(VecDeque<StreamPacket>);

impl OpusSink for Queue {
    fn frame(&mut self, _: u64, _: u64, data: &[u8]) -> Result<(), MuxError> {
        self.0.push_back(StreamPacket {
            data: data.to_vec(),
            fill: None,
        });
        Ok(())
    }

    fn fill(&mut self, _: u64, data: &[u8], _: u32, cause: GapCause) -> Result<(), MuxError> {
        self.0.push_back(StreamPacket {
            data: data.to_vec(),
            fill: Some(cause),
        });
        Ok(())
    }
}

/// [`extract_opus`]'s packets pulled one at a time, in order, straight from the captures: the
/// same walk, a few records at a time, so only the packets in flight (the reorder window, a
/// loss hole waiting for its successor, the FEC history) are held however long the track.
pub struct OpusStream<'a> {
    walk: Option<Walk<'a>>,
    out: OpusOutput<'a, Queue>,
    channels: u8,
    segments: usize,
    lengths: Vec<usize>,
}

impl std::fmt::Debug for OpusStream<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusStream")
            .field("channels", &self.channels)
            .field("queued", &self.out.sink.0.len())
            .finish_non_exhaustive()
    }
}

impl<'a> OpusStream<'a> {
    /// A stream of the track [`extract_opus`] would write from `segments`.
    pub fn new(
        segments: &[AudioSegmentInput<'a>],
        cfg: &AudioExtractConfig,
    ) -> Result<Self, ExtractError> {
        let (plan, channels) = opus_plan(segments, cfg, "OpusStream")?;
        Ok(Self {
            walk: Some(Walk::new(segments, cfg, &plan)),
            out: OpusOutput::new(Queue::default(), channels, cfg.fec),
            channels,
            segments: segments.len(),
            lengths: segments.iter().map(|s| s.capture.len()).collect(),
        })
    }

    /// The track's channels (1 or 2).
    #[must_use]
    pub fn channels(&self) -> u8 {
        self.channels
    }

    /// Per segment, in the order given to [`OpusStream::new`]: bytes of its capture read so
    /// far. The caller may let the operating system drop those pages of a mapped capture; the
    /// few packets still held are copies or are read again.
    #[must_use]
    pub fn walked(&self) -> Vec<usize> {
        match &self.walk {
            Some(walk) => walk.walked(self.segments),
            None => self.lengths.clone(),
        }
    }

    /// The next packet; `None` at the end of the track.
    pub fn next_packet(&mut self) -> Result<Option<StreamPacket>, ExtractError> {
        loop {
            if let Some(packet) = self.out.sink.0.pop_front() {
                return Ok(Some(packet));
            }
            let Some(walk) = &mut self.walk else {
                return Ok(None);
            };
            let out = &mut self.out;
            if !walk.step(&mut |event| out.event(event))? {
                if let Some(walk) = self.walk.take() {
                    walk.finish(&mut |event| out.event(event))?;
                }
                out.finish()?;
            }
        }
    }
}
