//! Frame assembly tests: whole captures in, frames out, each case named for what it proves.

use super::*;
use crate::rtp::{build, PacketSpec, ONE_BYTE_PROFILE};
use crate::rtpdump::{write_header, write_rtp_record, FileHeader};
use proptest::prelude::*;
use std::fmt::Write as _;

const PT: u8 = 96;
const SSRC: u32 = 0x1234_5678;

/// One packet to put in a capture.
#[derive(Debug, Clone)]
pub(crate) struct Pkt {
    pub seq: u16,
    pub ts: u32,
    pub marker: bool,
    pub payload: Vec<u8>,
    pub cvo: Option<u8>,
    pub pt: u8,
}

pub(crate) fn file_header() -> FileHeader {
    FileHeader {
        address: "10.0.0.1".to_owned(),
        port: 5004,
        ..FileHeader::default()
    }
}

pub(crate) fn capture(packets: &[Pkt]) -> Vec<u8> {
    let mut out = Vec::new();
    write_header(&mut out, &file_header());
    for (i, p) in packets.iter().enumerate() {
        let ext = p.cvo.map(|v| [0x10, v]); // id 1, one byte
        let spec = PacketSpec {
            marker: p.marker,
            payload_type: p.pt,
            sequence_number: p.seq,
            timestamp: p.ts,
            ssrc: SSRC,
            extension: ext.as_ref().map(|e| (ONE_BYTE_PROFILE, &e[..])),
            ..PacketSpec::default()
        };
        write_rtp_record(&mut out, i as u32, &build(&spec, &p.payload)).expect("small packet");
    }
    out
}

/// A VP8 frame: keyframes carry the start code and size.
pub(crate) fn vp8_frame(key: bool, size: (u16, u16), len: usize, fill: u8) -> Vec<u8> {
    let mut f = if key {
        let mut f = vec![0x30, 0x51, 0x00, 0x9d, 0x01, 0x2a];
        f.extend_from_slice(&size.0.to_le_bytes());
        f.extend_from_slice(&size.1.to_le_bytes());
        f
    } else {
        vec![0x31, 0x02, 0x00]
    };
    f.resize(len.max(f.len()), fill);
    f
}

/// Temporal layer fields for the VP8 descriptor: (TID, Y, `TL0PICIDX`).
type Layer = Option<(u8, bool, u8)>;

/// Splits a VP8 frame into packets of at most `chunk` bytes with descriptors.
pub(crate) fn vp8_payloads(frame: &[u8], chunk: usize, layer: Layer) -> Vec<Vec<u8>> {
    frame
        .chunks(chunk)
        .enumerate()
        .map(|(i, c)| {
            let mut p = Vec::with_capacity(c.len() + 4);
            let s = if i == 0 { 0x10 } else { 0 };
            match layer {
                Some((tid, y, tl0)) => {
                    p.extend_from_slice(&[0x80 | s, 0x60, tl0, tid << 6 | u8::from(y) << 5]);
                }
                None => p.push(s),
            }
            p.extend_from_slice(c);
            p
        })
        .collect()
}

/// A VP8 stream: `frames` of (keyframe, layer), 30 fps, packets in order.
pub(crate) fn vp8_stream(start_seq: u16, start_ts: u32, frames: &[(bool, Layer)]) -> Vec<Vec<Pkt>> {
    let mut seq = start_seq;
    frames
        .iter()
        .enumerate()
        .map(|(i, &(key, layer))| {
            let ts = start_ts.wrapping_add(3000 * i as u32);
            let data = vp8_frame(key, (320, 180), 2500, i as u8);
            let payloads = vp8_payloads(&data, 1000, layer);
            let n = payloads.len();
            payloads
                .into_iter()
                .enumerate()
                .map(|(j, payload)| {
                    let p = Pkt {
                        seq,
                        ts,
                        marker: j + 1 == n,
                        payload,
                        cvo: None,
                        pt: PT,
                    };
                    seq = seq.wrapping_add(1);
                    p
                })
                .collect()
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Out {
    pts: u64,
    key: bool,
    data: Vec<u8>,
    size: Option<(u32, u32)>,
}

fn run(packets: &[Pkt], cfg: &VideoExtractConfig) -> (Vec<Out>, VideoReport, Vec<String>) {
    let cap = capture(packets);
    let mut frames = Vec::new();
    let mut events = Vec::new();
    let mut missed = Vec::new();
    let report = assemble_video(&cap, cfg, |e| {
        match e {
            VideoEvent::Frame(f) => frames.push(Out {
                pts: f.pts_90k,
                key: f.keyframe,
                data: f.data.to_vec(),
                size: f.size,
            }),
            VideoEvent::Config { pts_90k, .. } => events.push(format!("config@{pts_90k}")),
            VideoEvent::Missed { pts_90k, .. } => missed.push(pts_90k),
            VideoEvent::Rotation { pts_90k, rotation } => {
                events.push(format!("rotation@{pts_90k}:{}", rotation.degrees));
            }
        }
        Ok::<_, String>(())
    })
    .expect("assembly succeeds");
    // Every picture that arrived is written or reported missed, once.
    let mut all: Vec<u64> = frames.iter().map(|f| f.pts).chain(missed).collect();
    all.sort_unstable();
    let before = all.len();
    all.dedup();
    assert_eq!(before, all.len(), "a picture both written and missed");
    (frames, report, events)
}

fn vp8_cfg() -> VideoExtractConfig {
    VideoExtractConfig {
        cvo_extension_id: Some(1),
        ..VideoExtractConfig::default()
    }
}

fn pts_of(frames: &[Out]) -> Vec<u64> {
    frames.iter().map(|f| f.pts).collect()
}

#[test]
fn complete_stream_emits_every_frame_with_exact_pts() {
    let frames: Vec<_> = (0..6).map(|i| (i == 0, None)).collect();
    let packets: Vec<Pkt> = vp8_stream(100, 5000, &frames).concat();
    let (out, report, _) = run(&packets, &vp8_cfg());
    assert_eq!(pts_of(&out), [0, 3000, 6000, 9000, 12000, 15000]);
    assert_eq!(out[0].size, Some((320, 180)));
    assert_eq!(out[0].data, vp8_frame(true, (320, 180), 2500, 0));
    assert_eq!(report.frames_emitted, 6);
    assert_eq!(report.keyframe_waits, 0);
    assert_eq!(report.resolution_changes, vec![(0, 320, 180)]);
}

#[test]
fn output_starts_at_the_first_keyframe() {
    let frames = [(false, None), (false, None), (true, None), (false, None)];
    let (out, report, _) = run(&vp8_stream(0, 0, &frames).concat(), &vp8_cfg());
    assert_eq!(pts_of(&out), [6000, 9000]);
    assert!(out[0].key);
    assert_eq!(report.frames_undecodable, 2);
    assert_eq!(report.keyframe_waits, 1);
    assert!(
        (report.keyframe_wait_ms - 66.666).abs() < 0.01,
        "{}",
        report.keyframe_wait_ms
    );
    assert_eq!(
        report
            .gaps
            .first()
            .map(|g| (g.start_pts_90k, g.end_pts_90k)),
        Some((0, 6000))
    );
}

#[test]
fn capture_starting_mid_frame_drops_the_partial_frame() {
    let frames = [(true, None), (true, None)];
    let stream = vp8_stream(0, 0, &frames);
    let packets: Vec<Pkt> = stream.concat().into_iter().skip(1).collect();
    let (out, report, _) = run(&packets, &vp8_cfg());
    assert_eq!(pts_of(&out), [3000]);
    assert_eq!(report.frames_incomplete, 1);
}

#[test]
fn loss_inside_an_inter_frame_skips_until_the_next_keyframe() {
    let frames = [
        (true, None),
        (false, None),
        (false, None),
        (false, None),
        (true, None),
        (false, None),
    ];
    let stream = vp8_stream(0, 0, &frames);
    let mut packets = Vec::new();
    for (i, f) in stream.iter().enumerate() {
        for (j, p) in f.iter().enumerate() {
            if i == 1 && j == 1 {
                continue; // middle packet of the first inter frame
            }
            packets.push(p.clone());
        }
    }
    let (out, report, _) = run(&packets, &vp8_cfg());
    assert_eq!(pts_of(&out), [0, 12000, 15000]);
    assert_eq!(report.frames_incomplete, 1);
    assert_eq!(report.frames_undecodable, 2);
    assert_eq!(report.packets_lost, 1);
    assert_eq!(report.keyframe_waits, 1);
}

#[test]
fn loss_of_a_whole_frame_between_frames_is_detected() {
    let frames = [(true, None), (false, None), (false, None), (false, None)];
    let stream = vp8_stream(0, 0, &frames);
    let packets: Vec<Pkt> = stream
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 1)
        .flat_map(|(_, f)| f.clone())
        .collect();
    let (out, report, _) = run(&packets, &vp8_cfg());
    assert_eq!(pts_of(&out), [0]);
    assert_eq!(report.frames_undecodable, 2);
}

#[test]
fn reordering_inside_a_frame_keeps_it_complete() {
    let frames = [(true, None), (false, None), (false, None)];
    let stream = vp8_stream(0, 0, &frames);
    let mut packets = Vec::new();
    for f in &stream {
        let mut f = f.clone();
        f.reverse();
        packets.extend(f);
    }
    let (out, report, _) = run(&packets, &vp8_cfg());
    assert_eq!(pts_of(&out), [0, 3000, 6000]);
    assert_eq!(report.frames_incomplete, 0);
    assert_eq!(out[1].data, vp8_frame(false, (320, 180), 2500, 1));
}

#[test]
fn duplicates_are_dropped_and_counted() {
    let frames = [(true, None), (false, None)];
    let mut packets = vp8_stream(0, 0, &frames).concat();
    let again = packets[1].clone();
    packets.insert(3, again);
    let (out, report, _) = run(&packets, &vp8_cfg());
    assert_eq!(out.len(), 2);
    assert_eq!(report.duplicates, 1);
}

#[test]
fn resolution_change_mid_stream_is_reported() {
    let mut packets = vp8_stream(0, 0, &[(true, None), (false, None)]).concat();
    let key = vp8_frame(true, (640, 360), 1500, 9);
    let payloads = vp8_payloads(&key, 1000, None);
    let n = payloads.len();
    for (j, payload) in payloads.into_iter().enumerate() {
        packets.push(Pkt {
            seq: 3 + j as u16 + 3,
            ts: 6000,
            marker: j + 1 == n,
            payload,
            cvo: None,
            pt: PT,
        });
    }
    // Sequence numbers of the first two frames are 0..6; continue at 6.
    for (j, p) in packets.iter_mut().skip(6).enumerate() {
        p.seq = 6 + j as u16;
    }
    let (out, report, _) = run(&packets, &vp8_cfg());
    assert_eq!(out.len(), 3);
    assert_eq!(out[2].size, Some((640, 360)));
    assert_eq!(
        report.resolution_changes,
        vec![(0, 320, 180), (6000, 640, 360)]
    );
    assert_eq!(report.max_size, Some((640, 360)));
}

#[test]
fn timestamp_and_sequence_wrap_keep_pts_exact() {
    let frames: Vec<_> = (0..5).map(|i| (i == 0, None)).collect();
    let packets = vp8_stream(65_530, u32::MAX - 4000, &frames).concat();
    let (out, _, _) = run(&packets, &vp8_cfg());
    assert_eq!(pts_of(&out), [0, 3000, 6000, 9000, 12000]);
}

#[test]
fn rotation_is_reported_on_change() {
    let frames: Vec<_> = (0..4).map(|i| (i == 0, None)).collect();
    let mut packets = vp8_stream(0, 0, &frames).concat();
    for p in &mut packets {
        p.cvo = Some(u8::from(p.ts >= 6000)); // 90 degrees from the third frame on
    }
    let (_, report, events) = run(&packets, &vp8_cfg());
    assert_eq!(events, ["rotation@0:0", "rotation@6000:90"]);
    assert_eq!(report.rotation_changes.len(), 2);
    assert_eq!(
        Rotation::from_cvo(0x0E),
        Rotation {
            degrees: 180,
            flip: true,
            back_camera: true
        }
    );
}

#[test]
fn other_payload_types_and_padding_are_skipped_and_counted() {
    let mut packets = vp8_stream(0, 0, &[(true, None), (false, None)]).concat();
    packets.push(Pkt {
        seq: 9,
        ts: 0,
        marker: false,
        payload: vec![1, 2, 3],
        cvo: None,
        pt: 97,
    });
    packets.push(Pkt {
        seq: 6,
        ts: 6000,
        marker: true,
        payload: vec![],
        cvo: None,
        pt: PT,
    });
    let (out, report, _) = run(
        &packets,
        &VideoExtractConfig {
            payload_type: Some(PT),
            ..vp8_cfg()
        },
    );
    assert_eq!(out.len(), 2);
    assert_eq!(report.other_records, 1);
    assert_eq!(report.padding_only, 1);
}

#[test]
fn gap_longer_than_three_frames_is_reported() {
    let frames: Vec<_> = (0..12).map(|i| (i == 0 || i == 8, None)).collect();
    let stream = vp8_stream(0, 0, &frames);
    // Frames 4..8 never sent at all (sender paused): sequence numbers continue.
    let mut packets = Vec::new();
    let mut seq = 0u16;
    for (i, f) in stream.iter().enumerate() {
        if (4..8).contains(&i) {
            continue;
        }
        for p in f {
            let mut p = p.clone();
            p.seq = seq;
            seq += 1;
            packets.push(p);
        }
    }
    let (out, report, _) = run(&packets, &vp8_cfg());
    assert_eq!(out.len(), 8);
    assert_eq!(
        report.gaps,
        vec![VideoGap {
            start_pts_90k: 12000,
            end_pts_90k: 24000,
            width: 320,
            height: 180
        }]
    );
}

#[test]
fn vp8_lost_upper_layer_frame_keeps_the_base_layer() {
    // L1T2: TL0 frames on even indices, TL1 on odd; frame 3 (TID 1) is lost.
    let layers: Vec<(bool, Layer)> = (0..8u8)
        .map(|i| {
            let tid = i % 2;
            let tl0 = i / 2;
            (i == 0, Some((tid, i == 7, tl0)))
        })
        .collect();
    let stream = vp8_stream(0, 0, &layers);
    let packets: Vec<Pkt> = stream
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 3)
        .flat_map(|(_, f)| f.clone())
        .collect();
    let (out, report, _) = run(&packets, &vp8_cfg());
    // Base frames 4 and 6 decode; TL1 frame 5 may reference the lost frame 3; frame 7 has Y.
    assert_eq!(pts_of(&out), [0, 3000, 6000, 12000, 18000, 21000]);
    assert_eq!(report.frames_undecodable, 1);
}

#[test]
fn vp8_lost_base_layer_frame_waits_for_a_keyframe() {
    let layers: Vec<(bool, Layer)> = (0..6u8)
        .map(|i| (i == 0, Some((i % 2, false, i / 2))))
        .collect();
    let stream = vp8_stream(0, 0, &layers);
    let packets: Vec<Pkt> = stream
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 2)
        .flat_map(|(_, f)| f.clone())
        .collect();
    let (out, _, _) = run(&packets, &vp8_cfg());
    assert_eq!(pts_of(&out), [0, 3000]);
}

/// What a picture loses: all its packets, or its last one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lost {
    All,
    Last,
}

/// Runs `pictures` (packets per picture, sequence numbers in order) with `drops` applied
/// and returns the indexes of the pictures written (by RTP time, 3000 ticks apart).
fn written_pictures(
    pictures: &[Vec<Pkt>],
    drops: &[(usize, Lost)],
    cfg: &VideoExtractConfig,
) -> Vec<u64> {
    let mut packets = Vec::new();
    for (i, picture) in pictures.iter().enumerate() {
        let keep = match drops.iter().find(|d| d.0 == i).map(|d| d.1) {
            None => picture.len(),
            Some(Lost::All) => 0,
            Some(Lost::Last) => picture.len() - 1,
        };
        packets.extend_from_slice(&picture[..keep]);
    }
    let (out, _, _) = run(&packets, cfg);
    out.iter().map(|f| f.pts / 3000).collect()
}

/// Numbers packets in order, `3000 * index` as the RTP time of each picture.
fn number(pictures: Vec<Vec<Vec<u8>>>) -> Vec<Vec<Pkt>> {
    let mut seq = 0u16;
    pictures
        .into_iter()
        .enumerate()
        .map(|(i, payloads)| {
            let n = payloads.len();
            payloads
                .into_iter()
                .enumerate()
                .map(|(j, payload)| {
                    seq = seq.wrapping_add(1);
                    Pkt {
                        seq,
                        ts: 3000 * i as u32,
                        marker: j + 1 == n,
                        payload,
                        cvo: None,
                        pt: PT,
                    }
                })
                .collect()
        })
        .collect()
}

/// VP8 pictures with 15-bit `PictureID`s from 0, each (keyframe, `N` bit), in 3 packets.
fn vp8_numbered(frames: &[(bool, bool)]) -> Vec<Vec<Pkt>> {
    number(
        frames
            .iter()
            .enumerate()
            .map(|(i, &(key, non_ref))| {
                let data = vp8_frame(key, (320, 180), 2500, i as u8);
                data.chunks(1000)
                    .enumerate()
                    .map(|(j, c)| {
                        let b0 =
                            0x80 | if non_ref { 0x20 } else { 0 } | if j == 0 { 0x10 } else { 0 };
                        let mut p = vec![b0, 0x80, 0x80 | (i >> 8) as u8, i as u8];
                        p.extend_from_slice(c);
                        p
                    })
                    .collect()
            })
            .collect(),
    )
}

/// Bits ("0"/"1") to bytes, zero-padded.
fn bytes_of(mut bits: String) -> Vec<u8> {
    while bits.len() % 8 != 0 {
        bits.push('0');
    }
    bits.as_bytes()
        .chunks(8)
        .map(|c| u8::from_str_radix(std::str::from_utf8(c).unwrap_or("0"), 2).unwrap_or(0))
        .collect()
}

fn ue(v: u32) -> String {
    let code = v + 1;
    let len = 32 - code.leading_zeros();
    format!(
        "{}{:0width$b}",
        "0".repeat(len as usize - 1),
        code,
        width = len as usize
    )
}

/// A VP9 picture of one frame: a keyframe, or a shown inter frame writing `refresh` and
/// reading `refs`.
#[derive(Debug, Clone, Copy)]
enum Vp9Pic {
    Key,
    Inter { refresh: u8, refs: [u8; 3] },
}

/// VP9 pictures with 15-bit `PictureID`s from 0, in 2 packets each.
fn vp9_numbered(pictures: &[Vp9Pic]) -> Vec<Vec<Pkt>> {
    // The start of a 320x180 keyframe written by libvpx.
    const KEY: &[u8] = &[
        0x82, 0x49, 0x83, 0x42, 0x20, 0x13, 0xf0, 0x0b, 0x36, 0x0a, 0x38, 0x24,
    ];
    number(
        pictures
            .iter()
            .enumerate()
            .map(|(i, &pic)| {
                let (mut frame, inter) = match pic {
                    Vp9Pic::Key => (KEY.to_vec(), false),
                    Vp9Pic::Inter { refresh, refs } => {
                        let mut bits = String::from("1000011000"); // shown inter, reset ctx 0
                        let _ = write!(bits, "{refresh:08b}");
                        for idx in refs {
                            let _ = write!(bits, "{idx:03b}0");
                        }
                        bits += "1"; // size from the first reference
                        (bytes_of(bits), true)
                    }
                };
                frame.resize(1600, i as u8);
                let n = 2;
                frame
                    .chunks(800)
                    .enumerate()
                    .map(|(j, c)| {
                        let b0 = 0x80
                            | if inter { 0x40 } else { 0 }
                            | if j == 0 { 0x08 } else { 0 }
                            | if j + 1 == n { 0x04 } else { 0 };
                        let mut p = vec![b0, 0x80 | (i >> 8) as u8, i as u8];
                        p.extend_from_slice(c);
                        p
                    })
                    .collect()
            })
            .collect(),
    )
}

/// H.264 pictures, each (IDR, reference, `frame_num`): an IDR with SPS and PPS in one STAP-A,
/// the others a slice in 3 FU-A packets, led by a packet with an SEI (which may or may not start
/// an access unit) for those numbered in `sei_first`.
fn h264_numbered(pictures: &[(bool, bool, u32)], sei_first: &[usize]) -> Vec<Vec<Pkt>> {
    const SPS: &[u8] = &[
        0x67, 0x64, 0x00, 0x14, 0xac, 0xd9, 0x41, 0x41, 0x9f, 0x9f, 0x01, 0x6a, 0x0c, 0x0c, 0x0d,
        0x4a, 0x00, 0x00, 0x03, 0x00, 0x02, 0x00, 0x00, 0x03, 0x00, 0x79, 0x1e, 0x28, 0x53, 0x2c,
    ];
    const PPS: &[u8] = &[0x68, 0xeb, 0xec, 0xb2, 0x2c];
    let log2 = crate::bitstream::h264::parse_sps(SPS)
        .expect("test SPS")
        .log2_max_frame_num;
    number(
        pictures
            .iter()
            .enumerate()
            .map(|(index, &(idr, reference, frame_num))| {
                let nri: u8 = if reference { 0x60 } else { 0 };
                let kind = if idr { 5 } else { 1 };
                let mut body = ue(0) + &ue(if idr { 7 } else { 5 }) + &ue(0);
                let _ = write!(body, "{frame_num:0width$b}", width = usize::from(log2));
                body += "1";
                let mut slice = vec![nri | kind];
                slice.extend(bytes_of(body));
                slice.resize(40, 0x55);
                if idr {
                    let mut stap = vec![24];
                    for n in [SPS, PPS, &slice[..]] {
                        stap.extend_from_slice(&(n.len() as u16).to_be_bytes());
                        stap.extend_from_slice(n);
                    }
                    vec![stap]
                } else {
                    let body = &slice[1..];
                    let sei = [0x06, 0x05, 0x01, 0x00, 0x80];
                    let lead = sei_first
                        .contains(&index)
                        .then(|| [&[24, 0, 5][..], &sei[..]].concat());
                    lead.into_iter()
                        .chain(body.chunks(13).enumerate().map(|(j, c)| {
                            let fu = kind
                                | if j == 0 { 0x80 } else { 0 }
                                | if j == 2 { 0x40 } else { 0 };
                            let mut p = vec![nri | 0x1C, fu]; // FU-A
                            p.extend_from_slice(c);
                            p
                        }))
                        .collect()
                }
            })
            .collect(),
    )
}

#[test]
#[allow(clippy::too_many_lines, clippy::type_complexity)] // one table of cases, its row type inline
fn a_loss_costs_only_what_the_codec_says_depends_on_it() {
    use Lost::{All, Last};
    let (k, i) = ((true, false), (false, false));
    let n = (false, true); // a VP8 non-reference frame
    let vp8 = |frames: &[(bool, bool)]| (vp8_numbered(frames), VideoCodec::Vp8);
    let inter = |refresh, refs| Vp9Pic::Inter { refresh, refs };
    let vp9 = |pics: &[Vp9Pic]| (vp9_numbered(pics), VideoCodec::Vp9);
    let h264 = |pics: &[(bool, bool, u32)]| (h264_numbered(pics, &[]), VideoCodec::H264);
    let cases: Vec<(
        &str,
        (Vec<Vec<Pkt>>, VideoCodec),
        Vec<(usize, Lost)>,
        Vec<u64>,
    )> = vec![
        (
            "VP8: a non-reference frame (N) missing a packet costs only itself",
            vp8(&[k, i, i, n, i, i]),
            vec![(3, Last)],
            vec![0, 1, 2, 4, 5],
        ),
        (
            "VP8: a reference frame missing a packet costs every frame until the keyframe",
            vp8(&[k, i, i, i, i, i, k, i]),
            vec![(3, Last)],
            vec![0, 1, 2, 6, 7],
        ),
        (
            "VP8: a frame lost whole may have been a reference: wait for the keyframe",
            vp8(&[k, i, i, n, i, i, k, i]),
            vec![(3, All)],
            vec![0, 1, 2, 6, 7],
        ),
        (
            "VP8: the non-reference frame's PictureID accounts for the loss before the next",
            vp8(&[k, i, n, n, i, i]),
            vec![(2, Last), (3, Last)],
            vec![0, 1, 4, 5],
        ),
        (
            "VP9: a frame that writes no slot, missing a packet, costs only itself",
            vp9(&[
                Vp9Pic::Key,
                inter(1, [0, 0, 0]),
                inter(0, [0, 0, 0]),
                inter(1, [0, 0, 0]),
            ]),
            vec![(2, Last)],
            vec![0, 1, 3],
        ),
        (
            "VP9: frames reading a slot a lost frame wrote wait; those reading intact slots decode",
            vp9(&[
                Vp9Pic::Key,
                inter(1, [0, 0, 0]),
                inter(2, [1, 1, 1]),
                inter(1, [0, 0, 0]),
                inter(2, [1, 2, 3]),
                Vp9Pic::Key,
                inter(1, [0, 0, 0]),
            ]),
            vec![(1, Last)],
            vec![0, 2, 4, 5, 6],
        ),
        (
            "VP9: a frame lost whole may have written any slot: wait for the keyframe",
            vp9(&[
                Vp9Pic::Key,
                inter(0, [0, 0, 0]),
                inter(1, [0, 0, 0]),
                Vp9Pic::Key,
            ]),
            vec![(1, All)],
            vec![0, 3],
        ),
        (
            "H.264: a non-reference picture (nal_ref_idc 0) lost whole costs only itself",
            h264(&[
                (true, true, 0),
                (false, true, 1),
                (false, false, 2),
                (false, true, 2),
                (false, true, 3),
            ]),
            vec![(2, All)],
            vec![0, 1, 3, 4],
        ),
        (
            "H.264: a lost reference picture makes frame_num skip: wait for the IDR",
            h264(&[
                (true, true, 0),
                (false, true, 1),
                (false, true, 2),
                (false, false, 3),
                (true, true, 0),
                (false, true, 1),
            ]),
            vec![(1, All)],
            vec![0, 4, 5],
        ),
        (
            "a picture whose start cannot be told after a loss is lost too",
            (
                h264_numbered(&[(true, true, 0), (false, true, 1), (false, false, 2), (false, true, 2)], &[3]),
                VideoCodec::H264,
            ),
            vec![(2, All)],
            vec![0, 1],
        ),
        (
            "one packet lost after a picture without its marker was that picture's: the next starts",
            (
                h264_numbered(&[(true, true, 0), (false, true, 1), (false, false, 2), (false, true, 2)], &[3]),
                VideoCodec::H264,
            ),
            vec![(2, Last)],
            vec![0, 1, 3],
        ),
        (
            "H.264: a reference picture missing a packet is lost too",
            h264(&[
                (true, true, 0),
                (false, true, 1),
                (false, true, 2),
                (true, true, 0),
            ]),
            vec![(1, Last)],
            vec![0, 3],
        ),
    ];
    for (name, (pictures, codec), drops, want) in cases {
        let cfg = VideoExtractConfig {
            codec,
            ..VideoExtractConfig::default()
        };
        assert_eq!(written_pictures(&pictures, &drops, &cfg), want, "{name}");
        // Nothing lost: every picture is written.
        let all: Vec<u64> = (0..pictures.len() as u64).collect();
        assert_eq!(
            written_pictures(&pictures, &[], &cfg),
            all,
            "{name}, nothing lost"
        );
    }
}

/// H.264 access units as packets: STAP-A keyframe with SPS/PPS/IDR, FU-A inter frames.
fn h264_packets() -> Vec<Pkt> {
    const SPS: &[u8] = &[
        0x67, 0x64, 0x00, 0x14, 0xac, 0xd9, 0x41, 0x41, 0x9f, 0x9f, 0x01, 0x6a, 0x0c, 0x0c, 0x0d,
        0x4a, 0x00, 0x00, 0x03, 0x00, 0x02, 0x00, 0x00, 0x03, 0x00, 0x79, 0x1e, 0x28, 0x53, 0x2c,
    ];
    const PPS: &[u8] = &[0x68, 0xeb, 0xec, 0xb2, 0x2c];
    let mut stap = vec![24];
    for n in [SPS, PPS, &[0x65, 0x88, 0x80, 1, 2][..]] {
        stap.extend_from_slice(&(n.len() as u16).to_be_bytes());
        stap.extend_from_slice(n);
    }
    let mut packets = vec![Pkt {
        seq: 0,
        ts: 0,
        marker: true,
        payload: stap,
        cvo: None,
        pt: PT,
    }];
    let mut seq = 1;
    for f in 1..4u32 {
        for (j, body) in [&[0x9a, 1][..], &[2, 3], &[4]].iter().enumerate() {
            let fu = match j {
                0 => 0x81,
                2 => 0x41,
                _ => 0x01,
            };
            let mut p = vec![0x5C, fu];
            p.extend_from_slice(body);
            packets.push(Pkt {
                seq,
                ts: f * 3000,
                marker: j == 2,
                payload: p,
                cvo: None,
                pt: PT,
            });
            seq += 1;
        }
    }
    packets
}

#[test]
fn h264_access_units_in_avcc_with_config_event() {
    let cfg = VideoExtractConfig {
        codec: VideoCodec::H264,
        ..VideoExtractConfig::default()
    };
    let (out, report, events) = run(&h264_packets(), &cfg);
    assert_eq!(pts_of(&out), [0, 3000, 6000, 9000]);
    assert!(out[0].key);
    assert_eq!(out[0].size, Some((320, 180)));
    assert_eq!(out[1].data, [0, 0, 0, 6, 0x41, 0x9a, 1, 2, 3, 4]);
    assert_eq!(events, ["config@0"]);
    assert_eq!(report.config_changes, 1);
}

#[test]
fn h264_fu_a_without_start_after_a_loss_is_dropped() {
    let cfg = VideoExtractConfig {
        codec: VideoCodec::H264,
        ..VideoExtractConfig::default()
    };
    let packets: Vec<Pkt> = h264_packets().into_iter().filter(|p| p.seq != 4).collect();
    let (out, report, _) = run(&packets, &cfg);
    assert_eq!(pts_of(&out), [0, 3000]);
    assert_eq!(report.frames_incomplete, 1);
    assert_eq!(report.frames_undecodable, 1);
}

#[test]
fn h264_fu_b_is_refused_and_counted() {
    let cfg = VideoExtractConfig {
        codec: VideoCodec::H264,
        ..VideoExtractConfig::default()
    };
    let mut packets = h264_packets();
    packets[2].payload[0] = 0x5D; // FU-B indicator in the middle of frame 1
    let (out, report, _) = run(&packets, &cfg);
    assert_eq!(pts_of(&out), [0]);
    assert_eq!(report.refused_packetizations, 1);
    assert_eq!(report.frames_malformed, 1);
}

#[test]
fn no_packets_of_the_payload_type_is_an_error() {
    let cap = capture(&vp8_stream(0, 0, &[(true, None)]).concat());
    let cfg = VideoExtractConfig {
        payload_type: Some(100),
        ..vp8_cfg()
    };
    let err = assemble_video(&cap, &cfg, |_| Ok::<_, String>(())).expect_err("nothing to assemble");
    assert!(matches!(
        err,
        VideoError::NoPackets {
            payload_type: Some(100)
        }
    ));
}

#[test]
fn sink_error_stops_the_assembly() {
    let cap = capture(&vp8_stream(0, 0, &[(true, None), (false, None)]).concat());
    let err = assemble_video(&cap, &vp8_cfg(), |_| Err("disk full")).expect_err("stopped");
    assert!(err.to_string().contains("disk full"));
}

/// Written frames for a fill plan: (pts at 90 kHz, keyframe, width, height).
type PlanFrames<'a> = &'a [(u64, bool, u32, u32)];

fn log_of(frames: PlanFrames<'_>) -> PictureLog {
    let mut log = PictureLog::default();
    for &(pts, key, w, h) in frames {
        log.written(pts, key, (w, h), false);
    }
    log
}

fn plan_of(frames: PlanFrames<'_>) -> FillPlan {
    FillPlan::plan(&log_of(frames), OnLoss::Freeze, true)
}

fn gap(start: u64, end: u64, width: u32, height: u32) -> VideoGap {
    VideoGap {
        start_pts_90k: start,
        end_pts_90k: end,
        width,
        height,
    }
}

#[test]
#[allow(clippy::too_many_lines)] // one table of cases
fn fill_plan_cases() {
    const K: bool = true;
    const I: bool = false;
    let steady: Vec<(u64, bool, u32, u32)> =
        (0..10).map(|k| (k * 3000, k == 0, 320, 180)).collect();
    let cases: [(&str, PlanFrames<'_>, Vec<VideoGap>, u64); 11] = [
        ("no frames, nothing to plan", &[], vec![], 0),
        ("a steady stream has no gap", &steady, vec![], 0),
        (
            "a pause ending at a keyframe is filled from the frame before plus one interval",
            &[
                (0, K, 320, 180),
                (3000, I, 320, 180),
                (6000, I, 320, 180),
                (60_000, K, 320, 180),
                (63_000, I, 320, 180),
            ],
            vec![gap(9000, 60_000, 320, 180)],
            0,
        ),
        (
            "a pause ending at an inter frame is left unfilled, counted in ms rounded down",
            &[
                (0, K, 320, 180),
                (3000, I, 320, 180),
                (6000, I, 320, 180),
                (60_000, I, 320, 180),
                (63_000, I, 320, 180),
            ],
            vec![],
            566,
        ),
        (
            "time before the first frame counts from 0",
            &[
                (90_000, K, 640, 360),
                (93_000, I, 640, 360),
                (96_000, I, 640, 360),
            ],
            vec![gap(0, 90_000, 640, 360)],
            0,
        ),
        (
            "no size known: unfilled",
            &[
                (0, K, 0, 0),
                (3000, I, 0, 0),
                (6000, I, 0, 0),
                (60_000, K, 0, 0),
            ],
            vec![],
            566,
        ),
        (
            "the size is the previous frame's, else that of the frame after the gap",
            &[
                (0, K, 0, 0),
                (3000, I, 0, 0),
                (6000, I, 0, 0),
                (60_000, K, 1280, 720),
            ],
            vec![gap(9000, 60_000, 1280, 720)],
            0,
        ),
        (
            "repeated times do not shrink the interval: only positive steps count",
            &[
                (0, K, 320, 180),
                (0, I, 320, 180),
                (6000, I, 320, 180),
                (6000, I, 320, 180),
                (12_000, I, 320, 180),
                (40_000, K, 320, 180),
            ],
            vec![gap(18_000, 40_000, 320, 180)],
            0,
        ),
        (
            "exactly three intervals is not a gap",
            &[
                (0, K, 320, 180),
                (3000, I, 320, 180),
                (6000, I, 320, 180),
                (18_000, K, 320, 180),
            ],
            vec![],
            0,
        ),
        (
            "an even count of steps takes the mean of the middle two, rounded down",
            &[
                (0, K, 320, 180),
                (3000, I, 320, 180),
                (6001, I, 320, 180),
                (9001, I, 320, 180),
                (30_000, K, 320, 180),
            ],
            vec![gap(12_001, 30_000, 320, 180)],
            0,
        ),
        (
            "without a positive step the interval is 1/30 s",
            &[(20_000, K, 320, 180), (20_000, I, 320, 180)],
            vec![gap(0, 20_000, 320, 180)],
            0,
        ),
    ];
    for (name, frames, fills, unfilled_ms) in cases {
        let plan = plan_of(frames);
        assert_eq!(plan.fills, fills, "{name}");
        assert_eq!(plan.unfilled_ms, unfilled_ms, "{name}");
        // Nothing was lost in these outputs: every stretch is a pause, and the output ends one
        // interval after its last frame.
        assert!(
            plan.stretches
                .iter()
                .all(|s| s.kind == StretchKind::NoPicture),
            "{name}: {:?}",
            plan.stretches
        );
    }
    assert_eq!(plan_of(&steady).end_pts_90k, 30_000);
}

/// A picture for a plan: (pts, written, keyframe, loss before it).
type Pic = (u64, bool, bool, bool);

fn log_with_losses(pictures: &[Pic]) -> PictureLog {
    let mut log = PictureLog::default();
    for &(pts, written, key, loss) in pictures {
        if written {
            log.written(pts, key, (320, 180), loss);
        } else {
            log.missed(pts, (320, 180), loss);
        }
    }
    log
}

/// Frames `from..to` (in 3000-tick steps), written (`w`) or missed (`m`), the first of them
/// after a loss when `loss`; a keyframe first when `key`.
fn run_of(from: u64, to: u64, written: bool, key: bool, loss: bool) -> Vec<Pic> {
    (from..to)
        .map(|k| (k * 3000, written, key && k == from, loss && k == from))
        .collect()
}

fn stretch(start: u64, end: u64, kind: StretchKind, filled: bool) -> Stretch {
    Stretch {
        start_pts_90k: start,
        end_pts_90k: end,
        kind,
        filled,
    }
}

#[test]
#[allow(clippy::too_many_lines, clippy::type_complexity)] // one table of cases, its row type inline
fn plans_after_a_loss_by_policy() {
    use StretchKind::{Freeze, KeyframeWait, NoPicture};
    let loss_mid = [
        run_of(0, 6, true, true, false),
        run_of(6, 21, false, false, true),
        run_of(21, 25, true, true, false),
    ]
    .concat();
    let loss_at_end = [
        run_of(0, 6, true, true, false),
        run_of(6, 11, false, false, true),
    ]
    .concat();
    // A loss, then the sender pauses, resumes, and its first pictures are lost too.
    let pause_inside = [
        run_of(0, 6, true, true, false),
        vec![(18_000, false, false, true)],
        vec![(90_000, false, false, false), (93_000, false, false, false)],
        run_of(32, 34, true, true, false),
    ]
    .concat();
    // Every packet for 2.4 s lost: far apart, yet a loss (the keyframe after it saw the gap).
    let burst = [
        run_of(0, 6, true, true, false),
        run_of(30, 32, true, true, true),
    ]
    .concat();
    let start_wait = [
        run_of(0, 10, false, false, false),
        run_of(10, 12, true, true, false),
    ]
    .concat();
    let cases: [(
        &str,
        &[Pic],
        OnLoss,
        bool,
        Vec<VideoGap>,
        Vec<Stretch>,
        u64,
        u64,
    ); 9] = [
        (
            "freeze: the last picture is held until the keyframe, nothing filled",
            &loss_mid,
            OnLoss::Freeze,
            true,
            vec![],
            vec![stretch(18_000, 63_000, Freeze, false)],
            0,
            75_000,
        ),
        (
            "conceal plans as freeze (its missing frames are held too)",
            &loss_mid,
            OnLoss::Conceal,
            true,
            vec![],
            vec![stretch(18_000, 63_000, Freeze, false)],
            0,
            75_000,
        ),
        (
            "black: the keyframe wait is black",
            &loss_mid,
            OnLoss::Black,
            true,
            vec![gap(18_000, 63_000, 320, 180)],
            vec![stretch(18_000, 63_000, KeyframeWait, true)],
            0,
            75_000,
        ),
        (
            "black without fills holds the picture: a freeze",
            &loss_mid,
            OnLoss::Black,
            false,
            vec![],
            vec![stretch(18_000, 63_000, Freeze, false)],
            0,
            75_000,
        ),
        (
            "lost pictures at the end: held to one interval after the last of them",
            &loss_at_end,
            OnLoss::Freeze,
            true,
            vec![],
            vec![stretch(18_000, 33_000, Freeze, false)],
            0,
            33_000,
        ),
        (
            "black at the end needs no keyframe after it",
            &loss_at_end,
            OnLoss::Black,
            true,
            vec![gap(18_000, 33_000, 320, 180)],
            vec![stretch(18_000, 33_000, KeyframeWait, true)],
            0,
            33_000,
        ),
        (
            "a pause inside a loss is black from its start to the keyframe",
            &pause_inside,
            OnLoss::Freeze,
            true,
            vec![gap(21_000, 96_000, 320, 180)],
            vec![
                stretch(18_000, 21_000, Freeze, false),
                stretch(21_000, 90_000, NoPicture, true),
                stretch(90_000, 96_000, KeyframeWait, true),
            ],
            0,
            102_000,
        ),
        (
            "a burst loss of whole seconds is a loss, not a pause",
            &burst,
            OnLoss::Freeze,
            true,
            vec![],
            vec![stretch(18_000, 90_000, Freeze, false)],
            0,
            96_000,
        ),
        (
            "before the first keyframe nothing can be held: black, a keyframe wait",
            &start_wait,
            OnLoss::Freeze,
            true,
            vec![gap(0, 30_000, 320, 180)],
            vec![stretch(0, 30_000, KeyframeWait, true)],
            0,
            36_000,
        ),
    ];
    for (name, pictures, on_loss, fill, fills, stretches, unfilled_ms, end) in cases {
        let plan = FillPlan::plan(&log_with_losses(pictures), on_loss, fill);
        assert_eq!(plan.fills, fills, "{name}");
        assert_eq!(plan.stretches, stretches, "{name}");
        assert_eq!(plan.unfilled_ms, unfilled_ms, "{name}");
        assert_eq!(plan.end_pts_90k, end, "{name}");
    }
}

#[test]
fn without_fills_every_pause_counts_as_unfilled() {
    let frames = [
        (0, true, 320, 180),
        (3000, false, 320, 180),
        (6000, false, 320, 180),
        (60_000, true, 320, 180),
    ];
    let plan = FillPlan::plan(&log_of(&frames), OnLoss::Freeze, false);
    assert!(plan.fills.is_empty());
    assert_eq!(plan.unfilled_ms, 51_000 * 1000 / 90_000);
    assert_eq!(
        plan.stretches,
        [stretch(9000, 60_000, StretchKind::NoPicture, false)]
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn shuffling_within_the_window_gives_the_same_frames(
        swaps in proptest::collection::vec((0usize..60, 1usize..8), 0..40),
        dups in proptest::collection::vec(0usize..60, 0..6),
    ) {
        let frames: Vec<_> = (0..20).map(|i| (i % 10 == 0, None)).collect();
        let packets = vp8_stream(65_500, u32::MAX - 20_000, &frames).concat();
        let (want, _, _) = run(&packets, &vp8_cfg());
        let mut shuffled = packets.clone();
        let n = shuffled.len();
        for (at, by) in swaps {
            let a = at % n;
            let b = (a + by).min(n - 1);
            shuffled.swap(a, b);
        }
        for d in dups {
            let p = shuffled[d % n].clone();
            shuffled.insert((d % n + 3).min(shuffled.len()), p);
        }
        let (got, _, _) = run(&shuffled, &vp8_cfg());
        prop_assert_eq!(got, want);
    }

    #[test]
    fn arbitrary_payloads_never_panic(
        payloads in proptest::collection::vec((proptest::collection::vec(any::<u8>(), 0..40), any::<bool>(), 0u32..4, 0u16..3), 1..40),
        codec in 0u8..4,
        policy in 0usize..3,
    ) {
        let codec = [VideoCodec::Vp8, VideoCodec::Vp9, VideoCodec::H264, VideoCodec::Av1][usize::from(codec)];
        let on_loss = [OnLoss::Freeze, OnLoss::Black, OnLoss::Conceal][policy];
        let mut seq = 0u16;
        let packets: Vec<Pkt> = payloads
            .into_iter()
            .enumerate()
            .map(|(i, (payload, marker, ts, skip))| {
                seq = seq.wrapping_add(1 + skip); // sometimes a packet is lost
                Pkt { seq, ts: ts * 3000, marker, payload, cvo: Some(i as u8), pt: PT }
            })
            .collect();
        let cap = capture(&packets);
        let cfg = VideoExtractConfig { codec, cvo_extension_id: Some(1), on_loss, ..VideoExtractConfig::default() };
        let _ = assemble_video(&cap, &cfg, |_| Ok::<_, String>(()));
        let segment = [crate::extract::VideoSegmentInput { capture: &cap, offset_ms: 0, drift_ppm: 0.0 }];
        let _ = crate::extract::video_frames(&segment, &cfg);
    }

    #[test]
    fn arbitrary_capture_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..400)) {
        let mut cap = Vec::new();
        write_header(&mut cap, &file_header());
        cap.extend_from_slice(&data);
        let _ = assemble_video(&cap, &VideoExtractConfig::default(), |_| Ok::<_, String>(()));
    }

    #[test]
    fn every_plan_keeps_its_stretches_and_fills_in_order_inside_the_output(
        steps in proptest::collection::vec(
            (0u64..40_000, any::<bool>(), any::<bool>(), any::<bool>(), 0u32..2),
            0..60,
        ),
        policy in 0usize..3,
        fill in any::<bool>(),
    ) {
        let mut log = PictureLog::default();
        let mut at = 0u64;
        for (step, written, key, loss, big) in steps {
            at += step;
            let size = (320 * (big + 1), 180 * (big + 1));
            if written {
                log.written(at, key, size, loss);
            } else {
                log.missed(at, size, loss);
            }
        }
        let on_loss = [OnLoss::Freeze, OnLoss::Black, OnLoss::Conceal][policy];
        let plan = FillPlan::plan(&log, on_loss, fill);
        let written: Vec<&Picture> = log.pictures.iter().filter(|p| p.written).collect();
        if written.is_empty() {
            prop_assert_eq!(plan, FillPlan::default());
            return Ok(());
        }
        let end = plan.end_pts_90k;
        prop_assert!(log.pictures.iter().all(|p| p.pts_90k < end));
        let mut last = 0;
        for s in &plan.stretches {
            prop_assert!(last <= s.start_pts_90k && s.start_pts_90k < s.end_pts_90k);
            prop_assert!(s.end_pts_90k <= end);
            prop_assert!(!(s.filled && s.kind == StretchKind::Freeze));
            last = s.end_pts_90k;
        }
        prop_assert!(fill || plan.fills.is_empty());
        let mut last = 0;
        for f in &plan.fills {
            prop_assert!(last <= f.start_pts_90k && f.start_pts_90k < f.end_pts_90k);
            // Black ends at a written keyframe, or at the output's end.
            let at_key = written.iter().any(|p| p.keyframe && p.pts_90k == f.end_pts_90k);
            prop_assert!(at_key || f.end_pts_90k == end);
            prop_assert!(f.width > 0 && f.height > 0);
            last = f.end_pts_90k;
        }
        // Every filled stretch lies inside a fill.
        for s in plan.stretches.iter().filter(|s| s.filled) {
            let inside = |f: &VideoGap| {
                f.start_pts_90k <= s.start_pts_90k && s.end_pts_90k <= f.end_pts_90k
            };
            prop_assert!(plan.fills.iter().any(inside));
        }
    }
}
