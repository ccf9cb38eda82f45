"""What every inference route does with a client's request around its own format: authenticate before the
body is read, bind the parsed request to the context (target, request type, the gateway's ``x-bf-*``
headers, the client's socket), and authorise it against the virtual key."""

from __future__ import annotations

import logging
from contextlib import contextmanager

from .. import web
from ..errors import BadRequest, GatewayError
from ..governance.virtual_keys import label
from ..operations import Operation
from ..routing import relay
from ..routing.upstream import BLOCKED_CLIENT_HEADERS
from ..schema import split_model

log = logging.getLogger("bifrost_wsgi")

_TRUE = ("true", "1", "yes")


def authenticate(gateway, environ):
    """Before the body is read: no parsing work for whoever has no key. The virtual key, or None."""
    return gateway.governance.authenticate(environ)


def route_model(gateway, key, body, ctx) -> None:
    """Governance's part of a parsed body: a model without ``provider/`` chosen among the key's provider
    configs, and the body kept for the request log."""
    gateway.governance.route_model(key, body)
    gateway.governance.remember_body(ctx.request_id, body)


def read_json(gateway, environ):
    """Authenticate, then read and parse the JSON body."""
    authenticate(gateway, environ)
    return web.parse_json(web.read_body(environ, gateway.body_limit))


def header_fallbacks(environ) -> list[tuple[str, str]]:
    """``x-bf-fallbacks: openai/gpt-4o, gemini/gemini-2.5-pro``: the drop-in routes' fallbacks, whose native
    bodies have no place for them."""
    out = []
    for item in environ.get("HTTP_X_BF_FALLBACKS", "").split(","):
        item = item.strip()
        if not item:
            continue
        try:
            out.append(split_model(item))
        except BadRequest:
            raise BadRequest(f"x-bf-fallbacks: {item!r} must be in provider/model format",
                             param="x-bf-fallbacks") from None
    return out


def bind(gateway, environ, ctx, req, operation: Operation) -> None:
    """Record what the request is, check it against the virtual key, and take the gateway's own headers."""
    ctx.stream = bool(getattr(req, "stream", False))
    ctx.request_type = operation.request_type_for(stream=ctx.stream)
    ctx.provider, ctx.model = req.provider, req.model
    ctx.request = req
    key = gateway.governance.authenticate(environ)  # cached in environ: no second lookup
    if key is not None:
        ctx.virtual_key = label(key)  # a refused request is logged under its key too
    gateway.governance.authorize(environ, req, request_id=ctx.request_id)
    ctx.passthrough = environ.get("HTTP_X_BF_PASSTHROUGH_EXTRA_PARAMS", "").lower() in _TRUE
    ctx.extra_headers = forwarded_headers(environ)
    ctx.client_socket = environ.get("gunicorn.socket")
    if ctx.stream and not environ.get("wsgi.multithread", True):
        _warn_single_threaded()


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


_warned_single_threaded = False


def _warn_single_threaded() -> None:
    """Once per process: a stream pins its worker, and gunicorn's sync worker kills it at --timeout."""
    global _warned_single_threaded
    if not _warned_single_threaded:
        _warned_single_threaded = True
        log.warning("streaming on a server that is not multithreaded (gunicorn's sync worker?): each stream "
                    "blocks the whole worker and the sync worker kills streams longer than its timeout; "
                    "use gthread workers (deploy/gunicorn.conf.py, or the bifrost-wsgi command)")


@contextmanager
def naming(ctx, req=None):
    """Errors raised inside get ``extra_fields`` (request type, provider, model) unless they have them."""
    try:
        yield
    except GatewayError as err:
        if not err.request_type:
            err.attach(provider=getattr(req, "provider", ""), model=getattr(req, "model", ""),
                       request_type=ctx.request_type)
        raise


def run(gateway, environ, start_response, ctx, req, operation: Operation, encoder=None, *,
        state_class: type = relay.StreamState):
    """Bind the request, then either open its stream (the status line sent: returns the stream body) or
    get its whole answer (returns the Answer for the surface to render). Errors name the target tried."""
    with naming(ctx, req):
        bind(gateway, environ, ctx, req, operation)
        if req.stream and encoder is not None:
            stream = relay.open_stream(gateway.router, req, ctx, encoder, operation, state_class=state_class)
            gateway.stream_started(ctx)
            start_response("200 OK", [("Content-Type", encoder.media_type), *web.SSE_HEADERS[1:],
                                       ("x-request-id", ctx.request_id)])
            return stream
        answer = gateway.router.complete(req, ctx, operation)
    ctx.output = answer.body
    return answer
