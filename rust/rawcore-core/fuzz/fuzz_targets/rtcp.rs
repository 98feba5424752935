//! RTCP compound parsing must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = rawcore_core::rtcp::parse_compound(data);
});
