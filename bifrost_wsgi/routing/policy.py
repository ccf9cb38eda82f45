"""What to do after a failed attempt: retry the same target, move to the next, or stop.

The error class says who is at fault; this table says what follows from it. One row per kind of failure,
each with the reason. Waits come from ``Retry-After`` when the provider sent one, else exponential backoff
with ±20 % jitter.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

from .. import errors as E


@dataclass(frozen=True, slots=True)
class Action:
    retry: bool  # try the same target again (within max_retries)
    fallback: bool  # move on to the next target when this one is given up


RETRY_AND_FALL_BACK = Action(True, True)
FALL_BACK = Action(False, True)
STOP = Action(False, False)

_RETRYABLE_STATUS = {429, 500, 502, 503, 504, 529}
_RATE_LIMIT_PHRASES = (
    "rate limit", "rate_limit", "ratelimit", "too many requests", "quota exceeded", "quota_exceeded",
    "request limit", "throttled", "throttling", "rate exceeded", "limit exceeded", "requests per",
    "rpm exceeded", "tpm exceeded", "tokens per minute", "requests per minute", "requests per second",
    "api rate limit", "usage limit", "concurrent requests limit",
)

# Ordered: the first matching class decides.
_TABLE: tuple[tuple[type, Action], ...] = (
    # A safety refusal must not be routed around by asking another provider.
    (E.ContentFiltered, STOP),
    # Another model may have a larger window; the same one will refuse again.
    (E.ContextLengthExceeded, FALL_BACK),
    # A timed-out target is likely to time out again; waiting twice doubles the client's wait.
    (E.UpstreamTimeout, FALL_BACK),
    # Refused/reset before any answer, or a garbled answer: transient more often than not.
    (E.UpstreamConnectError, RETRY_AND_FALL_BACK),
    (E.UpstreamProtocolError, RETRY_AND_FALL_BACK),
    # Our own queue or an open circuit: another provider may have room.
    (E.QueueFull, FALL_BACK),
    (E.CircuitOpen, FALL_BACK),
    # The client's request itself is wrong (our validation, unsupported parameter): nobody can help.
    (E.ClientError, STOP),
    # Nobody is left to answer.
    (E.ClientGone, STOP),
    # Our own bug: do not spread it over every provider (and pay for each call).
    (E.InternalError, STOP),
)


def decide(err: Exception) -> Action:
    for cls, action in _TABLE:
        if isinstance(err, cls):
            return action
    if isinstance(err, E.ProviderError):
        # 429 and 5xx are transient; other 4xx (401/403/404/422, a 400) are this target's problem,
        # unless the body says it is a rate limit in other words.
        if err.status in _RETRYABLE_STATUS or is_rate_limit_text(err):
            return RETRY_AND_FALL_BACK
        return FALL_BACK
    return STOP  # our own bug: do not spread it over every provider


def is_rate_limit_text(err: E.GatewayError) -> bool:
    text = f"{err.message} {err.type} {err.code or ''}".lower()
    return any(p in text for p in _RATE_LIMIT_PHRASES)


def backoff(attempt: int, *, initial: float, maximum: float) -> float:
    """Wait before retry number ``attempt`` (1, 2, …): min(initial·2^(n-1), max) with ±20 % jitter."""
    base = min(initial * (2 ** (attempt - 1)), maximum)
    return min(base * random.uniform(0.8, 1.2), maximum)


def parse_retry_after(headers) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date)."""
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(float(ms) / 1000.0, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime  # rare (HTTP-date form) and slow to import

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(when.timestamp() - time.time(), 0.0)
