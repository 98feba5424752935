"""Job handlers run as Ray tasks (`rawcore serve --ray ADDRESS`, `rawcore worker --ray`).

`on_ray(handler)` is a handler with the same contract whose work runs on a Ray cluster: the
worker thread that claimed the job keeps it (its heartbeat extends the lease) and waits for the
task, so the job store, leases and retries stay exactly as they are; only the CPU-heavy body
moves. An error raised in the task comes back as itself (an input error still fails the job
at once); a task whose Ray worker died is a `RemoteError`, retried like any other. The task
cannot report progress (a job on Ray shows 0 until it is done). Only handlers that need
nothing of this process belong there: a conversion reads its source and writes its storage
(on a cluster, `s3://`); the service's ingest records tracks in its SQLite file and stays home.
"""

from __future__ import annotations

from typing import Any

from rawcore.errors import InputError, RemoteError
from rawcore.jobs.pool import Handler
from rawcore.jobs.store import JobRow

__all__ = ["connect_ray", "on_ray"]


def _run(handler: Handler, job: JobRow) -> dict[str, Any]:
    return handler(job, lambda _fraction: None)


def connect_ray(address: str) -> tuple[Any, bool]:
    """The `ray` module, connected to the cluster at `address` (`auto`, `ray://HOST:PORT`, or
    `local` for a fresh instance) unless this process runs Ray already; and whether this call
    started the connection (so its owner shuts it down)."""
    try:
        import ray
    except ImportError:
        raise InputError("--ray needs Ray: pip install 'rawcore[ray]'") from None
    if ray.is_initialized():
        return ray, False
    try:
        ray.init(address=None if address == "local" else address,
                 include_dashboard=False, log_to_driver=False)  # fmt: skip
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise RemoteError(f"cannot reach the Ray cluster at {address}: {exc}") from None
    return ray, True


def on_ray(handler: Handler, *, address: str) -> Handler:
    """`handler` as Ray tasks on the cluster at `address` (see `connect_ray`), or on the Ray
    instance this process already runs."""
    ray, _ = connect_ray(address)
    task = ray.remote(num_cpus=1, max_retries=0)(_run)

    def run(job: JobRow, progress: Any) -> dict[str, Any]:
        ref = task.remote(handler, job)
        try:
            result: dict[str, Any] = ray.get(ref)
        except ray.exceptions.RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, Exception):
                raise cause from None  # the handler's own error, typed as it was raised
            raise RemoteError(f"the Ray task failed: {exc}") from None
        except ray.exceptions.RayError as exc:  # the Ray worker or its node died
            raise RemoteError(f"the Ray task died: {type(exc).__name__}") from None
        return result

    return run
