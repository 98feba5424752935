"""convert: one MP4 from a media file, or from a track of a recording, with its manifest entry.

A file converts as it is (`convert_file`). A track of a recording (`convert_track`) is first
paired by `mux_av` (the camera with its session's microphone, a screen share with its screen
audio, both placed on the call timeline; `no_audio` leaves the audio out) into a temporary
Matroska file, which then converts the same way. The MP4 is written under a temporary name and
renamed when complete; `manifest.json` beside it gains its entry (`container: "mp4"`, `mode`,
`sources`).
"""

from __future__ import annotations

import dataclasses
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from rawcore.errors import InputError
from rawcore.media.convert.editor import EditorOptions, editor
from rawcore.media.convert.native import convert_matroska_file, with_origin, write_native
from rawcore.media.convert.probe import Inputs, find_inputs
from rawcore.media.convert.remux import remux
from rawcore.media.files import atomic_path, prepare_output_dir
from rawcore.media.formats import MODES
from rawcore.media.formats import ConvertMode as Mode
from rawcore.media.manifest import ManifestEntry, OutputKind, write_manifest

if TYPE_CHECKING:
    # Only tracks of a recording or a folder need these (and their imports, ≈40 ms): a media
    # file's conversion goes without them.
    from rawcore.recording.model import Recording
    from rawcore.source.track_folder import TrackFolder

#: The version of what a conversion writes: part of every cache key, bumped whenever the same
#: input and options would give different bytes.
FORMAT_VERSION = "rawcore.mp4/1"


def _kind(inputs: Inputs) -> OutputKind:
    if inputs.video is not None and inputs.audio is not None:
        return "av"
    return "video" if inputs.video is not None else "audio"


def _write(
    inputs: Inputs,
    output: Path,
    mode: Mode,
    options: EditorOptions,
    on_progress: Callable[[float], None] | None,
) -> ManifestEntry:
    if mode not in MODES:
        raise InputError(f"unknown --mode {mode!r}; choose editor or remux")
    out_dir = prepare_output_dir(output.parent)
    with atomic_path(out_dir, output.name) as tmp:
        if mode == "remux":
            stats = remux(inputs, tmp, on_progress=on_progress)
            duration_s, width, height = stats.duration_s, None, None
            codec = "+".join(r.codec for r in (inputs.video, inputs.audio) if r is not None)
            frames = None
        else:
            ed = editor(inputs, tmp, options, on_progress=on_progress)
            duration_s, width, height, frames = ed.duration_s, ed.width, ed.height, ed.frames
            codec = "+".join(
                c for c, r in (("h264", inputs.video), ("aac", inputs.audio)) if r is not None
            )
    return ManifestEntry(
        path=output.name,
        kind=_kind(inputs),
        user_id=None,
        session_id=None,
        track_ids=[],
        codec=codec,
        container="mp4",
        start_unix_ms=None,
        duration_ms=round(duration_s * 1000),
        bytes=output.stat().st_size,
        sample_rate=48_000 if mode == "editor" and inputs.audio is not None else None,
        width=width,
        height=height,
        frames=frames,
        mode=mode,
        sources=inputs.paths,
    )


def _local(source: str | os.PathLike[str], s3_endpoint: str | None) -> str | os.PathLike[str]:
    if re.match(r"^(s3|https?)://", os.fspath(source), flags=re.IGNORECASE):
        from rawcore.source.cache import default_cache_dir
        from rawcore.source.s3 import fetch  # boto3 and urllib3: only for a URL

        return fetch(os.fspath(source), cache_dir=default_cache_dir(), endpoint_url=s3_endpoint)
    return source


def convert_file(
    source: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    mode: Mode = "editor",
    audio: str | os.PathLike[str] | None = None,
    no_audio: bool = False,
    options: EditorOptions | None = None,
    manifest: bool = True,
    s3_endpoint: str | None = None,
    on_progress: Callable[[float], None] | None = None,
) -> ManifestEntry:
    """Convert a media file (and optionally a separate audio file) into the MP4 `output`.
    Either may be an `s3://` or presigned URL: it is fetched into the download cache first."""
    out = Path(output)
    local = _local(source, s3_endpoint)
    if mode == "remux" and audio is None:
        native = convert_matroska_file(Path(local), out, no_audio=no_audio, manifest=manifest)
        if native is not None:
            if on_progress is not None:
                on_progress(1.0)
            return native
    inputs = find_inputs(
        local,
        audio=None if audio is None else _local(audio, s3_endpoint),
        no_audio=no_audio,
    )
    entry = _write(inputs, out, mode, options or EditorOptions(), on_progress)
    # A rawcore output keeps who and when it is: its manifest entry says so.
    with_origin(entry, Path(local))
    if manifest:
        write_manifest(out.parent, [entry], call={}, command="convert")
    return entry


def recording_room(rec: Recording, room: str | None = None) -> str:
    """`room` checked as an id, else the recording's own: `{call_type}-{call_id}` (the
    recording's name for a missing call id), as `rawcore post-process` stores it."""
    from rawcore.storage.keys import default_room, recording_name, validate_id

    if room is not None:
        return validate_id("room", room)
    return default_room(rec.call_type, rec.call_id, recording_name(rec.source))


def convert_track(
    rec: Recording,
    track_id: str,
    output: str | os.PathLike[str],
    *,
    mode: Mode = "editor",
    no_audio: bool = False,
    stitch: bool = False,
    options: EditorOptions | None = None,
    manifest: bool = True,
    room: str | None = None,
    on_progress: Callable[[float], None] | None = None,
) -> ManifestEntry:
    """Convert a track of `rec` paired with its session's other medium (see the module
    docstring) into the MP4 `output`. The entry names the recording's `room` (checked as an
    id; by default `{call_type}-{call_id}` of `rec`)."""
    room = recording_room(rec, room)
    track = next((t for t in rec.tracks if t.track_id == track_id), None)
    if track is None:
        raise InputError(f"no tracks match track {track_id!r}")
    out = Path(output)
    prepare_output_dir(out.parent)
    # The pairing engine (and what it loads) only for a track of a recording: a media file's
    # conversion starts without it.
    from rawcore.media.mux import mux_av
    from rawcore.media.outputs import Selection

    if no_audio or track.kind == "audio":
        selection = Selection(track_id=track_id)
    elif stitch:
        selection = Selection(user_id=track.participant_id)
    else:
        selection = Selection(session_id=track.session_id)
    media: Literal["user", "display"] = "display" if track.screenshare else "user"
    with tempfile.TemporaryDirectory(prefix=".rawcore-convert-", dir=out.parent) as tmp:
        result = mux_av(rec, tmp, selection=selection, media=media, stitch=stitch, workers=1)
        mine = [e for e in result.entries if track_id in e.track_ids]
        if not mine:
            reason = result.failures[0].reason if result.failures else "nothing written"
            raise InputError(f"track {track_id!r}: {reason}")
        muxed = mine[0]
        muxed_path = Path(tmp) / muxed.path
        try:
            native = write_native(muxed_path, out, no_audio) if mode == "remux" else None
            if native is None:
                inputs = find_inputs(muxed_path, no_audio=no_audio)
                entry = _write(inputs, out, mode, options or EditorOptions(), on_progress)
            else:
                entry = native
        except InputError as exc:  # name the track, not the temporary file
            raise InputError(str(exc).replace(str(muxed_path), f"track {track_id}")) from None
    entry.user_id, entry.session_id = muxed.user_id, muxed.session_id
    entry.start_unix_ms, entry.screenshare, entry.stitched = (
        muxed.start_unix_ms, muxed.screenshare, muxed.stitched,
    )  # fmt: skip
    entry.track_ids = [t for t in muxed.track_ids if not no_audio or t == track_id]
    entry.sources = list(entry.track_ids)
    entry.warnings = list(muxed.warnings)
    entry.room = room
    if manifest:
        write_manifest(out.parent, [entry], call=rec.call_json(), command="convert")
    return entry


def convert_folder_track(
    folder: TrackFolder,
    track_id: str,
    output: str | os.PathLike[str],
    *,
    mode: Mode = "editor",
    no_audio: bool = False,
    options: EditorOptions | None = None,
    manifest: bool = True,
    room: str | None = None,
    on_progress: Callable[[float], None] | None = None,
) -> ManifestEntry:
    """Convert a stored raw track of `folder` (`rawcore.source.track_folder`) into the MP4
    `output`: a camera with its session's microphone, a screen share with its screen audio,
    the audio placed against the video by the two files' starts on the call clock. The room is
    the one the folder's document names; a different `room` is an `InputError`."""
    from rawcore.storage.keys import validate_id

    if room is not None:
        validate_id("room", room)
        if folder.room is not None and folder.room != room:
            raise InputError(f"{folder.document}: the recording is stored in room "
                             f"{folder.room!r}, not {room!r}")  # fmt: skip
    room = room or folder.room
    track = folder.track(track_id)
    audio = None
    if not no_audio and track.kind == "video":
        audio = next((t for t in folder.raw if t.kind == "audio"
                      and t.participant_id == track.participant_id
                      and t.session_id == track.session_id
                      and t.screenshare == track.screenshare), None)  # fmt: skip
    inputs = find_inputs(track.path, audio=None if audio is None else audio.path,
                         no_audio=no_audio)  # fmt: skip
    if audio is not None:
        offset = (audio.start_unix_ms - track.start_unix_ms) / 1000.0
        inputs = dataclasses.replace(inputs, audio_offset_s=offset)
    entry = _write(inputs, Path(output), mode, options or EditorOptions(), on_progress)
    entry.user_id, entry.session_id = track.participant_id, track.session_id
    entry.start_unix_ms, entry.screenshare = track.start_unix_ms, track.screenshare
    entry.track_ids = [*track.track_ids, *(audio.track_ids if audio is not None else ())]
    entry.sources = list(entry.track_ids)
    entry.room = room
    if manifest:
        write_manifest(Path(output).parent, [entry], call={}, command="convert")
    return entry


__all__ = ["FORMAT_VERSION", "MODES", "Mode", "convert_file", "convert_folder_track",
           "convert_track", "recording_room"]  # fmt: skip
