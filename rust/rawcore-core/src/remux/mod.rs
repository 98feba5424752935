//! Remux Matroska / WebM into a fast-start MP4 without decoding: the packets as they are.
//!
//! Two passes over the same bytes, each fed in chunks of any size ([`mkv`] reads them). The
//! first ([`Scan`]) keeps only the sample tables (size, time, key flag per frame: a few bytes
//! each, no payloads) and builds `ftyp` + `moov` + the `mdat` header ([`mp4`]); the second
//! ([`Copy`]) hands every payload to the caller's sink in the order the tables describe, checking
//! that it sees the same frames. Memory is the tables plus one block, flat in the recording's
//! length apart from those few bytes per frame.
//!
//! The first video and the first audio track are taken (either can be left out). VP9, AV1,
//! H.264 and Opus go in; any other codec is refused, naming it. Matroska timestamps (in
//! `TimestampScale` units, usually 1 ms) become ticks of the track's timescale exactly when
//! the scale divides: 48 kHz for Opus, 90 kHz for video. A track whose first frame is not at 0
//! gets an edit list, so players present every packet at its Matroska time (for Opus, the
//! time minus `CodecDelay`, as Matroska defines it: an edit that skips the pre-skip). Timestamps that go
//! backwards within a track (B-frames stored in decode order) need composition offsets this
//! writer does not make: [`Scan::finish`] says so with [`RemuxError::Reordered`].

pub mod mkv;
pub mod mp4;

use mkv::{Frame, MkvError, MkvReader, MkvTrack, TrackKind};
use mp4::{SampleEntry, TrackTables};

/// Why a file cannot be remuxed.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum RemuxError {
    /// The Matroska input cannot be read.
    #[error(transparent)]
    Mkv(#[from] MkvError),
    /// A codec that has no MP4 sample entry here.
    #[error("{kind} codec {codec} cannot go into MP4 without re-encoding; use --mode editor")]
    Codec {
        /// `video` or `audio`.
        kind: &'static str,
        /// The codec's short name.
        codec: String,
    },
    /// A codec whose MP4 entry needs a configuration record the file does not carry.
    #[error("the {codec} track has no CodecPrivate (its {record} is needed in MP4)")]
    NoConfig {
        /// The codec.
        codec: &'static str,
        /// The record that is missing.
        record: &'static str,
    },
    /// Timestamps that go backwards within a track.
    #[error("track {track}: timestamps go backwards (reordered frames) at frame {frame}")]
    Reordered {
        /// Track number.
        track: u64,
        /// 0-based frame index.
        frame: usize,
    },
    /// Neither a video nor an audio track, or no frames in them.
    #[error("nothing to remux: {0}")]
    Nothing(&'static str),
    /// The second pass read different frames than the first.
    #[error("the input changed between the two passes (at byte {offset})")]
    Changed {
        /// Byte offset in the input.
        offset: u64,
    },
}

/// Which tracks to take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Select {
    /// The first video track.
    pub video: bool,
    /// The first audio track.
    pub audio: bool,
}

/// A track being planned: its tables grow in the first pass.
#[derive(Debug, Clone)]
struct Planned {
    number: u64,
    codec: &'static str,
    track: MkvTrack,
    entry: Option<SampleEntry>,
    timescale: u32,
    ticks: Vec<i64>,
    sizes: Vec<u32>,
    sync: Vec<u32>,
    /// The last frame's `BlockDuration` or Opus length, in ticks.
    last_duration: Option<u64>,
    /// `(offset within mdat, samples)`.
    chunks: Vec<(u64, u32)>,
}

/// Track timescale: the preferred one when Matroska timestamps land on it exactly, else the
/// Matroska rate itself when it is a whole number of ticks per second.
fn timescale(preferred: u32, scale_ns: u64) -> u32 {
    if (u128::from(scale_ns) * u128::from(preferred)) % 1_000_000_000 == 0 {
        return preferred;
    }
    if 1_000_000_000 % scale_ns == 0 {
        if let Ok(ts) = u32::try_from(1_000_000_000 / scale_ns) {
            return ts;
        }
    }
    preferred
}

fn to_ticks(units: i128, scale_ns: u64, timescale: u32) -> i128 {
    let num = units * i128::from(scale_ns) * i128::from(timescale);
    let den = 1_000_000_000i128;
    // Round half away from zero.
    if num >= 0 {
        (num + den / 2) / den
    } else {
        (num - den / 2) / den
    }
}

/// The shared per-frame logic of both passes: which planned track a frame belongs to.
#[derive(Debug, Default)]
struct Picked {
    /// `(track number, index into planned)`.
    numbers: Vec<(u64, usize)>,
    decided: bool,
}

fn pick(tracks: &[MkvTrack], select: Select) -> Result<Vec<Planned>, RemuxError> {
    let mut out = Vec::new();
    for (kind, wanted, name) in [
        (TrackKind::Video, select.video, "video"),
        (TrackKind::Audio, select.audio, "audio"),
    ] {
        let Some(t) = tracks.iter().find(|t| t.kind == kind) else {
            continue;
        };
        if !wanted {
            continue;
        }
        let codec: &'static str = match t.codec_id.as_str() {
            "V_VP9" => "vp9",
            "V_AV1" => "av1",
            "V_MPEG4/ISO/AVC" => "h264",
            "A_OPUS" => "opus",
            _ => {
                return Err(RemuxError::Codec {
                    kind: name,
                    codec: t.codec_name().to_owned(),
                })
            }
        };
        let entry = match codec {
            "av1" if t.codec_private.is_empty() => {
                return Err(RemuxError::NoConfig {
                    codec,
                    record: "AV1CodecConfigurationRecord",
                })
            }
            "h264" if t.codec_private.is_empty() => {
                return Err(RemuxError::NoConfig {
                    codec,
                    record: "AVCDecoderConfigurationRecord",
                })
            }
            "av1" => Some(SampleEntry::Av1 {
                av1c: t.codec_private.clone(),
            }),
            "h264" => Some(SampleEntry::Avc {
                avcc: t.codec_private.clone(),
            }),
            "opus" => Some(SampleEntry::opus(&t.codec_private, t.channels)),
            _ => None, // VP9: from the first frame
        };
        out.push(Planned {
            number: t.number,
            codec,
            track: t.clone(),
            entry,
            timescale: 0,
            ticks: Vec::new(),
            sizes: Vec::new(),
            sync: Vec::new(),
            last_duration: None,
            chunks: Vec::new(),
        });
    }
    if out.is_empty() {
        return Err(RemuxError::Nothing("no video or audio track"));
    }
    Ok(out)
}

/// The first pass: feed the whole file, then [`Scan::finish`].
#[derive(Debug)]
pub struct Scan {
    reader: MkvReader,
    select: Select,
    planned: Vec<Planned>,
    picked: Picked,
    mdat: u64,
    last: Option<usize>,
}

impl Scan {
    /// A first pass taking the tracks `select` names.
    #[must_use]
    pub fn new(select: Select) -> Self {
        Self {
            reader: MkvReader::new(),
            select,
            planned: Vec::new(),
            picked: Picked::default(),
            mdat: 0,
            last: None,
        }
    }

    /// Reads the next bytes of the file.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), RemuxError> {
        let Self {
            reader,
            select,
            planned,
            picked,
            mdat,
            last,
        } = self;
        let scale = reader.timestamp_scale;
        let result = reader.feed(chunk, &mut |tracks: &[MkvTrack], f: Frame<'_>| {
            if !picked.decided {
                *planned = pick(tracks, *select)?;
                for (i, p) in planned.iter_mut().enumerate() {
                    let preferred = if p.codec == "opus" { 48_000 } else { 90_000 };
                    p.timescale = timescale(preferred, scale);
                    picked.numbers.push((p.number, i));
                }
                picked.decided = true;
            }
            let Some(&(_, i)) = picked.numbers.iter().find(|(n, _)| *n == f.track) else {
                return Ok(());
            };
            let p = &mut planned[i];
            let size = u32::try_from(f.data.len()).unwrap_or(u32::MAX);
            if p.entry.is_none() {
                // VP9: profile (and so bit depth) from the first frame's header.
                let profile = crate::bitstream::vp9::parse_header(f.data).map_or(0, |h| h.profile);
                p.entry = Some(SampleEntry::Vp9 {
                    profile,
                    bit_depth: if profile >= 2 { 10 } else { 8 },
                });
            }
            // Matroska Opus timestamps include the codec delay (the pre-skip): a frame plays at
            // its timestamp minus the delay. In MP4 the same skip is the edit list's media time.
            let delay = if p.codec == "opus" {
                to_ticks(i128::from(p.track.codec_delay_ns), 1, p.timescale)
            } else {
                0
            };
            let ticks = to_ticks(i128::from(f.timestamp), scale, p.timescale) - delay;
            p.ticks
                .push(ticks.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64);
            p.sizes.push(size);
            if f.keyframe {
                p.sync.push(p.sizes.len() as u32);
            }
            p.last_duration = match (f.duration, p.codec) {
                (Some(d), _) => Some(to_ticks(i128::from(d), scale, p.timescale).max(0) as u64),
                (None, "opus") => crate::depacketize::opus::packet_info(f.data)
                    .ok()
                    .map(|info| u64::from(info.duration())),
                _ => None,
            };
            if *last == Some(i) {
                if let Some(c) = p.chunks.last_mut() {
                    c.1 += 1;
                }
            } else {
                p.chunks.push((*mdat, 1));
                *last = Some(i);
            }
            *mdat += u64::from(size);
            Ok::<(), RemuxError>(())
        });
        match result {
            Ok(()) => Ok(()),
            Err(Ok(e)) => Err(e),
            Err(Err(e)) => Err(e.into()),
        }
    }

    /// The plan: the MP4 header and what the second pass must see.
    pub fn finish(self) -> Result<Plan, RemuxError> {
        let truncated_at = self.reader.finish()?;
        if !self.picked.decided {
            // No frame came: still refuse an unusable codec first.
            let tracks = self.reader.tracks().unwrap_or_default();
            pick(tracks, self.select)?;
            return Err(RemuxError::Nothing("the tracks have no frames"));
        }
        let mut durations = Vec::with_capacity(self.planned.len());
        for p in &self.planned {
            if let Some(frame) = p.ticks.windows(2).position(|w| w[1] < w[0]) {
                return Err(RemuxError::Reordered {
                    track: p.number,
                    frame: frame + 1,
                });
            }
            let mut d: Vec<u32> = p
                .ticks
                .windows(2)
                .map(|w| u32::try_from(w[1] - w[0]).unwrap_or(u32::MAX))
                .collect();
            if !p.ticks.is_empty() {
                let default = (p.track.default_duration_ns > 0).then(|| {
                    to_ticks(i128::from(p.track.default_duration_ns), 1, p.timescale).max(0) as u64
                });
                let last = p
                    .last_duration
                    .or(default)
                    .or_else(|| d.last().map(|&x| u64::from(x)))
                    .unwrap_or(u64::from(p.timescale / 30));
                d.push(u32::try_from(last).unwrap_or(u32::MAX));
            }
            durations.push(d);
        }
        let planned: Vec<&Planned> = self
            .planned
            .iter()
            .filter(|p| !p.sizes.is_empty())
            .collect();
        if planned.is_empty() {
            return Err(RemuxError::Nothing("the tracks have no frames"));
        }
        let durations: Vec<&Vec<u32>> = self
            .planned
            .iter()
            .zip(&durations)
            .filter(|(p, _)| !p.sizes.is_empty())
            .map(|(_, d)| d)
            .collect();
        let entries: Vec<SampleEntry> = planned
            .iter()
            .map(|p| {
                p.entry.clone().unwrap_or(SampleEntry::Vp9 {
                    profile: 0,
                    bit_depth: 8,
                })
            })
            .collect();
        let build = |base: u64| -> Vec<u8> {
            let chunks: Vec<Vec<(u64, u32)>> = planned
                .iter()
                .map(|p| p.chunks.iter().map(|&(o, n)| (o + base, n)).collect())
                .collect();
            let tables: Vec<TrackTables<'_>> = planned
                .iter()
                .enumerate()
                .map(|(i, p)| TrackTables {
                    id: i as u32 + 1,
                    entry: &entries[i],
                    timescale: p.timescale,
                    width: p.track.width,
                    height: p.track.height,
                    start: p.ticks[0],
                    durations: durations[i],
                    sizes: &p.sizes,
                    sync: (p.codec != "opus" && p.sync.len() < p.sizes.len())
                        .then_some(p.sync.as_slice()),
                    chunks: &chunks[i],
                })
                .collect();
            mp4::header(&tables, self.mdat)
        };
        // Offsets depend on the header's length, which does not depend on them (fixed-width
        // fields) unless they cross 4 GiB: size it once, then build it with the real base.
        let first = build(0);
        let mut header = build(first.len() as u64);
        if header.len() != first.len() {
            header = build(header.len() as u64);
        }
        let tracks = planned
            .iter()
            .zip(&durations)
            .map(|(p, d)| {
                let media: u64 = d.iter().map(|&x| u64::from(x)).sum();
                let rate = f64::from(p.timescale);
                PlannedTrack {
                    number: p.number,
                    codec: p.codec,
                    frames: p.sizes.len(),
                    start_s: p.ticks[0] as f64 / rate,
                    end_s: (p.ticks[0] as f64 + media as f64) / rate,
                    width: p.track.width,
                    height: p.track.height,
                }
            })
            .collect();
        let sizes = planned
            .iter()
            .map(|p| (p.number, p.sizes.clone()))
            .collect();
        Ok(Plan {
            header,
            mdat_bytes: self.mdat,
            tracks,
            sizes,
            truncated_at,
        })
    }
}

/// A track as it went into the MP4.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedTrack {
    /// Matroska track number.
    pub number: u64,
    /// `vp9`, `av1`, `h264` or `opus`.
    pub codec: &'static str,
    /// Frames.
    pub frames: usize,
    /// First frame's time (s).
    pub start_s: f64,
    /// Last frame's end (s).
    pub end_s: f64,
    /// Picture size (video).
    pub width: u32,
    /// Picture size (video).
    pub height: u32,
}

/// What the first pass found: the MP4 header and the frames the second pass copies.
#[derive(Debug, Clone)]
pub struct Plan {
    header: Vec<u8>,
    mdat_bytes: u64,
    /// The tracks in the MP4, in order.
    pub tracks: Vec<PlannedTrack>,
    sizes: Vec<(u64, Vec<u32>)>,
    /// Where the input was cut short (the frames before it are kept), if it was.
    pub truncated_at: Option<u64>,
}

impl Plan {
    /// `ftyp` + `moov` + the `mdat` header: the first bytes of the MP4.
    #[must_use]
    pub fn header(&self) -> &[u8] {
        &self.header
    }

    /// Bytes of the whole MP4.
    #[must_use]
    pub fn total_bytes(&self) -> u64 {
        self.header.len() as u64 + self.mdat_bytes
    }

    /// The second pass over the same input.
    #[must_use]
    pub fn copy(&self) -> Copy<'_> {
        Copy {
            reader: MkvReader::new(),
            plan: self,
            next: vec![0; self.sizes.len()],
        }
    }
}

/// The second pass: feed the file again; every payload goes to the sink in MP4 order.
#[derive(Debug)]
pub struct Copy<'p> {
    reader: MkvReader,
    plan: &'p Plan,
    next: Vec<usize>,
}

impl Copy<'_> {
    /// Reads the next bytes; `sink` receives each payload to append to the MP4.
    pub fn feed<E>(
        &mut self,
        chunk: &[u8],
        sink: &mut impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), Result<E, RemuxError>> {
        let Self { reader, plan, next } = self;
        let offset = reader.position();
        let result = reader.feed(chunk, &mut |_: &[MkvTrack], f: Frame<'_>| {
            let Some(i) = plan.sizes.iter().position(|(n, _)| *n == f.track) else {
                return Ok(());
            };
            let k = next[i];
            if plan.sizes[i].1.get(k) != Some(&u32::try_from(f.data.len()).unwrap_or(u32::MAX)) {
                return Err(Err(RemuxError::Changed { offset }));
            }
            next[i] += 1;
            sink(f.data).map_err(Ok)
        });
        match result {
            Ok(()) => Ok(()),
            Err(Ok(inner)) => Err(inner),
            Err(Err(e)) => Err(Err(e.into())),
        }
    }

    /// Checks that every planned frame was copied.
    pub fn finish(self) -> Result<(), RemuxError> {
        let complete = self
            .plan
            .sizes
            .iter()
            .zip(&self.next)
            .all(|((_, s), &n)| s.len() == n);
        if complete {
            Ok(())
        } else {
            Err(RemuxError::Changed {
                offset: self.reader.position(),
            })
        }
    }
}

/// Remuxes a whole in-memory file (tests, fuzzing): the MP4 bytes.
pub fn remux_bytes(
    data: &[u8],
    select: Select,
    chunk: usize,
) -> Result<(Vec<u8>, Plan), RemuxError> {
    let chunk = chunk.max(1);
    let mut scan = Scan::new(select);
    for c in data.chunks(chunk) {
        scan.feed(c)?;
    }
    let plan = scan.finish()?;
    let mut out = plan.header().to_vec();
    let mut copy = plan.copy();
    for c in data.chunks(chunk) {
        copy.feed(c, &mut |payload: &[u8]| {
            out.extend_from_slice(payload);
            Ok::<(), std::convert::Infallible>(())
        })
        .map_err(|e| match e {
            Err(e) => e,
            Ok(never) => match never {},
        })?;
    }
    copy.finish()?;
    Ok((out, plan))
}
