"""``POST /v1/embeddings`` (also under ``/openai`` and Azure's deployment path): OpenAI's embeddings format in
and out, over every provider that has an embeddings API.

Translators answer float vectors in input order; ``encoding_format: "base64"`` is applied here, the same for
every provider: base64 of the little-endian float32 array, as OpenAI sends it."""

from __future__ import annotations

import base64
import struct

from .. import web
from ..operations import EMBEDDING
from ..schemas.embedding import parse_embedding
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
    return unified.reply(start_response, ctx, answer, render(answer.body, base64_out=req.base64), EMBEDDING)


def render(result: dict, *, base64_out: bool) -> dict:
    if base64_out:
        for item in result["data"]:
            if not isinstance(item["embedding"], str):
                item["embedding"] = encode_base64(item["embedding"])
    return result


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
