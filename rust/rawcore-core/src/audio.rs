//! Where every audio packet of a track sits on the output timeline, and what fills the holes.
//!
//! [`AudioTimeline`] is a pure state machine over the packets of one track. Packets go in in
//! arrival order, one segment (capture) after another; it extends their sequence numbers and
//! timestamps, restores sequence order with a [`ReorderBuffer`] and emits [`AudioEvent`]s in
//! output order. A packet's place is its RTP timestamp relative to the segment's first packet,
//! plus the segment's offset, converted to output samples, so the decoded length equals the
//! wall-clock span. A hole before a packet is DTX when no sequence number is missing (the sender
//! simply stopped sending), loss when some are, and a pause between segments; each kind is filled
//! or, when its option is off, closed up by pulling later packets earlier. A packet that starts
//! before the end of what was written cannot be trimmed (Opus frames are atomic): it is dropped
//! when it lies entirely inside written time, otherwise written at the end and counted as
//! overlap. A timestamp that leaps far from what the arrival times allow is a sender reset: the
//! track is re-anchored on arrival time instead of producing hours of fill.
//!
//! Clock drift: a segment may say its media clock runs `drift_ppm` fast or slow against the
//! output's wall clock. Frames cannot be stretched, so [`crate::drift`] decides where the
//! difference is made up: inside filled holes, else at a quiet spot (measured by the
//! [`FrameLevel`] meter the caller gives [`AudioTimeline::set_level_meter`]) once about 10 ms
//! are owed, with a short fill or a dropped frame.

use crate::drift::DriftState;
pub use crate::drift::{FrameLevel, MAX_DRIFT_DEBT_MS};
use crate::reorder::{ReorderBuffer, MAX_WINDOW};
use crate::seq::{SeqUnwrapper, TsUnwrapper};
use crate::timeline::MAX_DRIFT_PPM;

/// Warnings kept before the rest are only counted.
pub const MAX_WARNINGS: usize = 20;

/// Drift corrections whose place the report keeps; later ones are only counted.
pub const MAX_CORRECTIONS_KEPT: usize = 4_096;

/// Why a stretch of the output holds no packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GapCause {
    /// The sender paused (discontinuous transmission): sequence numbers are contiguous.
    Dtx,
    /// Packets were lost: sequence numbers are missing.
    Loss,
    /// Time between segments (captures) of the track.
    Pause,
    /// Time inserted because the sender's clock ran slow and no hole came to absorb it.
    Drift,
}

/// What the timeline emits, in output order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioEvent<'a> {
    /// A packet to write at `pts` (output samples) that plays for `duration` samples.
    Frame {
        /// Position on the output timeline, in output samples.
        pts: u64,
        /// Output samples the packet decodes to.
        duration: u64,
        /// The payload.
        data: &'a [u8],
    },
    /// A hole to fill with concealment or silence.
    Fill {
        /// Where the hole starts, in output samples.
        pts: u64,
        /// Its length in output samples.
        duration: u64,
        /// Why it is there.
        cause: GapCause,
    },
}

/// How the timeline places packets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineConfig {
    /// RTP clock rate of the payload type.
    pub rtp_clock: u32,
    /// Output samples per second (differs from the RTP clock for G.722).
    pub sample_rate: u32,
    /// Fill holes caused by loss and pauses between segments.
    pub fill_gaps: bool,
    /// Fill holes caused by DTX.
    pub fix_dtx: bool,
    /// Packets the reorder buffer waits for a missing one.
    pub reorder_window: usize,
    /// A timestamp running ahead of the arrival times by more than this is a sender reset.
    pub max_forward_jump_ms: u64,
    /// A timestamp falling behind the written timeline by more than this is a sender reset.
    pub max_backward_jump_ms: u64,
}

impl TimelineConfig {
    /// Defaults for a codec clock: gaps filled, a 64-packet window, 6 h forward / 2 s backward
    /// reset thresholds. Forward jumps are measured against arrival time, so a long DTX pause,
    /// during which arrival time advances just as much, never counts as a reset.
    #[must_use]
    pub fn new(rtp_clock: u32, sample_rate: u32) -> Self {
        Self {
            rtp_clock: rtp_clock.max(1),
            sample_rate: sample_rate.max(1),
            fill_gaps: true,
            fix_dtx: true,
            reorder_window: 64,
            max_forward_jump_ms: 6 * 3_600_000,
            max_backward_jump_ms: 2_000,
        }
    }
}

/// One packet of the track, as captured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioPacket<'a> {
    /// Sequence number as sent.
    pub seq: u16,
    /// RTP timestamp as sent.
    pub timestamp: u32,
    /// Arrival, ms since the capture start.
    pub arrival_ms: u32,
    /// Output samples the payload decodes to.
    pub duration: u64,
    /// The payload.
    pub payload: &'a [u8],
}

/// What the timeline did, in output samples unless stated.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TimelineReport {
    /// Packets offered.
    pub packets_in: u64,
    /// Packets written as frames.
    pub frames: u64,
    /// Holes filled, by cause: (count, samples).
    pub dtx_filled: (u64, u64),
    /// Loss holes filled.
    pub loss_filled: (u64, u64),
    /// Pauses between segments filled.
    pub pause_filled: (u64, u64),
    /// Samples removed from the timeline because their holes were not to be filled.
    pub closed_up: u64,
    /// Sequence numbers never received.
    pub packets_lost: u64,
    /// Packets received twice.
    pub duplicates: u64,
    /// Packets that arrived after their place had been passed.
    pub late: u64,
    /// Packets dropped because they lay entirely inside already-written time.
    pub overlap_dropped: u64,
    /// How far packets were pushed past their timestamps because written time overlapped them.
    pub overlap: u64,
    /// Sender timestamp resets re-anchored on arrival time.
    pub resets: u64,
    /// Net samples added (positive) or removed (negative) to follow the segments' clock drift.
    pub drift_corrected: i64,
    /// Frames dropped to follow a fast sender clock when no hole came to absorb it.
    pub drift_dropped: u64,
    /// Corrections made between frames (no hole to absorb them): `(pts, samples)` with the
    /// output position of the frame they precede and the samples added (positive) or the
    /// frame dropped (negative); at most [`MAX_CORRECTIONS_KEPT`].
    pub drift_steps: Vec<(u64, i64)>,
    /// Frames the drift rule measured (decoded) while looking for a quiet spot.
    pub drift_measured: u64,
    /// Position of the first frame.
    pub first_pts: Option<u64>,
    /// End of the last frame or fill: the output's length.
    pub end: u64,
    /// What looked wrong, at most [`MAX_WARNINGS`].
    pub warnings: Vec<String>,
    /// Warnings beyond [`MAX_WARNINGS`], only counted.
    pub warnings_dropped: u64,
}

#[derive(Debug, Clone, Copy)]
struct Held<'a> {
    ts: u64,
    arrival_ms: u32,
    duration: u64,
    payload: &'a [u8],
}

/// Where the current segment's timestamps are anchored on the output.
#[derive(Debug, Clone, Copy)]
struct Anchor {
    ts: u64,
    pts: i128,
}

#[derive(Debug)]
struct Segment<'a> {
    offset: u64,
    seqs: SeqUnwrapper,
    tss: TsUnwrapper,
    reorder: ReorderBuffer<Held<'a>>,
    anchor: Option<Anchor>,
    /// Samples pulled earlier because holes were closed up.
    shift: i128,
    /// Position and arrival of the previous frame.
    prev: Option<(u64, u32)>,
    /// Whether the reorder buffer has filled once and releases packets.
    primed: bool,
    /// Packets far behind the sequence just seen, in a row: a sender whose sequence numbers
    /// jumped back. A few consecutive ones mean a new numbering, not stragglers.
    strays: Vec<AudioPacket<'a>>,
    /// The segment's clock drift and what was made up of it (see [`crate::drift`]).
    drift: DriftState,
}

/// How far behind the highest sequence number a packet must be to count as a stray.
const STRAY_DISTANCE: u64 = 1000;
/// Consecutive strays that make the timeline start a new sequence numbering.
const STRAYS_FOR_RESYNC: usize = 3;

/// Places the packets of one audio track on the output timeline.
#[derive(Debug)]
pub struct AudioTimeline<'a> {
    cfg: TimelineConfig,
    /// The reset thresholds in output samples (`max_forward_jump_ms`, `max_backward_jump_ms`).
    max_jump: (i128, i128),
    segment: Option<Segment<'a>>,
    /// End of everything emitted so far.
    expected: u64,
    started: bool,
    pushed_by: u64,
    report: TimelineReport,
    level: Option<Meter<'a>>,
}

/// The caller's frame level meter.
struct Meter<'a>(Box<dyn FrameLevel + Send + 'a>);

impl std::fmt::Debug for Meter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Meter")
    }
}

impl<'a> AudioTimeline<'a> {
    /// A timeline that starts at output sample 0.
    #[must_use]
    pub fn new(cfg: TimelineConfig) -> Self {
        let samples = |ms: u64| i128::from(ms) * i128::from(cfg.sample_rate) / 1000;
        Self {
            max_jump: (
                samples(cfg.max_forward_jump_ms),
                samples(cfg.max_backward_jump_ms),
            ),
            cfg,
            segment: None,
            expected: 0,
            started: false,
            pushed_by: 0,
            report: TimelineReport::default(),
            level: None,
        }
    }

    /// Measures frames with `meter` when the drift rule looks for a quiet spot; without one
    /// every frame counts as quiet (see [`crate::drift`]).
    pub fn set_level_meter(&mut self, meter: Box<dyn FrameLevel + Send + 'a>) {
        self.level = Some(Meter(meter));
    }

    /// Starts a segment whose first packet sits at `offset` output samples. Ends the previous
    /// segment first.
    pub fn begin_segment<E>(
        &mut self,
        offset: u64,
        sink: &mut impl FnMut(AudioEvent<'a>) -> Result<(), E>,
    ) -> Result<(), E> {
        self.begin_drifting_segment(offset, 0.0, sink)
    }

    /// [`AudioTimeline::begin_segment`] for a segment whose media clock runs `drift_ppm` fast
    /// (positive: its media time stretches to more output time) against the output clock.
    pub fn begin_drifting_segment<E>(
        &mut self,
        offset: u64,
        drift_ppm: f64,
        sink: &mut impl FnMut(AudioEvent<'a>) -> Result<(), E>,
    ) -> Result<(), E> {
        self.end_segment(sink)?;
        self.segment = Some(Segment {
            offset,
            seqs: SeqUnwrapper::new(),
            tss: TsUnwrapper::new(),
            reorder: ReorderBuffer::new(self.cfg.reorder_window),
            anchor: None,
            shift: 0,
            prev: None,
            primed: false,
            strays: Vec::new(),
            drift: DriftState::new(drift_ppm, MAX_DRIFT_PPM),
        });
        Ok(())
    }

    /// Offers the next packet in arrival order; events it releases go to `sink`.
    pub fn push<E>(
        &mut self,
        packet: AudioPacket<'a>,
        sink: &mut impl FnMut(AudioEvent<'a>) -> Result<(), E>,
    ) -> Result<(), E> {
        if self.segment.is_none() {
            self.begin_segment(0, sink)?;
        }
        self.report.packets_in += 1;
        let Some(seg) = self.segment.as_mut() else {
            return Ok(());
        };
        let seq = seg.seqs.unwrap(packet.seq);
        let far_behind = seg
            .seqs
            .highest()
            .is_some_and(|h| h.0.saturating_sub(seq.0) > STRAY_DISTANCE);
        if far_behind {
            // Either a straggler from long ago (dropped as late) or the start of a new sequence
            // numbering (a sender reset): a few in a row, each following the last, decide it.
            let follows = seg
                .strays
                .last()
                .is_none_or(|last| packet.seq.wrapping_sub(last.seq) < 64);
            if !follows {
                seg.strays.clear();
            }
            seg.strays.push(packet);
            if seg.strays.len() < STRAYS_FOR_RESYNC {
                return Ok(());
            }
            return self.resync(sink);
        }
        if !seg.strays.is_empty() {
            // The run ended without becoming a new numbering: they were stragglers after all.
            self.report.late += seg.strays.len() as u64;
            seg.strays.clear();
        }
        let ts = seg.tss.unwrap(packet.timestamp).0;
        let held = Held {
            ts,
            arrival_ms: packet.arrival_ms,
            duration: packet.duration,
            payload: packet.payload,
        };
        // Once releasing, the packet the buffer waits for with nothing held leaves at once: the
        // same release, counters and history as through the queue (the common case of packets
        // in order, nothing lost or late).
        if seg.primed && seg.reorder.release_in_order(seq) {
            return self.place(held, 0, sink);
        }
        seg.reorder.push(seq, held);
        // Nothing leaves before the window first fills: a segment's first packets may arrive
        // out of order too, and once a packet is released nothing before it can follow.
        if !seg.primed {
            if seg.reorder.len() < self.cfg.reorder_window.clamp(1, MAX_WINDOW) {
                return Ok(());
            }
            seg.primed = true;
        }
        while let Some(popped) = self.segment.as_mut().and_then(|s| s.reorder.pop()) {
            self.place(popped.item, popped.lost_before, sink)?;
        }
        Ok(())
    }

    /// The sender's sequence numbers restarted: release what the old numbering holds, start a
    /// fresh reorder buffer and sequence unwrapper, and replay the packets of the new numbering.
    /// Timestamps keep their unwrapper, so the new packets land at their RTP times.
    fn resync<E>(
        &mut self,
        sink: &mut impl FnMut(AudioEvent<'a>) -> Result<(), E>,
    ) -> Result<(), E> {
        while let Some(popped) = self.segment.as_mut().and_then(|s| s.reorder.pop_forced()) {
            self.place(popped.item, popped.lost_before, sink)?;
        }
        let Some(seg) = self.segment.as_mut() else {
            return Ok(());
        };
        self.report.packets_lost += seg.reorder.lost();
        self.report.duplicates += seg.reorder.duplicates();
        self.report.late += seg.reorder.late();
        seg.reorder = ReorderBuffer::new(self.cfg.reorder_window);
        seg.seqs = SeqUnwrapper::new();
        seg.primed = false;
        self.report.resets += 1;
        let strays = std::mem::take(&mut seg.strays);
        for packet in strays {
            self.report.packets_in -= 1; // counted once already
            self.push(packet, sink)?;
        }
        Ok(())
    }

    /// Releases every packet the current segment still holds.
    pub fn end_segment<E>(
        &mut self,
        sink: &mut impl FnMut(AudioEvent<'a>) -> Result<(), E>,
    ) -> Result<(), E> {
        while let Some(popped) = self.segment.as_mut().and_then(|s| s.reorder.pop_forced()) {
            self.place(popped.item, popped.lost_before, sink)?;
        }
        if let Some(seg) = self.segment.take() {
            self.report.drift_measured += seg.drift.measured();
            self.report.packets_lost += seg.reorder.lost();
            self.report.duplicates += seg.reorder.duplicates();
            self.report.late += seg.reorder.late();
        }
        Ok(())
    }

    /// Ends the last segment and returns what happened.
    pub fn finish<E>(
        mut self,
        sink: &mut impl FnMut(AudioEvent<'a>) -> Result<(), E>,
    ) -> Result<TimelineReport, E> {
        self.end_segment(sink)?;
        self.report.end = self.expected;
        Ok(self.report)
    }

    /// The end of everything emitted so far, in output samples.
    #[must_use]
    pub fn end(&self) -> u64 {
        self.expected
    }

    fn warn(&mut self, message: impl FnOnce() -> String) {
        if self.report.warnings.len() < MAX_WARNINGS {
            self.report.warnings.push(message());
        } else {
            self.report.warnings_dropped += 1;
        }
    }

    /// Decides where a packet released in sequence order goes, emitting fills before it.
    fn place<E>(
        &mut self,
        held: Held<'a>,
        lost_before: u64,
        sink: &mut impl FnMut(AudioEvent<'a>) -> Result<(), E>,
    ) -> Result<(), E> {
        let rate = i128::from(self.cfg.sample_rate);
        let expected = i128::from(self.expected);
        let (max_forward, max_backward) = self.max_jump;
        let Some(seg) = self.segment.as_mut() else {
            return Ok(());
        };
        let first_in_segment = seg.anchor.is_none();
        // Without drift to follow (the usual segment) the rule is not asked at all.
        let drifting = self.cfg.fill_gaps && !seg.drift.is_none();
        let anchor = *seg.anchor.get_or_insert(Anchor {
            ts: held.ts,
            pts: i128::from(seg.offset),
        });
        let delta = i128::from(held.ts) - i128::from(anchor.ts);
        let mut nominal = anchor.pts + media_samples(delta, &self.cfg) - seg.shift;
        let prev = seg.prev;

        if let Some((prev_pts, prev_arrival)) = prev {
            let arrival_adv = i128::from(held.arrival_ms) - i128::from(prev_arrival);
            let arrival_samples = ms_to_samples(arrival_adv, self.cfg.sample_rate);
            let ts_adv = nominal - i128::from(prev_pts);
            let ahead = ts_adv - arrival_samples;
            let forward = ahead > max_forward;
            let backward = nominal < expected - max_backward;
            if forward || backward {
                let at = (i128::from(prev_pts) + arrival_samples.max(0)).max(expected);
                let shift = seg.shift;
                seg.anchor = Some(Anchor {
                    ts: held.ts,
                    pts: at + shift,
                });
                // Arrival time re-anchors on the output clock: no drift is owed from before.
                seg.drift.reanchor();
                self.report.resets += 1;
                let jump_ms = ts_adv * 1000 / rate;
                self.warn(|| {
                    format!(
                        "sender timestamp jumped {jump_ms} ms while arrival advanced {arrival_adv} ms: \
                         re-anchored on arrival time"
                    )
                });
                nominal = at;
            }
        }

        let gap_cause = if first_in_segment {
            GapCause::Pause
        } else if lost_before > 0 {
            GapCause::Loss
        } else {
            GapCause::Dtx
        };
        let raw_gap = nominal - expected;
        let adj = if drifting {
            self.follow_drift(&held, raw_gap, gap_cause)
        } else {
            0
        };
        nominal += adj;
        let drift_drop = adj != 0 && nominal + i128::from(held.duration) <= expected;

        match nominal.cmp(&expected) {
            std::cmp::Ordering::Greater => {
                let gap = (nominal - expected) as u64;
                // A hole only the drift opened is the drift's, not the sender's.
                let cause = if raw_gap > 0 {
                    gap_cause
                } else {
                    GapCause::Drift
                };
                if raw_gap <= 0 {
                    self.keep_step(expected, adj);
                }
                self.hole(gap, cause, sink)?;
                self.pushed_by = 0;
            }
            std::cmp::Ordering::Less => {
                if nominal + i128::from(held.duration) <= expected {
                    if drift_drop {
                        self.report.drift_dropped += 1;
                        self.keep_step(expected, adj);
                    } else {
                        self.report.overlap_dropped += 1;
                    }
                    return Ok(());
                }
                let by = (expected - nominal) as u64;
                // A sender running steadily behind pushes every packet by the same amount: count
                // the overlap once, when it grows.
                self.report.overlap += by.saturating_sub(self.pushed_by);
                self.pushed_by = by;
            }
            std::cmp::Ordering::Equal => self.pushed_by = 0,
        }

        let pts = self.expected;
        sink(AudioEvent::Frame {
            pts,
            duration: held.duration,
            data: held.payload,
        })?;
        self.started = true;
        self.report.frames += 1;
        self.report.first_pts.get_or_insert(pts);
        self.expected += held.duration;
        if let Some(seg) = self.segment.as_mut() {
            seg.prev = Some((pts, held.arrival_ms));
        }
        Ok(())
    }

    /// Makes the drift correction owed before `held` ([`crate::drift`]); returns it.
    fn follow_drift(&mut self, held: &Held<'_>, gap: i128, cause: GapCause) -> i128 {
        let filled = cause_filled(&self.cfg, cause);
        let rate = i128::from(self.cfg.sample_rate);
        let Some(seg) = self.segment.as_mut() else {
            return 0;
        };
        // Holes not filled at all leave the output off the wall clock: no drift to follow.
        if !self.cfg.fill_gaps || seg.drift.is_none() {
            return 0;
        }
        let Some(anchor) = seg.anchor else { return 0 };
        let elapsed = media_samples(i128::from(held.ts) - i128::from(anchor.ts), &self.cfg);
        let level = self
            .level
            .as_mut()
            .map(|m| &mut *m.0 as &mut dyn FrameLevel);
        let adj = seg.drift.adjustment(
            elapsed,
            rate,
            gap,
            filled,
            (held.duration, held.payload),
            level,
        );
        seg.shift -= adj;
        self.report.drift_corrected += adj as i64;
        adj
    }

    /// Notes a correction made between frames at output position `pts`.
    fn keep_step(&mut self, pts: i128, adj: i128) {
        if self.report.drift_steps.len() < MAX_CORRECTIONS_KEPT {
            self.report
                .drift_steps
                .push((u64::try_from(pts).unwrap_or(0), adj as i64));
        }
    }

    /// Fills a hole before the next frame, or closes it up when its kind is not to be filled.
    fn hole<E>(
        &mut self,
        gap: u64,
        cause: GapCause,
        sink: &mut impl FnMut(AudioEvent<'a>) -> Result<(), E>,
    ) -> Result<(), E> {
        if cause_filled(&self.cfg, cause) {
            sink(AudioEvent::Fill {
                pts: self.expected,
                duration: gap,
                cause,
            })?;
            let counter = match cause {
                GapCause::Dtx => Some(&mut self.report.dtx_filled),
                GapCause::Loss => Some(&mut self.report.loss_filled),
                GapCause::Pause => Some(&mut self.report.pause_filled),
                GapCause::Drift => None, // counted in `drift_corrected`
            };
            if let Some(counter) = counter {
                counter.0 += 1;
                counter.1 += gap;
            }
            self.expected += gap;
        } else {
            if let Some(seg) = self.segment.as_mut() {
                seg.shift += i128::from(gap);
            }
            self.report.closed_up += gap;
        }
        Ok(())
    }
}

/// Whole output samples of `ms` milliseconds, rounded toward zero: in 64 bits when it fits (a
/// 128-bit division is a library call, and this runs per packet).
fn ms_to_samples(ms: i128, rate: u32) -> i128 {
    i64::try_from(ms)
        .ok()
        .and_then(|ms| ms.checked_mul(i64::from(rate)))
        .map_or_else(|| ms * i128::from(rate) / 1000, |p| i128::from(p / 1000))
}

/// Output samples (rounded down) of `delta` RTP clock ticks: the ticks themselves when the
/// clock is the output rate (Opus, G.711), with no 128-bit division per packet.
fn media_samples(delta: i128, cfg: &TimelineConfig) -> i128 {
    if cfg.rtp_clock == cfg.sample_rate {
        delta
    } else {
        (delta * i128::from(cfg.sample_rate)).div_euclid(i128::from(cfg.rtp_clock))
    }
}

/// Whether holes of this kind are filled (otherwise closed up).
fn cause_filled(cfg: &TimelineConfig, cause: GapCause) -> bool {
    match cause {
        GapCause::Dtx => cfg.fix_dtx,
        GapCause::Loss | GapCause::Pause | GapCause::Drift => cfg.fill_gaps,
    }
}

#[cfg(test)]
#[allow(clippy::type_complexity)] // test tables are tuples named by their doc comments
mod tests {
    use super::*;

    /// `(seq, ts, arrival_ms, duration)`; payloads are irrelevant to placement.
    type P = (u16, u32, u32, u64);

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Ev {
        F(u64, u64),
        G(u64, u64, GapCause),
    }
    use Ev::{F, G};
    use GapCause::{Drift, Dtx, Loss, Pause};

    fn run(cfg: &TimelineConfig, segments: &[(u64, &[P])]) -> (Vec<Ev>, TimelineReport) {
        run_drifting(cfg, 0.0, segments)
    }

    fn run_drifting(
        cfg: &TimelineConfig,
        drift_ppm: f64,
        segments: &[(u64, &[P])],
    ) -> (Vec<Ev>, TimelineReport) {
        let mut events = Vec::new();
        let mut sink = |e: AudioEvent<'_>| {
            events.push(match e {
                AudioEvent::Frame { pts, duration, .. } => F(pts, duration),
                AudioEvent::Fill {
                    pts,
                    duration,
                    cause,
                } => G(pts, duration, cause),
            });
            Ok::<_, ()>(())
        };
        let mut tl = AudioTimeline::new(cfg.clone());
        for &(offset, packets) in segments {
            tl.begin_drifting_segment(offset, drift_ppm, &mut sink)
                .expect("sink");
            for &(seq, timestamp, arrival_ms, duration) in packets {
                let p = AudioPacket {
                    seq,
                    timestamp,
                    arrival_ms,
                    duration,
                    payload: &[],
                };
                tl.push(p, &mut sink).expect("sink");
            }
        }
        let report = tl.finish(&mut sink).expect("sink");
        (events, report)
    }

    fn opus() -> TimelineConfig {
        TimelineConfig::new(48_000, 48_000)
    }

    /// Packets of `dur` samples from `seq0`/`ts0`, arriving on time.
    fn steady(seq0: u16, ts0: u32, n: u16, dur: u32) -> Vec<P> {
        (0..n)
            .map(|i| {
                let ts = ts0.wrapping_add(u32::from(i) * dur);
                let ms = u32::from(i) * dur / 48;
                (seq0.wrapping_add(i), ts, ms, u64::from(dur))
            })
            .collect()
    }

    #[test]
    fn a_sequence_numbering_that_restarts_keeps_every_packet_on_the_timeline() {
        // 50 packets, then the sender's numbering jumps back by 20000 while timestamps go on.
        let mut packets = steady(30_000, 1000, 50, 960);
        let tail = steady(10_000, 1000 + 50 * 960, 50, 960);
        packets.extend(tail.iter().map(|&(seq, ts, ms, d)| (seq, ts, ms + 1000, d)));
        let (events, report) = run(&opus(), &[(0, &packets)]);
        let frames: Vec<_> = events.iter().filter(|e| matches!(e, F(..))).collect();
        assert_eq!(
            frames.len(),
            100,
            "no packet of the new numbering is dropped as late"
        );
        assert_eq!(events.last(), Some(&F(99 * 960, 960)));
        assert_eq!((report.resets, report.late, report.packets_lost), (1, 0, 0));
    }

    /// Talk for 1 s (50 packets), a DTX pause of 1 s, talk for 1 s.
    fn talk_pause_talk() -> Vec<P> {
        let mut packets = steady(100, 0, 50, 960);
        packets.extend(steady(150, 96_000, 50, 960));
        packets
    }

    #[test]
    fn drift_is_made_up_inside_holes_or_at_10_ms_owed_without_one() {
        struct Case {
            name: &'static str,
            drift_ppm: f64,
            fill_gaps: bool,
            packets: Vec<P>,
            /// Events that must appear, in order, among all events.
            expect: Vec<Ev>,
            /// `(frames, drift_corrected, drift_dropped, end)`
            counters: (u64, i64, u64, u64),
        }
        let cases = [
            Case {
                name: "a slow sender clock lengthens the DTX hole by what it owes (2 s at 1 %)",
                drift_ppm: 10_000.0,
                fill_gaps: true,
                packets: talk_pause_talk(),
                expect: vec![G(48_000, 48_960, Dtx), F(96_960, 960)],
                counters: (100, 960, 0, 144_960),
            },
            Case {
                name: "a fast sender clock shortens the hole",
                drift_ppm: -10_000.0,
                fill_gaps: true,
                packets: talk_pause_talk(),
                expect: vec![G(48_000, 47_040, Dtx), F(95_040, 960)],
                counters: (100, -960, 0, 144_000 - 960),
            },
            Case {
                name: "a loss hole absorbs what is owed (-394 after 41 frames at -1 %)",
                drift_ppm: -10_000.0,
                fill_gaps: true,
                packets: {
                    let mut v = steady(0, 0, 60, 960);
                    v.remove(40);
                    v
                },
                expect: vec![
                    F(39 * 960, 960),
                    G(40 * 960, 566, Loss),
                    F(41 * 960 - 394, 960),
                ],
                counters: (59, -394, 0, 60 * 960 - 394),
            },
            Case {
                name: "continuous speech on a slow clock gets 20 ms of fill at 10 ms owed (1 s), \
                       running 10 ms ahead after it, and again 2 s later",
                drift_ppm: 10_000.0,
                fill_gaps: true,
                packets: steady(0, 0, 250, 960),
                expect: vec![F(49 * 960, 960), G(50 * 960, 960, Drift), F(51 * 960, 960)],
                counters: (250, 1920, 0, 252 * 960),
            },
            Case {
                name: "continuous speech on a fast clock loses a frame at 10 ms owed, and \
                       another 2 s later",
                drift_ppm: -10_000.0,
                fill_gaps: true,
                packets: steady(0, 0, 250, 960),
                expect: vec![F(49 * 960, 960), F(50 * 960, 960)],
                counters: (248, -1920, 2, 248 * 960),
            },
            Case {
                name: "without gap filling the output is not on the wall clock: no correction",
                drift_ppm: 10_000.0,
                fill_gaps: false,
                packets: talk_pause_talk(),
                expect: vec![G(48_000, 48_000, Dtx), F(96_000, 960)],
                counters: (100, 0, 0, 144_000),
            },
        ];
        for case in cases {
            let mut cfg = opus();
            cfg.fill_gaps = case.fill_gaps;
            let (events, report) = run_drifting(&cfg, case.drift_ppm, &[(0, &case.packets)]);
            let at = events
                .iter()
                .position(|e| Some(e) == case.expect.first())
                .unwrap_or_else(|| panic!("{}: {:?} missing", case.name, case.expect[0]));
            assert_eq!(
                events.get(at..at + case.expect.len()),
                Some(&case.expect[..]),
                "{}",
                case.name
            );
            assert_eq!(
                (
                    report.frames,
                    report.drift_corrected,
                    report.drift_dropped,
                    report.end
                ),
                case.counters,
                "{}",
                case.name
            );
        }
    }

    #[test]
    fn a_few_stragglers_far_behind_are_late_not_a_restart() {
        let mut packets = steady(30_000, 1000, 50, 960);
        packets.insert(30, (10_000, 1000, 600, 960));
        packets.insert(31, (10_001, 1960, 600, 960));
        let (events, report) = run(&opus(), &[(0, &packets)]);
        assert_eq!(events.iter().filter(|e| matches!(e, F(..))).count(), 50);
        assert_eq!((report.resets, report.late), (0, 2));
    }

    #[test]
    #[allow(clippy::too_many_lines)] // one table of cases reads best in one piece
    fn placement_cases() {
        struct Case {
            name: &'static str,
            cfg: TimelineConfig,
            segments: Vec<(u64, Vec<P>)>,
            want: Vec<Ev>,
            /// `(end, resets, packets_lost, duplicates, overlap_dropped)`
            counters: (u64, u64, u64, u64, u64),
        }
        let no_dtx = TimelineConfig {
            fix_dtx: false,
            ..opus()
        };
        let no_gaps = TimelineConfig {
            fill_gaps: false,
            ..opus()
        };
        let cases = vec![
            Case {
                name: "contiguous packets follow each other without fill",
                cfg: opus(),
                segments: vec![(0, steady(100, 5_000, 3, 960))],
                want: vec![F(0, 960), F(960, 960), F(1_920, 960)],
                counters: (2_880, 0, 0, 0, 0),
            },
            Case {
                name: "a 2 s timestamp jump with contiguous seq is filled as DTX",
                cfg: opus(),
                segments: vec![(0, vec![(1, 0, 0, 960), (2, 960 + 96_000, 2_020, 960)])],
                want: vec![F(0, 960), G(960, 96_000, Dtx), F(96_960, 960)],
                counters: (97_920, 0, 0, 0, 0),
            },
            Case {
                name: "missing sequence numbers make the hole a loss",
                cfg: opus(),
                segments: vec![(0, vec![(1, 0, 0, 960), (4, 2_880, 60, 960)])],
                want: vec![F(0, 960), G(960, 1_920, Loss), F(2_880, 960)],
                counters: (3_840, 0, 2, 0, 0),
            },
            Case {
                name: "fix_dtx off closes DTX holes up",
                cfg: no_dtx.clone(),
                segments: vec![(
                    0,
                    vec![
                        (1, 0, 0, 960),
                        (2, 96_960, 2_020, 960),
                        (3, 97_920, 2_040, 960),
                    ],
                )],
                want: vec![F(0, 960), F(960, 960), F(1_920, 960)],
                counters: (2_880, 0, 0, 0, 0),
            },
            Case {
                name: "fix_dtx off still fills losses",
                cfg: no_dtx,
                segments: vec![(0, vec![(1, 0, 0, 960), (3, 1_920, 40, 960)])],
                want: vec![F(0, 960), G(960, 960, Loss), F(1_920, 960)],
                counters: (2_880, 0, 1, 0, 0),
            },
            Case {
                name: "fill_gaps off closes losses up but fills DTX",
                cfg: no_gaps.clone(),
                segments: vec![(
                    0,
                    vec![(1, 0, 0, 960), (3, 1_920, 40, 960), (4, 3_840, 80, 960)],
                )],
                want: vec![F(0, 960), F(960, 960), G(1_920, 960, Dtx), F(2_880, 960)],
                counters: (3_840, 0, 1, 0, 0),
            },
            Case {
                name: "10, 20, 40 and 60 ms packets are placed by their own durations",
                cfg: opus(),
                segments: vec![(
                    0,
                    vec![
                        (1, 0, 0, 480),
                        (2, 480, 10, 960),
                        (3, 1_440, 30, 1_920),
                        (4, 3_360, 70, 2_880),
                    ],
                )],
                want: vec![F(0, 480), F(480, 960), F(1_440, 1_920), F(3_360, 2_880)],
                counters: (6_240, 0, 0, 0, 0),
            },
            Case {
                name: "sequence and timestamp wraps are seamless",
                cfg: opus(),
                segments: vec![(0, steady(65_534, u32::MAX - 959, 4, 960))],
                want: vec![F(0, 960), F(960, 960), F(1_920, 960), F(2_880, 960)],
                counters: (3_840, 0, 0, 0, 0),
            },
            Case {
                name: "reordered and duplicated packets come out once, in order",
                cfg: opus(),
                segments: vec![(
                    0,
                    vec![
                        (1, 0, 0, 960),
                        (3, 1_920, 40, 960),
                        (2, 960, 41, 960),
                        (3, 1_920, 42, 960),
                        (4, 2_880, 60, 960),
                    ],
                )],
                want: vec![F(0, 960), F(960, 960), F(1_920, 960), F(2_880, 960)],
                counters: (3_840, 0, 0, 1, 0),
            },
            Case {
                name: "a timestamp reset is re-anchored on arrival time",
                cfg: opus(),
                segments: vec![(
                    0,
                    vec![
                        (1, 1_000_000, 0, 960),
                        (2, 1_000_960, 20, 960),
                        (3, 7, 40, 960),
                        (4, 967, 60, 960),
                    ],
                )],
                want: vec![F(0, 960), F(960, 960), F(1_920, 960), F(2_880, 960)],
                counters: (3_840, 1, 0, 0, 0),
            },
            Case {
                name: "a forward leap of 12 h within 20 ms of arrival is a reset, not 12 h of fill",
                cfg: opus(),
                segments: vec![(0, vec![(1, 0, 0, 960), (2, 960 + 48_000 * 43_200, 20, 960)])],
                want: vec![F(0, 960), F(960, 960)],
                counters: (1_920, 1, 0, 0, 0),
            },
            Case {
                name: "a packet entirely inside written time is dropped, a partial one pushed",
                cfg: opus(),
                segments: vec![(0, vec![(1, 0, 0, 960), (2, 0, 20, 960), (3, 480, 40, 960)])],
                want: vec![F(0, 960), F(960, 960)],
                counters: (1_920, 0, 0, 0, 1),
            },
            Case {
                name: "segments sit at their offsets with the pause between filled",
                cfg: opus(),
                segments: vec![
                    (0, steady(1, 0, 2, 960)),
                    (48_000, steady(9_000, 123_456, 2, 960)),
                ],
                want: vec![
                    F(0, 960),
                    F(960, 960),
                    G(1_920, 46_080, Pause),
                    F(48_000, 960),
                    F(48_960, 960),
                ],
                counters: (49_920, 0, 0, 0, 0),
            },
            Case {
                name: "fill_gaps off closes the pause between segments",
                cfg: no_gaps,
                segments: vec![
                    (0, steady(1, 0, 1, 960)),
                    (48_000, steady(9_000, 5, 1, 960)),
                ],
                want: vec![F(0, 960), F(960, 960)],
                counters: (1_920, 0, 0, 0, 0),
            },
            Case {
                name: "a first segment with an offset starts with a pause",
                cfg: opus(),
                segments: vec![(4_800, steady(1, 0, 1, 960))],
                want: vec![G(0, 4_800, Pause), F(4_800, 960)],
                counters: (5_760, 0, 0, 0, 0),
            },
            Case {
                name: "G.722 timestamps count at 8 kHz while samples run at 16 kHz",
                cfg: TimelineConfig::new(8_000, 16_000),
                segments: vec![(
                    0,
                    vec![(1, 0, 0, 320), (2, 160, 20, 320), (3, 800, 100, 320)],
                )],
                want: vec![F(0, 320), F(320, 320), G(640, 960, Dtx), F(1_600, 320)],
                counters: (1_920, 0, 0, 0, 0),
            },
        ];
        for case in cases {
            let segments: Vec<(u64, &[P])> = case
                .segments
                .iter()
                .map(|(o, p)| (*o, p.as_slice()))
                .collect();
            let (events, report) = run(&case.cfg, &segments);
            assert_eq!(events, case.want, "{}", case.name);
            let counters = (
                report.end,
                report.resets,
                report.packets_lost,
                report.duplicates,
                report.overlap_dropped,
            );
            assert_eq!(counters, case.counters, "{}: counters", case.name);
        }
    }

    #[test]
    fn a_three_hour_dtx_pause_is_one_exact_fill() {
        let hours3 = 3 * 3_600 * 48_000;
        let packets = [(1, 0, 0, 960), (2, 960 + hours3, 10_800_020, 960)];
        let (events, report) = run(&opus(), &[(0, &packets)]);
        assert_eq!(
            events,
            [
                F(0, 960),
                G(960, u64::from(hours3), Dtx),
                F(960 + u64::from(hours3), 960)
            ]
        );
        assert_eq!(report.resets, 0);
    }

    proptest::proptest! {
        #[test]
        fn shuffles_and_duplicates_within_the_window_keep_the_span(
            n in 2usize..200,
            durs in proptest::collection::vec(proptest::sample::select(vec![480u32, 960, 1_920, 2_880]), 200),
            swaps in proptest::collection::vec((0usize..200, 0usize..8), 0..8),
            dups in proptest::collection::vec(0usize..200, 0..20),
            seq0 in proptest::prelude::any::<u16>(),
            ts0 in proptest::prelude::any::<u32>(),
        ) {
            let mut ts = ts0;
            let mut packets: Vec<P> = (0..n)
                .map(|i| {
                    let p = (seq0.wrapping_add(i as u16), ts, i as u32 * 20, u64::from(durs[i]));
                    ts = ts.wrapping_add(durs[i]);
                    p
                })
                .collect();
            let span: u64 = packets.iter().map(|p| p.3).sum();
            // Displace packets by less than the window and repeat a few.
            for (at, by) in swaps {
                let a = at % n;
                let b = (a + by).min(n - 1);
                packets.swap(a, b);
            }
            for d in dups {
                let p = packets[d % n];
                packets.insert((d % n + 3).min(packets.len()), p);
            }
            let (events, report) = run(&opus(), &[(0, &packets)]);
            let mut end = 0;
            for e in &events {
                let (pts, dur) = match *e { F(p, d) | G(p, d, _) => (p, d) };
                proptest::prop_assert_eq!(pts, end, "events are contiguous and monotonic");
                end = pts + dur;
            }
            proptest::prop_assert_eq!(end, span);
            proptest::prop_assert_eq!(report.frames, n as u64);
        }
    }
}
