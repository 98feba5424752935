"""`/recordings/{recording_id}`: the Raw Tracks page (plain HTML, CSS and JS from `static/`).

The page signs in once: `?key=API_KEY` (or the form it shows without a session) becomes an
HttpOnly, SameSite=Strict session cookie holding a signed, 12-hour token of the organization
(never the key itself), and the browser is sent on to the URL without the key. The page's
script then calls the same JSON API as any client; the cookie stands in for the Bearer key.
"""

from __future__ import annotations

import html
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from rawcore.service.config import SESSION_TTL_S
from rawcore.service.deps import SESSION_COOKIE, Ctx
from rawcore.service.signing import session_org, session_token

router = APIRouter(tags=["page"], include_in_schema=False)
STATIC = Path(__file__).resolve().parent.parent / "static"


def _shell(title: str, body: str, status: int = 200) -> HTMLResponse:
    page = (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)}</title><link rel=stylesheet href='/static/raw_tracks.css'>"
        f"</head><body><main class=modal>{body}</main></body></html>"
    )
    return HTMLResponse(page, status_code=status, headers={"Cache-Control": "no-store"})


def _login(message: str = "") -> HTMLResponse:
    note = f"<p class=error role=alert>{html.escape(message)}</p>" if message else ""
    return _shell("Sign in", (
        "<h1>Raw Tracks</h1><p>Enter your organization's API key to see this recording.</p>"
        f"{note}<form method=get class=login><input type=password name=key id=key "
        "placeholder='rk_…' autocomplete=off required><button type=submit>Sign in</button></form>"
    ), 401 if message else 200)  # fmt: skip


@router.get("/recordings/{recording_id}", response_class=HTMLResponse)
def raw_tracks_page(recording_id: str, request: Request, ctx: Ctx, key: str | None = None
                    ) -> Response:  # fmt: skip
    if key is not None:
        org = ctx.store.org_for_key(key)
        if org is None:
            return _login("That API key is not valid.")
        resp = RedirectResponse(f"/recordings/{recording_id}", status_code=303)
        resp.set_cookie(SESSION_COOKIE, session_token(ctx.secret, org.id, SESSION_TTL_S),
                        max_age=SESSION_TTL_S, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", path="/")  # fmt: skip
        return resp
    token = request.cookies.get(SESSION_COOKIE)
    org_id = session_org(ctx.secret, token) if token else None
    if org_id is None:
        return _login()
    rec = ctx.store.recording(org_id, recording_id)
    if rec is None:
        return _shell("Not found", "<h1>Raw Tracks</h1><p class=error id=state>"
                      "No such recording.</p>", 404)  # fmt: skip
    page = (STATIC / "raw_tracks.html").read_text()
    page = page.replace("{{recording_id}}", html.escape(rec.id)).replace(
        "{{room}}", html.escape(rec.room)
    )
    return HTMLResponse(page, headers={"Cache-Control": "no-store"})


__all__ = ["STATIC", "router"]
