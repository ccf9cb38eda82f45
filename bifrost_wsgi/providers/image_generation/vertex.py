"""Vertex AI images: Imagen's ``:predict`` (and image-output Gemini models' ``:generateContent``) under the
project's Google publisher path, with the bodies and answers of providers/image_generation/gemini.py."""

from __future__ import annotations

from .. import vertex
from ..base import json_request
from ..vertex import ADAPTER as VERTEX
from .gemini import body, parse


def url(target, method: str) -> str:
    # the chat URL of a Google model, with the images method in place of generateContent
    return vertex.url(target, stream=False).removesuffix(":generateContent") + method


class VertexImages:
    parse_error = staticmethod(VERTEX.parse_error)

    def build_request(self, req, target, *, stream: bool, passthrough: bool):
        method, payload = body(req, target)
        return json_request(url(target, method), payload, stream=False)

    def parse_response(self, data: bytes, target) -> dict:
        return parse(data, target.model)


TRANSLATOR = VertexImages()
