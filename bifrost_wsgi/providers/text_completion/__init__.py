"""Translators for POST /v1/completions: OpenAI-compatible rows and Azure natively (native.py), Anthropic and
Bedrock through their chat APIs (via_chat.py).

``TRANSLATORS`` maps a registry row's ``adapter`` (its provider module) to the translator object; a provider
missing here has no such API (``unsupported_operation``)."""

from .. import anthropic, bedrock
from .native import AZURE, OPENAI_COMPAT
from ..via_chat import ViaChat
from .via_chat import as_chat

TRANSLATORS: dict = {
    "openai_compat": OPENAI_COMPAT,
    "azure": AZURE,
    "anthropic": ViaChat(anthropic.ADAPTER, as_chat),
    "bedrock": ViaChat(bedrock.ADAPTER, as_chat),
}
