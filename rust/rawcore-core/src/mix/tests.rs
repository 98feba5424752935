//! The mixer against libopus decoding each track on its own.

// Samples are compared exactly where the mixer only copies them.
#![allow(clippy::float_cmp)]

use opus::{Application, Channels, Decoder, Encoder};

use super::*;

/// 20 ms Opus packets of a `freq` Hz tone at `amplitude`, `frames` 20 ms frames long.
fn tone_packets(freq: f32, amplitude: f32, frames: usize) -> Vec<Vec<u8>> {
    let mut enc = Encoder::new(48_000, Channels::Mono, Application::Audio).expect("encoder");
    (0..frames)
        .map(|f| {
            let pcm: Vec<f32> = (0..960)
                .map(|i| {
                    let t = (f * 960 + i) as f32 / 48_000.0;
                    amplitude * (2.0 * std::f32::consts::PI * freq * t).sin()
                })
                .collect();
            enc.encode_vec_float(&pcm, 4_000).expect("encode")
        })
        .collect()
}

fn decode_alone(packets: &[Vec<u8>]) -> Vec<f32> {
    let mut dec = Decoder::new(48_000, Channels::Mono).expect("decoder");
    let mut out = Vec::new();
    let mut buf = vec![0f32; 5_760];
    for p in packets {
        let n = dec.decode_float(p, &mut buf, false).expect("decode");
        out.extend_from_slice(&buf[..n]);
    }
    out
}

fn mix_all(mixer: &mut OpusMixer<'_>, block: usize) -> Vec<f32> {
    let mut out = Vec::new();
    loop {
        let b = mixer.next_block(block).expect("held packets cannot fail");
        if b.is_empty() {
            return out;
        }
        out.extend(b);
    }
}

fn track(packets: &[Vec<u8>], offset: i64, gain: f32) -> MixTrack<'static> {
    MixTrack::new(1, packets.iter().map(Vec::as_slice), offset, gain)
}

#[test]
fn tracks_land_at_their_offsets_with_their_gains() {
    let a = tone_packets(300.0, 0.2, 50);
    let b = tone_packets(1_000.0, 0.2, 25);
    let (da, db) = (decode_alone(&a), decode_alone(&b));
    let mut mixer = OpusMixer::new(vec![track(&a, 0, 1.0), track(&b, 12_345, 0.5)], 1, None);
    let out = mix_all(&mut mixer, 4_801);
    assert_eq!(out.len(), da.len().max(12_345 + db.len()));
    for (i, &y) in out.iter().enumerate() {
        let mut want = da.get(i).copied().unwrap_or(0.0);
        if i >= 12_345 {
            want += 0.5 * db.get(i - 12_345).copied().unwrap_or(0.0);
        }
        assert!((y - want).abs() < 1e-6, "frame {i}: {y} vs {want}");
    }
    assert_eq!(mixer.stats().limited_blocks, 0);
}

#[test]
fn a_track_starting_before_the_mix_is_cut_and_a_fixed_end_is_kept() {
    let a = tone_packets(440.0, 0.3, 50);
    let da = decode_alone(&a);
    let mut mixer = OpusMixer::new(vec![track(&a, -1_000, 1.0)], 2, Some(60_000));
    let out = mix_all(&mut mixer, 10_000);
    assert_eq!(out.len(), 2 * 60_000);
    for i in 0..da.len() - 1_000 {
        assert!((out[2 * i] - da[i + 1_000]).abs() < 1e-6);
        assert_eq!(out[2 * i], out[2 * i + 1]);
    }
    assert!(out[2 * (da.len() - 1_000)..].iter().all(|&s| s == 0.0));
}

#[test]
fn a_loud_sum_is_limited_below_the_ceiling() {
    let a = tone_packets(300.0, 0.8, 50);
    let b = tone_packets(300.0, 0.8, 50);
    let mut mixer = OpusMixer::new(vec![track(&a, 0, 1.0), track(&b, 0, 1.0)], 1, None);
    let out = mix_all(&mut mixer, 48_000);
    let ceiling = Limiter::new(48_000, 1).ceiling();
    assert!(out.iter().all(|s| s.abs() <= ceiling));
    assert!(mixer.stats().limited_blocks > 500);
}

#[test]
fn a_packet_libopus_rejects_is_concealed_not_fatal() {
    let mut a = tone_packets(300.0, 0.2, 10);
    a[5] = vec![0xff]; // code 3 without its frame count byte
    let mut mixer = OpusMixer::new(vec![track(&a, 0, 1.0)], 1, None);
    let out = mix_all(&mut mixer, 4_800);
    assert_eq!(out.len(), 10 * 960);
    assert_eq!(mixer.stats().decode_errors, 1);
}

#[test]
fn an_empty_mix_ends_at_once() {
    let mut mixer = OpusMixer::new(Vec::new(), 1, None);
    assert!(mixer.next_block(4_800).expect("no tracks").is_empty());
}
