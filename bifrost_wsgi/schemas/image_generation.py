"""The image generation request (``POST /v1/images/generations``, OpenAI's body) and its validator.

Order of checks: ``model`` (``provider/model``), ``prompt``, then every other field in body order. Known
OpenAI parameters are validated and kept in ``params``; unknown ones go to ``extra`` (a provider's own
parameters, sent with ``x-bf-passthrough-extra-params``)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..errors import BadRequest, UnsupportedParameter
from ..schema import boolean, enum, integer, split_model, string
from .fields import walk

PROMPT_REQUIRED = "prompt is required for image generation"

PARAMS = {
    "n": integer(1, 10),
    "size": string,
    "quality": string,
    "style": string,
    "response_format": enum("url", "b64_json"),
    "background": string,
    "moderation": string,
    "output_format": string,
    "output_compression": integer(0, 100),
    "user": string,
}


def _no_stream(value, path):
    if boolean(value, path):
        raise UnsupportedParameter("stream is not supported for image generation", param=path)
    return False


@dataclass(slots=True)
class ImageRequest:
    provider: str
    model: str
    prompt: str
    params: dict
    fallbacks: list[tuple[str, str]] = field(default_factory=list)
    stream: bool = False
    extra: dict = field(default_factory=dict)

    def with_target(self, provider: str, model: str) -> "ImageRequest":
        return replace(self, provider=provider, model=model)


def parse_image_request(body) -> ImageRequest:
    if not isinstance(body, dict):
        raise BadRequest("invalid request format: request body must be a JSON object")
    provider, model = split_model(body.get("model"))
    if body.get("prompt") is None or body.get("prompt") == "":
        raise BadRequest(PROMPT_REQUIRED, param="prompt")
    fields = walk(body, params=PARAMS, own={"prompt": string, "stream": _no_stream})
    return ImageRequest(provider, model, fields.own["prompt"], fields.params, fields.fallbacks, extra=fields.extra)
