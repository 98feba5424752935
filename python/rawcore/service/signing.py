"""Short-lived signed URLs for files on local storage, and the page's session tokens.

A file URL is `/files/{what}/{id}?o={org}&exp={unix}&dl={0|1}&sig={hmac}`: the HMAC-SHA256 of
every one of those fields under the service's secret (`ServiceStore.secret`). A changed field,
a signature of another organization, or an expired time all answer 404, the same as an id that
does not exist. A session token is `{org}.{exp}.{hmac}` with its own purpose in the HMAC, so a
file signature can never stand in for a session.
"""

from __future__ import annotations

import hashlib
import hmac
import time


def _mac(secret: bytes, *fields: str) -> str:
    return hmac.new(secret, "\n".join(fields).encode(), hashlib.sha256).hexdigest()


def sign_file(secret: bytes, what: str, ident: str, org: str, exp: int, download: bool) -> str:
    return _mac(secret, "file", what, ident, org, str(exp), "1" if download else "0")


def file_query(secret: bytes, what: str, ident: str, org: str, ttl_s: int,
               download: bool) -> str:  # fmt: skip
    exp = int(time.time()) + ttl_s
    sig = sign_file(secret, what, ident, org, exp, download)
    return f"o={org}&exp={exp}&dl={1 if download else 0}&sig={sig}"


def check_file(
    secret: bytes, what: str, ident: str, org: str, exp: int, download: bool, sig: str
) -> bool:
    """True when the signature is right and not expired."""
    good = sign_file(secret, what, ident, org, exp, download)
    return hmac.compare_digest(good, sig) and exp >= time.time()


def session_token(secret: bytes, org: str, ttl_s: int) -> str:
    exp = int(time.time()) + ttl_s
    return f"{org}.{exp}.{_mac(secret, 'session', org, str(exp))}"


def session_org(secret: bytes, token: str) -> str | None:
    """The organization of a valid, unexpired session token, else None."""
    parts = token.split(".")
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    org, exp, mac = parts
    if not hmac.compare_digest(_mac(secret, "session", org, exp), mac) or int(exp) < time.time():
        return None
    return org


__all__ = ["check_file", "file_query", "session_org", "session_token", "sign_file"]
