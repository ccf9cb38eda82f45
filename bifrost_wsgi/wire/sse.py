"""Server-sent events: an incremental decoder for upstream bytes and the encoder for what we send.

The decoder splits lines on CR, LF and CRLF itself, across chunk boundaries (a CR at the end of one chunk
and the LF at the start of the next are one line end). ``requests.iter_lines`` gets that case wrong
(psf/requests#3980) and ``str.splitlines`` also splits on U+2028, so neither is used. Field handling
follows the WHATWG event-stream rules: ``data`` lines join with "\\n", one space after the colon is
stripped, comment lines (leading ":") are ignored, a blank line dispatches the event.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Iterable, Iterator

from ..errors import UpstreamProtocolError

#: one SSE line may not grow beyond this (a runaway upstream must not exhaust memory)
MAX_LINE_BYTES = 16 * 1024 * 1024
_BOM = b"\xef\xbb\xbf"


@dataclass(slots=True)
class Event:
    data: str
    event: str = ""
    id: str | None = None


# A comment line between events (": ping"): upstreams send them to keep idle connections alive; the relay
# passes them on so that proxies in front of the client do not cut a long silence either.
KEEPALIVE = Event("", ":")


class SSEDecoder:
    """Feed it byte chunks as they arrive; it returns the events each chunk completes."""

    __slots__ = ("_buf", "_skip_lf", "_data", "_event", "_id", "_has_data", "_first")

    def __init__(self) -> None:
        self._buf = b""
        self._skip_lf = False  # the previous chunk ended in CR: a leading LF belongs to that line end
        self._data: list[str] = []
        self._event = ""
        self._id: str | None = None
        self._first = True

    def feed(self, chunk: bytes) -> list[Event]:
        if self._skip_lf and chunk[:1] == b"\n":
            chunk = chunk[1:]
        self._skip_lf = False
        buf = self._buf + chunk if self._buf else chunk
        if self._first:
            if len(buf) < 3 and _BOM.startswith(buf):
                self._buf = buf  # maybe a BOM cut in two: wait for the rest
                return []
            self._first = False
            if buf.startswith(_BOM):
                buf = buf[3:]
        if b"\r" not in buf:
            return self._feed_lf(buf)
        events: list[Event] = []
        start = 0
        n = len(buf)
        while start < n:
            cr = buf.find(b"\r", start)
            lf = buf.find(b"\n", start)
            if cr < 0 and lf < 0:
                break
            if cr < 0 or (0 <= lf < cr):
                end, nxt = lf, lf + 1
            elif cr == n - 1:
                end, nxt = cr, n
                self._skip_lf = True
            else:
                end = cr
                nxt = cr + 2 if buf[cr + 1:cr + 2] == b"\n" else cr + 1
            ev = self._line(buf[start:end])
            if ev is not None:
                events.append(ev)
            start = nxt
        self._buf = buf[start:]
        if len(self._buf) > MAX_LINE_BYTES:
            raise UpstreamProtocolError("upstream sent an SSE line larger than the limit")
        return events

    def _feed_lf(self, buf: bytes) -> list[Event]:
        """PERF: the usual case, LF line ends only: one split instead of a search per line, and ``data: ``
        lines handled inline."""
        # the most common read of all: exactly one complete "data: ..." event
        if buf[:6] == b"data: " and buf[-2:] == b"\n\n" and buf.count(b"\n") == 2 and not self._data \
                and not self._event:
            self._buf = b""
            return [Event(buf[6:-2].decode("utf-8", "replace"), "", self._id)]
        lines = buf.split(b"\n")
        self._buf = lines.pop()
        if len(self._buf) > MAX_LINE_BYTES:
            raise UpstreamProtocolError("upstream sent an SSE line larger than the limit")
        events: list[Event] = []
        data = self._data
        for raw in lines:
            if raw[:6] == b"data: ":
                data.append(raw[6:].decode("utf-8", "replace"))
            elif raw:
                ev = self._line(raw)
                if ev is not None:
                    events.append(ev)
                data = self._data
            elif data or self._event:
                events.append(Event("\n".join(data), self._event, self._id))
                data = self._data = []
                self._event = ""
        return events

    def at_boundary(self) -> bool:
        """Whether everything fed so far ended exactly at the end of an event (nothing half-read)."""
        return not (self._buf or self._data or self._event or self._skip_lf or self._first)

    def close(self) -> list[Event]:
        """End of input. A last line without its terminator still counts, and an event that lacks only its
        blank line is dispatched (leniency for upstreams that close right after ``data: [DONE]\n``); a cut
        JSON payload then fails to parse and is treated as malformed by the translator."""
        if self._buf:
            self._line(self._buf)
            self._buf = b""
        ev = self._line(b"")
        return [ev] if ev is not None else []

    def _line(self, raw: bytes) -> Event | None:
        if not raw:
            if not self._data and not self._event:
                return None
            ev = Event("\n".join(self._data), self._event, self._id)
            self._data = []
            self._event = ""
            return ev
        if raw[:1] == b":":
            # outside an event only: a comment inside one must not split it
            return KEEPALIVE if not self._data and not self._event else None
        line = raw.decode("utf-8", "replace")
        name, sep, value = line.partition(":")
        if sep and value[:1] == " ":
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self._id = value
        return None


def decode(chunks: Iterable[bytes]) -> Iterator[Event]:
    """Events from an iterable of byte chunks."""
    decoder = SSEDecoder()
    for chunk in chunks:
        if chunk:
            yield from decoder.feed(chunk)
    yield from decoder.close()


_ascii_json = json.JSONEncoder(separators=(",", ":")).encode
# in ASCII JSON: an escaped backslash or an escaped surrogate pair (kept, group 1), or a lone escaped surrogate
_SURROGATE_ESCAPES = re.compile(r"(\\\\|\\ud[89ab][0-9a-f]{2}\\ud[c-f][0-9a-f]{2})|\\ud[89a-f][0-9a-f]{2}")


def compact(obj) -> str:
    """Compact JSON, ASCII-only: what every event we send carries.

    A lone UTF-16 surrogate in a string (upstream JSON can carry one as ``"\\ud800"``) becomes U+FFFD: it is
    no text a client could decode. Only output with a surrogate escape (also how a character beyond U+FFFF
    is written) is scanned again; the scan keeps pairs and never starts inside an escaped backslash.
    """
    text = _ascii_json(obj)
    if "\\ud" not in text:
        return text
    return _SURROGATE_ESCAPES.sub(_keep_or_replace, text)


def _keep_or_replace(m: re.Match) -> str:
    return m.group(1) or "\\ufffd"

DONE = b"data: [DONE]\n\n"


def encode(obj) -> bytes:
    """One ``data:`` event with compact JSON. json never emits a raw CR/LF inside a string."""
    return b"data: " + compact(obj).encode() + b"\n\n"
