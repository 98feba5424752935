"""Workers: threads that claim jobs from the store, run them and record the outcome.

A handler takes the job and a progress callback (0..1) and returns the job's result (JSON). A
heartbeat thread extends the job's lease every third of it while the handler runs, so only a
worker that died (or hung without a heartbeat) loses its job to another. An input error is the
job's final word (`failed`, no retry); any other error is retried while attempts remain.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Mapping
from typing import Any

from rawcore.errors import InputError, OutputError, RemoteError, SourceNotFoundError
from rawcore.jobs.store import JobRow, JobStore

Handler = Callable[[JobRow, Callable[[float], None]], dict[str, Any]]


class WorkerPool:
    """`threads` workers on `store`, running the job kinds `handlers` knows."""

    def __init__(
        self,
        store: JobStore,
        handlers: Mapping[str, Handler],
        *,
        threads: int = 2,
        poll_s: float = 0.2,
    ) -> None:
        self.store = store
        self.handlers = dict(handlers)
        self.threads = threads
        self.poll_s = poll_s
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []
        self._busy = 0
        self._lock = threading.Lock()

    @property
    def busy(self) -> int:
        with self._lock:
            return self._busy

    def start(self) -> WorkerPool:
        for i in range(self.threads):
            name = f"{socket.gethostname()}:{os.getpid()}:{i}"
            t = threading.Thread(target=self._loop, args=(name,), name=f"rawcore-worker-{i}",
                                 daemon=True)  # fmt: skip
            t.start()
            self._workers.append(t)
        return self

    def stop(self, timeout: float | None = None) -> None:
        self._stop.set()
        for t in self._workers:
            t.join(timeout)

    def run_once(self, worker: str = "once") -> bool:
        """Claim and run one job in this thread; False when none was waiting."""
        job = self.store.claim(worker, tuple(self.handlers))
        if job is None:
            return False
        self._run(job, worker)
        return True

    def _loop(self, worker: str) -> None:
        while not self._stop.is_set():
            try:
                ran = self.run_once(worker)
            except Exception:  # the store itself failed (disk full, locked): try again later
                ran = False
            if not ran:
                self._stop.wait(self.poll_s)

    def _run(self, job: JobRow, worker: str) -> None:
        with self._lock:
            self._busy += 1
        progress = [0.0]
        done = threading.Event()

        def beat() -> None:
            while not done.wait(self.store.lease_s / 3):
                self.store.beat(job.id, worker, progress[0])

        def report(fraction: float) -> None:
            # Reported often by the handler; written at most every heartbeat, plus the first.
            first = progress[0] == 0.0
            progress[0] = fraction
            if first:
                self.store.beat(job.id, worker, fraction)

        heart = threading.Thread(target=beat, daemon=True)
        heart.start()
        try:
            result = self.handlers[job.kind](job, report)
        except (InputError, SourceNotFoundError) as exc:
            done.set()
            self.store.fail(job.id, worker, str(exc), retry=False, kind="input")
        except (RemoteError, OutputError) as exc:
            done.set()
            kind = "remote" if isinstance(exc, RemoteError) else "output"
            self.store.fail(job.id, worker, str(exc), retry=True, kind=kind)
        except Exception as exc:
            done.set()
            self.store.fail(job.id, worker, f"{type(exc).__name__}: {exc}", retry=True)
        else:
            done.set()
            self.store.finish(job.id, worker, result)
        finally:
            done.set()
            heart.join()
            with self._lock:
                self._busy -= 1


__all__ = ["Handler", "WorkerPool"]
