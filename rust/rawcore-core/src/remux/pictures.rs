//! Picture times and sizes of the first video track of a Matroska / WebM file, read from the
//! container and the frame headers: nothing is decoded.
//!
//! The editor's first pass needs every picture's time (for the nominal frame rate and the end)
//! and the largest picture the decoder will output (the size every output frame takes). The
//! sizes are the ones a decoder outputs, not the ones a header merely declares: VP8's 14-bit
//! keyframe size (the upscaling bits are not applied by decoders); VP9's coded frame size of
//! every frame that codes one (keyframes, intra-only frames, inter frames with an explicit size;
//! the `render_size` is a display hint decoders do not apply); H.264's SPS size with the cropping
//! window applied, from the `avcC` record or an SPS inside the stream, taken at each IDR picture.
//! Other codecs (AV1: its frame size sits behind most of the frame header) are reported as
//! unsupported, for the caller to scan by decoding instead. Fed in chunks of any size, memory is
//! one timestamp per picture plus one block.

use super::mkv::{Frame, MkvError, MkvReader, MkvTrack, TrackKind};
use crate::bitstream::{h264, vp8, vp9};

/// What the scan found in the first video track.
#[derive(Debug, Clone, PartialEq)]
pub struct Pictures {
    /// The track's codec short name (`vp8`, `vp9`, `h264`).
    pub codec: &'static str,
    /// Every non-empty frame's time in seconds, in file order.
    pub times_s: Vec<f64>,
    /// The largest picture (by area) the decoder outputs; `(0, 0)` when no header gave one.
    pub width: u32,
    /// See `width`.
    pub height: u32,
    /// `(time_s, width, height)` at the first sized picture and at every change of size.
    pub sizes: Vec<(f64, u32, u32)>,
}

/// How the scan ended.
#[derive(Debug, Clone, PartialEq)]
pub enum ScanOutcome {
    /// The track was read to the end (or to where the file is cut short).
    Read(Pictures),
    /// No video track.
    NoVideo,
    /// A video track in a codec without a header reader here (named): decode to scan it.
    Unsupported(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Codec {
    Vp8,
    Vp9,
    H264,
}

impl Codec {
    fn name(self) -> &'static str {
        match self {
            Codec::Vp8 => "vp8",
            Codec::Vp9 => "vp9",
            Codec::H264 => "h264",
        }
    }
}

/// H.264 parameter sets seen so far, by id.
#[derive(Debug, Default)]
struct H264Sets {
    /// NAL length prefix size (`lengthSizeMinusOne + 1`).
    length_size: usize,
    sps: Vec<(u32, (u32, u32))>,
    /// `(pps_id, sps_id)`.
    pps: Vec<(u32, u32)>,
    last_sps: Option<(u32, u32)>,
}

impl H264Sets {
    fn from_avcc(avcc: &[u8]) -> Self {
        let mut sets = Self {
            length_size: avcc.get(4).map_or(4, |b| usize::from(b & 3) + 1),
            ..Self::default()
        };
        // The record: 5 bytes, SPS count, (len, SPS)*, PPS count, (len, PPS)*.
        let mut at = 5usize;
        for kind in [7u8, 8] {
            let Some(&count) = avcc.get(at) else {
                return sets;
            };
            at += 1;
            let count = if kind == 7 { count & 0x1F } else { count };
            for _ in 0..count {
                let Some(&[hi, lo]) = avcc.get(at..at + 2) else {
                    return sets;
                };
                let len = usize::from(u16::from_be_bytes([hi, lo]));
                let Some(nal) = avcc.get(at + 2..at + 2 + len) else {
                    return sets;
                };
                sets.nal(nal);
                at += 2 + len;
            }
        }
        sets
    }

    /// Takes in a parameter set; for an IDR slice, the size of the picture it starts.
    fn nal(&mut self, nal: &[u8]) -> Option<(u32, u32)> {
        match nal.first().map(|b| b & 0x1F) {
            Some(7) => {
                if let Ok(sps) = h264::parse_sps(nal) {
                    let size = (sps.width, sps.height);
                    self.sps.retain(|(id, _)| *id != sps.id);
                    self.sps.push((sps.id, size));
                    self.last_sps = Some(size);
                }
                None
            }
            Some(8) => {
                if let Ok((pps, sps)) = h264::pps_ids(nal) {
                    self.pps.retain(|(id, _)| *id != pps);
                    self.pps.push((pps, sps));
                }
                None
            }
            Some(5) => {
                let by_pps = h264::slice_start(nal).ok().and_then(|s| {
                    let (_, sps_id) = self.pps.iter().find(|(id, _)| *id == s.pps_id)?;
                    self.sps
                        .iter()
                        .find(|(id, _)| id == sps_id)
                        .map(|(_, size)| *size)
                });
                by_pps.or(self.last_sps)
            }
            _ => None,
        }
    }

    /// The size of the IDR picture in a length-prefixed access unit, if it holds one.
    fn access_unit(&mut self, mut data: &[u8]) -> Option<(u32, u32)> {
        let mut size = None;
        while data.len() >= self.length_size {
            let (prefix, rest) = data.split_at(self.length_size);
            let len = prefix
                .iter()
                .fold(0usize, |acc, &b| acc << 8 | usize::from(b));
            let Some(nal) = rest.get(..len) else {
                break;
            };
            if let Some(s) = self.nal(nal) {
                // The first slice decides; later slices of the same picture say the same.
                size = size.or(Some(s));
            }
            data = &rest[len..];
        }
        size
    }
}

/// The scan: feed the file with [`PictureScan::feed`] until it returns `false` or the file
/// ends, then [`PictureScan::finish`].
#[derive(Debug)]
pub struct PictureScan {
    reader: MkvReader,
    state: State,
}

#[derive(Debug)]
enum State {
    /// No frame seen yet: the track is picked at the first frame.
    Undecided,
    Reading {
        number: u64,
        codec: Codec,
        h264: H264Sets,
        pictures: Pictures,
    },
    Done(ScanOutcome),
}

/// A reason to stop reading early.
struct Stop;

fn pick(tracks: &[MkvTrack]) -> State {
    let Some(track) = tracks.iter().find(|t| t.kind == TrackKind::Video) else {
        return State::Done(ScanOutcome::NoVideo);
    };
    let codec = match track.codec_name() {
        "vp8" => Codec::Vp8,
        "vp9" => Codec::Vp9,
        "h264" => Codec::H264,
        other => return State::Done(ScanOutcome::Unsupported(other.to_owned())),
    };
    let h264 = if codec == Codec::H264 {
        H264Sets::from_avcc(&track.codec_private)
    } else {
        H264Sets::default()
    };
    State::Reading {
        number: track.number,
        codec,
        h264,
        pictures: Pictures {
            codec: codec.name(),
            times_s: Vec::new(),
            width: 0,
            height: 0,
            sizes: Vec::new(),
        },
    }
}

/// The sizes the decoder outputs for one frame (several for a VP9 superframe).
fn frame_sizes(codec: Codec, h264: &mut H264Sets, data: &[u8], out: &mut Vec<(u32, u32)>) {
    match codec {
        Codec::Vp8 => {
            if let Ok(vp8::Vp8Header {
                size: Some(size), ..
            }) = vp8::parse_header(data)
            {
                out.push(size);
            }
        }
        Codec::Vp9 => {
            for range in vp9::split_superframe(data) {
                if let Some(Ok(vp9::Vp9Header {
                    size: Some(size), ..
                })) = data.get(range).map(vp9::parse_header)
                {
                    out.push(size);
                }
            }
        }
        Codec::H264 => out.extend(h264.access_unit(data)),
    }
}

fn on_frame(state: &mut State, tracks: &[MkvTrack], f: &Frame<'_>) -> Result<(), Stop> {
    if matches!(state, State::Undecided) {
        *state = pick(tracks);
    }
    let State::Reading {
        number,
        codec,
        h264,
        pictures,
    } = state
    else {
        return Err(Stop);
    };
    if f.track != *number || f.data.is_empty() {
        return Ok(());
    }
    // Exact to the last bit for timestamps below 2^53 ns: one rounding, as FFmpeg's
    // `pts * time_base` gives.
    let time = (i128::from(f.timestamp) * i128::from(f.scale_ns)) as f64 / 1e9;
    pictures.times_s.push(time);
    let mut sizes = Vec::new();
    frame_sizes(*codec, h264, f.data, &mut sizes);
    for (w, h) in sizes {
        if w == 0 || h == 0 {
            continue;
        }
        if pictures
            .sizes
            .last()
            .is_none_or(|&(_, lw, lh)| (lw, lh) != (w, h))
        {
            pictures.sizes.push((time, w, h));
        }
        if u64::from(w) * u64::from(h) > u64::from(pictures.width) * u64::from(pictures.height) {
            pictures.width = w;
            pictures.height = h;
        }
    }
    Ok(())
}

impl Default for PictureScan {
    fn default() -> Self {
        Self::new()
    }
}

impl PictureScan {
    /// A scan at the start of a file.
    #[must_use]
    pub fn new() -> Self {
        Self {
            reader: MkvReader::new(),
            state: State::Undecided,
        }
    }

    /// Reads the next bytes of the file; `Ok(false)` when the rest is not needed (no video
    /// track, or one this scan cannot read).
    pub fn feed(&mut self, chunk: &[u8]) -> Result<bool, MkvError> {
        let state = &mut self.state;
        match self
            .reader
            .feed(chunk, &mut |tracks: &[MkvTrack], f: Frame<'_>| {
                on_frame(state, tracks, &f)
            }) {
            Ok(()) => Ok(true),
            Err(Ok(Stop)) => Ok(false),
            Err(Err(e)) => Err(e),
        }
    }

    /// What was found. A file cut short inside an element counts up to the cut.
    pub fn finish(self) -> Result<ScanOutcome, MkvError> {
        if let State::Done(outcome) = self.state {
            return Ok(outcome);
        }
        self.reader.finish()?;
        Ok(match self.state {
            State::Reading { pictures, .. } => ScanOutcome::Read(pictures),
            // No frame at all: the tracks still say what there is.
            State::Undecided => match pick(self.reader.tracks().unwrap_or_default()) {
                State::Reading { pictures, .. } => ScanOutcome::Read(pictures),
                State::Done(outcome) => outcome,
                State::Undecided => ScanOutcome::NoVideo,
            },
            State::Done(outcome) => outcome,
        })
    }
}

/// Scans a whole in-memory file fed in chunks of `chunk` bytes (tests and fuzzing).
pub fn scan_bytes(data: &[u8], chunk: usize) -> Result<ScanOutcome, MkvError> {
    let mut scan = PictureScan::new();
    for piece in data.chunks(chunk.max(1)) {
        if !scan.feed(piece)? {
            break;
        }
    }
    scan.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mux::matroska::{DocType, MatroskaWriter, TrackEntry};
    use crate::mux::OpusHead;
    use std::io::Cursor;

    /// MSB-first bits, as the VP9 uncompressed header is written.
    fn bits(fields: &[(u32, u32)]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut n = 0usize;
        for &(value, width) in fields {
            for i in (0..width).rev() {
                if n % 8 == 0 {
                    out.push(0);
                }
                if value >> i & 1 == 1 {
                    *out.last_mut().unwrap() |= 0x80 >> (n % 8);
                }
                n += 1;
            }
        }
        out
    }

    /// A VP9 profile-0 keyframe header of `w`x`h` (shown or hidden) and filler.
    fn vp9_key(w: u32, h: u32, show: bool) -> Vec<u8> {
        let mut v = bits(&[
            (2, 2), // frame_marker
            (0, 2), // profile 0
            (0, 1), // show_existing_frame
            (0, 1), // frame_type KEY
            (u32::from(show), 1),
            (0, 1),           // error_resilient_mode
            (0x49_83_42, 24), // sync code
            (1, 3),           // color_space BT.601
            (0, 1),           // color_range
            (w - 1, 16),
            (h - 1, 16),
            (1, 1),          // render_and_frame_size_different: a render size follows
            (w * 2 - 1, 16), // render size: a display hint decoders do not apply
            (h * 2 - 1, 16),
        ]);
        v.resize(v.len() + 20, 0);
        v
    }

    /// A VP9 inter frame whose size comes from a reference (no size in the header).
    fn vp9_inter() -> Vec<u8> {
        // marker, profile 0, not shown-existing, inter, shown, not error resilient,
        // reset_frame_context, refresh_frame_flags, three ref_frame_idx + sign bias, found_ref.
        let mut v = bits(&[
            (2, 2),
            (0, 2),
            (0, 1),
            (1, 1),
            (1, 1),
            (0, 1),
            (0, 2),
            (1, 8),
            (0, 12),
            (1, 1),
        ]);
        v.extend([0u8; 8]);
        v
    }

    /// A VP8 keyframe of `w`x`h` whose top size bits (the upscaling mode) are set.
    fn vp8_key(w: u16, h: u16) -> Vec<u8> {
        let mut v = vec![0x10, 0, 0, 0x9d, 0x01, 0x2a];
        v.extend((w | 0x4000).to_le_bytes());
        v.extend((h | 0xC000).to_le_bytes());
        v.resize(30, 0);
        v
    }

    /// Two VP9 frames joined by a superframe index (Annex B: 1-byte sizes).
    fn superframe(a: &[u8], b: &[u8]) -> Vec<u8> {
        let marker = 0b1100_0000 | 1;
        let mut v = [a, b].concat();
        v.extend([marker, a.len() as u8, b.len() as u8, marker]);
        v
    }

    fn file(video: TrackEntry, frames: &[(u64, Vec<u8>, bool)]) -> Vec<u8> {
        let doc = if matches!(video, TrackEntry::Avc { .. }) {
            DocType::Matroska
        } else {
            DocType::Webm
        };
        let tracks = vec![TrackEntry::Opus(OpusHead::default()), video];
        let mut w = MatroskaWriter::new(Cursor::new(Vec::new()), doc, tracks).unwrap();
        for (ms, data, key) in frames {
            w.write_frame(0, ms * 1_000_000, &[0xF8, 1, 2], true)
                .unwrap();
            w.write_frame(1, ms * 1_000_000, data, *key).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    #[test]
    fn sizes_are_what_the_decoder_outputs_at_every_chunk_size() {
        let vp9 = TrackEntry::Vp9 {
            width: 8,
            height: 8,
        };
        let vp8 = TrackEntry::Vp8 {
            width: 8,
            height: 8,
        };
        // (case, video track, frames, times (s), largest, size changes)
        #[allow(clippy::type_complexity)]
        let cases: [(
            &str,
            TrackEntry,
            Vec<(u64, Vec<u8>, bool)>,
            Vec<f64>,
            (u32, u32),
            Vec<(f64, u32, u32)>,
        ); 4] = [
            (
                "VP9: the coded size, not the render size; inter frames keep it",
                vp9.clone(),
                vec![(0, vp9_key(320, 180, true), true), (33, vp9_inter(), false)],
                vec![0.0, 0.033],
                (320, 180),
                vec![(0.0, 320, 180)],
            ),
            (
                "VP9: a smaller stretch, then a hidden larger keyframe inside a superframe",
                vp9.clone(),
                vec![
                    (0, vp9_key(320, 180, true), true),
                    (100, vp9_key(160, 90, true), true),
                    (
                        200,
                        superframe(&vp9_key(640, 360, false), &vp9_inter()),
                        true,
                    ),
                ],
                vec![0.0, 0.1, 0.2],
                (640, 360),
                vec![(0.0, 320, 180), (0.1, 160, 90), (0.2, 640, 360)],
            ),
            (
                "VP8: the 14-bit size without the upscaling bits",
                vp8,
                vec![
                    (0, vp8_key(176, 144), true),
                    (50, vec![0x11, 0, 0, 0], false),
                ],
                vec![0.0, 0.05],
                (176, 144),
                vec![(0.0, 176, 144)],
            ),
            (
                "an empty block is no picture",
                vp9,
                vec![(0, vp9_key(64, 48, true), true), (40, Vec::new(), false)],
                vec![0.0],
                (64, 48),
                vec![(0.0, 64, 48)],
            ),
        ];
        for (case, video, frames, times, largest, changes) in cases {
            let data = file(video, &frames);
            for chunk in [1, 7, 4096, data.len()] {
                let ScanOutcome::Read(p) = scan_bytes(&data, chunk).unwrap() else {
                    panic!("{case}: not read");
                };
                assert_eq!(p.times_s, times, "{case} ({chunk})");
                assert_eq!((p.width, p.height), largest, "{case} ({chunk})");
                assert_eq!(p.sizes, changes, "{case} ({chunk})");
            }
        }
    }

    /// SPS NAL units written by x264 (the ones `bitstream::h264`'s tests read): 320x180 is
    /// 192 macroblock rows cropped to 180.
    const SPS_320X180: &[u8] = &[
        0x67, 0x64, 0x00, 0x14, 0xac, 0xd9, 0x41, 0x41, 0x9f, 0x9f, 0x01, 0x6a, 0x0c, 0x0c, 0x0d,
        0x4a, 0x00, 0x00, 0x03, 0x00, 0x02, 0x00, 0x00, 0x03, 0x00, 0x79, 0x1e, 0x28, 0x53, 0x2c,
    ];
    const SPS_1280X720: &[u8] = &[
        0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9, 0x40, 0x50, 0x05, 0xbb, 0x01, 0x6a, 0x02, 0x02, 0x02,
        0x80, 0x00, 0x00, 0x03, 0x00, 0x80, 0x00, 0x00, 0x1e, 0x47, 0x8c, 0x18, 0xcb,
    ];

    #[test]
    fn h264_size_is_the_cropped_sps_of_each_idr_picture() {
        // PPS 0 -> SPS 0; an IDR slice and a non-IDR slice, both using PPS 0.
        let pps: &[u8] = &[0x68, 0xCE, 0x3C, 0x80];
        let idr: &[u8] = &[0x65, 0x88, 0x84, 0x00, 0x33];
        let p_slice: &[u8] = &[0x41, 0x9A, 0x00];
        let avcc = h264::build_avcc(&[SPS_320X180], &[pps]).unwrap();
        let au = |nals: &[&[u8]]| -> Vec<u8> {
            nals.iter()
                .flat_map(|n| {
                    (n.len() as u32)
                        .to_be_bytes()
                        .into_iter()
                        .chain(n.iter().copied())
                })
                .collect()
        };
        let video = TrackEntry::Avc {
            width: 8,
            height: 8,
            avcc,
        };
        let frames = [
            (0, au(&[idr]), true),
            (40, au(&[p_slice]), false),
            // A new SPS in the stream: the next IDR picture is 1280x720.
            (80, au(&[SPS_1280X720, pps, idr]), true),
            (120, au(&[p_slice]), false),
        ];
        let data = file(video, &frames);
        for chunk in [5, data.len()] {
            let ScanOutcome::Read(p) = scan_bytes(&data, chunk).unwrap() else {
                panic!("not read");
            };
            assert_eq!((p.width, p.height), (1280, 720));
            assert_eq!(p.sizes, vec![(0.0, 320, 180), (0.08, 1280, 720)]);
            assert_eq!(p.times_s, vec![0.0, 0.04, 0.08, 0.12]);
        }
    }

    #[test]
    fn other_codecs_and_files_without_video_are_left_to_the_caller() {
        let av1 = TrackEntry::Av1 {
            width: 8,
            height: 8,
            av1c: vec![0x81, 0, 0, 0],
        };
        let data = file(av1, &[(0, vec![0x12, 0], true), (40, vec![0x12, 0], false)]);
        assert_eq!(
            scan_bytes(&data, 64).unwrap(),
            ScanOutcome::Unsupported("av1".into())
        );
        let tracks = vec![TrackEntry::Opus(OpusHead::default())];
        let mut w = MatroskaWriter::new(Cursor::new(Vec::new()), DocType::Webm, tracks).unwrap();
        w.write_frame(0, 0, &[0xF8, 1], true).unwrap();
        let audio_only = w.finish().unwrap().into_inner();
        assert_eq!(scan_bytes(&audio_only, 64).unwrap(), ScanOutcome::NoVideo);
        assert!(scan_bytes(b"RIFF....WAVE", 4).is_err());
    }
}
