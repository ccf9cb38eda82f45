"""The access log: one JSON line per request on logger ``bifrost_wsgi.access``, written when it ends.

A line carries who asked (request id, client address, virtual key id or name), what was asked (method,
route, provider, model, stream), what happened (status, error type, attempts, retries, fallback index,
client disconnect) and what it cost (latency, time to first token, tokens in and out, chunks). It is built
from RequestContext fields only, none of which holds a key, a header value other than the request id, or any
prompt or completion text: there is nothing secret or personal beyond the client address to leak.

The library never configures logging (an app that mounts the gateway keeps its own); the console script and
``bifrost_wsgi.wsgi`` give this logger its own handler that writes the bare JSON line to stdout
(``logsetup.configure``). Fields without a value are left out; ``status`` is the request's outcome (for a
stream that failed after its first byte, the in-band error's status) and ``http_status`` is added when the
status line said otherwise.
"""

from __future__ import annotations

import json
import logging
import os
import time

log = logging.getLogger("bifrost_wsgi.access")

_dumps = json.JSONEncoder(separators=(",", ":")).encode  # ASCII only: any log pipeline takes it


def _trusted_proxies(environ=None) -> frozenset[str] | None:
    """Peers whose X-Real-IP / X-Forwarded-For we believe: gunicorn's ``FORWARDED_ALLOW_IPS`` (same
    default, "127.0.0.1,::1"); None means every peer ("*")."""
    env = os.environ if environ is None else environ
    raw = env.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
    items = {item.strip() for item in raw.split(",") if item.strip()}
    return None if "*" in items else frozenset(items)


TRUSTED_PROXIES = _trusted_proxies()


def client_ip(environ) -> str:
    """The client's address: the one the proxy saw when the peer is a trusted proxy (or a unix socket),
    else the peer's own."""
    peer = environ.get("REMOTE_ADDR") or ""
    if TRUSTED_PROXIES is not None and peer and peer not in TRUSTED_PROXIES:
        return peer
    forwarded = environ.get("HTTP_X_REAL_IP", "").strip()
    if not forwarded:
        # the right-most entry is the one our proxy appended; those before it are the client's say-so
        forwarded = environ.get("HTTP_X_FORWARDED_FOR", "").rpartition(",")[2].strip()
    return forwarded or peer


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 1)


_second: tuple[int, str] = (-1, "")


def _timestamp(now: float) -> str:
    global _second
    sec, text = _second
    if int(now) != sec:  # the formatted second is reused for every line within it
        sec, text = int(now), time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
        _second = (sec, text)
    return f"{text}.{int(now * 1000) % 1000:03d}Z"


_pid = os.getpid()


def _forked() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_forked)


def record(ctx, *, now: float | None = None) -> dict:
    """The access-log fields of a finished request."""
    ended = time.monotonic() if now is None else now
    rec = {
        "time": _timestamp(time.time()),
        "request_id": ctx.request_id,
        "method": ctx.method,
        "route": ctx.route,
        "status": ctx.status,
        "latency_ms": _ms(ended - ctx.started),
        "client_ip": ctx.client_ip,
        "pid": _pid,
    }
    if ctx.http_status and ctx.http_status != ctx.status:
        rec["http_status"] = ctx.http_status
    if ctx.provider:
        usage = ctx.usage or {}
        rec.update({
            "provider": ctx.provider,
            "model": ctx.model,
            "stream": ctx.stream,
            "ttft_ms": _ms(ctx.ttft),
            "input_tokens": usage.get("prompt_tokens"),
            "output_tokens": usage.get("completion_tokens"),
            "attempts": ctx.attempts,
            "retries": ctx.retries,
            "fallback_index": ctx.fallback_index,
            "chunks": ctx.chunks if ctx.stream else None,
            "client_disconnected": ctx.client_disconnected,
            "virtual_key": ctx.virtual_key,
        })
    if ctx.error_type:
        rec["error_type"] = ctx.error_type
    return {k: v for k, v in rec.items() if v is not None and v != ""}


class AccessLog:
    """The access-log observer."""

    def request_started(self, ctx) -> None:
        pass

    def stream_started(self, ctx) -> None:
        pass

    def request_finished(self, ctx) -> None:
        if not log.isEnabledFor(logging.INFO):
            return
        line = _dumps(record(ctx))
        handler = _own_handler()
        if handler is None:
            log.info(line)
            return
        # PERF: our own stdout handler is the only destination (logsetup.configure): write the line
        # through it as its "%(message)s" format would, without building a LogRecord (a third of the cost)
        handler.acquire()
        try:
            handler.stream.write(line + "\n")
            handler.stream.flush()
        except Exception:  # noqa: BLE001 - as logging does: a log line must never fail the request
            handler.handleError(logging.makeLogRecord({"msg": line}))
        finally:
            handler.release()


def _own_handler():
    """logsetup's handler, when it is where every access line goes (no other handler, no filter)."""
    handlers = log.handlers
    if len(handlers) == 1 and not log.filters and not log.propagate:
        handler = handlers[0]
        if getattr(handler, "_bifrost", False) and not handler.filters and handler.level <= logging.INFO:
            return handler
    return None
