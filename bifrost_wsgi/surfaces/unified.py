"""What the unified ``/v1`` routes beyond chat share around their own formats: bind the parsed request, then
open its stream or get its whole answer, with errors named after the request; and Bifrost's
``extra_fields`` on a whole answer."""

from __future__ import annotations

from .. import web
from ..errors import GatewayError
from ..operations import Operation
from ..routing import relay
from ..routing.relay import StreamState
from ..routing.router import Answer
from . import inbound


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
