"""OpenAI's image generation route on the unified API: ``/v1/images/generations`` (and under ``/openai``).

The answer is OpenAI's ``{"created", "data": [{"b64_json" | "url", "revised_prompt"}], "usage"}`` whatever
the provider sent, plus Bifrost's ``extra_fields``."""

from __future__ import annotations

from .. import web
from ..errors import GatewayError
from ..operations import IMAGE_GENERATION
from ..schemas.image_generation import parse_image_request
from ..urls import Route
from . import inbound
from .openai_audio import named


def generate(gateway, environ, start_response, ctx):
    ctx.request_type = IMAGE_GENERATION.request_type
    req = None
    try:
        inbound.authenticate(gateway, environ)
        req = parse_image_request(web.parse_json(web.read_body(environ, gateway.body_limit)))
        inbound.bind(gateway, environ, ctx, req, IMAGE_GENERATION)
        answer = gateway.router.complete(req, ctx, IMAGE_GENERATION)
    except GatewayError as err:
        named(err, req, ctx)
        raise
    body = answer.body
    body["extra_fields"] = {"request_type": IMAGE_GENERATION.request_type, "provider": answer.provider,
                            "model_requested": answer.model, "latency": answer.latency_ms}
    return web.json_response(start_response, 200, body, [("x-request-id", ctx.request_id)])


_GENERATE = {"POST": Route(generate, inference=True)}
ROUTES = {"/v1/images/generations": _GENERATE, "/openai/v1/images/generations": _GENERATE,
          "/openai/images/generations": _GENERATE}
