"""Translators for POST /v1/embeddings: one module per provider family.

``TRANSLATORS`` maps a registry row's ``adapter`` (its provider module) to the translator object; a provider
missing here has no such API (``unsupported_operation``)."""

from . import bedrock, cohere, google, openai_compat

TRANSLATORS: dict = {
    "openai_compat": openai_compat.OPENAI_COMPAT,
    "azure": openai_compat.AZURE,
    "gemini": google.GEMINI,
    "vertex": google.VERTEX,
    "cohere": cohere.COHERE,
    "bedrock": bedrock.BEDROCK,
}
