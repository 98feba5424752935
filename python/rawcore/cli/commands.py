"""The commands: each takes the parsed arguments and the open recording, writes, and returns
the exit code (from typed results, never from message text).

Each command imports the layers it runs inside its own function, so a process pays only for
what its command uses: `rawcore --version` or a usage error starts no media layer, and
extract-audio never loads PyAV, the mixer or the QA renderer.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from enum import IntEnum
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from rawcore.errors import InputError, OutputError, RawcoreError, RemoteError
from rawcore.progress import StageProgress

if TYPE_CHECKING:
    from rawcore.media.outputs import JobFailure, Outputs, Selection
    from rawcore.recording.model import Recording


class ExitCode(IntEnum):
    """Process exit codes (documented in the README)."""

    OK = 0
    INTERNAL = 1  # a bug in rawcore: please report it
    USAGE = 2  # bad command line
    INPUT = 3  # unreadable, unsafe or missing input
    REMOTE = 4  # S3 / HTTP failure
    OUTPUT = 5  # cannot write the output
    PARTIAL = 6  # some outputs written, others failed (see the warnings)


def kbps(value: int | None) -> int | None:
    return None if value is None else value * 1000


def parse_selection(args: argparse.Namespace, rec: Recording) -> Selection:
    from rawcore.media.outputs import Selection

    sel = Selection(user_id=args.user_id, session_id=args.session_id, track_id=args.track_id)
    if not any(sel.admits(t) for t in rec.tracks):
        what = (
            f"user {args.user_id!r}"
            if args.user_id is not None
            else f"session {args.session_id!r}"
            if args.session_id is not None
            else f"track {args.track_id!r}"
            if args.track_id is not None
            else "the filter"
        )
        raise InputError(f"no tracks match {what}")
    return sel


def outcome(failures: Sequence[JobFailure]) -> ExitCode:
    """Some outputs written (else the command raised), some not: a partial success."""
    return ExitCode.PARTIAL if failures else ExitCode.OK


def print_warnings(warnings: Sequence[str], quiet: bool) -> None:
    if not quiet:
        for warning in warnings:
            print(f"rawcore: warning: {warning}", file=sys.stderr)


def report_outputs(result: Outputs, quiet: bool) -> int:
    """Print the files written, one per line, and the warnings; the exit code."""
    for entry in result.entries:
        print(entry.path)
    print_warnings(result.warnings, quiet)
    return outcome(result.failures)


def load_command(command: str) -> ModuleType | None:
    """Import the layers `command` runs on a recording (its function imports them again, for
    free) and return the module that runs it: the CLI calls this while the core analyses the
    captures, so the imports take the time of one core while the analysis has the other."""
    if command == "extract-video":
        import rawcore.media.video

        return rawcore.media.video
    if command == "extract-audio":
        import rawcore.media.audio

        return rawcore.media.audio
    if command == "mux-av":
        import rawcore.media.mux

        return rawcore.media.mux
    if command in ("mix-audio", "process-all"):
        import rawcore.pipeline.process

        return rawcore.pipeline.process
    return None


def cmd_extract_video(args: argparse.Namespace, rec: Recording) -> int:
    from rawcore.media.video import extract_video

    result = extract_video(
        rec,
        args.output,
        selection=parse_selection(args, rec),
        fmt=args.format,
        fill_gaps=args.fill_gaps,
        max_fill_ms=args.max_fill_ms,
        on_loss=args.on_loss,
        stitch=args.stitch,
        on_done=progress_printer("writing video", show=not args.quiet),
    )
    return report_outputs(result, args.quiet)


def cmd_mux_av(args: argparse.Namespace, rec: Recording) -> int:
    from rawcore.media.mux import mux_av

    result = mux_av(
        rec,
        args.output,
        selection=parse_selection(args, rec),
        media=args.media,
        fill_gaps=args.fill_gaps,
        max_fill_ms=args.max_fill_ms,
        fix_dtx=args.fix_dtx,
        on_loss=args.on_loss,
        fec=args.fec,
        stitch=args.stitch,
        on_done=progress_printer("muxing", show=not args.quiet),
    )
    return report_outputs(result, args.quiet)


def cmd_mix_audio(args: argparse.Namespace, rec: Recording) -> int:
    from rawcore.pipeline.process import mix_recording

    result = mix_recording(
        rec,
        args.output,
        selection=parse_selection(args, rec),
        fmt=args.mix_format,
        gains=dict(args.gain),
        normalize=args.normalize,
        sample_rate=args.mix_sample_rate,
        bit_rate=kbps(args.mix_bitrate),
        max_fill_ms=args.max_fill_ms,
    )
    return report_outputs(result, args.quiet)


def cmd_process_all(args: argparse.Namespace, rec: Recording) -> int:
    from rawcore.media.outputs import Outputs
    from rawcore.pipeline.process import process_all

    selection = parse_selection(args, rec)
    # One line per stage on a terminal stderr; none for machine output (--json) or --quiet.
    with StageProgress(enabled=None if show_progress(args) else False, label_width=5) as bars:
        result = process_all(
            rec,
            args.output,
            selection=selection,
            fill_gaps=args.fill_gaps,
            max_fill_ms=args.max_fill_ms,
            fix_dtx=args.fix_dtx,
            on_loss=args.on_loss,
            fec=args.fec,
            mix_format=args.mix_format,
            gains=dict(args.gain),
            normalize=args.normalize,
            mix_sample_rate=args.mix_sample_rate,
            mix_bit_rate=kbps(args.mix_bitrate),
            qa=not args.no_qa,
            on_stage=bars.begin,
            on_done=bars.count,
            on_fraction=bars.fraction,
        )
    if args.json:
        json.dump(result.summary, sys.stdout, indent=2)
        sys.stdout.write("\n")
        print_warnings(result.warnings, args.quiet)
        return outcome(result.failures)
    return report_outputs(Outputs(result.entries, result.warnings, result.failures), args.quiet)


def cmd_extract_audio(args: argparse.Namespace, rec: Recording) -> int:
    from rawcore.media.audio import extract_audio

    result = extract_audio(
        rec,
        args.output,
        selection=parse_selection(args, rec),
        fmt=args.format,
        fill_gaps=args.fill_gaps,
        max_fill_ms=args.max_fill_ms,
        fix_dtx=args.fix_dtx,
        fec=args.fec,
        stitch=args.stitch,
        on_done=progress_printer("writing audio", show=not args.quiet),
    )
    return report_outputs(result, args.quiet)


def _convert_job(args: argparse.Namespace) -> int:
    """`convert --storage`: the conversion as a cached job of `--org`; prints where the MP4 is."""
    import time

    from rawcore.jobs.conversion import submit_conversion

    bar = progress_printer("converting", show=show_progress(args))
    job = submit_conversion(
        args.path or args.input_file or args.input_dir or args.input_s3,
        storage=args.storage,
        org=args.org,
        room=args.room,
        mode=args.mode,
        track_id=args.track_id,
        audio=args.audio,
        no_audio=args.no_audio,
        stitch=args.stitch,
        preset=args.preset,
        crf=args.crf,
        db=args.db,
        s3_endpoint=args.s3_endpoint,
    )
    while not (status := job.status()).finished:
        if bar is not None:
            bar(round(status.progress * 1000), 1000)
        time.sleep(0.2)
    if status.state == "failed":
        error = {"input": InputError, "remote": RemoteError, "output": OutputError}.get(
            status.error_kind or "", RawcoreError
        )
        raise error(status.error or "the conversion failed")
    if bar is not None:
        bar(1000, 1000)
    print(status.output)
    return ExitCode.OK


def cmd_convert(args: argparse.Namespace) -> int:
    """One MP4: from a media file, or from a track of a recording (`--track-id`); with
    `--storage`, as a cached job into the organization's storage."""
    if args.room is not None:
        from rawcore.storage.keys import validate_id

        validate_id("room", args.room)  # refused before anything is opened
    if args.storage is not None:
        return _convert_job(args)
    source = args.path or args.input_file
    if args.track_id is None and args.mode == "remux" and args.audio is None and source:
        # A local Matroska/WebM file is remuxed by the core, without importing FFmpeg.
        from rawcore.media.convert.native import convert_matroska_file

        native = convert_matroska_file(Path(source), Path(args.output), no_audio=args.no_audio)
        if native is not None:
            print(args.output)
            print_warnings(native.warnings, args.quiet)
            return ExitCode.OK
    from rawcore.media.convert import EditorOptions, convert_file, convert_track
    from rawcore.recording.build import open_recording
    from rawcore.source.track_folder import is_track_folder, read_track_folder

    options = EditorOptions(args.preset, args.crf)
    bar = progress_printer("converting", show=show_progress(args))

    def on_progress(fraction: float) -> None:
        if bar is not None:
            bar(round(fraction * 1000), 1000)

    if args.track_id is None:
        entry = convert_file(
            args.path or args.input_file,
            args.output,
            mode=args.mode,
            audio=args.audio,
            no_audio=args.no_audio,
            options=options,
            s3_endpoint=args.s3_endpoint,
            on_progress=on_progress,
        )
        warnings: list[str] = []
    elif args.input_dir is not None and is_track_folder(args.input_dir):
        from rawcore.media.convert import convert_folder_track

        entry = convert_folder_track(
            read_track_folder(args.input_dir),
            args.track_id,
            args.output,
            mode=args.mode,
            no_audio=args.no_audio,
            options=options,
            room=args.room,
            on_progress=on_progress,
        )
        warnings = entry.warnings
    else:
        from rawcore.source.captures import parse_pt_option

        source = args.path or args.input_file or args.input_dir or args.input_s3
        with open_recording(
            str(source),
            s3_endpoint=args.s3_endpoint,
            cache_dir=Path(args.cache_dir) if args.cache_dir else None,
            payload_types=dict(parse_pt_option(text) for text in args.pt),
            sdp=args.sdp,
        ) as rec:
            print_warnings(rec.warnings, args.quiet)
            entry = convert_track(
                rec,
                args.track_id,
                args.output,
                mode=args.mode,
                no_audio=args.no_audio,
                stitch=args.stitch,
                options=options,
                room=args.room,
                on_progress=on_progress,
            )
        warnings = entry.warnings
    print(args.output)
    print_warnings(warnings, args.quiet)
    return ExitCode.OK


def cmd_post_process(args: argparse.Namespace) -> int:
    """The post-recording pipeline: one line per step on stderr, the metadata document's
    location on stdout."""
    from rawcore.pipeline.post import PostTarget, post_process
    from rawcore.storage.backends import FolderStorage, Storage, open_storage

    if args.recording_id is None:
        raise InputError("give --recording-id (the input's name does not make one)")
    storage: Storage = (FolderStorage(args.output) if args.output is not None
                        else open_storage(args.storage, s3_endpoint=args.s3_endpoint))  # fmt: skip
    target = PostTarget(storage, args.org, args.room, args.recording_id)
    source = args.input_file or args.input_dir or args.input_s3

    def checkpoint(point: str) -> None:
        step, _, what = point.partition(":")
        if not args.quiet and what in ("done", "skipped"):
            said = "done" if what == "done" else "already done"
            print(f"rawcore: {step}: {said}", file=sys.stderr)

    if args.events is not None:  # checked in full first: a bad log costs no media work
        from rawcore.pipeline.scene.events import read_event_log

        if not Path(args.events).is_file():
            raise InputError(f"{args.events}: no such event log")
        read_event_log(args.events)
    result = post_process(
        source, target, events=args.events, s3_endpoint=args.s3_endpoint,
        cache_dir=Path(args.cache_dir) if args.cache_dir else None, checkpoint=checkpoint,
        clip=not args.no_clip,
    )  # fmt: skip
    print_warnings(result.warnings, args.quiet)
    print(result.metadata_url)
    return ExitCode.OK


def cmd_scene(args: argparse.Namespace) -> int:
    """The scene project of a recording. The event log and the names are read and checked
    before the recording is opened: a bad log costs no download and no analysis."""
    from rawcore.pipeline.scene.model import schema_text

    if args.print_schema:
        sys.stdout.write(schema_text())
        return ExitCode.OK
    from rawcore.pipeline.scene.build import build_scene_project, read_participants
    from rawcore.pipeline.scene.events import read_event_log
    from rawcore.recording.build import open_recording
    from rawcore.source.track_folder import TrackFolder, is_track_folder, read_track_folder

    names = read_participants(args.participants) if args.participants else None
    log = read_event_log(args.events) if args.events else None
    source: contextlib.AbstractContextManager[Recording | TrackFolder]
    if args.input_dir is not None and is_track_folder(args.input_dir):
        source = contextlib.nullcontext(read_track_folder(args.input_dir))
    else:
        source = open_recording(
            str(args.input_file or args.input_dir or args.input_s3),
            s3_endpoint=args.s3_endpoint,
            cache_dir=Path(args.cache_dir) if args.cache_dir else None,
            progress=progress_printer(show=show_progress(args)),
        )
    with source as rec:
        if not isinstance(rec, TrackFolder):
            print_warnings(rec.warnings, args.quiet)
        project = build_scene_project(
            rec,
            Path(args.output),
            events=Path(args.events) if args.events else None,
            event_log=log,
            participants=names,
            quiet=args.quiet,
            clip=not args.no_clip,
        )
    print(project.scene_path)
    print(project.otio_path)
    for path in project.track_paths:
        print(path)
    print_warnings(project.warnings, args.quiet)
    return ExitCode.OK


def cmd_compose(args: argparse.Namespace) -> int:
    """Render a scene into one MP4; prints its path."""
    from rawcore.pipeline.compose import compose, parse_range

    range_ms = None if args.range_ms is None else parse_range(args.range_ms)
    bar = progress_printer("composing", show=show_progress(args))

    def on_progress(fraction: float) -> None:
        if bar is not None:
            bar(round(fraction * 1000), 1000)

    report = compose(
        args.scene,
        args.output,
        edits_path=args.edits,
        trim_pauses=args.trim_pauses,
        range_ms=range_ms,
        clip=args.clip,
        preset=args.preset,
        progress=on_progress,
    )
    print(report.path)
    return ExitCode.OK


def cmd_worker(args: argparse.Namespace) -> int:
    """Run conversion workers on the job store until interrupted (or idle for --idle-exit)."""
    import time

    from rawcore.jobs.conversion import CONVERT, run_conversion
    from rawcore.jobs.pool import Handler, WorkerPool
    from rawcore.jobs.store import JobStore

    if args.nice:
        os.nice(args.nice)  # background work yields the CPU to whatever serves people
    store = JobStore(args.db, lease_s=args.lease)
    handlers: dict[str, Handler] = {CONVERT: run_conversion}
    if args.ray is not None:  # conversions as Ray tasks; this process keeps the leases
        from rawcore.jobs.on_ray import on_ray

        handlers[CONVERT] = on_ray(run_conversion, address=args.ray)
    if args.service:  # the service's ingest jobs too (they record tracks in the same file)
        from rawcore.service.ingest import INGEST, ingest_handler
        from rawcore.service.store import ServiceStore

        handlers[INGEST] = ingest_handler(ServiceStore(args.db))
    pool = WorkerPool(store, handlers, threads=args.threads).start()
    idle_since = time.monotonic()
    parent = os.getppid()
    try:
        while True:
            time.sleep(0.2)
            if args.exit_with_parent and os.getppid() != parent:
                return ExitCode.OK
            if pool.busy:
                idle_since = time.monotonic()
            elif args.idle_exit is not None and time.monotonic() - idle_since > args.idle_exit:
                return ExitCode.OK
    finally:
        pool.stop(timeout=1.0)


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the service until interrupted."""
    from rawcore.service.app import serve
    from rawcore.service.config import Settings, default_db, default_storage, parse_size

    try:
        max_upload = parse_size(args.max_upload)
    except ValueError as exc:
        raise InputError(f"--max-upload: {exc}") from None
    settings = Settings(
        storage=args.storage or default_storage(), db=Path(args.db) if args.db else default_db(),
        allow_source=tuple(args.allow_source), max_upload=max_upload,
        s3_endpoint=args.s3_endpoint, workers=args.workers,
        worker_process=args.worker_process, ray=args.ray,
    )  # fmt: skip
    serve(settings, host=args.host, port=args.port)
    return ExitCode.OK


def cmd_org_create(args: argparse.Namespace) -> int:
    """Make an organization; its API key (shown once, stored hashed) is the last word."""
    from rawcore.service.config import default_db
    from rawcore.service.store import ServiceStore

    org, key = ServiceStore(Path(args.db) if args.db else default_db()).create_org(args.name)
    print(f"organization {org.name} ({org.id}); API key (shown once): {key}")
    return ExitCode.OK


def cmd_list_tracks(args: argparse.Namespace, rec: Recording) -> int:
    from rawcore.cli.listing import recording_json, select_tracks, table

    tracks = select_tracks(rec.tracks, args.track_type)
    out = sys.stdout
    if args.format == "json":
        json.dump(recording_json(rec, tracks), out, indent=2)
        out.write("\n")
    elif args.format == "users":
        for user in dict.fromkeys(t.participant_id for t in tracks):
            out.write(user + "\n")
    elif args.format == "sessions":
        for session in dict.fromkeys(t.session_id for t in tracks):
            out.write(session + "\n")
    elif args.format == "tracks":
        for track_id in dict.fromkeys(t.track_id for t in tracks):
            out.write(track_id + "\n")
    else:
        table(rec, tracks, out)
    return ExitCode.OK


def show_progress(args: argparse.Namespace) -> bool:
    return not args.quiet and not getattr(args, "json", False)


def progress_printer(
    label: str = "analysing captures", *, show: bool = True
) -> Callable[[int, int], None] | None:
    """A `(done, total)` callback drawing one progress line on stderr when it is a terminal
    (None otherwise): the line stays, checked, once `done` reaches `total`."""
    if not show or not sys.stderr.isatty():
        return None
    bars = StageProgress(enabled=True)  # no `with`: no tick to stop if the command fails
    started = False

    def update(done: int, total: int) -> None:
        nonlocal started
        if not started:  # begun on the first report, so a download bar can come before it
            started = True
            bars.begin(label)
        bars.count(done, total)
        if done >= total:
            bars.close()

    return update
