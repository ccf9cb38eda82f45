"""The Anthropic surface (``/anthropic/v1/messages``, ``…/count_tokens``, ``/anthropic/v1/models``): the
Anthropic SDK and Claude Code, unchanged, in front of any provider.

Anthropic itself gets the client's body and headers as they came and its answer goes back as it came
(providers/messages). Every other provider is served through its chat translator: the Messages body is
read as a chat request (schemas/messages.py), and the chat answer or chunks are written here as a Messages
answer or as Anthropic's named events, in the order the SDK's accumulator relies on: ``message_start``
(usage with both counts), each content block started before its deltas and stopped once, ``message_delta``
(stop reason, usage), ``message_stop``. Errors use Anthropic's envelope, in a stream an ``error`` event.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone

from .. import web
from ..answers import NativeAnswer, PlainChunk, RawEvent, check_completion
from ..errors import GatewayError, UnsupportedOperation
from ..operations import MESSAGES, MESSAGES_COUNT_TOKENS
from ..schemas.messages import parse_messages
from ..urls import Route
from ..wire.sse import compact
from . import chat_answer, inbound

#: Anthropic's error type for each status (other 5xx: api_error, other 4xx: invalid_request_error)
ERROR_TYPES = {400: "invalid_request_error", 422: "invalid_request_error", 401: "authentication_error",
               402: "billing_error", 403: "permission_error", 404: "not_found_error", 413: "request_too_large",
               429: "rate_limit_error", 504: "timeout_error", 529: "overloaded_error"}

#: chat finish reason → Anthropic stop reason (tool calls that came back make it ``tool_use`` unless cut)
STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "content_filter": "refusal"}

#: the client headers an Anthropic upstream receives as they were sent
NATIVE_HEADERS = (("HTTP_ANTHROPIC_VERSION", "anthropic-version"), ("HTTP_ANTHROPIC_BETA", "anthropic-beta"))

#: characters per token of the estimate given when no upstream counts tokens for the model
CHARS_PER_TOKEN = 4


def error_type(status: int) -> str:
    return ERROR_TYPES.get(status) or ("api_error" if status >= 500 else "invalid_request_error")


def error_body(err: GatewayError) -> dict:
    return {"type": "error", "error": {"type": error_type(err.status), "message": err.message}}


def envelope(err: GatewayError):
    return err.status, [("Content-Type", "application/json")], web.dumps(error_body(err))


# --- requests ----------------------------------------------------------------------------------------


def _request(gateway, environ, ctx, *, counting: bool):
    inbound.authenticate(gateway, environ)
    raw = web.read_body(environ, gateway.body_limit)
    req = parse_messages(web.parse_json(raw), raw=raw, counting=counting)
    req.fallbacks = [*inbound.header_fallbacks(environ), *req.fallbacks]
    req.headers = {name: environ[key] for key, name in NATIVE_HEADERS if environ.get(key)}
    req.query = environ.get("QUERY_STRING", "")
    return req


def messages(gateway, environ, start_response, ctx):
    req = _request(gateway, environ, ctx, counting=False)
    encoder = MessagesStreamEncoder(model=req.native["model"])
    answer = inbound.run(gateway, environ, start_response, ctx, req, MESSAGES, encoder)
    if req.stream:
        return answer
    return web.json_response(start_response, 200, render(answer.body, model=req.native["model"]),
                             [("x-request-id", ctx.request_id)])


def count_tokens(gateway, environ, start_response, ctx):
    req = _request(gateway, environ, ctx, counting=True)
    inbound.bind(gateway, environ, ctx, req, MESSAGES_COUNT_TOKENS)
    try:
        body = gateway.router.complete(req, ctx, MESSAGES_COUNT_TOKENS).body
    except UnsupportedOperation:
        if req.provider not in gateway.config.providers:
            raise
        body = {"input_tokens": estimate_tokens(req.native)}
    return web.json_response(start_response, 200, body, [("x-request-id", ctx.request_id)])


def estimate_tokens(native: dict) -> int:
    """A provider without a token-counting API gets an estimate: the characters of what the model reads."""
    counted = {k: native[k] for k in ("system", "messages", "tools") if k in native}
    return max(1, len(json.dumps(counted, ensure_ascii=False)) // CHARS_PER_TOKEN)


def list_models(gateway, environ, start_response, ctx):
    vk = gateway.governance.authenticate(environ) if gateway.governance is not None else None
    data = gateway.models.list()
    if vk is not None:
        data = gateway.governance.visible(vk, data)
    models = [_model_entry(m) for m in data]
    body = {"data": models, "has_more": False, "first_id": models[0]["id"] if models else None,
            "last_id": models[-1]["id"] if models else None}
    return web.json_response(start_response, 200, body, [("x-request-id", ctx.request_id)])


def _model_entry(entry: dict) -> dict:
    model_id = entry["id"].removeprefix("anthropic/")  # a bare name means an Anthropic model on this route
    created = datetime.fromtimestamp(entry.get("created") or 0, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"type": "model", "id": model_id, "display_name": model_id, "created_at": created}


_MESSAGES = {"POST": Route(messages, inference=True, envelope=envelope)}
ROUTES = {
    "/anthropic/v1/messages": _MESSAGES,
    "/anthropic/v1/messages/count_tokens": {"POST": Route(count_tokens, inference=True, envelope=envelope)},
    "/anthropic/v1/models": {"GET": Route(list_models, envelope=envelope),
                             "HEAD": Route(list_models, envelope=envelope)},
}


# --- answers -----------------------------------------------------------------------------------------


def render(body: dict, *, model: str) -> dict:
    """A Messages answer: Anthropic's own, or the chat answer written as one."""
    if type(body) is NativeAnswer:
        return body.native
    body = check_completion(body)
    choice = (body.get("choices") or [{}])[0]
    msg = choice.get("message") or {}
    content = _thinking_blocks(msg)
    if msg.get("content"):
        content.append({"type": "text", "text": _text(msg["content"])})
    for call in msg.get("tool_calls") or ():
        fn = call.get("function") or {}
        content.append({"type": "tool_use", "id": call.get("id") or _new_id("toolu_"), "name": fn.get("name", ""),
                        "input": chat_answer.tool_input(fn.get("arguments"))})
    finish = choice.get("finish_reason", "stop")
    return {"id": _message_id(body.get("id")), "type": "message", "role": "assistant", "model": model,
            "content": content, "stop_reason": stop_reason(finish, tools=bool(msg.get("tool_calls"))),
            "stop_sequence": None, "usage": usage(body.get("usage"))}


def _text(content) -> str:
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content if isinstance(p, dict))


def _thinking_blocks(msg: dict) -> list[dict]:
    blocks = []
    for d in msg.get("reasoning_details") or ():
        if d.get("type") == "reasoning.encrypted" and d.get("data"):
            blocks.append({"type": "redacted_thinking", "data": d["data"]})
        elif d.get("type") == "reasoning.text" and (d.get("text") or d.get("signature")):
            blocks.append({"type": "thinking", "thinking": d.get("text", ""), "signature": d.get("signature", "")})
    if not blocks and msg.get("reasoning"):
        blocks.append({"type": "thinking", "thinking": msg["reasoning"], "signature": ""})
    return blocks


def stop_reason(finish: str, *, tools: bool) -> str:
    return chat_answer.stop_reason(finish, tools=tools, reasons=STOP_REASONS)


def usage(u: dict | None) -> dict:
    """Chat usage as Anthropic counts it: ``input_tokens`` without the cache reads and writes."""
    fresh, read, write, output = chat_answer.token_counts(u)
    return {"input_tokens": fresh, "output_tokens": output, "cache_creation_input_tokens": write,
            "cache_read_input_tokens": read}


def _new_id(prefix: str) -> str:
    return prefix + os.urandom(12).hex()


def _message_id(upstream_id) -> str:
    return upstream_id if isinstance(upstream_id, str) and upstream_id.startswith("msg_") else _new_id("msg_")


# --- streams -----------------------------------------------------------------------------------------


def _event(kind: str, data: dict) -> str:
    return f"event: {kind}\ndata: {compact(data)}\n\n"


PING = _event("ping", {"type": "ping"}).encode()

#: content_block_start's block for each kind of block a chat stream opens
_EMPTY_BLOCKS = {"text": {"type": "text", "text": ""}, "thinking": {"type": "thinking", "thinking": "", "signature": ""}}


class MessagesStreamEncoder:
    """Chat chunks as Anthropic's named events; an Anthropic upstream's own events (RawEvent) as they came.

    One block is open at a time: a chunk of another kind (text, thinking, another tool call) stops it and
    starts the next index, so every delta has a started block and each block is stopped exactly once."""

    media_type = "text/event-stream"
    keepalive = PING

    __slots__ = ("model", "started", "native", "index", "kind", "tool", "tools", "text_head")

    def __init__(self, *, model: str) -> None:
        self.model = model  # as the client named it
        self.started = False
        self.native = False
        self.index = -1  # the open block's index, -1 before the first
        self.kind = ""  # the open block's kind; "" when none is open
        self.tool = -1  # the chat tool-call index of the open tool_use block
        self.tools = False
        self.text_head = ""  # the open text block's delta event up to its text

    def chunk(self, chunk, state) -> bytes:
        if type(chunk) is PlainChunk and self.kind == "text":
            # PERF: the upstream's text is already a JSON string literal: spliced in, not re-encoded
            state.mark()
            return (self.text_head + chunk.text + "}}\n\n").encode()
        if type(chunk) is RawEvent:
            self.native = True
            state.mark()
            return chunk.data
        out: list[str] = []
        if not self.started:
            self._start(out, state)
        if type(chunk) is PlainChunk:
            self._text(out, chunk.content())
        else:
            for choice in chunk.get("choices") or ():
                if choice.get("index", 0) == 0 and choice.get("delta"):
                    self._delta(out, choice["delta"])
        if not out:
            return b""
        state.mark()
        return "".join(out).encode()

    def _start(self, out: list, state) -> None:
        self.started = True
        message = {"id": _message_id(state.id), "type": "message", "role": "assistant", "model": self.model,
                   "content": [], "stop_reason": None, "stop_sequence": None, "usage": usage(state.usage)}
        out.append(_event("message_start", {"type": "message_start", "message": message}))

    def _open(self, out: list, kind: str, block: dict) -> None:
        self._close(out)
        self.index += 1
        self.kind = kind
        self.text_head = ('event: content_block_delta\ndata: {"type":"content_block_delta","index":'
                          f'{self.index},"delta":{{"type":"text_delta","text":')
        out.append(_event("content_block_start", {"type": "content_block_start", "index": self.index,
                                                  "content_block": block}))

    def _close(self, out: list) -> None:
        if self.kind:
            out.append(_event("content_block_stop", {"type": "content_block_stop", "index": self.index}))
            self.kind = ""

    def _send(self, out: list, kind: str, delta: dict) -> None:
        if self.kind != kind:
            self._open(out, kind, dict(_EMPTY_BLOCKS[kind]))
        out.append(_event("content_block_delta", {"type": "content_block_delta", "index": self.index,
                                                  "delta": delta}))

    def _text(self, out: list, text: str) -> None:
        if text:
            self._send(out, "text", {"type": "text_delta", "text": text})

    def _delta(self, out: list, delta: dict) -> None:
        reasoning = delta.get("reasoning")
        if reasoning:
            self._send(out, "thinking", {"type": "thinking_delta", "thinking": reasoning})
        for d in delta.get("reasoning_details") or ():
            if d.get("type") == "reasoning.encrypted" and d.get("data"):
                self._open(out, "redacted", {"type": "redacted_thinking", "data": d["data"]})
                self._close(out)
            elif d.get("type") == "reasoning.text":
                if d.get("text") and not reasoning:
                    self._send(out, "thinking", {"type": "thinking_delta", "thinking": d["text"]})
                if d.get("signature"):
                    self._send(out, "thinking", {"type": "signature_delta", "signature": d["signature"]})
        content = delta.get("content")
        if content:
            self._text(out, content if isinstance(content, str) else _text(content))
        for call in delta.get("tool_calls") or ():
            self._tool_call(out, call)

    def _tool_call(self, out: list, call: dict) -> None:
        ordinal = call.get("index", 0)
        fn = call.get("function") or {}
        if self.kind != "tool" or ordinal != self.tool:
            self.tool, self.tools = ordinal, True
            self._open(out, "tool", {"type": "tool_use", "id": call.get("id") or _new_id("toolu_"),
                                     "name": fn.get("name", ""), "input": {}})
        if fn.get("arguments"):
            out.append(_event("content_block_delta", {"type": "content_block_delta", "index": self.index,
                                                      "delta": {"type": "input_json_delta",
                                                                "partial_json": fn["arguments"]}}))

    def finish(self, state) -> bytes:
        if self.native:
            return b""  # the upstream's own message_delta and message_stop went out as they came
        out: list[str] = []
        if not self.started:
            self._start(out, state)
        self._close(out)
        finish = state.finish.get(0) or "stop"
        out.append(_event("message_delta", {"type": "message_delta",
                                            "delta": {"stop_reason": stop_reason(finish, tools=self.tools),
                                                      "stop_sequence": None},
                                            "usage": usage(state.usage)}))
        out.append(_event("message_stop", {"type": "message_stop"}))
        return "".join(out).encode()

    def failure(self, err: GatewayError, state) -> bytes:
        return _event("error", error_body(err)).encode()
