//! The call-timeline fits take any numbers (NaN, infinities, huge values, mismatched lengths)
//! without panicking, and a placement they return is finite.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rawcore_core::timeline::{fit_offset, fit_sender_clock, unwrap_rtp_timestamps, SrPoint};

fn f64s(bytes: &[u8]) -> Vec<f64> {
    bytes
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().expect("chunks of 8")))
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let (a, b) = rest.split_at(rest.len().min(usize::from(split) * 8));
    let xs = f64s(a);
    let ys = f64s(b);
    if let Ok(fit) = fit_offset(&xs, &ys, 1.0 + f64::from(split) * 100.0) {
        assert!(fit.recorder_ms(0.0).is_finite() || !fit.c.is_finite());
    }
    let points: Vec<SrPoint> = xs
        .iter()
        .zip(&ys)
        .map(|(&x, &y)| SrPoint {
            rtp: x as i64,
            sender_ms: y,
        })
        .collect();
    let _ = fit_sender_clock(&points, u32::from(split) * 1000);
    let ts: Vec<u32> = rest
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes(c.try_into().expect("chunks of 4")))
        .collect();
    let _ = unwrap_rtp_timestamps(&ts);
});
