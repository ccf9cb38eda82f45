"""The one adapter for every OpenAI-compatible provider row (openai, groq, mistral, xai, ollama, …).

The request body is the validated client body with the provider-native model; the answer is already in
the OpenAI shape and only loses its nulls. Differences between rows are data on the row
(``max_tokens_field``, ``reasoning_object``), not code here.
"""

from __future__ import annotations

import json
import re
from typing import Mapping

from ..errors import UpstreamProtocolError, provider_error
from ..wire.sse import Event
from .base import ChatRequest, Target, UpstreamRequest, drop_nulls, error_from_body, json_event, json_object, json_request


def build_body(req: ChatRequest, target: Target, *, stream: bool, passthrough: bool) -> dict:
    row = target.row
    body: dict = {"model": target.model, "messages": [m.raw for m in req.messages]}
    params = req.params
    if params:
        body.update(params)
        tokens = body.pop("max_completion_tokens", None)
        if tokens is not None:
            body[row.max_tokens_field] = tokens
        reasoning = body.pop("reasoning", None)
        if reasoning is not None:
            if row.reasoning_object:
                body["reasoning"] = reasoning
            elif "effort" in reasoning:
                body["reasoning_effort"] = reasoning["effort"]
    if not stream:
        body.pop("stream_options", None)  # OpenAI rejects stream_options on a non-streamed request
    else:
        body["stream"] = True
        # usage is always asked for; the client only sees it on the final chunk
        body["stream_options"] = {**params.get("stream_options", {}), "include_usage": True}
    if passthrough and req.extra:
        for k, v in req.extra.items():
            body.setdefault(k, v)
    return body


class OpenAICompatAdapter:
    framing = "sse"

    def url(self, target: Target, *, stream: bool) -> str:
        return target.base_url + target.row.chat_path

    def build_request(self, req: ChatRequest, target: Target, *, stream: bool, passthrough: bool = False) -> UpstreamRequest:
        body = build_body(req, target, stream=stream, passthrough=passthrough)
        return json_request(self.url(target, stream=stream), body, stream=stream)

    def parse_response(self, body: bytes, target: Target) -> dict:
        data = json_object(body)
        if "error" in data and "choices" not in data:
            raise parse_error_body(200, data)
        if not isinstance(data.get("choices"), list):
            raise UpstreamProtocolError("upstream answer has no choices")
        return drop_nulls(data)

    def parse_error(self, status: int, headers: Mapping[str, str], body: bytes, target: Target):
        return error_from_body(status, body, parse_error_body)

    def new_stream(self, req: ChatRequest, target: Target) -> "OpenAIStream":
        return OpenAIStream()


def parse_error_body(status: int, data: dict):
    """OpenAI's ``{"error": {"message", "type", "code", "param"}}`` (also a bare message or a string error)."""
    err = data.get("error", data)
    if isinstance(err, str):
        return provider_error(status, err)
    if not isinstance(err, dict):
        return provider_error(status, json.dumps(data)[:1000])
    message = err.get("message") or data.get("message") or data.get("detail") or ""
    if not isinstance(message, str):
        message = json.dumps(message)
    etype = err.get("type")
    return provider_error(status, message, type=etype if isinstance(etype, str) else None,
                          code=err.get("code"), param=err.get("param"))


# PERF: a plain content chunk, in the exact compact form OpenAI sends, is recognised by one regular
# expression and forwarded as its own text (minus null members) without being parsed and re-encoded, which
# was most of the gateway's per-chunk cost. The pattern only accepts valid JSON: strings are matched with
# their escapes, so a quote or "null" inside content can never be mistaken for structure.
_STR = r'"(?:[^"\\\x00-\x1f]++|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*+"'
_PLAIN = re.compile(
    r'\{"id":' + _STR + r',"object":"chat\.completion\.chunk","created":\d+,"model":(?P<model>' + _STR + r')'
    r'(?P<head>(?:,"(?:service_tier|system_fingerprint|obfuscation)":(?:' + _STR + r'|null))*+)'
    r',"choices":\[\{"index":\d+,"delta":\{"content":(?P<text>' + _STR + r')'
    r'(?P<delta>(?:,"(?:refusal|tool_calls|function_call|reasoning|reasoning_content|audio)":null)*+)\}'
    r'(?P<choice>(?:,"(?:logprobs|finish_reason)":null)*+)\}\]'
    r'(?P<tail>(?:,"(?:usage|service_tier|system_fingerprint|obfuscation)":(?:' + _STR + r'|null))*+)\}')
_NULL_MEMBER = re.compile(r',"[a-z_]+":null')
_STRING = re.compile(_STR)


def _unquote(literal: str) -> str:
    return literal[1:-1] if "\\" not in literal else json.loads(literal)


def is_string(literal: str) -> bool:
    """Whether ``literal`` is exactly one JSON string (quotes included)."""
    inner = literal[1:-1]
    if len(literal) > 1 and literal[0] == '"' == literal[-1] and '"' not in inner and "\\" not in inner \
            and inner.isprintable():
        return True  # no quote, escape or control character inside: the usual token
    return _STRING.fullmatch(literal) is not None


class PlainChunk:
    """A plain content chunk kept as text (see _PLAIN); the relay forwards it as it is."""

    __slots__ = ("data", "text")

    def __init__(self, data: str, text: str) -> None:
        self.data = data  # the upstream's JSON text without its null members
        self.text = text  # the content as its JSON string literal

    def json_without_nulls(self) -> str:
        return self.data

    def content(self) -> str:
        return _unquote(self.text)

    def as_dict(self) -> dict:
        return drop_nulls(json.loads(self.data))


class Template:
    """The text of a stream's plain content chunk around its content: ``head`` + JSON string + ``tail``;
    ``out_head``/``out_tail`` are the same without null members."""

    __slots__ = ("head", "tail", "out_head", "out_tail")

    def __init__(self, data: str, start: int, end: int) -> None:
        self.head, self.tail = data[:start], data[end:]
        # in valid JSON a quote after a comma inside a string would close it, and a closing quote is never
        # followed by a letter: only members match, never string content
        self.out_head, self.out_tail = _NULL_MEMBER.sub("", self.head), _NULL_MEMBER.sub("", self.tail)


class OpenAIStream:
    """OpenAI chunks pass through; a chunk with ``error`` is an in-band error; ``[DONE]`` ends it.

    PERF: once a chunk has matched _PLAIN, the text around its content (id, model, fingerprint, nulls) is
    kept as ``template``: the next chunks of the stream repeat it byte for byte, so checking that a chunk
    starts and ends with it and that what lies between is one JSON string proves the same shape without
    the pattern. Null members are cut from the template once instead of from every chunk. express.py uses
    the same template on the upstream's bytes."""

    __slots__ = ("finished", "done", "malformed", "template")

    def __init__(self) -> None:
        self.finished = False
        self.done = False
        self.malformed = 0
        self.template: Template | None = None

    def feed(self, event: Event) -> list[dict]:
        data = event.data
        t = self.template
        if t is not None and data.startswith(t.head) and data.endswith(t.tail):
            text = data[len(t.head):len(data) - len(t.tail)]
            if len(text) > 2 and is_string(text):
                return [PlainChunk(t.out_head + text + t.out_tail, text)]
        if data == "[DONE]":
            self.done = True
            self.finished = True
            return []
        if not data:
            return []
        m = _PLAIN.fullmatch(data)
        if m is not None and m["text"] != '""':
            t = self.template = Template(data, *m.span("text"))
            return [PlainChunk(t.out_head + m["text"] + t.out_tail, m["text"])]
        chunk = json_event(data)
        if chunk is None:
            self.malformed += 1
            return []
        if "error" in chunk and not chunk.get("choices"):
            err = chunk["error"]
            status = 500
            if isinstance(err, dict):
                for k in ("status", "code", "status_code"):
                    if isinstance(err.get(k), int) and 400 <= err[k] <= 599:
                        status = err[k]
                        break
            raise parse_error_body(status, chunk)
        if event.event == "error":
            raise parse_error_body(500, chunk)
        for choice in chunk.get("choices") or ():
            if type(choice) is dict and choice.get("finish_reason"):
                self.finished = True
        if "null" in data:
            drop_nulls(chunk)
        return [chunk]


ADAPTER = OpenAICompatAdapter()
