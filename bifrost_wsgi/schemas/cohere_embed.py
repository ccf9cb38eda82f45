"""The Cohere v2 embed request (``POST /cohere/v2/embed``) read as the gateway's embeddings request.

``texts`` are the inputs (image and mixed ``inputs`` are not served); ``input_type`` and ``output_dimension``
become ``input_type`` and ``dimensions``. Every provider answers float vectors, so ``embedding_types`` may
only ask for ``float``; ``truncate`` is accepted and not forwarded."""

from __future__ import annotations

from ..errors import UnsupportedParameter
from ..schema import array, enum, integer, string
from .embedding import EmbeddingRequest
from .fields import model_target, validated

#: the provider of a model named without ``provider/``
DEFAULT_PROVIDER = "cohere"

PARAMS = {"model": string, "texts": array(string, min_items=1), "input_type": string,
          "embedding_types": array(string), "output_dimension": integer(1),
          "truncate": enum("NONE", "START", "END")}


def parse_cohere_embed(body) -> EmbeddingRequest:
    for name in ("images", "inputs"):
        if isinstance(body, dict) and body.get(name):
            raise UnsupportedParameter(f"{name}: only texts can be embedded on this route", param=name)
    valid = validated(body, PARAMS, required=("model", "texts"))
    provider, model = model_target(valid["model"], default=DEFAULT_PROVIDER)
    for i, kind in enumerate(valid.get("embedding_types", ())):
        if kind != "float":
            raise UnsupportedParameter(f"embedding_types[{i}]: only float embeddings are served",
                                       param=f"embedding_types[{i}]")
    params = {"input_type": valid["input_type"]} if "input_type" in valid else {}
    if "output_dimension" in valid:
        params["dimensions"] = valid["output_dimension"]
    return EmbeddingRequest(provider, model, valid["texts"], None, params)
