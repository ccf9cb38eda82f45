"""multipart/form-data both ways, streamed: a push parser for uploads and a body that sends an upload
from its spool without reading it into memory.

* ``Parser(boundary)``: ``feed(bytes) -> events`` in any pieces (a boundary may be split anywhere),
  ``close()`` once the body ended. Events are ``(PART, Part)``, ``(DATA, bytes)``, ``(END, None)``.
* ``SpooledPart``: an uploaded file kept in a temporary file (in memory while small), read again from the
  start for each attempt.
* ``Body``: an outgoing multipart body of fields and spooled files, with ``len()`` (Content-Length) and
  iteration in blocks: what ``requests`` sends as a streamed body.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from email.message import Message

from ..errors import BadRequest

PART, DATA, END = "part", "data", "end"
MAX_HEADER_BYTES = 16 * 1024
BLOCK = 256 * 1024
SPOOL_IN_MEMORY = 1024 * 1024  # larger uploads go to a temporary file


def invalid(problem: str) -> BadRequest:
    return BadRequest(f"invalid request format: multipart body {problem}")


def boundary_of(content_type: str) -> bytes | None:
    """The boundary of a ``multipart/form-data`` Content-Type, or None when it is not one."""
    msg = Message()
    msg["content-type"] = content_type
    if msg.get_content_type() != "multipart/form-data":
        return None
    boundary = msg.get_param("boundary")
    if not isinstance(boundary, str) or not 1 <= len(boundary) <= 70:
        raise invalid("has no valid boundary in its Content-Type")
    return boundary.encode("latin-1")


@dataclass(frozen=True, slots=True)
class Part:
    name: str
    filename: str | None
    content_type: str


def _part(block: bytes) -> Part:
    msg = Message()
    for line in block.split(b"\r\n"):
        if not line:
            continue
        name, sep, value = line.partition(b":")
        if not sep:
            raise invalid("has a malformed part header")
        msg[name.decode("latin-1").strip()] = value.decode("utf-8", "replace").strip()
    disposition = msg.get("content-disposition")
    if disposition is None:
        raise invalid("has a part without Content-Disposition")
    name = msg.get_param("name", header="content-disposition")
    if not isinstance(name, str):
        raise invalid("has a part without a name")
    return Part(name, msg.get_filename(), msg.get("content-type", "application/octet-stream"))


class Parser:
    """States: preamble → (after a boundary) → headers → body → (after a boundary) … → done."""

    def __init__(self, boundary: bytes) -> None:
        self.delimiter = b"\r\n--" + boundary
        self.buf = b"\r\n"  # the first boundary has no CRLF before it
        self.state = "preamble"

    def feed(self, data: bytes) -> list:
        self.buf += data
        events: list = []
        while self._step(events):
            pass
        return events

    def close(self) -> None:
        if self.state != "done":
            raise invalid("ended before its closing boundary")

    def _step(self, events: list) -> bool:
        """Advance once; False when more data is needed."""
        buf, delim, state = self.buf, self.delimiter, self.state
        if state == "preamble":
            at = buf.find(delim)
            if at < 0:
                self.buf = buf[-(len(delim) - 1):]
                return False
            self.buf, self.state = buf[at + len(delim):], "boundary"
            return True
        if state == "boundary":
            if len(buf) < 2:
                return False
            if buf.startswith(b"--"):
                self.buf, self.state = b"", "done"
                return False
            eol = buf.find(b"\r\n")
            if eol < 0:
                if len(buf) > 256:
                    raise invalid("has garbage after a boundary")
                return False
            if buf[:eol].strip(b" \t"):
                raise invalid("has garbage after a boundary")
            self.buf, self.state = buf[eol + 2:], "headers"
            return True
        if state == "headers":
            if buf.startswith(b"\r\n"):
                raise invalid("has a part without Content-Disposition")
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEADER_BYTES:
                    raise invalid("has part headers that are too large")
                return False
            events.append((PART, _part(buf[:end])))
            self.buf, self.state = buf[end + 4:], "body"
            return True
        if state == "body":
            at = buf.find(delim)
            if at < 0:
                keep = len(delim) - 1
                if len(buf) > keep:
                    events.append((DATA, buf[:-keep]))
                    self.buf = buf[-keep:]
                return False
            if at:
                events.append((DATA, buf[:at]))
            events.append((END, None))
            self.buf, self.state = buf[at + len(delim):], "boundary"
            return True
        self.buf = b""  # done: the epilogue is ignored
        return False


class SpooledPart:
    """An uploaded file: its name, type and bytes, spooled while the body is read."""

    def __init__(self, part: Part) -> None:
        self.filename = part.filename or "audio"
        self.content_type = part.content_type
        self.size = 0
        self.file = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)

    def write(self, data: bytes) -> None:
        self.file.write(data)
        self.size += len(data)

    def blocks(self, size: int = BLOCK):
        """The bytes from the start, a block at a time (again for every attempt)."""
        self.file.seek(0)
        while True:
            block = self.file.read(size)
            if not block:
                return
            yield block

    def close(self) -> None:
        self.file.close()


def _quoted(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\r", "").replace("\n", "")


class Body:
    """An outgoing multipart/form-data body: ``fields`` are (name, str) pairs, ``files`` (name, SpooledPart)."""

    def __init__(self, fields: list[tuple[str, str]], files: list[tuple[str, SpooledPart]]) -> None:
        self.boundary = "bifrost-" + os.urandom(12).hex()
        self.pieces: list = []
        for name, value in fields:
            self.pieces.append(self._head(name) + b"\r\n" + value.encode() + b"\r\n")
        for name, upload in files:
            self.pieces.append(self._head(name, upload.filename, upload.content_type) + b"\r\n")
            self.pieces.append(upload)
            self.pieces.append(b"\r\n")
        self.pieces.append(f"--{self.boundary}--\r\n".encode())

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def _head(self, name: str, filename: str | None = None, ctype: str | None = None) -> bytes:
        head = f'--{self.boundary}\r\nContent-Disposition: form-data; name="{_quoted(name)}"'
        if filename is not None:
            head += f'; filename="{_quoted(filename)}"\r\nContent-Type: {ctype}'
        return (head + "\r\n").encode()

    def __len__(self) -> int:
        return sum(p.size if isinstance(p, SpooledPart) else len(p) for p in self.pieces)

    def __iter__(self):
        for piece in self.pieces:
            if isinstance(piece, SpooledPart):
                yield from piece.blocks()
            else:
                yield piece
