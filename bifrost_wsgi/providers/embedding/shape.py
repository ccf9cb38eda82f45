"""What every embeddings translator shares: OpenAI's answer shape, the vector check, and the refusal of
inputs a provider cannot take."""

from __future__ import annotations

from ...errors import UnsupportedParameter


def answer(vectors: list, *, model: str, prompt_tokens: int = 0) -> dict:
    """OpenAI's list shape, indexes in input order (``vectors`` is already in that order)."""
    return {
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)],
        "model": model,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }


def vector(values) -> list:
    """A vector of numbers as the provider sent it; anything else is a malformed answer (ValueError)."""
    # PERF: one pass in C over the element types (a vector has hundreds to thousands of them)
    if type(values) is not list or not set(map(type, values)) <= _NUMBERS:
        raise ValueError("embedding is not an array of numbers")
    return values


_NUMBERS = frozenset({float, int})


def texts_only(req, provider: str) -> list[str]:
    """The string inputs; token arrays are refused for a provider that only takes text."""
    if req.texts is None:
        raise UnsupportedParameter(f"token arrays as embeddings input are not supported by {provider}; send text",
                                   param="input")
    return req.texts
