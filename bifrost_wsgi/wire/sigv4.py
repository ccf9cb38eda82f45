"""AWS Signature Version 4 for an already built upstream request (header-based, non-S3 services).

The signature covers the exact URL, header values and body bytes that ``transport.py`` sends: the
canonical URI is computed from the URL's path as it will appear on the request line, and the ``Host``
header is set explicitly to the value that was signed. Rules (AWS General Reference, "Create a canonical
request for Signature Version 4"):

* canonical URI: the path with dot segments and empty segments removed, then URI-encoded once more.
  For every service but S3 each segment is encoded *twice*: an adapter that escaped ``:`` or ``/`` in a
  Bedrock model ARN as ``%3A`` / ``%2F`` sends those, and signs ``%253A`` / ``%252F``;
* canonical query: names and values URI-encoded (RFC 3986 unreserved kept), sorted by name then value;
* canonical headers: lower-cased names, values trimmed with inner runs of spaces collapsed, sorted;
  hop-by-hop headers and ``User-Agent`` are left out because proxies and HTTP clients may change them;
* payload hash: hex SHA-256 of the body (no ``x-amz-content-sha256`` header: only S3 requires it).

Checked against the published AWS SigV4 test suite (``tests/fixtures/bedrock/sigv4/``).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import replace
from typing import Mapping
from urllib.parse import quote, unquote, urlsplit

from ..transport import UpstreamRequest

ALGORITHM = "AWS4-HMAC-SHA256"

#: headers never signed: they belong to the connection, or clients and proxies rewrite them
UNSIGNED_HEADERS = frozenset({
    "authorization", "user-agent", "expect", "x-amzn-trace-id", "connection", "keep-alive", "proxy-authorization",
    "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
})
_DEFAULT_PORTS = {"http": 80, "https": 443}
# headers this module sets itself; any spelling of them already on the request is replaced
_OWN_HEADERS = ("host", "x-amz-date", "x-amz-security-token", "authorization")


def sign(req: UpstreamRequest, *, access_key: str, secret_key: str, session_token: str | None = None,
         region: str, service: str, now: float) -> UpstreamRequest:
    """A copy of ``req`` with ``Host`` (derived from the URL unless given), ``X-Amz-Date``,
    ``X-Amz-Security-Token`` (when a session token is given) and the ``Authorization`` header of a SigV4
    signature made at unix time ``now``. The input request is not modified."""
    amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    # an explicit Host (a private endpoint reached by address) is what the server sees, so it is what is signed
    host = next((v for k, v in req.headers.items() if k.lower() == "host" and v), None) or host_header(req.url)
    headers = {k: v for k, v in req.headers.items() if k.lower() not in _OWN_HEADERS}
    headers["Host"] = host
    headers["X-Amz-Date"] = amz_date
    if session_token:
        headers["X-Amz-Security-Token"] = session_token
    creq, signed = canonical_request(req.method, req.url, headers, req.body)
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    sts = string_to_sign(amz_date, scope, creq)
    key = signing_key(secret_key, amz_date[:8], region, service)
    signature = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
    headers["Authorization"] = (f"{ALGORITHM} Credential={access_key}/{scope}, SignedHeaders={signed}, "
                                f"Signature={signature}")
    return replace(req, headers=headers)


def canonical_request(method: str, url: str, headers: Mapping[str, str], body: bytes) -> tuple[str, str]:
    """The canonical request text and its ``SignedHeaders`` list (``;``-joined names)."""
    parts = urlsplit(url)
    canon = canonical_headers(headers)
    signed = ";".join(canon)
    return "\n".join((
        method.upper(),
        canonical_uri(parts.path),
        canonical_query(parts.query),
        "".join(f"{name}:{value}\n" for name, value in canon.items()),
        signed,
        hashlib.sha256(body).hexdigest(),
    )), signed


def string_to_sign(amz_date: str, scope: str, creq: str) -> str:
    return "\n".join((ALGORITHM, amz_date, scope, hashlib.sha256(creq.encode()).hexdigest()))


def signing_key(secret_key: str, date: str, region: str, service: str) -> bytes:
    key = ("AWS4" + secret_key).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def canonical_uri(path: str) -> str:
    # quote() escapes "%" as well, so an escape already on the wire (%3A) is signed as %253A
    return quote(normalize_path(path), safe="/~")


def normalize_path(path: str) -> str:
    """RFC 3986 dot-segment removal plus collapsed empty segments (``//``), as non-S3 services expect."""
    segments: list[str] = []
    for seg in path.split("/"):
        if seg == "..":
            if segments:
                segments.pop()
        elif seg not in ("", "."):
            segments.append(seg)
    out = "/" + "/".join(segments)
    last = path.rsplit("/", 1)[-1]
    if segments and (path.endswith("/") or last in (".", "..")):
        out += "/"
    return out


def canonical_query(query: str) -> str:
    pairs = []
    for item in query.split("&"):
        if not item:
            continue
        name, _, value = item.partition("=")
        pairs.append((_encode(unquote(name)), _encode(unquote(value))))
    return "&".join(f"{n}={v}" for n, v in sorted(pairs))


def canonical_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Lower-cased name → normalised value, sorted by name; unsignable headers left out."""
    canon: dict[str, str] = {}
    for name, value in headers.items():
        low = name.lower().strip()
        if low in UNSIGNED_HEADERS:
            continue
        value = " ".join(str(value).split())
        canon[low] = f"{canon[low]},{value}" if low in canon else value
    return dict(sorted(canon.items()))


def host_header(url: str) -> str:
    """The ``Host`` value an HTTP client derives from ``url`` (default port omitted)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    port = parts.port
    if port is not None and port != _DEFAULT_PORTS.get(parts.scheme.lower()):
        host = f"{host}:{port}"
    return host


def _encode(text: str) -> str:
    return quote(text, safe="-_.~")
