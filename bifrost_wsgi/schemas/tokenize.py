"""The Cohere tokenize request (``POST /cohere/v1/tokenize``): ``text`` and ``model``, the tokens of that
model's own tokenizer. Only a provider with a tokenize API can answer it (Cohere)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..schema import string
from .fields import model_target, validated

#: the provider of a model named without ``provider/``
DEFAULT_PROVIDER = "cohere"


@dataclass(slots=True)
class TokenizeRequest:
    provider: str
    model: str
    text: str
    fallbacks: list[tuple[str, str]] = field(default_factory=list)
    stream: bool = False
    extra: dict = field(default_factory=dict)

    def with_target(self, provider: str, model: str) -> "TokenizeRequest":
        return TokenizeRequest(provider, model, self.text, self.fallbacks, self.stream, self.extra)


def parse_tokenize(body) -> TokenizeRequest:
    valid = validated(body, {"text": string, "model": string}, required=("text", "model"))
    provider, model = model_target(valid["model"], default=DEFAULT_PROVIDER)
    return TokenizeRequest(provider, model, valid["text"])
