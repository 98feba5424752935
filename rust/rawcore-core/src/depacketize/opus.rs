//! Opus over RTP (RFC 7587): every payload is exactly one Opus packet.
//!
//! The only thing rawcore needs from an Opus packet without decoding it is how long it plays and
//! whether it is coded stereo; both come from the TOC byte and the frame-count code
//! (RFC 6716 §3.1-3.2). [`packet_info`] reads them and enforces the packet rules that a decoder
//! would reject on (R1-R7), so a garbage payload is counted and skipped instead of being muxed.
//! Durations are never assumed: a stream may switch between 2.5 ms and 120 ms packets at will.
//!
//! [`OpusFiller`] writes the packets that stand in for missing audio. A frame of length 0 is what
//! an Opus encoder emits during DTX; libopus decodes any frame of at most one byte as lost and
//! runs its concealment for exactly the duration the TOC states (`opus_decode_frame`: "Payloads
//! of 1 (2 including ToC) or 0 trigger the PLC/DTX", capped at the TOC's frame size), which fades
//! the last sound out into silence. So a gap is filled with TOC-only packets: code 3 packets of
//! several empty frames up to the 120 ms limit (2 bytes each), then single frames for the rest.
//! Checked end to end: a capture with a 2 s DTX pause and a lost packet, extracted to Matroska,
//! WebM and Ogg, decodes with libopus (GStreamer `opusdec`) and FFmpeg (`avdec_opus`) to exactly
//! the 4 s wall-clock span, the concealment decaying towards silence across the gap.

/// Samples per second of every Opus duration (RFC 7587 fixes the RTP clock at 48 kHz).
pub const SAMPLE_RATE: u32 = 48_000;
/// The longest packet RFC 6716 allows: 120 ms.
pub const MAX_PACKET_SAMPLES: u32 = 5_760;
/// The shortest Opus frame, 2.5 ms: the resolution of any fill.
pub const MIN_FRAME_SAMPLES: u32 = 120;

/// Why a payload is not a valid Opus packet.
#[derive(thiserror::Error, Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpusError {
    /// The payload is empty (no TOC byte).
    #[error("empty payload")]
    Empty,
    /// A code 1 packet whose two frames cannot be of equal size.
    #[error("code 1 packet with an odd frame payload of {len} bytes")]
    OddCbrPair {
        /// Bytes after the TOC.
        len: usize,
    },
    /// The packet ends inside a frame length, count byte or padding length.
    #[error("packet truncated in its {what}")]
    Truncated {
        /// Which field was cut.
        what: &'static str,
    },
    /// A frame length runs past the end of the packet.
    #[error("frame length {len} exceeds the {available} bytes left")]
    FrameTooLong {
        /// The frame length read.
        len: usize,
        /// Bytes available for it.
        available: usize,
    },
    /// A code 3 packet announcing zero frames.
    #[error("code 3 packet with a frame count of 0")]
    ZeroFrames,
    /// A packet longer than 120 ms.
    #[error("{frames} frames of {frame_samples} samples exceed 120 ms")]
    TooLong {
        /// Frames in the packet.
        frames: u32,
        /// Samples (48 kHz) per frame.
        frame_samples: u32,
    },
    /// A constant-bitrate code 3 packet whose bytes do not split evenly into its frames.
    #[error("{len} bytes do not split into {frames} equal frames")]
    UnevenCbr {
        /// Bytes for the frames.
        len: usize,
        /// Frames in the packet.
        frames: u32,
    },
}

/// The coding mode a TOC configuration selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Linear prediction (configs 0-11): 10, 20, 40 or 60 ms frames.
    Silk,
    /// SILK plus CELT (configs 12-15): 10 or 20 ms frames.
    Hybrid,
    /// MDCT (configs 16-31): 2.5, 5, 10 or 20 ms frames.
    Celt,
}

/// What the TOC byte says (RFC 6716 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Toc {
    /// Configuration number, 0-31.
    pub config: u8,
    /// Whether the frames are coded stereo.
    pub stereo: bool,
    /// Frame-count code, 0-3.
    pub code: u8,
}

impl Toc {
    /// Splits a TOC byte into its fields.
    #[must_use]
    pub fn from_byte(byte: u8) -> Self {
        Self {
            config: byte >> 3,
            stereo: byte & 0x04 != 0,
            code: byte & 0x03,
        }
    }

    /// The TOC byte for these fields.
    #[must_use]
    pub fn to_byte(self) -> u8 {
        (self.config & 0x1F) << 3 | u8::from(self.stereo) << 2 | (self.code & 0x03)
    }

    /// The coding mode of the configuration.
    #[must_use]
    pub fn mode(self) -> Mode {
        match self.config {
            0..=11 => Mode::Silk,
            12..=15 => Mode::Hybrid,
            _ => Mode::Celt,
        }
    }

    /// Samples (48 kHz) per frame of the configuration.
    #[must_use]
    pub fn frame_samples(self) -> u32 {
        config_frame_samples(self.config)
    }
}

/// Samples (48 kHz) per frame of a TOC configuration (values above 31 use their low 5 bits).
#[must_use]
pub fn config_frame_samples(config: u8) -> u32 {
    let config = config & 0x1F;
    match config {
        0..=11 => [480, 960, 1920, 2880][usize::from(config % 4)],
        12..=15 => [480, 960][usize::from(config % 2)],
        _ => [120, 240, 480, 960][usize::from(config % 4)],
    }
}

/// How long a packet plays and how it is coded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketInfo {
    /// The TOC fields.
    pub toc: Toc,
    /// Frames in the packet, 1-48.
    pub frames: u32,
    /// Samples (48 kHz) per frame.
    pub frame_samples: u32,
}

impl PacketInfo {
    /// Samples (48 kHz) the packet decodes to.
    #[must_use]
    pub fn duration(&self) -> u32 {
        self.frames * self.frame_samples
    }
}

/// Reads a frame length (1 or 2 bytes) at the start of `rest`: `(length, bytes used)`.
fn frame_length(rest: &[u8]) -> Result<(usize, usize), OpusError> {
    match *rest {
        [b0, ..] if b0 < 252 => Ok((usize::from(b0), 1)),
        [b0, b1, ..] => Ok((usize::from(b1) * 4 + usize::from(b0), 2)),
        _ => Err(OpusError::Truncated {
            what: "frame length",
        }),
    }
}

/// Parses the TOC and frame layout of one Opus packet, checking RFC 6716 rules R1-R7.
pub fn packet_info(packet: &[u8]) -> Result<PacketInfo, OpusError> {
    let (&toc_byte, rest) = packet.split_first().ok_or(OpusError::Empty)?;
    let toc = Toc::from_byte(toc_byte);
    let frame_samples = toc.frame_samples();
    let frames = match toc.code {
        0 => 1,
        1 => {
            if rest.len() % 2 != 0 {
                return Err(OpusError::OddCbrPair { len: rest.len() });
            }
            2
        }
        2 => {
            let (len, used) = frame_length(rest)?;
            let available = rest.len() - used;
            if len > available {
                return Err(OpusError::FrameTooLong { len, available });
            }
            2
        }
        _ => code3_frames(rest, frame_samples)?,
    };
    Ok(PacketInfo {
        toc,
        frames,
        frame_samples,
    })
}

/// Validates the body of a code 3 packet and returns its frame count.
fn code3_frames(rest: &[u8], frame_samples: u32) -> Result<u32, OpusError> {
    let (&count, mut body) = rest.split_first().ok_or(OpusError::Truncated {
        what: "frame count byte",
    })?;
    let vbr = count & 0x80 != 0;
    let padded = count & 0x40 != 0;
    let frames = u32::from(count & 0x3F);
    if frames == 0 {
        return Err(OpusError::ZeroFrames);
    }
    if frames * frame_samples > MAX_PACKET_SAMPLES {
        return Err(OpusError::TooLong {
            frames,
            frame_samples,
        });
    }
    if padded {
        // Each 255 means 254 bytes of padding plus another length byte.
        let mut padding = 0usize;
        loop {
            let (&b, tail) = body.split_first().ok_or(OpusError::Truncated {
                what: "padding length",
            })?;
            body = tail;
            if b == 255 {
                padding += 254;
            } else {
                padding += usize::from(b);
                break;
            }
        }
        body = body
            .get(
                ..body
                    .len()
                    .checked_sub(padding)
                    .ok_or(OpusError::FrameTooLong {
                        len: padding,
                        available: body.len(),
                    })?,
            )
            .unwrap_or_default();
    }
    if vbr {
        let mut available = body.len();
        let mut at = 0;
        for _ in 1..frames {
            let (len, used) = frame_length(body.get(at..).unwrap_or_default())?;
            at += used;
            available = available
                .checked_sub(used + len)
                .ok_or(OpusError::FrameTooLong {
                    len,
                    available: available.saturating_sub(used),
                })?;
        }
    } else if body.len() % frames as usize != 0 {
        return Err(OpusError::UnevenCbr {
            len: body.len(),
            frames,
        });
    }
    Ok(frames)
}

/// Whether a packet carries in-band FEC for the audio just before it: the LBRR flag of its SILK
/// layer (RFC 6716 §4.2.3-4.2.4). A WebRTC sender with `useinbandfec=1` puts a low-bitrate copy
/// of frame N into packet N+1's SILK layer, so a lost frame can be decoded from its successor.
///
/// `None` when the packet has no single 10 or 20 ms SILK frame to ask: CELT-only packets (which
/// never carry LBRR), packets of several Opus frames or of 40/60 ms SILK frames (whose LBRR is
/// per SILK frame), DTX and concealment packets (at most one byte of frame data) and invalid
/// packets. The flag is the second symbol of the range-coded frame (after the mid channel's VAD
/// flag), each coded with probability 1/2.
#[must_use]
pub fn lbrr_flag(packet: &[u8]) -> Option<bool> {
    let info = packet_info(packet).ok()?;
    if info.toc.code != 0 || info.toc.mode() == Mode::Celt || info.frame_samples > 960 {
        return None;
    }
    let frame = packet.get(1..).filter(|f| f.len() > 1)?;
    let mut rc = RangeDecoder::new(frame);
    let _vad = rc.bit_logp(1);
    Some(rc.bit_logp(1))
}

/// The start of RFC 6716's range decoder (§4.1), enough to read the first binary symbols of a
/// frame. Reads past the end of the data as zeros, as libopus does.
struct RangeDecoder<'a> {
    data: &'a [u8],
    at: usize,
    rng: u32,
    val: u32,
    rem: u32,
}

impl<'a> RangeDecoder<'a> {
    fn new(data: &'a [u8]) -> Self {
        let mut rc = Self {
            data,
            at: 0,
            rng: 128,
            val: 0,
            rem: 0,
        };
        rc.rem = rc.byte();
        rc.val = rc.rng - 1 - (rc.rem >> 1);
        rc.normalize();
        rc
    }

    fn byte(&mut self) -> u32 {
        let b = self.data.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        u32::from(b)
    }

    fn normalize(&mut self) {
        while self.rng <= 1 << 23 {
            self.rng <<= 8;
            let sym = self.rem;
            self.rem = self.byte();
            let sym = (sym << 8 | self.rem) >> 1;
            self.val = ((self.val << 8) + (255 & !sym)) & 0x7FFF_FFFF;
        }
    }

    /// A binary symbol whose probability of being 1 is 1/2^`logp` (`ec_dec_bit_logp`).
    fn bit_logp(&mut self, logp: u32) -> bool {
        let s = self.rng >> logp;
        let one = self.val < s;
        if one {
            self.rng = s;
        } else {
            self.val -= s;
            self.rng -= s;
        }
        self.normalize();
        one
    }
}

/// Frame sizes (in 2.5 ms units) and the configuration that codes each, largest first, for the
/// mode family of `config`. SILK and Hybrid have nothing below 10 ms, so their short remainders
/// borrow the CELT configuration of the nearest bandwidth; the decoder conceals with its
/// previous mode either way.
fn fill_frames(config: u8) -> [(u32, u8); 5] {
    let config = config & 0x1F;
    match config {
        0..=11 => {
            let base = config & !3;
            let celt = if base == 0 { 16 } else { 20 };
            [
                (24, base + 3),
                (16, base + 2),
                (8, base + 1),
                (4, base),
                (1, celt),
            ]
        }
        12..=15 => {
            let base = config & !1;
            let celt = if base == 12 { 24 } else { 28 };
            [
                (8, base + 1),
                (4, base),
                (2, celt + 1),
                (1, celt),
                (1, celt),
            ]
        }
        _ => {
            let base = config & !3;
            [
                (8, base + 3),
                (4, base + 2),
                (2, base + 1),
                (1, base),
                (1, base),
            ]
        }
    }
}

/// Writes the packets that stand in for missing audio, exactly as long as the gaps they fill.
///
/// Opus cannot express less than 2.5 ms, so each fill is rounded to the nearest 120 samples and
/// the rounding error is carried into the next fill: over any number of gaps the filled total
/// stays within 60 samples (1.25 ms) of the requested total.
#[derive(Debug, Clone, Default)]
pub struct OpusFiller {
    carry: i64,
}

impl OpusFiller {
    /// A filler with no rounding error carried.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Samples requested but not yet filled (negative: filled in advance).
    #[must_use]
    pub fn carry(&self) -> i64 {
        self.carry
    }

    /// Emits fill packets for `samples` (48 kHz) coded like the packet whose TOC byte is
    /// `like_toc`, as `(packet bytes, samples)`. Returns the samples actually emitted.
    pub fn fill<E>(
        &mut self,
        like_toc: u8,
        samples: u64,
        mut emit: impl FnMut(&[u8], u32) -> Result<(), E>,
    ) -> Result<u64, E> {
        let unit = i64::from(MIN_FRAME_SAMPLES);
        let target = i64::try_from(samples).unwrap_or(i64::MAX / 2) + self.carry;
        let mut units = (target + unit / 2).div_euclid(unit).max(0) as u64;
        self.carry = target - units as i64 * unit;
        let stereo = like_toc & 0x04;
        let max_units = u64::from(MAX_PACKET_SAMPLES / MIN_FRAME_SAMPLES);
        let mut emitted = 0u64;
        for (size, config) in fill_frames(like_toc >> 3) {
            let size = u64::from(size);
            let per_packet = max_units / size;
            while units >= size {
                let count = (units / size).min(per_packet);
                let toc = config << 3 | stereo;
                let duration = (count * size) as u32 * MIN_FRAME_SAMPLES;
                if count == 1 {
                    emit(&[toc], duration)?;
                } else {
                    // Code 3, constant bitrate, no padding: `count` frames of 0 bytes each.
                    emit(&[toc | 3, count as u8], duration)?;
                }
                units -= count * size;
                emitted += u64::from(duration);
            }
        }
        Ok(emitted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_config_has_the_frame_duration_of_rfc_6716_table_2() {
        // (configs, mode, frame durations in µs for config % n)
        let table: [(std::ops::RangeInclusive<u8>, Mode, &[u32]); 3] = [
            (0..=11, Mode::Silk, &[10_000, 20_000, 40_000, 60_000]),
            (12..=15, Mode::Hybrid, &[10_000, 20_000]),
            (16..=31, Mode::Celt, &[2_500, 5_000, 10_000, 20_000]),
        ];
        for (configs, mode, durations) in table {
            for config in configs {
                for stereo in [false, true] {
                    let toc = Toc::from_byte(config << 3 | u8::from(stereo) << 2);
                    assert_eq!(toc.mode(), mode, "config {config}");
                    assert_eq!(toc.stereo, stereo, "config {config}");
                    let us = durations[usize::from(config) % durations.len()];
                    assert_eq!(toc.frame_samples(), us * 48 / 1000, "config {config}");
                    assert_eq!(Toc::from_byte(toc.to_byte()), toc, "round trip");
                }
            }
        }
    }

    #[test]
    fn every_config_and_code_yields_the_packet_duration() {
        for config in 0u8..32 {
            let frame = config_frame_samples(config);
            let toc = config << 3;
            // Code 0: one frame.
            assert_eq!(
                packet_info(&[toc, 1, 2, 3]).map(|i| i.duration()),
                Ok(frame)
            );
            // Code 1: two equal frames.
            assert_eq!(
                packet_info(&[toc | 1, 1, 2]).map(|i| i.duration()),
                Ok(2 * frame)
            );
            // Code 2: two frames, the first 1 byte long.
            assert_eq!(
                packet_info(&[toc | 2, 1, 9, 9]).map(|i| i.duration()),
                Ok(2 * frame)
            );
            // Code 3: every count up to 120 ms is valid, one more is not.
            let max = MAX_PACKET_SAMPLES / frame;
            for m in 1..=max {
                let info = packet_info(&[toc | 3, m as u8]);
                assert_eq!(
                    info.map(|i| i.duration()),
                    Ok(m * frame),
                    "config {config} M {m}"
                );
            }
            if max < 63 {
                assert_eq!(
                    packet_info(&[toc | 3, (max + 1) as u8]),
                    Err(OpusError::TooLong {
                        frames: max + 1,
                        frame_samples: frame
                    }),
                    "config {config}"
                );
            }
        }
    }

    /// Packets from libopus with in-band FEC on or off, for a voiced sound.
    fn encoded(
        bandwidth: opus::Bandwidth,
        bitrate: i32,
        fec: bool,
        frame_ms: usize,
    ) -> Vec<Vec<u8>> {
        let mut enc = opus::Encoder::new(48_000, opus::Channels::Mono, opus::Application::Voip)
            .expect("encoder");
        enc.set_bitrate(opus::Bitrate::Bits(bitrate))
            .expect("bitrate");
        enc.set_bandwidth(bandwidth).expect("bandwidth");
        enc.set_inband_fec(fec).expect("fec");
        enc.set_packet_loss_perc(10).expect("loss");
        let n = 48 * frame_ms;
        (0..50)
            .map(|k| {
                let pcm: Vec<f32> = (0..n)
                    .map(|i| {
                        let t = (k * n + i) as f32 / 48_000.0;
                        let f0 = 150.0 + 50.0 * (6.0 * t).sin();
                        (1..8)
                            .map(|h| 0.05 * (2.0 * std::f32::consts::PI * f0 * h as f32 * t).sin())
                            .sum()
                    })
                    .collect();
                enc.encode_vec_float(&pcm, 1500).expect("encode")
            })
            .collect()
    }

    #[test]
    fn the_lbrr_flag_says_which_packets_carry_fec() {
        let share = |packets: &[Vec<u8>]| {
            let flags: Vec<Option<bool>> = packets.iter().map(|p| lbrr_flag(p)).collect();
            let set = flags.iter().filter(|f| **f == Some(true)).count();
            (set, flags.iter().filter(|f| f.is_none()).count())
        };
        let silk = encoded(opus::Bandwidth::Wideband, 24_000, true, 20);
        assert!(silk.iter().all(|p| p[0] >> 3 == 9), "SILK wideband 20 ms");
        assert_eq!(
            lbrr_flag(&silk[0]),
            Some(false),
            "nothing before the first frame"
        );
        let (set, none) = share(&silk);
        assert!(set >= 40 && none == 0, "FEC on: {set} of 50 carry LBRR");
        let (set, _) = share(&encoded(opus::Bandwidth::Wideband, 24_000, false, 20));
        assert_eq!(set, 0, "FEC off: no LBRR");
        let hybrid = encoded(opus::Bandwidth::Fullband, 48_000, true, 10);
        let configs: Vec<u8> = hybrid.iter().map(|p| p[0] >> 3).collect();
        assert!(
            configs.iter().all(|&c| c == 14),
            "hybrid fullband 10 ms: {configs:?}"
        );
        assert!(share(&hybrid).0 >= 20, "hybrid frames carry LBRR too");
        let cases: [(&str, &[u8]); 5] = [
            ("CELT never carries LBRR", &[0xF8, 0xFF, 0xFE]),
            ("a DTX frame has no SILK layer to read", &[0x48, 0x00]),
            ("an empty frame", &[0x48]),
            ("two Opus frames (code 1)", &[0x49, 0xFF, 0xFF]),
            ("a 40 ms SILK frame", &[0x50, 0xFF, 0xFF]),
        ];
        for (name, packet) in cases {
            assert_eq!(lbrr_flag(packet), None, "{name}");
        }
    }

    #[test]
    fn malformed_packets_are_typed_errors() {
        let cases: [(&str, &[u8], OpusError); 8] = [
            ("an empty payload has no TOC", &[], OpusError::Empty),
            (
                "code 1 needs an even frame payload",
                &[0x79, 1, 2, 3],
                OpusError::OddCbrPair { len: 3 },
            ),
            (
                "code 2 needs its first frame length",
                &[0x7A],
                OpusError::Truncated {
                    what: "frame length",
                },
            ),
            (
                "code 2 first frame cannot exceed the packet",
                &[0x7A, 5, 1],
                OpusError::FrameTooLong {
                    len: 5,
                    available: 1,
                },
            ),
            (
                "code 3 needs its count byte",
                &[0x7B],
                OpusError::Truncated {
                    what: "frame count byte",
                },
            ),
            ("code 3 with zero frames", &[0x7B, 0], OpusError::ZeroFrames),
            (
                "code 3 CBR bytes must split evenly",
                &[0x7B, 2, 1, 2, 3],
                OpusError::UnevenCbr { len: 3, frames: 2 },
            ),
            (
                "code 3 padding cannot exceed the packet",
                &[0x7B, 0x41, 9, 1],
                OpusError::FrameTooLong {
                    len: 9,
                    available: 1,
                },
            ),
        ];
        for (name, packet, want) in cases {
            assert_eq!(packet_info(packet), Err(want), "{name}");
        }
    }

    #[test]
    fn code_3_vbr_and_padding_are_accepted_when_consistent() {
        // Config 31 (CELT FB 20 ms), VBR + padding, 3 frames: lengths 2 and 1, padding 2.
        let packet = [0xFB, 0xC3, 2, 2, 1, 7, 7, 8, 9, 9, 0, 0];
        assert_eq!(packet_info(&packet).map(|i| i.duration()), Ok(3 * 960));
        // Two-byte frame length: 252 + 4*1 = 256 bytes for the first frame.
        let mut long = vec![0xFA, 252, 1];
        long.extend(std::iter::repeat_n(0, 256 + 5));
        assert_eq!(packet_info(&long).map(|i| i.frames), Ok(2));
    }

    fn filled(like_toc: u8, requests: &[u64]) -> (Vec<Vec<u8>>, u64) {
        let mut filler = OpusFiller::new();
        let mut packets = Vec::new();
        let mut total = 0;
        for &samples in requests {
            total += filler
                .fill(like_toc, samples, |p, d| {
                    let info = packet_info(p).expect("fill packets are valid Opus");
                    assert_eq!(info.duration(), d, "stated duration matches the TOC");
                    assert_eq!(info.toc.stereo, like_toc & 4 != 0, "stereo bit kept");
                    packets.push(p.to_vec());
                    Ok::<_, ()>(())
                })
                .expect("emit never fails here");
        }
        (packets, total)
    }

    #[test]
    fn fills_sum_to_the_gap_with_few_bytes() {
        struct Case {
            name: &'static str,
            like_toc: u8,
            requests: &'static [u64],
            want_total: u64,
            max_packets: usize,
        }
        let cases = [
            Case {
                name: "CELT 20 ms stream: 2 s is 16 packets of 120 ms and one of 80 ms",
                like_toc: 31 << 3,
                requests: &[96_000],
                want_total: 96_000,
                max_packets: 17,
            },
            Case {
                name: "SILK stream: 60 ms frames two per packet, CELT for the 2.5 ms rest",
                like_toc: 11 << 3 | 4,
                requests: &[5_760 + 2_880 + 120],
                want_total: 5_760 + 2_880 + 120,
                max_packets: 3,
            },
            Case {
                name: "Hybrid stream: 7.5 ms remainder borrows CELT 5 + 2.5",
                like_toc: 15 << 3,
                requests: &[960 + 360],
                want_total: 960 + 360,
                max_packets: 3,
            },
            Case {
                name: "ten minutes is 5000 two-byte packets",
                like_toc: 31 << 3,
                requests: &[600 * 48_000],
                want_total: 600 * 48_000,
                max_packets: 5_000,
            },
            Case {
                name: "sub-2.5 ms remainders carry instead of drifting",
                like_toc: 31 << 3,
                requests: &[100, 100, 100, 100, 100, 100],
                want_total: 600,
                max_packets: 5,
            },
        ];
        for case in cases {
            let (packets, total) = filled(case.like_toc, case.requests);
            let requested: u64 = case.requests.iter().sum();
            assert!(
                total.abs_diff(requested) <= 60,
                "{}: drift {total} vs {requested}",
                case.name
            );
            assert_eq!(total, case.want_total, "{}", case.name);
            assert!(
                packets.len() <= case.max_packets,
                "{}: {}",
                case.name,
                packets.len()
            );
            assert!(packets.iter().all(|p| p.len() <= 2), "{}", case.name);
        }
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_payloads_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            if let Ok(info) = packet_info(&bytes) {
                proptest::prop_assert!(info.duration() <= MAX_PACKET_SAMPLES);
            }
        }
    }
}
