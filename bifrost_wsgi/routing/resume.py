"""Helpers of mid-stream failover (``client.stream_failover: "resume"``); the relay decides when to use them.

When a stream fails after the client has seen part of the answer, the next fallback is asked to continue
it: the text already sent goes to the fallback as a trailing assistant message (a prefill), and only the
continuation is streamed, so the client sees one unbroken answer. Providers that refuse a prefill (a 400)
are asked again without it; their new answer is streamed only if it begins with exactly the text already
sent (that part is swallowed by ``PrefixSkipper``). Anything else ends in the in-band error of the original
failure: an answer is never garbled, and a fallback's refusal of the prefill is never reported as the
failure.
"""

from __future__ import annotations

from .. import errors as E
from ..answers import PlainChunk
from ..schema import ChatRequest, Message


def with_prefill(req: ChatRequest, text: str) -> ChatRequest:
    """The request with the answer so far as a trailing assistant message, for a resumed fallback."""
    msg = Message.from_valid({"role": "assistant", "content": text})
    return ChatRequest(req.provider, req.model, [*req.messages, msg], req.params, req.fallbacks, req.stream, req.extra)


class PrefixSkipper:
    """Wraps a stream translator: swallows content until ``prefix`` has been matched exactly, then passes
    the rest; diverging content is an UpstreamProtocolError (the fallback's answer is a different one)."""

    def __init__(self, inner, prefix: str) -> None:
        self.inner = inner
        self.left = prefix

    @property
    def finished(self) -> bool:
        return self.inner.finished and not self.left

    @property
    def done(self) -> bool:
        return self.inner.done

    @property
    def malformed(self) -> int:
        return getattr(self.inner, "malformed", 0)

    def feed(self, event) -> list:
        out = []
        for chunk in self.inner.feed(event):
            if type(chunk) is PlainChunk:
                chunk = chunk.as_dict()
            if self.left:
                for choice in chunk.get("choices") or ():
                    delta = choice.get("delta") or {}
                    if delta.get("tool_calls"):
                        raise E.UpstreamProtocolError("fallback answered differently (tool call) from the text already sent")
                    text = delta.get("content")
                    if not isinstance(text, str) or not text:
                        continue
                    n = min(len(text), len(self.left))
                    if text[:n] != self.left[:n]:
                        raise E.UpstreamProtocolError("fallback answer does not continue the text already sent")
                    self.left = self.left[n:]
                    if text[n:]:
                        delta["content"] = text[n:]
                    else:
                        del delta["content"]
            out.append(chunk)
        if self.inner.finished and self.left:
            raise E.UpstreamProtocolError("fallback answer ended before repeating the text already sent")
        return out
