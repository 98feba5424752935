"""Running a function over a few items on threads: `map_in_threads`, and `start_in_threads`
for work that should begin now and be collected later.

The work inside is the core's (a capture analysed, a track written), which releases the GIL,
so threads run it in parallel. `concurrent.futures` would do the same, but importing it costs
every command a few ms of start-up (it loads `logging`, `traceback` and more); this is the one
shape rawcore needs: results in the order of the items, each handed over as soon as it and
those before it are done.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Generator, Iterator, Sequence
from typing import Generic, TypeVar, cast

__all__ = ["InThreads", "core_workers", "map_in_threads", "start_in_threads"]


def core_workers() -> int:
    """Threads for core work that releases the GIL (one capture each): one per core, at most 8,
    where more only adds memory for the captures in flight."""
    return min(8, os.cpu_count() or 2)


T = TypeVar("T")
R = TypeVar("R")


class InThreads(Generic[T, R]):
    """`fn(item)` for every item, started at once on up to `workers` threads (at least one:
    the point is to work while the caller does something else). Iterate for the results in the
    order of the items; `close` starts no further item and waits for the running ones."""

    def __init__(self, fn: Callable[[T], R], items: Sequence[T], workers: int) -> None:
        self._fn = fn
        self._items = items
        count = len(items)
        self._results: list[R | None] = [None] * count
        self._errors: list[BaseException | None] = [None] * count
        self._done = [threading.Event() for _ in range(count)]
        self._lock = threading.Lock()
        self._taken = 0
        self._stop = False
        self._threads = [
            threading.Thread(target=self._work, name=f"rawcore-{n}", daemon=True)
            for n in range(min(max(workers, 1), count))
        ]
        for thread in self._threads:
            thread.start()

    def _work(self) -> None:
        while True:
            with self._lock:
                i = self._taken
                if self._stop or i >= len(self._items):
                    return
                self._taken = i + 1
            try:
                self._results[i] = self._fn(self._items[i])
            except BaseException as exc:  # handed to the caller, in its turn
                self._errors[i] = exc
            finally:
                self._done[i].set()

    def __iter__(self) -> Iterator[R]:
        """The results in item order, each as soon as it is done; an exception raised by `fn`
        is raised here when its item's turn comes."""
        for i in range(len(self._items)):
            self._done[i].wait()
            error = self._errors[i]
            if error is not None:
                raise error
            yield cast(R, self._results[i])  # its item is done, without an error

    def close(self) -> None:
        """Start no further item and wait for the running ones: no thread outlives this."""
        with self._lock:
            self._stop = True
        for thread in self._threads:
            thread.join()


def start_in_threads(fn: Callable[[T], R], items: Sequence[T], workers: int) -> InThreads[T, R]:
    """`fn(item)` for every item, begun now on up to `workers` threads; see `InThreads`."""
    return InThreads(fn, items, workers)


def map_in_threads(
    fn: Callable[[T], R], items: Sequence[T], workers: int
) -> Generator[R, None, None]:
    """`fn(item)` for every item on up to `workers` threads, yielded in the order of `items`.

    An exception raised by `fn` is raised here when its item's turn comes. Leaving the loop
    early (an exception, `break`) starts no further item and waits for the running ones, so no
    thread outlives the call.
    """
    if len(items) <= 1 or workers <= 1:
        yield from map(fn, items)  # one at a time: no thread to start
        return
    running = InThreads(fn, items, workers)
    try:
        yield from running
    finally:
        running.close()
