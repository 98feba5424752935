"""`rawcore.threads.map_in_threads`: the core's work on a few threads, results in item order."""

from __future__ import annotations

import threading
import time

import pytest
from rawcore.threads import map_in_threads, start_in_threads


@pytest.mark.parametrize(
    ("items", "workers"),
    [
        pytest.param([], 4, id="no items: nothing, no thread"),
        pytest.param([7], 4, id="one item"),
        pytest.param(list(range(20)), 1, id="one worker: in turn"),
        pytest.param(list(range(20)), 3, id="more items than workers"),
        pytest.param(list(range(3)), 8, id="more workers than items"),
    ],
)
def test_results_come_in_the_order_of_the_items(items: list[int], workers: int) -> None:
    def slow_square(x: int) -> int:
        time.sleep(0.001 * ((x * 7) % 5))  # later items often finish first
        return x * x

    assert list(map_in_threads(slow_square, items, workers)) == [x * x for x in items]


def test_the_items_run_at_the_same_time() -> None:
    barrier = threading.Barrier(3, timeout=10)  # only passes if three run at once

    def meet(x: int) -> int:
        barrier.wait()
        return x

    assert list(map_in_threads(meet, [1, 2, 3], 3)) == [1, 2, 3]


def test_an_error_is_raised_in_its_turn_and_no_thread_outlives_the_call() -> None:
    seen: list[int] = []

    def fail_on_two(x: int) -> int:
        if x == 2:
            raise ValueError("two")
        return x

    before = threading.active_count()
    with pytest.raises(ValueError, match="two"):
        for result in map_in_threads(fail_on_two, list(range(50)), 4):
            seen.append(result)
    assert seen == [0, 1]
    assert threading.active_count() == before


def test_leaving_the_loop_early_starts_no_further_item() -> None:
    started: list[int] = []
    lock = threading.Lock()

    def record(x: int) -> int:
        with lock:
            started.append(x)
        time.sleep(0.005)
        return x

    before = threading.active_count()
    results = map_in_threads(record, list(range(100)), 2)
    assert next(results) == 0
    results.close()  # what a `break` or an exception in the caller's loop does
    assert len(started) < 10
    assert threading.active_count() == before


def test_started_work_runs_before_anyone_asks_for_it() -> None:
    """`start_in_threads` begins at once (the CLI analyses captures while it imports)."""
    ran = threading.Event()

    def note(x: int) -> int:
        ran.set()
        return x + 1

    running = start_in_threads(note, [1, 2, 3], 1)  # one worker still means a thread
    try:
        assert ran.wait(timeout=10), "nothing ran before the results were asked for"
        assert list(running) == [2, 3, 4]
    finally:
        running.close()


def test_closing_started_work_waits_for_the_running_item_and_starts_no_other() -> None:
    started: list[int] = []
    release = threading.Event()

    def slow(x: int) -> int:
        started.append(x)
        release.wait(timeout=10)
        return x

    before = threading.active_count()
    running = start_in_threads(slow, list(range(10)), 1)
    while not started:
        time.sleep(0.001)
    timer = threading.Timer(0.05, release.set)  # lets item 0 end while `close` waits for it
    timer.start()
    running.close()
    timer.join()
    assert started == [0]
    assert threading.active_count() == before
