//! G.711 and G.722 decoding take any payload and any capture without panicking, and decode to
//! exactly the number of samples the payload size implies.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rawcore_core::codec::g711::{decode_alaw, decode_ulaw};
use rawcore_core::codec::g722::G722Decoder;
use rawcore_core::{decode_pcm, AudioCodec, AudioExtractConfig, AudioSegmentInput};

const HEADER: &[u8] = b"#!rtpplay1.0 10.0.0.1/5004\n";

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let mut pcm = Vec::new();
    decode_ulaw(rest, &mut pcm);
    assert_eq!(pcm.len(), rest.len());
    pcm.clear();
    decode_alaw(rest, &mut pcm);
    assert_eq!(pcm.len(), rest.len());
    pcm.clear();
    G722Decoder::new().decode(rest, &mut pcm);
    assert_eq!(pcm.len(), 2 * rest.len());

    let codec = match flags % 3 {
        0 => AudioCodec::Pcmu,
        1 => AudioCodec::Pcma,
        _ => AudioCodec::G722,
    };
    let cfg = AudioExtractConfig {
        payload_type: (flags & 0x04 != 0).then_some(match codec {
            AudioCodec::Pcmu => 0,
            AudioCodec::Pcma => 8,
            _ => 9,
        }),
        codec,
        channels: 1,
        fill_gaps: flags & 0x08 != 0,
        fix_dtx: flags & 0x10 != 0,
        reorder_window: 1 + usize::from(flags >> 5) * 8,
        ..AudioExtractConfig::default()
    };
    let mut capture = HEADER.to_vec();
    capture.extend_from_slice(&[0; 16]);
    capture.extend_from_slice(rest);
    let segments = [AudioSegmentInput {
        capture: &capture,
        offset_ms: 0,
        drift_ppm: 0.0,
    }];
    let mut samples = 0u64;
    // Bounded: a capture spans at most 2^32 ms of arrival time; stop the sink long before.
    let _ = decode_pcm(&segments, &cfg, |chunk| {
        samples += chunk.len() as u64;
        if samples > 64 << 20 {
            return Err(rawcore_core::ExtractError::Stopped { reason: "enough".into() });
        }
        Ok(())
    });
});
