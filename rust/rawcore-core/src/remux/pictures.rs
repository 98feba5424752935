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
                    self.sps.iter().find(|(id, _)| id == sps_id).map(|(_, size)| *size)
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
        if pictures.sizes.last().is_none_or(|&(_, lw, lh)| (lw, lh) != (w, h)) {
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
