"""Runs a request against its targets: key choice, admission, retries, waits, fallbacks, circuit breakers.

``complete`` returns a finished chat.completion; ``open_stream`` returns a ``StreamBody`` whose first
content chunk has already been read, so that everything failing before the first byte can still be
retried, failed over, and answered with a proper JSON error (CONTRACT §7, §9). One deadline per request
bounds every attempt, wait and fallback.
"""

from __future__ import annotations

import importlib
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Callable

from .. import errors as E, transport
from ..providers import credentials as auth
from . import policy
from ..surfaces import openai_chat as shapes
from .breaker import Breakers
from ..config import GatewayConfig, ProviderConfig
from .admission import Slots
from ..providers.base import Key, Target, UpstreamRequest
from ..schema import ChatRequest

log = logging.getLogger("bifrost_wsgi.dispatch")

CHAT = "chat_completion"
CHAT_STREAM = "chat_completion_stream"

# Headers a client may not set upstream through x-bf-eh-*: credentials and framing belong to us.
_BLOCKED_EXTRA_HEADERS = frozenset({
    "authorization", "proxy-authorization", "x-api-key", "api-key", "x-goog-api-key", "cookie", "host",
    "content-length", "transfer-encoding", "connection", "content-type", "x-amz-date",
    "x-amz-security-token", "x-amz-content-sha256", "anthropic-version", "te", "upgrade", "keep-alive",
})


@dataclass(slots=True)
class RequestContext:
    request_id: str
    deadline: float  # time.monotonic() value
    passthrough: bool = False
    extra_headers: dict = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    route: str = ""
    stream: bool = False
    method: str = ""  # HTTP method
    client_ip: str = ""  # accesslog.client_ip(environ): the proxy's X-Real-IP when the peer is a trusted proxy
    http_status: int = 0  # status line sent; differs from ``status`` when a stream fails after its first byte
    # filled as the request runs; read by observers (logs, metrics) when it finishes
    provider: str = ""  # the target that answered (or failed last)
    model: str = ""
    status: int = 0
    error_type: str = ""
    attempts: int = 0
    retries: int = 0
    fallback_index: int = 0
    ttft: float | None = None  # seconds from start to the first content sent (streams)
    usage: dict | None = None
    chunks: int = 0
    client_disconnected: bool = False
    virtual_key: str = ""  # id or name of the virtual key used, never its value

    def remaining(self) -> float:
        return self.deadline - time.monotonic()


@dataclass(slots=True)
class Runtime:
    """A configured provider with its adapter and admission slots."""

    conf: ProviderConfig
    adapter: object
    slots: Slots
    headers: dict = field(default_factory=dict)  # the row's fixed headers + network_config.extra_headers


class Dispatcher:
    def __init__(self, config: GatewayConfig, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.config = config
        self.sleep = sleep
        self.breakers = Breakers(config.client.breaker)
        drop = config.client.drop_excess_requests
        self.providers: dict[str, Runtime] = {
            name: Runtime(conf, conf.row.load_adapter(),
                          Slots(concurrency=conf.concurrency, buffer_size=conf.buffer_size, drop_excess=drop),
                          {**dict(conf.row.extra_headers), **conf.network.extra_headers})
            for name, conf in config.providers.items()
        }
        self._decoders: dict[str, Callable] = {}

    # --- target resolution ----------------------------------------------------------------------

    def resolve(self, provider: str, model: str) -> tuple[Runtime, Target]:
        rt = self.providers.get(provider)
        if rt is None:
            from ..providers.registry import ROWS

            row = ROWS.get(provider)
            if row is not None and not row.chat_supported:
                raise E.UnsupportedOperation(f"chat_completion is not supported by {provider} provider")
            raise E.UnknownProvider(f"provider {provider} is not configured", param="model")
        conf = rt.conf
        if not conf.row.chat_supported:
            raise E.UnsupportedOperation(f"chat_completion is not supported by {provider} provider")
        key = self.choose_key(conf, model)
        return rt, Target(provider, model, conf.base_url, key, conf.row, rt.headers)

    @staticmethod
    def choose_key(conf: ProviderConfig, model: str) -> Key:
        if not conf.keys:
            if conf.keyless:
                return Key()
            raise E.NoKeyForModel(f"no keys found that support model: {model}", param="model")
        allowed = [k for k in conf.keys if k.allows(model)]
        if not allowed:
            if conf.keyless:
                return Key()
            raise E.NoKeyForModel(f"no keys found that support model: {model}", param="model")
        if len(allowed) == 1:
            return allowed[0]
        total = sum(k.weight for k in allowed)
        if total <= 0:
            return random.choice(allowed)
        pick = random.uniform(0, total)
        for k in allowed:
            pick -= k.weight
            if pick <= 0:
                return k
        return allowed[-1]

    # --- the attempt loop -------------------------------------------------------------------------

    def run(self, req: ChatRequest, ctx: RequestContext, attempt, *, request_type: str, start: int = 0,
            targets: list[tuple[str, str]] | None = None):
        """Try each target in order with its retries; return ``(index, result)`` of the first success.

        ``attempt(rt, target, req, timeout)`` does one upstream call and returns a result or raises a
        GatewayError. When every target fails, the primary's error is raised.
        """
        if targets is None:
            targets = [(req.provider, req.model), *req.fallbacks]
        first_error: E.GatewayError | None = None
        last_error: E.GatewayError | None = None
        for index in range(start, len(targets)):
            provider, model = targets[index]
            ctx.fallback_index = index
            ctx.provider, ctx.model = provider, model
            if index > start:
                log.info("request %s: falling back to %s/%s (fallback %d) after %s", ctx.request_id,
                         provider, model, index, _describe(last_error))
            try:
                rt, target = self.resolve(provider, model)
            except E.ClientError as err:
                if index == start:
                    raise
                # an unusable fallback (not configured, no key for the model) is skipped, not fatal
                log.warning("request %s: skipping fallback %s/%s: %s", ctx.request_id, provider, model, err.message)
                continue
            try:
                result = self._run_target(req, ctx, attempt, rt, target, request_type)
                return index, result
            except E.GatewayError as err:
                err.attach(provider=provider, model=model, request_type=request_type)
                if isinstance(err, E.ClientError) and index > start:
                    # a fallback that cannot take this request (e.g. a parameter it refuses) is skipped;
                    # the client's answer stays the primary's error
                    log.info("request %s: fallback %s/%s cannot serve this request: %s", ctx.request_id,
                             provider, model, err.message)
                    continue
                last_error = err
                if first_error is None:
                    first_error = err
                if not policy.decide(err).fallback:
                    raise err
            if ctx.remaining() <= 0:
                log.info("request %s: deadline reached, no more fallbacks", ctx.request_id)
                break
        if first_error is None:
            raise E.InternalError("no target could be tried")
        raise first_error

    def _run_target(self, req, ctx, attempt, rt: Runtime, target: Target, request_type: str):
        provider, model = target.provider, target.model
        circuit = self.breakers.get(provider, model)
        if not circuit.allow():
            raise E.CircuitOpen(f"circuit open for {provider}/{model}: too many recent failures, skipping it")
        net = rt.conf.network
        target_req = req if (provider, model) == (req.provider, req.model) else req.with_target(provider, model)
        retries = 0
        while True:
            remaining = ctx.remaining()
            if remaining <= 0:
                circuit.release_probe()
                raise E.UpstreamTimeout("request deadline exceeded before the provider answered")
            ctx.attempts += 1
            try:
                result = attempt(rt, target, target_req, min(net.timeout, remaining), circuit)
            except E.GatewayError as err:
                action = policy.decide(err)
                if isinstance(err, (E.ClientError, E.QueueFull)):
                    circuit.release_probe()
                    raise
                wait = None
                if action.retry and retries < net.max_retries:
                    retries += 1
                    wait = err.retry_after
                    if wait is None:
                        wait = policy.backoff(retries, initial=net.backoff_initial, maximum=net.backoff_max)
                    limit = min(net.timeout, ctx.remaining())
                    if wait >= limit:
                        log.info("request %s: %s/%s asked to wait %.1fs, more than the %.1fs left; moving on",
                                 ctx.request_id, provider, model, wait, limit)
                        wait = None
                if wait is None:
                    if isinstance(err, E.ProviderRejected):
                        # the provider judged this request (its size, its content): says nothing of its health
                        circuit.release_probe()
                    else:
                        circuit.failure()
                    raise
                ctx.retries += 1
                log.info("request %s: retry %d of %s/%s in %.2fs after %s", ctx.request_id, retries, provider,
                         model, wait, _describe(err))
                self.sleep(wait)
                continue
            circuit.success()
            return result

    # --- one upstream call --------------------------------------------------------------------------

    def prepare(self, rt: Runtime, target: Target, req: ChatRequest, ctx: RequestContext, *, stream: bool) -> UpstreamRequest:
        upreq = rt.adapter.build_request(req, target, stream=stream, passthrough=ctx.passthrough)
        headers = upreq.headers
        for k, v in target.extra_headers.items():
            headers[k] = v
        for k, v in ctx.extra_headers.items():
            headers[k] = v
        return auth.apply(upreq, target, time.time())

    def send(self, rt: Runtime, target: Target, upreq: UpstreamRequest, timeout: float, *, stream: bool):
        resp = transport.send(upreq, timeout=timeout, proxy=rt.conf.proxy, stream=stream)
        if resp.status >= 400:
            body = resp.read()
            try:
                err = rt.adapter.parse_error(resp.status, resp.headers, body, target)
            except E.SHAPE_ERRORS as exc:
                log.warning("%s error body has an unexpected shape (%s)", target.provider, exc, exc_info=True)
                err = E.provider_error(resp.status, body.decode("utf-8", "replace").strip()[:1000])
            if err.retry_after is None:
                err.retry_after = policy.parse_retry_after(resp.headers)
            raise err
        return resp

    def complete(self, req: ChatRequest, ctx: RequestContext) -> dict:
        def attempt(rt: Runtime, target: Target, treq: ChatRequest, timeout: float, circuit) -> dict:
            upreq = self.prepare(rt, target, treq, ctx, stream=False)
            rt.slots.acquire(timeout)
            try:
                t0 = time.monotonic()
                resp = self.send(rt, target, upreq, timeout, stream=False)
                resp.deadline = ctx.deadline  # a trickling body must not outlive the request
                body = resp.read()
                latency = int((time.monotonic() - t0) * 1000)
            finally:
                rt.slots.release()
            try:
                result = rt.adapter.parse_response(body, target)
                ctx.usage = result.get("usage")
                return shapes.completion(result, provider=target.provider, model_requested=target.model,
                                         latency_ms=latency)
            except E.SHAPE_ERRORS as exc:
                raise malformed(target.provider, exc) from None

        return self.run(req, ctx, attempt, request_type=CHAT)[1]

    def decoder(self, framing: str):
        """The incremental decoder class (``feed(bytes) -> events``, ``close() -> events``) for a framing."""
        dec = self._decoders.get(framing)
        if dec is None:
            module, name = {"sse": ("sse", "SSEDecoder"), "aws-eventstream": ("eventstream", "EventStreamDecoder")}[framing]
            dec = getattr(importlib.import_module(f"bifrost_wsgi.wire.{module}"), name)
            self._decoders[framing] = dec
        return dec

    def open_stream(self, req: ChatRequest, ctx: RequestContext):
        from .relay import open_stream

        return open_stream(self, req, ctx)


def malformed(provider: str, exc: Exception) -> E.UpstreamProtocolError:
    """The error for an upstream answer a translator could not read (see errors.SHAPE_ERRORS); the
    traceback goes to the log in case the translator, not the provider, is wrong."""
    log.warning("%s answer has an unexpected shape (%s: %s)", provider, type(exc).__name__, exc, exc_info=True)
    return E.UpstreamProtocolError(f"{provider} answer has an unexpected shape")


def _describe(err) -> str:
    if err is None:
        return "an error"
    return f"{type(err).__name__} status={err.status} ({err.message[:200]})"
