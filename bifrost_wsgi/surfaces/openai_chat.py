"""The unified chat surface (``/v1/chat/completions``): OpenAI's chat format in and out.

The internal vocabulary is OpenAI's shape, so parsing is the schema's validator and rendering adds
Bifrost's ``extra_fields`` (request type, the provider that answered, the model asked for, latency or chunk
index). Streams are server-sent ``data:`` events ending in ``[DONE]``; a failure after the first byte is one
event holding the error envelope, then ``[DONE]``.
"""

from __future__ import annotations

from .. import web
from ..answers import PlainChunk
from ..errors import GatewayError
from ..operations import CHAT
from ..routing.router import Answer
from ..schema import parse_request
from ..urls import Route
from ..wire.sse import DONE, compact as _dumps, encode
from . import inbound


def chat_completions(gateway, environ, start_response, ctx):
    key = inbound.authenticate(gateway, environ)
    body = web.read_json(environ, gateway.body_limit)
    inbound.route_model(gateway, key, body, ctx)
    req = parse_request(body, max_fallbacks=gateway.config.client.max_fallbacks)
    answer = inbound.run(gateway, environ, start_response, ctx, req, CHAT, ChatStreamEncoder())
    if not isinstance(answer, Answer):
        return answer  # the stream
    return web.json_response(start_response, 200, render(answer), [("x-request-id", ctx.request_id)])


_CHAT = {"POST": Route(chat_completions, inference=True)}
ROUTES = {"/v1/chat/completions": _CHAT, "/openai/v1/chat/completions": _CHAT, "/openai/chat/completions": _CHAT}


def render(answer: Answer) -> dict:
    result = answer.body
    result["extra_fields"] = answer.extra_fields(CHAT.request_type)
    return result


class ChatStreamEncoder:
    """Internal chunks as ``chat.completion.chunk`` events, ``extra_fields`` spliced in before each closing
    brace (a PlainChunk's own text is forwarded as it is)."""

    media_type = "text/event-stream"
    keepalive = b": ping\n\n"

    __slots__ = ("_serving", "_head")

    def __init__(self) -> None:
        self._serving = -1
        self._head = ""

    def chunk(self, chunk, state) -> bytes:
        data = chunk.json_without_nulls() if type(chunk) is PlainChunk else _dumps(chunk)
        if self._serving != state.serving:
            self._serving = state.serving
            self._head = (',"extra_fields":{"request_type":"' + CHAT.stream_request_type + '","provider":'
                          + _dumps(state.provider)
                          + ',"model_requested":' + _dumps(state.model_requested) + ',"chunk_index":')
        index, latency = state.mark()
        return f'data: {data[:-1]}{self._head}{index},"latency":{latency}}}}}\n\n'.encode()

    def finish(self, state) -> bytes:
        return self.chunk(state.closing(), state) + DONE

    def failure(self, err: GatewayError, state) -> bytes:
        return encode(err.to_dict()) + DONE
