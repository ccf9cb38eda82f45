"""Governance refusals: budgets (402) and rate limits (429), in Bifrost's envelope with a top-level ``type``."""

from __future__ import annotations

from ..errors import ClientError, NotFound


class BudgetExceeded(ClientError):
    status = 402
    type = "budget_exceeded"
    top_level_type = True

    def __init__(self, message: str, **kw) -> None:
        kw.setdefault("code", "budget_exceeded")
        super().__init__(message, **kw)


class RateLimited(ClientError):
    """``type`` is the decision: ``request_limited``, ``token_limited`` or ``rate_limited`` (both)."""

    status = 429
    type = "rate_limited"
    top_level_type = True


class AdminUnauthorized(ClientError):
    status = 401
    type = "authentication_error"


class AdminForbidden(ClientError):
    status = 403
    type = "permission_error"


class Conflict(ClientError):
    status = 409
    type = "conflict"


class LogNotFound(NotFound):
    pass
