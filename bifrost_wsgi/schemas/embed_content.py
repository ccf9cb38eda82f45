"""The Gemini embedding requests (``POST /genai/v1beta/models/{model}:embedContent`` and
``:batchEmbedContents``) read as the gateway's embeddings request.

Each request's ``content`` is one input: its text parts joined by newlines (Gemini embeds a content whole).
``taskType`` and ``outputDimensionality`` (top level, or in ``embedContentConfig`` as the google-genai SDK
sends them) become ``task_type`` and ``dimensions``; one embeddings call has one value of each, so a batch
whose requests disagree is refused. ``title`` and ``autoTruncate`` are accepted and not forwarded."""

from __future__ import annotations

from ..errors import UnsupportedParameter
from ..schema import _fail, array, boolean, integer, obj, string
from .embedding import EmbeddingRequest
from .fields import model_target, validated

#: the provider of a model named without ``provider/``
DEFAULT_PROVIDER = "gemini"

#: Gemini's field → the embeddings request's parameter
PARAMS = {"taskType": "task_type", "outputDimensionality": "dimensions"}


def _part(value, path):
    if not isinstance(value, dict):
        _fail(path, "must be an object")
    if not isinstance(value.get("text"), str):
        raise UnsupportedParameter(f"{path}: only text parts can be embedded", param=path)
    return value["text"]


_content = obj({"role": string, "parts": array(_part, min_items=1)}, required=("parts",))
_options = {"taskType": string, "title": string, "outputDimensionality": integer(1), "autoTruncate": boolean}
_FIELDS = {"model": string, "content": _content, **_options, "embedContentConfig": obj(_options)}
_request = obj(_FIELDS, required=("content",))


def _one(valid: dict) -> tuple[str, dict]:
    """The request's text and its parameters (the config's values win over top-level ones)."""
    text = "\n".join(valid["content"]["parts"])
    merged = {**valid, **valid.get("embedContentConfig", {})}
    return text, {PARAMS[k]: merged[k] for k in PARAMS if k in merged}


def parse_embed_content(body, *, model: str, batch: bool) -> EmbeddingRequest:
    provider, native_model = model_target(model, default=DEFAULT_PROVIDER)
    if batch:
        valid = validated(body, {"requests": array(_request, min_items=1)}, required=("requests",))["requests"]
    else:
        valid = [validated(body, _FIELDS, required=("content",))]
    texts, params = [], None
    for i, request in enumerate(valid):
        text, own = _one(request)
        if params is not None and own != params:
            raise UnsupportedParameter(f"requests[{i}]: taskType and outputDimensionality must be the same for "
                                       "every request of a batch", param=f"requests[{i}]")
        texts.append(text)
        params = own
    return EmbeddingRequest(provider, native_model, texts, None, params or {})
