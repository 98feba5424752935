//! Per-stream receive statistics.
//!
//! [`StreamStats`] is the plain result a caller sees for one SSRC: counts, loss, reordering,
//! RFC 3550 interarrival jitter and the first/last sequence numbers and timestamps. It is built
//! incrementally by a [`StreamTracker`], which owns the stream's sequence and timestamp
//! unwrappers and its reorder buffer and is fed one packet at a time in arrival order. Extended
//! values follow the [`crate::seq`] convention (the first cycle is numbered 1).

use crate::reorder::{PushOutcome, ReorderBuffer};
use crate::seq::{SeqNo, SeqUnwrapper, TsUnwrapper};

/// Receive statistics of one RTP stream (one SSRC).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StreamStats {
    /// Synchronisation source.
    pub ssrc: u32,
    /// Payload type of the first packet.
    pub payload_type: u8,
    /// RTP clock rate, when known from the configuration.
    pub clock_rate: Option<u32>,
    /// RTP packets seen for this SSRC, duplicates and padding-only ones included.
    pub packets: u64,
    /// Payload bytes (padding excluded) of those packets.
    pub bytes: u64,
    /// Sequence numbers from `first_seq` to `last_seq`.
    pub expected: u64,
    /// Sequence numbers in that range never received, neither directly nor by retransmission.
    pub lost: u64,
    /// Sequence numbers missing from the stream but delivered by an RTX retransmission.
    pub recovered_rtx: u64,
    /// Packets whose sequence number had already been received (retransmissions included).
    pub duplicates: u64,
    /// Packets that arrived after one with a higher sequence number but in time to be reordered
    /// (retransmissions not included).
    pub reordered: u64,
    /// Packets that arrived after the reorder window had given up on them (retransmissions not
    /// included).
    pub late: u64,
    /// Packets that carried only padding (e.g. bandwidth probes).
    pub padding_only: u64,
    /// RFC 3550 interarrival jitter in timestamp units (0 without a clock rate).
    pub jitter: f64,
    /// The same jitter in milliseconds, when the clock rate is known.
    pub jitter_ms: Option<f64>,
    /// Arrival of the first packet, ms since the capture start.
    pub first_arrival_ms: u32,
    /// Arrival of the last packet, ms since the capture start.
    pub last_arrival_ms: u32,
    /// First extended sequence number in order.
    pub first_seq: u64,
    /// Highest extended sequence number.
    pub last_seq: u64,
    /// Extended timestamp of the first packet.
    pub first_rtp_ts: u64,
    /// Highest extended timestamp.
    pub last_rtp_ts: u64,
    /// Timestamp of the first packet as sent.
    pub first_rtp_ts_raw: u32,
    /// Packets with the marker bit set.
    pub marker_count: u64,
    /// RTCP sender reports received for this SSRC.
    pub sender_reports: u64,
    /// Whether this stream is an RTX (RFC 4588) retransmission stream.
    pub is_rtx: bool,
}

/// One received RTP packet as the tracker needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PacketInfo {
    /// Arrival, ms since the capture start.
    pub arrival_ms: u32,
    /// Sequence number as sent.
    pub seq: u16,
    /// Timestamp as sent.
    pub timestamp: u32,
    /// Marker bit.
    pub marker: bool,
    /// Payload bytes, padding excluded.
    pub payload_len: usize,
    /// Whether the packet carried only padding.
    pub padding_only: bool,
}

/// RFC 3550 appendix A.8 interarrival jitter.
#[derive(Debug, Clone, Default)]
struct Jitter {
    last_transit: Option<f64>,
    value: f64,
}

impl Jitter {
    /// Both arguments are in timestamp units; only their differences matter.
    fn update(&mut self, arrival: f64, timestamp: f64) {
        let transit = arrival - timestamp;
        if let Some(last) = self.last_transit {
            let d = (transit - last).abs();
            self.value += (d - self.value) / 16.0;
        }
        self.last_transit = Some(transit);
    }
}

/// Builds the [`StreamStats`] of one stream packet by packet.
#[derive(Debug, Clone)]
pub struct StreamTracker {
    stats: StreamStats,
    seq: SeqUnwrapper,
    ts: TsUnwrapper,
    reorder: ReorderBuffer<()>,
    jitter: Jitter,
    /// Retransmissions the reorder buffer counted as reordered or late; a repair is neither.
    rtx_out_of_order: (u64, u64),
}

impl StreamTracker {
    /// A tracker for `ssrc` whose reorder buffer waits `reorder_window` packets for a gap.
    #[must_use]
    pub fn new(
        ssrc: u32,
        payload_type: u8,
        clock_rate: Option<u32>,
        is_rtx: bool,
        reorder_window: usize,
    ) -> Self {
        Self {
            stats: StreamStats {
                ssrc,
                payload_type,
                clock_rate: clock_rate.filter(|&c| c > 0),
                is_rtx,
                ..StreamStats::default()
            },
            seq: SeqUnwrapper::new(),
            ts: TsUnwrapper::new(),
            reorder: ReorderBuffer::new(reorder_window),
            jitter: Jitter::default(),
            rtx_out_of_order: (0, 0),
        }
    }

    /// The statistics so far (loss figures settle only in [`finish`](Self::finish)).
    #[must_use]
    pub fn stats(&self) -> &StreamStats {
        &self.stats
    }

    /// Accounts one packet of this stream, in arrival order.
    pub fn on_packet(&mut self, p: &PacketInfo) -> (SeqNo, PushOutcome) {
        let first = self.stats.packets == 0;
        let s = &mut self.stats;
        s.packets += 1;
        s.bytes += p.payload_len as u64;
        s.marker_count += u64::from(p.marker);
        s.padding_only += u64::from(p.padding_only);
        if first {
            s.first_arrival_ms = p.arrival_ms;
            s.first_rtp_ts_raw = p.timestamp;
        }
        s.last_arrival_ms = p.arrival_ms;

        let seq = self.seq.unwrap(p.seq);
        let ts = self.ts.unwrap(p.timestamp);
        if first {
            s.first_rtp_ts = ts.0;
        }
        let outcome = self.reorder.push_drained(seq, ());

        let fresh = matches!(outcome, PushOutcome::Accepted | PushOutcome::Reordered);
        if let (true, false, Some(clock)) = (fresh, p.padding_only, s.clock_rate) {
            let arrival = f64::from(p.arrival_ms) * f64::from(clock) / 1000.0;
            self.jitter.update(arrival, ts.0 as f64);
        }
        (seq, outcome)
    }

    /// Accounts a retransmission of sequence number `seq` of this stream that arrived on an RTX
    /// stream. Returns the outcome and whether it filled a gap.
    pub fn on_retransmission(&mut self, seq: u16) -> (PushOutcome, bool) {
        let seq = self.seq.unwrap(seq);
        let outcome = self.reorder.push_drained(seq, ());
        match outcome {
            PushOutcome::Reordered => self.rtx_out_of_order.0 += 1,
            PushOutcome::TooLate { .. } => self.rtx_out_of_order.1 += 1,
            PushOutcome::Accepted | PushOutcome::Duplicate => {}
        }
        let recovered = matches!(
            outcome,
            PushOutcome::Accepted
                | PushOutcome::Reordered
                | PushOutcome::TooLate {
                    was_counted_lost: true
                }
        );
        if recovered {
            self.stats.recovered_rtx += 1;
        }
        (outcome, recovered)
    }

    /// Settles the reorder buffer and returns the final statistics.
    #[must_use]
    pub fn finish(mut self) -> StreamStats {
        for _ in self.reorder.flush() {}
        let s = &mut self.stats;
        s.lost = self.reorder.lost();
        s.duplicates = self.reorder.duplicates();
        s.reordered = self
            .reorder
            .reordered()
            .saturating_sub(self.rtx_out_of_order.0);
        s.late = self.reorder.late().saturating_sub(self.rtx_out_of_order.1);
        if let (Some(first), Some(last)) = (self.reorder.first_released(), self.seq.highest()) {
            s.first_seq = first.0;
            s.last_seq = last.0;
            s.expected = last.distance_from(first) + 1;
        }
        s.last_rtp_ts = self.ts.highest().map_or(0, |t| t.0);
        s.jitter = self.jitter.value;
        s.jitter_ms = s
            .clock_rate
            .map(|c| self.jitter.value * 1000.0 / f64::from(c));
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(arrival_ms: u32, seq: u16, timestamp: u32) -> PacketInfo {
        PacketInfo {
            arrival_ms,
            seq,
            timestamp,
            payload_len: 100,
            ..PacketInfo::default()
        }
    }

    #[test]
    fn tracker_cases() {
        struct Case {
            name: &'static str,
            packets: Vec<PacketInfo>,
            /// (packets, expected, lost, duplicates, reordered, late)
            counts: (u64, u64, u64, u64, u64, u64),
            jitter: f64,
        }
        let steady: Vec<_> = (0..50u16)
            .map(|i| packet(u32::from(i) * 20, i, u32::from(i) * 960))
            .collect();
        let cases = [
            Case {
                name: "steady 20 ms packets have no loss and no jitter",
                packets: steady.clone(),
                counts: (50, 50, 0, 0, 0, 0),
                jitter: 0.0,
            },
            Case {
                name: "a missing packet is lost",
                packets: steady.iter().copied().filter(|p| p.seq != 7).collect(),
                counts: (49, 50, 1, 0, 0, 0),
                jitter: 0.0,
            },
            Case {
                name: "a repeated packet is a duplicate, not extra",
                packets: [&steady[..3], &steady[2..]].concat(),
                counts: (51, 50, 0, 1, 0, 0),
                jitter: 0.0,
            },
            Case {
                name: "one packet delayed by 20 ms adds jitter per RFC 3550",
                packets: vec![packet(0, 0, 0), packet(40, 1, 960), packet(40, 2, 1920)],
                counts: (3, 3, 0, 0, 0, 0),
                // D = 960 then -960: J = 960/16, then J += (960 - J)/16.
                jitter: 60.0 + (960.0 - 60.0) / 16.0,
            },
        ];
        for case in cases {
            let mut t = StreamTracker::new(7, 111, Some(48_000), false, 16);
            for p in &case.packets {
                t.on_packet(p);
            }
            let s = t.finish();
            let counts = (
                s.packets,
                s.expected,
                s.lost,
                s.duplicates,
                s.reordered,
                s.late,
            );
            assert_eq!(counts, case.counts, "{}", case.name);
            assert!(
                (s.jitter - case.jitter).abs() < 1e-9,
                "{}: jitter {}",
                case.name,
                s.jitter
            );
            let want_ms = case.jitter / 48.0;
            assert!(
                s.jitter_ms.is_some_and(|j| (j - want_ms).abs() < 1e-9),
                "{}",
                case.name
            );
        }
    }

    #[test]
    fn retransmission_fills_a_gap_once() {
        let mut t = StreamTracker::new(7, 96, None, false, 4);
        for seq in [0u16, 1, 3, 4] {
            t.on_packet(&packet(0, seq, 0));
        }
        assert!(t.on_retransmission(2).1, "the missing packet is recovered");
        assert!(!t.on_retransmission(2).1, "a second copy is a duplicate");
        let s = t.finish();
        assert_eq!((s.lost, s.recovered_rtx, s.duplicates), (0, 1, 1));
        assert_eq!(s.jitter_ms, None, "no clock rate, no jitter");
    }
}
