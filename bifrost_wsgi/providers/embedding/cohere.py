"""Embeddings on Cohere: ``POST /v2/embed`` with ``texts``, ``input_type`` (required by Cohere's v3+ models:
``search_document`` unless the client names another) and ``embedding_types: ["float"]``."""

from __future__ import annotations

from typing import Mapping

from .. import cohere
from ..base import Target, UpstreamRequest, error_from_body, json_object, json_request
from .shape import answer, texts_only, vector

DEFAULT_INPUT_TYPE = "search_document"


def body_for(req, provider: str) -> dict:
    """Cohere's embed body without ``model`` (Bedrock's Cohere models take the same fields)."""
    body = {"texts": texts_only(req, provider), "input_type": req.params.get("input_type", DEFAULT_INPUT_TYPE),
            "embedding_types": ["float"]}
    if "dimensions" in req.params:
        body["output_dimension"] = req.params["dimensions"]
    return body


def vectors_of(data: dict) -> list:
    """``embeddings`` is ``{"float": [[…]]}`` when types were asked for, a bare list of vectors otherwise."""
    embeddings = data["embeddings"]
    if isinstance(embeddings, dict):
        embeddings = embeddings["float"]
    return [vector(v) for v in embeddings]


class CohereEmbeddings:
    def build_request(self, req, target: Target, *, stream: bool, passthrough: bool = False) -> UpstreamRequest:
        body = {"model": target.model, **body_for(req, "cohere")}
        return json_request(target.base_url + "/v2/embed", body, stream=False)

    def parse_response(self, body: bytes, target: Target) -> dict:
        data = json_object(body)
        tokens = ((data.get("meta") or {}).get("billed_units") or {}).get("input_tokens") or 0
        return answer(vectors_of(data), model=target.model, prompt_tokens=int(tokens))

    def parse_error(self, status: int, headers: Mapping[str, str], body: bytes, target: Target):
        return error_from_body(status, body, cohere.parse_error_data)


COHERE = CohereEmbeddings()
