//! Per-stream reorder buffer.
//!
//! A pure `push`/`pop` state machine keyed by extended sequence number: packets go in in arrival
//! order, [`ReorderBuffer::pop`] hands them back in sequence order. A missing packet is waited
//! for until the span between it and the newest packet reaches the window (measured in packets);
//! then the buffer gives up, releases the oldest held packet and reports how many sequence numbers
//! it skipped. A short history of released and skipped numbers lets a later arrival be told apart
//! as a duplicate or as a packet that came too late (which then no longer counts as lost). Memory
//! is bounded by the window: at most `window + 1` packets are held at any time when `pop` is called
//! after each `push`.

use std::collections::VecDeque;

use crate::seq::SeqNo;

/// The smallest history (in sequence numbers) kept to classify packets behind the release point.
const MIN_HISTORY: usize = 1024;
/// The largest window honoured: waiting for more than half the 16-bit sequence space would let
/// the wait outlast what the sequence numbers can tell apart.
pub const MAX_WINDOW: usize = 1 << 15;

/// What happened to a pushed packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushOutcome {
    /// Held, and newer than everything pushed before.
    Accepted,
    /// Held, but arrived after a packet with a higher sequence number.
    Reordered,
    /// The same sequence number is already held or was already released; the item was dropped.
    Duplicate,
    /// Its place in the sequence was already passed; the item was dropped. `was_counted_lost` says
    /// whether the buffer had skipped it as lost (it now no longer counts as lost), as opposed to a
    /// packet from before the first release or from beyond the history.
    TooLate {
        /// Whether the packet had been reported as part of a gap.
        was_counted_lost: bool,
    },
}

/// A packet released in sequence order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Popped<T> {
    /// Its extended sequence number.
    pub seq: SeqNo,
    /// What was pushed with it.
    pub item: T,
    /// How many sequence numbers right before it were skipped as lost.
    pub lost_before: u64,
}

/// Reorders the packets of one stream within a window measured in packets.
#[derive(Debug, Clone)]
pub struct ReorderBuffer<T> {
    window: u64,
    /// Held packets, sorted by sequence number, all at or after `next`.
    held: VecDeque<(SeqNo, T)>,
    /// The next sequence number to release; `None` before the first push.
    next: Option<SeqNo>,
    /// The first released sequence number, once anything was released.
    base: Option<SeqNo>,
    highest: Option<SeqNo>,
    /// One bit per sequence number behind `next` (modulo its length): did it arrive?
    history: Vec<u64>,
    history_len: u64,
    duplicates: u64,
    late: u64,
    reordered: u64,
    lost: u64,
    released: u64,
}

impl<T> ReorderBuffer<T> {
    /// A buffer that waits for a missing packet until `max_window` newer ones have arrived.
    /// The window is clamped to `1..=MAX_WINDOW`.
    #[must_use]
    pub fn new(max_window: usize) -> Self {
        let window = max_window.clamp(1, MAX_WINDOW);
        let history_len = window.max(MIN_HISTORY).next_power_of_two();
        Self {
            window: window as u64,
            held: VecDeque::with_capacity(window + 2),
            next: None,
            base: None,
            highest: None,
            history: vec![0; history_len / 64],
            history_len: history_len as u64,
            duplicates: 0,
            late: 0,
            reordered: 0,
            lost: 0,
            released: 0,
        }
    }

    /// Offers a packet; it is held (to be released by [`pop`](Self::pop)) or dropped.
    pub fn push(&mut self, seq: SeqNo, item: T) -> PushOutcome {
        let next = match self.next {
            None => {
                self.next = Some(seq);
                seq
            }
            // Nothing released yet: an earlier packet simply moves the start back.
            Some(next) if seq < next && self.base.is_none() => {
                self.next = Some(seq);
                seq
            }
            Some(next) => next,
        };
        if seq < next {
            return self.push_behind(seq);
        }
        let outcome = match self.highest {
            Some(h) if seq < h => PushOutcome::Reordered,
            Some(h) if seq == h => PushOutcome::Duplicate,
            _ => PushOutcome::Accepted,
        };
        match outcome {
            PushOutcome::Accepted => {
                self.highest = Some(seq);
                self.held.push_back((seq, item));
            }
            _ => match self.held.binary_search_by_key(&seq, |(s, _)| *s) {
                Ok(_) => {
                    self.duplicates += 1;
                    return PushOutcome::Duplicate;
                }
                Err(at) => {
                    self.reordered += 1;
                    self.held.insert(at, (seq, item));
                    return PushOutcome::Reordered;
                }
            },
        }
        outcome
    }

    /// Classifies a packet behind the release point using the history bits.
    fn push_behind(&mut self, seq: SeqNo) -> PushOutcome {
        let next = self
            .next
            .expect("push_behind is only called once next is set");
        if next.distance_from(seq) > self.history_len {
            self.late += 1;
            return PushOutcome::TooLate {
                was_counted_lost: false,
            };
        }
        if self.arrived(seq) {
            self.duplicates += 1;
            return PushOutcome::Duplicate;
        }
        self.mark(seq, true);
        self.late += 1;
        // Numbers from the first release on were either released or skipped; this one was skipped.
        let was_counted_lost = self.base.is_some_and(|base| seq >= base);
        if was_counted_lost {
            self.lost = self.lost.saturating_sub(1);
        }
        PushOutcome::TooLate { was_counted_lost }
    }

    /// Releases the next packet in sequence order, if it is held, or the oldest held packet once
    /// the window is exceeded (reporting the gap before it).
    pub fn pop(&mut self) -> Option<Popped<T>> {
        let front = self.held.front()?.0;
        let next = self.next?;
        let span = self.highest.map_or(0, |h| h.distance_from(next));
        if front == next || span >= self.window {
            self.release_front()
        } else {
            None
        }
    }

    /// [`push`](Self::push), then every release [`pop`](Self::pop) allows, the released items
    /// dropped: for a caller that only counts (the analysis). The packet the buffer waits for,
    /// with nothing held, is released at once without passing through the queue: the common case
    /// of packets in order, with the same outcome, counters and history as the long way.
    pub fn push_drained(&mut self, seq: SeqNo, item: T) -> PushOutcome {
        if self.release_in_order(seq) {
            return PushOutcome::Accepted;
        }
        let outcome = self.push(seq, item);
        while self.pop().is_some() {}
        outcome
    }

    /// The fast path of packets in order: when `seq` is the packet the buffer waits for, nothing
    /// is held and nothing at or above `seq` was pushed, notes it as pushed and released at once
    /// and returns true — the outcome (accepted, no gap before it), counters and history of
    /// [`push`](Self::push) then [`pop`](Self::pop), without the item passing through the
    /// queue. Otherwise changes nothing and returns false: push the packet the long way.
    pub fn release_in_order(&mut self, seq: SeqNo) -> bool {
        if !(self.held.is_empty() && self.next == Some(seq) && self.highest.is_none_or(|h| h < seq))
        {
            return false;
        }
        // What `push` (accepted: nothing at or above it yet) and `release_front` (no gap) would
        // do.
        self.highest = Some(seq);
        self.mark(seq, true);
        self.released += 1;
        self.base.get_or_insert(seq);
        self.next = Some(seq.next());
        true
    }

    /// Releases the oldest held packet regardless of the window.
    pub fn pop_forced(&mut self) -> Option<Popped<T>> {
        self.release_front()
    }

    /// Drains every held packet in sequence order, reporting the gaps between them.
    pub fn flush(&mut self) -> impl Iterator<Item = Popped<T>> + '_ {
        std::iter::from_fn(move || self.release_front())
    }

    fn release_front(&mut self) -> Option<Popped<T>> {
        let (seq, item) = self.held.pop_front()?;
        let next = self.next.unwrap_or(seq);
        let gap = seq.distance_from(next);
        // Only the last `history_len` skipped numbers can ever be looked up again.
        let first_recorded = seq.0 - gap.min(self.history_len);
        for s in first_recorded..seq.0 {
            self.mark(SeqNo(s), false);
        }
        self.mark(seq, true);
        self.lost += gap;
        self.released += 1;
        self.base.get_or_insert(seq);
        self.next = Some(seq.next());
        Some(Popped {
            seq,
            item,
            lost_before: gap,
        })
    }

    fn bit(&self, seq: SeqNo) -> (usize, u64) {
        let index = seq.0 & (self.history_len - 1);
        ((index / 64) as usize, 1 << (index % 64))
    }

    fn arrived(&self, seq: SeqNo) -> bool {
        let (word, mask) = self.bit(seq);
        self.history.get(word).is_some_and(|w| w & mask != 0)
    }

    fn mark(&mut self, seq: SeqNo, arrived: bool) {
        let (word, mask) = self.bit(seq);
        if let Some(w) = self.history.get_mut(word) {
            if arrived {
                *w |= mask;
            } else {
                *w &= !mask;
            }
        }
    }

    /// Packets currently held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.held.len()
    }

    /// Whether no packet is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// The first released sequence number.
    #[must_use]
    pub fn first_released(&self) -> Option<SeqNo> {
        self.base
    }

    /// The highest sequence number pushed so far.
    #[must_use]
    pub fn highest(&self) -> Option<SeqNo> {
        self.highest
    }

    /// Packets dropped because their sequence number was already held or released.
    #[must_use]
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// Packets dropped because their place in the sequence was already passed.
    #[must_use]
    pub fn late(&self) -> u64 {
        self.late
    }

    /// Packets held after a newer one had arrived.
    #[must_use]
    pub fn reordered(&self) -> u64 {
        self.reordered
    }

    /// Sequence numbers skipped and not seen since.
    #[must_use]
    pub fn lost(&self) -> u64 {
        self.lost
    }

    /// Packets released in order.
    #[must_use]
    pub fn released(&self) -> u64 {
        self.released
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy)]
    enum Step {
        Push(u64, PushOutcome),
        /// Pop until `None`, expecting these `(seq, lost_before)` pairs.
        Pop(&'static [(u64, u64)]),
        Flush(&'static [(u64, u64)]),
    }
    use PushOutcome::{Accepted, Duplicate, Reordered, TooLate};
    use Step::{Flush, Pop, Push};

    struct Case {
        name: &'static str,
        window: usize,
        steps: &'static [Step],
        /// (lost, duplicates, late, reordered) at the end.
        counters: (u64, u64, u64, u64),
    }

    const LATE_SKIPPED: PushOutcome = TooLate {
        was_counted_lost: true,
    };
    const LATE_UNKNOWN: PushOutcome = TooLate {
        was_counted_lost: false,
    };

    #[test]
    #[allow(clippy::too_many_lines)] // one table of cases reads best in one piece
    fn reorder_buffer_cases() {
        let cases = [
            Case {
                name: "in-order packets are released immediately",
                window: 4,
                steps: &[
                    Push(10, Accepted),
                    Pop(&[(10, 0)]),
                    Push(11, Accepted),
                    Pop(&[(11, 0)]),
                ],
                counters: (0, 0, 0, 0),
            },
            Case {
                name: "a reordered packet fills the hole and releases what waited behind it",
                window: 4,
                steps: &[
                    Push(10, Accepted),
                    Pop(&[(10, 0)]),
                    Push(12, Accepted),
                    Pop(&[]),
                    Push(11, Reordered),
                    Pop(&[(11, 0), (12, 0)]),
                ],
                counters: (0, 0, 0, 1),
            },
            Case {
                name: "a duplicate of a held packet is dropped",
                window: 4,
                steps: &[
                    Push(10, Accepted),
                    Pop(&[(10, 0)]),
                    Push(12, Accepted),
                    Push(12, Duplicate),
                    Push(13, Accepted),
                    Push(12, Duplicate),
                ],
                counters: (0, 2, 0, 0),
            },
            Case {
                name: "a duplicate of a released packet is dropped",
                window: 4,
                steps: &[
                    Push(10, Accepted),
                    Pop(&[(10, 0)]),
                    Push(11, Accepted),
                    Pop(&[(11, 0)]),
                    Push(10, Duplicate),
                ],
                counters: (0, 1, 0, 0),
            },
            Case {
                name: "the gap is released once the window is exceeded",
                window: 3,
                steps: &[
                    Push(10, Accepted),
                    Pop(&[(10, 0)]),
                    Push(13, Accepted),
                    Push(12, Reordered),
                    Pop(&[]),
                    Push(14, Accepted),
                    Pop(&[(12, 1), (13, 0), (14, 0)]),
                ],
                counters: (1, 0, 0, 1),
            },
            Case {
                name: "a packet arriving after its gap was released is late and no longer lost",
                window: 2,
                steps: &[
                    Push(10, Accepted),
                    Pop(&[(10, 0)]),
                    Push(12, Accepted),
                    Push(13, Accepted),
                    Pop(&[(12, 1), (13, 0)]),
                    Push(11, LATE_SKIPPED),
                    Push(11, Duplicate),
                ],
                counters: (0, 1, 1, 0),
            },
            Case {
                name: "a packet from before the first release is late but was never lost",
                window: 2,
                steps: &[
                    Push(10, Accepted),
                    Pop(&[(10, 0)]),
                    Push(9, LATE_UNKNOWN),
                    Push(9, Duplicate),
                ],
                counters: (0, 1, 1, 0),
            },
            Case {
                name: "an earlier packet before any release moves the start back",
                window: 4,
                steps: &[
                    Push(10, Accepted),
                    Push(9, Reordered),
                    Pop(&[(9, 0), (10, 0)]),
                ],
                counters: (0, 0, 0, 1),
            },
            Case {
                name: "flush drains everything in order reporting the gaps",
                window: 100,
                steps: &[
                    Push(10, Accepted),
                    Pop(&[(10, 0)]),
                    Push(15, Accepted),
                    Push(12, Reordered),
                    Pop(&[]),
                    Flush(&[(12, 1), (15, 2)]),
                ],
                counters: (3, 0, 0, 1),
            },
            Case {
                name: "a jump far beyond the window is released with the whole gap",
                window: 4,
                steps: &[
                    Push(10, Accepted),
                    Pop(&[(10, 0)]),
                    Push(30_010, Accepted),
                    Pop(&[(30_010, 29_999)]),
                    Push(30_011, Accepted),
                    Pop(&[(30_011, 0)]),
                ],
                counters: (29_999, 0, 0, 0),
            },
        ];
        for case in cases {
            let mut buf = ReorderBuffer::new(case.window);
            for (i, step) in case.steps.iter().enumerate() {
                match *step {
                    Push(seq, want) => {
                        let got = buf.push(SeqNo(seq), seq);
                        assert_eq!(got, want, "{}: step {i} push {seq}", case.name);
                    }
                    Pop(want) | Flush(want) => {
                        let got: Vec<(u64, u64)> = if matches!(step, Flush(_)) {
                            buf.flush().map(|p| (p.seq.0, p.lost_before)).collect()
                        } else {
                            std::iter::from_fn(|| buf.pop())
                                .map(|p| {
                                    assert_eq!(p.item, p.seq.0, "{}: item follows seq", case.name);
                                    (p.seq.0, p.lost_before)
                                })
                                .collect()
                        };
                        assert_eq!(got, want, "{}: step {i}", case.name);
                    }
                }
            }
            let counters = (buf.lost(), buf.duplicates(), buf.late(), buf.reordered());
            assert_eq!(counters, case.counters, "{}: counters", case.name);
        }
    }

    proptest::proptest! {
        #[test]
        fn releases_are_in_order_and_bounded(
            window in 0usize..40,
            seqs in proptest::collection::vec(0u64..300, 0..400),
        ) {
            let mut buf = ReorderBuffer::new(window);
            let mut released = Vec::new();
            for s in seqs {
                buf.push(SeqNo(s), ());
                while let Some(p) = buf.pop() {
                    released.push(p.seq);
                }
                proptest::prop_assert!(buf.len() <= window.max(1) + 1);
            }
            released.extend(buf.flush().map(|p| p.seq));
            proptest::prop_assert!(released.windows(2).all(|w| w[0] < w[1]), "strictly increasing");
        }
    }

    proptest::proptest! {
        #[test]
        fn push_drained_is_push_then_pop_until_none(
            window in 0usize..40,
            steps in proptest::collection::vec(-3i64..5, 0..400),
            random in proptest::collection::vec(0u64..300, 0..50),
        ) {
            // Runs in order with small jumps back and forth (the fast path), then any numbers.
            let mut at = 100i64;
            let walk = steps.iter().map(|&d| {
                at = (at + d).max(0);
                at as u64
            });
            let seqs: Vec<u64> = walk.chain(random).collect();
            let (mut long, mut short) = (ReorderBuffer::new(window), ReorderBuffer::new(window));
            for s in seqs {
                let want = long.push(SeqNo(s), ());
                while long.pop().is_some() {}
                proptest::prop_assert_eq!(short.push_drained(SeqNo(s), ()), want);
                proptest::prop_assert_eq!(format!("{short:?}"), format!("{long:?}"));
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn release_in_order_releases_what_push_then_pop_would(
            window in 0usize..40,
            steps in proptest::collection::vec(-3i64..5, 0..400),
            random in proptest::collection::vec(0u64..300, 0..50),
        ) {
            // The timeline's fast path: a packet `release_in_order` takes is placed at once;
            // any other is pushed and the releases popped. Same releases, items and state.
            let mut at = 100i64;
            let walk = steps.iter().map(|&d| {
                at = (at + d).max(0);
                at as u64
            });
            let seqs: Vec<u64> = walk.chain(random).collect();
            let (mut long, mut fast) = (ReorderBuffer::new(window), ReorderBuffer::new(window));
            let (mut long_out, mut fast_out) = (Vec::new(), Vec::new());
            for s in seqs {
                long.push(SeqNo(s), s);
                while let Some(p) = long.pop() {
                    long_out.push((p.seq, p.item, p.lost_before));
                }
                if fast.release_in_order(SeqNo(s)) {
                    fast_out.push((SeqNo(s), s, 0));
                } else {
                    fast.push(SeqNo(s), s);
                    while let Some(p) = fast.pop() {
                        fast_out.push((p.seq, p.item, p.lost_before));
                    }
                }
                proptest::prop_assert_eq!(&fast_out, &long_out);
                proptest::prop_assert_eq!(format!("{fast:?}"), format!("{long:?}"));
            }
        }
    }

    #[test]
    fn oversized_window_is_clamped_instead_of_overflowing() {
        let mut buf = ReorderBuffer::new(usize::MAX);
        assert_eq!(buf.push(SeqNo(1), ()), Accepted);
        assert_eq!(buf.pop().map(|p| p.seq), Some(SeqNo(1)));
    }

    #[test]
    fn memory_stays_bounded_by_the_window() {
        let mut buf = ReorderBuffer::new(8);
        buf.push(SeqNo(0), ());
        while buf.pop().is_some() {}
        // Every other packet missing: the buffer must keep giving up on holes.
        for s in (2..10_000).step_by(2) {
            buf.push(SeqNo(s), ());
            while buf.pop().is_some() {}
            assert!(buf.len() <= 9, "held {} packets", buf.len());
        }
    }
}
