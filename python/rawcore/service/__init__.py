"""The rawcore service: FastAPI + uvicorn on top of the job store and the storage layout.

`create_app(Settings(...))` makes the app; `rawcore serve` runs it and `rawcore org create`
makes an organization and its API key. Rooms, bottom first: `config`, `store` (organizations,
keys, recordings, tracks in the job store's SQLite file), `signing` and `sources` (signed URLs;
which source URLs may be fetched), `ingest` (the ingest job), `models` (the API contract),
`deps` (the context and the caller's organization), `jobs_view`, `routes/`, `app`.
"""

from __future__ import annotations

from rawcore.service.app import create_app, serve
from rawcore.service.config import Settings

__all__ = ["Settings", "create_app", "serve"]
