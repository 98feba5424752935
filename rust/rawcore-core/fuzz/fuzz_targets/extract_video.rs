//! Video assembly and extraction take any capture bytes, for every codec, without panicking:
//! the depacketizers, the frame assembler and the Matroska writer behind them either produce
//! frames and a file or return a typed error.
#![no_main]

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use rawcore_core::{
    extract_video, video_frames, VideoCodec, VideoExtractConfig, VideoSegmentInput,
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
    let cfg = VideoExtractConfig {
        codec: match flags & 0x03 {
            0 => VideoCodec::Vp8,
            1 => VideoCodec::Vp9,
            2 => VideoCodec::H264,
            _ => VideoCodec::Av1,
        },
        payload_type: (flags & 0x04 != 0).then_some(96),
        cvo_extension_id: (flags & 0x08 != 0).then_some(3),
        reorder_window: 1 + usize::from(flags >> 4) * 8,
        ..VideoExtractConfig::default()
    };
    let one = capture(rest);
    let segments = [VideoSegmentInput {
        capture: &one,
        offset_ms: 0,
        drift_ppm: 0.0,
    }];
    let _ = video_frames(&segments, &cfg);
    let _ = extract_video(&segments, &cfg, Cursor::new(Vec::new()));
});
