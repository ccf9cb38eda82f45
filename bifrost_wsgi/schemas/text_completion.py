"""The legacy text-completion request (``POST /v1/completions``): a dataclass and its validator.

Validation order follows chat's: ``model``, then ``prompt`` presence, then every other field in body order.
Known parameters are validated and kept in ``params`` in body order; unknown ones go to ``extra``."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import BadRequest
from ..schema import (_fail, any_object, array, boolean, integer, map_of, number, split_model, stop,
                      string)
from .fields import walk

PROMPT_REQUIRED = "prompt is required for text completion"

PARAMS = {
    "max_tokens": integer(0),
    "temperature": number(0, 2),
    "top_p": number(0, 1),
    "n": integer(1, 128),
    "best_of": integer(1, 20),
    "stop": stop,
    "suffix": string,
    "echo": boolean,
    "logprobs": integer(0, 5),
    "presence_penalty": number(-2, 2),
    "frequency_penalty": number(-2, 2),
    "logit_bias": map_of(number(-100, 100)),
    "seed": integer(),
    "user": string,
    "stream_options": any_object,
}


@dataclass(slots=True)
class TextCompletionRequest:
    """``prompt`` is a string, or a list of strings / token ids / token-id lists, as the client sent it."""

    provider: str
    model: str
    prompt: object
    params: dict
    fallbacks: list[tuple[str, str]] = field(default_factory=list)
    stream: bool = False
    extra: dict = field(default_factory=dict)

    def with_target(self, provider: str, model: str) -> "TextCompletionRequest":
        return TextCompletionRequest(provider, model, self.prompt, self.params, self.fallbacks, self.stream,
                                     self.extra)


def _prompt(value, path):
    if isinstance(value, str):
        return value
    if not isinstance(value, list) or not value:
        _fail("prompt", "must be a string, an array of strings, or token arrays")
    first = value[0]
    if isinstance(first, str):
        return array(string)(value, "prompt")
    if isinstance(first, list):
        return array(array(integer(0), min_items=1))(value, "prompt")
    return array(integer(0))(value, "prompt")


def parse_text_completion(body) -> TextCompletionRequest:
    if not isinstance(body, dict):
        raise BadRequest("invalid request format: request body must be a JSON object")
    provider, model = split_model(body.get("model"))
    if body.get("prompt") is None or body.get("prompt") in ("", []):
        raise BadRequest(PROMPT_REQUIRED, param="prompt")
    fields = walk(body, params=PARAMS, own={"prompt": _prompt, "stream": boolean})
    return TextCompletionRequest(provider, model, fields.own["prompt"], fields.params, fields.fallbacks,
                                 fields.own.get("stream", False), fields.extra)
