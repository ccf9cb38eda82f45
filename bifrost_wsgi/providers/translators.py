"""Which translator serves an operation for a provider: the adapter itself for chat, else the operation's own
table (``providers/<operation>/``), keyed by the registry row's adapter module."""

from __future__ import annotations

from . import (count_tokens, embedding, image_generation, messages, responses, speech, text_completion, tokenize,
               transcription)
from .registry import ProviderRow

TABLES = {
    "embedding": embedding.TRANSLATORS,
    "text_completion": text_completion.TRANSLATORS,
    "responses": responses.TRANSLATORS,
    "count_tokens": count_tokens.TRANSLATORS,
    "speech": speech.TRANSLATORS,
    "transcription": transcription.TRANSLATORS,
    "image_generation": image_generation.TRANSLATORS,
    "messages": messages.TRANSLATORS,
    "messages_count_tokens": messages.COUNT_TOKENS_TRANSLATORS,
    "tokenize": tokenize.TRANSLATORS,
}
#: operations that a provider without its own translator serves through its chat translator (a client
#: format translated to and from chat by its surface)
VIA_CHAT = frozenset({"messages"})


def translator(row: ProviderRow, adapter, name: str):
    """The translator for operation ``name`` on this row, or None when the provider has no such API."""
    if name == "chat":
        return adapter.translator("chat")
    table = TABLES.get(name)
    if table is None:
        return None
    found = table.get(row.adapter)
    if found is None and name in VIA_CHAT:
        return adapter.translator("chat")
    return found
