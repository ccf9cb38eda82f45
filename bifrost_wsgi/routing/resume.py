"""Mid-stream failover (``client.stream_failover: "resume"``, CONTRACT §7).

When a stream fails after the client has seen part of the answer, the next fallback is asked to continue
it: the text already sent goes to the fallback as a trailing assistant message (a prefill), and only the
continuation is streamed, so the client sees one unbroken answer. Providers that refuse a prefill (a 400)
are asked again without it; their new answer is streamed only if it begins with exactly the text already
sent (that part is swallowed). Anything else ends in the in-band error of the original failure: an answer
is never garbled, and a fallback's refusal of the prefill is never reported as the failure.
"""

from __future__ import annotations

import logging

from .. import errors as E

log = logging.getLogger("bifrost_wsgi.resume")


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

    def feed(self, event) -> list[dict]:
        out = []
        for chunk in self.inner.feed(event):
            if type(chunk) is not dict:
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


def resume(body, err: E.GatewayError):
    """Continue ``body`` (a StreamBody) on the next fallback after ``err``; True when it now streams from
    the fallback, None when the client must get the in-band error."""
    from .relay import open_upstream

    relay = body.relay
    if relay.tool_calls_sent:
        return None  # half a tool call cannot be continued by another model
    req, ctx = body.req, body.ctx
    targets = [(req.provider, req.model), *req.fallbacks]
    sent = relay.text
    for index in range(body.index + 1, len(targets)):
        if ctx.remaining() <= 0:
            return None
        one = [targets[index]]
        log.info("request %s: stream failed after %d chunks (%s); resuming on %s/%s", ctx.request_id,
                 relay.index, err.message, *targets[index])
        try:
            _, opened = open_upstream(body.dispatcher, req, ctx, relay, targets=one, prefill=sent)
        except E.ProviderRejected as rejected:
            if not sent or isinstance(rejected, (E.ContentFiltered,)):
                continue
            log.info("request %s: %s/%s refused the prefill (%s); asking for a fresh answer", ctx.request_id,
                     *targets[index], rejected.message)
            try:
                _, opened = open_upstream(body.dispatcher, req, ctx, relay, targets=one, skip_prefix=sent)
            except E.GatewayError as again:
                log.info("request %s: resume on %s/%s failed: %s", ctx.request_id, *targets[index], again.message)
                continue
        except E.GatewayError as failed:
            log.info("request %s: resume on %s/%s failed: %s", ctx.request_id, *targets[index], failed.message)
            if not failed_allows_next(failed):
                return None
            continue
        body.opened, body.index = opened, index
        ctx.fallback_index = index
        ctx.provider, ctx.model = opened.target.provider, opened.target.model
        return True
    return None


def failed_allows_next(err: E.GatewayError) -> bool:
    from .policy import decide

    return decide(err).fallback
