"""Streams: open the upstream stream, peek its first content, then relay it as a WSGI iterable.

The upstream call and the first content chunk happen before ``start_response``, so anything that fails early
is an ordinary JSON error and retries and fallbacks still apply. After the first byte a failure is reported
in the stream (the surface's encoder says how), counted against the target's circuit, and a cut stream is
never presented as a finished answer. ``StreamBody`` is a class with an idempotent ``close()`` because that
is the only disconnect signal WSGI gives (gunicorn calls it when a write fails), and a generator closed
before it started would never run its ``finally``.

The relay knows nothing of output formats: translators give it internal chunks (answers.py), ``StreamState``
normalises them (usage and finish reasons are held back for the end, a repeated role is dropped), and the
surface's encoder turns each into bytes: ``chunk(chunk, state)``, ``keepalive``, ``finish(state)``,
``failure(err, state)``.
"""

from __future__ import annotations

import logging
import time

from .. import errors as E
from ..answers import PlainChunk, RawEvent, final_chunk, finish_reason, usage as checked_usage
from ..operations import CHAT, Operation
from ..wire.sse import KEEPALIVE
from . import policy, upstream
from .resume import PrefixSkipper, with_prefill
from .router import Router, judge

log = logging.getLogger("bifrost_wsgi.relay")

_CONTENT_KEYS = ("content", "tool_calls", "reasoning", "reasoning_details", "refusal", "audio", "function_call")


class StreamState:
    """What the client has been sent: chunk count and timing, the answer's identity, finish reasons and usage
    held back for the end, and (for a resumed fallback) the text so far."""

    __slots__ = ("index", "last", "first_at", "usage", "finish", "id", "model", "created", "fingerprint", "parts",
                 "keep_text", "tool_calls_sent", "provider", "model_requested", "serving")

    def __init__(self, started: float, *, keep_text: bool = False) -> None:
        self.index = 0
        self.last = started
        self.first_at: float | None = None
        self.usage: dict | None = None
        self.finish: dict[int, str] = {}
        self.id = ""
        self.model = ""
        self.created = int(time.time())
        self.fingerprint = None
        self.keep_text = keep_text  # kept only when a resumed fallback may need it
        self.parts: list[str] = []
        self.tool_calls_sent = False
        self.provider = self.model_requested = ""
        self.serving = 0  # changes whenever another target starts serving (encoders cache per target)

    def serve(self, provider: str, model: str) -> None:
        """Name the target whose chunks follow (``extra_fields.provider``/``model_requested``)."""
        if (provider, model) != (self.provider, self.model_requested):
            self.provider, self.model_requested = provider, model
            self.serving += 1

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def take(self, chunk):
        """One translated chunk, normalised for sending; None when nothing is left to send on its own.
        Dict chunks arrive without nulls (translators drop them)."""
        if type(chunk) is PlainChunk:
            if self.id:
                if self.keep_text:
                    self.parts.append(chunk.content())
                return chunk
            chunk = chunk.as_dict()  # the stream's identity is taken from the first chunk
        elif type(chunk) is RawEvent:
            return self._take_raw(chunk)
        found = checked_usage(chunk.pop("usage", None))
        if found:
            self.usage = found
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
                self.finish[choice.get("index", 0)] = finish_reason(fr)
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

    def _take_raw(self, chunk: RawEvent) -> RawEvent:
        # an event relayed in the client's own format: only its usage and finish reason are kept
        if chunk.usage:
            self.usage = checked_usage(dict(chunk.usage))
        if chunk.finish:
            self.finish[0] = finish_reason(chunk.finish)
        return chunk

    def mark(self) -> tuple[int, int]:
        """The next chunk's index and the milliseconds since the previous one, counted as sent now."""
        now = time.monotonic()
        if self.first_at is None:
            self.first_at = now
        index, latency = self.index, int((now - self.last) * 1000)
        self.index += 1
        self.last = now
        return index, latency

    def closing(self) -> dict:
        return final_chunk(chunk_id=self.id or "chatcmpl-bifrost", created=self.created,
                           model=self.model or self.model_requested, finish=self.finish or {0: "stop"},
                           usage=self.usage, system_fingerprint=self.fingerprint)


def _has_content(chunk) -> bool:
    if type(chunk) is RawEvent:
        return chunk.content  # a native event relayed as sent: content only if it carries some
    if type(chunk) is not dict:
        return True  # a PlainChunk, or another operation's own event (it is sent as soon as it exists)
    for choice in chunk.get("choices") or ():
        if choice.get("text"):
            return True  # a text_completion chunk
        delta = choice.get("delta") or {}
        for k in _CONTENT_KEYS:
            if delta.get(k):
                return True
    return False


class Opened:
    """An upstream stream whose first content has been read (or that completed before any content).

    ``chunks`` yields the body's bytes, ``decoder`` turns them into events; ``peeked`` holds the chunks
    translated while waiting for the first content, ``backlog`` the events decoded but not yet translated."""

    __slots__ = ("rt", "target", "resp", "chunks", "decoder", "backlog", "translator", "peeked", "circuit",
                 "_slots")

    def __init__(self, *, rt, target, resp, chunks, decoder, backlog, translator, peeked, circuit) -> None:
        self.rt, self.target, self.resp, self.chunks, self.decoder = rt, target, resp, chunks, decoder
        self.backlog, self.translator, self.peeked, self.circuit = backlog, translator, peeked, circuit
        self._slots = rt.slots

    def settle(self, err: E.GatewayError | None) -> None:
        """Tell the target's circuit how the stream ended (once): whole, or failed; a stream the client left
        says nothing either way."""
        circuit, self.circuit = self.circuit, None
        if circuit is None:
            return
        if err is None:
            circuit.success()
        else:
            judge(circuit, err)

    def close(self) -> None:
        self.resp.close()
        self.settle(E.ClientGone("the client went away"))  # a no-op once settled
        slots, self._slots = self._slots, None
        if slots is not None:
            slots.release()


class StreamAttempt:
    """One upstream stream call for ``Router.run``: send, then read until the first content.

    ``prefill`` asks the target to continue an answer already partly sent; ``skip_prefix`` instead expects
    a fresh answer that must begin with that text, which is swallowed (see resume.py)."""

    settles_later = True  # the circuit hears of success when the stream ends whole (Opened.settle)

    def __init__(self, ctx, *, prefill: str = "", skip_prefix: str = "") -> None:
        self.ctx = ctx
        self.prefill = prefill
        self.skip_prefix = skip_prefix

    def __call__(self, rt, target, translator, treq, timeout: float, circuit) -> Opened:
        ctx, net = self.ctx, rt.conf.network
        if self.prefill:
            treq = with_prefill(treq, self.prefill)
        upreq = upstream.prepare(translator, target, treq, ctx, stream=True)
        rt.slots.acquire(timeout)
        resp = None
        try:
            first_token = min(net.first_token_timeout, max(ctx.remaining(), 0.001))
            ttft_deadline = time.monotonic() + first_token
            resp = upstream.send(rt, target, upreq, timeout=min(timeout, net.first_token_timeout), stream=True,
                                 read_timeout=net.stream_idle_timeout, client=ctx.client_socket)
            decoder = Router.decoder(translator.framing)()
            translator = upstream.translate(target, translator.new_stream, treq, target)
            if self.skip_prefix:
                translator = PrefixSkipper(translator, self.skip_prefix)
            resp.deadline = ttft_deadline
            chunks = resp.iter_bytes()
            backlog: list = []
            peeked: list = []
            content = False
            while not translator.done and not content:
                if not backlog:
                    try:
                        body = next(chunks, None)
                    except E.UpstreamTimeout:
                        raise E.UpstreamTimeout(f"no first token within {net.first_token_timeout:g} seconds") from None
                    backlog = decoder.feed(body) if body is not None else decoder.close()
                    if body is None and not backlog:
                        break
                    continue
                event = backlog.pop(0)
                if event is KEEPALIVE:
                    continue  # nothing can be sent before the status line
                got = upstream.translate(target, translator.feed, event)
                if got:
                    peeked.extend(got)
                    content = any(_has_content(c) for c in got)
            if not translator.finished and not content:
                raise E.UpstreamProtocolError("upstream stream ended before any content")
            resp.deadline = None
            resp.set_read_timeout(net.stream_idle_timeout)
            return Opened(rt=rt, target=target, resp=resp, chunks=chunks, decoder=decoder, backlog=backlog,
                          translator=translator, peeked=peeked, circuit=circuit)
        except BaseException:
            if resp is not None:
                resp.close()
            rt.slots.release()
            raise


def open_stream(router: Router, req, ctx, encoder, operation: Operation = CHAT, *,
                state_class: type = StreamState) -> "StreamBody":
    """Open the first target that yields content; return the ``StreamBody`` to hand to the server.
    Mid-stream failover resumes chat answers only (it continues the text already sent). A stream whose
    translator gives chunks that are not chat chunks brings its own ``state_class`` (a StreamState whose
    ``take`` knows them)."""
    resume = operation is CHAT and router.config.client.stream_failover == "resume"
    state = state_class(ctx.started, keep_text=resume)
    index, opened = router.run(req, ctx, StreamAttempt(ctx), operation=operation, stream=True)
    return StreamBody(router, req, ctx, encoder, opened, index, state, operation=operation, resume=resume)


class StreamBody:
    """The WSGI iterable of a streamed answer. ``close()`` releases the upstream connection at once."""

    def __init__(self, router: Router, req, ctx, encoder, opened: Opened, index: int, state: StreamState, *,
                 operation: Operation = CHAT, resume: bool = False) -> None:
        self.router = router
        self.operation = operation
        self.request_type = operation.request_type_for(stream=True)
        self.resume = resume
        self.req = req
        self.ctx = ctx
        self.encoder = encoder
        self.opened = opened
        self.index = index
        self.state = state
        self.closed = False
        self.completed = False
        self.error: E.GatewayError | None = None
        self.on_close = None  # called once with the RequestContext when the response is over

    def __iter__(self):
        # PERF: one generator holds the whole relay loop: the server resumes it once per chunk, with no
        # delegation to inner generators
        state, encoder = self.state, self.encoder
        chunk_of, take = encoder.chunk, state.take
        try:
            while True:
                opened = self.opened
                translator, decoder, chunks = opened.translator, opened.decoder, opened.chunks
                feed = translator.feed
                state.serve(opened.target.provider, opened.target.model)
                try:
                    # the peeked chunks go out in one write: the first token reaches the client sooner
                    first = [chunk_of(c, state) for c in map(take, opened.peeked) if c is not None]
                    opened.peeked = []
                    if first:
                        yield b"".join(first)
                    events, opened.backlog = opened.backlog, []
                    while True:
                        for event in events:
                            if translator.done:
                                break
                            if event is KEEPALIVE:
                                yield encoder.keepalive
                                continue
                            try:
                                got = feed(event)
                            except E.GatewayError:
                                raise
                            except upstream.MALFORMED as exc:
                                raise upstream.malformed(opened.target.provider, exc) from None
                            except Exception as exc:  # noqa: BLE001 - our own bug
                                raise upstream.bug(opened.target.provider, exc) from None
                            for chunk in got:
                                chunk = take(chunk)
                                if chunk is not None:
                                    yield chunk_of(chunk, state)
                        if translator.done:
                            break
                        body = next(chunks, None)
                        if body is None:
                            events = decoder.close()
                            if not events:
                                break
                            continue
                        events = decoder.feed(body)
                    if not translator.finished:
                        raise E.UpstreamProtocolError("upstream stream ended before the answer was complete")
                except E.ClientGone:
                    return  # nobody to tell: close() records the disconnect
                except E.GatewayError as err:
                    if self._resumed(opened, err):
                        continue
                    yield self.encoder.failure(err, state)
                    return
                skipped = getattr(translator, "malformed", 0)
                if skipped:
                    log.warning("request %s: skipped %d malformed upstream events", self.ctx.request_id, skipped)
                self.completed = True
                opened.settle(None)
                yield encoder.finish(state)
                self._drain()
                return
        finally:
            self.close()

    def _resumed(self, opened: Opened, err: E.GatewayError) -> bool:
        """After a failure: True when the stream now continues on another target; else the failure is kept
        for the client and the observers."""
        err.attach(provider=opened.target.provider, model=opened.target.model, request_type=self.request_type)
        opened.settle(err)  # after the first byte too, a broken stream is the target's failure
        opened.close()
        if self._resume(err):
            return True
        self.error = err
        log.info("request %s: stream from %s/%s failed after %d chunks: %s", self.ctx.request_id,
                 opened.target.provider, opened.target.model, self.state.index, err.message)
        return False

    def _resume(self, err: E.GatewayError) -> bool:
        """Mid-stream failover (``client.stream_failover: "resume"``): continue on the next target."""
        if not self.resume or not policy.decide(err).fallback:
            return False
        state = self.state
        if state.tool_calls_sent:
            return False  # half a tool call cannot be continued by another model
        req, ctx = self.req, self.ctx
        targets = [(req.provider, req.model), *req.fallbacks]
        sent = state.text
        for index in range(self.index + 1, len(targets)):
            if ctx.remaining() <= 0:
                return False
            one = [targets[index]]
            log.info("request %s: stream failed after %d chunks (%s); resuming on %s/%s", ctx.request_id,
                     state.index, err.message, *targets[index])
            try:
                _, opened = self.router.run(req, ctx, StreamAttempt(ctx, prefill=sent), stream=True, targets=one)
            except E.ProviderRejected as rejected:
                if not sent or isinstance(rejected, E.ContentFiltered):
                    continue
                log.info("request %s: %s/%s refused the prefill (%s); asking for a fresh answer", ctx.request_id,
                         *targets[index], rejected.message)
                try:
                    _, opened = self.router.run(req, ctx, StreamAttempt(ctx, skip_prefix=sent), stream=True,
                                                targets=one)
                except E.GatewayError as again:
                    log.info("request %s: resume on %s/%s failed: %s", ctx.request_id, *targets[index], again.message)
                    continue
            except E.GatewayError as failed:
                log.info("request %s: resume on %s/%s failed: %s", ctx.request_id, *targets[index], failed.message)
                if not policy.decide(failed).fallback:
                    return False
                continue
            self.opened, self.index = opened, index
            ctx.fallback_index = index
            ctx.provider, ctx.model = opened.target.provider, opened.target.model
            return True
        return False

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
        opened, ctx, state = self.opened, self.ctx, self.state
        try:
            opened.close()
        finally:
            ctx.chunks = state.index
            ctx.usage = state.usage
            if state.first_at is not None:
                ctx.ttft = state.first_at - ctx.started
            if self.error is not None:
                ctx.status, ctx.error_type = self.error.status, self.error.type
                ctx.error_message = self.error.message
            elif not self.completed:
                ctx.client_disconnected = True
                log.info("request %s: client went away after %d chunks; upstream closed", ctx.request_id,
                         state.index)
            if state.finish:
                ctx.finish_reason = state.finish.get(0) or next(iter(state.finish.values()))
            if self.on_close is not None:
                self.on_close(ctx)
