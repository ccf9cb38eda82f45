"""The Cohere surface (``/cohere/v2/chat``): Cohere's SDK (``ClientV2``), unchanged (``base_url``), in front of
any provider.

The v2 chat body is read as a chat request (schemas/cohere_chat.py) and every provider, Cohere included, is
served through its chat translator; the answer is written here as a v2 chat answer, a stream as Cohere's
events (``message-start``, ``content-start``/``-delta``/``-end`` for text and thinking,
``tool-call-start``/``-delta``/``-end``, ``message-end`` with the finish reason and usage). Errors are
``{"message"}`` with the status; a failure after the first event ends the stream with ``message-end``,
``finish_reason: ERROR`` and the message in ``delta.error``.
"""

from __future__ import annotations

from .. import web
from ..answers import PlainChunk, check_completion
from ..errors import GatewayError
from ..operations import CHAT, EMBEDDING, TOKENIZE
from ..schemas.cohere_chat import parse_cohere_chat
from ..schemas.cohere_embed import parse_cohere_embed
from ..schemas.tokenize import parse_tokenize
from ..urls import Route
from ..wire.sse import compact
from . import chat_answer, inbound

#: chat finish reason → Cohere finish_reason
FINISH_REASONS = {"stop": "COMPLETE", "length": "MAX_TOKENS", "tool_calls": "TOOL_CALL", "content_filter": "ERROR"}


def envelope(err: GatewayError):
    return err.status, [("Content-Type", "application/json")], web.dumps({"message": err.message})


def chat(gateway, environ, start_response, ctx):
    req = parse_cohere_chat(inbound.read_json(gateway, environ))
    req.fallbacks = inbound.header_fallbacks(environ)
    answer = inbound.run(gateway, environ, start_response, ctx, req, CHAT, CohereStreamEncoder())
    if req.stream:
        return answer
    return web.json_response(start_response, 200, render(answer.body), [("x-request-id", ctx.request_id)])


def embed(gateway, environ, start_response, ctx):
    """Any provider's embeddings as Cohere's v2 answer (``embeddings.float`` in input order)."""
    req = parse_cohere_embed(inbound.read_json(gateway, environ))
    req.fallbacks = inbound.header_fallbacks(environ)
    answer = inbound.run(gateway, environ, start_response, ctx, req, EMBEDDING, None)
    tokens = (answer.body.get("usage") or {}).get("prompt_tokens") or 0
    body = {"id": ctx.request_id, "response_type": "embeddings_by_type",
            "embeddings": {"float": [item["embedding"] for item in answer.body["data"]]}, "texts": req.texts,
            "meta": {"api_version": {"version": "2"}, "billed_units": {"input_tokens": tokens}}}
    return web.json_response(start_response, 200, body, [("x-request-id", ctx.request_id)])


def tokenize(gateway, environ, start_response, ctx):
    """The model's own tokens: Cohere's tokenizer API (other providers answer ``unsupported_operation``)."""
    req = parse_tokenize(inbound.read_json(gateway, environ))
    req.fallbacks = inbound.header_fallbacks(environ)
    answer = inbound.run(gateway, environ, start_response, ctx, req, TOKENIZE, None)
    body = {**answer.body, "meta": {"api_version": {"version": "1"}}}
    return web.json_response(start_response, 200, body, [("x-request-id", ctx.request_id)])


def _post(handler) -> dict:
    return {"POST": Route(handler, inference=True, envelope=envelope)}


ROUTES = {"/cohere/v2/chat": _post(chat), "/cohere/v2/embed": _post(embed), "/cohere/v1/tokenize": _post(tokenize)}


def render(body: dict) -> dict:
    body = check_completion(body)
    choice = (body.get("choices") or [{}])[0]
    msg = choice.get("message") or {}
    content = [{"type": "thinking", "thinking": msg["reasoning"]}] if msg.get("reasoning") else []
    text = msg.get("content")
    if text:
        content.append({"type": "text", "text": text if isinstance(text, str) else
                        "".join(p.get("text", "") for p in text)})
    message: dict = {"role": "assistant", "content": content}
    if msg.get("tool_calls"):
        message["tool_calls"] = [{"id": c.get("id", ""), "type": "function",
                                  "function": {"name": (c.get("function") or {}).get("name", ""),
                                               "arguments": (c.get("function") or {}).get("arguments") or "{}"}}
                                 for c in msg["tool_calls"]]
    finish = chat_answer.stop_reason(choice.get("finish_reason", "stop"), tools=bool(msg.get("tool_calls")),
                                     reasons=FINISH_REASONS)
    return {"id": body.get("id", ""), "finish_reason": finish, "message": message, "usage": usage(body.get("usage"))}


def usage(u: dict | None) -> dict:
    counts = {"input_tokens": (u or {}).get("prompt_tokens") or 0, "output_tokens": (u or {}).get("completion_tokens") or 0}
    return {"billed_units": dict(counts), "tokens": counts}


def _event(kind: str, data: dict) -> str:
    return f"event: {kind}\ndata: {compact({'type': kind, **data})}\n\n"


def _content(index: int, content: dict) -> dict:
    return {"index": index, "delta": {"message": {"content": content}}}


class CohereStreamEncoder:
    """Chat chunks as Cohere v2 stream events. Content items (text, thinking) and tool calls are numbered
    apart, as Cohere numbers them; one content item is open at a time, and so is one tool call."""

    media_type = "text/event-stream"
    keepalive = b": ping\n\n"

    __slots__ = ("started", "content", "kind", "tool", "tools")

    def __init__(self) -> None:
        self.started = False
        self.content = -1  # the last content item's index
        self.kind = ""  # the open content item's type; "" when none is open
        self.tool = -1  # the open tool call's chat index; -1 when none is open
        self.tools = 0  # tool calls started

    def chunk(self, chunk, state) -> bytes:
        out: list[str] = []
        if not self.started:
            self.started = True
            out.append(_event("message-start", {"id": state.id, "delta": {"message": {
                "role": "assistant", "content": [], "tool_plan": "", "tool_calls": [], "citations": []}}}))
        if type(chunk) is PlainChunk:
            self._item(out, "text", chunk.content())
        else:
            for choice in chunk.get("choices") or ():
                delta = choice.get("delta") if choice.get("index", 0) == 0 else None
                if delta:
                    self._item(out, "thinking", delta.get("reasoning"))
                    self._item(out, "text", delta.get("content") if isinstance(delta.get("content"), str) else "")
                    for call in delta.get("tool_calls") or ():
                        self._tool_call(out, call)
        if not out:
            return b""
        state.mark()
        return "".join(out).encode()

    def _close(self, out: list) -> None:
        if self.kind:
            out.append(_event("content-end", {"index": self.content}))
            self.kind = ""
        if self.tool >= 0:
            out.append(_event("tool-call-end", {"index": self.tools - 1}))
            self.tool = -1

    def _item(self, out: list, kind: str, text) -> None:
        if not text:
            return
        if self.kind != kind:
            self._close(out)
            self.content += 1
            self.kind = kind
            out.append(_event("content-start", _content(self.content, {"type": kind, kind: ""})))
        out.append(_event("content-delta", _content(self.content, {kind: text})))

    def _tool_call(self, out: list, call: dict) -> None:
        fn = call.get("function") or {}
        if call.get("index", 0) != self.tool:
            self._close(out)
            self.tool = call.get("index", 0)
            self.tools += 1
            out.append(_event("tool-call-start", {"index": self.tools - 1, "delta": {"message": {"tool_calls": {
                "id": call.get("id", ""), "type": "function",
                "function": {"name": fn.get("name", ""), "arguments": ""}}}}}))
        if fn.get("arguments"):
            out.append(_event("tool-call-delta", {"index": self.tools - 1, "delta": {"message": {"tool_calls": {
                "function": {"arguments": fn["arguments"]}}}}}))

    def finish(self, state) -> bytes:
        out: list[str] = []
        if not self.started:
            out.append(self.chunk({"choices": []}, state).decode())
        self._close(out)
        finish = chat_answer.stop_reason(state.finish.get(0) or "stop", tools=bool(self.tools),
                                         reasons=FINISH_REASONS)
        out.append(_event("message-end", {"delta": {"finish_reason": finish, "usage": usage(state.usage)}}))
        return "".join(out).encode()

    def failure(self, err: GatewayError, state) -> bytes:
        out: list[str] = []
        self._close(out)
        out.append(_event("message-end", {"delta": {"finish_reason": "ERROR", "error": err.message}}))
        return "".join(out).encode()
