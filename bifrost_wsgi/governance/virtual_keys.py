"""Gateway authentication: Bifrost virtual keys (``governance.virtual_keys``) and what each one may use.

A gateway that holds provider keys must not spend them for whoever can reach it. When at least one virtual
key is configured, every chat request and ``GET /v1/models`` must present one, as ``x-bf-vk``,
``Authorization: Bearer`` or ``x-api-key`` (the first of these headers that is present is the one used).

- missing, unknown or inactive key → 401 ``authentication_error``;
- the primary ``provider/model`` not allowed for the key → 403 ``permission_error``;
- a fallback the key may not use is dropped from the request (logged), as Bifrost does: the key still gets
  every target it is entitled to, and a fallback can never widen what it reaches.

``/health`` and ``/metrics`` stay open (restrict ``/metrics`` at the proxy; deploy/nginx/bifrost.conf does).

Values are compared in constant time: the presented value is hashed once and its digest is compared with the
digest of every configured key, with no early exit, so the time taken says nothing about which key matched
or how much of one did. Budgets and rate limits plug in later as more ``checks`` (each ``check(vk, req)``
raises a GatewayError) and as an observer that records usage per ``ctx.virtual_key``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging

from ..config import VirtualKey
from ..errors import Forbidden, Unauthorized

log = logging.getLogger("bifrost_wsgi.governance")

# the environ slot where the key found for this request is kept between authenticate() and authorize()
ENVIRON_KEY = "bifrost_wsgi.virtual_key"
_BEARER = "bearer "


def presented_key(environ) -> str:
    """The virtual key the client sent, or ""."""
    value = environ.get("HTTP_X_BF_VK", "").strip()
    if value:
        return value
    auth = environ.get("HTTP_AUTHORIZATION", "")
    if auth[:7].lower() == _BEARER:
        value = auth[7:].strip()
        if value:
            return value
    # x-api-key: the Anthropic SDK; x-goog-api-key: the Google GenAI SDK
    return (environ.get("HTTP_X_API_KEY", "") or environ.get("HTTP_X_GOOG_API_KEY", "")).strip()


def _digest(raw: bytes) -> bytes:
    return hashlib.sha256(raw).digest()


def label(vk: VirtualKey) -> str:
    """How a key is named in logs and metrics: its id, else its name; never its value."""
    return vk.id or vk.name


def allows(vk: VirtualKey, provider: str, model: str | None = None) -> bool:
    """May ``vk`` use ``provider`` (and ``model``, when given)? No provider_configs = every provider."""
    if not vk.providers:
        return True
    models = vk.providers.get(provider)
    if models is None:
        return False
    if model is None or not models or "*" in models:
        return True
    return model in models or f"{provider}/{model}" in models


def check_target(vk: VirtualKey, req) -> None:
    """The primary target must be allowed; disallowed fallbacks are dropped."""
    if not allows(vk, req.provider):
        raise Forbidden(f"Provider '{req.provider}' is not allowed for this virtual key", code="provider_blocked",
                        param="model")
    if not allows(vk, req.provider, req.model):
        raise Forbidden(f"Model '{req.model}' is not allowed for this virtual key", code="model_blocked",
                        param="model")
    if req.fallbacks:
        kept = [fb for fb in req.fallbacks if allows(vk, *fb)]
        if len(kept) != len(req.fallbacks):
            dropped = ", ".join(f"{p}/{m}" for p, m in req.fallbacks if (p, m) not in kept)
            log.info("virtual key %s: dropping fallbacks it may not use: %s", label(vk), dropped)
            req.fallbacks = kept


class Governance:
    """``authenticate(environ) -> VirtualKey`` and ``authorize(environ, req) -> label``; see the module doc."""

    def __init__(self, virtual_keys, *, checks=(check_target,)) -> None:
        self.keys = tuple((_digest(vk.value.encode("utf-8")), vk) for vk in virtual_keys)
        self.checks = tuple(checks)

    def authenticate(self, environ) -> VirtualKey:
        """The active virtual key the request presents; raises Unauthorized (401)."""
        found = environ.get(ENVIRON_KEY)
        if found is not None:
            return found
        value = presented_key(environ)
        if not value:
            raise Unauthorized("virtual key required: send it as x-bf-vk, Authorization: Bearer or x-api-key",
                               code="virtual_key_required")
        # WSGI header values are the raw bytes decoded as latin-1 (PEP 3333): compare bytes with bytes
        digest = _digest(value.encode("latin-1", "replace"))
        match = None
        for key_digest, vk in self.keys:
            # every key is compared, whatever matched before: no timing difference between keys
            if hmac.compare_digest(key_digest, digest) and match is None:
                match = vk
        if match is None:
            raise Unauthorized("Virtual key not found", code="virtual_key_not_found")
        if not match.is_active:
            raise Unauthorized("Virtual key is inactive", code="virtual_key_blocked")
        environ[ENVIRON_KEY] = match
        return match

    def authorize(self, environ, req) -> str:
        """Authenticate, then run every check on the parsed request; returns the key's label for logs."""
        vk = self.authenticate(environ)
        for check in self.checks:
            check(vk, req)
        return label(vk)

    def visible(self, vk: VirtualKey, models: list[dict]) -> list[dict]:
        """The ``/v1/models`` entries (ids ``provider/model``) that ``vk`` may use."""
        out = []
        for entry in models:
            provider, _, model = entry["id"].partition("/")
            if allows(vk, provider, model):
                out.append(entry)
        return out


def from_config(config) -> Governance | None:
    """A Governance for the configured virtual keys; None when there are none (the gateway is open)."""
    if not config.virtual_keys:
        return None
    return Governance(config.virtual_keys)
