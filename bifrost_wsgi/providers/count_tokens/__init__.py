"""Translators for POST /v1/responses/input_tokens: one per provider API (counters.py).

``TRANSLATORS`` maps a registry row's ``adapter`` (its provider module) to the translator object; a provider
missing here has no such API (``unsupported_operation``)."""

from .counters import AnthropicCount, BedrockCount, CohereCount, GeminiCount, OpenAICount, VertexCount

TRANSLATORS: dict = {
    "openai_compat": OpenAICount(),
    "anthropic": AnthropicCount(),
    "gemini": GeminiCount(),
    "vertex": VertexCount(),
    "bedrock": BedrockCount(),
    "cohere": CohereCount(),
}
