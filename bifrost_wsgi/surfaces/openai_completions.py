"""``POST /v1/completions`` (also under ``/openai`` and Azure's deployment path): OpenAI's legacy text
completions.

Providers with the API answer ``text_completion`` objects that are forwarded as they are (plus
``extra_fields``); Anthropic and Bedrock answer through their chat APIs, and their chat answer or chunks are
written here as ``text_completion`` ones. Streams are ``data:`` events ending in ``[DONE]``; a failure after
the first byte is one event holding the error envelope, then ``[DONE]``."""

from __future__ import annotations

from .. import web
from ..answers import PlainChunk, usage as checked_usage
from ..errors import GatewayError
from ..operations import TEXT_COMPLETION
from ..routing.relay import StreamState
from ..routing.router import Answer
from ..schemas.text_completion import parse_text_completion
from ..urls import Route
from ..wire.sse import DONE, encode
from . import inbound, unified

OBJECT = "text_completion"


def completions(gateway, environ, start_response, ctx):
    inbound.authenticate(gateway, environ)
    body = web.parse_json(web.read_body(environ, gateway.body_limit))
    deployment = ctx.params.get("deployment")
    if deployment is not None and isinstance(body, dict):
        body = {**body, "model": f"azure/{deployment}"}  # Azure's path names the deployment
    req = parse_text_completion(body)
    answer = inbound.run(gateway, environ, start_response, ctx, req, TEXT_COMPLETION,
                        TextStreamEncoder(), state_class=TextState)
    if not isinstance(answer, Answer):
        return answer  # the stream
    return unified.reply(start_response, ctx, answer, render(answer.body), TEXT_COMPLETION)


_COMPLETIONS = {"POST": Route(completions, inference=True)}
ROUTES = {"/v1/completions": _COMPLETIONS, "/openai/v1/completions": _COMPLETIONS,
          "/openai/completions": _COMPLETIONS, "/openai/deployments/{deployment}/completions": _COMPLETIONS}


def from_chat(chat: dict) -> dict:
    """A chat.completion as a text_completion."""
    out = {"id": chat.get("id", ""), "object": OBJECT, "created": chat.get("created", 0), "model": chat.get("model", ""),
           "choices": [{"index": c.get("index", 0), "text": _text(c["message"].get("content")),
                        "finish_reason": c["finish_reason"]} for c in chat["choices"]]}
    if "usage" in chat:
        out["usage"] = chat["usage"]
    return out


def _text(content) -> str:
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content or ""


def render(result: dict) -> dict:
    return from_chat(result) if result.get("object") == "chat.completion" else result


class TextState(StreamState):
    """Chat chunks are normalised as chat's; a native text_completion chunk passes as it is (its usage kept
    for the logs)."""

    __slots__ = ("native",)

    def __init__(self, started: float, *, keep_text: bool = False) -> None:
        super().__init__(started, keep_text=keep_text)
        self.native = False

    def take(self, chunk):
        if type(chunk) is dict and chunk.get("object") == OBJECT:
            self.native = True
            found = checked_usage(chunk.get("usage"))
            if found:
                self.usage = found
            return chunk
        return super().take(chunk)


class TextStreamEncoder:
    media_type = "text/event-stream"
    keepalive = b": ping\n\n"

    def chunk(self, chunk, state) -> bytes:
        if type(chunk) is PlainChunk:
            chunk = chunk.as_dict()
        if chunk.get("object") != OBJECT:
            chunk = {"id": chunk.get("id") or state.id, "object": OBJECT, "created": state.created,
                     "model": chunk.get("model") or state.model,
                     "choices": [{"index": c.get("index", 0), "text": (c.get("delta") or {}).get("content") or "",
                                  "finish_reason": None} for c in chunk.get("choices") or ()]}
        index, latency = state.mark()
        chunk["extra_fields"] = {"request_type": TEXT_COMPLETION.stream_request_type, "provider": state.provider,
                                 "model_requested": state.model_requested, "chunk_index": index, "latency": latency}
        return encode(chunk)

    def finish(self, state) -> bytes:
        if state.native:
            return DONE
        closing = {"id": state.id, "object": OBJECT, "created": state.created,
                   "model": state.model or state.model_requested,
                   "choices": [{"index": i, "text": "", "finish_reason": fr}
                               for i, fr in sorted((state.finish or {0: "stop"}).items())]}
        if state.usage:
            closing["usage"] = state.usage
        return self.chunk(closing, state) + DONE

    def failure(self, err: GatewayError, state) -> bytes:
        return encode(err.to_dict()) + DONE
