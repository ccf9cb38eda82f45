"""Gateway authentication: Bifrost virtual keys (``governance.virtual_keys``) and what each one may use.

A gateway that holds provider keys must not spend them for whoever can reach it. When at least one virtual
key is configured, every chat request and ``GET /v1/models`` must present one, as ``x-bf-vk``,
``Authorization: Bearer`` or ``x-api-key`` (the first of these headers that is present is the one used).

- missing, unknown or inactive key → 401 ``authentication_error``;
- the primary ``provider/model`` not allowed for the key → 403 ``permission_error``;
- a fallback the key may not use is dropped from the request (logged), as Bifrost does: the key still gets
  every target it is entitled to, and a fallback can never widen what it reaches.

``/health`` and ``/metrics`` stay open (restrict ``/metrics`` at the proxy; deploy/nginx/bifrost.conf does).

Keys are stored and looked up by their SHA-256 digest only (engine.py, view.py): the time a lookup takes
says nothing usable about any stored key, and the store never holds a value. Budgets and rate limits are
checked by engine.py after these checks.
"""

from __future__ import annotations

import logging

from ..errors import Forbidden

log = logging.getLogger("bifrost_wsgi.governance")

# the environ slot where the key found for this request is kept once authenticated
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


def label(vk) -> str:
    """How a key is named in logs and metrics: its id, else its name; never its value."""
    return vk.id or vk.name


def allows(vk, provider: str, model: str | None = None) -> bool:
    """May ``vk`` use ``provider`` (and ``model``, when given)? No provider_configs = every provider."""
    if not vk.providers:
        return True
    models = vk.providers.get(provider)
    if models is None:
        return False
    if model is None or not models or "*" in models:
        return True
    return model in models or f"{provider}/{model}" in models


def check_target(vk, req) -> None:
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
