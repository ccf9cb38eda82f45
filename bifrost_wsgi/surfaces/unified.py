"""What the unified ``/v1`` routes beyond chat share around their own formats: every error names the route's
request type (and the target, once the body has said it); a JSON body is read, parsed and bound; a bound
request's stream is opened or its whole answer fetched; a whole answer gets Bifrost's ``extra_fields``."""

from __future__ import annotations

from contextlib import contextmanager

from .. import web
from ..errors import GatewayError
from ..operations import Operation
from ..routing import relay
from ..routing.relay import StreamState
from ..routing.router import Answer
from . import inbound


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


def accept_json(gateway, environ, ctx, parse, operation: Operation):
    """Authenticate, read and validate the JSON body with ``parse``, bind the request; the request."""
    ctx.request_type = operation.request_type
    with naming(ctx):
        inbound.authenticate(gateway, environ)
        req = parse(web.read_json(environ, gateway.body_limit))
    with naming(ctx, req):
        inbound.bind(gateway, environ, ctx, req, operation)
    return req


def answer_or_stream(gateway, environ, start_response, ctx, req, operation: Operation, *, encoder=None,
                     state_class: type = StreamState):
    """The relay's StreamBody for a streamed request (status line sent), else the router's Answer."""
    try:
        inbound.bind(gateway, environ, ctx, req, operation)
        if req.stream and encoder is not None:
            stream = relay.open_stream(gateway.router, req, ctx, encoder, operation, state_class=state_class)
            gateway.stream_started(ctx)
            start_response("200 OK", [*web.SSE_HEADERS, ("x-request-id", ctx.request_id)])
            return stream
        return gateway.router.complete(req, ctx, operation)
    except GatewayError as err:
        if not err.request_type:
            err.attach(provider=req.provider, model=req.model, request_type=ctx.request_type)
        raise


def reply(start_response, ctx, answer: Answer, body: dict, operation: Operation):
    """``body`` (the rendered answer) with ``extra_fields``, as the JSON response."""
    ctx.output = body
    body["extra_fields"] = {"request_type": operation.request_type, "provider": answer.provider,
                            "model_requested": answer.model, "latency": answer.latency_ms}
    return web.json_response(start_response, 200, body, [("x-request-id", ctx.request_id)])
