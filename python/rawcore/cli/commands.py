"""The commands: each takes the parsed arguments and the open recording, writes, and returns
the exit code (from typed results, never from message text).

Each command imports the layers it runs inside its own function, so a process pays only for
what its command uses: `rawcore --version` or a usage error starts no media layer, and
extract-audio never loads PyAV, the mixer or the QA renderer.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from enum import IntEnum
from typing import TYPE_CHECKING

from rawcore.errors import InputError
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


def cmd_extract_video(args: argparse.Namespace, rec: Recording) -> int:
    from rawcore.media.video import extract_video

    result = extract_video(
        rec,
        args.output,
        selection=parse_selection(args, rec),
        fmt=args.format,
        fill_gaps=args.fill_gaps,
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
        fix_dtx=args.fix_dtx,
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
            fix_dtx=args.fix_dtx,
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
        fix_dtx=args.fix_dtx,
        fec=args.fec,
        stitch=args.stitch,
        on_done=progress_printer("writing audio", show=not args.quiet),
    )
    return report_outputs(result, args.quiet)


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
