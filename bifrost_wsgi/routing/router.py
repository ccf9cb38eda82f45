"""Runs a request against its targets: key choice, admission, retries, waits, fallbacks, circuit breakers.

``run`` tries each target in order with its retries and returns the first success of an *attempt* (one
upstream call, given to it by the caller: a complete answer here, a stream in relay.py). One deadline per
request bounds every attempt, wait and fallback. ``complete`` is the attempt loop for a whole answer.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from typing import Callable

from .. import errors as E
from ..answers import check_completion
from ..config import GatewayConfig, ProviderConfig
from ..providers.base import Key, Target
from ..providers.registry import ROWS
from ..providers.translators import translator as translator_for
from ..operations import CHAT, Operation
from ..wire.eventstream import EventStreamDecoder
from ..wire.sse import SSEDecoder
from . import policy, upstream
from .admission import Slots
from .breaker import Breakers
from .context import RequestContext
from .upstream import Runtime

log = logging.getLogger("bifrost_wsgi.router")

#: the incremental decoder for each adapter's ``framing``
DECODERS = {"sse": SSEDecoder, "aws-eventstream": EventStreamDecoder}


@dataclass(slots=True)
class Answer:
    """A complete answer: the checked chat.completion and where it came from."""

    body: dict
    provider: str
    model: str
    latency_ms: int

    def extra_fields(self, request_type: str) -> dict:
        """Bifrost's ``extra_fields`` of a whole answer: what was asked, who answered, how long it took."""
        return {"request_type": request_type, "provider": self.provider, "model_requested": self.model,
                "latency": self.latency_ms}


def judge(circuit, err: E.GatewayError) -> None:
    """Tell a target's circuit about a failure it was given up on: only the provider's health counts."""
    if isinstance(err, (E.ClientError, E.QueueFull, E.InternalError, E.ClientGone, E.ProviderRejected)):
        # the request itself, our own limits, our own bug, a client that left, or the provider judging this
        # request's content: none says anything about the provider's health
        circuit.release_probe()
    else:
        circuit.failure()


class Router:
    def __init__(self, config: GatewayConfig, *, sleep: Callable[[float], None] = time.sleep,
                 breakers: Breakers | None = None) -> None:
        self.config = config
        self.sleep = sleep
        self.breakers = Breakers(config.client.breaker) if breakers is None else breakers
        drop = config.client.drop_excess_requests
        self.providers: dict[str, Runtime] = {
            name: Runtime(conf, conf.row.load_adapter(),
                          Slots(concurrency=conf.concurrency, buffer_size=conf.buffer_size, drop_excess=drop),
                          {**dict(conf.row.extra_headers), **conf.network.extra_headers})
            for name, conf in config.providers.items()
        }

    # --- target resolution ----------------------------------------------------------------------

    def resolve(self, provider: str, model: str, operation: Operation = CHAT):
        """The runtime, target and translator for one target of a request; a ClientError when it cannot
        serve this operation at all."""
        rt = self.providers.get(provider)
        if rt is None:
            row = ROWS.get(provider)
            if row is not None and translator_for(row, row.load_adapter(), operation.name) is None:
                raise E.UnsupportedOperation(f"{operation.request_type} is not supported by {provider} provider")
            raise E.UnknownProvider(f"provider {provider} is not configured", param="model")
        conf = rt.conf
        translator = translator_for(conf.row, rt.adapter, operation.name)
        if translator is None:
            raise E.UnsupportedOperation(f"{operation.request_type} is not supported by {provider} provider")
        key = self.choose_key(conf, model)
        return rt, Target(provider, model, conf.base_url, key, conf.row, rt.headers), translator

    @staticmethod
    def choose_key(conf: ProviderConfig, model: str) -> Key:
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

    @staticmethod
    def decoder(framing: str):
        """The incremental decoder class (``feed(bytes) -> events``, ``close() -> events``) for a framing."""
        return DECODERS[framing]

    # --- the attempt loop -------------------------------------------------------------------------

    def run(self, req, ctx: RequestContext, attempt, *, operation: Operation = CHAT, stream: bool = False,
            start: int = 0, targets: list[tuple[str, str]] | None = None):
        """Try each target in order with its retries; return ``(index, result)`` of the first success.

        ``req`` is any internal request with ``provider``, ``model``, ``fallbacks`` and ``with_target``.
        ``attempt(rt, target, translator, req, timeout, circuit)`` does one upstream call and returns a result or raises a
        GatewayError; an attempt whose result is still under way (a stream) says ``settles_later`` and tells
        the circuit itself how it ended. When every target fails, the primary's error is raised.
        """
        request_type = operation.request_type_for(stream=stream)
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
                rt, target, translator = self.resolve(provider, model, operation)
            except E.ClientError as err:
                if index == start:
                    if isinstance(err, E.UnknownProvider) and provider not in ROWS:
                        # a name outside the provider table is not echoed as a provider
                        err.attach(provider="", model=model, request_type=request_type)
                    raise
                # an unusable fallback (not configured, no key for the model) is skipped, not fatal
                log.warning("request %s: skipping fallback %s/%s: %s", ctx.request_id, provider, model, err.message)
                continue
            ctx.key_name = target.key.name
            try:
                result = self._run_target(req, ctx, attempt, rt, target, translator)
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

    def _run_target(self, req, ctx, attempt, rt: Runtime, target: Target, translator):
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
                result = attempt(rt, target, translator, target_req, min(net.timeout, remaining), circuit)
            except E.GatewayError as err:
                wait = None
                if policy.decide(err).retry and retries < net.max_retries:
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
                    judge(circuit, err)
                    raise
                ctx.retries += 1
                log.info("request %s: retry %d of %s/%s in %.2fs after %s", ctx.request_id, retries, provider,
                         model, wait, _describe(err))
                self.sleep(wait)
                continue
            if not getattr(attempt, "settles_later", False):
                circuit.success()
            return result

    # --- a whole answer --------------------------------------------------------------------------------

    def complete(self, req, ctx: RequestContext, operation: Operation = CHAT) -> Answer:
        """A whole answer of ``operation`` from the first target that gives one."""
        def attempt(rt: Runtime, target: Target, translator, treq, timeout: float, circuit) -> Answer:
            # a translator whose API takes one item per call (Bedrock Titan embeddings) builds several
            # requests: they are sent in order within this one attempt, and the first error fails it
            several = hasattr(translator, "build_requests")
            if several:
                built = upstream.translate(target, translator.build_requests, treq, target,
                                           passthrough=ctx.passthrough)
                upreqs = [upstream.finish_request(u, target, ctx) for u in built]
            else:
                upreqs = [upstream.prepare(translator, target, treq, ctx, stream=False)]
            rt.slots.acquire(timeout)
            try:
                t0 = time.monotonic()
                bodies = []
                for upreq in upreqs:
                    resp = upstream.send(rt, target, upreq, timeout=timeout, stream=False, client=ctx.client_socket)
                    resp.deadline = ctx.deadline  # a trickling body must not outlive the request
                    bodies.append(resp.read())
                latency = int((time.monotonic() - t0) * 1000)
            finally:
                rt.slots.release()
            if several:
                result = upstream.translate(target, translator.parse_responses, bodies, target)
            else:
                result = upstream.translate(target, translator.parse_response, bodies[0], target)
            if operation is CHAT:
                result = check_completion(result)
            if isinstance(result, dict) and isinstance(result.get("usage"), dict):
                ctx.usage = result["usage"]
            return Answer(result, target.provider, target.model, latency)

        return self.run(req, ctx, attempt, operation=operation)[1]


def _describe(err) -> str:
    if err is None:
        return "an error"
    return f"{type(err).__name__} status={err.status} ({err.message[:200]})"
