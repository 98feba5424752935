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


#: Commands that, once `run` returns, have closed and renamed every output into place and
#: closed their recording (its maps and temp files): nothing is left for the interpreter's
#: teardown to finish.
_ENDS_CLEAN = frozenset({"list-tracks", "extract-audio", "extract-video"})


def _exit(code: int, command: str | None) -> NoReturn:
    """Exit with `code`. After a command of `_ENDS_CLEAN`, with stdout and stderr flushed,
    nothing registered to run at exit and no other thread alive, the process ends here
    (`os._exit`) instead of tearing the interpreter down object by object (~10 ms of an
    extraction's wall time: the kernel frees the memory at once); otherwise `sys.exit`."""
    import atexit
    import os
    import threading

    if command in _ENDS_CLEAN and atexit._ncallbacks() == 0 and threading.active_count() == 1:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except BrokenPipeError:  # the reader left: what the output was for is gone anyway
            pass
        except OSError:  # e.g. a full disk: the interpreter's own exit reports it
            sys.exit(code)
        os._exit(code)
    sys.exit(code)


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """The `rawcore` command: `argv` (else the process's own arguments) run, then the exit.
    Called with `argv`, as a library or a test does, it always leaves through `sys.exit`."""
    # The process's own command line: the process may end without the interpreter's teardown.
    command = sys.argv[1] if argv is None and len(sys.argv) > 1 else None
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
    _exit(code, command)
