//! Any bytes, read as Matroska and remuxed into MP4, without panicking; fed in chunks whose size
//! the first two bytes pick, the output must not depend on the chunking, and when it succeeds the
//! MP4 is its header followed by exactly the planned payload bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rawcore_core::{remux_bytes, Select};

fuzz_target!(|data: &[u8]| {
    let Some((&[a, b], rest)) = data.split_first_chunk::<2>() else {
        return;
    };
    let chunk = usize::from(u16::from_le_bytes([a, b])).max(1);
    let select = Select {
        video: a & 1 == 0,
        audio: b & 1 == 0 || a & 1 == 1,
    };
    let whole = remux_bytes(rest, select, rest.len().max(1));
    let chunked = remux_bytes(rest, select, chunk);
    match (whole, chunked) {
        (Ok((x, plan)), Ok((y, _))) => {
            assert!(x == y, "chunking changed the MP4");
            assert_eq!(x.len() as u64, plan.total_bytes());
        }
        (Err(x), Err(y)) => assert_eq!(x.to_string(), y.to_string(), "chunking changed the error"),
        (x, y) => panic!("chunking changed the outcome: {:?} vs {:?}", x.is_ok(), y.is_ok()),
    }
});
