//! Any bytes, scanned as Matroska for the video track's picture times and sizes, without
//! panicking; fed in chunks whose size the first two bytes pick, the outcome must not depend on
//! the chunking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rawcore_core::remux::pictures::scan_bytes;

fuzz_target!(|data: &[u8]| {
    let Some((&[a, b], rest)) = data.split_first_chunk::<2>() else {
        return;
    };
    let chunk = usize::from(u16::from_le_bytes([a, b])).max(1);
    let whole = scan_bytes(rest, rest.len().max(1));
    let chunked = scan_bytes(rest, chunk);
    match (whole, chunked) {
        (Ok(x), Ok(y)) => assert_eq!(x, y, "chunking changed the scan"),
        (Err(x), Err(y)) => assert_eq!(x.to_string(), y.to_string(), "chunking changed the error"),
        (x, y) => panic!("chunking changed the outcome: {:?} vs {:?}", x.is_ok(), y.is_ok()),
    }
});
