"""The embeddings request (``POST /v1/embeddings``): a dataclass and the validator that builds it; and
``Vector``, an answer's vector that keeps the upstream's text of it.

Validation order follows chat's: ``model``, then ``input`` presence, then every other field in body order.
``input`` keeps the client's form (``texts`` or ``tokens``) because providers differ in what they accept: a
translator refuses token arrays it cannot send rather than guessing a tokenizer."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import BadRequest
from ..schema import _fail, array, enum, integer, split_model, string
from .fields import walk

INPUT_REQUIRED = "input is required for embeddings"

PARAMS = {
    "encoding_format": enum("float", "base64"),
    "dimensions": integer(1),
    "user": string,
    # provider-specific knobs, named as in the gateway's README: Gemini/Vertex task type, Cohere input type
    "task_type": string,
    "input_type": string,
}


@dataclass(slots=True)
class EmbeddingRequest:
    """``texts`` holds string inputs, ``tokens`` token-id arrays; exactly one is set."""

    provider: str
    model: str
    texts: list[str] | None
    tokens: list[list[int]] | None
    params: dict
    fallbacks: list[tuple[str, str]] = field(default_factory=list)
    stream: bool = False
    extra: dict = field(default_factory=dict)

    @property
    def count(self) -> int:
        return len(self.texts if self.texts is not None else self.tokens)

    @property
    def base64(self) -> bool:
        return self.params.get("encoding_format") == "base64"

    def with_target(self, provider: str, model: str) -> "EmbeddingRequest":
        return EmbeddingRequest(provider, model, self.texts, self.tokens, self.params, self.fallbacks, self.stream,
                                self.extra)


def _token(value, path):
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        _fail(path, "must be a non-negative integer token id")
    return value


_token_array = array(_token, min_items=1)


def _input(value, path) -> tuple[list[str] | None, list[list[int]] | None]:
    """A string, an array of strings, an array of token ids, or an array of token-id arrays."""
    if isinstance(value, str):
        return [value], None
    if not isinstance(value, list):
        _fail("input", "must be a string, an array of strings, or an array of token arrays")
    first = value[0]
    if isinstance(first, str):
        return array(string)(value, "input"), None
    if isinstance(first, list):
        return None, array(_token_array)(value, "input")
    return None, [_token_array(value, "input")]


def parse_embedding(body) -> EmbeddingRequest:
    if not isinstance(body, dict):
        raise BadRequest("invalid request format: request body must be a JSON object")
    provider, model = split_model(body.get("model"))
    raw_input = body.get("input")
    if raw_input is None or raw_input == "" or raw_input == []:
        raise BadRequest(INPUT_REQUIRED, param="input")
    fields = walk(body, params=PARAMS, own={"input": _input})
    texts, tokens = fields.own["input"]
    return EmbeddingRequest(provider, model, texts, tokens, fields.params, fields.fallbacks, False, fields.extra)


class Vector(list):
    """A checked vector that also holds the upstream's own JSON text of it (``text``, ``b"[...]"``): a float
    answer sends that text instead of writing every number again (float repr is most of the cost of an
    embeddings answer). The numbers parse to the same doubles; a base64 answer packs the list as any other."""

    __slots__ = ("text",)

    def __init__(self, values: list, text: bytes) -> None:
        super().__init__(values)
        self.text = text
