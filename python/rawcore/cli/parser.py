"""The argument parser: stream-cli's raw-recording commands, names and flags."""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable, Container, Sequence
from pathlib import Path
from typing import Any, NoReturn

from rawcore import _core
from rawcore.cli.commands import (
    ExitCode,
    cmd_compose,
    cmd_convert,
    cmd_extract_audio,
    cmd_extract_video,
    cmd_list_tracks,
    cmd_mix_audio,
    cmd_mux_av,
    cmd_org_create,
    cmd_post_process,
    cmd_process_all,
    cmd_scene,
    cmd_serve,
    cmd_worker,
)
from rawcore.errors import InputError
from rawcore.media.formats import (
    AUDIO_FORMATS,
    DEFAULT_CRF,
    DEFAULT_MAX_FILL_MS,
    DEFAULT_PRESET,
    MEDIA,
    MIX_FORMATS,
    MODES,
    ON_LOSS,
    PRESETS,
    VIDEO_FORMATS,
)


def _terminal_columns() -> int:
    """The width `shutil.get_terminal_size` gives argparse: $COLUMNS, else the terminal's, else
    80."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns > 0:
        return columns
    if sys.__stdout__ is None:
        return 80
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns or 80
    except (ValueError, OSError):
        return 80


class _Formatter(argparse.HelpFormatter):
    """argparse's help formatter, sized without `shutil`: `add_argument` builds a formatter for
    every option, and argparse's own imports `shutil` (which loads bz2 and lzma) to ask for the
    terminal's width, a few ms of every command's start-up."""

    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: int | None = None,
    ) -> None:
        width = _terminal_columns() - 2 if width is None else width
        super().__init__(prog, indent_increment, max_help_position, width)


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(ExitCode.USAGE, f"rawcore: error: {message}\n")


def _add_input(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "path",
        nargs="?",
        metavar="PATH",
        help="the recording: an archive, a folder, or an s3:// or https:// URL (the same as "
        "--input-file, --input-dir or --input-s3)",
    )
    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "--input-file",
        metavar="PATH",
        help="a ZIP or tar(.gz) archive, or a pcap, pcapng or Janus .mjr capture",
    )
    group.add_argument(
        "--input-dir",
        metavar="PATH",
        help="an extracted recording directory, or a folder of .mjr / pcap captures",
    )
    group.add_argument("--input-s3", metavar="URL", help="s3://bucket/key or a presigned HTTPS URL")
    p.add_argument(
        "--s3-endpoint",
        metavar="URL",
        help="S3-compatible endpoint (default: $RAWCORE_S3_ENDPOINT, else AWS)",
    )
    p.add_argument("--cache-dir", metavar="PATH", help="download cache (default ~/.cache/rawcore)")
    p.add_argument(
        "--pt",
        action="append",
        default=[],
        metavar="PT=CODEC/CLOCK[/CH]",
        help="for pcap/.mjr input: what a payload type means, e.g. 111=opus/48000/2 (repeat "
        "for each; without it or an SDP, codecs are guessed from the payloads)",
    )
    p.add_argument(
        "--sdp",
        metavar="PATH",
        help="for pcap/.mjr input: the session description (default: CAPTURE.sdp beside it)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no warnings or progress on stderr")


def _add_on_loss(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--on-loss",
        choices=list(ON_LOSS),
        default="freeze",
        help="after a video loss until the next decodable frame: freeze (default: hold the last "
        "picture), black, or conceal (write the inter frames anyway, with artefacts)",
    )


def build_parser(
    only: Container[str] | None = None, *, list_all: bool = True
) -> argparse.ArgumentParser:
    """The command line's parser, with the options of the commands in `only` (default: every
    command's); with `list_all` the others are still listed (for `rawcore --help` and the
    "invalid choice" error), without their options. Building every command costs argparse
    about 10 ms, most of it looking for translations of its own texts once per sub-parser: a
    large part of a short command's start-up, so `parser_for` builds only what argv needs."""
    parser = _Parser(
        prog="rawcore",
        description="Turn raw call recordings (rtpdump + SDP archives) into media.",
    )
    parser.add_argument("--version", action="version", version=f"rawcore {_core.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, (options, help_text, description) in COMMANDS.items():
        if only is None or name in only:
            options(sub.add_parser(name, help=help_text, description=description))
        elif list_all:
            sub.add_parser(name, help=help_text, description=description)
    return parser


def parser_for(argv: Sequence[str]) -> argparse.ArgumentParser:
    """The parser `argv` needs. The top level has no option that takes a value, so argparse
    takes a first word that is a command as the command and hands all the rest to that
    command's parser: no other command is needed. Anything else (an option first, no command,
    an unknown one) gets every command listed, without their options: the top level's help
    and errors are the same as with the full parser."""
    if argv and argv[0] in COMMANDS:
        return build_parser({argv[0]}, list_all=False)
    return build_parser((), list_all=True)


def _list_tracks_options(lt: argparse.ArgumentParser) -> None:
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


def _extract_audio_options(ea: argparse.ArgumentParser) -> None:
    _add_input(ea)
    _add_output(ea)
    _add_filters(ea)
    _bool_option(ea, "--fill-gaps", "fill losses and pauses with silence")
    _add_max_fill(ea)
    _bool_option(ea, "--fix-dtx", "fill DTX silences so audio does not shrink")
    _bool_option(ea, "--fec", "rebuild lost frames from the next packet's in-band FEC")
    ea.add_argument(
        "--format",
        choices=list(AUDIO_FORMATS),
        default="mkv",
        help="container: mkv (default), mka, webm, ogg (Ogg Opus)",
    )
    _add_stitch(ea)
    ea.set_defaults(func=cmd_extract_audio)


def _extract_video_options(ev: argparse.ArgumentParser) -> None:
    _add_input(ev)
    _add_output(ev)
    _add_filters(ev)
    _bool_option(ev, "--fill-gaps", "fill gaps with black frames")
    _add_max_fill(ev)
    _add_on_loss(ev)
    ev.add_argument(
        "--format",
        choices=list(VIDEO_FORMATS),
        default="mkv",
        help="container: mkv (default) or webm (VP8, VP9, AV1)",
    )
    _add_stitch(ev)
    ev.set_defaults(func=cmd_extract_video)


def _mux_av_options(mx: argparse.ArgumentParser) -> None:
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
    _add_max_fill(mx)
    _bool_option(mx, "--fix-dtx", "fill DTX silences")
    _add_on_loss(mx)
    _bool_option(mx, "--fec", "rebuild lost audio frames from the next packet's in-band FEC")
    _add_stitch(mx)
    mx.set_defaults(func=cmd_mux_av)


def _mix_audio_options(ma: argparse.ArgumentParser) -> None:
    _add_input(ma)
    _add_output(ma)
    _add_filters(ma)
    _add_mix_options(ma)
    _add_max_fill(ma)
    ma.set_defaults(func=cmd_mix_audio)


def _process_all_options(pa: argparse.ArgumentParser) -> None:
    _add_input(pa)
    _add_output(pa)
    _add_filters(pa)
    _bool_option(pa, "--fill-gaps", "fill gaps with silence and black frames")
    _add_max_fill(pa)
    _bool_option(pa, "--fix-dtx", "fill DTX silences")
    _add_on_loss(pa)
    _bool_option(pa, "--fec", "rebuild lost audio frames from the next packet's in-band FEC")
    _add_mix_options(pa)
    pa.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    pa.add_argument("--no-qa", action="store_true", help="skip the QA report")
    pa.set_defaults(func=cmd_process_all)


def _scene_options(sc: argparse.ArgumentParser) -> None:
    _add_input(sc)
    sc.add_argument("--output", "-o", metavar="DIR", help="the project folder to write")
    sc.add_argument("--events", metavar="events.jsonl", help="the studio's event log (JSON lines)")
    sc.add_argument(
        "--participants", metavar="names.json", help="display names: {participant_id: name}"
    )
    sc.add_argument("--no-clip", action="store_true", help="skip the automatic clip")
    sc.add_argument(
        "--print-schema", action="store_true", help="print the scene's JSON Schema and exit"
    )
    sc.set_defaults(func=cmd_scene, standalone=True)


def _convert_options(cv: argparse.ArgumentParser) -> None:
    _add_input(cv)
    where = cv.add_mutually_exclusive_group(required=True)
    where.add_argument("--output", "-o", metavar="OUT.mp4", help="the MP4 to write")
    where.add_argument(
        "--storage", metavar="DIR|s3://BUCKET/PREFIX",
        help="convert as a cached job into {org}/conversions/ of this storage; prints where",
    )  # fmt: skip
    cv.add_argument("--org", default="local", help="the organization (default: local)")
    cv.add_argument(
        "--room",
        help="with --track-id: the recording's room, recorded in the manifest entry and the job "
        "(default: {call_type}-{call_id} of the recording)",
    )
    cv.add_argument("--db", metavar="PATH", help="job store for --storage (default: in the cache)")
    cv.add_argument(
        "--mode", choices=list(MODES), default="editor", help="editor (default) or remux"
    )
    cv.add_argument("--audio", metavar="PATH", help="take the audio from this file instead")
    cv.add_argument("--no-audio", action="store_true", help="video only")
    cv.add_argument("--track-id", metavar="ID", help="a track of the recording PATH")
    _add_stitch(cv)
    cv.add_argument(
        "--preset", choices=list(PRESETS), default=DEFAULT_PRESET,
        help=f"x264 preset for --mode editor (default {DEFAULT_PRESET}; ultrafast is faster)",
    )  # fmt: skip
    cv.add_argument(
        "--crf", type=int, default=DEFAULT_CRF, metavar="N",
        help=f"x264 quality for --mode editor, 0-51 (default {DEFAULT_CRF})",
    )  # fmt: skip
    cv.set_defaults(func=cmd_convert, standalone=True)


def _post_process_options(pp: argparse.ArgumentParser) -> None:
    _add_input(pp)
    where_pp = pp.add_mutually_exclusive_group(required=True)
    where_pp.add_argument("--output", "-o", metavar="DIR", help="a folder storage")
    where_pp.add_argument("--storage", metavar="DIR|s3://BUCKET/PREFIX",
                          help="the storage: a folder or an S3 bucket and prefix")  # fmt: skip
    pp.add_argument("--org", default="local", help="the organization (default: local)")
    pp.add_argument("--room", help="the room (default: {call_type}-{call_id} of the recording)")
    pp.add_argument(
        "--recording-id", metavar="ID",
        help="the recording's id in the storage (default: the input's name without extension)",
    )  # fmt: skip
    pp.add_argument("--events", metavar="events.jsonl",
                    help="the studio's event log, for the scene")  # fmt: skip
    pp.add_argument("--no-clip", action="store_true",
                    help="leave the clip render for a later run (the raw tracks, stitched "
                    "tracks and scene are stored without waiting for it)")  # fmt: skip
    pp.set_defaults(func=cmd_post_process, standalone=True)


def _worker_options(wk: argparse.ArgumentParser) -> None:
    wk.add_argument("--db", required=True, metavar="PATH", help="the job store (SQLite file)")
    wk.add_argument("--threads", type=_positive_int, default=2, help="worker threads (default 2)")
    wk.add_argument(
        "--lease", type=float, default=30.0, metavar="S",
        help="seconds a job stays claimed without a heartbeat (default 30)",
    )  # fmt: skip
    wk.add_argument(
        "--idle-exit", type=float, default=None, metavar="S",
        help="exit after this many seconds without a job",
    )  # fmt: skip
    wk.add_argument(
        "--service",
        action="store_true",
        help="run the service's ingest jobs too (rawcore serve --worker-process)",
    )
    wk.add_argument(
        "--nice",
        type=int,
        default=0,
        metavar="N",
        help="lower the workers' CPU priority by N (rawcore serve uses 10)",
    )
    _add_ray_jobs(wk)
    wk.add_argument("--exit-with-parent", action="store_true", help=argparse.SUPPRESS)
    wk.set_defaults(func=cmd_worker, standalone=True)


def _serve_options(sv: argparse.ArgumentParser) -> None:
    sv.add_argument("--storage", metavar="DIR|s3://BUCKET/PREFIX",
                    help="where tracks and MP4s go (default rawcore-data/storage)")  # fmt: skip
    sv.add_argument(
        "--db", metavar="PATH", help="the SQLite file (default rawcore-data/rawcore.sqlite)"
    )
    sv.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    sv.add_argument("--port", type=_positive_int, default=8000, help="port (default 8000)")
    sv.add_argument(
        "--allow-source", action="append", default=[], metavar="PATTERN",
        help="a source URL pattern ingest may fetch (s3://bucket/*, https://host/path/*); "
        "repeatable; none: uploads only",
    )  # fmt: skip
    sv.add_argument("--max-upload", default="2G", metavar="SIZE",
                    help="largest upload (default 2G; K, M, G)")  # fmt: skip
    sv.add_argument("--workers", type=_positive_int, default=2, help="worker threads (default 2)")
    sv.add_argument(
        "--worker-process", action="store_true",
        help="run the workers in one child process (rawcore worker --service) instead of "
        "threads of the server: conversions then never hold the server's GIL",
    )  # fmt: skip
    sv.add_argument("--s3-endpoint", metavar="URL", help="an S3-compatible endpoint")
    _add_ray_jobs(sv)
    sv.set_defaults(func=cmd_serve, standalone=True)


def _batch_options(bt: argparse.ArgumentParser) -> None:
    src = bt.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--input-list", metavar="FILE",
        help="one recording per line: a path, s3:// or https:// URL (# comments)",
    )  # fmt: skip
    src.add_argument(
        "--input-s3", metavar="s3://BUCKET/PREFIX/",
        help="every .zip, .tar, .tar.gz, .tgz object under the prefix",
    )  # fmt: skip
    src.add_argument(
        "--input-dir", metavar="DIR",
        help="every archive in DIR and every sub-folder that is a recording",
    )  # fmt: skip
    bt.add_argument("--output", "-o", required=True, metavar="DIR|s3://BUCKET/PREFIX",
                    help="one folder per recording under it")  # fmt: skip
    bt.add_argument(
        "--ray", nargs="?", const="auto", default=None, metavar="ADDRESS",
        help="run as Ray tasks instead of local processes: on the cluster `ray start` runs here "
        "(auto, the default), at ray://HOST:PORT, or on a fresh local instance (local); needs "
        "rawcore[ray]",
    )  # fmt: skip
    bt.add_argument("--workers", type=_positive_int, default=None, metavar="N",
                    help="local processes at once (default: one per core)")  # fmt: skip
    bt.add_argument("--retries", type=_non_negative_int, default=2, metavar="N",
                    help="attempts after a failure that may pass (default 2)")  # fmt: skip
    bt.add_argument("--force", action="store_true", help="redo recordings already complete")
    bt.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    bt.add_argument(
        "--s3-endpoint", metavar="URL",
        help="S3-compatible endpoint (default: $RAWCORE_S3_ENDPOINT, else AWS)",
    )  # fmt: skip
    bt.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    bt.add_argument("batch_command", metavar="COMMAND", choices=BATCH_COMMANDS,
                    help="the command to run on each recording")  # fmt: skip
    bt.add_argument("command_args", nargs=argparse.REMAINDER, metavar="...",
                    help="the command's own options")  # fmt: skip
    bt.set_defaults(standalone=True)


def _compose_options(cp: argparse.ArgumentParser) -> None:
    cp.add_argument("--scene", required=True, metavar="SCENE.json", help="the scene file")
    cp.add_argument("--output", "-o", required=True, metavar="OUT.mp4", help="the MP4 to write")
    cp.add_argument("--edits", metavar="EDITS.json", help="per-participant edits (rawcore.edits/1)")
    cp.add_argument(
        "--trim-pauses", action="store_true", help="cut the scene's pauses from video and audio"
    )
    part = cp.add_mutually_exclusive_group()
    part.add_argument(
        "--range", dest="range_ms", metavar="START_MS-END_MS",
        help="render this part only, in the scene's original time (before pauses are cut)",
    )  # fmt: skip
    part.add_argument("--clip", action="store_true", help="render the scene's clip only")
    cp.add_argument(
        "--preset", choices=["fast", "balanced", "quality"], default="balanced",
        help="x264 superfast, veryfast (default: balanced) or medium",
    )  # fmt: skip
    cp.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    cp.set_defaults(func=cmd_compose, standalone=True)


def _org_options(og: argparse.ArgumentParser) -> None:
    og_sub = og.add_subparsers(dest="org_command", required=True, metavar="ACTION")
    oc = og_sub.add_parser("create", help="a new organization; prints its API key last")
    oc.add_argument("name", help="the organization's name")
    oc.add_argument("--db", metavar="PATH", help="the service's SQLite file (as for serve)")
    oc.set_defaults(func=cmd_org_create, standalone=True)


#: The commands `rawcore batch` runs: those that write a folder of outputs and a manifest.
BATCH_COMMANDS = ("process-all", "extract-audio", "extract-video", "mux-av", "mix-audio")

#: Every command in `rawcore --help` order: what adds its options, its line in that list and
#: the description its own `--help` opens with.
COMMANDS: dict[str, tuple[Callable[[argparse.ArgumentParser], None], str, str | None]] = {
    "list-tracks": (
        _list_tracks_options,
        "discover the participants, sessions and tracks of a recording",
        "List the tracks of a raw recording with their timing and packet stats.",
    ),
    "extract-audio": (
        _extract_audio_options,
        "extract each participant's audio with exact timing, gaps and DTX filled",
        (
            "Write one audio file per session (or per participant with --stitch) whose "
            "timeline matches the call: DTX silences, losses and pauses are filled."
        ),
    ),
    "extract-video": (
        _extract_video_options,
        "extract each participant's video: complete frames, the last picture held after a loss",
        (
            "Write one video file per session (or per participant with --stitch): complete "
            "frames remuxed from the first keyframe on; after a loss the last picture is held "
            "until the next decodable frame, and black fills what has no picture (a paused "
            "camera, the time before a participant's first frame or between sessions)."
        ),
    ),
    "mux-av": (
        _mux_av_options,
        "combine each participant's audio and video, lip-synced, in one file",
        (
            "Write one Matroska file per session (or per participant with --stitch) with its "
            "video and audio placed on the call timeline: Sender Reports give lip sync."
        ),
    ),
    "mix-audio": (
        _mix_audio_options,
        "mix every participant's audio into one file on the call's clock",
        (
            "Decode every participant, place each on the call timeline, sum with headroom and "
            "a limiter (never clipping) and encode: "
            "composite_{callType}_{callId}_audio_{callStartMs}.mp3 by default."
        ),
    ),
    "process-all": (
        _process_all_options,
        "audio, video, muxed and mixed outputs, manifest and QA report in one run",
        "Run extract-audio, extract-video, mux-av and mix-audio into one folder.",
    ),
    "scene": (
        _scene_options,
        "the call as an editor project: scene.json, scene.otio and the stitched tracks",
        (
            "Write DIR/scene.json (rawcore.scene/1), DIR/scene.otio (OpenTimelineIO) and the "
            "stitched per-participant tracks under DIR/tracks/ (reused when there): the layout "
            "from the studio's event log (--events), else a grid of everyone with video with "
            "an active screen share large; pauses, hooks and an automatic 30-60 s clip."
        ),
    ),
    "convert": (
        _convert_options,
        "one MP4 from a media file or a track of a recording (remux or editor-ready)",
        (
            "Write one MP4: remux (VP9/AV1/H.264 + Opus as they are) or editor (H.264 + AAC, "
            "constant frame rate, one size, audio and video from t=0 to the same end). PATH "
            "is a media file, or with --track-id a recording whose track is paired with its "
            "session's other medium on the call timeline."
        ),
    ),
    "post-process": (
        _post_process_options,
        "the post-recording pipeline of one recording, resumable: finalize, raw tracks, "
        "stitched tracks, scene, clip",
        (
            "Run the steps of the post-recording pipeline the recording's metadata document "
            "({org}/recordings/{id}/metadata.json) does not list as done: complete the composed "
            "video's pending upload, store every raw track and the stitched tracks, build the "
            "scene, render the scene's auto clip. Run it again after a failure: finished steps are "
            "skipped, nothing is duplicated. Prints the metadata document's location."
        ),
    ),
    "worker": (
        _worker_options,
        "run background conversion jobs from a job store",
        "Claim and run jobs from the SQLite job store PATH until interrupted.",
    ),
    "serve": (
        _serve_options,
        "run the HTTP service (API + Raw Tracks page) with workers in process",
        "Serve the API (/v1, OpenAPI at /docs) and the Raw Tracks page.",
    ),
    "batch": (
        _batch_options,
        "run one command over many recordings (local processes or a Ray cluster)",
        (
            "Run COMMAND on every recording of a list, an S3 prefix or a folder; each "
            "recording's outputs go to OUTPUT/{recording name}/ (the archive's name without "
            "extension), its manifest last. A recording whose manifest is there is skipped "
            "(--force redoes it); failures are retried, then reported. COMMAND is one of "
            + ", ".join(BATCH_COMMANDS)
            + ", followed by its own options (not its input or --output)."
        ),
    ),
    "compose": (
        _compose_options,
        "render a scene (rawcore.scene/1) into one H.264 + AAC MP4",
        (
            "Render a scene offline: the canvas, its background, each host's picture in its "
            "box and shape, every participant's audio on the call clock; with the edits of "
            "--edits, pauses cut with --trim-pauses, a part with --range or --clip."
        ),
    ),
    "org": (
        _org_options,
        "manage organizations of the service",
        None,
    ),
}


def _add_ray_jobs(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--ray", nargs="?", const="auto", default=None, metavar="ADDRESS",
        help="run conversion jobs as Ray tasks on this cluster (auto, ray://HOST:PORT, or "
        "local); the workers keep the leases and wait; needs rawcore[ray]",
    )  # fmt: skip


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more, got {text!r}")
    return value


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
        type=_positive_int,
        default=48_000,
        metavar="HZ",
        help="mixed audio sample rate (default 48000; 24000 or 16000 encode MP3 faster and "
        "keep speech intact)",
    )
    p.add_argument(
        "--bitrate" if mix_audio else "--mix-bitrate",
        dest="mix_bitrate",
        type=_positive_int,
        default=None,
        metavar="KBPS",
        help="lossy mix bit rate in kbit/s (default: mp3 64, opus 48, m4a 96 for mono)",
    )
    p.add_argument(
        "--gain",
        type=_gain,
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


def _duration_ms(text: str) -> int:
    """`3h`, `90m`, `45s` or plain seconds, as milliseconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([hms]?)\s*", text.lower())
    if m is None:
        raise argparse.ArgumentTypeError(f"expected a duration like 3h, 90m, 45s, got {text!r}")
    scale = {"h": 3_600_000, "m": 60_000, "s": 1_000, "": 1_000}[m.group(2)]
    ms = round(float(m.group(1)) * scale)
    if ms <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive duration, got {text!r}")
    return ms


def _add_max_fill(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--max-fill",
        dest="max_fill_ms",
        type=_duration_ms,
        default=DEFAULT_MAX_FILL_MS,
        metavar="DURATION",
        help="a gap longer than this is not filled: the output is split there into _part2, "
        "… (3h, 90m, 45s or seconds; default 3h)",
    )


def _add_stitch(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--stitch",
        action="store_true",
        help="one continuous file per participant across sessions and rejoins",
    )


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _gain(text: str) -> tuple[str, float]:
    user, sep, value = text.rpartition("=")
    try:
        if not sep or not user:
            raise ValueError
        return user, float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected USER=DB, e.g. user_2=-6") from None


def check_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Checks across options, before anything is opened or written: a usage error (exit 2).

    A positional path becomes the input option it stands for: a URL `--input-s3`, a folder
    `--input-dir`, anything else `--input-file`."""
    if args.command in ("worker", "serve", "org", "batch", "compose"):
        return
    if args.command == "post-process" and args.recording_id is None:
        from rawcore.storage.keys import recording_name

        source = next(s for s in (args.path, args.input_file, args.input_dir, args.input_s3,
                                  "") if s is not None)  # fmt: skip
        args.recording_id = recording_name(source)
    if args.command == "scene":
        if args.print_schema:
            return
        if args.output is None:
            parser.error("the project folder is missing: give --output DIR")
    if args.command == "convert":
        if args.track_id is None and (args.input_dir or args.input_s3):
            parser.error("--input-dir and --input-s3 name a recording: give --track-id too")
        if args.room is not None and args.track_id is None:
            parser.error("--room names the room of a recording: give --track-id too")
        if args.audio is not None and (args.no_audio or args.track_id is not None):
            parser.error("--audio goes with a media file PATH, without --no-audio/--track-id")
        if args.path is None and args.input_file is None and args.track_id is None:
            parser.error("the input is missing: give PATH (a media file or, with --track-id, a "
                         "recording)")  # fmt: skip
        if args.track_id is None:
            return
    given = [o for o in ("input_file", "input_dir", "input_s3") if getattr(args, o) is not None]
    if args.path is not None:
        if given:
            parser.error("give the recording once: as PATH or with --input-file/-dir/-s3")
        if re.match(r"^(s3|https?)://", args.path, flags=re.IGNORECASE):
            args.input_s3 = args.path
        elif Path(args.path).is_dir():
            args.input_dir = args.path
        else:
            args.input_file = args.path
    elif not given:
        parser.error(
            "the recording is missing: give PATH or --input-file, --input-dir or --input-s3"
        )
    if getattr(args, "mix_format", None) is None:
        return
    from rawcore.media.mix import check_encoding  # the mixer's rule, loaded when mixing

    bit_rate = None if args.mix_bitrate is None else args.mix_bitrate * 1000
    try:
        check_encoding(args.mix_format, args.mix_sample_rate, bit_rate)
    except InputError as exc:
        parser.error(str(exc))


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
