//! Audio extraction tests: captures in, files decoded back, each case named for what it proves.
#![allow(clippy::float_cmp)] // the ms figures compared are exact: whole samples at 48 kHz

use super::*;
use crate::audio::GapCause;
use crate::depacketize::opus::packet_info;
use crate::mux::ebml::reader::{parse, Element};
use crate::mux::ids;
use crate::rtp::{build, PacketSpec};
use crate::rtpdump::{write_header, write_record, write_rtp_record, FileHeader};
use std::io::Cursor;

const SSRC: u32 = 0xA0D1_0000;

/// `(seq, ts, arrival_ms, payload)` records of payload type `pt` into a capture.
fn capture(pt: u8, packets: &[(u16, u32, u32, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    write_header(
        &mut out,
        &FileHeader {
            address: "192.0.2.1".into(),
            port: 5004,
            ..FileHeader::default()
        },
    );
    for (seq, ts, ms, payload) in packets {
        let spec = PacketSpec {
            payload_type: pt,
            sequence_number: *seq,
            timestamp: *ts,
            ssrc: SSRC,
            ..PacketSpec::default()
        };
        write_rtp_record(&mut out, *ms, &build(&spec, payload)).expect("record fits");
    }
    out
}

/// A mono CELT fullband 20 ms Opus packet with `n` bytes of (meaningless) body.
fn opus20(n: usize) -> Vec<u8> {
    let mut p = vec![0xF8];
    p.resize(n + 1, 0x55);
    p
}

fn cfg(container: AudioContainer) -> AudioExtractConfig {
    AudioExtractConfig {
        payload_type: Some(111),
        container,
        ..AudioExtractConfig::default()
    }
}

/// Sums the 48 kHz durations of every frame in a Matroska file (checking that no block is
/// laced) and returns
/// (total samples, block times in ms, Info duration).
fn matroska_audio(data: &[u8]) -> (u64, Vec<u64>, f64) {
    let top = parse(data, 0..data.len());
    let segment: &Element = &top[1];
    let duration = segment
        .find(ids::INFO)
        .and_then(|i| i.find(ids::DURATION))
        .expect("duration")
        .float(data);
    let mut total = 0u64;
    let mut times = Vec::new();
    for cluster in segment.all(ids::CLUSTER) {
        let base = cluster.find(ids::TIMESTAMP).expect("timestamp").uint(data);
        for block in cluster.all(ids::SIMPLE_BLOCK) {
            let body = &data[block.body.clone()];
            let rel = i16::from_be_bytes([body[1], body[2]]);
            times.push((base as i64 + i64::from(rel)) as u64);
            let flags = body[3];
            assert_eq!(flags & 0x06, 0, "a block holds one frame, never a lace");
            let frames = [&body[4..]];
            for f in frames {
                total += u64::from(packet_info(f).expect("valid Opus").duration());
            }
        }
    }
    (total, times, duration)
}

/// 1 s of speech, a 2 s DTX pause, 2 lost packets, 1 s of speech.
fn talk_with_holes() -> Vec<(u16, u32, u32, Vec<u8>)> {
    let mut packets = Vec::new();
    let mut seq = 1000u16;
    for i in 0..50u32 {
        packets.push((seq, 3_000_000 + i * 960, i * 20, opus20(60)));
        seq += 1;
    }
    // DTX: the timestamp jumps 2 s with contiguous sequence numbers.
    let resume = 3_000_000 + 50 * 960 + 96_000;
    for i in 0..50u32 {
        if i == 10 || i == 11 {
            seq += 1; // lost
            continue;
        }
        packets.push((seq, resume + i * 960, 3_000 + i * 20, opus20(60)));
        seq += 1;
    }
    packets
}

#[test]
fn opus_into_matroska_keeps_the_exact_timeline() {
    let input = capture(111, &talk_with_holes());
    let segments = [AudioSegmentInput {
        capture: &input,
        offset_ms: 0,
        drift_ppm: 0.0,
    }];
    let out = Cursor::new(Vec::new());
    let mut buf = out;
    let report =
        extract_opus(&segments, &cfg(AudioContainer::Matroska), &mut buf).expect("extract");
    let data = buf.into_inner();
    let (samples, times, duration) = matroska_audio(&data);
    assert_eq!(
        samples,
        4 * 48_000,
        "decoded length is the 4 s wall-clock span"
    );
    assert_eq!(duration, 4_000.0);
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "block times monotonic"
    );
    assert!(times.contains(&3_000), "speech resumes at 3 s");
    assert_eq!(report.packets_written, 98);
    assert_eq!((report.dtx_gaps, report.dtx_filled_ms), (1, 2_000.0));
    assert_eq!((report.loss_gaps, report.loss_filled_ms), (1, 40.0));
    assert_eq!(report.packets_lost, 2);
    assert_eq!(report.duration_ms, 4_000.0);
    assert_eq!(report.channels, 1, "no stereo TOC in the stream");
    assert_eq!(report.ssrcs, [Some(SSRC)]);
}

#[test]
fn options_off_close_the_holes_up() {
    let input = capture(111, &talk_with_holes());
    let segments = [AudioSegmentInput {
        capture: &input,
        offset_ms: 0,
        drift_ppm: 0.0,
    }];
    let cases = [
        (
            "fix_dtx off removes the 2 s pause",
            false,
            true,
            2_000.0 + 40.0 - 40.0,
            2_000.0,
        ),
        (
            "fill_gaps off removes the 40 ms loss",
            true,
            false,
            4_000.0 - 40.0,
            40.0,
        ),
        (
            "both off leave only the packets",
            false,
            false,
            1_960.0,
            2_040.0,
        ),
    ];
    for (name, fix_dtx, fill_gaps, want_ms, closed_ms) in cases {
        let c = AudioExtractConfig {
            fill_gaps,
            fix_dtx,
            ..cfg(AudioContainer::Matroska)
        };
        let mut buf = Cursor::new(Vec::new());
        let report = extract_opus(&segments, &c, &mut buf).expect("extract");
        let (samples, _, _) = matroska_audio(buf.get_ref());
        assert_eq!(samples as f64 / 48.0, want_ms, "{name}");
        assert_eq!(report.duration_ms, want_ms, "{name}");
        assert_eq!(report.closed_up_ms, closed_ms, "{name}");
    }
}

#[test]
fn a_three_hour_gap_costs_less_than_a_megabyte() {
    let hours3 = 3 * 3_600 * 48_000u32;
    let packets = vec![
        (1, 0, 0, opus20(60)),
        (2, 960 + hours3, 10_800_020, opus20(60)),
    ];
    let input = capture(111, &packets);
    let segments = [AudioSegmentInput {
        capture: &input,
        offset_ms: 0,
        drift_ppm: 0.0,
    }];
    for container in [AudioContainer::Matroska, AudioContainer::Ogg] {
        let mut buf = Cursor::new(Vec::new());
        let report = extract_opus(&segments, &cfg(container), &mut buf).expect("extract");
        let size = buf.get_ref().len();
        // A 2-byte fill packet per 120 ms: in Matroska a block of its own (8 bytes, never
        // laced), in Ogg a lace entry (3 bytes) plus the pages'.
        let limit = match container {
            AudioContainer::Ogg => 350_000,
            _ => 800_000,
        };
        assert!(size < limit, "{container:?}: {size} bytes for 3 h of fill");
        assert_eq!(report.dtx_filled_ms, 10_800_000.0, "{container:?}");
        assert_eq!(report.resets, 0);
        if container == AudioContainer::Matroska {
            let (samples, _, _) = matroska_audio(buf.get_ref());
            assert_eq!(samples, u64::from(hours3) + 2 * 960);
        }
    }
}

#[test]
fn ogg_granule_ends_at_the_span_and_segments_sit_at_their_offsets() {
    let first = capture(
        111,
        &(0..50u16)
            .map(|i| (i, u32::from(i) * 960, u32::from(i) * 20, opus20(40)))
            .collect::<Vec<_>>(),
    );
    // The second session starts 5 s into the output with new sequence numbers and timestamps.
    let second = capture(
        111,
        &(0..50u16)
            .map(|i| {
                (
                    30_000 + i,
                    777 + u32::from(i) * 960,
                    u32::from(i) * 20,
                    opus20(40),
                )
            })
            .collect::<Vec<_>>(),
    );
    let segments = [
        AudioSegmentInput {
            capture: &second,
            offset_ms: 5_000,
            drift_ppm: 0.0,
        },
        AudioSegmentInput {
            capture: &first,
            offset_ms: 0,
            drift_ppm: 0.0,
        },
    ];
    let mut buf = Cursor::new(Vec::new());
    let report = extract_opus(&segments, &cfg(AudioContainer::Ogg), &mut buf).expect("extract");
    let data = buf.into_inner();
    // The last page's granule is the decoded length (pre-skip 0): 6 s.
    let last_page = data.windows(4).rposition(|w| w == b"OggS").expect("a page");
    let granule = u64::from_le_bytes(data[last_page + 6..last_page + 14].try_into().expect("8"));
    assert_eq!(granule, 6 * 48_000);
    assert_eq!(data[last_page + 5] & 0x04, 0x04, "end of stream flagged");
    assert_eq!((report.pause_gaps, report.pause_filled_ms), (1, 4_000.0));
    assert_eq!(report.last_pts_ms, 5_980.0);
}

#[test]
fn stereo_is_decided_by_the_stream() {
    let packets: Vec<_> = (0..5u16)
        .map(|i| {
            (
                i,
                u32::from(i) * 960,
                u32::from(i) * 20,
                vec![0xFC | 0x04, 1, 2],
            )
        })
        .collect();
    let input = capture(111, &packets);
    let segments = [AudioSegmentInput {
        capture: &input,
        offset_ms: 0,
        drift_ppm: 0.0,
    }];
    for (channels, want) in [(2, 2), (1, 1)] {
        let c = AudioExtractConfig {
            channels,
            ..cfg(AudioContainer::Webm)
        };
        let report = extract_opus(&segments, &c, Cursor::new(Vec::new())).expect("extract");
        assert_eq!(report.channels, want, "SDP allows {channels}");
    }
}

#[test]
fn garbage_is_counted_and_skipped() {
    let mut input = capture(
        111,
        &[
            (1, 0, 0, opus20(10)),
            (2, 960, 20, vec![]),
            (3, 1_920, 40, vec![0xFB, 0]),
        ],
    );
    write_rtp_record(&mut input, 50, &[0x12, 0x34]).expect("garbage");
    write_record(&mut input, 55, 0, &[0x80, 200, 0, 1, 0, 0, 0, 0]).expect("rtcp");
    let other = build(
        &PacketSpec {
            payload_type: 0,
            ssrc: 9,
            ..PacketSpec::default()
        },
        &[0xFF; 160],
    );
    write_rtp_record(&mut input, 60, &other).expect("other pt");
    input.extend_from_slice(&[0, 40, 0]); // a cut-off record
    let segments = [AudioSegmentInput {
        capture: &input,
        offset_ms: 0,
        drift_ppm: 0.0,
    }];
    let report = extract_opus(
        &segments,
        &cfg(AudioContainer::Matroska),
        Cursor::new(Vec::new()),
    )
    .expect("extract");
    assert_eq!(report.packets_written, 1);
    assert_eq!(report.padding_only, 1, "an empty payload carries no media");
    assert_eq!(report.malformed, 1, "code 3 with zero frames");
    assert_eq!(
        (
            report.invalid_records,
            report.rtcp_records,
            report.other_records
        ),
        (1, 1, 1)
    );
    assert!(
        report.warnings.iter().any(|w| w.contains("truncated")),
        "{:?}",
        report.warnings
    );
}

#[test]
fn unusable_input_is_a_typed_error() {
    let input = capture(111, &[(1, 0, 0, opus20(10))]);
    let seg = |capture| {
        [AudioSegmentInput {
            capture,
            offset_ms: 0,
            drift_ppm: 0.0,
        }]
    };
    let run = |segments: &[AudioSegmentInput<'_>], c: &AudioExtractConfig| {
        extract_opus(segments, c, Cursor::new(Vec::new()))
    };
    assert!(matches!(
        run(&seg(b"nope"), &cfg(AudioContainer::Ogg)),
        Err(ExtractError::Capture { segment: 0, .. })
    ));
    let wrong_pt = AudioExtractConfig {
        payload_type: Some(96),
        ..cfg(AudioContainer::Ogg)
    };
    assert!(matches!(
        run(&seg(&input), &wrong_pt),
        Err(ExtractError::NoPackets {
            payload_type: Some(96)
        })
    ));
    let pcmu = AudioExtractConfig {
        codec: AudioCodec::Pcmu,
        ..cfg(AudioContainer::Ogg)
    };
    assert!(matches!(
        run(&seg(&input), &pcmu),
        Err(ExtractError::UnsupportedCodec { .. })
    ));
    let negative = [AudioSegmentInput {
        capture: &input,
        offset_ms: -5,
        drift_ppm: 0.0,
    }];
    assert!(matches!(
        run(&negative, &cfg(AudioContainer::Ogg)),
        Err(ExtractError::NegativeOffset { .. })
    ));
}

#[test]
fn g711_and_g722_decode_to_pcm_on_the_exact_timeline() {
    struct Case {
        name: &'static str,
        codec: AudioCodec,
        pt: u8,
        /// Payload bytes per 20 ms packet.
        bytes: usize,
        /// Output samples per 20 ms.
        samples: usize,
    }
    let cases = [
        Case {
            name: "µ-law",
            codec: AudioCodec::Pcmu,
            pt: 0,
            bytes: 160,
            samples: 160,
        },
        Case {
            name: "A-law",
            codec: AudioCodec::Pcma,
            pt: 8,
            bytes: 160,
            samples: 160,
        },
        Case {
            name: "G.722 at 16 kHz on an 8 kHz clock",
            codec: AudioCodec::G722,
            pt: 9,
            bytes: 160,
            samples: 320,
        },
    ];
    for case in cases {
        // Three packets, then a 100 ms DTX pause (RTP clock 8 kHz for all three), then one.
        let mut packets: Vec<_> = (0..3u16)
            .map(|i| {
                (
                    i,
                    u32::from(i) * 160,
                    u32::from(i) * 20,
                    vec![0x80; case.bytes],
                )
            })
            .collect();
        packets.push((3, 3 * 160 + 800, 160, vec![0x80; case.bytes]));
        let input = capture(case.pt, &packets);
        let segments = [AudioSegmentInput {
            capture: &input,
            offset_ms: 0,
            drift_ppm: 0.0,
        }];
        let c = AudioExtractConfig {
            payload_type: None,
            codec: case.codec,
            ..AudioExtractConfig::default()
        };
        let mut pcm = Vec::new();
        let report = decode_pcm(&segments, &c, |chunk| {
            pcm.extend_from_slice(chunk);
            Ok(())
        })
        .expect("decode");
        let per_ms = case.samples / 20;
        assert_eq!(
            pcm.len(),
            180 * per_ms,
            "{}: 60 ms + 100 ms + 20 ms",
            case.name
        );
        assert!(
            pcm[60 * per_ms..160 * per_ms].iter().all(|&s| s == 0),
            "{}: silence fill",
            case.name
        );
        assert!(
            pcm[..60 * per_ms].iter().any(|&s| s != 0),
            "{}: audio",
            case.name
        );
        assert_eq!(report.dtx_filled_ms, 100.0, "{}", case.name);
        assert_eq!(report.sample_rate as usize, per_ms * 1000, "{}", case.name);
    }
}

/// 2 s of a voiced sound (gliding pitch, formant-like harmonics) coded by libopus as SILK
/// wideband 20 ms at 24 kbit/s with in-band FEC on or off, as `(seq, ts, arrival, payload)`.
/// With FEC on, packets 1 to 31 carry LBRR (the encoder then finds too little speech activity).
fn silk_speech(fec: bool) -> Vec<(u16, u32, u32, Vec<u8>)> {
    let mut enc = ::opus::Encoder::new(48_000, ::opus::Channels::Mono, ::opus::Application::Voip)
        .expect("encoder");
    enc.set_bitrate(::opus::Bitrate::Bits(24_000))
        .expect("bitrate");
    enc.set_bandwidth(::opus::Bandwidth::Wideband)
        .expect("bandwidth");
    enc.set_inband_fec(fec).expect("fec");
    enc.set_packet_loss_perc(10).expect("loss");
    let mut phase = 0f32;
    (0..100u16)
        .map(|k| {
            let pcm: Vec<f32> = (0..960)
                .map(|i| {
                    let t = (u32::from(k) * 960 + i) as f32 / 48_000.0;
                    phase +=
                        2.0 * std::f32::consts::PI * (160.0 + 60.0 * (4.0 * t).sin()) / 48_000.0;
                    (1..12)
                        .map(|h| {
                            let f = h as f32 * 160.0;
                            let gain = 1.0 / (1.0 + ((f - 700.0) / 250.0).powi(2));
                            0.1 * gain * (h as f32 * phase).sin()
                        })
                        .sum()
                })
                .collect();
            let payload = enc.encode_vec_float(&pcm, 1500).expect("encode");
            (500 + k, u32::from(k) * 960, u32::from(k) * 20, payload)
        })
        .collect()
}

/// Every packet of a Matroska file's single track, in order.
fn matroska_packets(data: &[u8]) -> Vec<Vec<u8>> {
    let top = parse(data, 0..data.len());
    let mut packets = Vec::new();
    for cluster in top[1].all(ids::CLUSTER) {
        for block in cluster.all(ids::SIMPLE_BLOCK) {
            packets.push(data[block.body.clone()][4..].to_vec());
        }
    }
    packets
}

#[test]
fn a_lost_frame_is_rebuilt_from_the_next_packets_fec_and_nothing_else_changes() {
    struct Case {
        name: &'static str,
        packets: Vec<(u16, u32, u32, Vec<u8>)>,
        /// Indices of the packets lost.
        lost: &'static [usize],
        /// Frames the output rebuilds.
        rebuilt: u64,
    }
    let celt: Vec<_> = (0..100u16)
        .map(|k| (500 + k, u32::from(k) * 960, u32::from(k) * 20, opus20(60)))
        .collect();
    let cases = [
        Case {
            name: "a single loss in SILK with LBRR after it is rebuilt",
            packets: silk_speech(true),
            lost: &[20],
            rebuilt: 1,
        },
        Case {
            name: "of two lost in a row only the second has LBRR after it",
            packets: silk_speech(true),
            lost: &[20, 21, 25],
            rebuilt: 2,
        },
        Case {
            name: "SILK without LBRR is concealed",
            packets: silk_speech(false),
            lost: &[20],
            rebuilt: 0,
        },
        Case {
            name: "CELT carries no LBRR",
            packets: celt,
            lost: &[40],
            rebuilt: 0,
        },
    ];
    for case in cases {
        let kept: Vec<_> = case
            .packets
            .iter()
            .enumerate()
            .filter(|(i, _)| !case.lost.contains(i))
            .map(|(_, p)| p.clone())
            .collect();
        let input = capture(111, &kept);
        let segments = [AudioSegmentInput {
            capture: &input,
            offset_ms: 0,
            drift_ppm: 0.0,
        }];
        let mut outputs = Vec::new();
        for fec in [true, false] {
            let mut buf = Cursor::new(Vec::new());
            let cfg = AudioExtractConfig {
                fec,
                ..cfg(AudioContainer::Matroska)
            };
            let report = extract_opus(&segments, &cfg, &mut buf).expect("extract");
            assert_eq!(
                report.fec_recovered,
                if fec { case.rebuilt } else { 0 },
                "{}",
                case.name
            );
            outputs.push(buf.into_inner());
        }
        let (with, without) = (matroska_packets(&outputs[0]), matroska_packets(&outputs[1]));
        let (samples, _, _) = matroska_audio(&outputs[0]);
        assert_eq!(samples, 100 * 960, "{}: the span is kept", case.name);
        // Received packets as they came; a rebuilt one codes like its neighbours.
        let received: Vec<&Vec<u8>> = kept.iter().map(|p| &p.3).collect();
        let real: Vec<&Vec<u8>> = with.iter().filter(|p| p.len() > 2).collect();
        assert_eq!(
            real.len() as u64,
            received.len() as u64 + case.rebuilt,
            "{}",
            case.name
        );
        let mut it = real.iter();
        assert!(received.iter().all(|r| it.any(|w| w == r)), "{}", case.name);
        for p in real.iter().filter(|p| !received.contains(p)) {
            assert_eq!(p[0], received[0][0], "{}: same TOC", case.name);
        }
        if case.rebuilt == 0 {
            assert_eq!(outputs[0], outputs[1], "{}: byte-identical", case.name);
        } else {
            assert_ne!(with, without, "{}", case.name);
        }
    }
}

#[test]
fn the_stream_yields_the_packets_collect_would_hold_with_each_hole_marked() {
    // Speech with a DTX pause and a loss, from two segments (a pause between them), with and
    // without FEC: the stream must hand over exactly what collecting the track holds.
    let mut second = silk_speech(true);
    second.remove(30); // lost
    let first = capture(111, &talk_with_holes());
    let second = capture(111, &second);
    let segments = [
        AudioSegmentInput {
            capture: &first,
            offset_ms: 0,
            drift_ppm: 0.0,
        },
        AudioSegmentInput {
            capture: &second,
            offset_ms: 9_000,
            drift_ppm: 0.0,
        },
    ];
    for fec in [true, false] {
        let cfg = AudioExtractConfig {
            fec,
            ..cfg(AudioContainer::Matroska)
        };
        let (held, report) = collect_opus(&segments, &cfg).expect("collects");
        assert_eq!(survey_opus(&segments, &cfg).expect("surveys"), report);
        let mut stream = OpusStream::new(&segments, &cfg).expect("streams");
        assert_eq!(stream.walked(), vec![0, 0]);
        let mut streamed = Vec::new();
        while let Some(p) = stream.next_packet().expect("no error") {
            streamed.push(p);
        }
        assert_eq!(stream.walked(), vec![first.len(), second.len()]);
        let data: Vec<&[u8]> = streamed.iter().map(|p| p.data.as_slice()).collect();
        let want: Vec<&[u8]> = held.iter().map(|(_, d)| d).collect();
        assert_eq!(data, want, "fec {fec}");
        let filled = |cause| {
            streamed
                .iter()
                .filter(|p| p.fill == Some(cause))
                .map(|p| u64::from(packet_info(&p.data).expect("valid").duration()))
                .sum::<u64>() as f64
                / 48.0
        };
        assert_eq!(filled(GapCause::Dtx), report.dtx_filled_ms, "fec {fec}");
        assert_eq!(filled(GapCause::Pause), report.pause_filled_ms, "fec {fec}");
        let lost = filled(GapCause::Loss);
        let recovered = report.fec_recovered as f64 * 20.0;
        assert_eq!(lost + recovered, report.loss_filled_ms, "fec {fec}");
        assert_eq!(report.fec_recovered > 0, fec, "fec {fec}");
    }
}

/// `(ssrc, pt, seq, ts, arrival_ms, payload)` of a packet of some stream.
type StreamRecord = (u32, u8, u16, u32, u32, Vec<u8>);

/// Records of several streams into a capture.
fn capture_of_streams(packets: &[StreamRecord]) -> Vec<u8> {
    let mut out = Vec::new();
    write_header(
        &mut out,
        &FileHeader {
            address: "192.0.2.1".into(),
            port: 5004,
            ..FileHeader::default()
        },
    );
    for (ssrc, pt, seq, ts, ms, payload) in packets {
        let spec = PacketSpec {
            payload_type: *pt,
            sequence_number: *seq,
            timestamp: *ts,
            ssrc: *ssrc,
            ..PacketSpec::default()
        };
        write_rtp_record(&mut out, *ms, &build(&spec, payload)).expect("record fits");
    }
    out
}

/// The track (`talk_with_holes` on [`SSRC`], one packet of it coded stereo) interleaved with a
/// shorter stream of the same payload type (a sender restart), RTX and RTCP-like noise.
fn busy_capture(stereo_at: Option<usize>) -> Vec<u8> {
    let mut packets = Vec::new();
    for (i, (seq, ts, ms, mut payload)) in talk_with_holes().into_iter().enumerate() {
        if stereo_at == Some(i) {
            payload[0] |= 0x04;
        }
        packets.push((SSRC, 111, seq, ts, ms, payload));
        if i % 9 == 0 {
            let k = (i / 9) as u16;
            packets.push((
                0xBEEF,
                111,
                7 + k,
                90_000 + u32::from(k) * 960,
                ms,
                opus20(30),
            ));
            packets.push((0xF00D, 112, 50 + k, 0, ms, vec![0x12, 0x34, 0xF8, 0x00]));
        }
    }
    capture_of_streams(&packets)
}

/// What the analysis chose for a capture: its primary SSRC and whether it is coded stereo.
fn analysed(capture: &[u8]) -> (Option<u32>, bool) {
    let cfg = crate::analyze::AnalyzeConfig {
        rtx_apt: vec![(112, 111)],
        ..crate::analyze::AnalyzeConfig::default()
    };
    let report = crate::analyze::analyze_capture(capture, &cfg).expect("capture analyses");
    (report.primary_ssrc, report.primary_opus_stereo)
}

/// (name, segments, per segment: its SSRC named, else left to the core)
type NamingCase<'a> = (&'static str, Vec<&'a [u8]>, Vec<bool>);

#[test]
fn ssrcs_from_the_analysis_give_the_bytes_extraction_chooses_itself() {
    let mono = busy_capture(None);
    let stereo = busy_capture(Some(70));
    let cases: [NamingCase<'_>; 4] = [
        ("one mono capture", vec![&mono], vec![true]),
        ("one capture, stereo late in it", vec![&stereo], vec![true]),
        (
            "two captures, both named",
            vec![&mono, &stereo],
            vec![true, true],
        ),
        (
            "two captures, one left to the core",
            vec![&stereo, &mono],
            vec![false, true],
        ),
    ];
    for (name, captures, named) in cases {
        let segments: Vec<_> = captures
            .iter()
            .enumerate()
            .map(|(i, c)| AudioSegmentInput {
                capture: c,
                offset_ms: i as i64 * 10_000,
                drift_ppm: 0.0,
            })
            .collect();
        let analyses: Vec<_> = captures.iter().map(|c| analysed(c)).collect();
        for container in [
            AudioContainer::Matroska,
            AudioContainer::Webm,
            AudioContainer::Ogg,
        ] {
            let chosen = cfg(container);
            let given = AudioExtractConfig {
                ssrcs: analyses
                    .iter()
                    .zip(&named)
                    .map(|(a, &n)| if n { a.0 } else { None })
                    .collect(),
                opus_stereo: Some(analyses.iter().zip(&named).any(|(a, &n)| n && a.1)),
                ..cfg(container)
            };
            let run = |c: &AudioExtractConfig| {
                let mut out = Cursor::new(Vec::new());
                let report = extract_opus(&segments, c, &mut out).expect("extracts");
                (out.into_inner(), report)
            };
            let (want, want_report) = run(&chosen);
            let (got, got_report) = run(&given);
            assert!(want == got, "{name}, {container:?}: the same bytes");
            assert_eq!(want_report, got_report, "{name}, {container:?}");
            assert_eq!(got_report.ssrcs, vec![Some(SSRC); captures.len()], "{name}");
            let stereo_expected = captures.iter().any(|c| std::ptr::eq(*c, stereo.as_slice()));
            assert_eq!(
                got_report.channels,
                if stereo_expected { 2 } else { 1 },
                "{name}"
            );
        }
    }
}

#[test]
fn a_named_ssrc_the_capture_lacks_is_a_typed_error() {
    let input = busy_capture(None);
    let segments = [AudioSegmentInput {
        capture: &input,
        offset_ms: 0,
        drift_ppm: 0.0,
    }];
    let cases = [
        ("an SSRC never seen", 0x0BAD_F00D, 111),
        ("an SSRC seen only with another payload type", 0xF00D, 111),
    ];
    for (name, ssrc, pt) in cases {
        let c = AudioExtractConfig {
            payload_type: Some(pt),
            ssrcs: vec![Some(ssrc)],
            opus_stereo: Some(false),
            ..cfg(AudioContainer::Matroska)
        };
        let err = extract_opus(&segments, &c, Cursor::new(Vec::new())).expect_err(name);
        assert!(
            matches!(err, ExtractError::SsrcNotFound { segment: 0, ssrc: s, payload_type: 111 } if s == ssrc),
            "{name}: {err}"
        );
    }
    // Without the payload type (or, for Opus, the stereo flag) the names are not enough to
    // skip the survey: the core chooses, and finds the track.
    for (name, c) in [
        (
            "no payload type",
            AudioExtractConfig {
                payload_type: None,
                ssrcs: vec![Some(0x0BAD_F00D)],
                opus_stereo: Some(false),
                ..cfg(AudioContainer::Matroska)
            },
        ),
        (
            "no stereo flag",
            AudioExtractConfig {
                ssrcs: vec![Some(0x0BAD_F00D)],
                ..cfg(AudioContainer::Matroska)
            },
        ),
    ] {
        let report = extract_opus(&segments, &c, Cursor::new(Vec::new())).expect(name);
        assert_eq!(report.ssrcs, [Some(SSRC)], "{name}");
    }
}
