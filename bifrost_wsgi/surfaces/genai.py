"""The Gemini surface (``/genai/v1beta/models/…``): the google-genai SDK, unchanged, in front of any provider.

The request is read as a chat request (schemas/generate_content.py) and every provider, Gemini included,
serves it through its chat translator; the chat answer or chunks are written here as
``GenerateContentResponse`` objects, a stream as ``data:`` events without ``[DONE]``. Streamed tool calls
are held until the end of the answer and sent whole, as Gemini sends ``functionCall`` parts. Errors use
Google's envelope ``{"error": {"code", "message", "status"}}``.
"""

from __future__ import annotations

from functools import partial

import json

from .. import web
from ..answers import PlainChunk, check_completion
from ..errors import BadRequest, GatewayError, NotFound
from ..operations import CHAT, EMBEDDING
from ..schemas.embed_content import parse_embed_content
from ..schemas.generate_content import THOUGHT_MARK, parse_generate_content
from ..urls import Route
from ..wire.sse import encode
from . import chat_answer, inbound

#: Google's status name for each HTTP status
STATUSES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
            409: "ABORTED", 413: "INVALID_ARGUMENT", 429: "RESOURCE_EXHAUSTED", 499: "CANCELLED",
            500: "INTERNAL", 501: "UNIMPLEMENTED", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}

#: chat finish reason → Gemini finishReason
FINISH_REASONS = {"stop": "STOP", "tool_calls": "STOP", "length": "MAX_TOKENS", "content_filter": "SAFETY"}

#: characters per token of the countTokens estimate (no provider is asked)
CHARS_PER_TOKEN = 4


def google_status(status: int) -> str:
    return STATUSES.get(status) or ("INTERNAL" if status >= 500 else "FAILED_PRECONDITION")


def error_body(err: GatewayError) -> dict:
    return {"error": {"code": err.status, "message": err.message, "status": google_status(err.status)}}


def envelope(err: GatewayError):
    return err.status, [("Content-Type", "application/json")], web.dumps(error_body(err))


# --- requests ----------------------------------------------------------------------------------------


def _generate(gateway, environ, start_response, ctx, *, stream: bool):
    req = parse_generate_content(inbound.read_json(gateway, environ), model=ctx.params["model"], stream=stream)
    req.fallbacks = inbound.header_fallbacks(environ)
    encoder = GenerateContentStreamEncoder(model=req.model_name)
    answer = inbound.run(gateway, environ, start_response, ctx, req, CHAT, encoder)
    if stream:
        return answer
    return web.json_response(start_response, 200, render(answer.body, model=req.model_name),
                             [("x-request-id", ctx.request_id)])


def _embed(gateway, environ, start_response, ctx, *, batch: bool):
    """Any provider's embeddings as Gemini's: ``{"embedding": {"values"}}``, or ``{"embeddings": [...]}`` for a
    batch, in input order."""
    req = parse_embed_content(inbound.read_json(gateway, environ), model=ctx.params["model"], batch=batch)
    req.fallbacks = inbound.header_fallbacks(environ)
    answer = inbound.run(gateway, environ, start_response, ctx, req, EMBEDDING, None)
    embeddings = [{"values": item["embedding"]} for item in answer.body["data"]]
    body = {"embeddings": embeddings} if batch else {"embedding": embeddings[0]}
    return web.json_response(start_response, 200, body, [("x-request-id", ctx.request_id)])


def count_tokens(gateway, environ, start_response, ctx):
    """An estimate (a token per four characters of what the model reads): no provider is asked."""
    body = inbound.read_json(gateway, environ)
    if isinstance(body, dict) and isinstance(body.get("generateContentRequest"), dict):
        body = body["generateContentRequest"]
    if not isinstance(body, dict):
        raise BadRequest("invalid request format: request body must be a JSON object")
    counted = {k: body[k] for k in ("contents", "systemInstruction", "tools") if k in body}
    tokens = max(1, len(json.dumps(counted, ensure_ascii=False)) // CHARS_PER_TOKEN)
    return web.json_response(start_response, 200, {"totalTokens": tokens}, [("x-request-id", ctx.request_id)])


def list_models(gateway, environ, start_response, ctx):
    models = [_model_entry(m) for m in _visible_models(gateway, environ)]
    return web.json_response(start_response, 200, {"models": models}, [("x-request-id", ctx.request_id)])


def get_model(gateway, environ, start_response, ctx):
    wanted = ctx.params["model"]
    for entry in _visible_models(gateway, environ):
        model = _model_entry(entry)
        if model["name"] == f"models/{wanted}":
            return web.json_response(start_response, 200, model, [("x-request-id", ctx.request_id)])
    raise NotFound(f"model {wanted} is not configured")


def _visible_models(gateway, environ) -> list[dict]:
    vk = gateway.governance.authenticate(environ) if gateway.governance is not None else None
    data = gateway.models.list()
    return gateway.governance.visible(vk, data) if vk is not None else data


def _model_entry(entry: dict) -> dict:
    model_id = entry["id"].removeprefix("gemini/")  # a bare name means a Gemini model on this route
    return {"name": f"models/{model_id}", "displayName": model_id,
            "supportedGenerationMethods": ["generateContent", "streamGenerateContent", "countTokens",
                                           "embedContent", "batchEmbedContents"]}


embed_content = partial(_embed, batch=False)
batch_embed_contents = partial(_embed, batch=True)
generate_content = partial(_generate, stream=False)
stream_generate_content = partial(_generate, stream=True)


def _post(handler) -> dict:
    return {"POST": Route(handler, inference=True, envelope=envelope)}


def _get(handler) -> dict:
    return {"GET": Route(handler, envelope=envelope), "HEAD": Route(handler, envelope=envelope)}


# the actions first: the plain model template would also match them. The SDK calls v1beta unless told
# otherwise (some versions default to v1): both are served alike.
ROUTES = {
    f"/genai/{version}/models{path}": methods
    for version in ("v1beta", "v1")
    for path, methods in (
        ("/{model:path}:generateContent", _post(generate_content)),
        ("/{model:path}:streamGenerateContent", _post(stream_generate_content)),
        ("/{model:path}:embedContent", _post(embed_content)),
        ("/{model:path}:batchEmbedContents", _post(batch_embed_contents)),
        ("/{model:path}:countTokens", {"POST": Route(count_tokens, envelope=envelope)}),
        ("", _get(list_models)),
        ("/{model:path}", _get(get_model)),
    )
}


# --- answers -----------------------------------------------------------------------------------------


def render(body: dict, *, model: str) -> dict:
    body = check_completion(body)
    candidates = []
    for choice in body.get("choices") or ():
        msg = choice.get("message") or {}
        parts = _thought_parts(msg) + _text_parts(msg) + [_call_part(c) for c in msg.get("tool_calls") or ()]
        candidates.append({"content": {"role": "model", "parts": parts},
                           "finishReason": FINISH_REASONS.get(choice.get("finish_reason"), "STOP"),
                           "index": choice.get("index", 0)})
    out = {"candidates": candidates, "modelVersion": model}
    if body.get("usage"):
        out["usageMetadata"] = usage_metadata(body["usage"])
    if body.get("id"):
        out["responseId"] = body["id"]
    return out


def _thought_parts(msg: dict) -> list[dict]:
    return [{"text": msg["reasoning"], "thought": True}] if msg.get("reasoning") else []


def _text_parts(msg: dict) -> list[dict]:
    content = msg.get("content")
    text = content if isinstance(content, str) else "".join(p.get("text", "") for p in content or ())
    signature = next((d.get("data") for d in msg.get("reasoning_details") or ()
                      if d.get("type") == "reasoning.encrypted" and d.get("data")), None)
    if not text and not signature:
        return []
    part = {"text": text}
    if signature:
        part["thoughtSignature"] = signature
    return [part]


def _call_part(call: dict) -> dict:
    fn = call.get("function") or {}
    call_id, _, signature = (call.get("id") or "").partition(THOUGHT_MARK)
    part = {"functionCall": {"name": fn.get("name", ""), "args": chat_answer.tool_input(fn.get("arguments"))}}
    if call_id:
        part["functionCall"]["id"] = call_id
    if signature:
        part["thoughtSignature"] = signature
    return part


def usage_metadata(u: dict) -> dict:
    reasoning = (u.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0
    out = {"promptTokenCount": u.get("prompt_tokens", 0),
           "candidatesTokenCount": max(u.get("completion_tokens", 0) - reasoning, 0),
           "totalTokenCount": u.get("total_tokens", 0)}
    if reasoning:
        out["thoughtsTokenCount"] = reasoning
    cached = (u.get("prompt_tokens_details") or {}).get("cached_tokens")
    if cached:
        out["cachedContentTokenCount"] = cached
    return out


# --- streams -----------------------------------------------------------------------------------------


class GenerateContentStreamEncoder:
    """Each chat chunk's text and thoughts as one ``GenerateContentResponse`` event; tool calls gathered and
    sent whole with the finish reason and usage in the last event."""

    media_type = "text/event-stream"
    keepalive = b"\n"  # an empty line: the SDK's line reader takes no comment lines

    __slots__ = ("model", "calls")

    def __init__(self, *, model: str) -> None:
        self.model = model
        self.calls: dict[int, dict] = {}  # chat tool-call index → {"id", "function": {"name", "arguments"}}

    def _response(self, parts: list, state, **candidate) -> dict:
        out = {"candidates": [{"content": {"role": "model", "parts": parts}, **candidate, "index": 0}],
               "modelVersion": self.model}
        if state.id:
            out["responseId"] = state.id
        return out

    def chunk(self, chunk, state) -> bytes:
        if type(chunk) is PlainChunk:
            parts = [{"text": chunk.content()}]
        else:
            parts = []
            for choice in chunk.get("choices") or ():
                if choice.get("index", 0) == 0 and choice.get("delta"):
                    parts += self._parts(choice["delta"])
        if not parts:
            return b""
        state.mark()
        return encode(self._response(parts, state))

    def _parts(self, delta: dict) -> list[dict]:
        parts = _thought_parts(delta)
        if delta.get("content") or delta.get("reasoning_details"):
            parts += _text_parts(delta)
        for call in delta.get("tool_calls") or ():
            held = self.calls.setdefault(call.get("index", 0), {"id": "", "function": {"name": "", "arguments": ""}})
            held["id"] = held["id"] or call.get("id", "")
            fn = call.get("function") or {}
            held["function"]["name"] = held["function"]["name"] or fn.get("name", "")
            held["function"]["arguments"] += fn.get("arguments") or ""
        return parts

    def finish(self, state) -> bytes:
        parts = [_call_part(self.calls[i]) for i in sorted(self.calls)]
        state.mark()
        out = self._response(parts, state, finishReason=FINISH_REASONS.get(state.finish.get(0), "STOP"))
        if state.usage:
            out["usageMetadata"] = usage_metadata(state.usage)
        return encode(out)

    def failure(self, err: GatewayError, state) -> bytes:
        return encode(error_body(err))
