"""The one adapter for every OpenAI-compatible provider row (openai, groq, mistral, xai, ollama, …).

The request body is the validated client body with the provider-native model; the answer is already in
the OpenAI shape and only loses its nulls. Differences between rows are data on the row
(``max_tokens_field``, ``reasoning_object``), not code here.
"""

from __future__ import annotations

import json
import re
from typing import Mapping

from ..answers import PlainChunk
from ..errors import UpstreamProtocolError, provider_error
from ..wire.sse import Event
from .base import (ChatRequest, KeyRules, Target, UpstreamRequest, drop_nulls, error_from_body, json_event, json_object,
                   json_request)


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


class OpenAICompatAdapter(KeyRules):
    framing = "sse"

    def models_request(self, target: Target) -> UpstreamRequest:
        url = target.base_url + target.row.chat_path.replace("chat/completions", "models")
        return UpstreamRequest("GET", url, {"Accept": "application/json"}, b"")

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


_NULL_MEMBER = re.compile(r',"[a-z_]+":null')
_STRING = re.compile(r'"(?:[^"\\\x00-\x1f]++|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*+"')

# The members a plain content chunk may have besides its content (all null in the delta and the choice).
_PLAIN_TOP = frozenset({"id", "object", "created", "model", "system_fingerprint", "service_tier", "obfuscation",
                        "usage", "choices"})
_PLAIN_CHOICE = frozenset({"index", "delta", "logprobs", "finish_reason"})
_PLAIN_DELTA = frozenset({"content", "refusal", "tool_calls", "function_call", "reasoning", "reasoning_content",
                          "audio"})


def is_string(literal: str) -> bool:
    """Whether ``literal`` is exactly one JSON string (quotes included)."""
    inner = literal[1:-1]
    if len(literal) > 1 and literal[0] == '"' == literal[-1] and '"' not in inner and "\\" not in inner \
            and inner.isprintable():
        return True  # no quote, escape or control character inside: the usual token
    return _STRING.fullmatch(literal) is not None


def _plain_content(chunk: dict) -> str | None:
    """The content of a chunk that carries nothing else (every other member null or an identity field)."""
    if chunk.get("object") != "chat.completion.chunk" or not chunk.keys() <= _PLAIN_TOP:
        return None
    if chunk.get("usage") is not None or not isinstance(chunk.get("id"), str):
        return None
    choices = chunk.get("choices")
    if type(choices) is not list or len(choices) != 1 or type(choices[0]) is not dict:
        return None
    choice = choices[0]
    if not choice.keys() <= _PLAIN_CHOICE or choice.get("logprobs") is not None \
            or choice.get("finish_reason") is not None or type(choice.get("delta")) is not dict:
        return None
    delta = choice["delta"]
    content = delta.get("content")
    if not delta.keys() <= _PLAIN_DELTA or not isinstance(content, str) or not content:
        return None
    if any(v is not None for k, v in delta.items() if k != "content"):
        return None
    return content


class Template:
    """The text of a stream's plain content chunk around its content: ``head`` + JSON string + ``tail``;
    ``out_head``/``out_tail`` are the same without null members.

    PERF, the stream path's one fast path: the chunks of a stream repeat the text around their content
    byte for byte, so a chunk that starts with ``head``, ends with ``tail`` and holds exactly one JSON
    string between them is the learnt chunk with another content: it is forwarded as its own text, without
    being parsed and encoded again (most of the per-chunk cost). A template is learnt only from a chunk the
    general path parsed and found plain, and only when cutting its null members out of the text gives what
    the general path gives (tests/test_relay.py holds the two paths to the same events)."""

    __slots__ = ("head", "tail", "out_head", "out_tail")

    def __init__(self, head: str, tail: str) -> None:
        self.head, self.tail = head, tail
        # in valid JSON a quote after a comma inside a string would close it, and a closing quote is never
        # followed by a letter: only members match, never string content
        self.out_head, self.out_tail = _NULL_MEMBER.sub("", head), _NULL_MEMBER.sub("", tail)

    @classmethod
    def learn(cls, data: str, chunk: dict) -> "Template | None":
        content = _plain_content(chunk)
        if content is None:
            return None
        for literal in (json.dumps(content), json.dumps(content, ensure_ascii=False)):
            at = data.find(literal)
            if at > 0 and data.find(literal, at + 1) < 0:
                t = cls(data[:at], data[at + len(literal):])
                if json.loads(t.out_head + literal + t.out_tail) == drop_nulls(json.loads(data)) \
                        and ":null" not in t.out_head + t.out_tail:
                    return t
        return None

    def match(self, data: str) -> PlainChunk | None:
        if data.startswith(self.head) and data.endswith(self.tail):
            text = data[len(self.head):len(data) - len(self.tail)]
            # a lone surrogate escape takes the general path, which replaces it (the client gets valid UTF-8)
            if len(text) > 2 and "\\ud" not in text.lower() and is_string(text):
                return PlainChunk(self.out_head + text + self.out_tail, text)
        return None


class OpenAIStream:
    """OpenAI chunks pass through; a chunk with ``error`` is an in-band error; ``[DONE]`` ends it. Plain
    content chunks after the first take the Template's fast path."""

    __slots__ = ("finished", "done", "malformed", "template", "relearn")

    def __init__(self) -> None:
        self.finished = False
        self.done = False
        self.malformed = 0
        self.template: Template | None = None
        # a stream whose plain chunks keep changing shape (a new id, a per-chunk nonce) stops being learnt
        self.relearn = 3

    def feed(self, event: Event) -> list:
        data = event.data
        t = self.template
        if t is not None:
            plain = t.match(data)
            if plain is not None:
                return [plain]
        if data == "[DONE]":
            self.done = True
            self.finished = True
            return []
        if not data:
            return []
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
        choices = chunk.get("choices")
        if choices is not None and type(choices) is not list:
            raise UpstreamProtocolError("upstream chunk has choices that are not a list")
        for choice in choices or ():
            if type(choice) is not dict:
                raise UpstreamProtocolError("upstream chunk has a choice that is not an object")
            if choice.get("finish_reason"):
                self.finished = True
        if (t is None or self.relearn) and not event.event:
            learnt = Template.learn(data, chunk)
            if learnt is not None:
                if t is not None:
                    self.relearn -= 1
                self.template = learnt
        if "null" in data:
            drop_nulls(chunk)
        return [chunk]


ADAPTER = OpenAICompatAdapter()
