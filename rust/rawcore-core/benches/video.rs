//! Throughput of video frame assembly on a synthetic capture built in memory: a 10-minute VP8
//! track at 30 fps with a keyframe every 3 s, ~1100-byte payloads (keyframes 15 packets, inter
//! frames 4), one RTCP sender report every 5 s. Measures `assemble_video` end to end (rtpdump
//! reader, RTP parse, reorder buffer, descriptor parsing, frame reassembly into one buffer).

use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use rawcore_core::rtp::PacketSpec;
use rawcore_core::rtpdump::{write_header, write_rtp_record};
use rawcore_core::{assemble_video, FileHeader, VideoEvent, VideoExtractConfig};

const PAYLOAD: usize = 1100;

#[allow(clippy::cast_possible_truncation)]
fn vp8_capture(seconds: u32) -> (Vec<u8>, u64) {
    let mut out = Vec::with_capacity(seconds as usize * 150 * (PAYLOAD + 30));
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
    let mut body = vec![0u8; PAYLOAD + 4];
    let mut pkt = Vec::with_capacity(PAYLOAD + 64);
    for frame in 0..seconds * 30 {
        let key = frame % 90 == 0;
        let n = if key { 15 } else { 4 };
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
            body.resize(PAYLOAD, frame as u8);
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
            write_rtp_record(&mut out, frame * 33, &pkt).expect("small packet");
            seq = seq.wrapping_add(1);
            packets += 1;
        }
    }
    (out, packets)
}

fn bench(c: &mut Criterion) {
    let (capture, packets) = vp8_capture(600);
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
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
