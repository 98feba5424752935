"""One recording's attempt, and the loop that runs every attempt on a runner with retries.

`attempt` is what a worker does for one recording, wherever it runs (a local process, a Ray
task): skip it when its outputs and manifest exist (unless forced), run the command into a
staging folder, publish the folder (the manifest last) and hand back the outcome with the
manifest. The command itself comes from the caller (the CLI passes one that parses and runs a
command line exactly as `rawcore COMMAND ...` would), so this room knows no command.

`run_all` keeps a runner busy and retries a failed attempt up to `retries` times when the
failure may pass (a crashed worker, S3, a write); a bad recording fails once. Every recording
ends with exactly one outcome: done, skipped or failed, with the reason.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, NamedTuple, Protocol

from rawcore.batch.deliver import discard, open_destination, read_manifest
from rawcore.batch.plan import BatchItem
from rawcore.errors import InputError, RawcoreError, SourceNotFoundError

__all__ = [
    "Command", "CommandRun", "Outcome", "RecordingTask", "Runner", "abandon", "attempt", "crashed",
    "run_all",
]  # fmt: skip

OutcomeKind = Literal["done", "skipped", "failed"]


class CommandRun(NamedTuple):
    """What a command did on one recording: success, or why not and whether to try again."""

    ok: bool
    reason: str | None = None
    retryable: bool = False


#: Runs one command line (`[command, options..., --input-x, SOURCE, --output, DIR]`).
Command = Callable[[list[str]], CommandRun]


@dataclass(frozen=True)
class RecordingTask:
    """Everything a worker needs for one recording: plain data, so it pickles anywhere."""

    item: BatchItem
    output: str  # the batch's --output (a folder or s3://bucket/prefix)
    argv: tuple[str, ...]  # the command and its own options, without input or output
    s3_endpoint: str | None = None
    force: bool = False
    attempt: int = 1

    def command_line(self, out_dir: Path) -> list[str]:
        source = self.item.input
        if self.item.is_remote:
            flag = "--input-s3"
        elif Path(source).is_dir():
            flag = "--input-dir"
        else:
            flag = "--input-file"
        return [*self.argv, flag, source, "--output", str(out_dir)]


@dataclass
class Outcome:
    """How one recording ended (`manifest` only when done by this run)."""

    input: str
    output: str
    outcome: OutcomeKind
    reason: str | None = None
    attempts: int = 1
    retryable: bool = False
    manifest: dict[str, Any] | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "input": self.input,
            "output": self.output,
            "outcome": self.outcome,
            "reason": self.reason,
            "attempts": self.attempts,
        }


def attempt(task: RecordingTask, command: Command) -> Outcome:
    """Process one recording once (in whatever process runs it)."""
    name = task.item.name
    try:
        dest = open_destination(task.output, s3_endpoint=task.s3_endpoint)
        where = dest.describe(name)
    except RawcoreError as exc:
        return Outcome(task.item.input, task.output, "failed", str(exc), task.attempt)

    def failed(reason: str, retryable: bool) -> Outcome:
        return Outcome(task.item.input, where, "failed", reason, task.attempt, retryable)

    try:
        if not task.force and dest.complete(name):
            return Outcome(
                task.item.input, where, "skipped", "outputs and manifest exist", task.attempt
            )
        staging = dest.staging(name)
    except (InputError, SourceNotFoundError) as exc:
        return failed(str(exc), False)
    except RawcoreError as exc:
        return failed(str(exc), True)
    try:
        run = command(task.command_line(staging))
        if not run.ok:
            discard(staging)
            return failed(run.reason or "the command failed", run.retryable)
        manifest = read_manifest(staging)
        dest.publish(staging, name)
    except RawcoreError as exc:
        discard(staging)
        return failed(str(exc), not isinstance(exc, InputError | SourceNotFoundError))
    except Exception as exc:  # a bug in a command: reported with the recording, retried
        discard(staging)
        return failed(f"internal error: {type(exc).__name__}: {exc}", True)
    return Outcome(task.item.input, where, "done", None, task.attempt, manifest=manifest)


class Runner(Protocol):
    """Runs attempts somewhere: `submit` starts one, `next_done` blocks for a finished one."""

    #: How many attempts may run at once (more wait in the loop, not in the runner).
    capacity: int

    def submit(self, key: int, task: RecordingTask) -> None: ...

    def next_done(self) -> tuple[int, Outcome]: ...


def abandon(task: RecordingTask) -> str:
    """Clear what a dead attempt left staged (where this process can see it); where the
    recording's outputs go."""
    try:
        dest = open_destination(task.output, s3_endpoint=task.s3_endpoint)
        dest.abandon(task.item.name)
        return dest.describe(task.item.name)
    except RawcoreError:
        return task.output  # the next attempt clears what it can


def crashed(task: RecordingTask, why: str) -> Outcome:
    """The outcome of an attempt whose worker died before answering (always retryable)."""
    where = abandon(task)
    return Outcome(task.item.input, where, "failed", f"the worker died: {why}", task.attempt, True)


def run_all(
    tasks: Sequence[RecordingTask],
    runner: Runner,
    *,
    retries: int,
    on_outcome: Callable[[Outcome], None] | None = None,
) -> list[Outcome]:
    """Every task to its final outcome, in the order of `tasks`."""
    final: list[Outcome | None] = [None] * len(tasks)
    waiting = list(range(len(tasks)))[::-1]  # popped from the end: first task first
    current = list(tasks)
    running = 0
    while waiting or running:
        while waiting and running < runner.capacity:
            key = waiting.pop()
            runner.submit(key, current[key])
            running += 1
        key, outcome = runner.next_done()
        running -= 1
        task = current[key]
        if outcome.outcome == "failed" and outcome.retryable and task.attempt <= retries:
            current[key] = replace(task, attempt=task.attempt + 1)
            waiting.append(key)  # next in line
            continue
        final[key] = outcome
        if on_outcome is not None:
            on_outcome(outcome)
    return [o for o in final if o is not None]


def default_workers() -> int:
    """One worker per core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)
