//! The per-packet view of a capture: one row per RTP record in file order, laid out as columns
//! for cheap hand-over to array libraries (the call timeline reads a stream's timestamps and
//! arrivals from them).

use std::collections::HashMap;

use crate::rtp::looks_like_rtcp;
use crate::rtpdump::{RtpdumpError, RtpdumpReader};
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::tests::{Capture, A, B};
    use crate::rtcp::write as rtcp_write;

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
}
