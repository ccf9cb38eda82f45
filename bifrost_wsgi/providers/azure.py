"""Azure OpenAI: the OpenAI wire format at a per-key endpoint and deployment, with ``api-version``."""

from __future__ import annotations

from urllib.parse import quote

from .base import Target
from .openai_compat import OpenAICompatAdapter

DEFAULT_API_VERSION = "2024-10-21"


class AzureAdapter(OpenAICompatAdapter):
    def url(self, target: Target, *, stream: bool) -> str:
        azure = target.key.azure or {}
        deployment = (azure.get("deployments") or {}).get(target.model, target.model)
        base = target.base_url or azure.get("endpoint", "").rstrip("/")
        path = target.row.chat_path.format(deployment=quote(deployment, safe=""))
        return f"{base}{path}?api-version={quote(azure.get('api_version') or DEFAULT_API_VERSION, safe='')}"


ADAPTER = AzureAdapter()
