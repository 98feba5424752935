"""The service's rows, in the job store's SQLite file: organizations and their hashed API keys,
recordings and their tracks, and the secret that signs URLs.

Every read that a request makes takes the organization and matches it in SQL, so a row of
another organization is simply not found. Ids are minted here (`rec_…`, `trk_…`: random,
opaque); Stream's own ids are fields.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rawcore.jobs.store import SqliteFile

_SCHEMA = """
CREATE TABLE IF NOT EXISTS orgs (id TEXT PRIMARY KEY, name TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS api_keys (
    hash TEXT PRIMARY KEY, org TEXT NOT NULL REFERENCES orgs(id), created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS service_secrets (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS recordings (
    id TEXT PRIMARY KEY, org TEXT NOT NULL, room TEXT NOT NULL, source TEXT NOT NULL,
    participants TEXT NOT NULL, job_id TEXT NOT NULL, created REAL NOT NULL,
    call_id TEXT, call_start_unix_ms INTEGER);
CREATE INDEX IF NOT EXISTS recordings_org ON recordings (org, created);
CREATE TABLE IF NOT EXISTS tracks (
    id TEXT PRIMARY KEY, org TEXT NOT NULL, recording_id TEXT NOT NULL,
    participant_id TEXT NOT NULL, session_id TEXT, stream_track_ids TEXT NOT NULL,
    kind TEXT NOT NULL, screenshare INTEGER NOT NULL, stitched INTEGER NOT NULL,
    codec TEXT NOT NULL, container TEXT NOT NULL, duration_ms INTEGER NOT NULL,
    bytes INTEGER NOT NULL, key TEXT NOT NULL, name TEXT NOT NULL, position INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS tracks_recording ON tracks (org, recording_id, position);
"""


def hash_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode("utf-8", "surrogatepass")).hexdigest()


def mint(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


@dataclass(frozen=True)
class Org:
    id: str
    name: str


@dataclass(frozen=True)
class RecordingRow:
    id: str
    org: str
    room: str
    source: str
    participants: dict[str, str]
    job_id: str
    created: float
    call_id: str | None
    call_start_unix_ms: int | None


@dataclass(frozen=True)
class TrackRow:
    id: str
    org: str
    recording_id: str
    participant_id: str
    session_id: str | None
    stream_track_ids: list[str]
    kind: str
    screenshare: bool
    stitched: bool
    codec: str
    container: str
    duration_ms: int
    bytes: int
    key: str
    name: str
    position: int


def _recording(r: sqlite3.Row) -> RecordingRow:
    return RecordingRow(
        r["id"], r["org"], r["room"], r["source"], json.loads(r["participants"]), r["job_id"],
        r["created"], r["call_id"], r["call_start_unix_ms"],
    )  # fmt: skip


def _track(r: sqlite3.Row) -> TrackRow:
    return TrackRow(
        r["id"], r["org"], r["recording_id"], r["participant_id"], r["session_id"],
        json.loads(r["stream_track_ids"]), r["kind"], bool(r["screenshare"]),
        bool(r["stitched"]), r["codec"], r["container"], int(r["duration_ms"]), int(r["bytes"]),
        r["key"], r["name"], int(r["position"]),
    )  # fmt: skip


class ServiceStore:
    """The service's tables in the SQLite file `path` (the job store's file)."""

    def __init__(self, path: str | Path) -> None:
        self._file = SqliteFile(path, _SCHEMA, "service store")
        self.path = self._file.path

    def _db(self) -> sqlite3.Connection:
        return self._file.db()

    # organizations and keys

    def create_org(self, name: str) -> tuple[Org, str]:
        """A new organization and its first API key (returned once; only its hash is kept)."""
        org = Org(mint("org"), name)
        api_key = "rk_" + secrets.token_urlsafe(32)
        now = time.time()
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("INSERT INTO orgs VALUES (?, ?, ?)", (org.id, name, now))
            db.execute("INSERT INTO api_keys VALUES (?, ?, ?)", (hash_key(api_key), org.id, now))
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return org, api_key

    def org_for_key(self, api_key: str) -> Org | None:
        r = (
            self._db()
            .execute(
                "SELECT orgs.id, orgs.name FROM api_keys JOIN orgs ON orgs.id = api_keys.org "
                "WHERE api_keys.hash = ?",
                (hash_key(api_key),),
            )
            .fetchone()
        )
        return None if r is None else Org(r["id"], r["name"])

    def org(self, org_id: str) -> Org | None:
        r = self._db().execute("SELECT id, name FROM orgs WHERE id = ?", (org_id,)).fetchone()
        return None if r is None else Org(r["id"], r["name"])

    def secret(self) -> bytes:
        """The URL-signing secret, made on first use and shared by every process on the file."""
        db = self._db()
        db.execute("INSERT OR IGNORE INTO service_secrets VALUES ('url', ?)",
                   (secrets.token_hex(32),))  # fmt: skip
        r = db.execute("SELECT value FROM service_secrets WHERE name = 'url'").fetchone()
        return bytes.fromhex(r["value"])

    # recordings and tracks

    def add_recording(self, rec: RecordingRow) -> None:
        self._db().execute(
            "INSERT INTO recordings VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (rec.id, rec.org, rec.room, rec.source, json.dumps(rec.participants), rec.job_id,
             rec.created, rec.call_id, rec.call_start_unix_ms),
        )  # fmt: skip

    def recording(self, org: str, recording_id: str) -> RecordingRow | None:
        r = (
            self._db()
            .execute("SELECT * FROM recordings WHERE org = ? AND id = ?", (org, recording_id))
            .fetchone()
        )
        return None if r is None else _recording(r)

    def recordings(self, org: str, limit: int = 100, offset: int = 0) -> list[RecordingRow]:
        rows = (
            self._db()
            .execute(
                "SELECT * FROM recordings WHERE org = ? ORDER BY created DESC, id LIMIT ? OFFSET ?",
                (org, limit, offset),
            )
            .fetchall()
        )
        return [_recording(r) for r in rows]

    def set_tracks(
        self, org: str, recording_id: str, tracks: list[TrackRow], call: dict[str, Any]
    ) -> None:
        """Replace the recording's tracks (an ingest that ran again writes them anew)."""
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("DELETE FROM tracks WHERE org = ? AND recording_id = ?", (org, recording_id))
            for t in tracks:
                db.execute(
                    "INSERT INTO tracks VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (t.id, t.org, t.recording_id, t.participant_id, t.session_id,
                     json.dumps(t.stream_track_ids), t.kind, int(t.screenshare),
                     int(t.stitched), t.codec, t.container, t.duration_ms, t.bytes, t.key,
                     t.name, t.position),
                )  # fmt: skip
            db.execute(
                "UPDATE recordings SET call_id = ?, call_start_unix_ms = ? "
                "WHERE org = ? AND id = ?",
                (call.get("call_id"), call.get("call_start_unix_ms"), org, recording_id),
            )
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def tracks(self, org: str, recording_id: str) -> list[TrackRow]:
        rows = (
            self._db()
            .execute(
                "SELECT * FROM tracks WHERE org = ? AND recording_id = ? ORDER BY position",
                (org, recording_id),
            )
            .fetchall()
        )
        return [_track(r) for r in rows]

    def track(self, org: str, track_id: str) -> TrackRow | None:
        r = (
            self._db()
            .execute("SELECT * FROM tracks WHERE org = ? AND id = ?", (org, track_id))
            .fetchone()
        )
        return None if r is None else _track(r)


__all__ = ["Org", "RecordingRow", "ServiceStore", "TrackRow", "hash_key", "mint"]
