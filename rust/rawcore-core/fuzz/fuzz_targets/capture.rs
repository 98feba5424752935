//! Any bytes after a valid rtpdump header must analyse without panicking, and the stream read
//! an analysis reads in its own pass must equal the one read from the capture.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rawcore_core::{
    analyze_capture, analyze_capture_stream, capture_columns, stream_columns, AnalyzeConfig,
};

fuzz_target!(|data: &[u8]| {
    let mut capture = b"#!rtpplay1.0 10.0.0.1/5004\n".to_vec();
    capture.extend_from_slice(&[0; 16]);
    capture.extend_from_slice(data);
    let cfg = AnalyzeConfig {
        rtx_apt: vec![(97, 96)],
        clock_rates: vec![(96, 90_000), (111, 48_000)],
        reorder_window: 16,
    };
    let _ = analyze_capture(&capture, &cfg);
    let _ = capture_columns(&capture);
    // The stream read and its gaps, from the capture and from the analysis pass.
    if let Ok((report, stream)) = analyze_capture_stream(&capture, &cfg) {
        let (ssrc, pt) = report.track_stream();
        let read = stream_columns(&capture, ssrc, pt, 0.0).expect("the header is valid");
        assert_eq!(stream, read);
    }
    let _ = analyze_capture(data, &cfg);
});
