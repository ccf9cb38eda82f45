"""The Responses API request (``POST /v1/responses`` and ``/v1/responses/input_tokens``).

The body is kept as the client sent it (``body``, a dict): OpenAI and Azure get it back unchanged but for
``model`` (the provider's own name) and ``fallbacks`` (ours), so tool types and fields the gateway has never
heard of survive. Only what routing needs is checked here; translating providers check the rest with
Responses paths (``providers/responses/convert.py``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import BadRequest
from ..schema import _fail, _model_ref, array, boolean, split_model

INPUT_REQUIRED = "input is required for responses"


@dataclass(slots=True)
class ResponsesRequest:
    provider: str
    model: str
    body: dict  # the client's body without model and fallbacks, nulls included, order kept
    fallbacks: list[tuple[str, str]] = field(default_factory=list)
    stream: bool = False
    extra: dict = field(default_factory=dict)
    # the chat request last translated from this one, with its (provider, model, stream): a translated
    # stream asks for it twice (its upstream request, its stream translator), a retry again
    chat: tuple | None = field(default=None, repr=False, compare=False)

    def with_target(self, provider: str, model: str) -> "ResponsesRequest":
        return ResponsesRequest(provider, model, self.body, self.fallbacks, self.stream, self.extra)

    def upstream_body(self, model: str) -> dict:
        """The body for a native Responses API: the client's, with the provider's model name."""
        return {"model": model, **self.body}


def parse_responses(body) -> ResponsesRequest:
    if not isinstance(body, dict):
        raise BadRequest("invalid request format: request body must be a JSON object")
    provider, model = split_model(body.get("model"))
    if body.get("input") is None:
        raise BadRequest(INPUT_REQUIRED, param="input")
    kept: dict = {}
    fallbacks: list[tuple[str, str]] = []
    stream = False
    for key, value in body.items():
        if key == "model":
            continue
        if key == "fallbacks":
            if value is not None:
                fallbacks = array(_model_ref)(value, key)
            continue
        if key == "input" and not isinstance(value, (str, list)):
            _fail("input", "must be a string or an array of input items")
        if key == "stream" and value is not None:
            stream = boolean(value, key)
        kept[key] = value
    return ResponsesRequest(provider, model, kept, fallbacks, stream)
