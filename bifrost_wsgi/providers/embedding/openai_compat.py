"""Embeddings on OpenAI-compatible rows and Azure: the same body and answer as OpenAI's ``/v1/embeddings``.

Not every OpenAI-compatible server has the API: ``PATHS`` names the rows that do (a custom provider follows
its base row); the others answer ``unsupported_operation`` before any upstream call. Vectors are always
asked for as floats: the gateway encodes base64 itself, so every provider answers alike."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Mapping

from ...errors import UnsupportedOperation, UpstreamProtocolError
from ...operations import EMBEDDING
from ...schemas.embedding import Vector
from .. import azure, openai_compat
from ..base import Target, UpstreamRequest, json_object, json_request
from .shape import answer, vector

PATHS = {name: "/v1/embeddings" for name in ("openai", "mistral", "ollama", "sgl", "nebius", "huggingface")}
AZURE_PATH = "/openai/deployments/{deployment}/embeddings"


def build_body(req, target: Target, *, passthrough: bool) -> dict:
    body = {"model": target.model, "input": req.texts if req.texts is not None else req.tokens,
            "encoding_format": "float"}
    for name in ("dimensions", "user"):
        if name in req.params:
            body[name] = req.params[name]
    if passthrough:
        for k, v in req.extra.items():
            body.setdefault(k, v)
    return body


def parse_body(body: bytes, target: Target) -> dict:
    data = json_object(body)
    if not isinstance(data.get("data"), list):
        if "error" in data:
            raise openai_compat.parse_error_body(200, data)
        raise UpstreamProtocolError("upstream answer has no data")
    found = data["data"]
    texts = vector_texts(body, len(found))
    if texts is not None:
        for item, text in zip(found, texts):
            item["embedding"] = Vector(vector(item["embedding"]), text)
    items = sorted(found, key=lambda item: item["index"])
    vectors = [item["embedding"] if isinstance(item["embedding"], (str, Vector)) else vector(item["embedding"])
               for item in items]
    usage = data.get("usage") or {}
    return answer(vectors, model=data.get("model") or target.model, prompt_tokens=usage.get("prompt_tokens") or 0)


_VECTOR_KEY = re.compile(rb'"embedding"\s*:\s*\[')


def vector_texts(body: bytes, count: int) -> list[bytes] | None:
    """The JSON text of each item's ``embedding`` array, in document order, when it can be told without
    parsing again; else None (the answer is written from the numbers).

    Without a backslash in the body no key is escaped and no string holds a quote, so every match of
    ``"embedding": [`` is such a key with an array value: exactly ``count`` of them is one per item and no
    other. Each is checked as numbers once parsed, so its array ends at the first ``]``."""
    if b"\\" in body:
        return None
    starts = [m.end() - 1 for m in _VECTOR_KEY.finditer(body)]
    if len(starts) != count:
        return None
    return [body[start:body.index(b"]", start) + 1] for start in starts]


class OpenAICompatEmbeddings:
    def url(self, target: Target) -> str:
        path = PATHS.get(target.row.name)
        if path is None:
            raise UnsupportedOperation(f"{EMBEDDING.request_type} is not supported by {target.provider} provider")
        return target.base_url + path

    def build_request(self, req, target: Target, *, stream: bool, passthrough: bool = False) -> UpstreamRequest:
        return json_request(self.url(target), build_body(req, target, passthrough=passthrough), stream=False)

    def parse_response(self, body: bytes, target: Target) -> dict:
        return parse_body(body, target)

    def parse_error(self, status: int, headers: Mapping[str, str], body: bytes, target: Target):
        return openai_compat.ADAPTER.parse_error(status, headers, body, target)


class AzureEmbeddings(OpenAICompatEmbeddings):
    def url(self, target: Target) -> str:
        # the deployment, endpoint and api-version rules are chat's, at the embeddings path
        return azure.ADAPTER.url(replace(target, row=replace(target.row, chat_path=AZURE_PATH)), stream=False)


OPENAI_COMPAT = OpenAICompatEmbeddings()
AZURE = AzureEmbeddings()
