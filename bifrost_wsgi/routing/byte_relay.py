"""Relays an upstream answer that is a byte stream (audio) to the client as it arrives.

The shape is relay.py's for chat streams, without chat chunks: ``ByteAttempt`` (an attempt for
``Router.run``) sends the request and reads until the translator's converter yields its first bytes, so a
failure before the first byte is an ordinary JSON error with retries, fallbacks and the breaker; then
``ByteBody`` (the WSGI iterable) sends those bytes and the rest as they come, and its ``close()`` releases
the upstream at once when the client leaves.

A translator for this relay has ``framing`` (``"bytes"``: the body as it comes; ``"sse"`` or
``"aws-eventstream"``: decoded events) and ``new_stream(req, target)`` returning a converter with
``feed(event) -> list[bytes]``, ``end() -> list[bytes]`` (the body ended: the last bytes, or raise when it
ended too early), ``done`` (nothing more is needed) and ``media_type``. The surface's encoder frames the
bytes: ``chunk(data) -> bytes``, ``finish() -> bytes``, ``failure(err) -> bytes`` (or raise to cut the
connection, when the format has no way to say it failed).
"""

from __future__ import annotations

import logging
import time

from .. import errors as E
from ..operations import Operation
from ..wire.sse import KEEPALIVE
from . import upstream
from .relay import Opened
from .router import Router

log = logging.getLogger("bifrost_wsgi.relay")


class RawBytes:
    """The decoder of ``framing = "bytes"``: each piece of the body is one event."""

    __slots__ = ()

    def feed(self, data: bytes) -> list[bytes]:
        return [data]

    def close(self) -> list:
        return []


def decoder_for(framing: str):
    return RawBytes() if framing == "bytes" else Router.decoder(framing)()


def _convert(target, converter, events: list) -> list[bytes]:
    out = []
    for event in events:
        if event is KEEPALIVE:
            continue
        out.extend(upstream.translate(target, converter.feed, event))
        if converter.done:
            break
    return [b for b in out if b]


class ByteAttempt:
    """One upstream call for ``Router.run``: send, then read until the first bytes for the client."""

    settles_later = True  # the circuit hears of success when the body ends whole

    def __init__(self, ctx) -> None:
        self.ctx = ctx

    def __call__(self, rt, target, translator, treq, timeout: float, circuit) -> Opened:
        ctx, net = self.ctx, rt.conf.network
        upreq = upstream.prepare(translator, target, treq, ctx, stream=True)
        rt.slots.acquire(timeout)
        resp = None
        try:
            first_byte = min(net.first_token_timeout, max(ctx.remaining(), 0.001))
            resp = upstream.send(rt, target, upreq, timeout=min(timeout, net.first_token_timeout), stream=True,
                                 read_timeout=net.stream_idle_timeout, client=ctx.client_socket)
            decoder = decoder_for(translator.framing)
            converter = upstream.translate(target, translator.new_stream, treq, target)
            resp.deadline = time.monotonic() + first_byte
            chunks = resp.iter_bytes()
            first: list[bytes] = []
            while not first and not converter.done:
                try:
                    body = next(chunks, None)
                except E.UpstreamTimeout:
                    raise E.UpstreamTimeout(f"no first byte within {net.first_token_timeout:g} seconds") from None
                if body is None:
                    first = _convert(target, converter, decoder.close())
                    first.extend(upstream.translate(target, converter.end))
                    converter.done = True
                    break
                first = _convert(target, converter, decoder.feed(body))
            if not first:
                raise E.UpstreamProtocolError(f"{target.provider} answered without any audio")
            resp.deadline = None
            resp.set_read_timeout(net.stream_idle_timeout)
            return Opened(rt=rt, target=target, resp=resp, chunks=chunks, decoder=decoder, backlog=[],
                          translator=converter, peeked=first, circuit=circuit)
        except BaseException:
            if resp is not None:
                resp.close()
            rt.slots.release()
            raise


def open_bytes(router: Router, req, ctx, encoder, operation: Operation) -> "ByteBody":
    """Open the first target that yields bytes; return the ``ByteBody`` to hand to the server."""
    _, opened = router.run(req, ctx, ByteAttempt(ctx), operation=operation, stream=req.stream)
    return ByteBody(ctx, encoder, opened)


class ByteBody:
    """The WSGI iterable of a relayed byte stream; ``media_type`` is what the answering target produces."""

    def __init__(self, ctx, encoder, opened: Opened) -> None:
        self.ctx = ctx
        self.encoder = encoder
        self.opened = opened
        self.media_type = opened.translator.media_type
        self.sent = 0  # pieces sent
        self.closed = False
        self.completed = False
        self.error: E.GatewayError | None = None

    def __iter__(self):
        opened, encoder = self.opened, self.encoder
        converter, decoder, target = opened.translator, opened.decoder, opened.target
        try:
            first, opened.peeked = opened.peeked, []
            self._mark()
            yield encoder.chunk(b"".join(first))
            try:
                while not converter.done:
                    body = next(opened.chunks, None)
                    if body is None:
                        out = _convert(target, converter, decoder.close())
                        out.extend(upstream.translate(target, converter.end))
                        converter.done = True
                    else:
                        out = _convert(target, converter, decoder.feed(body))
                    for data in out:
                        self._mark()
                        yield encoder.chunk(data)
            except E.ClientGone:
                return  # nobody to tell: close() records the disconnect
            except E.GatewayError as err:
                err.attach(provider=target.provider, model=target.model, request_type=self.ctx.request_type)
                opened.settle(err)
                self.error = err
                log.info("request %s: audio from %s/%s failed after %d pieces: %s", self.ctx.request_id,
                         target.provider, target.model, self.sent, err.message)
                yield encoder.failure(err)
                return
            self.completed = True
            opened.settle(None)
            yield encoder.finish()
        finally:
            self.close()

    def _mark(self) -> None:
        if self.sent == 0:
            self.ctx.ttft = time.monotonic() - self.ctx.started
        self.sent += 1

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        ctx = self.ctx
        try:
            self.opened.close()
        finally:
            ctx.chunks = self.sent
            if self.error is not None:
                ctx.status, ctx.error_type, ctx.error_message = self.error.status, self.error.type, self.error.message
            elif not self.completed:
                ctx.client_disconnected = True
                log.info("request %s: client went away after %d pieces; upstream closed", ctx.request_id, self.sent)
