"""Provider credentials: adds a key to an already built upstream request, just before it is sent.

Adapters never see secrets; each scheme here is a function ``(request, target, now) -> request``. A key is
bound to its provider's row by ``config.py``, so it can only be applied to that provider's URL.
"""

from __future__ import annotations

import importlib

from .base import Target, UpstreamRequest


def _header(name: str, prefix: str = ""):
    def apply(req: UpstreamRequest, target: Target, now: float) -> UpstreamRequest:
        if target.key.value:
            req.headers[name] = prefix + target.key.value
        return req

    return apply


def _none(req: UpstreamRequest, target: Target, now: float) -> UpstreamRequest:
    return req


def _bedrock(req: UpstreamRequest, target: Target, now: float) -> UpstreamRequest:
    # A Bedrock API key is a bearer token; otherwise the request is signed with SigV4.
    if target.key.value:
        req.headers["Authorization"] = "Bearer " + target.key.value
        return req
    sigv4 = importlib.import_module("bifrost_wsgi.wire.sigv4")
    b = target.key.settings or {}
    return sigv4.sign(req, access_key=b.get("access_key", ""), secret_key=b.get("secret_key", ""),
                      session_token=b.get("session_token") or None, region=b.get("region") or "us-east-1",
                      service="bedrock", now=now)


def _vertex(req: UpstreamRequest, target: Target, now: float) -> UpstreamRequest:
    google_auth = importlib.import_module("bifrost_wsgi.wire.google_auth")
    req.headers["Authorization"] = "Bearer " + google_auth.access_token(target.key)
    return req


SCHEMES = {
    "bearer": _header("Authorization", "Bearer "),
    "x-api-key": _header("x-api-key"),
    "api-key": _header("api-key"),
    "x-goog-api-key": _header("x-goog-api-key"),
    "xi-api-key": _header("xi-api-key"),
    "bedrock": _bedrock,
    "vertex": _vertex,
    "none": _none,
}


def apply(req: UpstreamRequest, target: Target, now: float) -> UpstreamRequest:
    return SCHEMES[target.row.auth](req, target, now)
