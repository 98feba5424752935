"""One command line, parsed and run on its recording: what `rawcore COMMAND ...` does, and what
`rawcore batch` does for each recording of a batch (so every option behaves the same there)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from rawcore.cli.commands import load_command, progress_printer, show_progress
from rawcore.cli.parser import check_options, parser_for
from rawcore.errors import InputError, SourceNotFoundError


def _source(args: argparse.Namespace) -> str:
    return str(args.input_file or args.input_dir or args.input_s3)


def run(argv: Sequence[str] | None = None) -> int:
    """Parse `argv` and run its command (not `batch`): the exit code."""
    argv = sys.argv[1:] if argv is None else argv
    parser = parser_for(argv)
    args = parser.parse_args(argv)
    check_options(parser, args)
    return run_parsed(args)


def run_parsed(args: argparse.Namespace) -> int:
    if getattr(args, "standalone", False):  # convert and worker open their own inputs
        code: int = args.func(args)
        return code

    if args.input_dir is not None and not Path(args.input_dir).is_dir():
        if not Path(args.input_dir).exists():
            raise SourceNotFoundError(f"{args.input_dir}: no such directory")
        raise InputError(f"{args.input_dir}: not a directory (use --input-file for archives)")
    if args.input_file is not None and Path(args.input_file).is_dir():
        raise InputError(f"{args.input_file}: is a directory (use --input-dir)")
    # Loaded once the command line holds up: --version, --help and usage errors skip it.
    # The captures' analysis starts first (on threads: the core releases the GIL), and the
    # layers the command runs load while the core analyses.
    from rawcore.recording.reading import start_reading
    from rawcore.source.captures import parse_pt_option

    reading = start_reading(
        _source(args),
        s3_endpoint=args.s3_endpoint,
        cache_dir=Path(args.cache_dir) if args.cache_dir else None,
        payload_types=dict(parse_pt_option(text) for text in getattr(args, "pt", [])),
        sdp=getattr(args, "sdp", None),
        # Every writing command builds the call timeline: read it in the analysis pass.
        streams=args.command != "list-tracks",
    )
    try:
        from rawcore.recording.build import recording_from

        load_command(args.command)
    except BaseException:
        reading.close()
        raise
    with recording_from(reading, progress=progress_printer(show=show_progress(args))) as rec:
        if not args.quiet:
            for warning in rec.warnings:
                print(f"rawcore: warning: {warning}", file=sys.stderr)
        code = args.func(args, rec)
        return code
