"""The Ray runner (`--ray auto|ADDRESS`, extra `rawcore[ray]`): the same attempts as Ray tasks.

Each task runs `rawcore.batch.task.attempt` on a worker of an existing Ray cluster: it opens
its recording through the worker's download cache, runs the command, publishes the outputs
(on a cluster, `--output` is an `s3://` prefix every node can reach) and returns the outcome
with the manifest. Ray's own retries are off: a crashed worker comes back here as a failed
attempt and the batch's loop retries it like any other, so `--retries` means one thing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rawcore.batch.task import Command, Outcome, RecordingTask, attempt, crashed
from rawcore.jobs.on_ray import connect_ray

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["RayRunner"]


class RayRunner:
    """A `Runner` over Ray tasks (one CPU each) on the cluster at `address` (`auto`: the one
    `ray start` runs here; `local`: a fresh instance in this process for this batch), unless
    Ray is already initialised in this process (then it uses that one and leaves it running)."""

    def __init__(self, command: Command, *, address: str) -> None:
        ray, self._owned = connect_ray(address)
        self._ray = ray
        self.capacity = max(1, int(ray.cluster_resources().get("CPU", 1)))
        self._task: Callable[..., Any] = ray.remote(num_cpus=1, max_retries=0)(attempt)
        self.command = command
        self._running: dict[Any, tuple[int, RecordingTask]] = {}

    def submit(self, key: int, task: RecordingTask) -> None:
        ref = self._task.remote(task, self.command)  # type: ignore[attr-defined]
        self._running[ref] = (key, task)

    def next_done(self) -> tuple[int, Outcome]:
        ray = self._ray
        (ref,), _ = ray.wait(list(self._running), num_returns=1)
        key, task = self._running.pop(ref)
        try:
            outcome: Outcome = ray.get(ref)
        except ray.exceptions.RayError as exc:  # the worker or its node died
            outcome = crashed(task, type(exc).__name__)
        return key, outcome

    def close(self) -> None:
        for ref in self._running:
            self._ray.cancel(ref, force=True)
        self._running.clear()
        if self._owned:
            self._ray.shutdown()
