"""WSGI plumbing: bounded body reading, JSON parsing, status lines and response helpers."""

from __future__ import annotations

import json
from http import HTTPStatus

from .errors import BadRequest, PayloadTooLarge
from .providers.base import dumps as compact_utf8

STATUS_LINES = {s.value: f"{s.value} {s.phrase}" for s in HTTPStatus}
STATUS_LINES[499] = "499 Client Closed Request"
STATUS_LINES[529] = "529 Site Overloaded"

READ_BLOCK = 256 * 1024


def status_line(code: int) -> str:
    return STATUS_LINES.get(code) or f"{code} Unknown"


def read_body(environ, limit: int) -> bytes:
    """The request body, refusing with 413 before reading anything when it is declared too large and
    while reading when an undeclared (chunked) body grows past the limit."""
    parts = list(body_blocks(environ, limit))
    return parts[0] if len(parts) == 1 else b"".join(parts)


def body_blocks(environ, limit: int):
    """The request body in blocks as it arrives (uploads are parsed so), with read_body's 413 rules."""
    length = environ.get("CONTENT_LENGTH") or ""
    stream = environ["wsgi.input"]
    if length:
        try:
            n = int(length)
        except ValueError:
            raise BadRequest("invalid request format: invalid Content-Length header") from None
        if n > limit:
            raise PayloadTooLarge(f"request body of {n} bytes is larger than the limit of {limit} bytes")
        left = n
        while left > 0:
            block = stream.read(min(left, READ_BLOCK))
            if not block:
                return
            left -= len(block)
            yield block
        return
    if "chunked" not in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        return
    total = 0
    while True:
        block = stream.read(READ_BLOCK)
        if not block:
            return
        total += len(block)
        if total > limit:
            raise PayloadTooLarge(f"request body is larger than the limit of {limit} bytes")
        yield block


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


_decode = json.JSONDecoder(parse_constant=_reject_constant).decode


def parse_json(body: bytes):
    """The request body as JSON; NaN and Infinity are refused (they are not JSON)."""
    if not body.strip():
        raise BadRequest("invalid request format: request body is empty")
    try:
        # as json.loads(body, parse_constant=...) does, without building a decoder per request
        return _decode(body.decode(json.detect_encoding(body), "surrogatepass"))
    except UnicodeDecodeError:
        raise BadRequest("invalid request format: request body is not UTF-8") from None
    except ValueError as exc:
        raise BadRequest(f"invalid request format: {exc}") from None
    except RecursionError:
        raise BadRequest("invalid request format: JSON nested too deeply") from None


def dumps(obj) -> bytes:
    return compact_utf8(obj).encode()


def json_response(start_response, status: int, obj, headers: list | None = None):
    body = dumps(obj)
    out = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    if headers:
        out.extend(headers)
    start_response(status_line(status), out)
    return [body]


SSE_HEADERS = [
    ("Content-Type", "text/event-stream"),
    ("Cache-Control", "no-cache"),
    ("X-Accel-Buffering", "no"),
]
