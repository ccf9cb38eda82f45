"""Text completions where the provider has ``/v1/completions`` (OpenAI-compatible rows in ``PATHS``, Azure's
deployments): the client's parameters go upstream with the native model, and the answer and stream chunks
(``text_completion`` objects) come back as they are, without their nulls."""

from __future__ import annotations

from dataclasses import replace
from typing import Mapping

from ...errors import UnsupportedOperation, UpstreamProtocolError
from ...operations import TEXT_COMPLETION
from .. import azure, openai_compat
from ..base import Target, UpstreamRequest, drop_nulls, json_object, json_request

PATHS = {name: "/v1/completions" for name in ("openai", "ollama", "sgl", "nebius", "cerebras", "openrouter", "xai")}
AZURE_PATH = "/openai/deployments/{deployment}/completions"


def build_body(req, target: Target, *, stream: bool, passthrough: bool) -> dict:
    body = {"model": target.model, "prompt": req.prompt, **req.params}
    if stream:
        body["stream"] = True
        body["stream_options"] = {**req.params.get("stream_options", {}), "include_usage": True}
    else:
        body.pop("stream_options", None)
    if passthrough:
        for k, v in req.extra.items():
            body.setdefault(k, v)
    return body


class OpenAICompatCompletions:
    framing = "sse"

    def url(self, target: Target) -> str:
        path = PATHS.get(target.row.name)
        if path is None:
            raise UnsupportedOperation(f"{TEXT_COMPLETION.request_type} is not supported by {target.provider} provider")
        return target.base_url + path

    def build_request(self, req, target: Target, *, stream: bool, passthrough: bool = False) -> UpstreamRequest:
        body = build_body(req, target, stream=stream, passthrough=passthrough)
        return json_request(self.url(target), body, stream=stream)

    def parse_response(self, body: bytes, target: Target) -> dict:
        data = json_object(body)
        if not isinstance(data.get("choices"), list):
            if "error" in data:
                raise openai_compat.parse_error_body(200, data)
            raise UpstreamProtocolError("upstream answer has no choices")
        return drop_nulls(data)

    def parse_error(self, status: int, headers: Mapping[str, str], body: bytes, target: Target):
        return openai_compat.ADAPTER.parse_error(status, headers, body, target)

    def new_stream(self, req, target: Target):
        # the chat stream reader: errors in band, finish reasons and [DONE] are read alike
        return openai_compat.OpenAIStream()


class AzureCompletions(OpenAICompatCompletions):
    def url(self, target: Target) -> str:
        return azure.ADAPTER.url(replace(target, row=replace(target.row, chat_path=AZURE_PATH)), stream=False)


OPENAI_COMPAT = OpenAICompatCompletions()
AZURE = AzureCompletions()
