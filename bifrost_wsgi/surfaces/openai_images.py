"""OpenAI's image generation route on the unified API: ``/v1/images/generations`` (and under ``/openai``).

The answer is OpenAI's ``{"created", "data": [{"b64_json" | "url", "revised_prompt"}], "usage"}`` whatever
the provider sent, plus Bifrost's ``extra_fields``."""

from __future__ import annotations

from ..operations import IMAGE_GENERATION
from ..schemas.image_generation import parse_image_request
from ..urls import Route
from . import inbound, unified


def generate(gateway, environ, start_response, ctx):
    req = unified.accept_json(gateway, environ, ctx, parse_image_request, IMAGE_GENERATION)
    with inbound.naming(ctx, req):
        answer = gateway.router.complete(req, ctx, IMAGE_GENERATION)
    return unified.reply(start_response, ctx, answer, answer.body, IMAGE_GENERATION)


_GENERATE = {"POST": Route(generate, inference=True)}
ROUTES = {"/v1/images/generations": _GENERATE, "/openai/v1/images/generations": _GENERATE,
          "/openai/images/generations": _GENERATE}
