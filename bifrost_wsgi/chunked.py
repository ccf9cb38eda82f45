"""HTTP/1.1 chunked transfer coding (RFC 9112 §7.1): an incremental decoder for upstream bodies.

PERF: streamed answers are read below urllib3 (transport.py): one ``read1`` per arrival, decoded here,
instead of urllib3's readline + two reads + three generator layers per chunk. Token streams arrive as one
small chunk per read, so ``feed`` tries that case first with a handful of C-level byte operations; anything
else (a chunk cut across reads, several chunks in one read, extensions, trailers) takes the general path,
which yields data as it arrives, so one huge chunk is never held whole in memory.

Lenient where the usual clients are (a bare LF ends a size or trailer line, chunk extensions are ignored),
strict where leniency would corrupt the body (the size must be hex, data must be followed by CRLF).
"""

from __future__ import annotations

from .errors import UpstreamProtocolError

_HEX = b"0123456789abcdefABCDEF"
MAX_LINE = 4096  # a size or trailer line longer than this is not HTTP we accept

_SIZE, _DATA, _DATA_END, _TRAILER, _DONE = range(5)


class ChunkedDecoder:
    """Feed it the bytes of a chunked body as they arrive; it returns the body bytes they complete."""

    __slots__ = ("_state", "_buf", "_left", "done")

    def __init__(self) -> None:
        self._state = _SIZE
        self._buf = b""
        self._left = 0  # data bytes of the current chunk still to come
        self.done = False  # the last chunk and the trailer section are in

    def feed(self, data: bytes) -> bytes:
        if self._state == _SIZE and not self._buf:
            # the common arrival: exactly one whole chunk, "<hex>\r\n<data>\r\n"
            eol = data.find(b"\r\n", 0, 18)
            if eol > 0:
                size = data[:eol]
                if not size.translate(None, _HEX):
                    n = int(size, 16)
                    if n and len(data) == eol + n + 4 and data[-2:] == b"\r\n":
                        return data[eol + 2:-2]
        return self._feed(data)

    def _feed(self, data: bytes) -> bytes:
        if self._state == _DONE:
            if data:
                raise UpstreamProtocolError("upstream sent data after the end of the chunked body")
            return b""
        buf = self._buf + data if self._buf else data
        out: list[bytes] = []
        pos, end = 0, len(buf)
        while pos < end:
            state = self._state
            if state == _DATA:
                take = min(self._left, end - pos)
                out.append(buf[pos:pos + take])
                pos += take
                self._left -= take
                if not self._left:
                    self._state = _DATA_END
                continue
            if state == _DATA_END:
                if end - pos < 2:
                    break
                if buf[pos:pos + 2] != b"\r\n":
                    raise UpstreamProtocolError("upstream sent chunk data that does not match its size")
                pos += 2
                self._state = _SIZE
                continue
            eol = buf.find(b"\n", pos)
            if eol < 0:
                if end - pos > MAX_LINE:
                    raise UpstreamProtocolError("upstream sent a chunked-encoding line that is too long")
                break
            line = buf[pos:eol - 1] if eol > pos and buf[eol - 1] == 13 else buf[pos:eol]
            pos = eol + 1
            if state == _SIZE:
                size = line.split(b";", 1)[0].strip(b" \t")
                if not size or size.translate(None, _HEX):
                    raise UpstreamProtocolError("upstream sent an invalid chunk size")
                self._left = int(size, 16)
                self._state = _DATA if self._left else _TRAILER
            elif not line:  # _TRAILER: the blank line ends the body
                self._state = _DONE
                self.done = True
                if pos < end:
                    raise UpstreamProtocolError("upstream sent data after the end of the chunked body")
        self._buf = buf[pos:]
        return b"".join(out) if len(out) != 1 else out[0]
