"""The mix's inputs, report, output formats and file name."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from rawcore.errors import InputError
from rawcore.media.files import safe_component
from rawcore.media.formats import MIX_FORMATS

if TYPE_CHECKING:
    from rawcore.source.archive import Buffer

Samples = npt.NDArray[np.float32]


@dataclass(frozen=True)
class MixInput:
    """One track of the mix."""

    #: Any audio file PyAV can decode; normally a file written by `extract-audio`.
    path: Path
    #: Wall-clock time (Unix ms) of the file's first sample.
    start_unix_ms: float
    #: Participant id, for reports and error messages.
    label: str
    gain_db: float = 0.0


@dataclass(frozen=True)
class OpusTrack:
    """One Opus track of a mix made in the core, straight from its captures."""

    #: The core's segment arguments: (capture buffer, offset in ms, clock drift in ppm).
    segments: Sequence[tuple[Buffer, int, float]]
    #: Wall-clock time (Unix ms) of the track's first sample.
    start_unix_ms: float
    #: Participant id, for reports and error messages.
    label: str
    gain_db: float = 0.0
    #: The payload type to follow (None: the captures' main stream).
    payload_type: int | None = None


@dataclass(frozen=True)
class MixReport:
    """What `mix_audio` wrote."""

    duration_ms: int
    sample_rate: int
    channels: int
    #: Highest sample of the mix before encoding (-120 for a silent mix).
    peak_dbfs: float
    #: Time during which the limiter held the gain below 1.
    limited_ms: int
    #: Per input: label, start_ms (from the mix start), duration_ms (decoded),
    #: loudness_lufs (measured when normalising, else None) and gain_db (applied in total).
    inputs: list[dict[str, Any]]


def mixed_name(
    call_type: str | None,
    call_id: str | None,
    call_start_ms: int,
    fmt: str,
    label: str | None = None,
) -> str:
    """The file name stream-cli gives a call's mixed audio,
    `composite_{callType}_{callId}_audio_{callStartMs}.{ext}`; a mix of a selection adds its
    label (`..._{callStartMs}_user-{id}.{ext}`)."""
    if fmt not in MIX_FORMATS:
        raise InputError(f"unknown mix format {fmt!r}; choose one of {', '.join(MIX_FORMATS)}")
    call_type_part = safe_component(call_type, fallback="call")
    call_id_part = safe_component(call_id, fallback="unknown")
    suffix = "" if label is None else f"_{label}"
    return f"composite_{call_type_part}_{call_id_part}_audio_{call_start_ms}{suffix}.{fmt}"


def one_line(exc: BaseException) -> str:
    """An exception's text on one line (FFmpeg's can span several)."""
    text = " ".join(str(exc).split())
    return text or type(exc).__name__
