//! The audio timeline takes any packet sequence (resets, wraps, reordering, duplicates, segment
//! changes) without panicking, and what it emits never overlaps or runs backwards.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rawcore_core::audio::AudioPacket;
use rawcore_core::{AudioEvent, AudioTimeline, TimelineConfig};

/// Reads fixed-width fields off the front of the input; missing bytes read as zero.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.0.len());
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head
    }
    fn u8(&mut self) -> u8 {
        self.take(1).first().copied().unwrap_or(0)
    }
    fn u16(&mut self) -> u16 {
        u16::from(self.u8()) << 8 | u16::from(self.u8())
    }
    fn u32(&mut self) -> u32 {
        u32::from(self.u16()) << 16 | u32::from(self.u16())
    }
}

const DURATIONS: [u64; 8] = [0, 120, 240, 480, 960, 1_920, 2_880, 5_760];

fuzz_target!(|data: &[u8]| {
    let mut r = Reader(data);
    let flags = r.u8();
    let mut cfg = TimelineConfig::new(48_000, 48_000);
    cfg.fill_gaps = flags & 1 != 0;
    cfg.fix_dtx = flags & 2 != 0;
    cfg.reorder_window = usize::from(r.u8() % 48);
    let mut timeline = AudioTimeline::new(cfg);
    let mut end = 0u64;
    let mut sink = |event: AudioEvent<'_>| -> Result<(), ()> {
        let (pts, duration) = match event {
            AudioEvent::Frame { pts, duration, .. } | AudioEvent::Fill { pts, duration, .. } => {
                (pts, duration)
            }
        };
        assert!(pts >= end, "event at {pts} overlaps what ended at {end}");
        end = pts.saturating_add(duration);
        Ok(())
    };
    let (mut seq, mut ts, mut arrival) = (0u16, 0u32, 0u32);
    let mut ops = 0;
    while !r.0.is_empty() && ops < 4_096 {
        ops += 1;
        let op = r.u8();
        match op % 8 {
            0 => {
                let offset = u64::from(r.u32());
                // Clock drift both ways, up to ±1.3 % (beyond the cap on purpose).
                let drift_ppm = f64::from(r.u8() as i8) * 100.0;
                let _ = timeline.begin_drifting_segment(offset, drift_ppm, &mut sink);
                continue;
            }
            1 => {
                // Anything at all.
                seq = r.u16();
                ts = r.u32();
                arrival = r.u32();
            }
            _ => {
                // Mostly well-behaved: small steps that wrap, jitter, loss and duplicates.
                let step = r.u8();
                seq = seq.wrapping_add(u16::from(step & 0x0F)).wrapping_sub(2);
                ts = ts.wrapping_add(960 * u32::from(step >> 4));
                arrival = arrival.wrapping_add(u32::from(r.u8()));
            }
        }
        let duration = DURATIONS[usize::from(op >> 5)];
        let payload = r.take(usize::from(op >> 6));
        let packet = AudioPacket {
            seq,
            timestamp: ts,
            arrival_ms: arrival,
            duration,
            payload,
        };
        let _ = timeline.push(packet, &mut sink);
    }
    let _ = timeline.finish(&mut sink);
});
