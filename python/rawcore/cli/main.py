"""The `rawcore` command line: stream-cli's raw-recording commands, names and flags.

Every command takes one input (`--input-file`, `--input-dir` or `--input-s3`). Errors end as
one line on stderr and a documented exit code, never a traceback: see `ExitCode`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import NoReturn

from rawcore.cli.commands import ExitCode
from rawcore.cli.dispatch import run_parsed
from rawcore.cli.parser import check_options, parser_for
from rawcore.errors import (
    InputError,
    OutputError,
    RawcoreError,
    RemoteError,
    SourceNotFoundError,
)


def run(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = parser_for(argv)
    args = parser.parse_args(argv)
    check_options(parser, args)
    if args.command == "batch":
        from rawcore.cli.batch import cmd_batch  # loaded for a batch only

        return cmd_batch(args)
    return run_parsed(args)


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
