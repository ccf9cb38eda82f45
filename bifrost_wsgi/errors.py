"""The exception hierarchy and the one place that turns an error into the Bifrost error envelope.

Two questions are kept apart on purpose: the class says *who is at fault and what the client is told*
(status, type); ``policy.py`` decides *whether to retry or fall back*. Status and type are class
attributes; instances carry only what varies (message, param, code, upstream details).
"""

from __future__ import annotations

from .redaction import redact


class GatewayError(Exception):
    """Root of every error the gateway answers with."""

    status = 500
    type = "internal_error"
    is_bifrost_error = True
    #: set on errors whose envelope carries a top-level ``type`` too (timeouts, as Bifrost answers them)
    top_level_type = False

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        status: int | None = None,
        type: str | None = None,
        retry_after: float | None = None,
        headers: dict | None = None,
        event_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
        if status is not None:
            self.status = status
        if type is not None:
            self.type = type
        self.retry_after = retry_after
        self.headers = headers or {}
        self.event_id = event_id
        # filled by dispatch once the target is known
        self.provider = ""
        self.model_requested = ""
        self.request_type = ""

    def attach(self, *, provider: str, model: str, request_type: str) -> "GatewayError":
        self.provider, self.model_requested, self.request_type = provider, model, request_type
        return self

    def to_dict(self) -> dict:
        """The Bifrost error envelope (README, "Validation and errors"); empty optional fields are omitted."""
        error = {"message": redact(self.message)}
        if self.type:
            error["type"] = self.type
        if self.code is not None and self.code != "":
            error["code"] = redact(str(self.code))
        if self.param:
            error["param"] = redact(self.param)
        if self.event_id:
            error["event_id"] = self.event_id
        body = {
            "is_bifrost_error": self.is_bifrost_error,
            "status_code": self.status,
            "error": error,
            "extra_fields": {
                "provider": self.provider,
                "model_requested": self.model_requested,
                "request_type": self.request_type,
            },
        }
        if self.top_level_type:
            body["type"] = self.type
        if self.event_id:
            body["event_id"] = self.event_id
        return body

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status}, type={self.type!r}, message={self.message!r})"


# --- our own refusals of the client's request ------------------------------------------------------


class ClientError(GatewayError):
    """A 4xx the gateway itself decides; never retried, never failed over."""

    status = 400
    type = "invalid_request_error"
    # Bifrost says false here for errors its own request handling raises
    is_bifrost_error = False


class BadRequest(ClientError):
    pass


class ValidationError(BadRequest):
    """The body breaks the request schema; ``param`` is the JSON path of the first violation."""


class UnknownProvider(BadRequest):
    pass


class NoKeyForModel(BadRequest):
    pass


class UnsupportedOperation(BadRequest):
    """The provider has no API for this kind of request (README, "Validation and errors")."""

    type = "unsupported_operation"

    def __init__(self, message: str, **kw) -> None:
        kw.setdefault("code", "unsupported_operation")
        super().__init__(message, **kw)


class UnsupportedParameter(BadRequest):
    """A translator cannot honour a parameter whose silent loss would change the answer."""


class Unauthorized(ClientError):
    status = 401
    type = "authentication_error"


class Forbidden(ClientError):
    status = 403
    type = "permission_error"


class NotFound(ClientError):
    status = 404
    type = "not_found"


class MethodNotAllowed(ClientError):
    status = 405
    type = "method_not_allowed"


class PayloadTooLarge(ClientError):
    status = 413
    type = "request_too_large"


class UnsupportedMediaType(ClientError):
    status = 415
    type = "unsupported_media_type"


# --- the gateway cannot take more work --------------------------------------------------------------


class QueueFull(GatewayError):
    status = 503
    type = "queue_full"

    def __init__(self, message: str = "request dropped: queue is full", **kw) -> None:
        kw.setdefault("code", "queue_full")
        kw.setdefault("retry_after", 1)
        super().__init__(message, **kw)


class CircuitOpen(GatewayError):
    status = 503
    type = "circuit_open"


# --- the provider answered with an error -------------------------------------------------------------


class ProviderError(GatewayError):
    """The upstream answered with an HTTP error; its status and message are passed through."""

    is_bifrost_error = False
    type = "api_error"


class ProviderRejected(ProviderError):
    status = 400
    type = "invalid_request_error"


class ContextLengthExceeded(ProviderRejected):
    pass


class ContentFiltered(ProviderRejected):
    pass


class ProviderAuthFailed(ProviderError):
    status = 401
    type = "authentication_error"


class ModelNotFound(ProviderError):
    status = 404
    type = "not_found_error"


class ProviderRateLimited(ProviderError):
    status = 429
    type = "rate_limit_error"


class ProviderOverloaded(ProviderError):
    status = 503
    type = "overloaded_error"


class ProviderServerError(ProviderError):
    status = 500
    type = "api_error"


# --- no usable HTTP answer -----------------------------------------------------------------------------


class UpstreamError(GatewayError):
    pass


class UpstreamConnectError(UpstreamError):
    status = 502
    type = "upstream_connection_error"


class UpstreamTimeout(UpstreamError):
    status = 504
    type = "request_timed_out"
    top_level_type = True


class UpstreamProtocolError(UpstreamError):
    status = 502
    type = "upstream_protocol_error"


class ClientGone(GatewayError):
    """The client closed its connection while its request waited for the upstream: nobody is left to answer,
    so nothing is retried or failed over (nginx's 499)."""

    status = 499
    type = "client_closed_request"


# What a pure translator raises when the upstream's JSON has an unexpected shape (a list where an object
# was documented, a string for a count, …). The core turns these into UpstreamProtocolError: a malformed
# answer is the provider's fault, so it gets a 502 and retries and fallbacks, not our generic 500.
SHAPE_ERRORS = (TypeError, AttributeError, KeyError, IndexError, ValueError)


class InternalError(GatewayError):
    """Our own bug: the client sees a generic message, the log gets the traceback."""

    def __init__(self, message: str = "internal server error", **kw) -> None:
        super().__init__(message, **kw)


# Upstream HTTP status → error class. Status first; adapters refine by body afterwards
# (context length, content filter) via ``refine``.
_BY_STATUS = {
    400: ProviderRejected,
    401: ProviderAuthFailed,
    403: ProviderAuthFailed,
    404: ModelNotFound,
    409: ProviderRejected,
    413: ProviderRejected,
    422: ProviderRejected,
    429: ProviderRateLimited,
    503: ProviderOverloaded,
    529: ProviderOverloaded,  # Anthropic's "overloaded"
}

_CONTEXT_MARKERS = (
    "context_length_exceeded",
    "context length",
    "context window",
    "maximum context",
    "prompt is too long",
    "too many tokens",
    "input is too long",
    "exceeds the maximum number of tokens",
    "context limit",
)
_CONTENT_FILTER_CODES = ("content_filter", "content_policy_violation")


def classify(status: int, *, code: str | None = None, message: str = "") -> type[ProviderError]:
    """The single status table: which ProviderError class an upstream error status maps to."""
    if status == 400 or status == 413:
        c = (code or "").lower()
        if c in _CONTENT_FILTER_CODES:
            return ContentFiltered
        low = f"{c} {message}".lower()
        if any(m in low for m in _CONTEXT_MARKERS):
            return ContextLengthExceeded
    cls = _BY_STATUS.get(status)
    if cls is not None:
        return cls
    if status >= 500:
        return ProviderServerError
    return ProviderRejected


def provider_error(
    status: int,
    message: str,
    *,
    type: str | None = None,
    code=None,
    param=None,
    retry_after: float | None = None,
    event_id: str | None = None,
) -> ProviderError:
    """Build the ProviderError for an upstream error answer, keeping its status, type, code and param."""
    code = None if code is None else redact(str(code))
    message = redact(message)
    cls = classify(status, code=code, message=message)
    param = redact(param) if isinstance(param, str) else None
    return cls(
        message or f"upstream returned status {status}",
        status=status,
        type=redact(type) or None,
        code=code,
        param=param,
        retry_after=retry_after,
        event_id=event_id,
    )
