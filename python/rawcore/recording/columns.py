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
        gaps = _arrival_gaps(cols["arrival_ms"], facts.start_unix_ms)
        gaps.flags.writeable = False
        facts.gaps = gaps
    return cols


def arrival_gaps(rec: Recording, seg: Segment) -> npt.NDArray[np.float64]:
    """Stretches (Unix ms, [start, end] rows) with no packet of `seg`'s capture for longer than
    GAP_MS or 3 packet intervals: DTX, loss or pauses. Read once, then kept."""
    facts = capture_facts(rec, seg)
    if facts.gaps is None:
        read_columns(rec, seg)
    assert facts.gaps is not None
    return facts.gaps


def _arrival_gaps(arrival_ms: npt.NDArray[Any], start_unix_ms: float) -> npt.NDArray[np.float64]:
    arrival = np.sort(arrival_ms.astype(np.float64)) + start_unix_ms
    if len(arrival) < 2:
        return np.zeros((0, 2), dtype=np.float64)
    d = np.diff(arrival)
    # Low frame rates (a 5 fps screen share) space packets further apart than speech does.
    spaced = d[d > 0]
    limit = max(GAP_MS, 3 * float(np.median(spaced))) if len(spaced) else GAP_MS
    at = np.flatnonzero(d > limit)
    return np.column_stack([arrival[at], arrival[at + 1]])
