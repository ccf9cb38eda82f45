"""OpenAI's ``POST /v1/images/generations`` and the rows that speak it (xai, nebius): the client's body with
the provider's model; the answer is OpenAI's shape already (checked and cut to it)."""

from __future__ import annotations

from ...errors import UnsupportedOperation
from ...operations import IMAGE_GENERATION
from ..base import json_object, json_request
from ..openai_compat import ADAPTER as CHAT
from .answer import answer, image

#: the OpenAI-compatible rows that have the images API, and its path there
PATHS = {"openai": "/v1/images/generations", "xai": "/v1/images/generations", "nebius": "/v1/images/generations"}


def body(req, model: str, *, passthrough: bool) -> dict:
    out = {"model": model, "prompt": req.prompt, **req.params}
    if passthrough:
        for k, v in req.extra.items():
            out.setdefault(k, v)
    return out


def parse(data: bytes) -> dict:
    obj = json_object(data)
    return answer([image(item) for item in obj["data"]], created=obj.get("created"), usage=obj.get("usage"), top=obj)


class OpenAIImages:
    parse_error = staticmethod(CHAT.parse_error)

    def build_request(self, req, target, *, stream: bool, passthrough: bool):
        path = PATHS.get(target.row.name)
        if path is None:
            raise UnsupportedOperation(f"{IMAGE_GENERATION.request_type} is not supported by {target.provider} provider")
        return json_request(target.base_url + path, body(req, target.model, passthrough=passthrough), stream=False)

    def parse_response(self, data: bytes, target) -> dict:
        return parse(data)


TRANSLATOR = OpenAIImages()
