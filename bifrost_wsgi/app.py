"""The WSGI application: a hand-written route table, and the one place that turns errors into responses."""

from __future__ import annotations

import logging
import os
import sys
import time
from urllib.parse import parse_qs

from . import errors as E, schema, web
from .observe import accesslog
from .governance import engine as governance_engine
from .governance.admin_api import AdminApi
from .governance.virtual_keys import label as vk_label
from .observe import metrics
from .config import GatewayConfig, load
from .routing.router import _BLOCKED_EXTRA_HEADERS, CHAT, CHAT_STREAM, Dispatcher, RequestContext
from .routing.catalog import ModelLister

log = logging.getLogger("bifrost_wsgi")

_TRUE = ("true", "1", "yes")


class Gateway:
    """``Gateway(config)(environ, start_response)``; routes on PATH_INFO so it can be mounted under a prefix."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.dispatcher = Dispatcher(config)
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
            "/metrics": {"GET": self.metrics_page},
        }
        # every /api/* route (logs, governance, sessions) is served by the admin sub-application
        self.admin_routes = dict.fromkeys(("GET", "POST", "PUT", "DELETE"), self.admin_api)
        self.body_limit = config.client.max_request_body_bytes
        self.metrics = metrics.Metrics(breakers=self.dispatcher.breakers, paths=self.routes,
                                       virtual_keys=config.virtual_keys)
        # objects with request_started(ctx) / stream_started(ctx) (optional) / request_finished(ctx); other
        # routes than chat only report request_finished, once their response is built
        # virtual keys, rate limits, budgets, request logs and their store (governance/engine.py)
        self.governance = governance_engine.from_config(config)
        self.admin = AdminApi(self.governance, config=config)
        self.observers: list = [accesslog.AccessLog(), self.metrics, self.governance]
        self.deadline = config.client.request_deadline

    def close(self) -> None:
        """Stop the governance threads and close the store connections (an app that is rebuilt)."""
        self.governance.close()

    def __call__(self, environ, start_response):
        request_id = environ.get("HTTP_X_REQUEST_ID") or os.urandom(16).hex()  # PERF: uuid4 costs 4x
        rid_header = ("x-request-id", request_id)
        path = environ.get("PATH_INFO") or "/"
        methods = self.routes.get(path)
        if methods is None and path.startswith("/api/"):
            methods = self.admin_routes
        handler = methods.get(environ["REQUEST_METHOD"]) if methods is not None else None
        ctx = None
        if handler != self.chat_completions and self.observers:
            # chat requests report to the observers themselves (streams only when they end)
            ctx, start_response = self._plain_context(environ, start_response, request_id)
        try:
            if methods is None:
                raise E.NotFound(f"no route for {path}")
            if handler is None:
                raise E.MethodNotAllowed(f"method {environ['REQUEST_METHOD']} is not allowed on {path}",
                                         headers={"Allow": ", ".join(methods)})
            return handler(environ, start_response, request_id)
        except E.GatewayError as err:
            return self.error_response(start_response, err, rid_header)
        except Exception:  # noqa: BLE001 - our own bug: generic 500, details in the log only
            log.exception("request %s: unhandled error", request_id)
            return self.error_response(start_response, E.InternalError(), rid_header, exc_info=sys.exc_info())
        finally:
            if ctx is not None:
                self._finished(ctx)

    def _plain_context(self, environ, start_response, request_id):
        """A RequestContext for a request outside chat_completions (models, health, metrics, 404/405), and a
        start_response that records its status."""
        ctx = RequestContext(request_id=request_id, deadline=0.0, route=environ.get("PATH_INFO") or "/",
                             method=environ["REQUEST_METHOD"], client_ip=accesslog.client_ip(environ))

        def recording_start_response(status, headers, *exc_info):
            ctx.status = ctx.http_status = int(status[:3])
            return start_response(status, headers, *exc_info)

        return ctx, recording_start_response

    @staticmethod
    def error_response(start_response, err: E.GatewayError, rid_header, exc_info=None):
        headers = [rid_header, *err.headers.items()]
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

    def health(self, environ, start_response, request_id):
        return web.json_response(start_response, 200, {"status": "ok"}, [("x-request-id", request_id)])

    def metrics_page(self, environ, start_response, request_id):
        body = self.metrics.render(multiprocess=bool(environ.get("wsgi.multiprocess")))
        start_response("200 OK", [("Content-Type", metrics.CONTENT_TYPE), ("Content-Length", str(len(body))),
                                  ("x-request-id", request_id)])
        return [body]

    def admin_api(self, environ, start_response, request_id):
        return self.admin(environ, start_response)

    def list_models(self, environ, start_response, request_id):
        # with virtual keys the list needs one too, and shows only what that key may use
        vk = self.governance.authenticate(environ)
        query = parse_qs(environ.get("QUERY_STRING", ""))
        provider = (query.get("provider") or [None])[0]
        if provider is not None and provider not in self.config.providers:
            raise E.BadRequest(f"provider {provider} is not configured", param="provider")
        data = self.models.list(provider=provider)
        if vk is not None:
            data = self.governance.visible(vk, data)
        return web.json_response(start_response, 200, {"object": "list", "data": data},
                                 [("x-request-id", request_id)])

    def chat_completions(self, environ, start_response, request_id):
        ctx = RequestContext(request_id=request_id, deadline=time.monotonic() + self.deadline,
                             route=environ.get("PATH_INFO", ""), method=environ["REQUEST_METHOD"],
                             client_ip=accesslog.client_ip(environ))
        for obs in self.observers:
            obs.request_started(ctx)
        streaming = False
        try:
            # before the body is read: no parsing work for whoever has no key
            vk = self.governance.authenticate(environ)
            data = web.parse_json(web.read_body(environ, self.body_limit))
            self.governance.route_model(vk, data)
            req = schema.parse_request(data)
            ctx.stream = req.stream
            ctx.provider, ctx.model = req.provider, req.model
            request_type = CHAT_STREAM if req.stream else CHAT
            try:
                if vk is not None:
                    ctx.virtual_key = vk_label(vk)  # refused requests are logged under their key too
                    self.governance.authorize(environ, req, request_id=request_id)
                self.governance.remember_body(request_id, data)
                ctx.passthrough = environ.get("HTTP_X_BF_PASSTHROUGH_EXTRA_PARAMS", "").lower() in _TRUE
                ctx.extra_headers = forwarded_headers(environ)
                if req.stream:
                    if not environ.get("wsgi.multithread", True):
                        _warn_single_threaded()
                    stream = self.dispatcher.open_stream(req, ctx)
                    stream.on_close = self._finished
                    streaming = True
                    ctx.status = ctx.http_status = 200
                    self._stream_started(ctx)
                    start_response("200 OK", [*web.SSE_HEADERS, ("x-request-id", request_id)])
                    return stream
                result = self.dispatcher.complete(req, ctx)
            except E.ClientError as err:
                if not err.provider:
                    err.attach(provider=req.provider, model=req.model, request_type=request_type)
                raise
            ctx.status = 200
            return web.json_response(start_response, 200, result, [("x-request-id", request_id)])
        except E.GatewayError as err:
            ctx.status, ctx.error_type = err.status, err.type
            raise
        except Exception:
            ctx.status, ctx.error_type = 500, "internal_error"
            raise
        finally:
            if not streaming:
                self._finished(ctx)

    def _stream_started(self, ctx: RequestContext) -> None:
        for obs in self.observers:
            started = getattr(obs, "stream_started", None)
            try:
                if started is not None:
                    started(ctx)
            except Exception:  # noqa: BLE001 - the stream is open: an observer must not leak it
                log.exception("observer %r failed", obs)

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
    """``x-bf-eh-<name>: v`` request headers become upstream header ``<name>`` (never credentials)."""
    out = {}
    for key, value in environ.items():
        if key.startswith("HTTP_X_BF_EH_"):
            name = key[13:].lower().replace("_", "-")
            if name and name not in _BLOCKED_EXTRA_HEADERS:
                out[name] = value
    return out


def make_app(config=None) -> Gateway:
    """Build the gateway from a path, a config dict, a GatewayConfig, or None (environment)."""
    return Gateway(load(config))
