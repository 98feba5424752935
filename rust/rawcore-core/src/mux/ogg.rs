//! A streaming Ogg Opus writer (RFC 3533 pages, RFC 7845 mapping).
//!
//! The first page holds only the `OpusHead` packet (beginning of stream), the second only
//! `OpusTags` (vendor "rawcore"); audio starts on the third. Ogg has no timestamps: a page's
//! granule position is the pre-skip plus the 48 kHz samples decoded up to the end of the last
//! packet completed on it (-1 when none completes there), so gaps must be filled with packets for
//! the timeline to hold. A page is closed once it holds about a second of audio or 4 KB, which
//! keeps seeking fine-grained and memory flat; fill packets do not count towards the second, so a
//! long gap costs a few full pages instead of thousands of tiny ones. The last page carries the
//! end-of-stream flag.

use std::io::Write;

use super::{MuxError, OpusHead};

/// A page is closed once it holds this many samples of audio (1 s at 48 kHz)...
pub const PAGE_MAX_SAMPLES: u64 = 48_000;
/// ...or this many bytes of packet data.
pub const PAGE_MAX_BYTES: usize = 4_096;
/// Lacing values per page, fixed by the format.
const MAX_SEGMENTS: usize = 255;

const FLAG_CONTINUED: u8 = 0x01;
const FLAG_BOS: u8 = 0x02;
const FLAG_EOS: u8 = 0x04;

/// The Ogg CRC-32 (polynomial 0x04C11DB7, MSB first, initial value 0, no final XOR), as eight
/// tables: `CRC_TABLES[0]` advances one byte, `CRC_TABLES[k]` a byte followed by `k` zero bytes,
/// so eight bytes are folded in per step ("slicing by 8") instead of one.
const CRC_TABLES: [[u32; 256]; 8] = {
    let mut t = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut r = (i as u32) << 24;
        let mut bit = 0;
        while bit < 8 {
            r = if r & 0x8000_0000 != 0 {
                (r << 1) ^ 0x04C1_1DB7
            } else {
                r << 1
            };
            bit += 1;
        }
        t[0][i] = r;
        i += 1;
    }
    let mut k = 1;
    while k < 8 {
        let mut i = 0;
        while i < 256 {
            let prev = t[k - 1][i];
            t[k][i] = (prev << 8) ^ t[0][(prev >> 24) as usize];
            i += 1;
        }
        k += 1;
    }
    t
};

/// The Ogg page checksum of `data`.
#[must_use]
pub fn crc32(data: &[u8]) -> u32 {
    let t = &CRC_TABLES;
    let mut crc = 0u32;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let a = crc ^ u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
        let b = u32::from_be_bytes([c[4], c[5], c[6], c[7]]);
        crc = t[7][(a >> 24) as usize]
            ^ t[6][((a >> 16) & 0xFF) as usize]
            ^ t[5][((a >> 8) & 0xFF) as usize]
            ^ t[4][(a & 0xFF) as usize]
            ^ t[3][(b >> 24) as usize]
            ^ t[2][((b >> 16) & 0xFF) as usize]
            ^ t[1][((b >> 8) & 0xFF) as usize]
            ^ t[0][(b & 0xFF) as usize];
    }
    chunks.remainder().iter().fold(crc, |crc, &b| {
        (crc << 8) ^ t[0][usize::from((crc >> 24) as u8 ^ b)]
    })
}

/// Writes one Ogg Opus logical stream.
#[derive(Debug)]
pub struct OggOpusWriter<W: Write> {
    out: W,
    serial: u32,
    sequence: u32,
    pre_skip: u64,
    decoded: u64,
    lacing: Vec<u8>,
    body: Vec<u8>,
    /// Granule at the end of the last packet completed on the open page.
    granule: Option<u64>,
    page_samples: u64,
    continued: bool,
    page: Vec<u8>,
}

impl<W: Write> OggOpusWriter<W> {
    /// Writes the `OpusHead` and `OpusTags` pages. `serial` names the logical stream; rawcore
    /// passes a fixed value so output is reproducible.
    pub fn new(out: W, head: &OpusHead, serial: u32) -> Result<Self, MuxError> {
        let mut w = Self {
            out,
            serial,
            sequence: 0,
            pre_skip: u64::from(head.pre_skip),
            decoded: 0,
            lacing: Vec::with_capacity(MAX_SEGMENTS),
            body: Vec::with_capacity(PAGE_MAX_BYTES + 2048),
            granule: None,
            page_samples: 0,
            continued: false,
            page: Vec::with_capacity(PAGE_MAX_BYTES + 512),
        };
        w.add_packet(&head.to_bytes(), 0)?;
        w.flush_page(FLAG_BOS)?;
        let vendor = b"rawcore";
        let mut tags = Vec::with_capacity(24);
        tags.extend_from_slice(b"OpusTags");
        tags.extend_from_slice(&(vendor.len() as u32).to_le_bytes());
        tags.extend_from_slice(vendor);
        tags.extend_from_slice(&0u32.to_le_bytes()); // no user comments
        w.add_packet(&tags, 0)?;
        w.flush_page(0)?;
        Ok(w)
    }

    /// Appends an audio packet that decodes to `samples` (48 kHz).
    pub fn write_packet(&mut self, data: &[u8], samples: u32) -> Result<(), MuxError> {
        self.write(data, samples, true)
    }

    /// Appends a packet that only stands in for missing audio; it does not count towards the
    /// page's second of audio.
    pub fn write_fill_packet(&mut self, data: &[u8], samples: u32) -> Result<(), MuxError> {
        self.write(data, samples, false)
    }

    fn write(&mut self, data: &[u8], samples: u32, audio: bool) -> Result<(), MuxError> {
        if self.page_samples >= PAGE_MAX_SAMPLES || self.body.len() >= PAGE_MAX_BYTES {
            self.flush_page(0)?;
        }
        self.decoded += u64::from(samples);
        if audio {
            self.page_samples += u64::from(samples);
        }
        self.add_packet(data, self.pre_skip + self.decoded)
    }

    /// Laces `data` onto the open page, spilling onto continuation pages when it does not fit.
    fn add_packet(&mut self, mut data: &[u8], granule: u64) -> Result<(), MuxError> {
        loop {
            if self.lacing.len() == MAX_SEGMENTS {
                self.flush_page(0)?;
            }
            let free = MAX_SEGMENTS - self.lacing.len();
            // A packet takes one 255 per full 255 bytes and a final value below 255.
            let full = data.len() / 255;
            if full < free {
                self.lacing.resize(self.lacing.len() + full, 255);
                self.lacing.push((data.len() % 255) as u8);
                self.body.extend_from_slice(data);
                self.granule = Some(granule);
                return Ok(());
            }
            let (now, rest) = data.split_at(free * 255);
            self.lacing.resize(MAX_SEGMENTS, 255);
            self.body.extend_from_slice(now);
            data = rest;
            self.flush_page(0)?;
            self.continued = true;
        }
    }

    fn flush_page(&mut self, flags: u8) -> Result<(), MuxError> {
        let flags = flags | if self.continued { FLAG_CONTINUED } else { 0 };
        let granule = self.granule.map_or(u64::MAX, |g| g);
        let p = &mut self.page;
        p.clear();
        p.extend_from_slice(b"OggS");
        p.push(0); // version
        p.push(flags);
        p.extend_from_slice(&granule.to_le_bytes());
        p.extend_from_slice(&self.serial.to_le_bytes());
        p.extend_from_slice(&self.sequence.to_le_bytes());
        p.extend_from_slice(&[0; 4]); // checksum, computed over the page with this zeroed
        p.push(self.lacing.len() as u8);
        p.extend_from_slice(&self.lacing);
        p.extend_from_slice(&self.body);
        let crc = crc32(p);
        p.get_mut(22..26)
            .expect("page header is 27 bytes")
            .copy_from_slice(&crc.to_le_bytes());
        self.out.write_all(p).map_err(MuxError::io("Ogg page"))?;
        self.sequence = self.sequence.wrapping_add(1);
        self.lacing.clear();
        self.body.clear();
        self.granule = None;
        self.page_samples = 0;
        self.continued = false;
        Ok(())
    }

    /// Samples decoded so far, pre-skip excluded.
    #[must_use]
    pub fn decoded_samples(&self) -> u64 {
        self.decoded
    }

    /// Writes the last page with the end-of-stream flag and hands the output back.
    pub fn finish(mut self) -> Result<W, MuxError> {
        if self.granule.is_none() && self.lacing.is_empty() {
            // Nothing pending: an empty page still has to carry the flag and the final granule.
            self.granule = Some(self.pre_skip + self.decoded);
        }
        self.flush_page(FLAG_EOS)?;
        self.out.flush().map_err(MuxError::io("Ogg end"))?;
        Ok(self.out)
    }
}

#[cfg(test)]
#[allow(clippy::type_complexity)] // test tables are tuples named by their doc comments
mod tests {
    use super::*;

    /// `(flags, granule, sequence, lacing values, body)` of every page, checksums verified.
    fn pages(data: &[u8]) -> Vec<(u8, i64, u32, Vec<u8>, Vec<u8>)> {
        let mut out = Vec::new();
        let mut at = 0;
        while at < data.len() {
            assert_eq!(&data[at..at + 4], b"OggS", "capture pattern at {at}");
            let n = usize::from(data[at + 26]);
            let lacing = data[at + 27..at + 27 + n].to_vec();
            let body_len: usize = lacing.iter().map(|&l| usize::from(l)).sum();
            let end = at + 27 + n + body_len;
            let mut page = data[at..end].to_vec();
            let stored = u32::from_le_bytes(page[22..26].try_into().expect("4 bytes"));
            page[22..26].fill(0);
            assert_eq!(crc32(&page), stored, "checksum of page at {at}");
            let granule = i64::from_le_bytes(data[at + 6..at + 14].try_into().expect("8"));
            let seq = u32::from_le_bytes(data[at + 18..at + 22].try_into().expect("4"));
            out.push((
                data[at + 5],
                granule,
                seq,
                lacing,
                data[at + 27 + n..end].to_vec(),
            ));
            at = end;
        }
        out
    }

    #[test]
    fn crc_matches_the_known_check_value_and_the_bitwise_definition() {
        assert_eq!(crc32(b"123456789"), 0x89A1_897F);
        assert_eq!(crc32(b""), 0);
        let bitwise = |data: &[u8]| {
            data.iter().fold(0u32, |mut crc, &b| {
                crc ^= u32::from(b) << 24;
                for _ in 0..8 {
                    crc = if crc & 0x8000_0000 != 0 {
                        (crc << 1) ^ 0x04C1_1DB7
                    } else {
                        crc << 1
                    };
                }
                crc
            })
        };
        let data: Vec<u8> = (0..1_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
            .collect();
        for len in [1, 7, 8, 9, 63, 64, 65, 1_000] {
            assert_eq!(crc32(&data[..len]), bitwise(&data[..len]), "length {len}");
        }
    }

    #[test]
    fn packets_are_laced_with_a_terminating_value() {
        let cases: [(&str, usize, &[u8]); 4] = [
            ("a 2-byte packet is one value", 2, &[2]),
            ("254 bytes fit one value", 254, &[254]),
            ("255 bytes need a trailing 0", 255, &[255, 0]),
            ("510 bytes are 255, 255, 0", 510, &[255, 255, 0]),
        ];
        for (name, len, want) in cases {
            let mut w = OggOpusWriter::new(Vec::new(), &OpusHead::default(), 7).expect("head");
            w.write_packet(&vec![0xAA; len], 960).expect("packet");
            let data = w.finish().expect("finish");
            let got = pages(&data);
            assert_eq!(got[2].3, want, "{name}");
            assert_eq!(got[2].4.len(), len, "{name}");
        }
    }

    #[test]
    fn headers_granules_and_flags_follow_rfc_7845() {
        let head = OpusHead {
            pre_skip: 312,
            ..OpusHead::default()
        };
        let mut w = OggOpusWriter::new(Vec::new(), &head, 0x1234).expect("head");
        // 2.5 s of 20 ms packets: pages close after each second of audio.
        for _ in 0..125 {
            w.write_packet(&[0xFC, 0, 0], 960).expect("packet");
        }
        let data = w.finish().expect("finish");
        let got = pages(&data);
        assert_eq!(got[0].0, FLAG_BOS, "OpusHead page begins the stream");
        assert_eq!(&got[0].4[..8], b"OpusHead");
        assert_eq!(&got[1].4[..8], b"OpusTags");
        assert_eq!(&got[1].4[12..19], b"rawcore");
        assert_eq!((got[0].1, got[1].1), (0, 0), "header pages have granule 0");
        let audio: Vec<(u8, i64, usize)> = got[2..].iter().map(|p| (p.0, p.1, p.3.len())).collect();
        assert_eq!(
            audio,
            [
                (0, 312 + 48_000, 50),
                (0, 312 + 96_000, 50),
                (FLAG_EOS, 312 + 120_000, 25)
            ]
        );
        assert!(
            got.iter().enumerate().all(|(i, p)| p.2 == i as u32),
            "page sequence numbers"
        );
    }

    #[test]
    fn a_packet_larger_than_a_page_continues_on_the_next() {
        let mut w = OggOpusWriter::new(Vec::new(), &OpusHead::default(), 1).expect("head");
        w.write_packet(&vec![1; 255 * 255 + 10], 960)
            .expect("big packet");
        let data = w.finish().expect("finish");
        let got = pages(&data);
        assert_eq!(
            (got[2].0, got[2].1, got[2].3.len()),
            (0, -1, 255),
            "no packet ends here"
        );
        assert_eq!(
            (got[3].0, got[3].1, got[3].3.clone()),
            (FLAG_CONTINUED | FLAG_EOS, 960, vec![10])
        );
    }

    #[test]
    fn fill_packets_do_not_split_pages_by_duration() {
        let mut w = OggOpusWriter::new(Vec::new(), &OpusHead::default(), 1).expect("head");
        for _ in 0..300 {
            w.write_fill_packet(&[0xFB, 6], 5_760).expect("fill");
        }
        let data = w.finish().expect("finish");
        let got = pages(&data);
        assert_eq!(got.len(), 2 + 2, "300 fill packets take two pages");
        assert_eq!(got[3].1, 300 * 5_760);
    }
}
