"""Azure OpenAI images: OpenAI's body and answer at the deployment's ``/images/generations``."""

from __future__ import annotations

from .. import azure_deployments
from ..azure import ADAPTER as CHAT
from ..base import json_request
from .openai_compat import body, parse


class AzureImages:
    parse_error = staticmethod(CHAT.parse_error)

    def build_request(self, req, target, *, stream: bool, passthrough: bool):
        url = azure_deployments.url(target, "/images/generations")
        return json_request(url, body(req, target.model, passthrough=passthrough), stream=False)

    def parse_response(self, data: bytes, target) -> dict:
        return parse(data)


TRANSLATOR = AzureImages()
