"""Translators for POST /v1/responses: OpenAI and Azure natively (native.py), every other chat provider
through its chat API (via_chat.py).

``TRANSLATORS`` maps a registry row's ``adapter`` (its provider module) to the translator object; a provider
missing here has no such API (``unsupported_operation``)."""

from .. import anthropic, bedrock, cohere, gemini, openai_compat, vertex
from .native import AZURE, OPENAI
from ..via_chat import ViaChat
from .via_chat import ByRow, as_chat

TRANSLATORS: dict = {
    "openai_compat": ByRow(OPENAI, ViaChat(openai_compat.ADAPTER, as_chat)),
    "azure": AZURE,
    "anthropic": ViaChat(anthropic.ADAPTER, as_chat),
    "gemini": ViaChat(gemini.ADAPTER, as_chat),
    "vertex": ViaChat(vertex.ADAPTER, as_chat),
    "cohere": ViaChat(cohere.ADAPTER, as_chat),
    "bedrock": ViaChat(bedrock.ADAPTER, as_chat),
}
