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
//! time minus `CodecDelay`, as Matroska defines it: an edit that skips the pre-skip). H.264 frames
//! stored in decode order (B-frames: timestamps that go backwards) get decode times and
//! composition offsets (`ctts`, see [`Reorder`]); in any other track, timestamps that go
//! backwards are refused by [`Scan::finish`] with [`RemuxError::Reordered`].

pub mod mkv;
pub mod mp4;
pub mod pictures;

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
        let result = reader.feed(chunk, &mut |tracks: &[MkvTrack], f: Frame<'_>| {
            // The scale as of this frame: Info may come in the same chunk as the first blocks.
            let scale = f.scale_ns;
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
    #[allow(clippy::too_many_lines)] // the tables, the header and the report, in order
    pub fn finish(self) -> Result<Plan, RemuxError> {
        let truncated_at = self.reader.finish()?;
        if !self.picked.decided {
            // No frame came: still refuse an unusable codec first.
            let tracks = self.reader.tracks().unwrap_or_default();
            pick(tracks, self.select)?;
            return Err(RemuxError::Nothing("the tracks have no frames"));
        }
        let mut durations = Vec::with_capacity(self.planned.len());
        let mut reorders: Vec<Option<Reorder>> = Vec::with_capacity(self.planned.len());
        for p in &self.planned {
            let reorder = match p.ticks.windows(2).position(|w| w[1] < w[0]) {
                None => None,
                Some(_) if p.codec == "h264" => Some(Reorder::of(
                    &p.ticks,
                    crate::bitstream::h264::avcc_reorder_frames(&p.track.codec_private),
                )),
                Some(frame) => {
                    return Err(RemuxError::Reordered {
                        track: p.number,
                        frame: frame + 1,
                    })
                }
            };
            let decode = reorder.as_ref().map_or(&p.ticks, |r| &r.decode);
            let mut d: Vec<u32> = decode
                .windows(2)
                .map(|w| u32::try_from(w[1].saturating_sub(w[0])).unwrap_or(u32::MAX))
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
            reorders.push(reorder);
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
        let reorders: Vec<&Option<Reorder>> = self
            .planned
            .iter()
            .zip(&reorders)
            .filter(|(p, _)| !p.sizes.is_empty())
            .map(|(_, r)| r)
            .collect();
        // Where each track is first presented: its earliest time (the first frame's, unless
        // frames are stored in decode order).
        let starts: Vec<i64> = planned
            .iter()
            .zip(&reorders)
            .map(|(p, r)| r.as_ref().map_or(p.ticks[0], |r| r.start))
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
                    start: starts[i],
                    shift: reorders[i].as_ref().map_or(0, |r| r.shift),
                    durations: durations[i],
                    offsets: reorders[i].as_ref().map(|r| r.offsets.as_slice()),
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
            .zip(&starts)
            .map(|((p, d), &start)| {
                let media: u64 = d.iter().map(|&x| u64::from(x)).sum();
                let rate = f64::from(p.timescale);
                PlannedTrack {
                    number: p.number,
                    codec: p.codec,
                    frames: p.sizes.len(),
                    start_s: start as f64 / rate,
                    end_s: (start as f64 + media as f64) / rate,
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

/// H.264 frames stored in decode order (B-frames): Matroska keeps only each frame's
/// presentation time, MP4 wants decode times and composition offsets. A decoder holds
/// `k` frames before it outputs one (the SPS's `max_num_reorder_frames`), so frame `i` is
/// decoded at the presentation time `k` frames before it in presentation order: the sorted
/// presentation times, `i - k` (the first `k` frames one interval apart before the first
/// presentation time). This is the decode time FFmpeg's readers give the same stream. `k` is at
/// least what the stream needs for every decode time to be at or before its presentation time
/// (when the SPS says less or nothing), so every offset is >= 0.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Reorder {
    /// Decode time of every frame (ticks), non-decreasing.
    decode: Vec<i64>,
    /// Presentation minus decode time of every frame (ticks).
    offsets: Vec<u32>,
    /// The earliest presentation time (ticks).
    start: i64,
    /// The earliest presentation time minus the first decode time (ticks).
    shift: u64,
}

impl Reorder {
    fn of(presentation: &[i64], declared: Option<u32>) -> Self {
        let n = presentation.len();
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by_key(|&i| (presentation[i], i));
        let sorted: Vec<i64> = order.iter().map(|&i| presentation[i]).collect();
        // Frame `i` is `rank[i]`-th in presentation order: it needs k >= i - rank[i].
        let mut needed = 0usize;
        for (rank, &i) in order.iter().enumerate() {
            needed = needed.max(i.saturating_sub(rank));
        }
        let declared = declared.map_or(0, |d| usize::try_from(d).unwrap_or(usize::MAX));
        let k = needed.max(declared).min(n.saturating_sub(1));
        let step = if k == 0 {
            0
        } else {
            sorted[k].saturating_sub(sorted[0]) / k as i64
        };
        let decode: Vec<i64> = (0..n)
            .map(|i| {
                if i >= k {
                    sorted[i - k]
                } else {
                    sorted[0].saturating_sub(step.saturating_mul((k - i) as i64))
                }
            })
            .collect();
        let offsets = presentation
            .iter()
            .zip(&decode)
            .map(|(&p, &d)| u32::try_from(p.saturating_sub(d)).unwrap_or(u32::MAX))
            .collect();
        let start = sorted.first().copied().unwrap_or(0);
        let first = decode.first().copied().unwrap_or(0);
        Self {
            start,
            shift: start.saturating_sub(first).unsigned_abs(),
            decode,
            offsets,
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mux::matroska::{DocType, MatroskaWriter, TrackEntry};
    use crate::mux::OpusHead;
    use std::io::Cursor;

    /// `(track index, ns, bytes, key)` in write order.
    type Frames = Vec<(usize, u64, Vec<u8>, bool)>;

    /// A WebM of VP9 (starting at 300 ms) and Opus (20 ms frames from 0) written by rawcore's
    /// own Matroska writer, and its frames in file order.
    fn webm(seconds: u64) -> (Vec<u8>, Frames) {
        let tracks = vec![
            TrackEntry::Vp9 {
                width: 320,
                height: 180,
            },
            TrackEntry::Opus(OpusHead::default()),
        ];
        let mut w = MatroskaWriter::new(Cursor::new(Vec::new()), DocType::Webm, tracks).unwrap();
        let mut frames = Vec::new();
        let mut t = 0u64;
        while t < seconds * 1_000_000_000 {
            // Opus TOC 0xF8: CELT fullband 20 ms, one frame.
            let opus = vec![0xF8, (t / 20_000_000) as u8, 1, 2, 3];
            frames.push((1, t, opus, true));
            if t >= 300_000_000 && (t / 20_000_000) % 2 == 1 {
                let n = (t - 300_000_000) / 40_000_000;
                let key = n % 30 == 0;
                // A VP9 frame marker (profile 0, show_frame), then filler.
                let mut v = vec![if key { 0x82 } else { 0x86 }, 0x49, 0x83, 0x42, 0x00];
                v.resize(200 + (n as usize % 50), n as u8);
                frames.push((0, t, v, key));
            }
            t += 20_000_000;
        }
        for (track, ns, data, key) in &frames {
            w.write_frame(*track, *ns, data, *key).unwrap();
        }
        (w.finish().unwrap().into_inner(), frames)
    }

    fn both() -> Select {
        Select {
            video: true,
            audio: true,
        }
    }

    #[test]
    fn chunk_size_does_not_change_the_mp4_and_payloads_follow_the_index() {
        let (file, frames) = webm(3);
        let (whole, plan) = remux_bytes(&file, both(), file.len()).unwrap();
        for chunk in [1, 7, 4096] {
            let (out, _) = remux_bytes(&file, both(), chunk).unwrap();
            assert!(out == whole, "chunks of {chunk} bytes");
        }
        let payload: Vec<u8> = frames.iter().flat_map(|f| f.2.clone()).collect();
        assert_eq!(&whole[plan.header().len()..], &payload[..]);
        let moov = whole.windows(4).position(|w| w == b"moov").unwrap();
        let mdat = whole.windows(4).position(|w| w == b"mdat").unwrap();
        assert!(moov < mdat);
        let video = &plan.tracks[0];
        assert_eq!((video.codec, video.width, video.height), ("vp9", 320, 180));
        assert!((video.start_s - 0.3).abs() < 1e-9, "{}", video.start_s);
        let audio = &plan.tracks[1];
        assert_eq!((audio.codec, audio.frames), ("opus", 150));
        assert!(
            (audio.end_s - 3.0).abs() < 1e-9,
            "last Opus frame lasts its 20 ms"
        );
        assert_eq!(plan.truncated_at, None);
    }

    #[test]
    fn leaving_out_audio_keeps_only_the_video_payloads() {
        let (file, frames) = webm(1);
        let select = Select {
            video: true,
            audio: false,
        };
        let (out, plan) = remux_bytes(&file, select, 1000).unwrap();
        let payload: Vec<u8> = frames
            .iter()
            .filter(|f| f.0 == 0)
            .flat_map(|f| f.2.clone())
            .collect();
        assert_eq!(&out[plan.header().len()..], &payload[..]);
        assert_eq!(plan.tracks.len(), 1);
    }

    #[test]
    fn hostile_inputs_are_errors_not_panics() {
        let (file, _) = webm(1);
        // A Cluster whose SimpleBlock declares 2^55 bytes, in a Segment of known size and in one
        // of unknown size.
        let cluster = file
            .windows(4)
            .position(|w| w == [0x1F, 0x43, 0xB6, 0x75])
            .unwrap();
        let mut huge = file[..cluster].to_vec();
        huge.extend_from_slice(&[
            0x1F, 0x43, 0xB6, 0x75, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        ]);
        huge.extend_from_slice(&[0xE7, 0x81, 0x00, 0xA3, 0x01, 0x80, 0, 0, 0, 0, 0, 0, 0x81]);
        let mut huge_unknown = huge.clone();
        let segment = file
            .windows(4)
            .position(|w| w == [0x18, 0x53, 0x80, 0x67])
            .unwrap();
        huge_unknown[segment + 4..segment + 12].copy_from_slice(&crate::mux::ebml::UNKNOWN_SIZE);
        let mut deep = b"\x1A\x45\xDF\xA3\x80".to_vec();
        for _ in 0..10_000 {
            deep.extend_from_slice(&[0xA0, 0xFF]); // unknown-size masters, nested
        }
        let vp8 = {
            let mut w = MatroskaWriter::new(
                Cursor::new(Vec::new()),
                DocType::Webm,
                vec![TrackEntry::Vp8 {
                    width: 16,
                    height: 16,
                }],
            )
            .unwrap();
            w.write_frame(0, 0, &[0x10, 0, 0, 0x9D, 0x01, 0x2A], true)
                .unwrap();
            w.finish().unwrap().into_inner()
        };
        // (what, input, the error says)
        let cases: [(&str, Vec<u8>, &str); 8] = [
            ("empty", vec![], "empty or too short"),
            ("not EBML", b"RIFF\0\0\0\0WAVE".to_vec(), "no EBML header"),
            ("EBML header only", file[..40].to_vec(), "before its Tracks"),
            (
                "a block past its Segment's end",
                huge,
                "overruns its parent",
            ),
            (
                "a block too large to hold",
                huge_unknown,
                "declares 36028797018963968 bytes",
            ),
            ("nested unknown sizes", deep, "unknown size"),
            ("VP8", vp8, "codec vp8 cannot go into MP4"),
            (
                "a zero byte where an ID starts",
                b"\x00\x00\x00\x00".to_vec(),
                "longer than 4 bytes",
            ),
        ];
        for (what, data, says) in cases {
            let err = remux_bytes(&data, both(), 4096).expect_err(what);
            assert!(err.to_string().contains(says), "{what}: {err}");
            assert!(!err.to_string().contains('\n'), "{what}: one line");
        }
    }

    #[test]
    fn a_file_cut_mid_block_keeps_the_frames_before_the_cut() {
        let (file, _) = webm(2);
        let (_, full) = remux_bytes(&file, both(), 4096).unwrap();
        let cut = &file[..file.len() * 2 / 3];
        let (_, plan) = remux_bytes(cut, both(), 4096).unwrap();
        assert!(plan.truncated_at.is_some());
        assert!(plan.tracks[1].frames < full.tracks[1].frames);
    }

    #[test]
    fn decode_order_becomes_decode_times_and_offsets_that_are_never_negative() {
        // (case, presentation times in decode order, declared reorder frames, decode times,
        // offsets, start, shift)
        type Case = (
            &'static str,
            Vec<i64>,
            Option<u32>,
            Vec<i64>,
            Vec<u32>,
            i64,
            u64,
        );
        let cases: Vec<Case> = vec![
            (
                "in order: decode = presentation, no shift",
                vec![0, 3, 6],
                None,
                vec![0, 3, 6],
                vec![0, 0, 0],
                0,
                0,
            ),
            (
                "I P B B, nothing declared: one frame of delay is what it needs",
                vec![0, 9, 3, 6],
                None,
                vec![-3, 0, 3, 6],
                vec![3, 9, 0, 0],
                0,
                3,
            ),
            (
                "I P B B with 2 reorder frames declared (x264's b-pyramid): two frames",
                vec![0, 9, 3, 6],
                Some(2),
                vec![-6, -3, 0, 3],
                vec![6, 12, 3, 3],
                0,
                6,
            ),
            (
                "B-pyramid I P B b b, 1 declared (too few): the two it needs",
                vec![0, 12, 6, 3, 9],
                Some(1),
                vec![-6, -3, 0, 3, 6],
                vec![6, 15, 6, 0, 3],
                0,
                6,
            ),
            (
                "a later start and uneven intervals: decode times are presentation times",
                vec![300, 310, 303, 306, 320, 314],
                None,
                vec![297, 300, 303, 306, 310, 314],
                vec![3, 10, 0, 0, 10, 0],
                300,
                3,
            ),
            ("one frame", vec![5], Some(2), vec![5], vec![0], 5, 0),
        ];
        for (case, pts, declared, decode, offsets, start, shift) in cases {
            let r = Reorder::of(&pts, declared);
            assert_eq!(r.decode, decode, "{case}");
            assert_eq!(r.offsets, offsets, "{case}");
            assert_eq!((r.start, r.shift), (start, shift), "{case}");
            assert!(
                r.decode.windows(2).all(|w| w[0] <= w[1]),
                "{case}: decode order"
            );
            for ((p, d), o) in pts.iter().zip(&r.decode).zip(&r.offsets) {
                assert_eq!(
                    d + i64::from(*o),
                    *p,
                    "{case}: decode + offset = presentation"
                );
            }
        }
    }

    #[test]
    fn timestamps_become_exact_ticks_of_the_track_timescale() {
        // (what, preferred, scale ns, units, timescale, ticks)
        let cases = [
            ("ms to 90 kHz", 90_000, 1_000_000, 33, 90_000, 2_970),
            ("ms to 48 kHz", 48_000, 1_000_000, 20, 48_000, 960),
            (
                "us: 90 kHz would round, so microseconds",
                90_000,
                1_000,
                33_367,
                1_000_000,
                33_367,
            ),
            (
                "a scale 90 kHz misses: its own rate",
                90_000,
                1_000_007,
                1,
                90_000,
                90,
            ),
            (
                "100 ns units: 48 kHz would round, so 10 MHz",
                48_000,
                100,
                200_000,
                10_000_000,
                200_000,
            ),
        ];
        for (what, preferred, scale, units, want_ts, want_ticks) in cases {
            let ts = timescale(preferred, scale);
            assert_eq!(ts, want_ts, "{what}");
            assert_eq!(to_ticks(units, scale, ts), want_ticks, "{what}");
        }
    }

    proptest::proptest! {
        #[test]
        fn mutated_files_never_panic(flips in proptest::collection::vec((0usize..4000, proptest::num::u8::ANY), 1..8), chunk in 1usize..5000) {
            let (mut file, _) = webm(1);
            for (at, byte) in flips {
                let n = file.len();
                file[at % n] ^= byte;
            }
            let _ = remux_bytes(&file, both(), chunk);
        }
    }
}
