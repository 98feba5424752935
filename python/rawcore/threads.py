"""Running a function over a few items on threads: `map_in_threads`.

The work inside is the core's (a capture analysed, a track written), which releases the GIL,
so threads run it in parallel. `concurrent.futures` would do the same, but importing it costs
every command a few ms of start-up (it loads `logging`, `traceback` and more); this is the one
shape rawcore needs: results in the order of the items, each handed over as soon as it and
those before it are done.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Sequence
from typing import TypeVar, cast

__all__ = ["map_in_threads"]

T = TypeVar("T")
R = TypeVar("R")


def map_in_threads(
    fn: Callable[[T], R], items: Sequence[T], workers: int
) -> Generator[R, None, None]:
    """`fn(item)` for every item on up to `workers` threads, yielded in the order of `items`.

    An exception raised by `fn` is raised here when its item's turn comes. Leaving the loop
    early (an exception, `break`) starts no further item and waits for the running ones, so no
    thread outlives the call.
    """
    count = len(items)
    if count <= 1 or workers <= 1:
        yield from map(fn, items)  # one at a time: no thread to start
        return
    results: list[R | None] = [None] * count
    errors: list[BaseException | None] = [None] * count
    done = [threading.Event() for _ in range(count)]
    lock = threading.Lock()
    taken = 0
    stop = False

    def work() -> None:
        nonlocal taken
        while True:
            with lock:
                i = taken
                if stop or i >= count:
                    return
                taken = i + 1
            try:
                results[i] = fn(items[i])
            except BaseException as exc:  # handed to the caller, in its turn
                errors[i] = exc
            finally:
                done[i].set()

    threads = [
        threading.Thread(target=work, name=f"rawcore-{n}", daemon=True)
        for n in range(min(workers, count))
    ]
    for thread in threads:
        thread.start()
    try:
        for i in range(count):
            done[i].wait()
            error = errors[i]
            if error is not None:
                raise error
            yield cast(R, results[i])  # its item is done, without an error
    finally:
        with lock:
            stop = True
        for thread in threads:
            thread.join()
