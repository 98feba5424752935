//! Rollover of RTP sequence numbers and timestamps.
//!
//! RTP carries 16-bit sequence numbers and 32-bit timestamps that wrap within minutes or hours.
//! This module turns them into monotonic 64-bit values ([`SeqNo`], [`ExtTimestamp`]) in exactly
//! one place, [`extend`]. Each wire value is extended against the *highest* value seen so far,
//! picking the candidate closest to it, so a packet that was sent just before a wrap but arrives
//! just after it lands in the previous cycle. The first cycle is numbered 1, not 0: extended
//! values carry one cycle of headroom (`65536` for sequence numbers, `2^32` for timestamps) so a
//! late packet from before the first wrap still has somewhere to go instead of becoming negative.
//! Only differences between extended values carry meaning; [`SeqNo::wire`] recovers the raw value.

use std::fmt;

/// An extended RTP sequence number: `cycle * 65536 + seq`, with the first cycle numbered 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SeqNo(pub u64);

impl SeqNo {
    /// The 16-bit value as it appeared on the wire.
    #[must_use]
    pub fn wire(self) -> u16 {
        self.0 as u16
    }

    /// The number of sequence numbers from `earlier` up to `self` (0 if `earlier` is not earlier).
    #[must_use]
    pub fn distance_from(self, earlier: SeqNo) -> u64 {
        self.0.saturating_sub(earlier.0)
    }

    /// The following sequence number.
    #[must_use]
    pub fn next(self) -> SeqNo {
        SeqNo(self.0.saturating_add(1))
    }
}

impl fmt::Display for SeqNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (cycle {})", self.wire(), self.0 >> 16)
    }
}

/// An extended RTP timestamp: `cycle * 2^32 + ts`, with the first cycle numbered 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ExtTimestamp(pub u64);

impl ExtTimestamp {
    /// The 32-bit value as it appeared on the wire.
    #[must_use]
    pub fn wire(self) -> u32 {
        self.0 as u32
    }
}

/// Extends a `bits`-wide wire `value` against `highest`, the highest extended value so far.
///
/// The result is the extended value congruent to `value` that is closest to `highest`; a
/// distance of exactly half the range counts as backwards, matching the RFC 3550 rule that only
/// deltas below half the range move forward. Saturates at 0 rather than underflowing, which the
/// one-cycle headroom makes unreachable in practice.
#[must_use]
pub fn extend(highest: u64, value: u64, bits: u32) -> u64 {
    debug_assert!(
        bits > 0 && bits < 64,
        "extend is only used for 16 and 32 bit fields"
    );
    let range = 1u64 << bits;
    let mask = range - 1;
    let half = range >> 1;
    // Forward distance from highest to value, modulo the range.
    let forward = value.wrapping_sub(highest) & mask;
    if forward < half {
        highest.saturating_add(forward)
    } else {
        highest.saturating_sub(range - forward)
    }
}

/// Extends a 32-bit RTP timestamp `raw` against a reference timestamp of the same stream: the
/// extended value congruent to `raw` nearest `reference` (whose wire value is `reference_raw`).
/// A distance of exactly half the range counts as backwards, as in [`extend`].
///
/// This is the call timeline's form (see `timeline::unwrap_rtp_timestamps`): signed, without the
/// one-cycle headroom, and against any reference, e.g. the packet that arrived with a Sender Report.
#[must_use]
pub fn extend_ts_near(raw: u32, reference: i64, reference_raw: u32) -> i64 {
    // The wrapping difference read as signed is the shortest way round.
    reference.saturating_add(i64::from(raw.wrapping_sub(reference_raw) as i32))
}

/// Extends 16-bit sequence numbers of one stream, in arrival order.
#[derive(Debug, Clone, Default)]
pub struct SeqUnwrapper {
    highest: Option<u64>,
}

impl SeqUnwrapper {
    /// A fresh unwrapper; the first value it sees lands in cycle 1.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Extends `seq` and remembers it if it is the new highest.
    pub fn unwrap(&mut self, seq: u16) -> SeqNo {
        let ext = self.peek(seq);
        if self.highest.is_none_or(|h| ext.0 > h) {
            self.highest = Some(ext.0);
        }
        ext
    }

    /// Extends `seq` without changing the state, e.g. for the original sequence number that a
    /// retransmission carries.
    #[must_use]
    pub fn peek(&self, seq: u16) -> SeqNo {
        match self.highest {
            Some(h) => SeqNo(extend(h, u64::from(seq), 16)),
            None => SeqNo((1 << 16) | u64::from(seq)),
        }
    }

    /// The highest extended sequence number seen so far.
    #[must_use]
    pub fn highest(&self) -> Option<SeqNo> {
        self.highest.map(SeqNo)
    }
}

/// Extends 32-bit RTP timestamps of one stream, in arrival order.
#[derive(Debug, Clone, Default)]
pub struct TsUnwrapper {
    highest: Option<u64>,
}

impl TsUnwrapper {
    /// A fresh unwrapper; the first value it sees lands in cycle 1.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Extends `ts` and remembers it if it is the new highest.
    pub fn unwrap(&mut self, ts: u32) -> ExtTimestamp {
        let ext = match self.highest {
            Some(h) => extend(h, u64::from(ts), 32),
            None => (1 << 32) | u64::from(ts),
        };
        if self.highest.is_none_or(|h| ext > h) {
            self.highest = Some(ext);
        }
        ExtTimestamp(ext)
    }

    /// The highest extended timestamp seen so far.
    #[must_use]
    pub fn highest(&self) -> Option<ExtTimestamp> {
        self.highest.map(ExtTimestamp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const C1: u64 = 1 << 16;

    #[test]
    fn seq_unwrap_cases() {
        struct Case {
            name: &'static str,
            input: &'static [u16],
            want: &'static [u64],
        }
        let cases = [
            Case {
                name: "first packet lands in cycle 1",
                input: &[1000],
                want: &[C1 + 1000],
            },
            Case {
                name: "forward wrap 0xFFFF to 0 moves to the next cycle",
                input: &[0xFFFE, 0xFFFF, 0, 1],
                want: &[C1 + 0xFFFE, C1 + 0xFFFF, 2 * C1, 2 * C1 + 1],
            },
            Case {
                name: "late 0xFFFF after 0 stays in the previous cycle",
                input: &[0xFFFE, 0, 0xFFFF, 1],
                want: &[C1 + 0xFFFE, 2 * C1, C1 + 0xFFFF, 2 * C1 + 1],
            },
            Case {
                name: "late packet from before the first wrap uses the headroom cycle",
                input: &[2, 65535, 3],
                want: &[C1 + 2, 65535, C1 + 3],
            },
            Case {
                name: "start just before the wrap",
                input: &[65534, 65535, 0],
                want: &[C1 + 65534, C1 + 65535, 2 * C1],
            },
            Case {
                name: "forward jump below half the range moves forward",
                input: &[100, 100 + 32767],
                want: &[C1 + 100, C1 + 100 + 32767],
            },
            Case {
                name: "jump of exactly half the range counts as late",
                input: &[40000, 40000 - 32768],
                want: &[C1 + 40000, C1 + 40000 - 32768],
            },
            Case {
                name: "large forward jumps across several wraps accumulate cycles",
                input: &[0, 30000, 60000, 24464, 54464],
                want: &[C1, C1 + 30000, C1 + 60000, 2 * C1 + 24464, 2 * C1 + 54464],
            },
            Case {
                name: "late packet does not lower the reference",
                input: &[10, 5, 0xFFFF, 11],
                want: &[C1 + 10, C1 + 5, 0xFFFF, C1 + 11],
            },
        ];
        for case in cases {
            let mut u = SeqUnwrapper::new();
            let got: Vec<u64> = case.input.iter().map(|&s| u.unwrap(s).0).collect();
            assert_eq!(got, case.want, "{}", case.name);
            for (ext, raw) in got.iter().zip(case.input) {
                assert_eq!(
                    SeqNo(*ext).wire(),
                    *raw,
                    "{}: wire value survives",
                    case.name
                );
            }
        }
    }

    #[test]
    fn ts_unwrap_cases() {
        const T1: u64 = 1 << 32;
        struct Case {
            name: &'static str,
            input: &'static [u32],
            want: &'static [u64],
        }
        let cases = [
            Case {
                name: "forward wrap moves to the next cycle",
                input: &[0xFFFF_FF00, 0x100],
                want: &[T1 + 0xFFFF_FF00, 2 * T1 + 0x100],
            },
            Case {
                name: "late timestamp after the wrap stays in the previous cycle",
                input: &[0xFFFF_FF00, 0x100, 0xFFFF_FFF0],
                want: &[T1 + 0xFFFF_FF00, 2 * T1 + 0x100, T1 + 0xFFFF_FFF0],
            },
            Case {
                name: "late timestamp from before the first wrap uses the headroom cycle",
                input: &[10, 0xFFFF_FFF0],
                want: &[T1 + 10, 0xFFFF_FFF0],
            },
            Case {
                name: "large forward jump below half the range moves forward",
                input: &[0, 0x7FFF_FFFF],
                want: &[T1, T1 + 0x7FFF_FFFF],
            },
        ];
        for case in cases {
            let mut u = TsUnwrapper::new();
            let got: Vec<u64> = case.input.iter().map(|&t| u.unwrap(t).0).collect();
            assert_eq!(got, case.want, "{}", case.name);
        }
    }

    #[test]
    fn extend_never_underflows_without_headroom() {
        assert_eq!(extend(3, 0xFFFF, 16), 0, "saturates at zero");
        assert_eq!(
            extend(u64::MAX - 1, 5, 16),
            u64::MAX,
            "saturates at the top"
        );
    }

    #[test]
    fn extend_ts_near_cases() {
        const WRAP: i64 = 1 << 32;
        let cases: [(&str, u32, i64, u32, i64); 6] = [
            ("the reference itself", 7, 7, 7, 7),
            ("a step forward", 1_000, 10, 10, 1_000),
            ("a step back below zero", 0xFFFF_FFF0, 5, 5, -16),
            (
                "forward across a wrap",
                0x100,
                0xFFFF_FF00,
                0xFFFF_FF00,
                WRAP + 0x100,
            ),
            (
                "against a reference already a cycle up",
                0xFFFF_FFF0,
                WRAP + 0x100,
                0x100,
                0xFFFF_FFF0,
            ),
            (
                "exactly half the range counts as backwards",
                1 << 31,
                0,
                0,
                -(1 << 31),
            ),
        ];
        for (name, raw, reference, reference_raw, want) in cases {
            assert_eq!(
                extend_ts_near(raw, reference, reference_raw),
                want,
                "{name}"
            );
        }
    }
}
