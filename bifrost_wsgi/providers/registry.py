"""The provider table: one row per built-in provider (README, "Providers"). OpenAI-compatible providers are rows;
providers that need translation point at their own adapter module.

A row says where the provider lives and how it authenticates; ``config.py`` binds keys to a row, so a key
can only ever be sent to its own provider's URL.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ProviderRow:
    name: str
    adapter: str  # module under bifrost_wsgi.providers exposing ADAPTER
    base_url: str  # default; "" = network_config.base_url (or the key's endpoint) is required
    chat_path: str = "/v1/chat/completions"
    auth: str = "bearer"  # a scheme in auth.SCHEMES
    key_optional: bool = False  # keyless providers (local servers) work without any key
    env_keys: tuple[str, ...] = ()  # env-only mode: the variables that enable the provider
    # wire quirks of OpenAI-compatible servers
    max_tokens_field: str = "max_tokens"
    reasoning_object: bool = False  # sends {"reasoning": {...}} instead of "reasoning_effort"
    extra_headers: tuple[tuple[str, str], ...] = field(default=())

    def load_adapter(self):
        return importlib.import_module(f"{__package__}.{self.adapter}").ADAPTER

    @property
    def chat_supported(self) -> bool:
        return self.load_adapter().translator("chat") is not None


_R = ProviderRow
ROWS: dict[str, ProviderRow] = {r.name: r for r in (
    _R("openai", "openai_compat", "https://api.openai.com", env_keys=("OPENAI_API_KEY",),
       max_tokens_field="max_completion_tokens"),
    _R("azure", "azure", "", chat_path="/openai/deployments/{deployment}/chat/completions", auth="api-key",
       env_keys=("AZURE_OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT"), max_tokens_field="max_completion_tokens"),
    _R("anthropic", "anthropic", "https://api.anthropic.com", chat_path="/v1/messages", auth="x-api-key",
       env_keys=("ANTHROPIC_API_KEY",), extra_headers=(("anthropic-version", "2023-06-01"),)),
    _R("bedrock", "bedrock", "https://bedrock-runtime.{region}.amazonaws.com", chat_path="/model/{model}/converse",
       auth="bedrock", env_keys=("AWS_ACCESS_KEY_ID",)),
    _R("cohere", "cohere", "https://api.cohere.com", chat_path="/v2/chat", env_keys=("COHERE_API_KEY",)),
    _R("gemini", "gemini", "https://generativelanguage.googleapis.com/v1beta",
       chat_path="/models/{model}:generateContent", auth="x-goog-api-key", env_keys=("GEMINI_API_KEY",)),
    _R("vertex", "vertex", "https://{region}-aiplatform.googleapis.com", chat_path="", auth="vertex"),
    _R("mistral", "openai_compat", "https://api.mistral.ai", env_keys=("MISTRAL_API_KEY",)),
    _R("groq", "openai_compat", "https://api.groq.com/openai", env_keys=("GROQ_API_KEY",),
       max_tokens_field="max_completion_tokens"),
    _R("cerebras", "openai_compat", "https://api.cerebras.ai", env_keys=("CEREBRAS_API_KEY",),
       max_tokens_field="max_completion_tokens"),
    _R("xai", "openai_compat", "https://api.x.ai", env_keys=("XAI_API_KEY",),
       max_tokens_field="max_completion_tokens"),
    _R("openrouter", "openai_compat", "https://openrouter.ai/api", env_keys=("OPENROUTER_API_KEY",),
       reasoning_object=True),
    _R("nebius", "openai_compat", "https://api.tokenfactory.nebius.com", env_keys=("NEBIUS_API_KEY",)),
    _R("parasail", "openai_compat", "https://api.parasail.io", env_keys=("PARASAIL_API_KEY",)),
    _R("perplexity", "openai_compat", "https://api.perplexity.ai", chat_path="/chat/completions",
       env_keys=("PERPLEXITY_API_KEY",)),
    _R("huggingface", "openai_compat", "https://router.huggingface.co", env_keys=("HF_TOKEN",)),
    _R("sgl", "openai_compat", "", key_optional=True),
    _R("ollama", "openai_compat", "http://localhost:11434", key_optional=True),
    _R("elevenlabs", "elevenlabs", "https://api.elevenlabs.io", chat_path="", auth="xi-api-key",
       env_keys=("ELEVENLABS_API_KEY",)),
)}
