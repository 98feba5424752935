"""The `rawcore` command line: stream-cli's raw-recording commands, names and flags.

Every command takes one input (`--input-file`, `--input-dir` or `--input-s3`). Errors end as
one line on stderr and a documented exit code, never a traceback: see `ExitCode`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from rawcore.cli.commands import ExitCode, progress_printer, show_progress
from rawcore.cli.parser import build_parser, check_options
from rawcore.errors import (
    InputError,
    OutputError,
    RawcoreError,
    RemoteError,
    SourceNotFoundError,
)


def _source(args: argparse.Namespace) -> str:
    return str(args.input_file or args.input_dir or args.input_s3)


def run(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_options(parser, args)
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
    from rawcore.recording.build import open_recording
    from rawcore.source.captures import parse_pt_option

    with open_recording(
        _source(args),
        s3_endpoint=args.s3_endpoint,
        cache_dir=Path(args.cache_dir) if args.cache_dir else None,
        progress=progress_printer(show=show_progress(args)),
        payload_types=dict(parse_pt_option(text) for text in getattr(args, "pt", [])),
        sdp=getattr(args, "sdp", None),
    ) as rec:
        if not args.quiet:
            for warning in rec.warnings:
                print(f"rawcore: warning: {warning}", file=sys.stderr)
        code = args.func(args, rec)
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
