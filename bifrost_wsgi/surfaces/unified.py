"""What the unified API's non-chat routes share around their own work: every error names the route's
request type (and the target, once the body has said it), and a JSON body is read, parsed and bound."""

from __future__ import annotations

from contextlib import contextmanager

from .. import web
from ..errors import GatewayError
from ..operations import Operation
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
        req = parse(web.parse_json(web.read_body(environ, gateway.body_limit)))
    with naming(ctx, req):
        inbound.bind(gateway, environ, ctx, req, operation)
    return req
