"""A translator for an operation served through a provider's chat API: ``to_chat(req, target, stream=)``
turns the operation's request into a chat request, the provider's chat translator does the rest, and the
answer stays a checked chat.completion (streams stay chat chunks) for the surface to render."""

from __future__ import annotations

from typing import Callable, Mapping

from ..answers import check_completion
from .base import Target, UpstreamRequest


class ViaChat:
    def __init__(self, adapter, to_chat: Callable) -> None:
        self.adapter = adapter
        self.to_chat = to_chat
        self.framing = adapter.framing

    def build_request(self, req, target: Target, *, stream: bool, passthrough: bool = False) -> UpstreamRequest:
        return self.adapter.build_request(self.to_chat(req, target, stream=stream), target, stream=stream,
                                          passthrough=False)

    def parse_response(self, body: bytes, target: Target) -> dict:
        return check_completion(self.adapter.parse_response(body, target))

    def parse_error(self, status: int, headers: Mapping[str, str], body: bytes, target: Target):
        return self.adapter.parse_error(status, headers, body, target)

    def new_stream(self, req, target: Target):
        return self.adapter.new_stream(self.to_chat(req, target, stream=True), target)
