"""WSGI plumbing: bounded body reading, strict decoding and JSON parsing, status lines and response helpers."""

from __future__ import annotations

import json
import re
from http import HTTPStatus

from .errors import BadRequest, PayloadTooLarge, ValidationError
from .providers.base import dumps as compact_utf8

STATUS_LINES = {s.value: f"{s.value} {s.phrase}" for s in HTTPStatus}
STATUS_LINES[499] = "499 Client Closed Request"
STATUS_LINES[529] = "529 Site Overloaded"

READ_BLOCK = 256 * 1024


def status_line(code: int) -> str:
    return STATUS_LINES.get(code) or f"{code} Unknown"


def read_body(environ, limit: int) -> bytearray:
    """The request body, refusing with 413 before reading anything when it is declared too large and
    while reading when an undeclared (chunked) body grows past the limit.

    The blocks are appended to one buffer as they arrive, so the body is held once (a list of blocks and
    their join would hold it twice)."""
    buf = bytearray()
    for block in body_blocks(environ, limit):
        buf += block
    return buf


def body_blocks(environ, limit: int):
    """The request body in blocks as it arrives (uploads are parsed so), with read_body's 413 rules.
    Whatever the server raises while reading it (gunicorn raises its own parse errors for a malformed
    chunked body, an OSError for a client gone mid-body) is the client's framing: a 400, never a 500."""
    length = environ.get("CONTENT_LENGTH") or ""
    if length:
        try:
            n = int(length)
        except ValueError:
            raise BadRequest("invalid request format: invalid Content-Length header") from None
        if n > limit:
            raise PayloadTooLarge(f"request body of {n} bytes is larger than the limit of {limit} bytes")
        if n <= 0:
            return
    elif "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        n = None
    else:
        return
    stream = environ["wsgi.input"]
    total = 0
    while n is None or total < n:
        try:
            block = stream.read(READ_BLOCK if n is None else min(n - total, READ_BLOCK))
        except Exception as exc:  # noqa: BLE001 - the server's own exception classes (gunicorn.http.errors)
            raise BadRequest(f"invalid request format: the request body could not be read ({_reason(exc)})") \
                from None
        if not block:
            return
        total += len(block)
        if n is None and total > limit:
            raise PayloadTooLarge(f"request body is larger than the limit of {limit} bytes")
        yield block


def _reason(exc: Exception) -> str:
    """A read error in a few words: its class name (gunicorn's say what is wrong: InvalidChunkSize,
    ChunkMissingTerminator, NoMoreData), never its text, which may quote the client's bytes."""
    return type(exc).__name__


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


_decode = json.JSONDecoder(parse_constant=_reject_constant).decode

# A ``\uD800``-``\uDFFF`` escape: the only way a UTF-16 surrogate can still be in a strictly decoded body.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_SURROGATE = re.compile("[\ud800-\udfff]")


def read_json(environ, limit: int):
    """The request body parsed as JSON (see ``parse_json``), read with ``read_body``.

    PERF: memory. The body's bytes live only until they are decoded and the decoded text only until it is
    parsed, so a large body is never held as bytes, text and objects at once.
    """
    return parse_json(read_body(environ, limit))


def parse_json(body):
    """The request body (bytes-like) as JSON, decoded strictly.

    NaN and Infinity are refused (they are not JSON). Bytes that are not valid UTF-8 (or the UTF-16/32 a
    BOM announces), UTF-16 surrogates among them, are a 400 naming their position; a lone surrogate written
    as an escape (``"\\ud800"``) is a 400 naming the field that holds it: no such string gets past the
    request, so nothing later can fail to encode it.
    """
    if not body or body.isspace():
        raise BadRequest("invalid request format: request body is empty")
    try:
        # as json.loads(body) does, strictly; without building a decoder per request
        text = body.decode(json.detect_encoding(body))
    except UnicodeDecodeError as exc:
        raise BadRequest(f"invalid request format: request body is not valid {exc.encoding.upper()} "
                         f"(byte {exc.start})") from None
    del body  # the caller passed its only reference (read_json): free the bytes before parsing
    suspect = _has_lone_surrogate_escape(text)
    try:
        doc = _decode(text)
    except ValueError as exc:
        raise BadRequest(f"invalid request format: {exc}") from None
    except RecursionError:
        raise BadRequest("invalid request format: JSON nested too deeply") from None
    if suspect:
        del text
        try:
            where = _surrogate_path(doc)
        except RecursionError:
            raise BadRequest("invalid request format: JSON nested too deeply") from None
        if where is not None:
            path, holder = where
            raise ValidationError(f"invalid request format: {path or 'request body'}: {holder} a lone UTF-16 "
                                  "surrogate", param=path or None)
    return doc


def _has_lone_surrogate_escape(text: str) -> bool:
    """Whether ``text`` (JSON) holds a ``\\uD8xx`` escape that is not half of a pair.

    Escaped pairs are how many clients send emoji, so the candidates are checked one by one: a candidate
    preceded by an odd run of backslashes is escaped text, not an escape; a high half followed at once by a
    low half (or a low half right after one) is a pair.
    """
    if "\\ud" not in text and "\\uD" not in text:
        return False
    pair_end = -1
    for m in _SURROGATE_ESCAPE.finditer(text):
        start = m.start()
        run = start
        while run > 0 and text[run - 1] == "\\":
            run -= 1
        if (start - run) % 2:
            continue
        if m.group()[3] in "89abAB":
            low = _SURROGATE_ESCAPE.match(text, m.end())
            if low is not None and low.group()[3] not in "89abAB":
                pair_end = low.end()
                continue
            return True
        if start != pair_end - 6:
            return True
    return False


def _surrogate_path(doc, path: str = ""):
    """``(JSON path, "holds"/"has a key holding")`` of the first string in document order holding a UTF-16
    surrogate, or None. A key that holds one is reported at the path of the object it is a key of."""
    if isinstance(doc, str):
        return (path, "holds") if _SURROGATE.search(doc) else None
    if isinstance(doc, dict):
        for key, value in doc.items():
            if _SURROGATE.search(key):
                return path, "has a key holding"
            found = _surrogate_path(value, f"{path}.{key}" if path else key)
            if found is not None:
                return found
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            found = _surrogate_path(value, f"{path}[{i}]")
            if found is not None:
                return found
    return None


def _scrub(text: str) -> str:
    """``text`` with every UTF-16 surrogate replaced by U+FFFD (they cannot be encoded as UTF-8)."""
    return _SURROGATE.sub("\ufffd", text)


def dumps(obj) -> bytes:
    """Compact UTF-8 JSON. Upstream text can hold lone surrogates (``"\\ud800"`` decodes to one): they are
    replaced, so an odd answer never turns into an error."""
    text = compact_utf8(obj)
    try:
        return text.encode()
    except UnicodeEncodeError:
        return _scrub(text).encode()


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
