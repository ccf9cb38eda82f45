"""The AWS event-stream binary framing (``application/vnd.amazon.eventstream``): an incremental decoder.

Bedrock's ConverseStream answers with this framing instead of SSE. Each message is

    total length (u32) | headers length (u32) | prelude CRC32 (u32) | headers | payload | message CRC32 (u32)

all big-endian; the prelude CRC covers the first 8 bytes and the message CRC everything before it, both
CRC-32 as in gzip (``binascii.crc32``). A header is ``name length (u8) | name | value type (u8) | value``.
Format: "Event stream encoding" in the Amazon Transcribe / Lex V2 developer guides.

The prelude CRC is checked as soon as its 12 bytes are in, so a corrupted length can never make us wait
for (or buffer) a bogus amount of data; lengths are also bounded by ``MAX_MESSAGE_BYTES``.
"""

from __future__ import annotations

import binascii
import struct
import uuid
from dataclasses import dataclass, field
from typing import Iterable, Iterator

from ..errors import UpstreamProtocolError

#: one message may not be larger than this (a runaway or corrupted upstream must not exhaust memory)
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
PRELUDE_BYTES = 12  # total length, headers length, prelude CRC
MIN_MESSAGE_BYTES = PRELUDE_BYTES + 4  # no headers, no payload, message CRC

_PRELUDE = struct.Struct(">III")
_U32 = struct.Struct(">I")
_U16 = struct.Struct(">H")


@dataclass(frozen=True, slots=True)
class Message:
    """One decoded event-stream message: typed header values and the raw payload bytes."""

    headers: dict = field(default_factory=dict)
    payload: bytes = b""

    @property
    def message_type(self) -> str:
        """``event``, ``exception`` or ``error``."""
        return self._text(":message-type")

    @property
    def event_type(self) -> str:
        return self._text(":event-type")

    @property
    def exception_type(self) -> str:
        return self._text(":exception-type")

    @property
    def content_type(self) -> str:
        return self._text(":content-type")

    def _text(self, name: str) -> str:
        value = self.headers.get(name)
        return value if isinstance(value, str) else ""


# --- header values: type byte → reader(data, offset) -> (value, new offset) ------------------------


def _fixed(fmt: str):
    packer = struct.Struct(">" + fmt)

    def read(data: bytes, at: int):
        end = at + packer.size
        _need(data, end)
        return packer.unpack_from(data, at)[0], end

    return read


def _sized(decode):
    def read(data: bytes, at: int):
        _need(data, at + 2)
        size = _U16.unpack_from(data, at)[0]
        end = at + 2 + size
        _need(data, end)
        return decode(data[at + 2:end]), end

    return read


def _constant(value):
    return lambda data, at: (value, at)


def _uuid(data: bytes, at: int):
    _need(data, at + 16)
    return uuid.UUID(bytes=data[at:at + 16]), at + 16


_VALUE_READERS = {
    0: _constant(True),
    1: _constant(False),
    2: _fixed("b"),  # byte
    3: _fixed("h"),  # short
    4: _fixed("i"),  # integer
    5: _fixed("q"),  # long
    6: _sized(bytes),  # byte array
    7: _sized(lambda raw: raw.decode("utf-8", "replace")),  # string
    8: _fixed("q"),  # timestamp: milliseconds since the epoch
    9: _uuid,
}


def _need(data: bytes, end: int) -> None:
    if end > len(data):
        raise UpstreamProtocolError("upstream event-stream message has a header that overruns its headers section")


def parse_headers(data: bytes) -> dict:
    """The headers section of one message as a dict of name → typed value."""
    headers = {}
    at = 0
    while at < len(data):
        size = data[at]
        name_end = at + 1 + size
        _need(data, name_end + 1)
        name = data[at + 1:name_end].decode("utf-8", "replace")
        reader = _VALUE_READERS.get(data[name_end])
        if reader is None:
            raise UpstreamProtocolError(
                f"upstream event-stream header {name!r} has unknown value type {data[name_end]}")
        headers[name], at = reader(data, name_end + 1)
    return headers


# --- framing ---------------------------------------------------------------------------------------


class EventStreamDecoder:
    """Feed it byte chunks as they arrive; it returns the messages each chunk completes."""

    __slots__ = ("_buf", "_need_total", "max_message_bytes")

    def __init__(self, *, max_message_bytes: int = MAX_MESSAGE_BYTES) -> None:
        self._buf = bytearray()
        self._need_total = 0  # total length of the message in progress, once its prelude was checked
        self.max_message_bytes = max_message_bytes

    def feed(self, chunk: bytes) -> list[Message]:
        self._buf += chunk
        messages = []
        start = 0
        buf = self._buf
        while True:
            left = len(buf) - start
            if not self._need_total:
                if left < PRELUDE_BYTES:
                    break
                self._need_total = self._check_prelude(buf, start)
            if left < self._need_total:
                break
            end = start + self._need_total
            messages.append(_message(buf, start, end))
            self._need_total = 0
            start = end
        if start:
            del buf[:start]
        return messages

    def at_boundary(self) -> bool:
        return not self._buf

    def close(self) -> list[Message]:
        """End of input: bytes of an unfinished message mean the stream was cut."""
        if self._buf:
            raise UpstreamProtocolError("upstream event stream ended in the middle of a message")
        return []

    def _check_prelude(self, buf: bytearray, start: int) -> int:
        total, headers_len, crc = _PRELUDE.unpack_from(buf, start)
        if binascii.crc32(buf[start:start + 8]) != crc:
            raise UpstreamProtocolError("upstream event-stream message failed its prelude checksum")
        if total < MIN_MESSAGE_BYTES:
            raise UpstreamProtocolError(f"upstream event-stream message is too short ({total} bytes)")
        if total > self.max_message_bytes:
            raise UpstreamProtocolError(f"upstream event-stream message is too large ({total} bytes)")
        if headers_len > total - MIN_MESSAGE_BYTES:
            raise UpstreamProtocolError("upstream event-stream message declares more headers than it holds")
        return total


def _message(buf: bytearray, start: int, end: int) -> Message:
    (crc,) = _U32.unpack_from(buf, end - 4)
    if binascii.crc32(buf[start:end - 4]) != crc:
        raise UpstreamProtocolError("upstream event-stream message failed its message checksum")
    (headers_len,) = _U32.unpack_from(buf, start + 4)
    body = start + PRELUDE_BYTES
    headers = parse_headers(bytes(buf[body:body + headers_len]))
    return Message(headers, bytes(buf[body + headers_len:end - 4]))


def decode(chunks: Iterable[bytes]) -> Iterator[Message]:
    """Messages from an iterable of byte chunks; raises ``UpstreamProtocolError`` on corrupt framing."""
    decoder = EventStreamDecoder()
    for chunk in chunks:
        if chunk:
            yield from decoder.feed(chunk)
    decoder.close()


# --- encoding --------------------------------------------------------------------------------------

_STRING = 7  # the header value type of every header we send


def encode(headers: dict[str, str], payload: bytes) -> bytes:
    """One message with string headers (what Bedrock's streams carry: ``:event-type``, ``:content-type``,
    ``:message-type``, ``:exception-type``), both CRCs included."""
    parts = []
    for name, value in headers.items():
        raw_name, raw_value = name.encode(), value.encode()
        parts.append(bytes((len(raw_name),)) + raw_name + bytes((_STRING,)) + _U16.pack(len(raw_value)) + raw_value)
    head = b"".join(parts)
    total = PRELUDE_BYTES + len(head) + len(payload) + 4
    prelude = struct.pack(">II", total, len(head))
    prelude += _U32.pack(binascii.crc32(prelude))
    body = prelude + head + payload
    return body + _U32.pack(binascii.crc32(body))
