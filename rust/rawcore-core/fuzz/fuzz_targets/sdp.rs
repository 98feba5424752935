//! SDP parsing must never panic on any text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(sdp) = rawcore_core::Sdp::parse(&String::from_utf8_lossy(data)) {
        let _ = sdp.clock_rates();
        let _ = sdp.rtx_apt();
    }
});
