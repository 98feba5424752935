//! Opus extraction takes any capture bytes (one or two segments) into any container without
//! panicking; it either writes a file or returns a typed error.
#![no_main]

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use rawcore_core::{
    extract_opus, AudioCodec, AudioContainer, AudioExtractConfig, AudioSegmentInput,
};

const HEADER: &[u8] = b"#!rtpplay1.0 10.0.0.1/5004\n";

fn capture(body: &[u8]) -> Vec<u8> {
    let mut out = HEADER.to_vec();
    out.extend_from_slice(&[0; 16]);
    out.extend_from_slice(body);
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let cfg = AudioExtractConfig {
        payload_type: (flags & 0x01 != 0).then_some(111),
        codec: AudioCodec::Opus,
        channels: if flags & 0x02 != 0 { 2 } else { 1 },
        fill_gaps: flags & 0x04 != 0,
        fix_dtx: flags & 0x08 != 0,
        container: match flags >> 4 & 0x03 {
            0 => AudioContainer::Matroska,
            1 => AudioContainer::Webm,
            _ => AudioContainer::Ogg,
        },
        reorder_window: 1 + usize::from(flags >> 6) * 16,
        ..AudioExtractConfig::default()
    };
    let captures: Vec<Vec<u8>> = if flags & 0x40 != 0 {
        let (a, b) = rest.split_at(rest.len() / 2);
        vec![capture(a), capture(b)]
    } else {
        vec![capture(rest)]
    };
    let segments: Vec<AudioSegmentInput<'_>> = captures
        .iter()
        .enumerate()
        .map(|(i, c)| AudioSegmentInput {
            capture: c,
            offset_ms: i as i64 * 1_500,
            // Clock drift in both directions, up to ±1.3 %: beyond the cap on purpose.
            drift_ppm: f64::from(rest.len() as u8 as i8) * 100.0,
        })
        .collect();
    let _ = extract_opus(&segments, &cfg, Cursor::new(Vec::new()));
    // The raw bytes as a whole file, header included.
    let raw = [AudioSegmentInput {
        capture: rest,
        offset_ms: 0,
        drift_ppm: 0.0,
    }];
    let _ = extract_opus(&raw, &cfg, Cursor::new(Vec::new()));
});
