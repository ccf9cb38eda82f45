"""Anthropic behind the Anthropic route: a passthrough. The client's body is forwarded byte for byte when
nothing in it has to change (the model named without ``anthropic/``, the same stream flag), else with only
``model`` and ``stream`` rewritten; ``anthropic-version``/``anthropic-beta`` and the query string go along.
Answers and stream events come back as they came, read with the chat translator only for what the gateway
itself needs (usage, the finish reason, errors)."""

from __future__ import annotations

from typing import Mapping

from ...answers import NativeAnswer, RawEvent
from ...transport import UpstreamRequest
from ...wire.sse import Event
from ..anthropic import AnthropicStream, parse_error_body, parse_message
from ..base import Target, dumps, json_object

#: fields of a Messages body that count_tokens does not take
_NOT_COUNTED = ("max_tokens", "stream", "metadata", "stop_sequences", "temperature", "top_p", "top_k",
                "service_tier", "fallbacks")


def _request(url: str, req, body: bytes, *, stream: bool) -> UpstreamRequest:
    headers = {"Content-Type": "application/json", "Accept": "text/event-stream" if stream else "application/json"}
    headers.update(req.headers)
    if req.query:
        url = f"{url}?{req.query}"
    return UpstreamRequest("POST", url, headers, body)


class MessagesPassthrough:
    framing = "sse"

    def build_request(self, req, target: Target, *, stream: bool, passthrough: bool = False) -> UpstreamRequest:
        native = req.native
        if req.raw and native.get("model") == target.model and bool(native.get("stream")) == stream \
                and "fallbacks" not in native:
            body = req.raw
        else:
            rewritten = {k: v for k, v in native.items() if k != "fallbacks"}
            rewritten["model"] = target.model
            if stream:
                rewritten["stream"] = True
            else:
                rewritten.pop("stream", None)
            body = dumps(rewritten).encode()
        return _request(target.base_url + target.row.chat_path, req, body, stream=stream)

    def parse_response(self, body: bytes, target: Target) -> NativeAnswer:
        data = json_object(body)
        if data.get("type") == "error":
            raise parse_error_body(200, body)
        if not isinstance(data.get("content"), list):
            raise ValueError("upstream answer has no content")
        return NativeAnswer(parse_message(data, model=target.model), data)

    def parse_error(self, status: int, headers: Mapping[str, str], body: bytes, target: Target):
        return parse_error_body(status, body)

    def new_stream(self, req, target: Target) -> "NativeStream":
        return NativeStream(model=target.model)


class NativeStream:
    """Each upstream event relayed as it came; the chat translator reads along for the gateway's own
    bookkeeping (and raises for an in-band error, which the surface reports in its own error event)."""

    __slots__ = ("reader",)

    def __init__(self, *, model: str) -> None:
        self.reader = AnthropicStream(model=model)

    @property
    def finished(self) -> bool:
        return self.reader.finished

    @property
    def done(self) -> bool:
        return self.reader.done

    @property
    def malformed(self) -> int:
        return self.reader.malformed

    def feed(self, event: Event) -> list:
        chunks = self.reader.feed(event)
        content, usage, finish = False, None, None
        for chunk in chunks:
            usage = chunk.get("usage") or usage
            for choice in chunk["choices"]:
                finish = choice.get("finish_reason") or finish
                delta = choice["delta"]
                content = content or any(k != "role" for k in delta)
        head = f"event: {event.event}\n" if event.event else ""
        data = event.data.replace("\n", "\ndata: ")
        return [RawEvent(f"{head}data: {data}\n\n".encode(), content=content, usage=usage, finish=finish)]


class CountTokensPassthrough:
    framing = "sse"

    def build_request(self, req, target: Target, *, stream: bool, passthrough: bool = False) -> UpstreamRequest:
        body = {k: v for k, v in req.native.items() if k not in _NOT_COUNTED}
        body["model"] = target.model
        return _request(target.base_url + target.row.chat_path + "/count_tokens", req, dumps(body).encode(),
                        stream=False)

    def parse_response(self, body: bytes, target: Target) -> dict:
        data = json_object(body)
        if not isinstance(data.get("input_tokens"), int):
            raise ValueError("count_tokens answer has no input_tokens")
        return data

    def parse_error(self, status: int, headers: Mapping[str, str], body: bytes, target: Target):
        return parse_error_body(status, body)


MESSAGES = MessagesPassthrough()
COUNT_TOKENS = CountTokensPassthrough()
