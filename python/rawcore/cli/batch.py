"""`rawcore batch`: the batch's options, the command checked once, then every recording run
with the same parser and code as `rawcore COMMAND ...` (`run_recording`), on the local pool or
on Ray, and the summary (a progress bar on a terminal, JSON with `--json`)."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rawcore.batch.task import CommandRun
from rawcore.cli.commands import ExitCode
from rawcore.cli.dispatch import run
from rawcore.cli.parser import check_options, parser_for
from rawcore.errors import InputError, RawcoreError, SourceNotFoundError
from rawcore.progress import StageProgress

if TYPE_CHECKING:
    from rawcore.batch.on_ray import RayRunner
    from rawcore.batch.pool import LocalPool

#: Given per recording by the batch, so not accepted among the command's options.
_PER_RECORDING = ("--input-file", "--input-dir", "--input-s3", "--output", "-o")
SCHEMA = "rawcore.batch/1"


class _Usage(Exception):
    """A bad batch command line: one line, exit 2, before anything runs."""


def run_recording(argv: list[str]) -> CommandRun:
    """Run one command line as `rawcore` would, quietly: the outcome and the error's line.

    Output listings go nowhere (the batch prints its own summary); stderr is kept to explain a
    failure. Usage and input errors are final; anything else may pass on a retry."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            code = run(argv)
    except (SourceNotFoundError, InputError) as exc:
        return CommandRun(False, str(exc), retryable=False)
    except RawcoreError as exc:
        return CommandRun(False, str(exc), retryable=True)
    except SystemExit as exc:  # a usage error in a line the batch built
        return CommandRun(False, _last_lines(err.getvalue()) or f"exit {exc.code}", False)
    if code == ExitCode.OK:
        return CommandRun(True)
    reason = _last_lines(err.getvalue()) or f"exit code {code}"
    return CommandRun(False, reason, retryable=code not in (ExitCode.PARTIAL, ExitCode.INPUT))


def _last_lines(text: str, keep: int = 3) -> str:
    lines = [ln.removeprefix("rawcore: ") for ln in text.splitlines() if ln.startswith("rawcore:")]
    return "; ".join(lines[-keep:])


def _check_command(args: argparse.Namespace) -> list[str]:
    """The command and its options, parsed once up front with a stand-in input and output:
    a usage error stops the batch before anything runs (exit 2, one line)."""
    rest = list(args.command_args)
    if rest and rest[0] == "--":
        rest = rest[1:]
    given = [a for a in rest if a.split("=", 1)[0] in _PER_RECORDING]
    if given:
        raise _Usage(f"{given[0]}: the batch gives each recording its input and --output")
    trial = [args.batch_command, *rest, "--input-file", "recording.zip", "--output", "out"]
    parser = parser_for(trial)
    try:
        with contextlib.redirect_stderr(io.StringIO()) as err:
            parsed = parser.parse_args(trial)
            check_options(parser, parsed)
    except SystemExit as exc:
        if exc.code == 0:  # `COMMAND --help` printed the command's help
            raise
        message = err.getvalue().strip().splitlines()
        why = message[-1].removeprefix("rawcore: error: ") if message else "bad options"
        raise _Usage(why) from None
    if getattr(parsed, "path", None) is not None:
        raise _Usage(f"{parsed.path}: the batch gives each recording its input")
    extra = []
    if args.s3_endpoint and "--s3-endpoint" not in rest:
        extra = ["--s3-endpoint", args.s3_endpoint]
    return [args.batch_command, *rest, *extra]


def cmd_batch(args: argparse.Namespace) -> int:
    try:
        argv = _check_command(args)
    except _Usage as exc:
        print(f"rawcore: error: batch: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    from rawcore.batch.plan import from_dir, from_list, from_s3
    from rawcore.batch.task import RecordingTask, default_workers, run_all

    if args.input_list is not None:
        items = from_list(Path(args.input_list))
    elif args.input_dir is not None:
        items = from_dir(Path(args.input_dir))
    else:
        items = from_s3(args.input_s3, endpoint_url=args.s3_endpoint)
    tasks = [
        RecordingTask(item, args.output, tuple(argv), args.s3_endpoint, args.force)
        for item in items
    ]
    if args.ray is not None:
        from rawcore.batch.on_ray import RayRunner

        runner: LocalPool | RayRunner = RayRunner(run_recording, address=args.ray)
    else:
        from rawcore.batch.pool import LocalPool

        runner = LocalPool(run_recording, workers=args.workers or default_workers())
    show = not args.quiet and not args.json
    with StageProgress(enabled=None if show else False, label_width=10) as bars:
        bars.begin("recordings")
        bars.count(0, len(tasks))
        done = 0

        def counted(_outcome: object) -> None:
            nonlocal done
            done += 1
            bars.count(done, len(tasks))

        try:
            outcomes = run_all(tasks, runner, retries=args.retries, on_outcome=counted)
        finally:
            runner.close()
    counts = {k: sum(o.outcome == k for o in outcomes) for k in ("done", "skipped", "failed")}
    if args.json:
        doc = {"schema": SCHEMA, **counts, "recordings": [o.to_json() for o in outcomes]}
        json.dump(doc, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        for o in outcomes:
            if o.outcome == "failed":
                print(f"rawcore: failed: {o.input}: {o.reason}", file=sys.stderr)
        print(
            f"{counts['done']} done, {counts['skipped']} skipped, {counts['failed']} failed "
            f"({len(outcomes)} recordings) -> {args.output}"
        )
    return ExitCode.PARTIAL if counts["failed"] else ExitCode.OK
