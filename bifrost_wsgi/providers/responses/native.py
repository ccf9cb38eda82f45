"""The Responses API where the provider has it (OpenAI, Azure OpenAI): the client's body goes upstream with
only ``model`` replaced, and the answer and the stream's events come back as they are.

Stream events are ``RawEvent``s: the event's type and its data text, relayed byte for byte (the data is
parsed only to spot the end and the usage)."""

from __future__ import annotations

import json
from typing import Mapping

from ...errors import UpstreamProtocolError
from ...response_items import TERMINAL, RawEvent
from .. import openai_compat
from ..base import Target, UpstreamRequest, json_object, json_request

OPENAI_ROWS = frozenset({"openai"})
AZURE_PATH = "/openai/v1/responses"


class NativeStream:
    """Upstream Responses events in, the same events out; an ``error`` event raises the provider's error."""

    __slots__ = ("finished", "done", "malformed")

    def __init__(self) -> None:
        self.finished = self.done = False
        self.malformed = 0

    def feed(self, event) -> list:
        data = event.data
        if not data or data == "[DONE]":
            if data:
                self.finished = self.done = True
            return []
        try:
            parsed = json.loads(data)
        except ValueError:
            self.malformed += 1
            return []
        if not isinstance(parsed, dict):
            self.malformed += 1
            return []
        kind = parsed.get("type") or event.event or ""
        if kind == "error":
            raise openai_compat.parse_error_body(_status_of(parsed), {"error": parsed.get("error") or parsed})
        if kind in TERMINAL:
            self.finished = self.done = True
        return [RawEvent(kind, data, parsed)]


def _status_of(event: dict) -> int:
    code = event.get("code") or (event.get("error") or {}).get("code")
    return 429 if code == "rate_limit_exceeded" else 500


class OpenAIResponses:
    framing = "sse"

    def url(self, target: Target) -> str:
        return target.base_url + target.row.chat_path.replace("chat/completions", "responses")

    def build_request(self, req, target: Target, *, stream: bool, passthrough: bool = False) -> UpstreamRequest:
        return json_request(self.url(target), req.upstream_body(target.model), stream=stream)

    def parse_response(self, body: bytes, target: Target) -> dict:
        data = json_object(body)
        if data.get("object") != "response":
            if "error" in data:
                raise openai_compat.parse_error_body(200, data)
            raise UpstreamProtocolError("upstream answer is not a response object")
        return data

    def parse_error(self, status: int, headers: Mapping[str, str], body: bytes, target: Target):
        return openai_compat.ADAPTER.parse_error(status, headers, body, target)

    def new_stream(self, req, target: Target) -> NativeStream:
        return NativeStream()


class AzureResponses(OpenAIResponses):
    """Azure OpenAI's v1 Responses API: the deployment is the body's ``model``."""

    def url(self, target: Target) -> str:
        settings = target.key.settings or {}
        base = target.base_url or settings.get("endpoint", "").rstrip("/")
        return base + AZURE_PATH

    def build_request(self, req, target: Target, *, stream: bool, passthrough: bool = False) -> UpstreamRequest:
        deployment = target.key.deployments.get(target.model, target.model)
        return json_request(self.url(target), req.upstream_body(deployment), stream=stream)


OPENAI = OpenAIResponses()
AZURE = AzureResponses()
