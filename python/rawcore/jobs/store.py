"""The job store: one SQLite file (WAL), a row per job, leases so a dead worker loses nothing.

States: `queued` → `running` (progress 0..1, a heartbeat that extends the lease) → `done` |
`failed` (a one-line reason). A worker claims the oldest queued job, or a running one whose
lease expired (its worker died); each claim counts an attempt, and a job whose attempts are
used up fails instead. A job is unique per (kind, organization, cache key): submitting the same
work twice returns the same row, so two concurrent requests run it once. SQLite wants a local
disk; several processes on one host share the file (`BEGIN IMMEDIATE` serialises claims).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from rawcore.errors import OutputError

JobState = Literal["queued", "running", "done", "failed"]
DEFAULT_LEASE_S = 30.0
DEFAULT_MAX_ATTEMPTS = 3

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    org TEXT NOT NULL,
    cache_key TEXT NOT NULL,
    params TEXT NOT NULL,
    state TEXT NOT NULL,
    progress REAL NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    worker TEXT,
    lease_until REAL,
    heartbeat REAL,
    result TEXT,
    error TEXT,
    error_kind TEXT,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    UNIQUE (kind, org, cache_key)
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state, created);
"""


@dataclass(frozen=True)
class JobRow:
    id: str
    kind: str
    org: str
    cache_key: str
    params: dict[str, Any]
    state: JobState
    progress: float
    attempts: int
    max_attempts: int
    worker: str | None
    lease_until: float | None
    heartbeat: float | None
    result: dict[str, Any] | None
    error: str | None
    #: What kind of failure `error` is: input | remote | output | internal.
    error_kind: str | None = None


def _row(r: sqlite3.Row) -> JobRow:
    return JobRow(
        id=r["id"],
        kind=r["kind"],
        org=r["org"],
        cache_key=r["cache_key"],
        params=json.loads(r["params"]),
        state=r["state"],
        progress=float(r["progress"]),
        attempts=int(r["attempts"]),
        max_attempts=int(r["max_attempts"]),
        worker=r["worker"],
        lease_until=r["lease_until"],
        heartbeat=r["heartbeat"],
        result=json.loads(r["result"]) if r["result"] else None,
        error=r["error"],
        error_kind=r["error_kind"],
    )


class SqliteFile:
    """One SQLite file in WAL mode, made with `schema` on first use, with a connection per
    thread (a connection is not shared across threads); the job store and the service's
    tables open theirs the same way."""

    def __init__(self, path: str | os.PathLike[str], schema: str, what: str) -> None:
        self.path = Path(path)
        self._local = threading.local()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db().executescript(schema)
        except sqlite3.Error as exc:
            raise OutputError(f"{self.path}: cannot open the {what} ({exc})") from None

    def db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db = db
        return db


class JobStore:
    """The jobs in the SQLite file `path` (made on first use)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        lease_s: float = DEFAULT_LEASE_S,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    ) -> None:
        self._file = SqliteFile(path, _SCHEMA, "job store")
        self.path = self._file.path
        self.lease_s = lease_s
        self.max_attempts = max_attempts

    def _db(self) -> sqlite3.Connection:
        return self._file.db()

    class _Tx:
        def __init__(self, db: sqlite3.Connection) -> None:
            self.db = db

        def __enter__(self) -> sqlite3.Connection:
            self.db.execute("BEGIN IMMEDIATE")
            return self.db

        def __exit__(self, kind: object, *_: object) -> None:
            self.db.execute("ROLLBACK" if kind else "COMMIT")

    def _tx(self) -> JobStore._Tx:
        return JobStore._Tx(self._db())

    def get(self, job_id: str) -> JobRow | None:
        r = self._db().execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return None if r is None else _row(r)

    def submit(
        self, kind: str, org: str, cache_key: str, params: dict[str, Any]
    ) -> tuple[JobRow, bool]:
        """The job for this work: the existing row (a failed one queued again), or a new one.
        The flag says whether a new row was made."""
        now = time.time()
        with self._tx() as db:
            r = db.execute(
                "SELECT * FROM jobs WHERE kind = ? AND org = ? AND cache_key = ?",
                (kind, org, cache_key),
            ).fetchone()
            if r is not None:
                if r["state"] == "failed":
                    db.execute(
                        "UPDATE jobs SET state='queued', attempts=0, error=NULL, error_kind=NULL, "
                        "progress=0, "
                        "params=?, updated=? WHERE id=?",
                        (json.dumps(params), now, r["id"]),
                    )
                job_id, made = str(r["id"]), False
            else:
                job_id, made = uuid.uuid4().hex, True
                db.execute(
                    "INSERT INTO jobs (id, kind, org, cache_key, params, state, max_attempts, "
                    "created, updated) VALUES (?, ?, ?, ?, ?, 'queued', ?, ?, ?)",
                    (job_id, kind, org, cache_key, json.dumps(params), self.max_attempts, now,
                     now),
                )  # fmt: skip
        row = self.get(job_id)
        assert row is not None, "the job was just read or written in this transaction"
        return row, made

    def requeue(self, job_id: str) -> None:
        """Run a done or failed job again (its output is gone, or it has more to do)."""
        with self._tx() as db:
            db.execute(
                "UPDATE jobs SET state='queued', attempts=0, progress=0, result=NULL, "
                "error=NULL, error_kind=NULL, updated=? "
                "WHERE id=? AND state IN ('done', 'failed')",
                (time.time(), job_id),
            )

    def claim(self, worker: str, kinds: tuple[str, ...]) -> JobRow | None:
        """The next job for `worker` (queued, or running with an expired lease), now running."""
        now = time.time()
        marks = ",".join("?" * len(kinds))
        with self._tx() as db:
            db.execute(
                "UPDATE jobs SET state='failed', updated=?, error_kind='internal', "
                "error='its worker stopped ' || "
                "attempts || ' times before it finished' WHERE state='running' AND "
                "lease_until < ? AND attempts >= max_attempts",
                (now, now),
            )
            r = db.execute(
                f"SELECT id FROM jobs WHERE kind IN ({marks}) AND (state='queued' OR "
                "(state='running' AND lease_until < ?)) ORDER BY created LIMIT 1",
                (*kinds, now),
            ).fetchone()
            if r is None:
                return None
            db.execute(
                "UPDATE jobs SET state='running', worker=?, attempts=attempts+1, progress=0, "
                "lease_until=?, heartbeat=?, updated=? WHERE id=?",
                (worker, now + self.lease_s, now, now, r["id"]),
            )
        return self.get(str(r["id"]))

    def beat(self, job_id: str, worker: str, progress: float) -> bool:
        """Record progress and extend the lease; False when the job is no longer this
        worker's (its lease expired and another worker took it)."""
        now = time.time()
        with self._tx() as db:
            cur = db.execute(
                "UPDATE jobs SET progress=?, heartbeat=?, lease_until=?, updated=? "
                "WHERE id=? AND worker=? AND state='running'",
                (max(0.0, min(1.0, progress)), now, now + self.lease_s, now, job_id, worker),
            )
            return cur.rowcount == 1

    def finish(self, job_id: str, worker: str, result: dict[str, Any]) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE jobs SET state='done', progress=1, result=?, error=NULL, updated=? "
                "WHERE id=? AND worker=? AND state='running'",
                (json.dumps(result), time.time(), job_id, worker),
            )

    def fail(
        self, job_id: str, worker: str, reason: str, *, retry: bool, kind: str = "internal"
    ) -> None:
        """The attempt failed: queued again while attempts remain and `retry`, else failed."""
        line = " ".join(reason.split()) or "failed"
        with self._tx() as db:
            db.execute(
                "UPDATE jobs SET state = CASE WHEN ? AND attempts < max_attempts THEN 'queued' "
                "ELSE 'failed' END, error=?, error_kind=?, updated=? WHERE id=? AND worker=? "
                "AND state='running'",
                (retry, line, kind, time.time(), job_id, worker),
            )


__all__ = ["DEFAULT_LEASE_S", "DEFAULT_MAX_ATTEMPTS", "JobRow", "JobState", "JobStore"]
