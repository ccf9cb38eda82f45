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

from . import errors as E, web
from .config import GatewayConfig, load
from .governance import virtual_keys
from .observe import accesslog, metrics
from .routing import relay
from .routing.catalog import ModelLister
from .routing.context import RequestContext
from .routing.router import Router
from .routing.upstream import BLOCKED_CLIENT_HEADERS
from .operations import CHAT
from .surfaces import openai_chat

log = logging.getLogger("bifrost_wsgi")

_TRUE = ("true", "1", "yes")


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


class Gateway:
    """``Gateway(config)(environ, start_response)``; routes on PATH_INFO so it can be mounted under a prefix."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.router = Router(config)
        self.models = ModelLister(config)
        chat = {"POST": self.chat_completions}
        models = {"GET": self.list_models, "HEAD": self.list_models}
        self.routes = {
            "/v1/chat/completions": chat,
            "/openai/v1/chat/completions": chat,
            "/openai/chat/completions": chat,
            "/v1/models": models,
            "/openai/v1/models": models,
            "/health": {"GET": self.health, "HEAD": self.health},
            # open like /health even with virtual keys: restrict it at the proxy (deploy/nginx/bifrost.conf)
            "/metrics": {"GET": self.metrics_page, "HEAD": self.metrics_page},
        }
        # the routes that call providers: admitted under the worker's limit, reported as they start
        self.inference = frozenset({self.chat_completions})
        self.body_limit = config.client.max_request_body_bytes
        self.metrics = metrics.Metrics(breakers=self.router.breakers, paths=self.routes,
                                       virtual_keys=config.virtual_keys, config=config)
        # objects with request_started(ctx), stream_started(ctx) and request_finished(ctx)
        self.observers: list = [accesslog.AccessLog(), self.metrics]
        # gateway authentication (virtual keys); None when no virtual key is configured
        self.governance = virtual_keys.from_config(config)
        self.deadline = config.client.request_deadline
        self.admission = Admission(inference_limit())

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
        ctx = RequestContext(request_id=request_id, deadline=time.monotonic() + self.deadline, route=path,
                             method=environ["REQUEST_METHOD"], client_ip=accesslog.client_ip(environ))

        def recording_start_response(status, headers, *exc_info):
            ctx.http_status = int(status[:3])
            if not ctx.status:
                ctx.status = ctx.http_status
            return start_response(status, headers, *exc_info)

        methods = self.routes.get(path)
        handler = methods.get(ctx.method) if methods is not None else None
        admitted = False
        try:
            if methods is None:
                raise E.NotFound(f"no route for {path}")
            if handler is None:
                raise E.MethodNotAllowed(f"method {ctx.method} is not allowed on {path}",
                                         headers={"Allow": ", ".join(methods)})
            if handler in self.inference:
                self.admission.enter()  # raises QueueFull before any work is done
                admitted = True
                for obs in self.observers:
                    obs.request_started(ctx)
            body = handler(environ, recording_start_response, ctx)
        except E.GatewayError as err:
            ctx.status, ctx.error_type, ctx.error_message = err.status, err.type, err.message
            ctx.client_disconnected = isinstance(err, E.ClientGone)
            body = self.error_response(recording_start_response, err, request_id)
        except Exception:  # noqa: BLE001 - our own bug: generic 500, details in the log only
            log.exception("request %s: unhandled error", request_id)
            err = E.InternalError()
            ctx.status, ctx.error_type = err.status, err.type
            body = self.error_response(recording_start_response, err, request_id, exc_info=sys.exc_info())
        finish = self._finished_inference if admitted else self._finished
        if type(body) is list:
            # a complete answer is reported now: whoever reads /metrics right after it must see it counted
            finish(ctx)
            return body
        return Reported(body, ctx, finish)

    @staticmethod
    def error_response(start_response, err: E.GatewayError, request_id: str, exc_info=None):
        headers = [("x-request-id", request_id), *err.headers.items()]
        if err.retry_after is not None and err.status in (429, 503):
            headers.append(("Retry-After", str(max(1, int(err.retry_after + 0.999)))))
        body = web.dumps(err.to_dict())
        out = [("Content-Type", "application/json"), ("Content-Length", str(len(body))), *headers]
        if exc_info is not None:
            start_response(web.status_line(err.status), out, exc_info)
        else:
            start_response(web.status_line(err.status), out)
        return [body]

    # --- routes -------------------------------------------------------------------------------------

    def health(self, environ, start_response, ctx):
        return web.json_response(start_response, 200, {"status": "ok"}, [("x-request-id", ctx.request_id)])

    def metrics_page(self, environ, start_response, ctx):
        body = self.metrics.render(multiprocess=bool(environ.get("wsgi.multiprocess")))
        start_response("200 OK", [("Content-Type", metrics.CONTENT_TYPE), ("Content-Length", str(len(body))),
                                  ("x-request-id", ctx.request_id)])
        return [body]

    def list_models(self, environ, start_response, ctx):
        # with virtual keys the list needs one too, and shows only what that key may use
        vk = self.governance.authenticate(environ) if self.governance is not None else None
        query = parse_qs(environ.get("QUERY_STRING", ""))
        provider = (query.get("provider") or [None])[0]
        if provider is not None and provider not in self.config.providers:
            raise E.BadRequest(f"provider {provider} is not configured", param="provider")
        data = self.models.list(provider=provider)
        if vk is not None:
            data = self.governance.visible(vk, data)
        return web.json_response(start_response, 200, {"object": "list", "data": data},
                                 [("x-request-id", ctx.request_id)])

    def chat_completions(self, environ, start_response, ctx):
        if self.governance is not None:
            # before the body is read: no parsing work for whoever has no key
            self.governance.authenticate(environ)
        req = openai_chat.parse(web.parse_json(web.read_body(environ, self.body_limit)))
        ctx.stream = req.stream
        ctx.request_type = CHAT.request_type_for(stream=req.stream)
        ctx.provider, ctx.model = req.provider, req.model
        ctx.request = req
        try:
            if self.governance is not None:
                ctx.virtual_key = self.governance.authorize(environ, req)
            ctx.passthrough = environ.get("HTTP_X_BF_PASSTHROUGH_EXTRA_PARAMS", "").lower() in _TRUE
            ctx.extra_headers = forwarded_headers(environ)
            ctx.client_socket = environ.get("gunicorn.socket")
            if req.stream:
                if not environ.get("wsgi.multithread", True):
                    _warn_single_threaded()
                stream = relay.open_stream(self.router, req, ctx, openai_chat.ChatStreamEncoder())
                ctx.status = ctx.http_status = 200
                self._stream_started(ctx)
                start_response("200 OK", [*web.SSE_HEADERS,
                                          ("x-request-id", ctx.request_id)])
                return stream
            answer = self.router.complete(req, ctx)
        except E.GatewayError as err:
            if not err.request_type:
                err.attach(provider=req.provider, model=req.model, request_type=ctx.request_type)
            raise
        ctx.output = answer.body
        return web.json_response(start_response, 200, openai_chat.render(answer), [("x-request-id", ctx.request_id)])

    # --- observers ------------------------------------------------------------------------------------

    def _stream_started(self, ctx: RequestContext) -> None:
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


_warned_single_threaded = False


def _warn_single_threaded() -> None:
    """Once per process: a stream pins its worker, and gunicorn's sync worker kills it at --timeout."""
    global _warned_single_threaded
    if not _warned_single_threaded:
        _warned_single_threaded = True
        log.warning("streaming on a server that is not multithreaded (gunicorn's sync worker?): each stream "
                    "blocks the whole worker and the sync worker kills streams longer than its timeout; "
                    "use gthread workers (deploy/gunicorn.conf.py, or the bifrost-wsgi command)")


def forwarded_headers(environ) -> dict:
    """``x-bf-eh-<name>: v`` request headers become upstream header ``<name>`` (never credentials, framing or
    forwarding headers)."""
    out = {}
    for key, value in environ.items():
        if key.startswith("HTTP_X_BF_EH_"):
            name = key[13:].lower().replace("_", "-")
            if name and name not in BLOCKED_CLIENT_HEADERS:
                out[name] = value
    return out


def make_app(config=None) -> Gateway:
    """Build the gateway from a path, a config dict, a GatewayConfig, or None (environment)."""
    return Gateway(load(config))
