//! The Matroska and Ogg writers take any frame sequence without panicking: out-of-order
//! timestamps, empty and huge frames and unknown tracks become typed errors.
#![no_main]

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use rawcore_core::{DocType, MatroskaWriter, OggOpusWriter, OpusHead, TrackEntry};

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.0.len());
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head
    }
    fn u8(&mut self) -> u8 {
        self.take(1).first().copied().unwrap_or(0)
    }
    fn u16(&mut self) -> u16 {
        u16::from(self.u8()) << 8 | u16::from(self.u8())
    }
}

fuzz_target!(|data: &[u8]| {
    let mut r = Reader(data);
    let flags = r.u8();
    let head = OpusHead {
        channels: 1 + (flags & 1),
        pre_skip: r.u16(),
        ..OpusHead::default()
    };
    let doc = if flags & 2 != 0 { DocType::Webm } else { DocType::Matroska };
    let mut tracks = vec![TrackEntry::Opus(head)];
    if flags & 4 != 0 {
        tracks.push(TrackEntry::Vp8 {
            width: r.u16(),
            height: r.u16(),
        });
    }
    let ops = r.0;
    if let Ok(mut mkv) = MatroskaWriter::new(Cursor::new(Vec::new()), doc, tracks) {
        let mut r = Reader(ops);
        let mut ts = 0u64;
        while !r.0.is_empty() {
            let op = r.u8();
            let step = u64::from(r.u16());
            // Steps of up to ~65 s forwards, occasionally far back or far ahead.
            ts = match op & 0x30 {
                0x30 => ts.wrapping_sub(step * 1_000_000),
                0x20 if op & 0x08 != 0 => ts.wrapping_add(step << 32),
                _ => ts.wrapping_add(step * 1_000_000),
            };
            let track = usize::from(op >> 6);
            let len = usize::from(r.u8());
            let frame = r.take(len);
            let _ = mkv.write_frame(track, ts, frame, op & 4 != 0);
        }
        mkv.set_duration_ns(ts);
        let _ = mkv.finish();
    }
    if let Ok(mut ogg) = OggOpusWriter::new(Vec::new(), &head, 0x7261_7763) {
        let mut r = Reader(ops);
        while !r.0.is_empty() {
            let op = r.u8();
            let samples = u32::from(r.u16()) * if op & 2 != 0 { 1 << 16 } else { 1 };
            let len = usize::from(r.u8()) * if op & 4 != 0 { 64 } else { 1 };
            let data = r.take(len);
            let _ = if op & 1 != 0 {
                ogg.write_fill_packet(data, samples)
            } else {
                ogg.write_packet(data, samples)
            };
        }
        let _ = ogg.finish();
    }
});
