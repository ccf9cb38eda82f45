"""The Responses API for providers that only have a chat API: the request is translated to a chat request
(``convert.chat_body`` + the chat schema) and sent with the provider's own chat translator; the answer comes
back as a Response. Streams stay chat chunks here: the surface's encoder writes them as Responses events.

``ByRow`` picks, per target, the native Responses API (OpenAI) or the chat route (every other
OpenAI-compatible row), since one adapter serves all of them."""

from __future__ import annotations

from typing import Mapping

from ...schema import parse_request
from ..base import Target, UpstreamRequest
from ..via_chat import ViaChat
from .convert import chat_body
from .native import OPENAI_ROWS


def as_chat(req, target: Target, *, stream: bool):
    """The chat request for a Responses request (validated by the chat schema), for ViaChat; translated and
    validated once per target (adapters never change the chat request they are given)."""
    key = (target.provider, target.model, stream)
    if req.chat is not None and req.chat[0] == key:
        return req.chat[1]
    chat = parse_request(chat_body(req.body, provider=target.provider, model=target.model, stream=stream))
    req.chat = (key, chat)
    return chat


class ByRow:
    """OpenAI's own Responses API for the rows that have it, the chat route for the others."""

    framing = "sse"

    def __init__(self, native, via_chat: ViaChat) -> None:
        self.native, self.via_chat = native, via_chat

    def pick(self, target: Target):
        return self.native if target.row.name in OPENAI_ROWS else self.via_chat

    def build_request(self, req, target: Target, *, stream: bool, passthrough: bool = False) -> UpstreamRequest:
        return self.pick(target).build_request(req, target, stream=stream, passthrough=passthrough)

    def parse_response(self, body: bytes, target: Target) -> dict:
        return self.pick(target).parse_response(body, target)

    def parse_error(self, status: int, headers: Mapping[str, str], body: bytes, target: Target):
        return self.pick(target).parse_error(status, headers, body, target)

    def new_stream(self, req, target: Target):
        return self.pick(target).new_stream(req, target)

