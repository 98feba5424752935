//! Throughput of exact-timeline Opus extraction on a synthetic 60-minute track built in memory:
//! 180 000 packets of 20 ms (~80-byte payloads), with a 2 s DTX pause every minute, a lost
//! packet every 1 000 and a little reordering. Measures `extract_opus` into Matroska, WebM and
//! Ogg (and Matroska with the stream given, as the analysis chose it), writing into an
//! in-memory cursor; throughput is in packets.

use std::io::Cursor;
use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use rawcore_core::rtp::PacketSpec;
use rawcore_core::rtpdump::{write_header, write_rtp_record};
use rawcore_core::{
    extract_opus, AudioContainer, AudioExtractConfig, AudioSegmentInput, FileHeader,
};

const PACKETS: u32 = 180_000;
const SSRC: u32 = 0x0A0D_10AA;

fn synth() -> Vec<u8> {
    let mut out = Vec::with_capacity(PACKETS as usize * 110);
    write_header(
        &mut out,
        &FileHeader {
            address: "192.0.2.10".into(),
            port: 40_000,
            ..FileHeader::default()
        },
    );
    let mut payload = vec![0xF8u8];
    payload.resize(81, 0x5A);
    let mut packet = Vec::with_capacity(128);
    let mut held: Option<(u32, Vec<u8>)> = None;
    let mut ts = 1_000u32;
    let mut ms = 0u32;
    for i in 0..PACKETS {
        if i > 0 && i % 3_000 == 0 {
            // DTX: two seconds without packets, sequence numbers stay contiguous.
            ts = ts.wrapping_add(96_000);
            ms += 2_000;
        }
        packet.clear();
        PacketSpec {
            payload_type: 111,
            sequence_number: i as u16,
            timestamp: ts,
            ssrc: SSRC,
            ..PacketSpec::default()
        }
        .write(&mut packet, &payload);
        ts = ts.wrapping_add(960);
        ms += 20;
        if i % 1_000 == 500 {
            continue; // lost
        }
        if i % 997 == 0 && held.is_none() {
            held = Some((ms, packet.clone()));
            continue;
        }
        write_rtp_record(&mut out, ms, &packet).expect("packet fits a record");
        if let Some((at, p)) = held.take() {
            write_rtp_record(&mut out, at.max(ms), &p).expect("packet fits a record");
        }
    }
    out
}

fn bench(c: &mut Criterion) {
    let capture = synth();
    let segments = [AudioSegmentInput {
        capture: &capture,
        offset_ms: 0,
        drift_ppm: 0.0,
    }];
    let mut group = c.benchmark_group("extract_opus_60min");
    group.throughput(Throughput::Elements(u64::from(PACKETS)));
    group.measurement_time(Duration::from_secs(5));
    for (name, container, named) in [
        ("matroska", AudioContainer::Matroska, false),
        ("matroska, ssrc given", AudioContainer::Matroska, true),
        ("webm", AudioContainer::Webm, false),
        ("ogg", AudioContainer::Ogg, false),
    ] {
        // Given as the analysis chose it, the stream needs no survey pass over the capture.
        let cfg = AudioExtractConfig {
            payload_type: Some(111),
            container,
            ssrcs: if named { vec![Some(SSRC)] } else { vec![] },
            opus_stereo: named.then_some(false),
            ..AudioExtractConfig::default()
        };
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut out = Cursor::new(Vec::with_capacity(capture.len()));
                let report = extract_opus(black_box(&segments), &cfg, &mut out)
                    .expect("synthetic capture extracts");
                black_box((report.packets_written, out.into_inner().len()))
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
