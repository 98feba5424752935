"""The drifting-sound-card call of `tests/test_drift.py` and `benches/drift_peers.py`.

Two senders whose sound cards drift against their system clocks (`SENDERS`: +300 and -250 ppm
in `Impairments.clock_drift_ppm`'s convention, media time t sent at t·(1 + ppm/10⁶); the Sender
Reports show it) talk for 8 minutes, Opus without DTX (silences are coded, so no hole absorbs
the drift), and beep every 10 s; their cameras (on the system clock) flash with each beep. A
third sender's sound card keeps time and has no camera.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from helpers.gst import source_signal
from helpers.recording import (
    Impairments,
    OpusSource,
    SenderReports,
    SessionSpec,
    TrackSpec,
    VideoSource,
)

MINUTES = 8
DURATION_S = MINUTES * 60.0
BEEP_HZ = 1000.0
#: True instants of the beeps (and flashes): every 10 s.
BEEPS = tuple(5.0 + 10.0 * k for k in range(int((DURATION_S - 10) // 10)))
#: Speech-like sound between the beeps, 1 s after one to 1.5 s before the next.
SPEECH = tuple((b + 1.0, 7.5) for b in BEEPS)
#: The audio path's delay: the recorder places the tracks this late.
PATH_DELAY_MS = 20
SENDERS = {"alice": 300.0, "bob": -250.0, "carol": 0.0}


def _media(
    ppm: float,
) -> tuple[tuple[tuple[float, float, float], ...], tuple[tuple[float, float], ...]]:
    # The sound card's clock: what it plays at true time t carries media time t / a.
    a = 1 + ppm / 1e6
    return (
        tuple((t / a, 0.3, BEEP_HZ) for t in BEEPS),
        tuple((s / a, d / a) for s, d in SPEECH),
    )


def session(user: str, ppm: float, seed: int) -> SessionSpec:
    """One sender of the call: audio on a drifting sound card, video (if it drifts) on time."""
    a = 1 + ppm / 1e6
    reports = SenderReports(interval_s=1.0, ntp_offset_s=1.5 + seed)
    bursts, speech = _media(ppm)
    audio = TrackSpec(
        "audio",
        "opus",
        source=OpusSource(DURATION_S / a, dtx=False, tone_bursts=bursts, speech=speech),
        impairments=Impairments(
            extra_delay_ms=PATH_DELAY_MS, jitter_ms=5, seed=seed, clock_drift_ppm=ppm
        ),
        sender_reports=reports,
    )
    tracks = [audio]
    if ppm != 0.0:
        tracks.append(
            TrackSpec(
                "video",
                "vp8",
                source=VideoSource(DURATION_S, fps=5, flashes=BEEPS, keyframe_interval=25),
                impairments=Impairments(extra_delay_ms=60, jitter_ms=5, seed=seed + 10),
                sender_reports=reports,
            )
        )
    return SessionSpec(user, f"{user}-s1", tracks)


def sessions() -> list[SessionSpec]:
    return [session(user, ppm, seed) for seed, (user, ppm) in enumerate(SENDERS.items(), 1)]


def source(ppm: float) -> np.ndarray[Any, np.dtype[np.float64]]:
    """The signal the sender with `ppm` encoded, at 48 kHz on its media clock."""
    bursts, speech = _media(ppm)
    return source_signal(DURATION_S / (1 + ppm / 1e6), tone_bursts=bursts, speech=speech)
