"""Which `source` URLs the service may fetch: the operator's `--allow-source` patterns, and
never an address inside its own network unless a pattern names that host literally.

A pattern is a URL with `*` wildcards (`s3://bucket/*`, `https://host/path/*`); with none, only
uploads are accepted. For `https://` the host is resolved and every address must be public:
loopback, link-local (169.254.0.0/16, the cloud metadata service), private, multicast,
reserved and unspecified addresses are refused, unless the matching pattern spells that very
host without a wildcard (an operator who writes `https://127.0.0.1:9000/*` means it).
"""

from __future__ import annotations

import fnmatch
import ipaddress
import socket
import urllib.parse

from rawcore.errors import InputError


def _public(addr: str) -> bool:
    ip = ipaddress.ip_address(addr.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not (ip.is_loopback or ip.is_link_local or ip.is_private or ip.is_multicast
                or ip.is_reserved or ip.is_unspecified)  # fmt: skip


def check_source(url: str, patterns: tuple[str, ...]) -> str:
    """`url` if the service may fetch it, else an `InputError` saying why (one line)."""
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("s3", "https"):
        raise InputError("source: only s3:// and https:// URLs are accepted")
    if not parts.hostname:
        raise InputError("source: the URL has no host")
    if not patterns:
        raise InputError("source: this service accepts uploads only (no --allow-source given)")
    # The query (a presigned URL's signature) is not part of what a pattern matches.
    bare = urllib.parse.urlunsplit((scheme, parts.netloc.lower(), parts.path, "", ""))
    matched = [p for p in patterns if fnmatch.fnmatchcase(bare, p)]
    if not matched:
        raise InputError("source: not allowed by this service's --allow-source patterns")
    if scheme == "s3":
        return url
    host = parts.hostname
    literal = any(urllib.parse.urlsplit(p).hostname == host and "*" not in
                  urllib.parse.urlsplit(p).netloc for p in matched)  # fmt: skip
    if literal:
        return url
    try:
        infos = socket.getaddrinfo(host, parts.port or 443, proto=socket.IPPROTO_TCP)
    except OSError:
        raise InputError(f"source: cannot resolve {host}") from None
    if not infos or not all(_public(str(info[4][0])) for info in infos):
        raise InputError(
            f"source: {host} is a loopback, link-local or private address; not fetched"
        )
    return url


__all__ = ["check_source"]
