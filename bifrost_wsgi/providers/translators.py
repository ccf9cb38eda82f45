"""Which translator serves an operation for a provider: the adapter itself for chat, else the operation's own
table (``providers/<operation>/``), keyed by the registry row's adapter module."""

from __future__ import annotations

from . import (count_tokens, embedding, image_generation, responses, speech, text_completion, transcription)
from .registry import ProviderRow

TABLES = {
    "embedding": embedding.TRANSLATORS,
    "text_completion": text_completion.TRANSLATORS,
    "responses": responses.TRANSLATORS,
    "count_tokens": count_tokens.TRANSLATORS,
    "speech": speech.TRANSLATORS,
    "transcription": transcription.TRANSLATORS,
    "image_generation": image_generation.TRANSLATORS,
}


def translator(row: ProviderRow, adapter, name: str):
    """The translator for operation ``name`` on this row, or None when the provider has no such API."""
    if name == "chat":
        return adapter.translator("chat")
    table = TABLES.get(name)
    return None if table is None else table.get(row.adapter)
