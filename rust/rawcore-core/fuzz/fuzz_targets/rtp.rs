//! RTP parsing and header extension iteration must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rawcore_core::rtp::{looks_like_rtcp, RtpPacket};

fuzz_target!(|data: &[u8]| {
    let _ = looks_like_rtcp(data);
    if let Ok(packet) = RtpPacket::parse(data) {
        let _ = packet.extensions().count();
        let _ = packet.csrcs.iter().count();
    }
    let _ = RtpPacket::parse_header_only(data);
});
