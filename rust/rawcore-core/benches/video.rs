//! Throughput of video frame assembly on synthetic captures built in memory.
//!
//! `assemble_video`: a 10-minute VP8 track at 30 fps with a keyframe every 3 s, ~1100-byte
//! payloads (keyframes 15 packets, inter frames 4). Measures the assembly end to end (rtpdump
//! reader, RTP parse, reorder buffer, descriptor parsing, frame reassembly into one buffer).
//!
//! `extract_video`: a 60-minute VP8 track at 30 fps shaped like the process-to-process bench's
//! call (`benches/startup.py --video`): a keyframe every 10 s, ~400-byte packets, one packet per
//! inter frame, 0.3 % of the packets lost (a fixed pattern). Measures the whole extraction into
//! WebM in memory, with the track chosen by extraction (`self-chosen`) and given as the analysis
//! chose it (`ssrc given`).

use std::io::Cursor;
use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use rawcore_core::rtp::PacketSpec;
use rawcore_core::rtpdump::{write_header, write_rtp_record};
use rawcore_core::{
    assemble_video, extract_video, FileHeader, VideoEvent, VideoExtractConfig, VideoSegmentInput,
};

/// Shape of a synthetic VP8 track.
struct Shape {
    seconds: u32,
    /// Frames from one keyframe to the next.
    key_every: u32,
    /// Packets of a keyframe and of an inter frame.
    packets: (u32, u32),
    /// Payload bytes per packet.
    payload: usize,
    /// Every `lose_every`-th packet is lost (0: none).
    lose_every: u64,
}

const TEN_MINUTES: Shape = Shape {
    seconds: 600,
    key_every: 90,
    packets: (15, 4),
    payload: 1100,
    lose_every: 0,
};

const HOUR_LOSSY: Shape = Shape {
    seconds: 3600,
    key_every: 300,
    packets: (12, 1),
    payload: 400,
    lose_every: 333,
};

#[allow(clippy::cast_possible_truncation)]
fn vp8_capture(shape: &Shape) -> (Vec<u8>, u64) {
    let &Shape {
        seconds,
        key_every,
        packets: (key_packets, inter_packets),
        payload,
        lose_every,
    } = shape;
    let mut out = Vec::with_capacity(seconds as usize * 150 * (payload + 30));
    write_header(
        &mut out,
        &FileHeader {
            address: "10.0.0.1".to_owned(),
            port: 5004,
            ..FileHeader::default()
        },
    );
    let mut seq = 0u16;
    let mut packets = 0u64;
    let mut body = vec![0u8; payload + 4];
    let mut pkt = Vec::with_capacity(payload + 64);
    for frame in 0..seconds * 30 {
        let key = frame % key_every == 0;
        let n = if key { key_packets } else { inter_packets };
        let ts = frame * 3000;
        for i in 0..n {
            body.clear();
            body.extend_from_slice(&[0x90, 0x80, 0x80 | (frame >> 8) as u8 & 0x7F, frame as u8]);
            if i == 0 {
                body[0] |= 0x10;
                if key {
                    body.extend_from_slice(&[
                        0x30, 0x51, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0x68, 0x01,
                    ]);
                } else {
                    body.extend_from_slice(&[0x31, 0x02, 0x00]);
                }
            }
            body.resize(payload, frame as u8);
            pkt.clear();
            PacketSpec {
                marker: i + 1 == n,
                payload_type: 96,
                sequence_number: seq,
                timestamp: ts,
                ssrc: 0xCAFE,
                ..PacketSpec::default()
            }
            .write(&mut pkt, &body);
            seq = seq.wrapping_add(1);
            packets += 1;
            if lose_every > 0 && packets % lose_every == 0 {
                continue;
            }
            write_rtp_record(&mut out, frame * 33, &pkt).expect("small packet");
        }
    }
    (out, packets)
}

fn bench(c: &mut Criterion) {
    let (capture, packets) = vp8_capture(&TEN_MINUTES);
    let cfg = VideoExtractConfig::default();
    let mut group = c.benchmark_group("video");
    group.throughput(Throughput::Bytes(capture.len() as u64));
    group.measurement_time(Duration::from_secs(8));
    group.sample_size(20);
    group.bench_function(
        format!("assemble_video VP8 10 min ({packets} packets)"),
        |b| {
            b.iter(|| {
                let mut bytes = 0usize;
                let report = assemble_video(black_box(&capture), &cfg, |e| {
                    if let VideoEvent::Frame(f) = e {
                        bytes += f.data.len();
                    }
                    Ok::<_, String>(())
                })
                .expect("valid capture");
                assert_eq!(report.frames_emitted, 18_000);
                black_box(bytes)
            });
        },
    );
    let (hour, packets) = vp8_capture(&HOUR_LOSSY);
    let segments = [VideoSegmentInput {
        capture: &hour,
        offset_ms: 0,
        drift_ppm: 0.0,
    }];
    group.throughput(Throughput::Bytes(hour.len() as u64));
    for (name, ssrcs) in [("self-chosen", vec![]), ("ssrc given", vec![Some(0xCAFE)])] {
        let cfg = VideoExtractConfig {
            payload_type: Some(96),
            ssrcs,
            ..VideoExtractConfig::default()
        };
        group.bench_function(
            format!("extract_video VP8 60 min 0.3 % loss ({packets} packets), {name}"),
            |b| {
                b.iter(|| {
                    let mut out = Cursor::new(Vec::with_capacity(hour.len()));
                    let report =
                        extract_video(black_box(&segments), &cfg, &mut out).expect("valid capture");
                    black_box((report.frames_emitted, out.into_inner().len()))
                });
            },
        );
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
