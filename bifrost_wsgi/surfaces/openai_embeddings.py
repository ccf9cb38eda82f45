"""``POST /v1/embeddings`` (also under ``/openai`` and Azure's deployment path): OpenAI's embeddings format in
and out, over every provider that has an embeddings API.

Translators answer float vectors in input order; ``encoding_format: "base64"`` is applied here, the same for
every provider: base64 of the little-endian float32 array, as OpenAI sends it."""

from __future__ import annotations

import base64
import struct

from .. import web
from ..operations import EMBEDDING
from ..schemas.embedding import Vector, parse_embedding
from ..urls import Route
from . import inbound, unified


def embeddings(gateway, environ, start_response, ctx):
    inbound.authenticate(gateway, environ)
    body = web.parse_json(web.read_body(environ, gateway.body_limit))
    deployment = ctx.params.get("deployment")
    if deployment is not None and isinstance(body, dict):
        # Azure's own path names the deployment; the body's model (if any) is not a provider/model ref
        body = {**body, "model": f"azure/{deployment}"}
    req = parse_embedding(body)
    answer = inbound.run(gateway, environ, start_response, ctx, req, EMBEDDING)
    result = render(answer.body, base64_out=req.base64)
    if req.base64 or not all(type(item["embedding"]) is Vector for item in result["data"]):
        return unified.reply(start_response, ctx, answer, result, EMBEDDING)
    ctx.output = result
    result["extra_fields"] = answer.extra_fields(EMBEDDING.request_type)
    payload = with_vector_texts(result)
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(payload))),
                              ("x-request-id", ctx.request_id)])
    return [payload]


def render(result: dict, *, base64_out: bool) -> dict:
    if base64_out:
        for item in result["data"]:
            if not isinstance(item["embedding"], str):
                item["embedding"] = encode_base64(item["embedding"])
    return result


def with_vector_texts(result: dict) -> bytes:
    """``web.dumps(result)`` with each vector written as the upstream's own text of it (``Vector.text``)
    rather than number by number: the same JSON, the numbers as the upstream wrote them (tests hold the two
    equal)."""
    items = b",".join(b'{"object":"embedding","index":%d,"embedding":%s}' % (item["index"], item["embedding"].text)
                      for item in result["data"])
    rest = web.dumps({k: v for k, v in result.items() if k not in _HEAD})
    return b'{"object":"list","data":[' + items + b"]," + rest[1:]


_HEAD = ("object", "data")  # written by with_vector_texts itself, in answer()'s order


def encode_base64(vector: list) -> str:
    packed = struct.pack(f"<{len(vector)}f", *vector)
    return base64.b64encode(packed).decode("ascii")


_EMBEDDINGS = {"POST": Route(embeddings, inference=True)}
ROUTES = {
    "/v1/embeddings": _EMBEDDINGS,
    "/openai/v1/embeddings": _EMBEDDINGS,
    "/openai/embeddings": _EMBEDDINGS,
    "/openai/deployments/{deployment}/embeddings": _EMBEDDINGS,
}
