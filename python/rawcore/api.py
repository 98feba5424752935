"""The public API's handles: a `Recording` and its `Track`s with the commands as methods.

The model (`rawcore.recording.model`) is plain data that every layer reads; the methods that
run the commands on it live here, at the top, so no lower layer calls upward. `open_recording`
opens a recording with the same arguments as `rawcore.recording.build.open_recording` and hands
back these handles.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import fields, replace
from pathlib import Path
from typing import ParamSpec, TypeVar

from rawcore.errors import RawcoreError
from rawcore.media.audio import extract_audio
from rawcore.media.formats import OnLoss
from rawcore.media.manifest import ManifestEntry
from rawcore.media.mux import mux_av
from rawcore.media.track import extract_track
from rawcore.media.video import extract_video
from rawcore.pipeline.process import process_all
from rawcore.recording import build, model
from rawcore.recording.timeline import Timeline, timeline_of

__all__ = ["Recording", "Track", "open_recording"]

_P = ParamSpec("_P")
_T = TypeVar("_T")


class Track(model.Track):
    """A track of an open recording; `extract_audio`/`extract_video` write it to a path."""

    def _recording(self) -> model.Recording:
        if self.recording is None or self.recording.archive is None:
            raise RawcoreError(f"track {self.track_id}: its recording is closed")
        return self.recording

    def extract_audio(
        self,
        path: str | os.PathLike[str],
        *,
        fill_gaps: bool = True,
        fix_dtx: bool = True,
        fec: bool = True,
    ) -> ManifestEntry:
        """Write this audio track to `path` (the suffix picks the container: .mkv, .mka,
        .webm, .ogg). `fec=False` conceals lost frames that in-band FEC could rebuild.
        Returns the manifest entry; no manifest is written."""
        return extract_track(
            self._recording(), self, Path(path), fill_gaps=fill_gaps, fix_dtx=fix_dtx, fec=fec
        )

    def extract_video(
        self,
        path: str | os.PathLike[str],
        *,
        fill_gaps: bool = True,
        on_loss: OnLoss = "freeze",
    ) -> ManifestEntry:
        """Write this video track to `path` (.mkv or .webm). Returns the manifest entry.
        `on_loss`: after a loss, hold the last picture ("freeze"), show black ("black") or
        write the inter frames anyway ("conceal") until the next decodable frame."""
        return extract_track(
            self._recording(), self, Path(path), fill_gaps=fill_gaps, on_loss=on_loss
        )


class Recording(model.Recording):
    """An open raw recording; close it (or use `with`) when done.

    The methods are the commands, with the recording as their first argument: see
    `rawcore.media.audio.extract_audio`, `rawcore.media.video.extract_video`,
    `rawcore.media.mux.mux_av` and `rawcore.pipeline.process.process_all`.
    """

    extract_audio = extract_audio
    extract_video = extract_video
    mux_av = mux_av
    process_all = process_all

    @property
    def timeline(self) -> Timeline:
        """The call timeline, fitted on first use."""
        return timeline_of(self)

    def __enter__(self) -> Recording:
        return self


def _as(cls: type[_T], obj: object) -> _T:
    """`obj` (a model dataclass) as an instance of its public subclass `cls`."""
    return cls(**{f.name: getattr(obj, f.name) for f in fields(obj)})  # type: ignore[arg-type]


def _handles(rec: model.Recording) -> Recording:
    participants = tuple(
        replace(
            p,
            sessions=tuple(
                replace(s, tracks=tuple(_as(Track, t) for t in s.tracks)) for s in p.sessions
            ),
        )
        for p in rec.participants
    )
    public = _as(Recording, replace(rec, participants=participants))
    for track in public.tracks:
        object.__setattr__(track, "recording", public)  # frozen: the back-reference is set once
    return public


def _public(open_: Callable[_P, model.Recording]) -> Callable[_P, Recording]:
    @functools.wraps(open_)
    def opened(*args: _P.args, **kwargs: _P.kwargs) -> Recording:
        return _handles(open_(*args, **kwargs))

    return opened


#: Open a raw recording (directory, ZIP, tar/tar.gz, `s3://` or presigned URL); the arguments
#: are those of `rawcore.recording.build.open_recording`.
open_recording = _public(build.open_recording)
