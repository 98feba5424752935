//! Any bytes, read as a pcap, a pcapng or a Janus .mjr recording, split without panicking into
//! rtpdump captures that read back whole. The first byte picks the magic put in front, so the
//! fuzzer reaches past each format's header.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rawcore_core::rtpdump::RtpdumpReader;
use rawcore_core::split_capture;

const MAGICS: [&[u8]; 5] = [
    &[0xD4, 0xC3, 0xB2, 0xA1],
    &[0xA1, 0xB2, 0x3C, 0x4D],
    &[0x0A, 0x0D, 0x0D, 0x0A],
    b"MJR00002",
    b"MJR00001",
];

fuzz_target!(|data: &[u8]| {
    let _ = split_capture(data);
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let mut input = MAGICS[usize::from(pick) % MAGICS.len()].to_vec();
    input.extend_from_slice(rest);
    if let Ok(report) = split_capture(&input) {
        for stream in &report.streams {
            let reader = RtpdumpReader::new(&stream.capture).expect("split writes valid headers");
            assert!(reader.into_iter().all(|r| r.is_ok()), "split writes whole records");
        }
    }
});
