"""The WSGI application: a hand-written route table, the request context, and the one place that turns
errors into responses.

A request flows one way: the surface parses the client's format into the internal request, routing runs it
against its targets (providers translate, the transport sends), and the surface renders the answer or
encodes the stream. Every request is reported to the observers (access log, metrics, request log) once, in
one place: a complete answer as it is returned, a stream through ``Reported``, when the server closes it,
whatever way it ended.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from urllib.parse import parse_qs

from . import errors as E, overrides, web
from .config import GatewayConfig, load
from .governance import engine as governance_engine
from .governance.admin_api import AdminApi
from .observe import accesslog, metrics
from .routing.catalog import ModelLister
from .routing.context import RequestContext
from .routing.router import Router
from .surfaces import (anthropic, bedrock, cohere, genai, openai_audio, openai_chat, openai_completions, openai_embeddings,
                       openai_images, openai_models, openai_responses)
from .urls import Route, RouteTable

log = logging.getLogger("bifrost_wsgi")



class Reported:
    """A response body that reports its request to the observers once, when the server closes it (the
    ``ClosingIterator`` idea). PERF: ``__iter__`` hands out the body's own iterator, so chunks do not pass
    through this object."""

    __slots__ = ("body", "ctx", "finish")

    def __init__(self, body, ctx: RequestContext, finish) -> None:
        self.body, self.ctx, self.finish = body, ctx, finish

    def __iter__(self):
        return iter(self.body)

    def close(self) -> None:
        try:
            close = getattr(self.body, "close", None)
            if close is not None:
                close()
        finally:
            self.finish(self.ctx)


class Admission:
    """At most ``limit`` inference requests at once in this process: beyond that a request is refused at
    once with 503 ``queue_full``, so the server keeps threads free for ``/health``, ``/metrics`` and the
    answers already under way (a queued stream would only wait, silently, for a thread)."""

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit
        self.busy = 0
        self._lock = threading.Lock()

    def enter(self) -> None:
        if self.limit is None:
            return
        with self._lock:
            if self.busy >= self.limit:
                raise E.QueueFull(f"server busy: {self.limit} requests in progress in this worker; retry shortly")
            self.busy += 1

    def leave(self) -> None:
        if self.limit is None:
            return
        with self._lock:
            self.busy -= 1


def inference_limit(environ=None) -> int | None:
    """``BIFROST_MAX_INFLIGHT``, else the worker's threads (``BIFROST_WORKER_THREADS``, set by bifrost-wsgi and
    deploy/gunicorn.conf.py) less two; None (no limit) when neither is known."""
    env = os.environ if environ is None else environ
    for name, spare in (("BIFROST_MAX_INFLIGHT", 0), ("BIFROST_WORKER_THREADS", 2)):
        value = env.get(name, "").strip()
        if value.isdigit() and int(value) > 0:
            return max(1, int(value) - spare)
    return None


def health(gateway, environ, start_response, ctx):
    return web.json_response(start_response, 200, {"status": "ok"}, [("x-request-id", ctx.request_id)])


def metrics_page(gateway, environ, start_response, ctx):
    body = gateway.metrics.render(multiprocess=bool(environ.get("wsgi.multiprocess")))
    start_response("200 OK", [("Content-Type", metrics.CONTENT_TYPE), ("Content-Length", str(len(body))),
                              ("x-request-id", ctx.request_id)])
    return [body]


def list_models(gateway, environ, start_response, ctx):
    # with virtual keys the list needs one too, and shows only what that key may use
    vk = gateway.governance.authenticate(environ) if gateway.governance is not None else None
    query = parse_qs(environ.get("QUERY_STRING", ""))
    provider = (query.get("provider") or [None])[0]
    if provider is not None and provider not in gateway.config.providers:
        raise E.BadRequest(f"provider {provider} is not configured", param="provider")
    data = gateway.models.list(provider=provider)
    if vk is not None:
        data = gateway.governance.visible(vk, data)
    return web.json_response(start_response, 200, {"object": "list", "data": data},
                             [("x-request-id", ctx.request_id)])


def admin_api(gateway, environ, start_response, ctx):
    return gateway.admin(environ, start_response)


_MODELS = {"GET": Route(list_models), "HEAD": Route(list_models)}
OWN_ROUTES = {
    "/v1/models": _MODELS,
    "/openai/v1/models": _MODELS,
    "/health": {"GET": Route(health), "HEAD": Route(health)},
    # open like /health even with virtual keys: restrict it at the proxy (deploy/nginx/bifrost.conf)
    "/metrics": {"GET": Route(metrics_page), "HEAD": Route(metrics_page)},
    # logs, governance, sessions, config: one sub-application (governance/admin_api.py) with its own auth
    "/api/{rest:path}": dict.fromkeys(("GET", "POST", "PUT", "DELETE"), Route(admin_api)),
}

#: the client formats the gateway speaks; each module's ROUTES joins the route table
SURFACES = (openai_chat, openai_completions, openai_embeddings, openai_models, openai_responses, openai_audio,
            openai_images, anthropic, genai, bedrock, cohere)
#: framework prefixes that serve the /openai, /anthropic and /genai routes under their own name
MOUNTS = {prefix: ("/openai", "/anthropic", "/genai") for prefix in ("/litellm", "/langchain", "/pydanticai")}


class Gateway:
    """``Gateway(config)(environ, start_response)``; routes on PATH_INFO so it can be mounted under a prefix."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.base_config = config  # config.json's; what the admin API stored goes over it (overrides.py)
        self._reload_lock = threading.Lock()
        self.router = Router(config)
        self.models = ModelLister(config)
        self.routes = RouteTable()
        self.routes.extend(OWN_ROUTES)
        for surface in SURFACES:
            self.routes.extend(surface.ROUTES)
        for prefix, sources in MOUNTS.items():
            self.routes.mount(prefix, sources=sources)
        self.body_limit = config.client.max_request_body_bytes
        # virtual keys, rate limits, budgets, request logs and their store (governance/engine.py)
        self.governance = governance_engine.from_config(config)
        self.metrics = metrics.Metrics(breakers=self.router.breakers, paths=self.routes.names(),
                                       virtual_keys=config.virtual_keys, config=config,
                                       dropped_rows=lambda: self.governance.writer.dropped)
        self.admin = AdminApi(self.governance, config=config)
        # objects with request_started(ctx), stream_started(ctx) and request_finished(ctx)
        self.observers: list = [accesslog.AccessLog(), self.metrics, self.governance]
        self.deadline = config.client.request_deadline
        self.admission = Admission(inference_limit())
        # providers and client settings changed through the admin API, now and whenever a worker notices
        self.governance.listeners.append(self._stored_changes)
        providers, client_settings = self.governance.running_overrides()
        if providers or client_settings:
            self._stored_changes(providers, client_settings)

    def _stored_changes(self, providers: dict, client_settings: dict) -> None:
        self.reload(overrides.apply(self.base_config, providers=providers, client_settings=client_settings,
                                    on_error=log.error))

    def reload(self, config: GatewayConfig) -> None:
        """Serve ``config`` from now on, without a restart. Requests under way keep the router they started
        with (they hold it); new ones get the new one. The circuits of providers whose config is unchanged
        carry on; a changed provider's start afresh."""
        with self._reload_lock:
            old = self.config.providers
            unchanged = frozenset(name for name, conf in config.providers.items() if old.get(name) == conf)
            breakers = self.router.breakers.carried(settings=config.client.breaker, providers=unchanged)
            router, models = Router(config, breakers=breakers), ModelLister(config)
            self.metrics.breakers = router.breakers
            self.metrics.provider_label = metrics.Bounded(config.providers, limit=0)
            self.router, self.models = router, models
            self.body_limit = config.client.max_request_body_bytes
            self.deadline = config.client.request_deadline
            self.config = self.admin.config = config

    def close(self) -> None:
        """Stop the governance threads and close the store connections (an app that is rebuilt)."""
        self.governance.close()

    def __call__(self, environ, start_response):
        body = self._respond(environ, start_response)
        if environ["REQUEST_METHOD"] != "HEAD":
            return body
        # every route, errors included: the GET's status and headers (Content-Length too), never a body
        if hasattr(body, "close"):
            body.close()
        return []

    def _respond(self, environ, start_response):
        request_id = environ.get("HTTP_X_REQUEST_ID") or os.urandom(16).hex()  # PERF: uuid4 costs 4x
        path = environ.get("PATH_INFO") or "/"
        name, methods, params = self.routes.match(path)
        ctx = RequestContext(request_id=request_id, deadline=time.monotonic() + self.deadline, route=name,
                             method=environ["REQUEST_METHOD"], client_ip=accesslog.client_ip(environ), params=params)

        def recording_start_response(status, headers, *exc_info):
            ctx.http_status = int(status[:3])
            if not ctx.status:
                ctx.status = ctx.http_status
            return start_response(status, headers, *exc_info)

        route = methods.get(ctx.method) if methods is not None else None
        admitted = False
        try:
            if methods is None:
                raise E.NotFound(f"no route for {path}")
            if route is None:
                raise E.MethodNotAllowed(f"method {ctx.method} is not allowed on {path}",
                                         headers={"Allow": ", ".join(methods)})
            if route.inference:
                self.admission.enter()  # raises QueueFull before any work is done
                admitted = True
                for obs in self.observers:
                    obs.request_started(ctx)
            body = route.handler(self, environ, recording_start_response, ctx)
        except E.GatewayError as err:
            ctx.status, ctx.error_type, ctx.error_message = err.status, err.type, err.message
            ctx.client_disconnected = isinstance(err, E.ClientGone)
            body = self.error_response(recording_start_response, err, request_id,
                                       envelope=route.envelope if route is not None else None)
        except Exception:  # noqa: BLE001 - our own bug: generic 500, details in the log only
            log.exception("request %s: unhandled error", request_id)
            err = E.InternalError()
            ctx.status, ctx.error_type = err.status, err.type
            body = self.error_response(recording_start_response, err, request_id, exc_info=sys.exc_info(),
                                       envelope=route.envelope if route is not None else None)
        finish = self._finished_inference if admitted else self._finished
        if type(body) is list:
            # a complete answer is reported now: whoever reads /metrics right after it must see it counted
            finish(ctx)
            return body
        return Reported(body, ctx, finish)

    @staticmethod
    def error_response(start_response, err: E.GatewayError, request_id: str, exc_info=None, envelope=None):
        """The error in the route's envelope (Bifrost's unless the route speaks another format)."""
        if envelope is None:
            status, headers, body = err.status, [("Content-Type", "application/json")], web.dumps(err.to_dict())
        else:
            status, headers, body = envelope(err)
        headers = [*headers, ("Content-Length", str(len(body))), ("x-request-id", request_id), *err.headers.items()]
        if err.retry_after is not None and err.status in (429, 503):
            headers.append(("Retry-After", str(max(1, int(err.retry_after + 0.999)))))
        if exc_info is not None:
            start_response(web.status_line(status), headers, exc_info)
        else:
            start_response(web.status_line(status), headers)
        return [body]

    # --- observers ------------------------------------------------------------------------------------

    def stream_started(self, ctx: RequestContext) -> None:
        """A stream's status line is about to go out: it counts as answered 200 from now on."""
        ctx.status = ctx.http_status = 200
        for obs in self.observers:
            try:
                obs.stream_started(ctx)
            except Exception:  # noqa: BLE001 - the stream is open: an observer must not leak it
                log.exception("observer %r failed", obs)

    def _finished_inference(self, ctx: RequestContext) -> None:
        self.admission.leave()
        self._finished(ctx)

    def _finished(self, ctx: RequestContext) -> None:
        for obs in self.observers:
            try:
                obs.request_finished(ctx)
            except Exception:  # noqa: BLE001 - an observer must never break a response
                log.exception("observer %r failed", obs)


def make_app(config=None) -> Gateway:
    """Build the gateway from a path, a config dict, a GatewayConfig, or None (environment)."""
    return Gateway(load(config))
