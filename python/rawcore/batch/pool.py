"""The local runner: attempts in child processes, one per core, with no extra dependency.

Each attempt runs in a process of its own, forked from a fork server that has already imported
rawcore (so a start costs milliseconds, not an interpreter start-up), and answers through a
pipe. A child that dies without answering (killed, out of memory, a crash in native code) is an
attempt that failed and may be retried: its pipe closes, the loop sees it, and nothing else in
the batch is disturbed.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import signal
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from rawcore.batch.task import Command, Outcome, RecordingTask, abandon, attempt, crashed

__all__ = ["LocalPool"]

#: Imported once by the fork server, so every attempt starts with them loaded.
_PRELOAD = ["rawcore.batch.task", "rawcore.recording.build", "rawcore.pipeline.process"]


def _child(command: Command, task: RecordingTask, conn: Connection) -> None:
    # Ctrl-C reaches the whole process group: the batch stops its children itself (close()).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    conn.send(attempt(task, command))
    conn.close()


class LocalPool:
    """A `Runner` over at most `workers` child processes at a time."""

    def __init__(self, command: Command, *, workers: int) -> None:
        self.command = command
        self.capacity = workers
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload([*_PRELOAD, command.__module__])
        self._ctx = ctx
        self._running: dict[Connection, tuple[int, RecordingTask, BaseProcess]] = {}

    def submit(self, key: int, task: RecordingTask) -> None:
        ours, theirs = self._ctx.Pipe(duplex=False)
        proc = self._ctx.Process(
            target=_child, args=(self.command, task, theirs), name=f"rawcore-batch-{key}"
        )
        proc.start()
        theirs.close()  # the child holds the only write end: its death closes the pipe
        self._running[ours] = (key, task, proc)

    def next_done(self) -> tuple[int, Outcome]:
        # An answer and a death both make the pipe readable (a dead child's end is closed).
        conn = multiprocessing.connection.wait(list(self._running))[0]
        assert isinstance(conn, Connection)  # wait() hands back what it was given
        key, task, proc = self._running.pop(conn)
        try:
            answer: Outcome | None = conn.recv()
        except (EOFError, OSError):
            answer = None
        finally:
            conn.close()
        proc.join()
        return key, answer if answer is not None else crashed(task, _exit_reason(proc.exitcode))

    def close(self) -> None:
        """Stop any attempt still running (an interrupted batch)."""
        for _key, task, proc in self._running.values():
            proc.kill()
            proc.join()
            abandon(task)
        for conn in self._running:
            conn.close()
        self._running.clear()


def _exit_reason(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"
