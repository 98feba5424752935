"""The API contract: request and response bodies (pydantic), as `/docs` shows them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class SourceIngest(BaseModel):
    """`POST /v1/recordings` with a JSON body: a recording to fetch from an allowed URL."""

    model_config = ConfigDict(extra="forbid")
    source: str = Field(
        description="s3://bucket/key or https://… (only what --allow-source allows)"
    )
    room: str = Field(min_length=1, max_length=128)
    participants: dict[str, str] = Field(default_factory=dict,
                                         description="participant id → display name")  # fmt: skip


class IngestAccepted(BaseModel):
    job_id: str
    recording_id: str


class Recording(BaseModel):
    recording_id: str
    room: str
    state: Literal["queued", "running", "done", "failed"]
    error: str | None
    job_id: str
    created: float
    participants: dict[str, str]
    call_id: str | None = None
    call_start_unix_ms: int | None = None
    page_url: str


class RecordingList(BaseModel):
    recordings: list[Recording]


class Track(BaseModel):
    track_id: str
    participant_id: str
    participant_name: str
    kind: Literal["audio", "video"]
    screenshare: bool
    stitched: bool
    session_id: str | None
    #: Stream's own track ids this file holds.
    stream_track_ids: list[str]
    codec: str
    container: str
    duration_ms: int
    bytes: int
    file_name: str
    preview_url: str
    download_url: str


class TrackList(BaseModel):
    recording_id: str
    state: Literal["queued", "running", "done", "failed"]
    tracks: list[Track]


class ConversionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mode: Literal["editor", "remux"] = "editor"


class Job(BaseModel):
    job_id: str
    kind: str
    state: Literal["queued", "running", "done", "failed"]
    progress: float
    error: str | None
    error_kind: str | None
    result: dict[str, Any] | None


class Problem(BaseModel):
    detail: str


__all__ = ["ConversionRequest", "IngestAccepted", "Job", "Problem", "Recording",
           "RecordingList", "SourceIngest", "Track", "TrackList"]  # fmt: skip
