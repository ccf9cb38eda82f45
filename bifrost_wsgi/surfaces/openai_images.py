"""OpenAI's image generation route on the unified API: ``/v1/images/generations`` (and under ``/openai``).

The answer is OpenAI's ``{"created", "data": [{"b64_json" | "url", "revised_prompt"}], "usage"}`` whatever
the provider sent, plus Bifrost's ``extra_fields``."""

from __future__ import annotations

from .. import web
from ..operations import IMAGE_GENERATION
from ..schemas.image_generation import parse_image_request
from ..urls import Route
from . import inbound, unified


def generate(gateway, environ, start_response, ctx):
    req = unified.accept_json(gateway, environ, ctx, parse_image_request, IMAGE_GENERATION)
    with inbound.naming(ctx, req):
        answer = gateway.router.complete(req, ctx, IMAGE_GENERATION)
    body = answer.body
    body["extra_fields"] = {"request_type": IMAGE_GENERATION.request_type, "provider": answer.provider,
                            "model_requested": answer.model, "latency": answer.latency_ms}
    return web.json_response(start_response, 200, body, [("x-request-id", ctx.request_id)])


_GENERATE = {"POST": Route(generate, inference=True)}
ROUTES = {"/v1/images/generations": _GENERATE, "/openai/v1/images/generations": _GENERATE,
          "/openai/images/generations": _GENERATE}
