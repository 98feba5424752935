//! A streaming Matroska / WebM reader: bytes in, in any chunk sizes; tracks and coded frames out.
//!
//! It reads what rawcore and common WebRTC recorders write: the EBML header, a Segment (known or
//! unknown size), Info (timestamp scale), Tracks (codec ID, `CodecPrivate`, `CodecDelay`, picture
//! size, channels), and Clusters (known or unknown size) of `SimpleBlocks` and `BlockGroups`, laced
//! (Xiph, EBML, fixed) or not. Everything else at those levels (SeekHead, Cues, Tags, Void,
//! Attachments, Chapters) is skipped without being held. Only elements it reads are buffered,
//! each at most [`MAX_ELEMENT`] bytes, so memory is bounded by the largest block, not the file.
//! Masters are entered only at the two known levels (Segment, Cluster) and parsed in memory only
//! at fixed depths (Tracks), so no nesting can recurse. Frames come out in file order with their
//! timestamps in `TimestampScale` units (nanoseconds × scale).

use crate::depacketize::opus::packet_info;

/// Largest element the reader holds in memory (a block or the Tracks element).
pub const MAX_ELEMENT: u64 = 64 << 20;

mod id {
    pub const EBML: u32 = 0x1A45_DFA3;
    pub const DOC_TYPE: u32 = 0x4282;
    pub const SEGMENT: u32 = 0x1853_8067;
    pub const INFO: u32 = 0x1549_A966;
    pub const TIMESTAMP_SCALE: u32 = 0x2A_D7B1;
    pub const TRACKS: u32 = 0x1654_AE6B;
    pub const TRACK_ENTRY: u32 = 0xAE;
    pub const TRACK_NUMBER: u32 = 0xD7;
    pub const TRACK_TYPE: u32 = 0x83;
    pub const CODEC_ID: u32 = 0x86;
    pub const CODEC_PRIVATE: u32 = 0x63A2;
    pub const CODEC_DELAY: u32 = 0x56AA;
    pub const DEFAULT_DURATION: u32 = 0x23_E383;
    pub const VIDEO: u32 = 0xE0;
    pub const PIXEL_WIDTH: u32 = 0xB0;
    pub const PIXEL_HEIGHT: u32 = 0xBA;
    pub const AUDIO: u32 = 0xE1;
    pub const CHANNELS: u32 = 0x9F;
    pub const CLUSTER: u32 = 0x1F43_B675;
    pub const TIMESTAMP: u32 = 0xE7;
    pub const SIMPLE_BLOCK: u32 = 0xA3;
    pub const BLOCK_GROUP: u32 = 0xA0;
    pub const BLOCK: u32 = 0xA1;
    pub const BLOCK_DURATION: u32 = 0x9B;
    pub const REFERENCE_BLOCK: u32 = 0xFB;
    /// Children of a Segment: any of them ends an unknown-size Cluster.
    pub const SEGMENT_CHILDREN: [u32; 8] = [
        0x114D_9B74, // SeekHead
        INFO,
        TRACKS,
        CLUSTER,
        0x1C53_BB6B, // Cues
        0x1941_A469, // Attachments
        0x1043_A770, // Chapters
        0x1254_C367, // Tags
    ];
}

/// Why a Matroska file cannot be read.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum MkvError {
    /// The file does not start with an EBML header of a Matroska or WebM document.
    #[error("not a Matroska or WebM file ({reason})")]
    NotMatroska {
        /// What was found instead.
        reason: String,
    },
    /// An element that cannot be parsed.
    #[error("malformed Matroska at byte {offset}: {reason}")]
    Malformed {
        /// Byte offset of the element.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// An element larger than the reader holds in memory.
    #[error("Matroska element {id:#X} at byte {offset} declares {size} bytes (more than {max})")]
    TooLarge {
        /// Element ID.
        id: u32,
        /// Byte offset.
        offset: u64,
        /// Declared size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// A block before the Tracks element, or of a track the file does not declare.
    #[error("a block at byte {offset} names track {track}, which the file does not declare")]
    UnknownTrack {
        /// Byte offset.
        offset: u64,
        /// The track number.
        track: u64,
    },
}

/// What a track is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackKind {
    /// Pictures.
    Video,
    /// Sound.
    Audio,
    /// Subtitles, buttons, metadata.
    Other,
}

/// One `TrackEntry`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MkvTrack {
    /// The track number blocks name.
    pub number: u64,
    /// Video, audio or other.
    pub kind: TrackKind,
    /// The Matroska codec ID (`V_VP9`, `A_OPUS`, …).
    pub codec_id: String,
    /// `CodecPrivate`, empty when absent.
    pub codec_private: Vec<u8>,
    /// `CodecDelay` in nanoseconds.
    pub codec_delay_ns: u64,
    /// `DefaultDuration` in nanoseconds.
    pub default_duration_ns: u64,
    /// Picture size (video).
    pub width: u32,
    /// Picture size (video).
    pub height: u32,
    /// Channels (audio).
    pub channels: u8,
}

impl MkvTrack {
    /// The codec's short name as FFmpeg and rawcore's manifests spell it.
    #[must_use]
    pub fn codec_name(&self) -> &str {
        match self.codec_id.as_str() {
            "V_VP8" => "vp8",
            "V_VP9" => "vp9",
            "V_AV1" => "av1",
            "V_MPEG4/ISO/AVC" => "h264",
            "V_MPEGH/ISO/HEVC" => "hevc",
            "A_OPUS" => "opus",
            "A_VORBIS" => "vorbis",
            "A_FLAC" => "flac",
            "A_PCM/INT/LIT" => "pcm",
            "A_AAC" => "aac",
            other => other,
        }
    }
}

/// One coded frame: its track, timestamp (`TimestampScale` units), key flag and bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Track number.
    pub track: u64,
    /// Timestamp in `TimestampScale` units.
    pub timestamp: i64,
    /// A random-access point.
    pub keyframe: bool,
    /// `BlockDuration` in `TimestampScale` units, when the block has one.
    pub duration: Option<u64>,
    /// The coded frame.
    pub data: &'a [u8],
    /// Nanoseconds per timestamp unit (the file's `TimestampScale`).
    pub scale_ns: u64,
}

/// An open master element: its ID and where it ends (None: unknown size).
#[derive(Debug, Clone, Copy)]
struct Open {
    id: u32,
    end: Option<u64>,
}

/// The streaming reader. Feed it with [`MkvReader::feed`], end with [`MkvReader::finish`].
#[derive(Debug)]
pub struct MkvReader {
    buf: Vec<u8>,
    /// Absolute offset of `buf[0]`.
    base: u64,
    /// Bytes still to skip (of an element that is not read).
    skip: u64,
    stack: Vec<Open>,
    header_seen: bool,
    /// Nanoseconds per timestamp unit.
    pub timestamp_scale: u64,
    cluster_ts: i64,
    tracks: Option<Vec<MkvTrack>>,
}

impl Default for MkvReader {
    fn default() -> Self {
        Self::new()
    }
}

/// Reads a vint at `data[0..]`: `(value, length)`, None when more bytes are needed; `Err` when
/// the first byte is zero (longer than 8 bytes). `keep_marker` keeps the length bit (IDs).
fn vint(data: &[u8], keep_marker: bool) -> Option<Result<(u64, usize), ()>> {
    let first = *data.first()?;
    if first == 0 {
        return Some(Err(()));
    }
    let len = first.leading_zeros() as usize + 1;
    let bytes = data.get(..len)?;
    let mut value = if keep_marker {
        u64::from(first)
    } else {
        u64::from(first) & (0xFF >> len)
    };
    for &b in &bytes[1..] {
        value = value << 8 | u64::from(b);
    }
    Some(Ok((value, len)))
}

/// An element header: ID, size (None: unknown) and header length.
type Header = (u32, Option<u64>, usize);

fn header(data: &[u8], offset: u64) -> Result<Option<Header>, MkvError> {
    let bad = |reason: &str| MkvError::Malformed {
        offset,
        reason: reason.to_owned(),
    };
    let Some(id) = vint(data, true) else {
        return Ok(None);
    };
    let (id, id_len) = id.map_err(|()| bad("an element ID longer than 4 bytes"))?;
    if id_len > 4 {
        return Err(bad("an element ID longer than 4 bytes"));
    }
    let Some(size) = vint(&data[id_len..], false) else {
        return Ok(None);
    };
    let (size, size_len) = size.map_err(|()| bad("an element size longer than 8 bytes"))?;
    let unknown = size == (1u64 << (7 * size_len)) - 1;
    Ok(Some((
        id as u32,
        (!unknown).then_some(size),
        id_len + size_len,
    )))
}

/// The children of an in-memory master: `(id, body)`; `Err` on a child that overruns.
fn children(data: &[u8], offset: u64) -> Result<Vec<(u32, &[u8])>, MkvError> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at < data.len() {
        let here = offset + at as u64;
        let Some((id, size, hlen)) = header(&data[at..], here)? else {
            return Err(MkvError::Malformed {
                offset: here,
                reason: "an element header cut short".into(),
            });
        };
        let size = size.ok_or_else(|| MkvError::Malformed {
            offset: here,
            reason: "an unknown size inside a sized element".into(),
        })?;
        let body = at + hlen;
        let end = usize::try_from(size)
            .ok()
            .and_then(|s| body.checked_add(s))
            .filter(|&e| e <= data.len())
            .ok_or_else(|| MkvError::Malformed {
                offset: here,
                reason: format!("element {id:#X} overruns its parent"),
            })?;
        out.push((id, &data[body..end]));
        at = end;
    }
    Ok(out)
}

fn uint(body: &[u8]) -> u64 {
    body.iter()
        .take(8)
        .fold(0, |acc, &b| acc << 8 | u64::from(b))
}

fn parse_track(body: &[u8], offset: u64) -> Result<MkvTrack, MkvError> {
    let mut t = MkvTrack {
        number: 0,
        kind: TrackKind::Other,
        codec_id: String::new(),
        codec_private: Vec::new(),
        codec_delay_ns: 0,
        default_duration_ns: 0,
        width: 0,
        height: 0,
        channels: 1,
    };
    for (cid, b) in children(body, offset)? {
        match cid {
            id::TRACK_NUMBER => t.number = uint(b),
            id::TRACK_TYPE => {
                t.kind = match uint(b) {
                    1 => TrackKind::Video,
                    2 => TrackKind::Audio,
                    _ => TrackKind::Other,
                }
            }
            id::CODEC_ID => {
                String::from_utf8_lossy(b)
                    .trim_end_matches('\0')
                    .clone_into(&mut t.codec_id);
            }
            id::CODEC_PRIVATE => t.codec_private = b.to_vec(),
            id::CODEC_DELAY => t.codec_delay_ns = uint(b),
            id::DEFAULT_DURATION => t.default_duration_ns = uint(b),
            id::VIDEO => {
                for (vid, vb) in children(b, offset)? {
                    match vid {
                        id::PIXEL_WIDTH => t.width = uint(vb).min(u64::from(u32::MAX)) as u32,
                        id::PIXEL_HEIGHT => t.height = uint(vb).min(u64::from(u32::MAX)) as u32,
                        _ => {}
                    }
                }
            }
            id::AUDIO => {
                for (aid, ab) in children(b, offset)? {
                    if aid == id::CHANNELS {
                        t.channels = uint(ab).clamp(1, 255) as u8;
                    }
                }
            }
            _ => {}
        }
    }
    if t.number == 0 {
        return Err(MkvError::Malformed {
            offset,
            reason: "a TrackEntry without a track number".into(),
        });
    }
    Ok(t)
}

impl MkvReader {
    /// A reader at the start of a file.
    #[must_use]
    pub fn new() -> Self {
        Self {
            buf: Vec::new(),
            base: 0,
            skip: 0,
            stack: Vec::new(),
            header_seen: false,
            timestamp_scale: 1_000_000,
            cluster_ts: 0,
            tracks: None,
        }
    }

    /// The tracks, once the Tracks element has been read.
    #[must_use]
    pub fn tracks(&self) -> Option<&[MkvTrack]> {
        self.tracks.as_deref()
    }

    /// Bytes consumed so far.
    #[must_use]
    pub fn position(&self) -> u64 {
        self.base
    }

    /// Reads `chunk` (the next bytes of the file), calling `on_frame` for every complete frame.
    /// `on_frame` may stop the reading with its own error, handed back as `Err(Ok(e))`.
    pub fn feed<E>(
        &mut self,
        chunk: &[u8],
        on_frame: &mut impl FnMut(&[MkvTrack], Frame<'_>) -> Result<(), E>,
    ) -> Result<(), Result<E, MkvError>> {
        // Parsed in place when nothing is pending (the usual case: blocks are small next to a
        // chunk), so payloads are not copied; only an element cut by the chunk's end is held.
        let consumed = if self.buf.is_empty() {
            let consumed = self.parse(chunk, on_frame);
            let used = match consumed {
                Ok(n) | Err((n, _)) => n,
            };
            self.buf.extend_from_slice(&chunk[used..]);
            self.base += used as u64;
            consumed
        } else {
            let mut buf = std::mem::take(&mut self.buf);
            buf.extend_from_slice(chunk);
            let consumed = self.parse(&buf, on_frame);
            let used = match consumed {
                Ok(n) | Err((n, _)) => n,
            };
            buf.drain(..used);
            self.buf = buf;
            self.base += used as u64;
            consumed
        };
        consumed.map(|_| ()).map_err(|(_, e)| e)
    }

    /// Whether the input ended cleanly (between elements): `Ok(None)`, or where an element was
    /// cut short: `Ok(Some(offset))`. A file without tracks is an error.
    pub fn finish(&self) -> Result<Option<u64>, MkvError> {
        if !self.header_seen {
            return Err(MkvError::NotMatroska {
                reason: "the file is empty or too short".into(),
            });
        }
        if self.tracks.is_none() {
            return Err(MkvError::Malformed {
                offset: self.base,
                reason: "the file ends before its Tracks element".into(),
            });
        }
        Ok((self.skip > 0 || !self.buf.is_empty()).then_some(self.base))
    }

    #[allow(clippy::too_many_lines)] // one state machine, read top to bottom
    fn parse<E>(
        &mut self,
        data: &[u8],
        on_frame: &mut impl FnMut(&[MkvTrack], Frame<'_>) -> Result<(), E>,
    ) -> Result<usize, (usize, Result<E, MkvError>)> {
        let mut at = 0usize;
        loop {
            if self.skip > 0 {
                let n = self.skip.min((data.len() - at) as u64);
                at += n as usize;
                self.skip -= n;
                if self.skip > 0 {
                    return Ok(at);
                }
            }
            let offset = self.base + at as u64;
            // Close the sized masters that end here.
            while let Some(Open { end: Some(end), .. }) = self.stack.last() {
                if offset >= *end {
                    self.stack.pop();
                } else {
                    break;
                }
            }
            let Some((eid, size, hlen)) = header(&data[at..], offset).map_err(|e| (at, Err(e)))?
            else {
                return Ok(at);
            };
            if !self.header_seen {
                if eid != id::EBML {
                    return Err((
                        at,
                        Err(MkvError::NotMatroska {
                            reason: "no EBML header".into(),
                        }),
                    ));
                }
            } else if eid == id::EBML && self.stack.is_empty() {
                return Err((
                    at,
                    Err(MkvError::Malformed {
                        offset,
                        reason: "a second EBML header (chained files are not read)".into(),
                    }),
                ));
            }
            // An unknown-size Cluster ends at the next element of Segment level.
            if let Some(Open {
                id: id::CLUSTER,
                end: None,
            }) = self.stack.last()
            {
                if id::SEGMENT_CHILDREN.contains(&eid) || eid == id::EBML {
                    self.stack.pop();
                }
            }
            let parent = self.stack.last().map(|o| o.id);
            let body_start = offset + hlen as u64;
            let end = size.map(|s| body_start.saturating_add(s));
            // Inside the nearest enclosing master of known size.
            let bound = self.stack.iter().rev().find_map(|o| o.end);
            if let (Some(end), Some(bound)) = (end, bound) {
                if end > bound {
                    return Err((
                        at,
                        Err(MkvError::Malformed {
                            offset,
                            reason: format!("element {eid:#X} overruns its parent"),
                        }),
                    ));
                }
            }
            let enter = matches!(
                (parent, eid),
                (None, id::SEGMENT) | (Some(id::SEGMENT), id::CLUSTER)
            );
            if enter {
                if eid == id::CLUSTER {
                    self.cluster_ts = 0;
                }
                self.stack.push(Open { id: eid, end });
                at += hlen;
                continue;
            }
            let read = matches!(
                (parent, eid),
                (None, id::EBML)
                    | (Some(id::SEGMENT), id::INFO | id::TRACKS)
                    | (
                        Some(id::CLUSTER),
                        id::TIMESTAMP | id::SIMPLE_BLOCK | id::BLOCK_GROUP
                    )
            );
            let Some(size) = size else {
                return Err((
                    at,
                    Err(MkvError::Malformed {
                        offset,
                        reason: format!("element {eid:#X} of unknown size"),
                    }),
                ));
            };
            if !read {
                at += hlen;
                self.skip = size;
                continue;
            }
            if size > MAX_ELEMENT {
                return Err((
                    at,
                    Err(MkvError::TooLarge {
                        id: eid,
                        offset,
                        size,
                        max: MAX_ELEMENT,
                    }),
                ));
            }
            let body_end = at + hlen + size as usize;
            if body_end > data.len() {
                return Ok(at);
            }
            let body = &data[at + hlen..body_end];
            let body_offset = body_start;
            let result = match eid {
                id::EBML => read_ebml_header(body, body_offset).map(|()| {
                    self.header_seen = true;
                }),
                id::INFO => read_info(body, body_offset).map(|scale| {
                    if let Some(scale) = scale {
                        self.timestamp_scale = scale;
                    }
                }),
                id::TRACKS => read_tracks(body, body_offset).map(|t| {
                    self.tracks = Some(t);
                }),
                id::TIMESTAMP => {
                    self.cluster_ts = uint(body).min(i64::MAX as u64) as i64;
                    Ok(())
                }
                id::SIMPLE_BLOCK => {
                    self.read_block(body, body_offset, None, None, on_frame)
                        .map_err(|e| (at, e))?;
                    Ok(())
                }
                _ => {
                    self.read_block_group(body, body_offset, on_frame)
                        .map_err(|e| (at, e))?;
                    Ok(())
                }
            };
            result.map_err(|e| (at, Err(e)))?;
            at = body_end;
        }
    }

    fn read_block_group<E>(
        &self,
        body: &[u8],
        offset: u64,
        on_frame: &mut impl FnMut(&[MkvTrack], Frame<'_>) -> Result<(), E>,
    ) -> Result<(), Result<E, MkvError>> {
        let kids = children(body, offset).map_err(Err)?;
        let duration = kids
            .iter()
            .find(|(i, _)| *i == id::BLOCK_DURATION)
            .map(|(_, b)| uint(b));
        let referenced = kids.iter().any(|(i, _)| *i == id::REFERENCE_BLOCK);
        match kids.iter().find(|(i, _)| *i == id::BLOCK) {
            Some((_, block)) => {
                self.read_block(block, offset, Some(!referenced), duration, on_frame)
            }
            None => Ok(()),
        }
    }

    /// A Block or SimpleBlock body; `keyframe` is given for a Block (from its group).
    fn read_block<E>(
        &self,
        body: &[u8],
        offset: u64,
        keyframe: Option<bool>,
        duration: Option<u64>,
        on_frame: &mut impl FnMut(&[MkvTrack], Frame<'_>) -> Result<(), E>,
    ) -> Result<(), Result<E, MkvError>> {
        let bad = |reason: &str| {
            Err(MkvError::Malformed {
                offset,
                reason: reason.to_owned(),
            })
        };
        let Some(Ok((track, tlen))) = vint(body, false) else {
            return Err(bad("a block without a track number"));
        };
        let Some(&[t0, t1, flags]) = body.get(tlen..tlen + 3) else {
            return Err(bad("a block header cut short"));
        };
        let tracks = match &self.tracks {
            Some(t) if t.iter().any(|x| x.number == track) => t,
            _ => return Err(Err(MkvError::UnknownTrack { offset, track })),
        };
        let timestamp = self
            .cluster_ts
            .saturating_add(i64::from(i16::from_be_bytes([t0, t1])));
        let keyframe = keyframe.unwrap_or(flags & 0x80 != 0);
        let data = &body[tlen + 3..];
        let lacing = (flags >> 1) & 3;
        if lacing == 0 {
            return on_frame(
                tracks,
                Frame {
                    track,
                    timestamp,
                    keyframe,
                    duration,
                    data,
                    scale_ns: self.timestamp_scale,
                },
            )
            .map_err(Ok);
        }
        let frames =
            unlace(data, lacing).map_err(|reason| Err(MkvError::Malformed { offset, reason }))?;
        let info = tracks.iter().find(|x| x.number == track);
        if info.is_none_or(|t| t.codec_id != "A_OPUS") {
            return Err(bad(
                "laced frames of a track other than Opus (no per-frame times)",
            ));
        }
        // Each laced Opus frame starts where the one before ends (its TOC says how long).
        let mut ns = 0u64;
        for frame in frames {
            let ts = timestamp.saturating_add((ns / self.timestamp_scale) as i64);
            on_frame(
                tracks,
                Frame {
                    track,
                    timestamp: ts,
                    keyframe: true,
                    duration: None,
                    data: frame,
                    scale_ns: self.timestamp_scale,
                },
            )
            .map_err(Ok)?;
            let samples = packet_info(frame).map_or(0, |p| u64::from(p.duration()));
            ns += samples * 1_000_000_000 / 48_000;
        }
        Ok(())
    }
}

fn read_ebml_header(body: &[u8], offset: u64) -> Result<(), MkvError> {
    let doc = children(body, offset)
        .map_err(|e| MkvError::NotMatroska {
            reason: e.to_string(),
        })?
        .into_iter()
        .find(|(i, _)| *i == id::DOC_TYPE)
        .map(|(_, b)| String::from_utf8_lossy(b).trim_end_matches('\0').to_owned());
    match doc.as_deref() {
        Some("matroska" | "webm") | None => Ok(()),
        Some(other) => Err(MkvError::NotMatroska {
            reason: format!("EBML document type {other:?}"),
        }),
    }
}

/// The `TimestampScale` of an Info element, if it has one.
fn read_info(body: &[u8], offset: u64) -> Result<Option<u64>, MkvError> {
    let mut out = None;
    for (cid, b) in children(body, offset)? {
        if cid == id::TIMESTAMP_SCALE {
            let scale = uint(b);
            if scale == 0 || scale > 1_000_000_000 {
                return Err(MkvError::Malformed {
                    offset,
                    reason: format!("a TimestampScale of {scale} ns"),
                });
            }
            out = Some(scale);
        }
    }
    Ok(out)
}

fn read_tracks(body: &[u8], offset: u64) -> Result<Vec<MkvTrack>, MkvError> {
    let mut tracks: Vec<MkvTrack> = Vec::new();
    for (cid, b) in children(body, offset)? {
        if cid == id::TRACK_ENTRY {
            let t = parse_track(b, offset)?;
            if tracks.iter().any(|o| o.number == t.number) {
                return Err(MkvError::Malformed {
                    offset,
                    reason: format!("track number {} declared twice", t.number),
                });
            }
            tracks.push(t);
        }
    }
    Ok(tracks)
}

/// Splits a laced block body (`lacing`: 1 Xiph, 2 fixed, 3 EBML) into its frames.
fn unlace(data: &[u8], lacing: u8) -> Result<Vec<&[u8]>, String> {
    let (&count, mut rest) = data
        .split_first()
        .ok_or("a laced block without a frame count")?;
    let n = usize::from(count) + 1;
    let mut sizes = Vec::with_capacity(n);
    match lacing {
        1 => {
            for _ in 0..n - 1 {
                let mut size = 0usize;
                loop {
                    let (&b, r) = rest.split_first().ok_or("Xiph lace sizes cut short")?;
                    rest = r;
                    size += usize::from(b);
                    if b != 255 {
                        break;
                    }
                }
                sizes.push(size);
            }
        }
        3 => {
            let mut prev = 0i64;
            for i in 0..n - 1 {
                let Some(Ok((v, len))) = vint(rest, false) else {
                    return Err("EBML lace sizes cut short".into());
                };
                rest = &rest[len..];
                let size = if i == 0 {
                    v as i64
                } else {
                    // Signed difference: the vint minus half its range.
                    let bias = (1i64 << (7 * len - 1)) - 1;
                    prev + (v as i64 - bias)
                };
                if size < 0 {
                    return Err("a negative EBML lace size".into());
                }
                sizes.push(size as usize);
                prev = size;
            }
        }
        _ => {
            if rest.len() % n != 0 {
                return Err("fixed-size lacing that does not divide the block".into());
            }
            sizes.resize(n - 1, rest.len() / n);
        }
    }
    let listed: usize = sizes
        .iter()
        .try_fold(0usize, |a, &s| a.checked_add(s))
        .ok_or("lace sizes overflow")?;
    if listed > rest.len() {
        return Err("lace sizes larger than the block".into());
    }
    sizes.push(rest.len() - listed);
    let mut out = Vec::with_capacity(n);
    for s in sizes {
        let (f, r) = rest.split_at(s);
        out.push(f);
        rest = r;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lacing_splits_xiph_ebml_and_fixed_blocks() {
        // (name, lacing, body, frame sizes)
        let cases: [(&str, u8, Vec<u8>, Vec<usize>); 4] = [
            (
                "Xiph: 300 = 255 + 45, then 2",
                1,
                {
                    let mut v = vec![2, 255, 45, 2];
                    v.resize(4 + 300 + 2 + 7, 0);
                    v
                },
                vec![300, 2, 7],
            ),
            (
                "fixed: three of 4",
                2,
                {
                    let mut v = vec![2];
                    v.resize(13, 1);
                    v
                },
                vec![4, 4, 4],
            ),
            (
                "EBML: 10, then +2 (signed vint), rest",
                3,
                {
                    let mut v = vec![2, 0x8A, 0xBF + 2];
                    v.resize(3 + 10 + 12 + 5, 0);
                    v
                },
                vec![10, 12, 5],
            ),
            ("one frame laced", 1, vec![0, 9, 9], vec![2]),
        ];
        for (name, lacing, body, want) in cases {
            let got: Vec<usize> = unlace(&body, lacing)
                .expect(name)
                .iter()
                .map(|f| f.len())
                .collect();
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn lacing_rejects_sizes_beyond_the_block() {
        for (name, lacing, body) in [
            ("Xiph size past the end", 1u8, vec![1u8, 200, 1, 2]),
            ("EBML size past the end", 3, vec![1, 0xFF, 1]),
            ("fixed that does not divide", 2, vec![1, 1, 2, 3]),
            ("no count", 1, vec![]),
        ] {
            assert!(unlace(&body, lacing).is_err(), "{name}");
        }
    }
}
