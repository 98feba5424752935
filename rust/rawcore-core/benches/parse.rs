//! Throughput of the capture pipeline on synthetic captures built in memory: a 60-minute
//! Opus-like audio track (50 packets/s, ~100-byte payloads) and a 10-minute video-like track
//! (150 packets/s, ~1100-byte payloads with RTX), each with an RTCP sender report every 5 s and a
//! little loss and reordering. Measures the bare record reader, `capture_columns`,
//! `analyze_capture`, and what opening a recording for a writing command costs per capture: the
//! one pass that analyses and reads the track's stream and gaps (`analyze_capture_stream`), the
//! two passes it replaces (`analyze_capture`, then `stream_columns`), and the placement of the
//! stream on the recorder's clock (`place_streams`).

use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use rawcore_core::rtcp::write as rtcp_write;
use rawcore_core::rtp::{PacketSpec, FIXED_HEADER_LEN};
use rawcore_core::rtpdump::{write_header, write_record, write_rtp_record, RtpdumpReader};
use rawcore_core::timeline::{place_streams, StreamInput, DEFAULT_WINDOW_MS, MIN_DRIFT_WINDOWS};
use rawcore_core::{
    analyze_capture, analyze_capture_stream, capture_columns, stream_columns, AnalyzeConfig,
    FileHeader,
};

struct Track {
    name: &'static str,
    capture: Vec<u8>,
    packets: u64,
}

/// A tiny deterministic generator so every run measures the same bytes.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        (self.0 >> 33) as u32
    }
}

#[allow(clippy::cast_possible_truncation)]
fn synth(
    name: &'static str,
    packets: u32,
    per_second: u32,
    payload: (usize, usize),
    pt: u8,
) -> Track {
    let mut rng = Lcg(u64::from(packets));
    let mut out = Vec::with_capacity(packets as usize * (payload.1 + FIXED_HEADER_LEN + 16));
    write_header(
        &mut out,
        &FileHeader {
            address: "192.0.2.10".into(),
            port: 40_000,
            start_sec: 1_700_000_000,
            ..FileHeader::default()
        },
    );
    let ssrc = 0x1234_5678;
    let clock = if pt == 111 { 48_000 } else { 90_000 };
    let body = vec![0x5A_u8; payload.1];
    let mut packet = Vec::with_capacity(payload.1 + 64);
    let mut rtcp = Vec::with_capacity(128);
    let mut held: Option<(u32, Vec<u8>)> = None;
    let mut repair: Option<(u16, u32, usize)> = None;
    let mut rtx_seq = 0u16;
    let mut written = 0;
    for i in 0..packets {
        let ms = i * 1000 / per_second + rng.next() % 3;
        let len = payload.0 + rng.next() as usize % (payload.1 - payload.0 + 1);
        packet.clear();
        PacketSpec {
            marker: pt != 111 && i % 8 == 7,
            payload_type: pt,
            sequence_number: (i as u16).wrapping_add(40_000),
            timestamp: (u64::from(i) * u64::from(clock) / u64::from(per_second)) as u32,
            ssrc,
            ..PacketSpec::default()
        }
        .write(&mut packet, &body[..len]);
        let seq = (i as u16).wrapping_add(40_000);
        let timestamp = (u64::from(i) * u64::from(clock) / u64::from(per_second)) as u32;
        match rng.next() % 1000 {
            // 0.2 % lost (video ones repaired by RTX), 0.3 % swapped with their successor.
            0 | 1 => {
                if pt != 111 {
                    repair = Some((seq, timestamp, len));
                }
                continue;
            }
            2..=4 if held.is_none() => {
                held = Some((ms, packet.clone()));
                continue;
            }
            _ => {}
        }
        write_rtp_record(&mut out, ms, &packet).expect("packets fit a record");
        written += 1;
        if let Some((held_ms, late)) = held.take() {
            write_rtp_record(&mut out, held_ms.max(ms), &late).expect("packets fit a record");
            written += 1;
        }
        if let Some((lost_seq, ts, len)) = repair.take() {
            let mut rtx = lost_seq.to_be_bytes().to_vec();
            rtx.extend_from_slice(&body[..len]);
            let packet = rawcore_core::rtp::build(
                &PacketSpec {
                    payload_type: 97,
                    sequence_number: rtx_seq,
                    timestamp: ts,
                    ssrc: ssrc ^ 1,
                    ..PacketSpec::default()
                },
                &rtx,
            );
            rtx_seq = rtx_seq.wrapping_add(1);
            write_rtp_record(&mut out, ms, &packet).expect("packets fit a record");
            written += 1;
        }
        if i % (per_second * 5) == 0 {
            rtcp.clear();
            let ntp = (2_208_988_800 + 1_700_000_000 + u64::from(i / per_second)) << 32;
            rtcp_write::sender_report(&mut rtcp, ssrc, ntp, i * clock / per_second, i, i * 100);
            rtcp_write::sdes_cname(&mut rtcp, ssrc, "bench@rawcore");
            write_record(&mut out, ms, 0, &rtcp).expect("RTCP fits a record");
        }
    }
    Track {
        name,
        capture: out,
        packets: written,
    }
}

fn tracks() -> Vec<Track> {
    vec![
        synth("opus_60min", 180_000, 50, (80, 120), 111),
        synth("video_10min", 90_000, 150, (1000, 1200), 96),
    ]
}

fn bench(c: &mut Criterion) {
    let cfg = AnalyzeConfig {
        rtx_apt: vec![(97, 96)],
        clock_rates: vec![(111, 48_000), (96, 90_000), (97, 90_000)],
        ..AnalyzeConfig::default()
    };
    for track in tracks() {
        eprintln!(
            "{}: {} RTP packets, {:.1} MB",
            track.name,
            track.packets,
            track.capture.len() as f64 / 1e6
        );
        let report = analyze_capture(&track.capture, &cfg).expect("valid capture");
        for s in &report.streams {
            eprintln!(
                "  ssrc {:#x} pt {}: {} packets, {} lost, {} recovered by RTX, {} reordered, jitter {:.2} ms",
                s.ssrc,
                s.payload_type,
                s.packets,
                s.lost,
                s.recovered_rtx,
                s.reordered,
                s.jitter_ms.unwrap_or(0.0)
            );
        }
        let mut group = c.benchmark_group(track.name);
        group
            .sample_size(10)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(3))
            .throughput(Throughput::Bytes(track.capture.len() as u64));
        group.bench_function("reader", |b| {
            b.iter(|| {
                let reader = RtpdumpReader::new(black_box(&track.capture)).expect("valid capture");
                reader
                    .map_while(Result::ok)
                    .map(|r| r.data.len())
                    .sum::<usize>()
            });
        });
        group.bench_function("capture_columns", |b| {
            b.iter(|| capture_columns(black_box(&track.capture)).expect("valid capture"));
        });
        group.bench_function("analyze_capture", |b| {
            b.iter(|| analyze_capture(black_box(&track.capture), &cfg).expect("valid capture"));
        });
        group.bench_function("analyze_capture_stream", |b| {
            b.iter(|| {
                analyze_capture_stream(black_box(&track.capture), &cfg).expect("valid capture")
            });
        });
        let (ssrc, pt) = report.track_stream();
        let start = report.header.start_unix_us() as f64 / 1000.0;
        group.bench_function("analyze_then_stream_columns", |b| {
            b.iter(|| {
                let capture = black_box(&track.capture);
                let report = analyze_capture(capture, &cfg).expect("valid capture");
                let stream = stream_columns(capture, ssrc, pt, start).expect("valid capture");
                (report, stream)
            });
        });
        let (_, stream) = analyze_capture_stream(&track.capture, &cfg).expect("valid capture");
        let srs: Vec<_> = report
            .sender_reports
            .iter()
            .filter(|r| Some(r.ssrc) == ssrc)
            .collect();
        let sr_arrival: Vec<f64> = srs
            .iter()
            .map(|r| f64::from(r.arrival_ms) + start)
            .collect();
        let sr_rtp_ts: Vec<u32> = srs.iter().map(|r| r.rtp_ts).collect();
        let sr_ntp_ms: Vec<f64> = srs.iter().map(|r| r.unix_ms_from_ntp).collect();
        let input = StreamInput {
            timestamps: &stream.timestamps,
            arrival_unix_ms: &stream.arrival_unix_ms,
            sr_arrival_unix_ms: &sr_arrival,
            sr_rtp_ts: &sr_rtp_ts,
            sr_ntp_unix_ms: &sr_ntp_ms,
            clock_rate: if pt == Some(111) { 48_000 } else { 90_000 },
        };
        group.bench_function("place_streams", |b| {
            b.iter(|| {
                place_streams(black_box(&[input]), DEFAULT_WINDOW_MS, MIN_DRIFT_WINDOWS)
                    .expect("placeable stream")
            });
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
