//! The per-packet view of a capture: one row per RTP record in file order, laid out as columns
//! for cheap hand-over to array libraries (the call timeline reads a stream's timestamps and
//! arrivals from them).

use std::collections::HashMap;

use crate::rtp::{looks_like_rtcp, FIXED_HEADER_LEN};
use crate::rtpdump::{Record, RtpdumpError, RtpdumpReader, RECORD_HEADER_LEN};
use crate::seq::SeqUnwrapper;

/// Per-packet columns of a capture, one row per RTP record in file order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CaptureColumns {
    /// Arrival, ms since the capture start.
    pub arrival_ms: Vec<u32>,
    /// Synchronisation source.
    pub ssrc: Vec<u32>,
    /// Payload type.
    pub payload_type: Vec<u8>,
    /// Sequence number as sent.
    pub seq: Vec<u16>,
    /// Sequence number extended per SSRC in arrival order (first cycle numbered 1).
    pub ext_seq: Vec<u64>,
    /// Timestamp as sent.
    pub timestamp: Vec<u32>,
    /// Marker bit.
    pub marker: Vec<bool>,
    /// Payload bytes, padding excluded (for truncated records, as on the wire).
    pub payload_len: Vec<u32>,
}

/// The RTP packets of a capture as columns, one row per RTP record in file order (records cut by
/// the capture included when their header is intact; RTCP and garbage skipped). Reading stops
/// quietly at a cut-off tail; [`crate::analyze_capture`] reports it.
pub fn capture_columns(data: &[u8]) -> Result<CaptureColumns, RtpdumpError> {
    let reader = RtpdumpReader::new(data)?;
    // A first pass over the record headers alone is cheap and sizes every column exactly.
    let rows = reader
        .clone()
        .filter_map(Result::ok)
        .filter(|r| !r.is_rtcp())
        .count();
    let mut cols = CaptureColumns {
        arrival_ms: Vec::with_capacity(rows),
        ssrc: Vec::with_capacity(rows),
        payload_type: Vec::with_capacity(rows),
        seq: Vec::with_capacity(rows),
        ext_seq: Vec::with_capacity(rows),
        timestamp: Vec::with_capacity(rows),
        marker: Vec::with_capacity(rows),
        payload_len: Vec::with_capacity(rows),
    };
    let mut unwrappers: HashMap<u32, SeqUnwrapper> = HashMap::new();
    let mut last: Option<(u32, SeqUnwrapper)> = None;
    for record in reader.map_while(Result::ok) {
        if record.is_rtcp() || looks_like_rtcp(record.data) {
            continue;
        }
        let Ok((packet, payload_len)) = record.rtp() else {
            continue;
        };
        // Keep the current stream's unwrapper out of the map while packets keep coming for it.
        let unwrapper = match &mut last {
            Some((ssrc, u)) if *ssrc == packet.ssrc => u,
            slot => {
                if let Some((ssrc, u)) = slot.take() {
                    unwrappers.insert(ssrc, u);
                }
                let u = unwrappers.remove(&packet.ssrc).unwrap_or_default();
                &mut slot.insert((packet.ssrc, u)).1
            }
        };
        cols.arrival_ms.push(record.offset_ms);
        cols.ssrc.push(packet.ssrc);
        cols.payload_type.push(packet.payload_type);
        cols.seq.push(packet.sequence_number);
        cols.ext_seq
            .push(unwrapper.unwrap(packet.sequence_number).0);
        cols.timestamp.push(packet.timestamp);
        cols.marker.push(packet.marker);
        cols.payload_len
            .push(u32::try_from(payload_len).unwrap_or(u32::MAX));
    }
    Ok(cols)
}

/// Arrival gaps shorter than this (or than 3 packet intervals) are ordinary packet spacing.
pub const GAP_MS: f64 = 100.0;

/// Why no packet of a stream arrived for a while.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArrivalCause {
    /// Sequence numbers run on across the gap: the sender sent nothing (DTX, a muted or
    /// paused sender).
    Silence,
    /// Packets are missing (found in sequence order, so one lost packet inside continuous
    /// media counts as well as a burst).
    Loss,
}

/// A stretch without packets of a stream, on the recorder's clock (Unix ms).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ArrivalGap {
    /// Last arrival before the gap (for a loss, the earlier of the two packets around it).
    pub start_unix_ms: f64,
    /// First arrival after it.
    pub end_unix_ms: f64,
    /// Silence or loss.
    pub cause: ArrivalCause,
}

/// What the call timeline and the gap policy read of one capture, in one pass over its packet
/// columns: the media stream's RTP timestamps and arrivals, and the arrival gaps of its SSRC.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StreamColumns {
    /// RTP timestamps as sent of the packets of the stream (SSRC and payload type), in
    /// arrival (file) order.
    pub timestamps: Vec<u32>,
    /// Their arrivals on the recorder's clock, Unix ms.
    pub arrival_unix_ms: Vec<f64>,
    /// The SSRC's arrival gaps (every payload type), by start time.
    pub gaps: Vec<ArrivalGap>,
}

/// What a stream read needs of one RTP record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PacketRow {
    /// Arrival, ms since the capture start.
    pub(crate) arrival_ms: u32,
    /// Synchronisation source.
    pub(crate) ssrc: u32,
    /// Timestamp as sent.
    pub(crate) timestamp: u32,
    /// Sequence number as sent.
    pub(crate) seq: u16,
    /// Payload type.
    pub(crate) payload_type: u8,
}

impl PacketRow {
    /// The row of `record` when [`capture_columns`] counts it (RTP, not RTCP, with an intact
    /// header).
    pub(crate) fn of(record: &Record<'_>) -> Option<Self> {
        if record.is_rtcp() || looks_like_rtcp(record.data) {
            return None;
        }
        let (packet, _) = record.rtp().ok()?;
        Some(Self {
            arrival_ms: record.offset_ms,
            ssrc: packet.ssrc,
            timestamp: packet.timestamp,
            seq: packet.sequence_number,
            payload_type: packet.payload_type,
        })
    }
}

/// One SSRC's packets as a stream read needs them (11 bytes a packet), in file order.
#[derive(Debug, Clone, Default)]
struct SsrcRows {
    arrival_ms: Vec<u32>,
    timestamp: Vec<u32>,
    seq: Vec<u16>,
    payload_type: Vec<u8>,
}

/// The stream read of the analysis pass ([`crate::analyze_capture_stream`]): every RTP record
/// [`capture_columns`] counts, kept per SSRC (by the analysis' stream index) until the pass knows
/// which stream the track is, so the call timeline and the gaps need no second pass.
#[derive(Debug, Clone, Default)]
pub(crate) struct StreamCollector {
    by_stream: Vec<SsrcRows>,
    /// Rows the capture can hold at most: the room the first streams' columns get at once.
    room: usize,
}

/// The most rows a stream's columns get room for at once (46 MB of address space, a day of
/// Opus): a longer capture's columns grow as they fill, so a huge capture asks for no more
/// address space than it uses.
const MAX_ROOM: usize = 1 << 22;

/// Streams whose columns get room for the whole capture when first seen (a capture's media
/// stream and its retransmissions); any further ones grow as they fill.
const ROOMY_STREAMS: usize = 2;

impl StreamCollector {
    /// A collector for a capture of `bytes` bytes. Its first streams' columns get room for as
    /// many rows as the capture can hold (a record with an RTP header takes at least 20 bytes),
    /// up to [`MAX_ROOM`]: memory only addressed, not touched, until rows fill it, so the
    /// columns never move as they grow (each move copied them into fresh pages).
    pub(crate) fn for_capture(bytes: usize) -> Self {
        Self {
            by_stream: Vec::new(),
            room: (bytes / (RECORD_HEADER_LEN + FIXED_HEADER_LEN)).min(MAX_ROOM),
        }
    }

    /// Keeps `row`, of the analysis' stream `index` (one per SSRC, numbered as first seen).
    pub(crate) fn push(&mut self, index: usize, row: PacketRow) {
        if index >= self.by_stream.len() {
            let room = self.room;
            self.by_stream.resize_with(index + 1, || SsrcRows {
                arrival_ms: Vec::with_capacity(room),
                timestamp: Vec::with_capacity(room),
                seq: Vec::with_capacity(room),
                payload_type: Vec::with_capacity(room),
            });
            if self.by_stream.len() >= ROOMY_STREAMS {
                self.room = 0;
            }
        }
        let Some(rows) = self.by_stream.get_mut(index) else {
            return;
        };
        rows.arrival_ms.push(row.arrival_ms);
        rows.timestamp.push(row.timestamp);
        rows.seq.push(row.seq);
        rows.payload_type.push(row.payload_type);
    }

    /// [`stream_columns`] of the stream `index` (its SSRC) with payload type `payload_type`
    /// (any when None): the same values, from the rows kept.
    pub(crate) fn stream(
        mut self,
        index: usize,
        payload_type: Option<u8>,
        start_unix_ms: f64,
    ) -> StreamColumns {
        let Some(rows) = self.by_stream.get_mut(index).map(std::mem::take) else {
            return StreamColumns::default();
        };
        drop(self); // the other SSRCs' rows are not needed any more
        let mut unwrapper = SeqUnwrapper::default();
        let ext: Vec<u64> = rows.seq.iter().map(|&s| unwrapper.unwrap(s).0).collect();
        let gaps = arrival_gaps(&rows.arrival_ms, &ext, start_unix_ms);
        drop(ext);
        let every = payload_type.is_none_or(|pt| rows.payload_type.iter().all(|&p| p == pt));
        let (timestamps, arrival_unix_ms) = if every {
            let arrival = rows.arrival_ms.iter();
            let mut timestamps = rows.timestamp;
            timestamps.shrink_to_fit(); // the room not filled goes back
            (
                timestamps,
                arrival.map(|&a| f64::from(a) + start_unix_ms).collect(),
            )
        } else {
            rows.payload_type
                .iter()
                .zip(rows.timestamp.iter().zip(&rows.arrival_ms))
                .filter(|(&p, _)| payload_type == Some(p))
                .map(|(_, (&ts, &a))| (ts, f64::from(a) + start_unix_ms))
                .unzip()
        };
        StreamColumns {
            timestamps,
            arrival_unix_ms,
            gaps,
        }
    }
}

/// The stream `ssrc` (every SSRC when None) with payload type `payload_type` (any when None)
/// of a capture whose header says it started at `start_unix_ms`: see [`StreamColumns`].
pub fn stream_columns(
    data: &[u8],
    ssrc: Option<u32>,
    payload_type: Option<u8>,
    start_unix_ms: f64,
) -> Result<StreamColumns, RtpdumpError> {
    let reader = RtpdumpReader::new(data)?;
    let mut b = StreamBuilder::new(ssrc, payload_type, start_unix_ms);
    for record in reader.map_while(Result::ok) {
        if let Some(row) = PacketRow::of(&record) {
            b.push(row);
        }
    }
    Ok(b.finish())
}

/// A [`StreamColumns`] being read, row by row.
struct StreamBuilder {
    cols: StreamColumns,
    ssrc: Option<u32>,
    payload_type: Option<u8>,
    start_unix_ms: f64,
    /// The SSRC's arrivals (ms) and extended sequence numbers, for the gaps.
    gap_arrival_ms: Vec<u32>,
    gap_seq: Vec<u64>,
    /// Sequence numbers are unwrapped per SSRC in file order, as `capture_columns` does.
    unwrappers: HashMap<u32, SeqUnwrapper>,
    one: SeqUnwrapper, // the SSRC's, when one is asked for
}

impl StreamBuilder {
    fn new(ssrc: Option<u32>, payload_type: Option<u8>, start_unix_ms: f64) -> Self {
        Self {
            cols: StreamColumns::default(),
            ssrc,
            payload_type,
            start_unix_ms,
            gap_arrival_ms: Vec::new(),
            gap_seq: Vec::new(),
            unwrappers: HashMap::new(),
            one: SeqUnwrapper::default(),
        }
    }

    fn push(&mut self, row: PacketRow) {
        if self.ssrc.is_some_and(|s| s != row.ssrc) {
            return;
        }
        let unwrapper = if self.ssrc.is_some() {
            &mut self.one
        } else {
            self.unwrappers.entry(row.ssrc).or_default()
        };
        let ext = unwrapper.unwrap(row.seq).0;
        self.gap_arrival_ms.push(row.arrival_ms);
        self.gap_seq.push(ext);
        if self.ssrc.is_some() && self.payload_type.is_none_or(|pt| row.payload_type == pt) {
            self.cols.timestamps.push(row.timestamp);
            self.cols
                .arrival_unix_ms
                .push(f64::from(row.arrival_ms) + self.start_unix_ms);
        }
    }

    fn finish(mut self) -> StreamColumns {
        self.cols.gaps = arrival_gaps(&self.gap_arrival_ms, &self.gap_seq, self.start_unix_ms);
        self.cols
    }
}

/// Stretches with no packet among the rows (`arrival_ms` after the capture start and extended
/// sequence numbers `seq`, in file order) for longer than [`GAP_MS`] or 3 packet intervals (the
/// median spacing: a 5 fps screen share spaces packets further apart than speech does), silences
/// and losses, by start time.
///
/// The rule, as the `NumPy` code it replaced computed it: the rows are taken in arrival order
/// (stable: file order among equal arrivals); a step longer than the limit whose sequence
/// numbers run on (a step of at most 1: reordering can make it 0 or negative) is a silence; a
/// jump of more than 1 between neighbours in sequence order (stable) is a loss, from the
/// earlier to the later of the two arrivals. Rows that already come in arrival and in sequence
/// order (the usual capture) are read in place, without the sorts.
fn arrival_gaps(arrival_ms: &[u32], seq: &[u64], start_unix_ms: f64) -> Vec<ArrivalGap> {
    debug_assert_eq!(arrival_ms.len(), seq.len());
    if arrival_ms.is_sorted() {
        return gaps_in_arrival_order(arrival_ms, seq, start_unix_ms);
    }
    let mut rows: Vec<(u32, u64)> = arrival_ms
        .iter()
        .copied()
        .zip(seq.iter().copied())
        .collect();
    rows.sort_by_key(|r| r.0); // stable: file order among equal arrivals
    let (arrival_ms, seq): (Vec<u32>, Vec<u64>) = rows.into_iter().unzip();
    gaps_in_arrival_order(&arrival_ms, &seq, start_unix_ms)
}

/// [`arrival_gaps`] of rows already in arrival order: one pass finds the silences that any
/// limit could keep (steps beyond [`GAP_MS`], which the limit never undercuts), the jumps
/// between neighbours (the losses, when the sequence numbers come in order too) and the
/// counts the limit needs.
// Extended sequence numbers stay far below 2^63 (2^16 per cycle, one cycle per wrap).
#[allow(clippy::cast_possible_wrap)]
fn gaps_in_arrival_order(arrival_ms: &[u32], seq: &[u64], start_unix_ms: f64) -> Vec<ArrivalGap> {
    let n = arrival_ms.len().min(seq.len());
    if n < 2 {
        return Vec::new();
    }
    let (arrival_ms, seq) = (&arrival_ms[..n], &seq[..n]);
    let at = |i: usize| f64::from(arrival_ms[i]) + start_unix_ms;
    let (mut positive, mut short) = (0usize, 0usize);
    let mut seq_in_order = true;
    let (mut silences, mut losses) = (Vec::new(), Vec::new());
    for k in 0..n - 1 {
        let (before, after) = (at(k), at(k + 1));
        let d = after - before;
        if d > 0.0 {
            positive += 1;
            // 3·d rounds monotonically in d, so the short steps are the smallest ones.
            short += usize::from(3.0 * d <= GAP_MS);
        }
        let step = seq[k + 1] as i64 - seq[k] as i64;
        seq_in_order &= step >= 0;
        if d > GAP_MS && step <= 1 {
            silences.push(ArrivalGap {
                start_unix_ms: before,
                end_unix_ms: after,
                cause: ArrivalCause::Silence,
            });
        } else if step > 1 {
            // Arrivals in order: the earlier arrival is `before`.
            losses.push(ArrivalGap {
                start_unix_ms: before.min(after),
                end_unix_ms: before.max(after),
                cause: ArrivalCause::Loss,
            });
        }
    }
    let limit = if positive == 0 || short > positive / 2 {
        // The median's upper middle value is short, and the median (that value, or the mean of
        // it and a smaller one) no larger: 3 × median ≤ GAP_MS.
        GAP_MS
    } else {
        let mut spaced: Vec<f64> = arrival_ms
            .windows(2)
            .map(|w| (f64::from(w[1]) + start_unix_ms) - (f64::from(w[0]) + start_unix_ms))
            .filter(|&d| d > 0.0)
            .collect();
        GAP_MS.max(3.0 * median(&mut spaced))
    };
    silences.retain(|g| g.end_unix_ms - g.start_unix_ms > limit);
    if !seq_in_order {
        losses.clear();
        for (i, j) in jumps_in_sequence_order(seq) {
            let (before, after) = (at(i), at(j));
            losses.push(ArrivalGap {
                start_unix_ms: before.min(after),
                end_unix_ms: before.max(after),
                cause: ArrivalCause::Loss,
            });
        }
    }
    let mut gaps = silences;
    gaps.append(&mut losses);
    gaps.sort_by(|a, b| a.start_unix_ms.total_cmp(&b.start_unix_ms)); // stable
    gaps
}

/// The rows (as `(i, j)` indices) on either side of each jump of more than 1 between
/// neighbours when the rows are put in sequence order, stable (equal numbers keep their row
/// order): `i` the last row of the lower number, `j` the first of the higher, jumps by the
/// lower number. Numbers spanning at most a few times the row count (reordering, not garbage)
/// are placed in a table by number, in one pass and without a sort.
// Extended sequence numbers stay far below 2^63 (2^16 per cycle, one cycle per wrap).
#[allow(clippy::cast_possible_wrap)]
fn jumps_in_sequence_order(seq: &[u64]) -> Vec<(usize, usize)> {
    let (Some(&lo), Some(&hi)) = (seq.iter().min(), seq.iter().max()) else {
        return Vec::new();
    };
    let span = (hi - lo).saturating_add(1);
    let mut jumps = Vec::new();
    let fits = |n: usize| u64::try_from(n).is_ok_and(|n| span <= 4 * n + 64);
    if fits(seq.len()) && u32::try_from(seq.len()).is_ok_and(|n| n < u32::MAX) {
        const NONE: u32 = u32::MAX;
        // Per number, its first and last row.
        let mut rows = vec![(NONE, NONE); span as usize];
        for (i, &s) in seq.iter().enumerate() {
            let slot = &mut rows[(s - lo) as usize];
            if slot.0 == NONE {
                slot.0 = i as u32;
            }
            slot.1 = i as u32;
        }
        let mut previous: Option<(usize, u32)> = None; // (number - lo, its last row)
        for (k, &(first, last)) in rows.iter().enumerate() {
            if first == NONE {
                continue;
            }
            if let Some((p, p_last)) = previous {
                if k - p > 1 {
                    jumps.push((p_last as usize, first as usize));
                }
            }
            previous = Some((k, last));
        }
        return jumps;
    }
    let mut by_seq: Vec<(i64, usize)> = seq
        .iter()
        .enumerate()
        .map(|(i, &s)| (s as i64, i))
        .collect();
    by_seq.sort_by_key(|p| p.0);
    for w in by_seq.windows(2) {
        if w[1].0 - w[0].0 > 1 {
            jumps.push((w[0].1, w[1].1));
        }
    }
    jumps
}

/// The median of finite values, the mean of the middle two for an even count (as `NumPy`), by
/// selection rather than a full sort.
fn median(values: &mut [f64]) -> f64 {
    let n = values.len();
    let (lower, upper, _) = values.select_nth_unstable_by(n / 2, f64::total_cmp);
    let upper = *upper;
    match lower.iter().copied().max_by(f64::total_cmp) {
        // Written out as NumPy computes it (`f64::midpoint` is newer than the MSRV).
        Some(below) if n % 2 == 0 => (below + upper) / 2.0,
        _ => upper,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::tests::{Capture, A, B};
    use crate::rtcp::write as rtcp_write;
    use proptest::prelude::*;

    #[test]
    fn columns_hold_one_row_per_rtp_record() {
        let mut sr = Vec::new();
        rtcp_write::sender_report(&mut sr, A, 0, 0, 0, 0);
        let input = Capture::new()
            .rtp(A, [65_535, 0])
            .raw(0, &sr)
            .raw(20, &[0x11; 20])
            .rtp(B, [7])
            .rtp(A, [1])
            .tail(&[0, 9])
            .0;
        let cols = capture_columns(&input).expect("valid header");
        assert_eq!(cols.ssrc, [A, A, B, A]);
        assert_eq!(cols.seq, [65_535, 0, 7, 1]);
        assert_eq!(
            cols.ext_seq,
            [0x1_FFFF, 0x2_0000, 0x1_0007, 0x2_0001],
            "per-SSRC rollover"
        );
        assert_eq!(cols.arrival_ms, [1_310_700, 0, 140, 20]);
        assert_eq!(cols.payload_type, [111; 4]);
        assert_eq!(cols.payload_len, [100; 4]);
        assert_eq!(cols.marker, [false; 4]);
        assert_eq!(cols.timestamp[1], 0);
    }

    /// `(arrival ms, ssrc, payload type, seq)` records into a capture.
    fn capture_of(records: &[(u32, u32, u8, u16)]) -> Vec<u8> {
        records
            .iter()
            .fold(Capture::new(), |c, &(ms, ssrc, pt, seq)| {
                c.packet(ms, ssrc, pt, seq, &[0xAB; 20], 0)
            })
            .0
    }

    /// 20 ms packets of `ssrc` with sequence numbers `seqs`, arriving at `seq * 20` ms.
    fn steady(ssrc: u32, seqs: impl IntoIterator<Item = u16>) -> Vec<(u32, u32, u8, u16)> {
        seqs.into_iter()
            .map(|s| (u32::from(s) * 20, ssrc, 111, s))
            .collect()
    }

    /// A case: its name, the records, the SSRC asked for and the gaps expected.
    type GapCase = (
        &'static str,
        Vec<(u32, u32, u8, u16)>,
        Option<u32>,
        Vec<(f64, f64, ArrivalCause)>,
    );

    #[test]
    fn arrival_gaps_tell_silence_from_loss() {
        use ArrivalCause::{Loss, Silence};
        let start = 1_000.0;
        let quiet_then_on = {
            // 0..=9, nothing sent for 1 s, then 10..=19 at 1.2 s: sequence numbers run on.
            let mut r = steady(A, 0..10);
            r.extend((10..20u16).map(|s| (1_200 + u32::from(s - 10) * 20, A, 111, s)));
            r
        };
        let cases: Vec<GapCase> = vec![
            (
                "steady packets leave no gap",
                steady(A, 0..50),
                Some(A),
                vec![],
            ),
            (
                "a pause with sequence numbers running on is a silence",
                quiet_then_on,
                Some(A),
                vec![(1_180.0, 2_200.0, Silence)],
            ),
            (
                "one lost packet inside steady media is a loss, however short",
                steady(A, (0..50).filter(|&s| s != 20)),
                Some(A),
                vec![(1_380.0, 1_420.0, Loss)],
            ),
            (
                "a burst lost over a long stretch is a loss, not also a silence",
                steady(A, (0..50).filter(|s| !(20..30).contains(s))),
                Some(A),
                vec![(1_380.0, 1_600.0, Loss)],
            ),
            (
                "another SSRC's packets do not fill the stream's gap",
                {
                    let mut r = steady(A, (0..50).filter(|s| !(20..30).contains(s)));
                    r.extend(steady(B, 20..30));
                    r
                },
                Some(A),
                vec![(1_380.0, 1_600.0, Loss)],
            ),
            ("one packet has no gaps", steady(A, [3]), Some(A), vec![]),
        ];
        for (name, records, ssrc, want) in cases {
            let got = stream_columns(&capture_of(&records), ssrc, None, start).expect(name);
            let got: Vec<_> = got
                .gaps
                .iter()
                .map(|g| (g.start_unix_ms, g.end_unix_ms, g.cause))
                .collect();
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn the_stream_is_its_ssrc_and_payload_type_in_arrival_order() {
        let records = [
            (0, A, 111, 1),
            (5, B, 111, 1),
            (20, A, 13, 2),
            (40, A, 111, 3),
        ];
        let input = capture_of(&records);
        let cols = stream_columns(&input, Some(A), Some(111), 500.0).expect("valid capture");
        assert_eq!(cols.timestamps, [960, 3 * 960], "A's payload type 111 only");
        assert_eq!(cols.arrival_unix_ms, [500.0, 540.0]);
        let any = stream_columns(&input, Some(A), None, 0.0).expect("valid capture");
        assert_eq!(any.timestamps.len(), 3, "every payload type of A");
        let none = stream_columns(&input, None, None, 0.0).expect("valid capture");
        assert!(none.timestamps.is_empty(), "no stream without an SSRC");
    }

    /// `(arrival ms, ssrc, payload type, seq, padding only)` records into a capture.
    fn capture_with_padding(records: &[(u32, u32, u8, u16, bool)]) -> Vec<u8> {
        records
            .iter()
            .fold(Capture::new(), |c, &(ms, ssrc, pt, seq, padding_only)| {
                if padding_only {
                    c.packet(ms, ssrc, pt, seq, &[], 8)
                } else {
                    c.packet(ms, ssrc, pt, seq, &[0xAB; 20], 0)
                }
            })
            .0
    }

    fn rtx_cfg() -> crate::AnalyzeConfig {
        crate::AnalyzeConfig {
            rtx_apt: vec![(97, 96)],
            clock_rates: vec![(96, 90_000), (97, 90_000), (111, 48_000)],
            ..crate::AnalyzeConfig::default()
        }
    }

    /// A case: its name, the capture, the analysis settings and the (SSRC, payload type) the
    /// track's stream is.
    type StreamCase = (
        &'static str,
        Vec<u8>,
        crate::AnalyzeConfig,
        (Option<u32>, Option<u8>),
    );

    #[test]
    fn the_analysis_pass_reads_the_tracks_stream_as_a_second_read_would() {
        let mut sr = Vec::new();
        rtcp_write::sender_report(&mut sr, A, 0, 0, 0, 0);
        let header_len = Capture::new().0.len();
        let with_sr_and_tail = {
            // A's media with a loss, a Sender Report, another SSRC, then a cut-off record.
            let mut input = capture_of(&steady(A, (0..60).filter(|s| !(20..25).contains(s))));
            let more = Capture::new().raw(0, &sr).rtp(B, [3, 9]).tail(&[0, 9]).0;
            input.extend_from_slice(&more[header_len..]);
            input
        };
        let reordered = {
            // Arrivals out of file order and sequence numbers out of arrival order, a wrap too.
            let mut r = steady(A, 0..40);
            r.swap(5, 9);
            r.swap(20, 21);
            r[30].0 = 2_000;
            r.extend(
                (65_530..=65_535)
                    .chain(0..6)
                    .map(|s| (2_100 + u32::from(s % 100), A, 111, s)),
            );
            capture_of(&r)
        };
        let mixed_payload_types = {
            let mut r = steady(A, 0..30);
            for row in r.iter_mut().step_by(3) {
                row.2 = 13; // comfort noise among the Opus packets: gaps keep it, columns do not
            }
            r.extend(steady(B, 0..10));
            capture_of(&r)
        };
        let rtx_only = capture_with_padding(&[
            (0, B, 97, 1, false),
            (20, B, 97, 2, false),
            (400, B, 97, 3, false),
        ]);
        let padding_only = capture_with_padding(&[
            (0, A, 96, 1, true),
            (20, A, 96, 2, true),
            (500, A, 96, 5, true),
        ]);
        let cases: Vec<StreamCase> = vec![
            (
                "the main SSRC among reports, another SSRC and a cut-off tail",
                with_sr_and_tail,
                crate::AnalyzeConfig::default(),
                (Some(A), Some(111)),
            ),
            (
                "reordered arrivals and sequence numbers across a wrap",
                reordered,
                crate::AnalyzeConfig::default(),
                (Some(A), Some(111)),
            ),
            (
                "a second payload type in the stream's SSRC",
                mixed_payload_types,
                crate::AnalyzeConfig::default(),
                (Some(A), Some(13)),
            ),
            (
                "an RTX stream only: no media",
                rtx_only,
                rtx_cfg(),
                (None, None),
            ),
            (
                "padding only: no media",
                padding_only,
                rtx_cfg(),
                (None, None),
            ),
            ("no packets", Capture::new().0, rtx_cfg(), (None, None)),
        ];
        for (name, input, cfg, want) in cases {
            let (report, stream) = crate::analyze_capture_stream(&input, &cfg).expect(name);
            assert_eq!(
                report,
                crate::analyze_capture(&input, &cfg).expect(name),
                "{name}"
            );
            let (ssrc, pt) = report.track_stream();
            assert_eq!((ssrc, pt), want, "{name}");
            let start = report.header.start_unix_us() as f64 / 1000.0;
            let read = stream_columns(&input, ssrc, pt, start).expect(name);
            assert_eq!(stream, read, "{name}");
        }
    }

    /// The gap rule as the `NumPy` code computed it, written out step by step: the reference the
    /// single-pass [`arrival_gaps`] is held to.
    fn reference_gaps(rows: &[(u32, u64)], start_unix_ms: f64) -> Vec<ArrivalGap> {
        let mut rows = rows.to_vec();
        rows.sort_by_key(|r| r.0);
        if rows.len() < 2 {
            return Vec::new();
        }
        let arrival: Vec<f64> = rows
            .iter()
            .map(|r| f64::from(r.0) + start_unix_ms)
            .collect();
        let seq: Vec<i64> = rows.iter().map(|r| r.1 as i64).collect();
        let d: Vec<f64> = arrival.windows(2).map(|w| w[1] - w[0]).collect();
        let mut spaced: Vec<f64> = d.iter().copied().filter(|&x| x > 0.0).collect();
        spaced.sort_by(f64::total_cmp);
        let limit = match spaced.len() {
            0 => GAP_MS,
            n if n % 2 == 0 => GAP_MS.max(3.0 * ((spaced[n / 2 - 1] + spaced[n / 2]) / 2.0)),
            n => GAP_MS.max(3.0 * spaced[n / 2]),
        };
        let mut gaps = Vec::new();
        for k in 0..d.len() {
            if d[k] > limit && seq[k + 1] - seq[k] <= 1 {
                gaps.push(ArrivalGap {
                    start_unix_ms: arrival[k],
                    end_unix_ms: arrival[k + 1],
                    cause: ArrivalCause::Silence,
                });
            }
        }
        let mut by_seq: Vec<usize> = (0..seq.len()).collect();
        by_seq.sort_by_key(|&i| seq[i]);
        for w in by_seq.windows(2) {
            if seq[w[1]] - seq[w[0]] > 1 {
                let (before, after) = (arrival[w[0]], arrival[w[1]]);
                gaps.push(ArrivalGap {
                    start_unix_ms: before.min(after),
                    end_unix_ms: before.max(after),
                    cause: ArrivalCause::Loss,
                });
            }
        }
        gaps.sort_by(|a, b| a.start_unix_ms.total_cmp(&b.start_unix_ms));
        gaps
    }

    /// Rows of one stream: steady or bursty spacing, pauses, losses, duplicates and reordering.
    fn stream_rows() -> impl Strategy<Value = Vec<(u32, u64)>> {
        proptest::collection::vec((0u32..4, 0u32..400, 0u64..4, any::<bool>()), 0..300).prop_map(
            |steps| {
                let (mut ms, mut seq) = (1_000u32, 10u64);
                let mut rows: Vec<(u32, u64)> = Vec::new();
                for (kind, pause, skip, swap) in steps {
                    ms += match kind {
                        0 => 0,
                        1 | 2 => 20,
                        _ => pause,
                    };
                    seq += skip;
                    rows.push((ms, seq));
                    if swap && rows.len() > 1 {
                        let n = rows.len();
                        rows.swap(n - 1, n - 2);
                    }
                }
                rows
            },
        )
    }

    proptest! {
        #[test]
        fn sequence_order_jumps_by_table_equal_those_by_a_stable_sort(
            seq in proptest::collection::vec(
                prop_oneof![0u64..50, 1_000u64..1_010, Just(1u64 << 40)], 0..200),
        ) {
            let mut by_seq: Vec<usize> = (0..seq.len()).collect();
            by_seq.sort_by_key(|&i| seq[i]);
            let want: Vec<(usize, usize)> = by_seq
                .windows(2)
                .filter(|w| seq[w[1]] - seq[w[0]] > 1)
                .map(|w| (w[0], w[1]))
                .collect();
            prop_assert_eq!(jumps_in_sequence_order(&seq), want);
        }

        #[test]
        fn the_single_pass_gaps_equal_the_reference(
            rows in stream_rows(),
            start in prop_oneof![Just(0.0), Just(1.7e12 + 0.123), 0.0..2e12f64],
        ) {
            let (arrival, seq): (Vec<u32>, Vec<u64>) = rows.iter().copied().unzip();
            prop_assert_eq!(arrival_gaps(&arrival, &seq, start), reference_gaps(&rows, start));
        }

        #[test]
        fn the_analysis_pass_stream_equals_a_second_read(
            records in proptest::collection::vec(
                (0u32..3_000, prop_oneof![Just(A), Just(B)], prop_oneof![Just(111u8), Just(13u8)],
                 any::<u16>()),
                0..120,
            ),
        ) {
            let input = capture_of(&records);
            let cfg = crate::AnalyzeConfig::default();
            let (report, stream) = crate::analyze_capture_stream(&input, &cfg).expect("header");
            let (ssrc, pt) = report.track_stream();
            let start = report.header.start_unix_us() as f64 / 1000.0;
            prop_assert_eq!(stream, stream_columns(&input, ssrc, pt, start).expect("header"));
        }
    }
}
