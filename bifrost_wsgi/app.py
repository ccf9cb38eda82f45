"""The WSGI application: a hand-written route table, and the one place that turns errors into responses."""

from __future__ import annotations

import logging
import sys
import time
import uuid

from . import errors as E, schema, web
from .config import GatewayConfig, load
from .dispatch import CHAT, CHAT_STREAM, Dispatcher, RequestContext
from .models import ModelLister

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
        }
        self.body_limit = config.client.max_request_body_bytes
        # objects with request_started(ctx) / request_finished(ctx): access log, metrics
        self.observers: list = []
        # gateway authentication (virtual keys); None when no virtual key is configured
        self.governance = None
        self.deadline = config.client.request_deadline

    def __call__(self, environ, start_response):
        request_id = environ.get("HTTP_X_REQUEST_ID") or uuid.uuid4().hex
        rid_header = ("x-request-id", request_id)
        try:
            path = environ.get("PATH_INFO") or "/"
            methods = self.routes.get(path)
            if methods is None:
                raise E.NotFound(f"no route for {path}")
            handler = methods.get(environ["REQUEST_METHOD"])
            if handler is None:
                allow = ", ".join(methods)
                raise E.MethodNotAllowed(f"method {environ['REQUEST_METHOD']} is not allowed on {path}",
                                         headers={"Allow": allow})
            return handler(environ, start_response, request_id)
        except E.GatewayError as err:
            return self.error_response(start_response, err, rid_header)
        except Exception:  # noqa: BLE001 - our own bug: generic 500, details in the log only
            log.exception("request %s: unhandled error", request_id)
            return self.error_response(start_response, E.InternalError(), rid_header, exc_info=sys.exc_info())

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

    def list_models(self, environ, start_response, request_id):
        from urllib.parse import parse_qs

        query = parse_qs(environ.get("QUERY_STRING", ""))
        provider = (query.get("provider") or [None])[0]
        if provider is not None and provider not in self.config.providers:
            raise E.BadRequest(f"provider {provider} is not configured", param="provider")
        data = self.models.list(provider=provider)
        return web.json_response(start_response, 200, {"object": "list", "data": data},
                                 [("x-request-id", request_id)])

    def chat_completions(self, environ, start_response, request_id):
        ctx = RequestContext(request_id=request_id, deadline=time.monotonic() + self.deadline,
                             route=environ.get("PATH_INFO", ""))
        for obs in self.observers:
            obs.request_started(ctx)
        streaming = False
        try:
            body = web.read_body(environ, self.body_limit)
            req = schema.parse_request(web.parse_json(body))
            ctx.stream = req.stream
            ctx.provider, ctx.model = req.provider, req.model
            request_type = CHAT_STREAM if req.stream else CHAT
            try:
                if self.governance is not None:
                    ctx.virtual_key = self.governance.authorize(environ, req)
                ctx.passthrough = environ.get("HTTP_X_BF_PASSTHROUGH_EXTRA_PARAMS", "").lower() in _TRUE
                ctx.extra_headers = forwarded_headers(environ)
                if req.stream:
                    stream = self.dispatcher.open_stream(req, ctx)
                    stream.on_close = self._finished
                    streaming = True
                    ctx.status = 200
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

    def _finished(self, ctx: RequestContext) -> None:
        for obs in self.observers:
            try:
                obs.request_finished(ctx)
            except Exception:  # noqa: BLE001 - an observer must never break a response
                log.exception("observer %r failed", obs)


def forwarded_headers(environ) -> dict:
    """``x-bf-eh-<name>: v`` request headers become upstream header ``<name>`` (never credentials)."""
    from .dispatch import _BLOCKED_EXTRA_HEADERS

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
