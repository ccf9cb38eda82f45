"""Translators for POST /v1/responses: OpenAI and Azure natively (native.py), every other chat provider
through its chat API (via_chat.py).

``TRANSLATORS`` maps a registry row's ``adapter`` (its provider module) to the translator object; a provider
missing here has no such API (``unsupported_operation``)."""

from .. import anthropic, bedrock, cohere, gemini, openai_compat, vertex
from .native import AZURE, OPENAI
from .via_chat import ByRow, ViaChat

TRANSLATORS: dict = {
    "openai_compat": ByRow(OPENAI, ViaChat(openai_compat.ADAPTER)),
    "azure": AZURE,
    "anthropic": ViaChat(anthropic.ADAPTER),
    "gemini": ViaChat(gemini.ADAPTER),
    "vertex": ViaChat(vertex.ADAPTER),
    "cohere": ViaChat(cohere.ADAPTER),
    "bedrock": ViaChat(bedrock.ADAPTER),
}
