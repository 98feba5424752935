//! ISO BMFF (MP4) boxes for a fast-start file: `ftyp`, then `moov` with every sample table, then
//! the `mdat` header. The payloads that follow are written by the caller in the order the tables
//! describe, so the whole index comes before the data and nothing is patched afterwards.
//!
//! Sample entries: `vp09` + `vpcC`, `av01` + `av1C`, `avc1` + `avcC`, `Opus` + `dOps`. A track
//! whose first sample is not at t=0 gets an edit list: an empty edit before a later start, or a
//! media time that skips what comes before 0.

/// The sample entry of a track, with what its configuration box needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SampleEntry {
    /// VP9 (`vp09` + `vpcC`): profile and bit depth from the first frame.
    Vp9 {
        /// VP9 profile 0-3.
        profile: u8,
        /// 8, 10 or 12.
        bit_depth: u8,
    },
    /// AV1 (`av01` + `av1C`): the `AV1CodecConfigurationRecord` as Matroska carries it.
    Av1 {
        /// The record.
        av1c: Vec<u8>,
    },
    /// H.264 (`avc1` + `avcC`): the `AVCDecoderConfigurationRecord`.
    Avc {
        /// The record.
        avcc: Vec<u8>,
    },
    /// Opus (`Opus` + `dOps`), from the Matroska `OpusHead`.
    Opus {
        /// Output channels.
        channels: u8,
        /// Samples to drop at the start.
        pre_skip: u16,
        /// Informational input rate.
        input_sample_rate: u32,
        /// Output gain, Q7.8 dB.
        output_gain: i16,
        /// Channel mapping family and, when not 0, stream count, coupled count and mapping.
        mapping: Vec<u8>,
    },
}

impl SampleEntry {
    /// Whether the track is video.
    #[must_use]
    pub fn is_video(&self) -> bool {
        !matches!(self, Self::Opus { .. })
    }

    /// The Opus sample entry from a Matroska `CodecPrivate` (an `OpusHead`), or from the channel
    /// count when there is none.
    #[must_use]
    pub fn opus(codec_private: &[u8], channels: u8) -> Self {
        match codec_private {
            [b'O', b'p', b'u', b's', b'H', b'e', b'a', b'd', _, ch, p0, p1, r0, r1, r2, r3, g0, g1, rest @ ..] => {
                Self::Opus {
                    channels: *ch,
                    pre_skip: u16::from_le_bytes([*p0, *p1]),
                    input_sample_rate: u32::from_le_bytes([*r0, *r1, *r2, *r3]),
                    output_gain: i16::from_le_bytes([*g0, *g1]),
                    mapping: if rest.is_empty() {
                        vec![0]
                    } else {
                        rest.to_vec()
                    },
                }
            }
            _ => Self::Opus {
                channels: channels.clamp(1, 2),
                pre_skip: 0,
                input_sample_rate: 48_000,
                output_gain: 0,
                mapping: vec![0],
            },
        }
    }
}

/// One track's tables, as the writer needs them.
#[derive(Debug, Clone)]
pub struct TrackTables<'a> {
    /// 1-based track ID.
    pub id: u32,
    /// The sample entry.
    pub entry: &'a SampleEntry,
    /// Media timescale (ticks per second).
    pub timescale: u32,
    /// Picture size (video).
    pub width: u32,
    /// Picture size (video).
    pub height: u32,
    /// Where the first sample is presented, in ticks (negative: skipped up to 0).
    pub start: i64,
    /// Ticks from the first sample's decode time to the first presented picture (frames
    /// stored in decode order): the edit list starts the media there.
    pub shift: u64,
    /// Every sample's duration in ticks (the interval to the next decode time).
    pub durations: &'a [u32],
    /// Every sample's composition offset (presentation minus decode time) in ticks, when
    /// they are not all 0 (`ctts`).
    pub offsets: Option<&'a [u32]>,
    /// Every sample's size in bytes.
    pub sizes: &'a [u32],
    /// 1-based numbers of the sync samples (None: all are).
    pub sync: Option<&'a [u32]>,
    /// Chunks: `(offset in the file, samples)`, in file order.
    pub chunks: &'a [(u64, u32)],
}

impl TrackTables<'_> {
    fn media_duration(&self) -> u64 {
        self.durations.iter().map(|&d| u64::from(d)).sum()
    }
}

/// The movie timescale (ms, as most writers use).
pub const MOVIE_TIMESCALE: u32 = 1000;

fn to_movie(ticks: u64, timescale: u32) -> u64 {
    (u128::from(ticks) * u128::from(MOVIE_TIMESCALE) / u128::from(timescale.max(1))) as u64
}

struct Boxes(Vec<u8>);

impl Boxes {
    fn new() -> Self {
        Self(Vec::new())
    }
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn bytes(&mut self, v: &[u8]) {
        self.0.extend_from_slice(v);
    }
    fn zeros(&mut self, n: usize) {
        self.0.resize(self.0.len() + n, 0);
    }
    /// A box: size, type, then what `body` writes.
    fn boxed(&mut self, kind: [u8; 4], body: impl FnOnce(&mut Self)) {
        let start = self.0.len();
        self.u32(0);
        self.bytes(&kind);
        body(self);
        let size = (self.0.len() - start) as u32;
        self.0[start..start + 4].copy_from_slice(&size.to_be_bytes());
    }
    /// A full box: size, type, version and flags, then `body`.
    fn full(&mut self, kind: [u8; 4], version: u8, flags: u32, body: impl FnOnce(&mut Self)) {
        self.boxed(kind, |b| {
            b.u32(u32::from(version) << 24 | (flags & 0x00FF_FFFF));
            body(b);
        });
    }
    fn matrix(&mut self) {
        for v in [0x0001_0000u32, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000] {
            self.u32(v);
        }
    }
}

/// `ftyp` + `moov` + the `mdat` header for `tracks` whose payloads total `mdat_payload` bytes.
#[must_use]
pub fn header(tracks: &[TrackTables<'_>], mdat_payload: u64) -> Vec<u8> {
    let mut b = Boxes::new();
    b.boxed(*b"ftyp", |b| {
        b.bytes(b"isom");
        b.u32(0x200);
        b.bytes(b"isomiso2mp41");
        for t in tracks {
            match t.entry {
                SampleEntry::Av1 { .. } => b.bytes(b"av01"),
                SampleEntry::Avc { .. } => b.bytes(b"avc1"),
                _ => {}
            }
        }
    });
    let durations: Vec<u64> = tracks.iter().map(track_duration).collect();
    b.boxed(*b"moov", |b| {
        b.full(*b"mvhd", 1, 0, |b| {
            b.u64(0);
            b.u64(0);
            b.u32(MOVIE_TIMESCALE);
            b.u64(durations.iter().copied().max().unwrap_or(0));
            b.u32(0x0001_0000); // rate 1.0
            b.u16(0x0100); // volume 1.0
            b.zeros(10);
            b.matrix();
            b.zeros(24);
            b.u32(tracks.iter().map(|t| t.id).max().unwrap_or(0) + 1);
        });
        for (t, &duration) in tracks.iter().zip(&durations) {
            trak(b, t, duration);
        }
    });
    if mdat_payload + 8 > u64::from(u32::MAX) {
        b.u32(1);
        b.bytes(b"mdat");
        b.u64(mdat_payload + 16);
    } else {
        b.u32((mdat_payload + 8) as u32);
        b.bytes(b"mdat");
    }
    b.0
}

/// Bytes of the `mdat` header for `mdat_payload` bytes of samples.
#[must_use]
pub fn mdat_header_len(mdat_payload: u64) -> u64 {
    if mdat_payload + 8 > u64::from(u32::MAX) {
        16
    } else {
        8
    }
}

/// The track's presentation length in movie ticks, edits included.
fn track_duration(t: &TrackTables<'_>) -> u64 {
    let media = t.media_duration();
    if t.start >= 0 {
        to_movie(t.start as u64 + media, t.timescale)
    } else {
        to_movie(media.saturating_sub(t.start.unsigned_abs()), t.timescale)
    }
}

fn trak(b: &mut Boxes, t: &TrackTables<'_>, duration: u64) {
    let video = t.entry.is_video();
    b.boxed(*b"trak", |b| {
        b.full(*b"tkhd", 1, 3, |b| {
            b.u64(0);
            b.u64(0);
            b.u32(t.id);
            b.u32(0);
            b.u64(duration);
            b.zeros(8);
            b.u16(0); // layer
            b.u16(0); // alternate group
            b.u16(if video { 0 } else { 0x0100 });
            b.u16(0);
            b.matrix();
            b.u32(if video { t.width << 16 } else { 0 });
            b.u32(if video { t.height << 16 } else { 0 });
        });
        if t.start != 0 || t.shift != 0 {
            b.boxed(*b"edts", |b| {
                let media = t.media_duration();
                b.full(*b"elst", 1, 0, |b| {
                    if t.start > 0 {
                        b.u32(2);
                        b.u64(to_movie(t.start as u64, t.timescale));
                        b.u64(u64::MAX); // media time -1: an empty edit
                        b.u32(0x0001_0000);
                        b.u64(to_movie(media, t.timescale));
                        b.u64(t.shift);
                        b.u32(0x0001_0000);
                    } else {
                        b.u32(1);
                        let skip = t.start.unsigned_abs();
                        b.u64(to_movie(media.saturating_sub(skip), t.timescale));
                        b.u64(t.shift.saturating_add(skip));
                        b.u32(0x0001_0000);
                    }
                });
            });
        }
        b.boxed(*b"mdia", |b| {
            b.full(*b"mdhd", 1, 0, |b| {
                b.u64(0);
                b.u64(0);
                b.u32(t.timescale);
                b.u64(t.media_duration());
                b.u16(0x55C4); // "und"
                b.u16(0);
            });
            b.full(*b"hdlr", 0, 0, |b| {
                b.u32(0);
                b.bytes(if video { b"vide" } else { b"soun" });
                b.zeros(12);
                b.bytes(if video {
                    b"VideoHandler\0"
                } else {
                    b"SoundHandler\0"
                });
            });
            b.boxed(*b"minf", |b| {
                if video {
                    b.full(*b"vmhd", 0, 1, |b| b.zeros(8));
                } else {
                    b.full(*b"smhd", 0, 0, |b| b.zeros(4));
                }
                b.boxed(*b"dinf", |b| {
                    b.full(*b"dref", 0, 0, |b| {
                        b.u32(1);
                        b.full(*b"url ", 0, 1, |_| {});
                    });
                });
                stbl(b, t);
            });
        });
    });
}

fn stbl(b: &mut Boxes, t: &TrackTables<'_>) {
    b.boxed(*b"stbl", |b| {
        b.full(*b"stsd", 0, 0, |b| {
            b.u32(1);
            sample_entry(b, t);
        });
        let mut runs: Vec<(u32, u32)> = Vec::new();
        for &d in t.durations {
            match runs.last_mut() {
                Some((n, last)) if *last == d => *n += 1,
                _ => runs.push((1, d)),
            }
        }
        b.full(*b"stts", 0, 0, |b| {
            b.u32(runs.len() as u32);
            for (n, d) in &runs {
                b.u32(*n);
                b.u32(*d);
            }
        });
        if let Some(offsets) = t.offsets {
            let mut runs: Vec<(u32, u32)> = Vec::new();
            for &o in offsets {
                match runs.last_mut() {
                    Some((n, last)) if *last == o => *n += 1,
                    _ => runs.push((1, o)),
                }
            }
            // Version 0: unsigned offsets (every one is >= 0: decode times are shifted back).
            b.full(*b"ctts", 0, 0, |b| {
                b.u32(runs.len() as u32);
                for (n, o) in &runs {
                    b.u32(*n);
                    b.u32(*o);
                }
            });
        }
        if let Some(sync) = t.sync {
            b.full(*b"stss", 0, 0, |b| {
                b.u32(sync.len() as u32);
                for &s in sync {
                    b.u32(s);
                }
            });
        }
        let mut stsc: Vec<(u32, u32)> = Vec::new();
        for (i, &(_, n)) in t.chunks.iter().enumerate() {
            if stsc.last().is_none_or(|&(_, last)| last != n) {
                stsc.push((i as u32 + 1, n));
            }
        }
        b.full(*b"stsc", 0, 0, |b| {
            b.u32(stsc.len() as u32);
            for (first, n) in &stsc {
                b.u32(*first);
                b.u32(*n);
                b.u32(1);
            }
        });
        b.full(*b"stsz", 0, 0, |b| {
            b.u32(0);
            b.u32(t.sizes.len() as u32);
            for &s in t.sizes {
                b.u32(s);
            }
        });
        let large = t
            .chunks
            .last()
            .is_some_and(|&(o, _)| o > u64::from(u32::MAX));
        if large {
            b.full(*b"co64", 0, 0, |b| {
                b.u32(t.chunks.len() as u32);
                for &(o, _) in t.chunks {
                    b.u64(o);
                }
            });
        } else {
            b.full(*b"stco", 0, 0, |b| {
                b.u32(t.chunks.len() as u32);
                for &(o, _) in t.chunks {
                    b.u32(o as u32);
                }
            });
        }
    });
}

fn visual(b: &mut Boxes, t: &TrackTables<'_>) {
    b.zeros(6);
    b.u16(1); // data reference index
    b.zeros(16);
    b.u16(t.width.min(0xFFFF) as u16);
    b.u16(t.height.min(0xFFFF) as u16);
    b.u32(0x0048_0000);
    b.u32(0x0048_0000);
    b.u32(0);
    b.u16(1); // frame count
    b.zeros(32); // compressor name
    b.u16(0x0018);
    b.u16(0xFFFF);
}

fn sample_entry(b: &mut Boxes, t: &TrackTables<'_>) {
    match t.entry {
        SampleEntry::Vp9 { profile, bit_depth } => b.boxed(*b"vp09", |b| {
            visual(b, t);
            b.full(*b"vpcC", 1, 0, |b| {
                b.u8(*profile);
                b.u8(0); // level: unknown
                         // Bit depth, 4:2:0 co-located with luma (4:4:4 for profiles 1 and 3), limited range.
                let chroma = if profile % 2 == 1 { 3 } else { 1 };
                b.u8(bit_depth << 4 | chroma << 1);
                b.u8(2); // colour primaries: unspecified
                b.u8(2); // transfer: unspecified
                b.u8(2); // matrix: unspecified
                b.u16(0);
            });
        }),
        SampleEntry::Av1 { av1c } => b.boxed(*b"av01", |b| {
            visual(b, t);
            b.boxed(*b"av1C", |b| b.bytes(av1c));
        }),
        SampleEntry::Avc { avcc } => b.boxed(*b"avc1", |b| {
            visual(b, t);
            b.boxed(*b"avcC", |b| b.bytes(avcc));
        }),
        SampleEntry::Opus {
            channels,
            pre_skip,
            input_sample_rate,
            output_gain,
            mapping,
        } => b.boxed(*b"Opus", |b| {
            b.zeros(6);
            b.u16(1);
            b.zeros(8);
            b.u16(u16::from(*channels));
            b.u16(16);
            b.zeros(4);
            b.u32(48_000 << 16);
            b.boxed(*b"dOps", |b| {
                b.u8(0);
                b.u8(*channels);
                b.u16(*pre_skip);
                b.u32(*input_sample_rate);
                b.u16(*output_gain as u16);
                b.bytes(mapping);
            });
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find(data: &[u8], kind: [u8; 4]) -> Option<usize> {
        data.windows(4).position(|w| w == kind)
    }

    #[test]
    fn the_index_comes_before_the_data_and_sizes_add_up() {
        let entry = SampleEntry::opus(&[], 1);
        let t = TrackTables {
            id: 1,
            entry: &entry,
            timescale: 48_000,
            width: 0,
            height: 0,
            start: 960,
            shift: 0,
            durations: &[960, 960, 960],
            offsets: None,
            sizes: &[10, 20, 30],
            sync: None,
            chunks: &[(100, 3)],
        };
        let out = header(&[t], 60);
        let moov = find(&out, *b"moov").expect("moov");
        let mdat = find(&out, *b"mdat").expect("mdat");
        assert!(moov < mdat && mdat + 4 == out.len());
        let size = u32::from_be_bytes(out[mdat - 4..mdat].try_into().unwrap());
        assert_eq!(size, 68);
        assert!(
            find(&out, *b"elst").is_some(),
            "a later start has an edit list"
        );
        assert!(find(&out, *b"dOps").is_some());
    }

    #[test]
    fn opus_head_becomes_d_ops_fields() {
        let head = [
            b'O', b'p', b'u', b's', b'H', b'e', b'a', b'd', 1, 2, 0x38, 0x01, 0x80, 0xBB, 0, 0, 0,
            0, 0,
        ];
        assert_eq!(
            SampleEntry::opus(&head, 1),
            SampleEntry::Opus {
                channels: 2,
                pre_skip: 312,
                input_sample_rate: 48_000,
                output_gain: 0,
                mapping: vec![0]
            }
        );
    }
}
