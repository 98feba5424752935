//! Opus TOC, packet-layout and LBRR-flag parsing must never panic and must keep RFC 6716's
//! bounds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rawcore_core::depacketize::opus::{config_frame_samples, lbrr_flag, packet_info, Toc};

fuzz_target!(|data: &[u8]| {
    if let Some(&byte) = data.first() {
        let toc = Toc::from_byte(byte);
        assert_eq!(toc.to_byte(), byte, "the TOC fields hold every bit of the byte");
        let _ = toc.mode();
        assert_eq!(toc.frame_samples(), config_frame_samples(toc.config));
    }
    if let Ok(info) = packet_info(data) {
        assert!((1..=48).contains(&info.frames), "{info:?}");
        // R5: a packet plays for at most 120 ms.
        assert!(info.duration() <= 5_760, "{info:?}");
    }
    if lbrr_flag(data).is_some() {
        assert!(packet_info(data).is_ok(), "only valid single-frame SILK/hybrid packets");
    }
});
