"""The look-ahead peak limiter every mix passes through: no sample above the ceiling."""

from __future__ import annotations

import numpy as np

from rawcore.media.mix.types import Samples

#: The limiter's ceiling: -1 dBFS leaves lossy encoders room for their overshoot.
CEILING_DBFS = -1.0
#: How far the limiter looks ahead, i.e. how long its attack ramp is.
_LOOKAHEAD_MS = 5
#: Release speed: the gain climbs back linearly in dB, 20 dB in 80 ms.
_RELEASE_DB_PER_MS = 0.25


# ---------------------------------------------------------------------------------------------
# Limiting


class Limiter:
    """A look-ahead peak limiter that never lets a sample above the ceiling.

    Gains are computed per block of about 1 ms, all vectorised. A block's required gain is
    min(1, ceiling / its peak). Attack: the gain is the minimum required over the next
    `lookahead + 1` blocks, averaged over `lookahead` blocks, so it ramps down smoothly and has
    reached each block's requirement by the time the block plays. Release: the gain may rise by
    at most `release` dB per block, g[k] = min(want[k], g[k-1] + r), which unrolls to
    r*k + running_min(want[j] - r*j) (one `np.minimum.accumulate`). Within a block the gain is
    interpolated linearly between the gains at its two ends, both of which satisfy that block's
    requirement. Output lags input by the look-ahead; `flush` returns the rest.
    """

    def __init__(self, rate: int, channels: int) -> None:
        self.block = max(1, rate // 1000)
        self.channels = channels
        self.lookahead = max(1, round(_LOOKAHEAD_MS * rate / 1000 / self.block))
        self.ceiling = np.float32(10 ** (CEILING_DBFS / 20))
        # Aim a hair under the ceiling so float32 rounding of x * gain cannot cross it.
        self._aim = float(self.ceiling) * (1.0 - 2.0**-20)
        self.release_db = _RELEASE_DB_PER_MS * self.block * 1000 / rate
        self._samples: Samples = np.zeros((0, channels), dtype=np.float32)
        self._required = np.zeros(0, dtype=np.float64)  # per pending block
        self._released_db = 0.0  # released gain of the last finished block
        self._history = np.ones(self.lookahead - 1, dtype=np.float64)  # for the moving average
        self._last_gain = 1.0  # gain at the end of the last finished block
        self._started = False
        self._queued = 0  # input samples fed so far
        self._emitted = 0  # samples returned so far
        self.limited_blocks = 0
        self.clipped_samples = 0

    def process(self, x: Samples) -> Samples:
        """Feed samples; returns the limited samples that are final so far."""
        self._queued += len(x)
        self._samples = np.concatenate([self._samples, x]) if len(self._samples) else x
        whole = len(self._samples) // self.block * self.block
        known = len(self._required)
        fresh = self._samples[known * self.block : whole]
        if len(fresh):
            peaks = np.abs(fresh.reshape(-1, self.block * self.channels)).max(axis=1)
            need = np.minimum(1.0, self._aim / np.maximum(peaks.astype(np.float64), 1e-30))
            self._required = np.concatenate([self._required, need])
        return self._emit(len(self._required) - self.lookahead)

    def flush(self) -> Samples:
        """Everything still held back (silence is assumed to follow)."""
        owed = self._queued - self._emitted
        pad = (self.block - len(self._samples) % self.block) % self.block
        out = self.process(np.zeros((pad + self.lookahead * self.block, self.channels), np.float32))
        return out[:owed]

    def _emit(self, blocks: int) -> Samples:
        if blocks <= 0:
            return np.zeros((0, self.channels), dtype=np.float32)
        span = self.lookahead + 1
        required = self._required[: blocks + self.lookahead]
        held = np.lib.stride_tricks.sliding_window_view(required, span).min(axis=1)
        # Release: g[k] = min(held[k], g[k-1] + r) with g[-1] the previous call's last gain.
        held_db = 20.0 * np.log10(held)
        steps = self.release_db * np.arange(1, blocks + 1)
        released_db = np.minimum(
            np.minimum.accumulate(held_db - steps) + steps, self._released_db + steps
        )
        released_db = np.minimum(released_db, 0.0)
        released = np.where(released_db == 0.0, 1.0, 10.0 ** (released_db / 20.0))
        if not self._started:
            # Nothing played before the first block, so nothing to ramp from: start at its gain.
            self._started = True
            self._history = np.full(self.lookahead - 1, released[0])
            self._last_gain = float(released[0])
        # Attack smoothing: the mean over the last `lookahead` released gains.
        series = np.concatenate([self._history, released])
        gains = np.lib.stride_tricks.sliding_window_view(series, self.lookahead).sum(axis=1)
        gains = np.minimum(gains / self.lookahead, 1.0)
        starts = np.concatenate([[self._last_gain], gains[:-1]])

        samples = self._samples[: blocks * self.block]
        if np.all(gains == 1.0) and self._last_gain == 1.0:
            out = samples
        else:
            ramp = np.arange(1, self.block + 1, dtype=np.float64) / self.block
            per_sample = starts[:, None] + (gains - starts)[:, None] * ramp[None, :]
            out = samples * per_sample.reshape(-1, 1).astype(np.float32)
            self.limited_blocks += int(np.count_nonzero(np.minimum(starts, gains) < 1.0))
        # Last line of defence against float rounding: count and clip anything over.
        over = np.abs(out) > self.ceiling
        if over.any():
            self.clipped_samples += int(np.count_nonzero(over))
            out = np.clip(out, -self.ceiling, self.ceiling)

        self._released_db = float(released_db[-1])
        self._history = series[len(series) - (self.lookahead - 1) :]
        self._last_gain = float(gains[-1])
        self._samples = self._samples[blocks * self.block :]
        self._required = self._required[blocks:]
        self._emitted += len(out)
        return out
