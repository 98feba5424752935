"""Background jobs: a SQLite job store with leases (`store`), worker threads (`pool`) and
conversions as cached jobs (`conversion`: `submit_conversion`, `Job.status()`, `Job.wait()`)."""

from rawcore.jobs.conversion import Job, JobStatus, submit_conversion
from rawcore.jobs.pool import WorkerPool
from rawcore.jobs.store import JobRow, JobState, JobStore

__all__ = ["Job", "JobRow", "JobState", "JobStatus", "JobStore", "WorkerPool", "submit_conversion"]
