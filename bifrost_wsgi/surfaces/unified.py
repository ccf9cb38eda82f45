"""What the unified ``/v1`` routes beyond chat share around their own formats: a JSON body read, parsed and
bound with every error naming the route's request type; a whole answer with Bifrost's ``extra_fields``.
(Opening a stream or fetching a whole answer is ``inbound.run``, shared with every surface.)"""

from __future__ import annotations

from .. import web
from ..operations import Operation
from ..routing.router import Answer
from . import inbound


def accept_json(gateway, environ, ctx, parse, operation: Operation):
    """Authenticate, read and validate the JSON body with ``parse``, bind the request; the request."""
    ctx.request_type = operation.request_type
    with inbound.naming(ctx):
        inbound.authenticate(gateway, environ)
        req = parse(web.read_json(environ, gateway.body_limit))
    with inbound.naming(ctx, req):
        inbound.bind(gateway, environ, ctx, req, operation)
    return req


def reply(start_response, ctx, answer: Answer, body: dict, operation: Operation):
    """``body`` (the rendered answer) with ``extra_fields``, as the JSON response."""
    ctx.output = body
    body["extra_fields"] = answer.extra_fields(operation.request_type)
    return web.json_response(start_response, 200, body, [("x-request-id", ctx.request_id)])
