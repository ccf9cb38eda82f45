"""Azure OpenAI: the OpenAI wire format at a per-key endpoint and deployment, with ``api-version``."""

from __future__ import annotations

from urllib.parse import quote

from .base import Key, KeyFields, Target
from .openai_compat import OpenAICompatAdapter

DEFAULT_API_VERSION = "2024-10-21"


class AzureAdapter(OpenAICompatAdapter):
    # a key reaches only its deployments, at its own endpoint
    key_fields = KeyFields("azure_key_config", frozenset({"endpoint", "deployments", "api_version"}),
                           frozenset({"client_id", "client_secret", "tenant_id", "scopes"}), deployments_limit_reach=True)
    key_has_endpoint = True

    def check_key(self, key: Key) -> tuple[str, str] | None:
        if not (key.settings or {}).get("endpoint"):
            return ".azure_key_config.endpoint", "is required for azure"
        if not key.value:
            return ".value", "is required for azure"
        return None

    def models_request(self, target: Target):
        return None  # its models are the keys' deployments

    def url(self, target: Target, *, stream: bool) -> str:
        azure = target.key.settings or {}
        deployment = (azure.get("deployments") or {}).get(target.model, target.model)
        base = target.base_url or azure.get("endpoint", "").rstrip("/")
        path = target.row.chat_path.format(deployment=quote(deployment, safe=""))
        return f"{base}{path}?api-version={quote(azure.get('api_version') or DEFAULT_API_VERSION, safe='')}"


ADAPTER = AzureAdapter()
