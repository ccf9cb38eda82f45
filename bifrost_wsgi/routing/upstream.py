"""One upstream call's pieces, shared by complete answers and streams: the configured provider at run time,
building and sending its request, reading its error answer, and telling a malformed answer from our bug.

Translators are pure; what they raise says whose fault a failure is:
* a GatewayError they raise on purpose (an in-band error event, a refused parameter) stands as it is;
* ``KeyError``/``IndexError``/``ValueError`` mean the upstream's answer lacks a documented member or
  element, or holds a value that does not parse: a malformed answer (502), retried and failed over like any
  other broken answer;
* anything else (``TypeError``, ``AttributeError``, …) is a bug in our own code: a 500 with the traceback
  in the log, not retried, not failed over, not counted against the provider's circuit (one bug must not
  turn into a paid call on every fallback).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from .. import errors as E, transport
from ..config import ProviderConfig
from ..providers import credentials
from ..providers.base import Target
from ..transport import UpstreamRequest
from . import policy
from .admission import Slots

log = logging.getLogger("bifrost_wsgi.upstream")

MALFORMED = (KeyError, IndexError, ValueError)

# Headers the upstream request never takes from a client's x-bf-eh-*: credentials, framing, hop-by-hop and
# forwarding headers belong to us (and to the operator's extra_headers, which win over the client's).
BLOCKED_CLIENT_HEADERS = frozenset({
    "authorization", "proxy-authorization", "x-api-key", "api-key", "x-goog-api-key", "cookie", "host",
    "content-length", "transfer-encoding", "connection", "content-type", "x-amz-date",
    "x-amz-security-token", "x-amz-content-sha256", "anthropic-version", "te", "upgrade", "keep-alive",
    "proxy-connection", "trailer", "expect", "forwarded", "x-forwarded-for", "x-forwarded-host",
    "x-forwarded-proto", "x-forwarded-port", "x-real-ip", "via", "user-agent", "accept-encoding",
})


@dataclass(slots=True)
class Runtime:
    """A configured provider with its adapter and admission slots."""

    conf: ProviderConfig
    adapter: object
    slots: Slots
    headers: dict = field(default_factory=dict)  # the row's fixed headers + network_config.extra_headers


def prepare(translator, target: Target, req, ctx, *, stream: bool) -> UpstreamRequest:
    """The upstream request for one attempt, with headers and credentials: the client's forwarded headers
    first, then the operator's (which win), then the key."""
    upreq = translate(target, translator.build_request, req, target, stream=stream, passthrough=ctx.passthrough)
    return finish_request(upreq, target, ctx)


def finish_request(upreq: UpstreamRequest, target: Target, ctx) -> UpstreamRequest:
    """Headers and credentials on a built request (for translators that build several per attempt too)."""
    headers = upreq.headers
    operator = target.extra_headers
    if ctx.extra_headers:
        taken = {k.lower() for k in operator}
        for k, v in ctx.extra_headers.items():
            if k not in taken:
                headers[k] = v
    for k, v in operator.items():
        headers[k] = v
    return credentials.apply(upreq, target, time.time())


def send(rt: Runtime, target: Target, upreq: UpstreamRequest, *, timeout: float, stream: bool,
         read_timeout: float | None = None, client=None) -> transport.UpstreamResponse:
    """Send and wait for the headers; an error status becomes the provider's error (its body read)."""
    resp = transport.send(upreq, timeout=timeout, proxy=rt.conf.proxy, stream=stream, read_timeout=read_timeout,
                          client=client)
    if resp.status >= 400:
        body = resp.read()
        try:
            err = rt.adapter.parse_error(resp.status, resp.headers, body, target)
        except E.GatewayError as exc:
            err = exc
        except MALFORMED as exc:
            log.warning("%s error body has an unexpected shape (%s)", target.provider, exc, exc_info=True)
            err = E.provider_error(resp.status, body.decode("utf-8", "replace").strip()[:1000])
        except Exception:  # noqa: BLE001 - our bug reading an error: the status still speaks
            log.exception("reading the error answer of %s failed", target.provider)
            err = E.provider_error(resp.status, f"upstream returned status {resp.status}")
        if err.retry_after is None:
            err.retry_after = policy.parse_retry_after(resp.headers)
        raise err
    return resp


def translate(target: Target, fn, *args, **kwargs):
    """Call a translator, sorting what it raises by whose fault it is (see the module's docstring)."""
    try:
        return fn(*args, **kwargs)
    except E.GatewayError:
        raise
    except MALFORMED as exc:
        raise malformed(target.provider, exc) from None
    except Exception as exc:  # noqa: BLE001 - our own bug
        raise bug(target.provider, exc) from None


def malformed(provider: str, exc: Exception) -> E.UpstreamProtocolError:
    """The error for an upstream answer a translator could not read; the traceback goes to the log in case
    the translator, not the provider, is wrong."""
    log.warning("%s answer has an unexpected shape (%s: %s)", provider, type(exc).__name__, exc, exc_info=True)
    return E.UpstreamProtocolError(f"{provider} answer has an unexpected shape")


def bug(provider: str, exc: Exception) -> E.InternalError:
    log.error("translating for %s failed: a bug in the gateway", provider, exc_info=exc)
    return E.InternalError()
