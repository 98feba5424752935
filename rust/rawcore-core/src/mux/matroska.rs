//! A streaming Matroska / WebM writer.
//!
//! Layout: EBML header, then a Segment holding a SeekHead (Info, Tracks and, once known, Cues),
//! Info (1 ms timestamp scale, duration), Tracks, Clusters of SimpleBlocks and finally Cues. The
//! Segment is opened with an "unknown" size so a file cut short still plays; [`MatroskaWriter::finish`]
//! writes the Cues and patches the Segment size, the duration and the Cues seek entry in place.
//! Each cluster is assembled in memory (at most [`CLUSTER_MAX_MS`] of media or about
//! [`CLUSTER_MAX_BYTES`]) and written with its exact size, so memory stays flat in the duration;
//! only the cue list grows, one entry per cluster. Closed clusters stay where they were
//! assembled until about [`PENDING_BYTES`] are pending, then go out in one vectored write (a
//! buffered output passes a write that large straight through, so the blocks are not copied
//! once more into its buffer).
//!
//! Timestamps go in as nanoseconds and are rounded to the nearest millisecond block by block,
//! each from its own exact value, so rounding never accumulates: 20 ms Opus frames land exactly,
//! 2.5 ms frames alternate between 2 and 3 ms steps around their true positions.

use std::io::{ErrorKind, IoSlice, Seek, SeekFrom, Write};
use std::ops::Range;

use super::ebml::{
    size_len, write_bytes, write_float, write_id, write_int, write_master, write_size,
    write_size_fixed, write_uint, write_uint_fixed, write_void, UNKNOWN_SIZE,
};
use super::ids;
use super::{MuxError, OpusHead};

/// A cluster is closed before its blocks span this much time.
pub const CLUSTER_MAX_MS: i64 = 5_000;
/// A cluster is closed once its blocks reach this many bytes.
pub const CLUSTER_MAX_BYTES: usize = 1 << 20;
/// Closed clusters are written out once this many bytes of them are pending.
pub const PENDING_BYTES: usize = 1 << 20;
/// Room beyond [`PENDING_BYTES`] and [`CLUSTER_MAX_BYTES`] the block buffer starts with: the
/// last frame of a full cluster and the cluster heads.
const BLOCKS_SLACK: usize = 256 * 1024;
/// Bytes kept free before a cluster's blocks for its head (ID, size, Timestamp element: at most
/// 4 + 8 + 10), written there when the cluster closes.
const CLUSTER_HEAD_ROOM: usize = 24;
/// Opus streams are decoded this long before a seek target to converge (RFC 7845 §4.6).
const OPUS_SEEK_PRE_ROLL_NS: u64 = 80_000_000;
/// Bytes of one Seek entry with an 8-byte position: 3 + (2+1+4) + (2+1+8).
const SEEK_ENTRY_LEN: usize = 21;

/// Which flavour of the format to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocType {
    /// Full Matroska: any codec.
    Matroska,
    /// WebM: Opus, VP8, VP9 and AV1 only.
    Webm,
}

impl DocType {
    fn name(self) -> &'static [u8] {
        match self {
            Self::Matroska => b"matroska",
            Self::Webm => b"webm",
        }
    }
}

/// A track and what its decoder needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrackEntry {
    /// Opus audio; the head becomes `CodecPrivate`, its pre-skip the `CodecDelay`.
    Opus(OpusHead),
    /// FLAC audio; `codec_private` is `fLaC` followed by the metadata blocks.
    Flac {
        /// Samples per second.
        sample_rate: u32,
        /// Channels.
        channels: u8,
        /// Bits per sample.
        bit_depth: u8,
        /// `fLaC` and the metadata blocks (STREAMINFO first).
        codec_private: Vec<u8>,
    },
    /// Interleaved little-endian signed integer PCM.
    Pcm {
        /// Samples per second.
        sample_rate: u32,
        /// Channels.
        channels: u8,
        /// Bits per sample.
        bit_depth: u8,
    },
    /// VP8 video.
    Vp8 {
        /// Width in pixels.
        width: u16,
        /// Height in pixels.
        height: u16,
    },
    /// VP9 video.
    Vp9 {
        /// Width in pixels.
        width: u16,
        /// Height in pixels.
        height: u16,
    },
    /// H.264 video in AVC (length-prefixed) form.
    Avc {
        /// Width in pixels.
        width: u16,
        /// Height in pixels.
        height: u16,
        /// The `AVCDecoderConfigurationRecord`.
        avcc: Vec<u8>,
    },
    /// AV1 video.
    Av1 {
        /// Width in pixels.
        width: u16,
        /// Height in pixels.
        height: u16,
        /// The `AV1CodecConfigurationRecord`.
        av1c: Vec<u8>,
    },
}

impl TrackEntry {
    /// The Matroska codec ID.
    #[must_use]
    pub fn codec_id(&self) -> &'static str {
        match self {
            Self::Opus(_) => "A_OPUS",
            Self::Flac { .. } => "A_FLAC",
            Self::Pcm { .. } => "A_PCM/INT/LIT",
            Self::Vp8 { .. } => "V_VP8",
            Self::Vp9 { .. } => "V_VP9",
            Self::Avc { .. } => "V_MPEG4/ISO/AVC",
            Self::Av1 { .. } => "V_AV1",
        }
    }

    /// Whether the track is video.
    #[must_use]
    pub fn is_video(&self) -> bool {
        matches!(
            self,
            Self::Vp8 { .. } | Self::Vp9 { .. } | Self::Avc { .. } | Self::Av1 { .. }
        )
    }

    /// The picture size a video track declares.
    fn video_size(&self) -> Option<(u16, u16)> {
        match self {
            Self::Vp8 { width, height }
            | Self::Vp9 { width, height }
            | Self::Avc { width, height, .. }
            | Self::Av1 { width, height, .. } => Some((*width, *height)),
            _ => None,
        }
    }

    fn allowed_in_webm(&self) -> bool {
        matches!(
            self,
            Self::Opus(_) | Self::Vp8 { .. } | Self::Vp9 { .. } | Self::Av1 { .. }
        )
    }

    fn write(&self, out: &mut Vec<u8>, number: u64, roll_degrees: Option<f64>) {
        use ids::{
            AUDIO, BIT_DEPTH, CHANNELS, CODEC_DELAY, CODEC_ID, CODEC_PRIVATE, PIXEL_HEIGHT,
            PIXEL_WIDTH, PROJECTION, PROJECTION_POSE_ROLL, PROJECTION_TYPE, SAMPLING_FREQUENCY,
            SEEK_PRE_ROLL, TRACK_ENTRY, TRACK_NUMBER, TRACK_TYPE, TRACK_UID, VIDEO,
        };
        let audio = |out: &mut Vec<u8>, rate: u32, channels: u8, depth: Option<u8>| {
            write_master(out, AUDIO, |a| {
                write_float(a, SAMPLING_FREQUENCY, f64::from(rate));
                write_uint(a, CHANNELS, u64::from(channels));
                if let Some(depth) = depth {
                    write_uint(a, BIT_DEPTH, u64::from(depth));
                }
            });
        };
        let video = |out: &mut Vec<u8>, width: u16, height: u16| {
            write_master(out, VIDEO, |v| {
                // Fixed width so a size change later in the stream can be patched in place.
                write_uint_fixed(v, PIXEL_WIDTH, u64::from(width));
                write_uint_fixed(v, PIXEL_HEIGHT, u64::from(height));
                // Display rotation rides on a rectangular projection's roll: the one place a
                // Matroska track can say how its pictures are turned.
                if let Some(roll) = roll_degrees {
                    write_master(v, PROJECTION, |p| {
                        write_uint(p, PROJECTION_TYPE, 0);
                        write_float(p, PROJECTION_POSE_ROLL, roll);
                    });
                }
            });
        };
        write_master(out, TRACK_ENTRY, |t| {
            write_uint(t, TRACK_NUMBER, number);
            write_uint(t, TRACK_UID, number);
            write_uint(t, TRACK_TYPE, if self.is_video() { 1 } else { 2 });
            write_bytes(t, CODEC_ID, self.codec_id().as_bytes());
            match self {
                Self::Opus(head) => {
                    write_bytes(t, CODEC_PRIVATE, &head.to_bytes());
                    let delay_ns = u64::from(head.pre_skip) * 1_000_000_000 / 48_000;
                    write_uint(t, CODEC_DELAY, delay_ns);
                    write_uint(t, SEEK_PRE_ROLL, OPUS_SEEK_PRE_ROLL_NS);
                    audio(t, 48_000, head.channels, None);
                }
                Self::Flac {
                    sample_rate,
                    channels,
                    bit_depth,
                    codec_private,
                } => {
                    write_bytes(t, CODEC_PRIVATE, codec_private);
                    audio(t, *sample_rate, *channels, Some(*bit_depth));
                }
                Self::Pcm {
                    sample_rate,
                    channels,
                    bit_depth,
                } => audio(t, *sample_rate, *channels, Some(*bit_depth)),
                Self::Vp8 { width, height } | Self::Vp9 { width, height } => {
                    video(t, *width, *height);
                }
                Self::Avc {
                    width,
                    height,
                    avcc: private,
                }
                | Self::Av1 {
                    width,
                    height,
                    av1c: private,
                } => {
                    write_bytes(t, CODEC_PRIVATE, private);
                    video(t, *width, *height);
                }
            }
        });
    }
}

/// A cue: a cluster a player can seek to.
#[derive(Debug, Clone, Copy)]
struct Cue {
    time_ms: u64,
    track: u64,
    cluster_pos: u64,
}

/// The cluster being assembled.
#[derive(Debug)]
struct OpenCluster {
    time_ms: i64,
    /// The track a cue for this cluster points at, if the cluster deserves one.
    cue_track: Option<u64>,
}

/// Where the last SimpleBlock sits in the open cluster and what it was written with.
#[derive(Debug, Clone, Copy)]
struct LastBlock {
    /// Offset of the element in the cluster's blocks, and of its frame data.
    at: usize,
    data_at: usize,
    track: usize,
    timestamp_ns: u64,
    /// The track's block before it.
    previous_ns: Option<u64>,
    keyframe: bool,
}

/// Writes a Matroska or WebM file frame by frame.
#[derive(Debug)]
pub struct MatroskaWriter<W: Write + Seek> {
    out: W,
    /// Absolute position of the Segment's size field and of its body.
    segment_size_pos: u64,
    segment_body_pos: u64,
    /// Absolute position of the reserved Cues seek entry and of the Duration float.
    cues_seek_pos: u64,
    duration_pos: u64,
    /// Bytes written so far, relative to where the writer started.
    written: u64,
    start: u64,
    tracks: Vec<TrackEntry>,
    has_video: bool,
    last_ns: Vec<Option<u64>>,
    cluster: Option<OpenCluster>,
    /// Closed clusters not yet written (their bytes: `pending`), then the open cluster: the
    /// room for its head at `open_at`, then its blocks.
    blocks: Vec<u8>,
    pending: Vec<Range<usize>>,
    open_at: usize,
    /// The last block written, while it is a SimpleBlock in the open cluster: what
    /// [`MatroskaWriter::last_frame_lasts`] turns into a BlockGroup.
    last_block: Option<LastBlock>,
    cues: Vec<Cue>,
    end_ns: u64,
    duration_ns: Option<u64>,
    /// Absolute positions of each video track's PixelWidth/PixelHeight values, and the size to
    /// patch in at finish when the stream grew past the size first declared.
    pixel_pos: Vec<Option<(u64, u64)>>,
    pixel_size: Vec<Option<(u16, u16)>>,
}

/// Finds the two fixed-width picture size elements a video track entry was written with.
fn pixel_positions(entry: &[u8], width: u16, height: u16) -> Option<(u64, u64)> {
    let mut needle = vec![0xB0, 0x88];
    needle.extend_from_slice(&u64::from(width).to_be_bytes());
    needle.extend_from_slice(&[0xBA, 0x88]);
    needle.extend_from_slice(&u64::from(height).to_be_bytes());
    let at = entry
        .windows(needle.len())
        .position(|w| w == needle.as_slice())?;
    Some(((at + 2) as u64, (at + 12) as u64))
}

impl<W: Write + Seek> MatroskaWriter<W> {
    /// Writes the headers for `tracks` (frames refer to them by index) and opens the Segment.
    pub fn new(out: W, doc: DocType, tracks: Vec<TrackEntry>) -> Result<Self, MuxError> {
        Self::with_rotation(out, doc, tracks, None)
    }

    /// [`MatroskaWriter::new`], with the video tracks declaring a display rotation: the
    /// clockwise turn, in degrees, that shows their pictures upright.
    #[allow(clippy::too_many_lines)] // the headers element by element, then the writer's state
    pub fn with_rotation(
        mut out: W,
        doc: DocType,
        tracks: Vec<TrackEntry>,
        clockwise_degrees: Option<u16>,
    ) -> Result<Self, MuxError> {
        use ids::{
            DOC_TYPE, DOC_TYPE_READ_VERSION, DOC_TYPE_VERSION, DURATION, EBML, EBML_MAX_ID_LENGTH,
            EBML_MAX_SIZE_LENGTH, EBML_READ_VERSION, EBML_VERSION, INFO, MUXING_APP, SEEK,
            SEEK_HEAD, SEEK_ID, SEEK_POSITION, SEGMENT, TIMESTAMP_SCALE, TRACKS, WRITING_APP,
        };
        if tracks.is_empty() {
            return Err(MuxError::NoTracks);
        }
        if doc == DocType::Webm {
            if let Some(t) = tracks.iter().find(|t| !t.allowed_in_webm()) {
                return Err(MuxError::NotInWebm {
                    codec: t.codec_id(),
                });
            }
        }
        let start = out.stream_position().map_err(MuxError::io("file start"))?;
        let mut head = Vec::with_capacity(512);
        write_master(&mut head, EBML, |e| {
            write_uint(e, EBML_VERSION, 1);
            write_uint(e, EBML_READ_VERSION, 1);
            write_uint(e, EBML_MAX_ID_LENGTH, 4);
            write_uint(e, EBML_MAX_SIZE_LENGTH, 8);
            write_bytes(e, DOC_TYPE, doc.name());
            write_uint(e, DOC_TYPE_VERSION, 4);
            write_uint(e, DOC_TYPE_READ_VERSION, 2);
        });
        write_id(&mut head, SEGMENT);
        let segment_size_pos = head.len() as u64;
        head.extend_from_slice(&UNKNOWN_SIZE);
        let segment_body = head.len();

        // Info and Tracks are built first so the SeekHead can point at them from the start.
        let mut info = Vec::with_capacity(64);
        let mut duration_in_info = 0;
        write_master(&mut info, INFO, |i| {
            write_uint(i, TIMESTAMP_SCALE, 1_000_000);
            write_bytes(i, MUXING_APP, b"rawcore");
            write_bytes(i, WRITING_APP, b"rawcore");
            write_float(i, DURATION, 0.0);
            duration_in_info = i.len() - 8;
        });
        let mut track_bytes = Vec::with_capacity(256);
        write_master(&mut track_bytes, TRACKS, |t| {
            for (i, track) in tracks.iter().enumerate() {
                let roll = clockwise_degrees
                    .filter(|_| track.is_video())
                    .map(|d| -f64::from(d % 360));
                track.write(t, i as u64 + 1, roll);
            }
        });
        let seek_head_body = 3 * SEEK_ENTRY_LEN;
        let seek_head_len = 4 + size_len(seek_head_body as u64) + seek_head_body;
        let info_rel = seek_head_len as u64;
        let tracks_rel = info_rel + info.len() as u64;
        let seek_entry = |out: &mut Vec<u8>, id: u32, pos: u64| {
            write_master(out, SEEK, |s| {
                write_bytes(s, SEEK_ID, &id.to_be_bytes());
                write_uint_fixed(s, SEEK_POSITION, pos);
            });
        };
        write_id(&mut head, SEEK_HEAD);
        write_size(&mut head, seek_head_body as u64);
        seek_entry(&mut head, INFO, info_rel);
        seek_entry(&mut head, TRACKS, tracks_rel);
        let cues_seek_pos = head.len() as u64;
        write_void(&mut head, SEEK_ENTRY_LEN);
        // Info's header is 5 bytes (4-byte ID, 1-byte size) ahead of its body.
        let duration_pos = head.len() as u64 + 5 + duration_in_info as u64;
        head.extend_from_slice(&info);
        let tracks_at = start + head.len() as u64;
        let mut search_from = 0;
        let pixel_pos: Vec<_> = (tracks.iter().map(|track| {
            track.video_size().and_then(|(w, h)| {
                let rest = track_bytes.get(search_from..)?;
                let (pw, ph) = pixel_positions(rest, w, h)?;
                let base = search_from as u64;
                search_from += ph as usize + 8;
                Some((tracks_at + base + pw, tracks_at + base + ph))
            })
        }))
        .collect();
        head.extend_from_slice(&track_bytes);
        out.write_all(&head).map_err(MuxError::io("headers"))?;

        Ok(Self {
            out,
            segment_size_pos: start + segment_size_pos,
            segment_body_pos: start + segment_body as u64,
            cues_seek_pos: start + cues_seek_pos,
            duration_pos: start + duration_pos,
            written: head.len() as u64,
            start,
            has_video: tracks.iter().any(TrackEntry::is_video),
            last_ns: vec![None; tracks.len()],
            tracks,
            cluster: None,
            // Room for what the buffer holds at most (the pending clusters and an open one) from
            // the start: pages are touched only as blocks fill them, and the buffer never moves
            // (each move copied it into fresh pages).
            blocks: Vec::with_capacity(PENDING_BYTES + CLUSTER_MAX_BYTES + BLOCKS_SLACK),
            pending: Vec::new(),
            open_at: 0,
            last_block: None,
            cues: Vec::new(),
            end_ns: 0,
            duration_ns: None,
            pixel_size: vec![None; pixel_pos.len()],
            pixel_pos,
        })
    }

    /// Declares a different picture size for video `track` (written at finish): a stream whose
    /// pictures grew after the headers were written still declares a size that fits.
    pub fn set_video_size(&mut self, track: usize, width: u16, height: u16) {
        if let Some(slot) = self.pixel_size.get_mut(track) {
            *slot = Some((width, height));
        }
    }

    /// Sets the duration written to Info; without it the last block's timestamp is used.
    pub fn set_duration_ns(&mut self, duration_ns: u64) {
        self.duration_ns = Some(duration_ns);
    }

    /// Writes one frame of `track` (an index into the tracks given to [`new`](Self::new)).
    /// Timestamps must not decrease within a track; interleaving tracks is the caller's job.
    pub fn write_frame(
        &mut self,
        track: usize,
        timestamp_ns: u64,
        data: &[u8],
        keyframe: bool,
    ) -> Result<(), MuxError> {
        self.write_block(track, timestamp_ns, data, keyframe, None)
    }

    /// Writes one frame of `track` that stays current for `duration_ns` (a BlockGroup with a
    /// BlockDuration): a video frame held on screen to the end of the file, which a SimpleBlock
    /// cannot say. An inter frame carries a ReferenceBlock pointing at the track's previous
    /// block (a BlockGroup without one is a keyframe).
    pub fn write_frame_lasting(
        &mut self,
        track: usize,
        timestamp_ns: u64,
        data: &[u8],
        keyframe: bool,
        duration_ns: u64,
    ) -> Result<(), MuxError> {
        self.write_block(track, timestamp_ns, data, keyframe, Some(duration_ns))
    }

    /// Makes the last frame written, when it was `track`'s (with [`write_frame`]), stay current
    /// for `duration_ns`: the same bytes as writing it with [`write_frame_lasting`] in the first
    /// place. A caller that learns only at the end which frame is the last need not hold a copy
    /// of each frame until the next one comes. Returns false (and changes nothing) when the
    /// last block written is not such a frame.
    ///
    /// [`write_frame`]: MatroskaWriter::write_frame
    /// [`write_frame_lasting`]: MatroskaWriter::write_frame_lasting
    #[must_use]
    pub fn last_frame_lasts(&mut self, track: usize, duration_ns: u64) -> bool {
        let Some(last) = self.last_block.take().filter(|b| b.track == track) else {
            return false;
        };
        let Some(data) = self.blocks.get(last.data_at..).map(<[u8]>::to_vec) else {
            return false;
        };
        self.blocks.truncate(last.at);
        let ms = Self::ms_of(last.timestamp_ns);
        let cluster_ms = self.cluster.as_ref().map_or(ms, |c| c.time_ms);
        let rel = i16::try_from(ms - cluster_ms).unwrap_or(0);
        self.append_lasting(
            track,
            last.timestamp_ns,
            rel,
            &data,
            last.keyframe,
            duration_ns,
            last.previous_ns,
        );
        true
    }

    /// Milliseconds (the timestamp scale) of a nanosecond time, rounded.
    fn ms_of(timestamp_ns: u64) -> i64 {
        i64::try_from(timestamp_ns.saturating_add(500_000) / 1_000_000).unwrap_or(i64::MAX)
    }

    fn write_block(
        &mut self,
        track: usize,
        timestamp_ns: u64,
        data: &[u8],
        keyframe: bool,
        duration_ns: Option<u64>,
    ) -> Result<(), MuxError> {
        let tracks = self.last_ns.len();
        let last = self
            .last_ns
            .get_mut(track)
            .ok_or(MuxError::NoSuchTrack { track, tracks })?;
        if let Some(previous_ns) = *last {
            if timestamp_ns < previous_ns {
                return Err(MuxError::NonMonotonic {
                    track,
                    previous_ns,
                    timestamp_ns,
                });
            }
        }
        let previous_ns = *last;
        *last = Some(timestamp_ns);
        self.end_ns = self.end_ns.max(timestamp_ns);
        let ms = Self::ms_of(timestamp_ns);
        let is_video = self.tracks.get(track).is_some_and(TrackEntry::is_video);
        let video_key = is_video && keyframe;
        let needs_new = match &self.cluster {
            None => true,
            Some(c) => {
                let rel = ms.saturating_sub(c.time_ms);
                rel >= CLUSTER_MAX_MS
                    || rel < i64::from(i16::MIN)
                    || self.cluster_bytes() >= CLUSTER_MAX_BYTES
                    || (video_key && self.cluster_bytes() > 0)
            }
        };
        if needs_new {
            self.close_cluster()?;
            // Audio-only files get a cue per cluster; with video, only clusters that open on a
            // video keyframe are seek targets.
            let cue_track = if self.has_video {
                video_key.then_some(track as u64 + 1)
            } else {
                Some(track as u64 + 1)
            };
            self.cluster = Some(OpenCluster {
                time_ms: ms,
                cue_track,
            });
            self.open_at = self.blocks.len();
            self.blocks.resize(self.open_at + CLUSTER_HEAD_ROOM, 0);
        }
        let cluster_ms = self.cluster.as_ref().map_or(ms, |c| c.time_ms);
        let rel = i16::try_from(ms - cluster_ms).unwrap_or(0);
        match duration_ns {
            None => {
                let at = self.blocks.len();
                self.append_simple_block(track as u64 + 1, rel, data, keyframe);
                self.last_block = Some(LastBlock {
                    at,
                    data_at: self.blocks.len() - data.len(),
                    track,
                    timestamp_ns,
                    previous_ns,
                    keyframe,
                });
            }
            Some(duration_ns) => {
                self.last_block = None;
                self.append_lasting(
                    track,
                    timestamp_ns,
                    rel,
                    data,
                    keyframe,
                    duration_ns,
                    previous_ns,
                );
            }
        }
        Ok(())
    }

    /// A frame that stays current for `duration_ns`, as a BlockGroup.
    #[allow(clippy::too_many_arguments)] // one block's facts, gathered by the two callers
    fn append_lasting(
        &mut self,
        track: usize,
        timestamp_ns: u64,
        rel: i16,
        data: &[u8],
        keyframe: bool,
        duration_ns: u64,
        previous_ns: Option<u64>,
    ) {
        let ms = Self::ms_of(timestamp_ns);
        let end_ms = Self::ms_of(timestamp_ns.saturating_add(duration_ns));
        let lasting_ms = u64::try_from(end_ms - ms).unwrap_or(0);
        // The previous block of the track, relative to this one (never positive).
        let reference = (!keyframe).then(|| previous_ns.map_or(0, |p| Self::ms_of(p) - ms));
        self.end_ns = self.end_ns.max(timestamp_ns.saturating_add(duration_ns));
        self.append_block_group(track as u64 + 1, rel, data, lasting_ms, reference);
    }

    fn append_block_group(
        &mut self,
        track_number: u64,
        rel: i16,
        data: &[u8],
        duration_ms: u64,
        reference_ms: Option<i64>,
    ) {
        let mut block = Vec::with_capacity(data.len() + 8);
        write_size(&mut block, track_number);
        block.extend_from_slice(&rel.to_be_bytes());
        block.push(0); // Block flags: no lacing; keyframes are told by a missing ReferenceBlock
        block.extend_from_slice(data);
        let mut group = Vec::with_capacity(block.len() + 24);
        write_bytes(&mut group, ids::BLOCK, &block);
        write_uint(&mut group, ids::BLOCK_DURATION, duration_ms);
        if let Some(reference) = reference_ms {
            write_int(&mut group, ids::REFERENCE_BLOCK, reference);
        }
        write_id(&mut self.blocks, ids::BLOCK_GROUP);
        write_size(&mut self.blocks, group.len() as u64);
        self.blocks.extend_from_slice(&group);
    }

    /// One frame as a SimpleBlock, never laced (see [`crate::extract::opus`] for why).
    fn append_simple_block(&mut self, track_number: u64, rel: i16, data: &[u8], key: bool) {
        let size = size_len(track_number) + 3 + data.len();
        let b = &mut self.blocks;
        write_id(b, ids::SIMPLE_BLOCK);
        write_size(b, size as u64);
        write_size(b, track_number);
        b.extend_from_slice(&rel.to_be_bytes());
        b.push(if key { 0x80 } else { 0 });
        b.extend_from_slice(data);
    }

    fn close_cluster(&mut self) -> Result<(), MuxError> {
        self.last_block = None;
        let Some(cluster) = self.cluster.take() else {
            return Ok(());
        };
        let cluster_pos = self.written - (self.segment_body_pos - self.start);
        let mut head = Vec::with_capacity(CLUSTER_HEAD_ROOM);
        let mut time = Vec::with_capacity(10);
        let time_ms = u64::try_from(cluster.time_ms).unwrap_or(0);
        write_uint(&mut time, ids::TIMESTAMP, time_ms);
        write_id(&mut head, ids::CLUSTER);
        write_size(&mut head, (time.len() + self.cluster_bytes()) as u64);
        head.extend_from_slice(&time);
        // The head goes right before the blocks, into the room kept for it (it needs at most
        // 22 bytes); the bytes before it in the room are not written.
        let body = self.open_at + CLUSTER_HEAD_ROOM;
        let start = body
            .checked_sub(head.len())
            .filter(|&at| at >= self.open_at);
        let Some(room) = start.and_then(|at| self.blocks.get_mut(at..body)) else {
            return Err(MuxError::io("cluster")(std::io::Error::other(
                "cluster head longer than its room",
            )));
        };
        room.copy_from_slice(&head);
        let range = body - head.len()..self.blocks.len();
        self.written += range.len() as u64;
        self.pending.push(range);
        self.open_at = self.blocks.len();
        if self.blocks.len() >= PENDING_BYTES {
            self.write_pending()?;
        }
        if let Some(track) = cluster.cue_track {
            self.cues.push(Cue {
                time_ms,
                track,
                cluster_pos,
            });
        }
        Ok(())
    }

    /// Bytes of the open cluster's blocks.
    fn cluster_bytes(&self) -> usize {
        self.blocks
            .len()
            .saturating_sub(self.open_at + CLUSTER_HEAD_ROOM)
    }

    /// Writes the closed clusters still pending, in one vectored write (more when the output
    /// takes part of it at a time).
    fn write_pending(&mut self) -> Result<(), MuxError> {
        let mut slices: Vec<IoSlice<'_>> = self
            .pending
            .iter()
            .filter_map(|r| self.blocks.get(r.clone()).map(IoSlice::new))
            .collect();
        let mut bufs = slices.as_mut_slice();
        IoSlice::advance_slices(&mut bufs, 0);
        while !bufs.is_empty() {
            match self.out.write_vectored(bufs) {
                Ok(0) => {
                    return Err(MuxError::io("cluster")(std::io::Error::from(
                        ErrorKind::WriteZero,
                    )))
                }
                Ok(n) => IoSlice::advance_slices(&mut bufs, n),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(MuxError::io("cluster")(e)),
            }
        }
        self.pending.clear();
        // The open cluster (if any) moves to the front.
        self.blocks.drain(..self.open_at);
        self.open_at = 0;
        Ok(())
    }

    /// Writes the last cluster and the Cues, patches sizes, duration and seek index, and hands
    /// the output back positioned at its end.
    pub fn finish(mut self) -> Result<W, MuxError> {
        use ids::{
            CUES, CUE_CLUSTER_POSITION, CUE_POINT, CUE_TIME, CUE_TRACK, CUE_TRACK_POSITIONS, SEEK,
            SEEK_ID, SEEK_POSITION,
        };
        self.close_cluster()?;
        self.write_pending()?;
        let segment_rel = self.segment_body_pos - self.start;
        let mut seek_entry = Vec::with_capacity(SEEK_ENTRY_LEN);
        if !self.cues.is_empty() {
            let cues_rel = self.written - segment_rel;
            let mut cues = Vec::with_capacity(self.cues.len() * 24);
            write_master(&mut cues, CUES, |c| {
                for cue in &self.cues {
                    write_master(c, CUE_POINT, |p| {
                        write_uint(p, CUE_TIME, cue.time_ms);
                        write_master(p, CUE_TRACK_POSITIONS, |t| {
                            write_uint(t, CUE_TRACK, cue.track);
                            write_uint(t, CUE_CLUSTER_POSITION, cue.cluster_pos);
                        });
                    });
                }
            });
            self.out.write_all(&cues).map_err(MuxError::io("cues"))?;
            self.written += cues.len() as u64;
            write_master(&mut seek_entry, SEEK, |s| {
                write_bytes(s, SEEK_ID, &CUES.to_be_bytes());
                write_uint_fixed(s, SEEK_POSITION, cues_rel);
            });
        }
        let end = self.start + self.written;
        let mut segment_size = Vec::with_capacity(8);
        write_size_fixed(&mut segment_size, self.written - segment_rel, 8);
        let duration_ns = self.duration_ns.unwrap_or(self.end_ns);
        let duration_in_scale = duration_ns as f64 / 1e6;
        let mut sizes: Vec<(u64, [u8; 8])> = Vec::new();
        for (pos, size) in self.pixel_pos.iter().zip(&self.pixel_size) {
            if let (Some((pw, ph)), Some((w, h))) = (pos, size) {
                sizes.push((*pw, u64::from(*w).to_be_bytes()));
                sizes.push((*ph, u64::from(*h).to_be_bytes()));
            }
        }
        let duration_bytes = duration_in_scale.to_be_bytes();
        let mut patches: Vec<(u64, &[u8])> = vec![
            (self.segment_size_pos, &segment_size),
            (self.duration_pos, &duration_bytes),
            (self.cues_seek_pos, &seek_entry),
        ];
        patches.extend(sizes.iter().map(|(pos, bytes)| (*pos, bytes.as_slice())));
        for (pos, bytes) in patches {
            if bytes.is_empty() {
                continue;
            }
            self.out
                .seek(SeekFrom::Start(pos))
                .and_then(|_| self.out.write_all(bytes))
                .map_err(MuxError::io("patched header"))?;
        }
        self.out
            .seek(SeekFrom::Start(end))
            .and_then(|_| self.out.flush())
            .map_err(MuxError::io("file end"))?;
        Ok(self.out)
    }
}

#[cfg(test)]
#[allow(clippy::type_complexity)] // test tables are tuples named by their doc comments
mod tests {
    use super::super::ebml::reader::{parse, Element};
    use super::*;
    use std::io::Cursor;

    #[test]
    fn a_last_frame_made_to_last_is_the_bytes_of_one_written_lasting() {
        // (name, frames (ms, keyframe, track) before the last, the last frame's (ms, keyframe))
        let cases: [(&str, Vec<(u64, bool, usize)>, (u64, bool)); 4] = [
            ("a lone keyframe", vec![], (0, true)),
            (
                "an inter frame after a keyframe and audio",
                vec![(0, true, 0), (10, true, 1), (20, true, 1)],
                (33, false),
            ),
            (
                "an inter frame in a cluster of its own",
                vec![(0, true, 0), (100, false, 0)],
                (7_000, false),
            ),
            (
                "a keyframe opening a new cluster",
                vec![(0, true, 0), (33, false, 0), (40, true, 1)],
                (66, true),
            ),
        ];
        let tracks = || {
            vec![
                TrackEntry::Vp8 {
                    width: 64,
                    height: 48,
                },
                opus_track(),
            ]
        };
        for (name, before, (last_ms, key)) in cases {
            let ns = |ms: u64| ms * 1_000_000 + 333;
            let run = |made_to_last: bool| {
                let mut w = MatroskaWriter::new(Cursor::new(Vec::new()), DocType::Webm, tracks())
                    .expect("headers");
                for &(ms, k, track) in &before {
                    w.write_frame(track, ns(ms), &[track as u8; 40], k)
                        .expect("frame");
                }
                let data = [0xAB; 300];
                if made_to_last {
                    w.write_frame(0, ns(last_ms), &data, key).expect("frame");
                    assert!(w.last_frame_lasts(0, 1_234_567_890), "{name}");
                    assert!(!w.last_frame_lasts(0, 1), "{name}: only once");
                } else {
                    w.write_frame_lasting(0, ns(last_ms), &data, key, 1_234_567_890)
                        .expect("frame");
                }
                w.write_frame(1, ns(last_ms + 5), &[1; 20], true)
                    .expect("audio after");
                w.finish().expect("finish").into_inner()
            };
            assert!(run(true) == run(false), "{name}: the same bytes");
        }
        let mut w =
            MatroskaWriter::new(Cursor::new(Vec::new()), DocType::Webm, tracks()).expect("headers");
        w.write_frame(0, 0, &[1; 10], true).expect("frame");
        w.write_frame(1, 1, &[2; 10], true).expect("frame");
        assert!(
            !w.last_frame_lasts(0, 5),
            "the last block written is another track's"
        );
    }

    fn opus_track() -> TrackEntry {
        TrackEntry::Opus(OpusHead::default())
    }

    /// Parses a finished file into (EBML header, Segment).
    fn tree(data: &[u8]) -> (Element, Element) {
        let top = parse(data, 0..data.len());
        assert_eq!(top.len(), 2, "EBML header and one Segment");
        (top[0].clone(), top[1].clone())
    }

    /// `(cluster time, [(relative block time, frame bytes, flags)])` per cluster.
    fn clusters(data: &[u8], segment: &Element) -> Vec<(u64, Vec<(i16, Vec<u8>, u8)>)> {
        segment
            .all(ids::CLUSTER)
            .map(|c| {
                let time = c
                    .find(ids::TIMESTAMP)
                    .expect("cluster timestamp")
                    .uint(data);
                let blocks = c
                    .all(ids::SIMPLE_BLOCK)
                    .map(|b| {
                        let body = &data[b.body.clone()];
                        (
                            i16::from_be_bytes([body[1], body[2]]),
                            body[4..].to_vec(),
                            body[3],
                        )
                    })
                    .collect();
                (time, blocks)
            })
            .collect()
    }

    #[test]
    #[allow(clippy::too_many_lines)] // one file checked element by element reads best in one piece
    fn audio_file_parses_back_with_patched_sizes_duration_and_cues() {
        let mut w = MatroskaWriter::new(Cursor::new(Vec::new()), DocType::Webm, vec![opus_track()])
            .expect("header");
        // 12 s of 20 ms frames: three clusters of at most 5 s.
        for i in 0..600u64 {
            w.write_frame(0, i * 20_000_000, &[0xFC, i as u8], true)
                .expect("frame");
        }
        w.set_duration_ns(12_000_000_000);
        let data = w.finish().expect("finish").into_inner();
        let (ebml, segment) = tree(&data);
        let doc = ebml.find(ids::DOC_TYPE).expect("doctype");
        assert_eq!(&data[doc.body.clone()], b"webm");
        assert_eq!(
            ebml.find(ids::DOC_TYPE_VERSION).map(|e| e.uint(&data)),
            Some(4)
        );
        assert_eq!(
            ebml.find(ids::DOC_TYPE_READ_VERSION).map(|e| e.uint(&data)),
            Some(2)
        );
        assert_eq!(
            segment.body.end,
            data.len(),
            "segment size patched to the file end"
        );
        let size_field = &data[segment.start + 4..segment.body.start];
        assert_ne!(
            size_field, UNKNOWN_SIZE,
            "segment size patched, no longer unknown"
        );
        let size = size_field[1..]
            .iter()
            .fold(0u64, |a, &b| a << 8 | u64::from(b));
        assert_eq!(size as usize, data.len() - segment.body.start);

        let info = segment.find(ids::INFO).expect("info");
        assert_eq!(
            info.find(ids::TIMESTAMP_SCALE).map(|e| e.uint(&data)),
            Some(1_000_000)
        );
        assert_eq!(
            info.find(ids::DURATION).map(|e| e.float(&data)),
            Some(12_000.0)
        );

        let track = &segment.find(ids::TRACKS).expect("tracks").children[0];
        let codec = track.find(ids::CODEC_ID).expect("codec id");
        assert_eq!(&data[codec.body.clone()], b"A_OPUS");
        let private = track.find(ids::CODEC_PRIVATE).expect("OpusHead");
        assert_eq!(&data[private.body.clone()], OpusHead::default().to_bytes());
        assert_eq!(
            track.find(ids::SEEK_PRE_ROLL).map(|e| e.uint(&data)),
            Some(80_000_000)
        );

        let got = clusters(&data, &segment);
        assert_eq!(
            got.iter().map(|c| c.0).collect::<Vec<_>>(),
            [0, 5_000, 10_000]
        );
        assert_eq!(got[1].1[0].0, 0, "first block of a cluster is at its time");
        assert_eq!(got[0].1[249].0, 4_980);
        assert_eq!(got.iter().map(|c| c.1.len()).sum::<usize>(), 600);
        assert!(
            got.iter().flat_map(|c| &c.1).all(|b| b.2 & 0x80 != 0),
            "keyframe flags"
        );

        // Every SeekHead entry and every cue points at the element it names.
        let seg_start = segment.body.start;
        let seek_head = segment.find(ids::SEEK_HEAD).expect("seek head");
        let mut targets = Vec::new();
        for seek in seek_head.all(ids::SEEK) {
            let id = seek.find(ids::SEEK_ID).expect("id").uint(&data) as u32;
            let pos = seek.find(ids::SEEK_POSITION).expect("pos").uint(&data) as usize;
            let at = segment
                .children
                .iter()
                .find(|e| e.start == seg_start + pos)
                .expect("seek target is an element start");
            assert_eq!(at.id, id);
            targets.push(id);
        }
        assert_eq!(targets, [ids::INFO, ids::TRACKS, ids::CUES]);
        let cues = segment.find(ids::CUES).expect("cues");
        let cue_clusters: Vec<(u64, u32)> = cues
            .all(ids::CUE_POINT)
            .map(|p| {
                let time = p.find(ids::CUE_TIME).expect("time").uint(&data);
                let pos = p
                    .find(ids::CUE_TRACK_POSITIONS)
                    .and_then(|t| t.find(ids::CUE_CLUSTER_POSITION))
                    .expect("position")
                    .uint(&data) as usize;
                let cluster = segment
                    .children
                    .iter()
                    .find(|e| e.start == seg_start + pos)
                    .expect("cue points at an element");
                let cluster_time = cluster.find(ids::TIMESTAMP).expect("ts").uint(&data);
                assert_eq!(cluster_time, time, "cue time is the cluster's time");
                (time, cluster.id)
            })
            .collect();
        assert_eq!(
            cue_clusters,
            [
                (0, ids::CLUSTER),
                (5_000, ids::CLUSTER),
                (10_000, ids::CLUSTER)
            ]
        );
    }

    #[test]
    fn block_timestamps_round_each_frame_without_drift() {
        struct Case {
            name: &'static str,
            frame_ns: u64,
            frames: u64,
            want_first: &'static [i16],
            want_last: i16,
        }
        let cases = [
            Case {
                name: "20 ms frames land exactly",
                frame_ns: 20_000_000,
                frames: 100,
                want_first: &[0, 20, 40, 60],
                want_last: 1_980,
            },
            Case {
                name: "2.5 ms frames alternate 2 and 3 ms steps and never drift",
                frame_ns: 2_500_000,
                frames: 1_000,
                want_first: &[0, 3, 5, 8, 10],
                want_last: 2_498,
            },
        ];
        for case in cases {
            let mut w = MatroskaWriter::new(
                Cursor::new(Vec::new()),
                DocType::Matroska,
                vec![opus_track()],
            )
            .expect("header");
            for i in 0..case.frames {
                w.write_frame(0, i * case.frame_ns, &[0xF8], true)
                    .expect("frame");
            }
            let data = w.finish().expect("finish").into_inner();
            let (_, segment) = tree(&data);
            let times: Vec<i16> = clusters(&data, &segment)
                .into_iter()
                .flat_map(|(t, blocks)| blocks.into_iter().map(move |b| t as i16 + b.0))
                .collect();
            assert_eq!(
                &times[..case.want_first.len()],
                case.want_first,
                "{}",
                case.name
            );
            assert_eq!(times.last().copied(), Some(case.want_last), "{}", case.name);
        }
    }

    #[test]
    fn video_keyframes_open_clusters_and_blocks_are_never_laced() {
        let tracks = vec![
            TrackEntry::Vp8 {
                width: 640,
                height: 360,
            },
            opus_track(),
        ];
        let mut w =
            MatroskaWriter::new(Cursor::new(Vec::new()), DocType::Webm, tracks).expect("header");
        w.write_frame(0, 0, b"key", true).expect("video key");
        w.write_frame(1, 0, &[0xFB, 6], true).expect("fill packet");
        w.write_frame(1, 120_000_000, &[0xFB, 6], true)
            .expect("fill packet");
        w.write_frame(0, 33_000_000, b"delta", false)
            .expect("video delta");
        w.write_frame(0, 1_000_000_000, b"key2", true)
            .expect("second key");
        let data = w.finish().expect("finish").into_inner();
        let (_, segment) = tree(&data);
        let got = clusters(&data, &segment);
        assert_eq!(got.len(), 2, "a video keyframe opens a cluster");
        let blocks = &got[0].1;
        for block in &blocks[1..3] {
            assert_eq!(block.2 & 0x06, 0, "no lacing");
            assert_eq!(block.1, [0xFB, 6], "the frame alone");
        }
        assert_eq!(blocks[3].2 & 0x80, 0, "delta frame not flagged key");
        let cues = segment.find(ids::CUES).expect("cues");
        assert_eq!(
            cues.all(ids::CUE_POINT).count(),
            2,
            "one cue per keyframe cluster"
        );
    }

    #[test]
    fn misuse_is_a_typed_error() {
        let new = |doc, tracks| MatroskaWriter::new(Cursor::new(Vec::new()), doc, tracks);
        assert!(matches!(
            new(DocType::Matroska, vec![]),
            Err(MuxError::NoTracks)
        ));
        let pcm = TrackEntry::Pcm {
            sample_rate: 8_000,
            channels: 1,
            bit_depth: 16,
        };
        assert!(matches!(
            new(DocType::Webm, vec![pcm.clone()]),
            Err(MuxError::NotInWebm {
                codec: "A_PCM/INT/LIT"
            })
        ));
        let mut w = new(DocType::Matroska, vec![pcm]).expect("pcm in matroska");
        assert!(matches!(
            w.write_frame(1, 0, &[0], true),
            Err(MuxError::NoSuchTrack {
                track: 1,
                tracks: 1
            })
        ));
        w.write_frame(0, 10, &[0], true).expect("first");
        assert!(matches!(
            w.write_frame(0, 5, &[0], true),
            Err(MuxError::NonMonotonic { .. })
        ));
    }
}
