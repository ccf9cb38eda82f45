"""The Bedrock surface (``/bedrock/model/{modelId}/converse``, ``/converse-stream``): boto3's ``bedrock-runtime``
client, unchanged (``endpoint_url``), in front of any provider.

The Converse body is read as a chat request (schemas/converse.py) and every provider, Bedrock included, is
served through its chat translator; the answer is written here as a Converse answer, a stream as AWS
event-stream messages (``messageStart``, ``contentBlockStart`` for tool use, ``contentBlockDelta``,
``contentBlockStop``, ``messageStop``, ``metadata``). Errors are ``{"message"}`` with ``x-amzn-ErrorType``;
after the first event, an exception message. SigV4 signatures are not checked (the gateway holds no AWS
secret of its clients): a virtual key comes in ``x-bf-vk`` (or ``Authorization: Bearer``).
"""

from __future__ import annotations

import json
from functools import partial

from .. import web
from ..answers import PlainChunk, check_completion
from ..errors import GatewayError
from ..operations import CHAT, EMBEDDING, MESSAGES
from ..schemas.bedrock_invoke import (body_kind, counted_input, parse_anthropic_invoke, parse_cohere_invoke,
                                      parse_titan_embed)
from ..schemas.converse import parse_converse
from ..urls import Route
from ..wire.eventstream import encode
from ..wire.sse import compact
from . import anthropic, chat_answer, inbound

#: status → the exception name boto3 raises (x-amzn-ErrorType)
EXCEPTIONS = {400: "ValidationException", 401: "AccessDeniedException", 403: "AccessDeniedException",
              404: "ResourceNotFoundException", 408: "ModelTimeoutException", 413: "ValidationException",
              422: "ValidationException", 429: "ThrottlingException", 503: "ServiceUnavailableException",
              504: "ModelTimeoutException"}
#: status → the ConverseStream exception event for a failure after the first event
STREAM_EXCEPTIONS = {400: "validationException", 429: "throttlingException", 503: "serviceUnavailableException"}

#: chat finish reason → Converse stopReason (tool calls that came back make it tool_use unless cut)
STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use",
                "content_filter": "content_filtered"}


def exception_name(status: int) -> str:
    return EXCEPTIONS.get(status) or ("InternalServerException" if status >= 500 else "ValidationException")


def envelope(err: GatewayError):
    return err.status, [("Content-Type", "application/json"), ("x-amzn-ErrorType", exception_name(err.status))], \
        web.dumps({"message": err.message})


# --- requests ----------------------------------------------------------------------------------------


def _converse(gateway, environ, start_response, ctx, *, stream: bool):
    req = parse_converse(inbound.read_json(gateway, environ), model_id=ctx.params["modelId"], stream=stream)
    req.fallbacks = inbound.header_fallbacks(environ)
    answer = inbound.run(gateway, environ, start_response, ctx, req, CHAT, ConverseStreamEncoder())
    if stream:
        return answer
    return web.json_response(start_response, 200, render(answer.body, latency_ms=answer.latency_ms),
                             [("x-request-id", ctx.request_id)])


converse = partial(_converse, stream=False)
converse_stream = partial(_converse, stream=True)


def invoke(gateway, environ, start_response, ctx):
    """A model family's native body (Titan or Cohere embeddings, Anthropic Messages), served by any provider
    with that operation and answered in the same family's shape."""
    body = inbound.read_json(gateway, environ)
    kind = body_kind(body)
    parse, operation, render_answer = INVOKE_KINDS[kind]
    req = parse(body, model_id=ctx.params["modelId"])
    req.fallbacks = [*inbound.header_fallbacks(environ), *req.fallbacks]
    answer = inbound.run(gateway, environ, start_response, ctx, req, operation, None)
    out = render_answer(answer.body, body=body, req=req, ctx=ctx)
    return web.json_response(start_response, 200, out, [("x-request-id", ctx.request_id)])


def _titan_answer(result: dict, *, body: dict, req, ctx) -> dict:
    vector = result["data"][0]["embedding"]
    out = {"embedding": vector, "inputTextTokenCount": (result.get("usage") or {}).get("prompt_tokens") or 0}
    if body.get("embeddingTypes"):
        out["embeddingsByType"] = {"float": vector}
    return out


def _cohere_answer(result: dict, *, body: dict, req, ctx) -> dict:
    vectors = [item["embedding"] for item in result["data"]]
    if body.get("embedding_types"):
        return {"id": ctx.request_id, "embeddings": {"float": vectors}, "texts": req.texts,
                "response_type": "embeddings_by_type"}
    return {"id": ctx.request_id, "embeddings": vectors, "texts": req.texts, "response_type": "embeddings_floats"}


def _messages_answer(result: dict, *, body: dict, req, ctx) -> dict:
    return anthropic.render(result, model=ctx.params["modelId"])


#: the /invoke body kind → (parser, operation, answer writer)
INVOKE_KINDS = {
    "inputText": (parse_titan_embed, EMBEDDING, _titan_answer),
    "texts": (parse_cohere_invoke, EMBEDDING, _cohere_answer),
    "messages": (parse_anthropic_invoke, MESSAGES, _messages_answer),
}


def count_tokens(gateway, environ, start_response, ctx):
    """An estimate (a token per four characters of what the model reads), as on the other drop-in count
    routes: no provider is asked."""
    counted = counted_input(inbound.read_json(gateway, environ))
    tokens = max(1, len(json.dumps(counted, ensure_ascii=False)) // anthropic.CHARS_PER_TOKEN)
    return web.json_response(start_response, 200, {"inputTokens": tokens}, [("x-request-id", ctx.request_id)])


def _post(handler) -> dict:
    return {"POST": Route(handler, inference=True, envelope=envelope)}


ROUTES = {
    "/bedrock/model/{modelId:path}/converse": _post(converse),
    "/bedrock/model/{modelId:path}/converse-stream": _post(converse_stream),
    "/bedrock/model/{modelId:path}/invoke": _post(invoke),
    "/bedrock/model/{modelId:path}/count-tokens": {"POST": Route(count_tokens, envelope=envelope)},
}


# --- answers -----------------------------------------------------------------------------------------


def render(body: dict, *, latency_ms: int) -> dict:
    body = check_completion(body)
    choice = (body.get("choices") or [{}])[0]
    msg = choice.get("message") or {}
    content = _reasoning_blocks(msg)
    text = msg.get("content")
    if text:
        content.append({"text": text if isinstance(text, str) else "".join(p.get("text", "") for p in text)})
    for call in msg.get("tool_calls") or ():
        fn = call.get("function") or {}
        content.append({"toolUse": {"toolUseId": call.get("id", ""), "name": fn.get("name", ""),
                                    "input": chat_answer.tool_input(fn.get("arguments"))}})
    return {"output": {"message": {"role": "assistant", "content": content}},
            "stopReason": stop_reason(choice.get("finish_reason", "stop"), tools=bool(msg.get("tool_calls"))),
            "usage": usage(body.get("usage")), "metrics": {"latencyMs": latency_ms}}


def _reasoning_blocks(msg: dict) -> list[dict]:
    blocks = []
    for d in msg.get("reasoning_details") or ():
        if d.get("type") == "reasoning.text" and (d.get("text") or d.get("signature")):
            text = {"text": d.get("text", "")}
            if d.get("signature"):
                text["signature"] = d["signature"]
            blocks.append({"reasoningContent": {"reasoningText": text}})
        elif d.get("type") == "reasoning.encrypted" and d.get("data"):
            blocks.append({"reasoningContent": {"redactedContent": d["data"]}})
    if not blocks and msg.get("reasoning"):
        blocks.append({"reasoningContent": {"reasoningText": {"text": msg["reasoning"]}}})
    return blocks


def stop_reason(finish: str, *, tools: bool) -> str:
    return chat_answer.stop_reason(finish, tools=tools, reasons=STOP_REASONS)


def usage(u: dict | None) -> dict:
    fresh, read, write, output = chat_answer.token_counts(u)
    out = {"inputTokens": fresh, "outputTokens": output, "totalTokens": (u or {}).get("total_tokens") or 0}
    if read:
        out["cacheReadInputTokens"] = read
    if write:
        out["cacheWriteInputTokens"] = write
    return out


# --- streams -----------------------------------------------------------------------------------------


def _event(kind: str, payload: dict) -> bytes:
    return encode({":event-type": kind, ":content-type": "application/json", ":message-type": "event"},
                  compact(payload).encode())


class ConverseStreamEncoder:
    """Chat chunks as ConverseStream events. One content block is open at a time: text, reasoning, or one
    tool call; a chunk of another kind stops it and opens the next index."""

    media_type = "application/vnd.amazon.eventstream"
    keepalive = b""  # the framing has no empty message: silence it is

    __slots__ = ("started", "index", "kind", "tool", "tools")

    def __init__(self) -> None:
        self.started = False
        self.index = -1
        self.kind = ""
        self.tool = -1
        self.tools = False

    def chunk(self, chunk, state) -> bytes:
        out: list[bytes] = []
        if not self.started:
            self.started = True
            out.append(_event("messageStart", {"role": "assistant"}))
        if type(chunk) is PlainChunk:
            self._delta(out, "text", {"text": chunk.content()})
        else:
            for choice in chunk.get("choices") or ():
                if choice.get("index", 0) == 0 and choice.get("delta"):
                    self._choice(out, choice["delta"])
        if not out:
            return b""
        state.mark()
        return b"".join(out)

    def _open(self, out: list, kind: str) -> None:
        if self.kind:
            out.append(_event("contentBlockStop", {"contentBlockIndex": self.index}))
        self.index += 1
        self.kind = kind

    def _delta(self, out: list, kind: str, delta: dict) -> None:
        if self.kind != kind:
            self._open(out, kind)
        out.append(_event("contentBlockDelta", {"contentBlockIndex": self.index, "delta": delta}))

    def _choice(self, out: list, delta: dict) -> None:
        if delta.get("reasoning"):
            self._delta(out, "reasoning", {"reasoningContent": {"text": delta["reasoning"]}})
        for d in delta.get("reasoning_details") or ():
            if d.get("type") == "reasoning.text" and d.get("signature"):
                self._delta(out, "reasoning", {"reasoningContent": {"signature": d["signature"]}})
            elif d.get("type") == "reasoning.encrypted" and d.get("data"):
                self._delta(out, "reasoning", {"reasoningContent": {"redactedContent": d["data"]}})
        if isinstance(delta.get("content"), str) and delta["content"]:
            self._delta(out, "text", {"text": delta["content"]})
        for call in delta.get("tool_calls") or ():
            ordinal = call.get("index", 0)
            fn = call.get("function") or {}
            if self.kind != "tool" or ordinal != self.tool:
                self.tool, self.tools = ordinal, True
                self._open(out, "tool")
                out.append(_event("contentBlockStart", {"contentBlockIndex": self.index, "start": {"toolUse": {
                    "toolUseId": call.get("id", ""), "name": fn.get("name", "")}}}))
            if fn.get("arguments"):
                out.append(_event("contentBlockDelta", {"contentBlockIndex": self.index,
                                                        "delta": {"toolUse": {"input": fn["arguments"]}}}))

    def finish(self, state) -> bytes:
        out: list[bytes] = []
        if not self.started:
            out.append(_event("messageStart", {"role": "assistant"}))
        if self.kind:
            out.append(_event("contentBlockStop", {"contentBlockIndex": self.index}))
            self.kind = ""
        finish = state.finish.get(0) or "stop"
        out.append(_event("messageStop", {"stopReason": stop_reason(finish, tools=self.tools)}))
        state.mark()
        latency = int((state.last - state.first_at) * 1000) if state.first_at is not None else 0
        out.append(_event("metadata", {"usage": usage(state.usage), "metrics": {"latencyMs": latency}}))
        return b"".join(out)

    def failure(self, err: GatewayError, state) -> bytes:
        kind = STREAM_EXCEPTIONS.get(err.status) or ("modelStreamErrorException" if err.status < 500 or
                                                     err.status == 502 else "internalServerException")
        return encode({":exception-type": kind, ":content-type": "application/json", ":message-type": "exception"},
                      compact({"message": err.message}).encode())
