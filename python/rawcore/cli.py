"""The `rawcore` command line: stream-cli's raw-recording commands, names and flags.

Every command takes one input (`--input-file`, `--input-dir` or `--input-s3`). Errors end as
one line on stderr and a documented exit code, never a traceback: see `ExitCode`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any, NoReturn, TextIO

from rawcore import _core
from rawcore._progress import StageProgress
from rawcore.errors import (
    InputError,
    OutputError,
    RawcoreError,
    RemoteError,
    SourceNotFoundError,
)
from rawcore.extract import AUDIO_FORMATS, Selection, extract_audio
from rawcore.model import Recording, Track, open_recording
from rawcore.mux import MEDIA, mux_av
from rawcore.output import ManifestEntry
from rawcore.process import MIX_FORMATS, mix_recording, process_all
from rawcore.video import VIDEO_FORMATS, extract_video

LIST_TRACKS_SCHEMA = "rawcore.list-tracks/1"


class ExitCode(IntEnum):
    """Process exit codes (documented in the README)."""

    OK = 0
    INTERNAL = 1  # a bug in rawcore: please report it
    USAGE = 2  # bad command line
    INPUT = 3  # unreadable, unsafe or missing input
    REMOTE = 4  # S3 / HTTP failure
    OUTPUT = 5  # cannot write the output
    PARTIAL = 6  # some outputs written, others failed (see the warnings)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(ExitCode.USAGE, f"rawcore: error: {message}\n")


def _add_input(p: argparse.ArgumentParser) -> None:
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--input-file", metavar="PATH", help="a ZIP or tar(.gz) archive")
    group.add_argument("--input-dir", metavar="PATH", help="an extracted recording directory")
    group.add_argument("--input-s3", metavar="URL", help="s3://bucket/key or a presigned HTTPS URL")
    p.add_argument(
        "--s3-endpoint",
        metavar="URL",
        help="S3-compatible endpoint (default: $RAWCORE_S3_ENDPOINT, else AWS)",
    )
    p.add_argument("--cache-dir", metavar="PATH", help="download cache (default ~/.cache/rawcore)")
    p.add_argument("-q", "--quiet", action="store_true", help="no warnings or progress on stderr")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="rawcore",
        description="Turn raw call recordings (rtpdump + SDP archives) into media.",
    )
    parser.add_argument("--version", action="version", version=f"rawcore {_core.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    lt = sub.add_parser(
        "list-tracks",
        help="discover the participants, sessions and tracks of a recording",
        description="List the tracks of a raw recording with their timing and packet stats.",
    )
    _add_input(lt)
    lt.add_argument(
        "--format",
        choices=["table", "json", "users", "sessions", "tracks"],
        default="table",
        help="table (default), json, or one id per line: users, sessions, tracks",
    )
    lt.add_argument(
        "--track-type",
        choices=["audio", "video", "screenshare", "all"],
        default="all",
        help="only tracks of this kind (screenshare: screen-share video and audio)",
    )
    lt.set_defaults(func=cmd_list_tracks)

    ea = sub.add_parser(
        "extract-audio",
        help="extract each participant's audio with exact timing, gaps and DTX filled",
        description=(
            "Write one audio file per session (or per participant with --stitch) whose "
            "timeline matches the call: DTX silences, losses and pauses are filled."
        ),
    )
    _add_input(ea)
    _add_output(ea)
    _add_filters(ea)
    _bool_option(ea, "--fill-gaps", "fill losses and pauses with silence")
    _bool_option(ea, "--fix-dtx", "fill DTX silences so audio does not shrink")
    ea.add_argument(
        "--format",
        choices=list(AUDIO_FORMATS),
        default="mkv",
        help="container: mkv (default), mka, webm, ogg (Ogg Opus)",
    )
    _add_stitch(ea)
    ea.set_defaults(func=cmd_extract_audio)

    ev = sub.add_parser(
        "extract-video",
        help="extract each participant's video: complete frames, black-filled gaps",
        description=(
            "Write one video file per session (or per participant with --stitch): complete "
            "frames remuxed from the first keyframe on, gaps filled with black frames."
        ),
    )
    _add_input(ev)
    _add_output(ev)
    _add_filters(ev)
    _bool_option(ev, "--fill-gaps", "fill gaps with black frames")
    ev.add_argument(
        "--format",
        choices=list(VIDEO_FORMATS),
        default="mkv",
        help="container: mkv (default) or webm (VP8, VP9, AV1)",
    )
    _add_stitch(ev)
    ev.set_defaults(func=cmd_extract_video)

    mx = sub.add_parser(
        "mux-av",
        help="combine each participant's audio and video, lip-synced, in one file",
        description=(
            "Write one Matroska file per session (or per participant with --stitch) with its "
            "video and audio placed on the call timeline: Sender Reports give lip sync."
        ),
    )
    _add_input(mx)
    _add_output(mx)
    _add_filters(mx)
    mx.add_argument(
        "--media",
        choices=list(MEDIA),
        default="both",
        help="user (camera/mic), display (screen share) or both (default)",
    )
    _bool_option(mx, "--fill-gaps", "fill gaps with black frames and silence")
    _bool_option(mx, "--fix-dtx", "fill DTX silences")
    _add_stitch(mx)
    mx.set_defaults(func=cmd_mux_av)

    ma = sub.add_parser(
        "mix-audio",
        help="mix every participant's audio into one file on the call's clock",
        description=(
            "Decode every participant, place each on the call timeline, sum with headroom and "
            "a limiter (never clipping) and encode: "
            "composite_{callType}_{callId}_audio_{callStartMs}.mp3 by default."
        ),
    )
    _add_input(ma)
    _add_output(ma)
    _add_filters(ma)
    _add_mix_options(ma)
    ma.set_defaults(func=cmd_mix_audio)

    pa = sub.add_parser(
        "process-all",
        help="audio, video, muxed and mixed outputs, manifest and QA report in one run",
        description="Run extract-audio, extract-video, mux-av and mix-audio into one folder.",
    )
    _add_input(pa)
    _add_output(pa)
    _add_filters(pa)
    _bool_option(pa, "--fill-gaps", "fill gaps with silence and black frames")
    _bool_option(pa, "--fix-dtx", "fill DTX silences")
    _add_mix_options(pa)
    pa.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    pa.add_argument("--no-qa", action="store_true", help="skip the QA report")
    pa.set_defaults(func=cmd_process_all)
    return parser


def _add_mix_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--format" if p.prog.endswith("mix-audio") else "--mix-format",
        dest="mix_format",
        choices=list(MIX_FORMATS),
        default="mp3",
        help="mixed audio format: mp3 (default), opus, m4a, flac, wav",
    )
    mix_audio = p.prog.endswith("mix-audio")
    p.add_argument(
        "--sample-rate" if mix_audio else "--mix-sample-rate",
        dest="mix_sample_rate",
        type=int,
        default=48_000,
        metavar="HZ",
        help="mixed audio sample rate (default 48000; 24000 or 16000 encode MP3 faster and "
        "keep speech intact)",
    )
    p.add_argument(
        "--bitrate" if mix_audio else "--mix-bitrate",
        dest="mix_bitrate",
        type=int,
        default=None,
        metavar="KBPS",
        help="lossy mix bit rate in kbit/s (default: mp3 64, opus 48, m4a 96 for mono)",
    )
    p.add_argument(
        "--gain",
        action="append",
        default=[],
        metavar="USER=DB",
        help="per-participant gain in dB, e.g. --gain user_2=-6 (repeatable)",
    )
    p.add_argument(
        "--normalize",
        action="store_true",
        help="bring every participant to -23 LUFS (EBU R128) before mixing",
    )


def _bit_rate(kbps: int | None) -> int | None:
    if kbps is None:
        return None
    if not 8 <= kbps <= 512:
        raise InputError(f"bit rate {kbps} kbit/s is out of range (8-512)")
    return kbps * 1000


def _gains(items: Sequence[str]) -> dict[str, float]:
    gains = {}
    for item in items:
        user, sep, value = item.rpartition("=")
        try:
            if not sep or not user:
                raise ValueError
            gains[user] = float(value)
        except ValueError:
            raise InputError(f"--gain {item!r}: expected USER=DB, e.g. user_2=-6") from None
    return gains


def _bool_option(p: argparse.ArgumentParser, name: str, help_text: str) -> None:
    """A stream-cli style boolean that defaults to true: `--x`, `--x=false`, `--x false`."""
    p.add_argument(
        name,
        type=_flag,
        nargs="?",
        const=True,
        default=True,
        metavar="BOOL",
        help=f"{help_text} (default: true)",
    )


def _add_stitch(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--stitch",
        action="store_true",
        help="one continuous file per participant across sessions and rejoins",
    )


def _flag(text: str) -> bool:
    value = text.strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _add_output(p: argparse.ArgumentParser) -> None:
    p.add_argument("--output", "-o", required=True, metavar="DIR", help="output folder")


def _add_filters(p: argparse.ArgumentParser) -> None:
    group = p.add_mutually_exclusive_group()
    group.add_argument("--user-id", metavar="ID", help="only this participant")
    group.add_argument("--session-id", metavar="ID", help="only this user session")
    group.add_argument("--track-id", metavar="ID", help="only this track")


def _selection(args: argparse.Namespace, rec: Recording) -> Selection:
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


def _report_outputs(entries: Sequence[ManifestEntry], warnings: Sequence[str], quiet: bool) -> int:
    for entry in entries:
        print(entry.path)
    if not quiet:
        for warning in warnings:
            print(f"rawcore: warning: {warning}", file=sys.stderr)
    failed = any(w.endswith("; not written") for w in warnings)
    return ExitCode.PARTIAL if failed else ExitCode.OK


def cmd_extract_video(args: argparse.Namespace, rec: Recording) -> int:
    entries, warnings = extract_video(
        rec,
        args.output,
        selection=_selection(args, rec),
        fmt=args.format,
        fill_gaps=args.fill_gaps,
        stitch=args.stitch,
        on_done=_progress_printer("writing video", show=not args.quiet),
    )
    return _report_outputs(entries, warnings, args.quiet)


def cmd_mux_av(args: argparse.Namespace, rec: Recording) -> int:
    entries, warnings = mux_av(
        rec,
        args.output,
        selection=_selection(args, rec),
        media=args.media,
        fill_gaps=args.fill_gaps,
        fix_dtx=args.fix_dtx,
        stitch=args.stitch,
        on_done=_progress_printer("muxing", show=not args.quiet),
    )
    return _report_outputs(entries, warnings, args.quiet)


def cmd_mix_audio(args: argparse.Namespace, rec: Recording) -> int:
    entries, warnings = mix_recording(
        rec,
        args.output,
        selection=_selection(args, rec),
        fmt=args.mix_format,
        gains=_gains(args.gain),
        normalize=args.normalize,
        sample_rate=args.mix_sample_rate,
        bit_rate=_bit_rate(args.mix_bitrate),
    )
    return _report_outputs(entries, warnings, args.quiet)


def cmd_process_all(args: argparse.Namespace, rec: Recording) -> int:
    selection = _selection(args, rec)
    gains = _gains(args.gain)
    # One line per stage on a terminal stderr; none for machine output (--json) or --quiet.
    with StageProgress(enabled=None if _show_progress(args) else False, label_width=5) as bars:
        entries, warnings, summary = process_all(
            rec,
            args.output,
            selection=selection,
            fill_gaps=args.fill_gaps,
            fix_dtx=args.fix_dtx,
            mix_format=args.mix_format,
            gains=gains,
            normalize=args.normalize,
            mix_sample_rate=args.mix_sample_rate,
            mix_bit_rate=_bit_rate(args.mix_bitrate),
            qa=not args.no_qa,
            on_stage=bars.begin,
            on_done=bars.count,
            on_fraction=bars.fraction,
        )
    if args.json:
        json.dump(summary, sys.stdout, indent=2)
        sys.stdout.write("\n")
        code = ExitCode.PARTIAL if any(w.endswith("; not written") for w in warnings) else 0
        if not args.quiet:
            for warning in warnings:
                print(f"rawcore: warning: {warning}", file=sys.stderr)
        return code
    return _report_outputs(entries, warnings, args.quiet)


def cmd_extract_audio(args: argparse.Namespace, rec: Recording) -> int:
    entries, warnings = extract_audio(
        rec,
        args.output,
        selection=_selection(args, rec),
        fmt=args.format,
        fill_gaps=args.fill_gaps,
        fix_dtx=args.fix_dtx,
        stitch=args.stitch,
        on_done=_progress_printer("writing audio", show=not args.quiet),
    )
    return _report_outputs(entries, warnings, args.quiet)


# --- list-tracks ------------------------------------------------------------------------


def _select(tracks: Sequence[Track], track_type: str) -> list[Track]:
    if track_type == "all":
        return list(tracks)
    if track_type == "screenshare":
        return [t for t in tracks if t.screenshare]
    return [t for t in tracks if t.kind == track_type]


def _iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds")


def track_json(track: Track) -> dict[str, Any]:
    """One track in the stable list-tracks JSON schema (documented in the README)."""
    stats = track.stats
    return {
        "participant_id": track.participant_id,
        "session_id": track.session_id,
        "track_id": track.track_id,
        "kind": track.kind,
        "track_type": track.track_type,
        "screenshare": track.screenshare,
        "codec": track.codec,
        "segment_count": len(track.segments),
        "start_unix_ms": track.start_unix_ms,
        "end_unix_ms": track.end_unix_ms,
        "start": _iso(track.start_unix_ms),
        "end": _iso(track.end_unix_ms),
        "duration_ms": track.duration_ms,
        "packets": stats.packets,
        "bytes": stats.bytes,
        "expected_packets": stats.expected,
        "lost_packets": stats.lost,
        "loss_pct": round(stats.loss_pct, 3),
        "recovered_rtx": stats.recovered_rtx,
        "duplicates": stats.duplicates,
        "reordered": stats.reordered,
        "late": stats.late,
        "jitter_ms": None if stats.jitter_ms is None else round(stats.jitter_ms, 3),
        "sender_reports": stats.sender_reports,
        "ssrcs": list(stats.ssrcs),
        "segments": [
            {
                "base_filename": s.base_filename,
                "capture": s.capture,
                "sdp": s.sdp,
                "codec": s.codec,
                "clock_rate": s.clock_rate,
                "start_unix_ms": s.start_unix_ms,
                "end_unix_ms": s.end_unix_ms,
                "duration_ms": s.duration_ms,
                "packets": s.stats.packets,
                "lost_packets": s.stats.lost,
                "capture_bytes": s.capture_size,
            }
            for s in track.segments
        ],
    }


def recording_json(rec: Recording, tracks: Sequence[Track]) -> dict[str, Any]:
    users = list(dict.fromkeys(t.participant_id for t in tracks))
    sessions = list(dict.fromkeys((t.participant_id, t.session_id) for t in tracks))
    return {
        "schema": LIST_TRACKS_SCHEMA,
        "source": rec.source,
        "metadata_source": rec.metadata_source,
        "call": {
            "call_type": rec.call_type,
            "call_id": rec.call_id,
            "call_session_id": rec.call_session_id,
            "call_start_unix_ms": rec.call_start_unix_ms,
            "start_unix_ms": rec.start_unix_ms,
            "end_unix_ms": rec.end_unix_ms,
        },
        "participant_count": len(users),
        "session_count": len(sessions),
        "track_count": len(tracks),
        "tracks": [track_json(t) for t in tracks],
        "warnings": list(rec.warnings),
    }


def _fmt_duration(ms: int) -> str:
    s, ms = divmod(ms, 1000)
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}.{ms // 100}" if h else f"{m:02d}:{s:02d}.{ms:03d}"


def _table(rec: Recording, tracks: Sequence[Track], out: TextIO) -> None:
    base = rec.start_unix_ms or 0
    header = (
        "USER",
        "SESSION",
        "TRACK",
        "TYPE",
        "CODEC",
        "SCREEN",
        "SEGS",
        "START",
        "DURATION",
        "PACKETS",
        "LOSS%",
        "JITTER",
    )
    rows = []
    for t in tracks:
        st = t.stats
        rows.append(
            (
                t.participant_id,
                t.session_id,
                t.track_id,
                t.kind,
                t.codec or "?",
                "yes" if t.screenshare else "no",
                str(len(t.segments)),
                "+" + _fmt_duration(max(0, (t.start_unix_ms or base) - base)),
                _fmt_duration(t.duration_ms),
                str(st.packets),
                f"{st.loss_pct:.2f}",
                "-" if st.jitter_ms is None else f"{st.jitter_ms:.1f}ms",
            )
        )
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    numeric = {6, 9, 10, 11}

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in numeric else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    call = rec.call_id or "(unknown call)"
    users = len({t.participant_id for t in tracks})
    sessions = len({(t.participant_id, t.session_id) for t in tracks})
    out.write(
        f"Call {rec.call_type or '?'}:{call}  started {_iso(rec.start_unix_ms) or '?'}  "
        f"{users} participant(s), {sessions} session(s), {len(tracks)} track(s)\n\n"
    )
    out.write(line(header) + "\n")
    for r in rows:
        out.write(line(r) + "\n")


def cmd_list_tracks(args: argparse.Namespace, rec: Recording) -> int:
    tracks = _select(rec.tracks, args.track_type)
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
        _table(rec, tracks, out)
    return ExitCode.OK


# --- entry point ------------------------------------------------------------------------


def _source(args: argparse.Namespace) -> str:
    return str(args.input_file or args.input_dir or args.input_s3)


def _show_progress(args: argparse.Namespace) -> bool:
    return not args.quiet and not getattr(args, "json", False)


def _progress_printer(
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


def run(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from pathlib import Path

    if args.input_dir is not None and not Path(args.input_dir).is_dir():
        if not Path(args.input_dir).exists():
            raise SourceNotFoundError(f"{args.input_dir}: no such directory")
        raise InputError(f"{args.input_dir}: not a directory (use --input-file for archives)")
    if args.input_file is not None and Path(args.input_file).is_dir():
        raise InputError(f"{args.input_file}: is a directory (use --input-dir)")
    with open_recording(
        _source(args),
        s3_endpoint=args.s3_endpoint,
        cache_dir=Path(args.cache_dir) if args.cache_dir else None,
        progress=_progress_printer(show=_show_progress(args)),
    ) as rec:
        if not args.quiet:
            for warning in rec.warnings:
                print(f"rawcore: warning: {warning}", file=sys.stderr)
        code: int = args.func(args, rec)
        return code


def main(argv: Sequence[str] | None = None) -> NoReturn:
    try:
        code = run(argv)
    except (SourceNotFoundError, InputError) as exc:
        print(f"rawcore: error: {exc}", file=sys.stderr)
        code = ExitCode.INPUT
    except RemoteError as exc:
        print(f"rawcore: error: {exc}", file=sys.stderr)
        code = ExitCode.REMOTE
    except OutputError as exc:
        print(f"rawcore: error: {exc}", file=sys.stderr)
        code = ExitCode.OUTPUT
    except RawcoreError as exc:
        print(f"rawcore: error: {exc}", file=sys.stderr)
        code = ExitCode.INPUT
    except KeyboardInterrupt:
        print("rawcore: interrupted", file=sys.stderr)
        code = 130
    except BrokenPipeError:
        code = ExitCode.OK
    except Exception as exc:  # a bug: one line, and how to get the details
        print(
            f"rawcore: internal error: {type(exc).__name__}: {exc} "
            "(set RAWCORE_DEBUG=1 for a traceback)",
            file=sys.stderr,
        )
        import os

        if os.environ.get("RAWCORE_DEBUG"):
            raise
        code = ExitCode.INTERNAL
    sys.exit(code)
