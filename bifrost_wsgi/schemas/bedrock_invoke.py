"""The bodies ``POST /bedrock/model/{modelId}/invoke`` and ``/count-tokens`` take, read as the gateway's requests.

``/invoke`` carries each model family's native body; the gateway serves three of them, told apart by their
required field: Titan embeddings (``inputText``: one input), Cohere embeddings (``texts``) and Anthropic
Messages (``messages``, with ``anthropic_version``, the model in the path). The model id may carry a
``provider/`` prefix; a bare id is a Bedrock model. ``/count-tokens`` wraps a Converse or an InvokeModel
body in ``input``."""

from __future__ import annotations

import base64
import binascii
import json

from ..errors import BadRequest
from ..schema import _fail, any_object, array, boolean, integer, obj, string
from .cohere_embed import parse_cohere_embed
from .embedding import EmbeddingRequest
from .fields import model_target, validated
from .messages import MessagesRequest, parse_messages

#: the provider of a model id without ``provider/``
DEFAULT_PROVIDER = "bedrock"

#: the field that names each body kind, in the order they are looked for
KINDS = ("inputText", "texts", "messages")
UNKNOWN_BODY = ("invalid request format: the body must be a Titan embedding (inputText), Cohere embedding "
                "(texts) or Anthropic Messages (messages) request")

TITAN = {"inputText": string, "dimensions": integer(1), "normalize": boolean, "embeddingTypes": array(string)}


def model_ref(model_id: str) -> str:
    """``provider/model`` for the path's model id."""
    provider, model = model_target(model_id, default=DEFAULT_PROVIDER, param="modelId")
    return f"{provider}/{model}"


def body_kind(body) -> str:
    if isinstance(body, dict):
        for kind in KINDS:
            if kind in body:
                return kind
    raise BadRequest(UNKNOWN_BODY)


def parse_titan_embed(body: dict, *, model_id: str) -> EmbeddingRequest:
    valid = validated(body, TITAN, required=("inputText",))
    provider, model = model_target(model_id, default=DEFAULT_PROVIDER, param="modelId")
    _float_only(valid.get("embeddingTypes", ()), "embeddingTypes")
    params = {"dimensions": valid["dimensions"]} if "dimensions" in valid else {}
    return EmbeddingRequest(provider, model, [valid["inputText"]], None, params)


def parse_cohere_invoke(body: dict, *, model_id: str) -> EmbeddingRequest:
    return parse_cohere_embed({**body, "model": model_ref(model_id)})


def parse_anthropic_invoke(body: dict, *, model_id: str) -> MessagesRequest:
    """An Anthropic Messages body as Bedrock takes it: ``anthropic_version`` instead of the header, the model in
    the path, no ``stream`` (that is ``/invoke-with-response-stream``)."""
    native = {k: v for k, v in body.items() if k not in ("anthropic_version", "stream")}
    return parse_messages({**native, "model": model_ref(model_id)})


def _float_only(kinds, path: str) -> None:
    for i, kind in enumerate(kinds):
        if kind != "float":
            _fail(f"{path}[{i}]", "only float embeddings are served")


COUNT_INPUT = obj({"converse": obj({"messages": array(any_object), "system": array(any_object),
                                    "toolConfig": any_object}, required=("messages",)),
                   "invokeModel": obj({"body": string}, required=("body",))})


def counted_input(body) -> dict:
    """What the model would read, for the token estimate: the Converse ``messages``, ``system`` and
    ``toolConfig``, or the InvokeModel body (base64 of JSON on the wire, as botocore sends blobs), its
    ``system``, ``messages`` and ``tools`` when it has messages."""
    valid = COUNT_INPUT(validated(body, {"input": any_object}, required=("input",))["input"], "input")
    if "converse" in valid:
        return {k: valid["converse"][k] for k in ("system", "messages", "toolConfig") if k in valid["converse"]}
    if "invokeModel" not in valid:
        _fail("input", "must hold converse or invokeModel")
    try:
        inner = json.loads(base64.b64decode(valid["invokeModel"]["body"], validate=True))
    except (binascii.Error, ValueError):
        _fail("input.invokeModel.body", "must be base64 of a JSON body")
    if isinstance(inner, dict) and "messages" in inner:
        return {k: inner[k] for k in ("system", "messages", "tools") if k in inner}
    return inner if isinstance(inner, dict) else {"body": inner}
