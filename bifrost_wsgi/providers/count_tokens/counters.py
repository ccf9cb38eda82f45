"""Input-token counts for a Responses request (``POST /v1/responses/input_tokens``), one translator per
provider API. OpenAI counts the Responses body itself; every other provider gets its own chat body for the
same request (built by its chat translator, so the count matches what chat would send) at its counting
endpoint. Every translator answers ``{"object": "response.input_tokens", "input_tokens": N}``."""

from __future__ import annotations

from typing import Mapping
from urllib.parse import quote

from ...errors import UnsupportedOperation
from ...operations import COUNT_TOKENS
from .. import anthropic, bedrock, cohere, gemini, openai_compat, vertex
from ..base import Target, UpstreamRequest, error_from_body, iter_text_parts, json_object, json_request
from ..responses.via_chat import as_chat

#: the Messages API fields count_tokens takes (it refuses the others, max_tokens included)
ANTHROPIC_FIELDS = ("model", "messages", "system", "tools", "tool_choice", "thinking")
GEMINI_FIELDS = ("contents", "systemInstruction", "tools", "toolConfig")
BEDROCK_FIELDS = ("messages", "system", "toolConfig")


def answer(count) -> dict:
    if isinstance(count, bool) or not isinstance(count, int):
        raise ValueError("token count is not an integer")
    return {"object": "response.input_tokens", "input_tokens": count}


def unsupported(target: Target):
    return UnsupportedOperation(f"{COUNT_TOKENS.request_type} is not supported by {target.provider} provider")


def _chat(req, target: Target):
    return as_chat(req, target, stream=False)


class OpenAICount:
    def build_request(self, req, target: Target, *, stream: bool, passthrough: bool = False) -> UpstreamRequest:
        if target.row.name != "openai":
            raise unsupported(target)
        body = req.upstream_body(target.model)
        body.pop("stream", None)
        return json_request(target.base_url + "/v1/responses/input_tokens", body, stream=False)

    def parse_response(self, body: bytes, target: Target) -> dict:
        return answer(json_object(body)["input_tokens"])

    def parse_error(self, status: int, headers: Mapping[str, str], body: bytes, target: Target):
        return openai_compat.ADAPTER.parse_error(status, headers, body, target)


class AnthropicCount:
    def build_request(self, req, target: Target, *, stream: bool, passthrough: bool = False) -> UpstreamRequest:
        full = anthropic.build_body(_chat(req, target), target, stream=False)
        body = {k: full[k] for k in ANTHROPIC_FIELDS if k in full}
        return json_request(target.base_url + "/v1/messages/count_tokens", body, stream=False)

    def parse_response(self, body: bytes, target: Target) -> dict:
        return answer(json_object(body)["input_tokens"])

    def parse_error(self, status: int, headers: Mapping[str, str], body: bytes, target: Target):
        return anthropic.ADAPTER.parse_error(status, headers, body, target)


def _gemini_body(req, target: Target) -> dict:
    full = gemini.build_body(_chat(req, target), target)
    return {k: full[k] for k in GEMINI_FIELDS if k in full}


class GeminiCount:
    def build_request(self, req, target: Target, *, stream: bool, passthrough: bool = False) -> UpstreamRequest:
        name = target.model if "/" in target.model else "models/" + target.model
        # countTokens takes system instructions and tools only inside a whole generateContentRequest
        body = {"generateContentRequest": {"model": name, **_gemini_body(req, target)}}
        return json_request(f"{target.base_url}/{quote(name, safe='/-._@')}:countTokens", body, stream=False)

    def parse_response(self, body: bytes, target: Target) -> dict:
        return answer(gemini.json_object(body)["totalTokens"])

    def parse_error(self, status: int, headers: Mapping[str, str], body: bytes, target: Target):
        return gemini.parse_error_body(status, body)


class VertexCount(GeminiCount):
    def build_request(self, req, target: Target, *, stream: bool, passthrough: bool = False) -> UpstreamRequest:
        if vertex.is_claude(target.model):
            raise unsupported(target)
        url = vertex.url(target, stream=False).replace(":generateContent", ":countTokens")
        return json_request(url, _gemini_body(req, target), stream=False)


class BedrockCount:
    def build_request(self, req, target: Target, *, stream: bool, passthrough: bool = False) -> UpstreamRequest:
        full = bedrock.build_body(_chat(req, target), target)
        body = {"input": {"converse": {k: full[k] for k in BEDROCK_FIELDS if k in full}}}
        url = bedrock.url(target, stream=False).replace("/converse", "/count-tokens")
        return json_request(url, body, stream=False)

    def parse_response(self, body: bytes, target: Target) -> dict:
        return answer(json_object(body)["inputTokens"])

    def parse_error(self, status: int, headers: Mapping[str, str], body: bytes, target: Target):
        return bedrock.parse_error(status, headers, body)


class CohereCount:
    """Cohere has no count for a conversation: its tokenizer counts the text of every message."""

    def build_request(self, req, target: Target, *, stream: bool, passthrough: bool = False) -> UpstreamRequest:
        chat = _chat(req, target)
        text = "\n".join(part for m in chat.messages for part in iter_text_parts(m.content))
        return json_request(target.base_url + "/v1/tokenize", {"text": text, "model": target.model}, stream=False)

    def parse_response(self, body: bytes, target: Target) -> dict:
        tokens = json_object(body)["tokens"]
        if not isinstance(tokens, list):
            raise ValueError("tokens is not an array")
        return answer(len(tokens))

    def parse_error(self, status: int, headers: Mapping[str, str], body: bytes, target: Target):
        return error_from_body(status, body, cohere.parse_error_data)
