"""What every route depends on: the service's context, and the caller's organization.

`current_org` is the one place a request becomes an organization: the API key of
`Authorization: Bearer …`, or the page's session cookie (`rawcore_session`, made from `?key=`
once). Every query a route makes takes that organization; a row of another one is not found.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request

from rawcore.jobs.store import JobRow, JobStore
from rawcore.service.config import Settings
from rawcore.service.signing import file_query, session_org
from rawcore.service.store import Org, ServiceStore
from rawcore.storage.backends import S3Storage, Storage

SESSION_COOKIE = "rawcore_session"


@dataclass
class Context:
    settings: Settings
    store: ServiceStore
    jobs: JobStore
    storage: Storage
    secret: bytes

    def file_url(self, base: str, what: str, ident: str, org: str, key: str, *,
                 download: bool, filename: str) -> str:  # fmt: skip
        """A short-lived URL for the object `key`: presigned on S3, signed by the app on a
        folder (`/files/{what}/{id}`)."""
        if isinstance(self.storage, S3Storage):
            params: dict[str, str] = {"Bucket": self.storage.bucket,
                                      "Key": self.storage.object_key(key)}  # fmt: skip
            if download:
                params["ResponseContentDisposition"] = f'attachment; filename="{filename}"'
            return str(self.presigner().generate_presigned_url(
                "get_object", Params=params, ExpiresIn=self.settings.url_ttl_s))  # fmt: skip
        q = file_query(self.secret, what, ident, org, self.settings.url_ttl_s, download)
        return f"{base}files/{what}/{ident}?{q}"

    def presigner(self) -> Any:
        """A boto3 S3 client that presigns with Signature Version 4 (what every S3 speaks;
        boto3's default for presigning is still version 2)."""
        client = getattr(self, "_presigner", None)
        if client is None:
            import boto3
            from botocore.config import Config

            assert isinstance(self.storage, S3Storage), "presigning is for S3 storage"
            endpoint = self.storage.endpoint_url
            client = boto3.session.Session().client(
                "s3", endpoint_url=endpoint, config=Config(
                    signature_version="s3v4",
                    s3={"addressing_style": "path"} if endpoint else None),
            )  # fmt: skip
            self._presigner = client
        return client

    def job(self, org: Org, job_id: str) -> JobRow:
        """The job `job_id` of `org`, else 404 (another org's job is not found either)."""
        row = self.jobs.get(job_id) if len(job_id) <= 64 else None
        if row is None or row.org != org.id:
            raise HTTPException(404, "no such job")
        return row


async def context(request: Request) -> Context:
    ctx: Context = request.app.state.ctx
    return ctx


Ctx = Annotated[Context, Depends(context)]


async def current_org(request: Request, ctx: Ctx) -> Org:
    auth = request.headers.get("authorization")
    org: Org | None = None
    if auth is not None:
        scheme, _, key = auth.partition(" ")
        if scheme.lower() == "bearer" and key.strip():
            org = ctx.store.org_for_key(key.strip())
    else:
        token = request.cookies.get(SESSION_COOKIE)
        org_id = session_org(ctx.secret, token) if token else None
        org = ctx.store.org(org_id) if org_id else None
    if org is None:
        raise HTTPException(401, "a valid API key is needed (Authorization: Bearer …)",
                            headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
    return org


# The context and the organization are async dependencies on purpose: each is a lookup of well
# under a millisecond (SQLite in WAL mode: readers never wait for writers), cheaper on the event
# loop than a hop to the thread pool; so are the read-only routes.
CurrentOrg = Annotated[Org, Depends(current_org)]

__all__ = ["SESSION_COOKIE", "Context", "Ctx", "CurrentOrg", "context", "current_org"]
