"""A capture's per-packet columns, read when a stage needs them and not kept.

The columns are large (one row per packet), so they are read afresh each time; what is small
and derived from them (the arrival gaps, which the QA report draws) is kept on the recording's
`CaptureFacts` from the first read, so no later stage reads the capture again for it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from rawcore import _core
from rawcore.errors import RawcoreError
from rawcore.recording.model import CaptureFacts, Recording, Segment

#: Arrival gaps shorter than this (or than 3 packet intervals) are ordinary packet spacing.
GAP_MS = 100


def capture_facts(rec: Recording, seg: Segment) -> CaptureFacts:
    """What the analysis kept of `seg`'s capture for the later stages."""
    return rec.capture_cache[seg.capture]


def read_columns(rec: Recording, seg: Segment) -> dict[str, npt.NDArray[Any]]:
    """The per-packet columns of `seg`'s capture (`_core.capture_columns`), read afresh and not
    kept: they are large. Their arrival gaps are kept from the same read, so the QA report does
    not read the capture again after the call timeline has."""
    if rec.archive is None:
        raise RawcoreError("the recording is closed")
    with rec.archive.open_buffer(seg.capture) as buf:
        cols = _core.capture_columns(buf)
    facts = capture_facts(rec, seg)
    if facts.gaps is None:
        gaps = _arrival_gaps(cols, seg, facts.start_unix_ms)
        gaps.flags.writeable = False
        facts.gaps = gaps
    return cols


#: The cause of an arrival gap, in the third column of `arrival_gaps`.
GAP_SILENCE, GAP_LOSS = 0.0, 1.0


def arrival_gaps(rec: Recording, seg: Segment) -> npt.NDArray[np.float64]:
    """Stretches with no packet of `seg`'s stream for longer than GAP_MS or 3 packet intervals,
    as [start, end, cause] rows (Unix ms): `GAP_SILENCE` where the sequence numbers run on
    across the gap (the sender sent nothing: DTX, a muted or paused sender), `GAP_LOSS` where
    packets are missing. Read once, then kept."""
    facts = capture_facts(rec, seg)
    if facts.gaps is None:
        read_columns(rec, seg)
    assert facts.gaps is not None
    return facts.gaps


def _arrival_gaps(
    cols: dict[str, npt.NDArray[Any]], seg: Segment, start_unix_ms: float
) -> npt.NDArray[np.float64]:
    mask = np.ones(len(cols["arrival_ms"]), dtype=bool)
    if seg.stats.ssrcs:  # the stream the track is (the timeline places the same one)
        mask &= cols["ssrc"] == seg.stats.ssrcs[0]
    order = np.argsort(cols["arrival_ms"][mask], kind="stable")
    arrival = cols["arrival_ms"][mask][order].astype(np.float64) + start_unix_ms
    seq = cols["ext_seq"][mask][order].astype(np.int64)
    if len(arrival) < 2:
        return np.zeros((0, 3), dtype=np.float64)
    d = np.diff(arrival)
    # Low frame rates (a 5 fps screen share) space packets further apart than speech does.
    spaced = d[d > 0]
    limit = max(GAP_MS, 3 * float(np.median(spaced))) if len(spaced) else GAP_MS
    at = np.flatnonzero(d > limit)
    # Sequence numbers that run on across a gap: nothing was sent (reordering can make the
    # step 0 or negative). Loss is found apart, in sequence order, so a single lost packet
    # inside continuous speech counts as well as a burst.
    quiet = at[(seq[at + 1] - seq[at]) <= 1]
    by_seq = np.argsort(seq, kind="stable")
    jumps = np.flatnonzero(np.diff(seq[by_seq]) > 1)
    before, after = arrival[by_seq[jumps]], arrival[by_seq[jumps + 1]]
    rows = np.concatenate(
        [
            np.column_stack([arrival[quiet], arrival[quiet + 1], np.full(len(quiet), GAP_SILENCE)]),
            np.column_stack([np.minimum(before, after), np.maximum(before, after),
                             np.full(len(jumps), GAP_LOSS)]),
        ]
    )  # fmt: skip
    return rows[np.argsort(rows[:, 0], kind="stable")]
