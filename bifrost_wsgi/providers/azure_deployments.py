"""Azure OpenAI URLs: an operation's path under the key's endpoint and the model's deployment, with
``api-version`` (the key's, else the default)."""

from __future__ import annotations

from urllib.parse import quote

from .azure import DEFAULT_API_VERSION
from .base import Target


def url(target: Target, path: str) -> str:
    """``path`` is below ``/openai/deployments/{deployment}`` (``/audio/speech``, ``/images/generations``)."""
    azure = target.key.settings or {}
    deployment = (azure.get("deployments") or {}).get(target.model, target.model)
    base = target.base_url or azure.get("endpoint", "").rstrip("/")
    version = quote(azure.get("api_version") or DEFAULT_API_VERSION, safe="")
    return f"{base}/openai/deployments/{quote(deployment, safe='')}{path}?api-version={version}"
