"""Streaming responses: open the upstream stream, peek the first content, then relay it as a WSGI iterable.

The upstream call and the first content chunk happen before ``start_response`` (bottle's ``_cast`` move),
so anything that fails early is an ordinary JSON error and retries and fallbacks still apply. After the
first byte a failure is one in-band ``data:`` event holding the error envelope, then ``[DONE]``; a cut
stream is never presented as a finished answer. ``StreamBody`` is a class with an idempotent ``close()``
because that is the only disconnect signal WSGI gives (gunicorn calls it when a write fails), and a
generator closed before it started would never run its ``finally``.

Every chunk passes through one place (``Relay``): usage and finish_reason are taken off intermediate chunks
and delivered once on the final chunk, and ``extra_fields`` is spliced into each. Plain OpenAI content chunks,
which need nothing else, are forwarded as the upstream's own text (``Relay.encode``).
"""

from __future__ import annotations

import logging
import time

from .. import errors as E
from . import policy
from ..surfaces import openai_chat as shapes
from .router import malformed
from ..schema import ChatRequest, Message
from ..wire.sse import DONE, KEEPALIVE, compact as _dumps, encode

log = logging.getLogger("bifrost_wsgi.streaming")

CHAT_STREAM = "chat_completion_stream"
_CONTENT_KEYS = ("content", "tool_calls", "reasoning", "reasoning_details", "refusal", "audio", "function_call")


class Opened:
    """An upstream stream whose first content has been read (or that completed before any content).

    ``chunks`` yields the body's bytes, ``decoder`` turns them into events; ``backlog`` holds the events
    decoded but not yet translated, ``pending`` the stamped events not yet sent."""

    __slots__ = ("rt", "target", "resp", "chunks", "decoder", "backlog", "translator", "pending", "release",
                 "circuit")

    def __init__(self, rt, target, resp, chunks, decoder, backlog, translator, pending, release, circuit) -> None:
        self.rt, self.target, self.resp, self.chunks, self.decoder = rt, target, resp, chunks, decoder
        self.backlog, self.translator, self.pending, self.release, self.circuit = (
            backlog, translator, pending, release, circuit)

    def close(self) -> None:
        self.resp.close()
        rel, self.release = self.release, None
        if rel is not None:
            rel()


class Relay:
    """Per-response chunk state: what has been sent, the pending finish reasons and usage."""

    __slots__ = ("provider", "model_requested", "index", "last", "usage", "finish", "id", "model", "created",
                 "fingerprint", "parts", "keep_text", "tool_calls_sent", "first_at", "_head")

    def __init__(self, started: float, *, keep_text: bool = False) -> None:
        self.index = 0
        self.last = started
        self.usage: dict | None = None
        self.finish: dict[int, str] = {}
        self.id = ""
        self.model = ""
        self.created = int(time.time())
        self.fingerprint = None
        # content already sent: what a resumed fallback must continue from (kept only when it can be needed)
        self.keep_text = keep_text
        self.parts: list[str] = []
        self.tool_calls_sent = False
        self.first_at: float | None = None
        self.serve("", "")

    def snapshot(self) -> tuple:
        """The state ``restore`` returns to (chunks stamped by an attempt that then failed were never sent)."""
        return (self.index, self.last, self.usage, dict(self.finish), self.id, self.model, self.created,
                self.fingerprint, len(self.parts), self.tool_calls_sent, self.first_at)

    def restore(self, state: tuple) -> None:
        (self.index, self.last, self.usage, finish, self.id, self.model, self.created, self.fingerprint, parts,
         self.tool_calls_sent, self.first_at) = state
        self.finish = finish
        del self.parts[parts:]

    def serve(self, provider: str, model: str) -> None:
        """Name the target whose chunks follow (``extra_fields.provider``/``model_requested``)."""
        self.provider, self.model_requested = provider, model
        self._head = (',"extra_fields":{"request_type":"' + CHAT_STREAM + '","provider":' + _dumps(provider)
                      + ',"model_requested":' + _dumps(model) + ',"chunk_index":')

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def encode(self, item) -> bytes | None:
        """One upstream chunk as the SSE event to send; None when nothing is left to send. ``item`` is a dict,
        or a chunk a translator kept as text (openai_compat.PlainChunk), forwarded as it is once the stream's
        id is known."""
        if type(item) is not dict:
            if self.id:
                # the final chunk takes model and fingerprint from the dict chunks (role, finish, usage)
                if self.keep_text:
                    self.parts.append(item.content())
                return self.stamp(item.json_without_nulls())
            item = item.as_dict()
        chunk = self.prepare(item)
        return None if chunk is None else self.stamp(_dumps(chunk))

    def prepare(self, chunk: dict) -> dict | None:
        """Normalise one upstream chunk; None when nothing is left to send on its own.
        Chunks arrive without nulls (adapters drop them)."""
        usage = shapes.usage(chunk.pop("usage", None))
        if usage:
            self.usage = usage
        if chunk.get("id") and not self.id:
            self.id = chunk["id"]
        if chunk.get("model"):
            self.model = chunk["model"]
        if chunk.get("created") and isinstance(chunk["created"], int):
            self.created = chunk["created"]
        if chunk.get("system_fingerprint"):
            self.fingerprint = chunk["system_fingerprint"]
        keep = []
        for choice in chunk.get("choices") or ():
            fr = choice.pop("finish_reason", None)
            if fr:
                self.finish[choice.get("index", 0)] = shapes.finish_reason(fr)
            delta = choice.get("delta")
            if not delta and not choice.get("logprobs"):
                continue
            if delta and self.index and "role" in delta:
                del delta["role"]
                if not delta and not choice.get("logprobs"):
                    continue
            if delta:
                text = delta.get("content")
                if self.keep_text and isinstance(text, str):
                    self.parts.append(text)
                if delta.get("tool_calls"):
                    self.tool_calls_sent = True
            keep.append(choice)
        if not keep:
            return None
        chunk["choices"] = keep
        chunk["object"] = "chat.completion.chunk"
        return chunk

    def stamp(self, data: str) -> bytes:
        """The SSE event for a chunk's compact JSON text, with ``extra_fields`` spliced in before its end."""
        return f"data: {data[:-1]}{self.fields()}}}\n\n".encode()

    def fields(self) -> str:
        """``,"extra_fields":{...}`` for the next chunk sent (its index and the time since the last one)."""
        now = time.monotonic()
        if self.first_at is None:
            self.first_at = now
        out = f'{self._head}{self.index},"latency":{int((now - self.last) * 1000)}}}'
        self.index += 1
        self.last = now
        return out

    def closing(self) -> dict:
        return shapes.final_chunk(chunk_id=self.id or "chatcmpl-bifrost", created=self.created,
                                  model=self.model or self.model_requested, finish=self.finish or {0: "stop"},
                                  usage=self.usage, system_fingerprint=self.fingerprint)


def _has_content(chunk) -> bool:
    if type(chunk) is not dict:
        return True  # a chunk kept as text always carries content
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta") or {}
        for k in _CONTENT_KEYS:
            if delta.get(k):
                return True
    return False


def open_stream(dispatcher, req: ChatRequest, ctx):
    """Open the first target that yields content; return the ``StreamBody`` to hand to the server."""
    relay = Relay(ctx.started, keep_text=dispatcher.config.client.stream_failover == "resume")
    index, opened = open_upstream(dispatcher, req, ctx, relay)
    return StreamBody(dispatcher, req, ctx, opened, index, relay)


def open_upstream(dispatcher, req: ChatRequest, ctx, relay: Relay, *, start: int = 0, targets=None,
                  prefill: str = "", skip_prefix: str = ""):
    """Try targets in order until one streams content; return ``(index, Opened)``.

    ``prefill`` asks the target to continue an answer already partly sent; ``skip_prefix`` instead expects
    a fresh answer that must begin with that text, which is swallowed (see resume.py).
    """
    decoder_for = dispatcher.decoder

    def attempt(rt, target, treq: ChatRequest, timeout: float, circuit):
        net = rt.conf.network
        if prefill:
            treq = with_prefill(treq, prefill)
        upreq = dispatcher.prepare(rt, target, treq, ctx, stream=True)
        rt.slots.acquire(timeout)
        released = False

        def release():
            nonlocal released
            if not released:
                released = True
                rt.slots.release()

        resp = None
        saved = relay.snapshot()
        try:
            ttft_deadline = time.monotonic() + min(net.first_token_timeout, max(ctx.remaining(), 0.001))
            resp = dispatcher.send(rt, target, upreq, min(timeout, net.first_token_timeout), stream=True)
            translator = rt.adapter.new_stream(treq, target)
            if skip_prefix:
                from .resume import PrefixSkipper

                translator = PrefixSkipper(translator, skip_prefix)
            resp.deadline = ttft_deadline
            chunks = resp.iter_bytes()
            decoder = decoder_for(rt.adapter.framing)()
            backlog: list = []
            # the peeked chunks, stamped as they arrive: when the first content comes, only it is left to do
            pending: list[bytes] = []
            content = False
            relay.serve(target.provider, target.model)
            while not translator.done:
                if not backlog:
                    if ttft_deadline <= time.monotonic():
                        raise E.UpstreamTimeout(f"no first token within {net.first_token_timeout:g} seconds")
                    try:
                        body = next(chunks, None)
                    except E.UpstreamTimeout:
                        raise E.UpstreamTimeout(f"no first token within {net.first_token_timeout:g} seconds") from None
                    if body is None:
                        backlog = decoder.close()
                        if not backlog:
                            break
                    else:
                        backlog = decoder.feed(body)
                    continue
                event = backlog.pop(0)
                if event is KEEPALIVE:
                    continue  # nothing can be sent before the status line
                try:
                    got = translator.feed(event)
                    if got:
                        content = any(_has_content(c) for c in got)
                        pending.extend(filter(None, map(relay.encode, got)))
                except E.SHAPE_ERRORS as exc:
                    raise malformed(target.provider, exc) from None
                if content:
                    break
            if not translator.finished and not content:
                raise E.UpstreamProtocolError("upstream stream ended before any content")
            resp.deadline = None
            resp.set_read_timeout(net.stream_idle_timeout)
            return Opened(rt, target, resp, chunks, decoder, backlog, translator, pending, release, circuit)
        except BaseException:
            relay.restore(saved)  # what this attempt stamped was never sent
            if resp is not None:
                resp.close()
            release()
            raise

    return dispatcher.run(req, ctx, attempt, request_type=CHAT_STREAM, start=start, targets=targets)


def with_prefill(req: ChatRequest, text: str) -> ChatRequest:
    """The request with the answer so far as a trailing assistant message, for a resumed fallback."""
    msg = Message.from_valid({"role": "assistant", "content": text})
    return ChatRequest(req.provider, req.model, [*req.messages, msg], req.params, req.fallbacks, req.stream, req.extra)


class StreamBody:
    """The WSGI iterable of a streamed answer. ``close()`` releases the upstream connection at once."""

    def __init__(self, dispatcher, req: ChatRequest, ctx, opened: Opened, index: int, relay: Relay) -> None:
        self.dispatcher = dispatcher
        self.req = req
        self.ctx = ctx
        self.opened = self.first_opened = opened
        self.index = index
        self.relay = relay
        self.closed = False
        self.completed = False
        self.error: E.GatewayError | None = None
        self.on_close = None  # called once with the RequestContext when the response is over

    @property
    def target(self):
        return self.opened.target

    def __iter__(self):
        # PERF: one generator holds the whole relay loop: gunicorn resumes it once per chunk, with no
        # delegation to inner generators
        relay = self.relay
        try:
            while True:
                opened = self.opened
                translator, decoder, chunks = opened.translator, opened.decoder, opened.chunks
                try:
                    # the peeked chunks go out in one write: the first token reaches the client sooner
                    first = b"".join(opened.pending)
                    opened.pending = []
                    if first:
                        if opened is self.first_opened:  # the time to first byte is the first target's
                            relay.first_at = time.monotonic()  # sent now; they were stamped as they arrived
                        yield first
                    events, opened.backlog = opened.backlog, []
                    lane = None  # the express lane, once the translator has a template
                    while True:
                        for event in events:
                            if translator.done:
                                break
                            if event is KEEPALIVE:
                                yield b": ping\n\n"
                                continue
                            try:
                                outs = [relay.encode(chunk) for chunk in translator.feed(event)]
                            except E.SHAPE_ERRORS as exc:
                                raise malformed(opened.target.provider, exc) from None
                            for out in outs:
                                if out is not None:
                                    yield out
                        if translator.done:
                            break
                        lane = self._lane(lane, translator)
                        if lane is not None and decoder.at_boundary():
                            for body in chunks:  # express: while each read is one whole plain event
                                out = lane(body)
                                if out is None:
                                    break
                                yield out
                            else:
                                body = None
                        else:
                            body = next(chunks, None)
                        if body is None:
                            events = decoder.close()
                            if not events:
                                break
                            continue
                        events = decoder.feed(body)
                    if not translator.finished:
                        raise E.UpstreamProtocolError("upstream stream ended before the answer was complete")
                except E.GatewayError as err:
                    tail = self._failed(opened, err)
                    if tail is None:
                        continue  # resumed on another target: self.opened is that one
                    yield from tail
                    return
                yield from self._finished(opened)
                self._drain()
                return
        finally:
            self.close()

    def _lane(self, lane, translator):
        """The express lane for the translator's current template, when it may be used."""
        template = getattr(translator, "template", None)
        if template is None or not self.relay.id or self.relay.keep_text:
            return None
        if lane is None or lane.template is not template:
            from ..express import Lane

            lane = Lane(template, self.relay)
        return lane

    def _failed(self, opened: Opened, err: E.GatewayError) -> list[bytes] | None:
        """After a failure: None when the stream resumed on another target, else the events that end it."""
        err.attach(provider=opened.target.provider, model=opened.target.model, request_type=CHAT_STREAM)
        opened.close()
        if self._resume(err) is not None:
            return None
        self.error = err
        log.info("request %s: stream from %s/%s failed after %d chunks: %s", self.ctx.request_id,
                 opened.target.provider, opened.target.model, self.relay.index, err.message)
        return [encode(err.to_dict()), DONE]

    def _finished(self, opened: Opened) -> list[bytes]:
        skipped = getattr(opened.translator, "malformed", 0)
        if skipped:
            log.warning("request %s: skipped %d malformed upstream events", self.ctx.request_id, skipped)
        self.completed = True
        return [self.relay.stamp(_dumps(self.relay.closing())), DONE]

    def _resume(self, err: E.GatewayError):
        """Mid-stream failover (``client.stream_failover: "resume"``): continue on the next target."""
        if self.dispatcher.config.client.stream_failover != "resume" or not policy.decide(err).fallback:
            return None
        from .resume import resume

        return resume(self, err)

    def _drain(self) -> None:
        """Read what little is left after the terminal event so the connection can go back to the pool."""
        opened = self.opened
        try:
            opened.resp.set_read_timeout(0.05)
            for _ in opened.chunks:
                pass
        except Exception:  # noqa: BLE001 - best effort; close() discards the connection otherwise
            pass

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        opened, ctx, relay = self.opened, self.ctx, self.relay
        try:
            opened.close()
        finally:
            ctx.chunks = relay.index
            ctx.usage = relay.usage
            if relay.first_at is not None:
                ctx.ttft = relay.first_at - ctx.started
            if self.error is not None:
                ctx.status, ctx.error_type = self.error.status, self.error.type
            elif not self.completed:
                ctx.client_disconnected = True
                log.info("request %s: client went away after %d chunks; upstream closed", ctx.request_id,
                         relay.index)
            if self.on_close is not None:
                self.on_close(ctx)
