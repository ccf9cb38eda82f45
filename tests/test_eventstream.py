"""The AWS event-stream decoder: framing, every header type, checksums, caps, and every split point.

The encoder below exists for tests only (fixtures are built with it); the gateway never encodes."""

from __future__ import annotations

import binascii
import json
import struct
import uuid
from pathlib import Path

import pytest

from bifrost_wsgi.errors import UpstreamProtocolError
from bifrost_wsgi.wire.eventstream import MAX_MESSAGE_BYTES, EventStreamDecoder, Message, decode

FIXTURES = Path(__file__).parent / "fixtures" / "bedrock"

# --- a test-only encoder ------------------------------------------------------------------------------

# (type byte, struct format or None for length-prefixed values)
_TYPED = {"byte": (2, "b"), "short": (3, "h"), "int": (4, "i"), "long": (5, "q"), "timestamp": (8, "q")}


def encode_header(name: str, value) -> bytes:
    """``value``: bool, str, bytes, uuid.UUID, or a (kind, int) pair with kind in byte/short/int/long/timestamp."""
    out = bytes([len(name.encode())]) + name.encode()
    if isinstance(value, bool):
        return out + bytes([0 if value else 1])
    if isinstance(value, str):
        raw = value.encode()
        return out + b"\x07" + struct.pack(">H", len(raw)) + raw
    if isinstance(value, bytes):
        return out + b"\x06" + struct.pack(">H", len(value)) + value
    if isinstance(value, uuid.UUID):
        return out + b"\x09" + value.bytes
    kind, number = value
    code, fmt = _TYPED[kind]
    return out + bytes([code]) + struct.pack(">" + fmt, number)


def encode_message(headers: dict, payload: bytes = b"") -> bytes:
    raw_headers = b"".join(encode_header(k, v) for k, v in headers.items())
    total = 16 + len(raw_headers) + len(payload)
    prelude = struct.pack(">II", total, len(raw_headers))
    head = prelude + struct.pack(">I", binascii.crc32(prelude)) + raw_headers + payload
    return head + struct.pack(">I", binascii.crc32(head))


def event(event_type: str, data: dict) -> bytes:
    """One ConverseStream event as Bedrock frames it (JSON payload)."""
    return encode_message({":event-type": event_type, ":content-type": "application/json", ":message-type": "event"},
                          json.dumps(data, separators=(",", ":")).encode())


def exception(exception_type: str, data: dict) -> bytes:
    return encode_message({":exception-type": exception_type, ":content-type": "application/json",
                           ":message-type": "exception"}, json.dumps(data).encode())


# --- decoding --------------------------------------------------------------------------------------

ALL_TYPES = {
    "true": True,
    "false": False,
    "byte": ("byte", -7),
    "short": ("short", -1234),
    "int": ("int", 123456789),
    "long": ("long", -(2**40)),
    "bytes": b"\x00\xffraw",
    "string": "h\u00e9llo",
    "timestamp": ("timestamp", 1_700_000_000_000),
    "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
}


def _expected(value):
    return value[1] if isinstance(value, tuple) else value


def test_every_header_type_round_trips():
    [msg] = list(decode([encode_message(ALL_TYPES, b"payload")]))
    assert msg.headers == {k: _expected(v) for k, v in ALL_TYPES.items()}
    assert msg.payload == b"payload"


def test_message_without_headers_or_payload_is_the_16_byte_minimum():
    frame = encode_message({})
    assert len(frame) == 16
    assert list(decode([frame])) == [Message({}, b"")]


def test_message_helpers_read_the_standard_headers():
    [msg] = list(decode([exception("throttlingException", {"message": "slow down"})]))
    assert (msg.message_type, msg.exception_type, msg.event_type, msg.content_type) == (
        "exception", "throttlingException", "", "application/json")
    [ev] = list(decode([event("messageStop", {"stopReason": "end_turn"})]))
    assert (ev.message_type, ev.event_type) == ("event", "messageStop")
    assert json.loads(ev.payload) == {"stopReason": "end_turn"}


def _stream_fixture() -> bytes:
    return (FIXTURES / "stream_tool_call.stream").read_bytes()


def _all(chunks) -> list[Message]:
    return list(decode(chunks))


def test_fixture_holds_several_messages():
    assert len(_all([_stream_fixture()])) >= 6


def test_every_two_way_split_decodes_the_same():
    data = _stream_fixture()
    whole = _all([data])
    for cut in range(1, len(data)):
        assert _all([data[:cut], data[cut:]]) == whole, cut


def test_byte_by_byte_feeding_decodes_the_same():
    data = _stream_fixture()
    whole = _all([data])
    decoder = EventStreamDecoder()
    got = []
    for i in range(len(data)):
        got.extend(decoder.feed(data[i:i + 1]))
    decoder.close()
    assert got == whole


def test_messages_come_out_as_soon_as_they_are_complete():
    first, second = event("messageStart", {"role": "assistant"}), event("messageStop", {"stopReason": "end_turn"})
    decoder = EventStreamDecoder()
    assert [m.event_type for m in decoder.feed(first + second[:5])] == ["messageStart"]
    assert [m.event_type for m in decoder.feed(second[5:])] == ["messageStop"]


# --- corruption and limits ----------------------------------------------------------------------------


def _flip(frame: bytes, at: int) -> bytes:
    return frame[:at] + bytes([frame[at] ^ 0x01]) + frame[at + 1:]


def test_prelude_checksum_mismatch_is_rejected_before_the_body_arrives():
    frame = event("messageStart", {"role": "assistant"})
    decoder = EventStreamDecoder()
    with pytest.raises(UpstreamProtocolError, match="prelude checksum"):
        decoder.feed(_flip(frame, 9)[:12])  # the CRC itself is wrong


def test_corrupted_length_is_caught_by_the_prelude_checksum():
    frame = event("messageStart", {"role": "assistant"})
    with pytest.raises(UpstreamProtocolError, match="prelude checksum"):
        _all([_flip(frame, 2)])


@pytest.mark.parametrize("at", [14, 20, -6])  # a header name, the payload, the payload's last byte
def test_message_checksum_mismatch_is_rejected(at):
    frame = event("contentBlockDelta", {"delta": {"text": "hi"}, "contentBlockIndex": 0})
    with pytest.raises(UpstreamProtocolError, match="message checksum"):
        _all([_flip(frame, at % len(frame))])


def _prelude(total: int, headers_len: int) -> bytes:
    head = struct.pack(">II", total, headers_len)
    return head + struct.pack(">I", binascii.crc32(head))


@pytest.mark.parametrize("total, headers_len, problem", [
    (MAX_MESSAGE_BYTES + 1, 0, "too large"),
    (0xFFFFFFFF, 0, "too large"),
    (15, 0, "too short"),
    (0, 0, "too short"),
    (40, 25, "more headers"),
])
def test_impossible_lengths_are_rejected_from_the_prelude_alone(total, headers_len, problem):
    with pytest.raises(UpstreamProtocolError, match=problem):
        EventStreamDecoder().feed(_prelude(total, headers_len))


def test_cap_is_configurable():
    frame = event("messageStart", {"role": "assistant"})
    with pytest.raises(UpstreamProtocolError, match="too large"):
        EventStreamDecoder(max_message_bytes=len(frame) - 1).feed(frame)
    assert len(EventStreamDecoder(max_message_bytes=len(frame)).feed(frame)) == 1


def test_stream_cut_inside_a_message_is_an_error():
    frame = event("messageStart", {"role": "assistant"})
    with pytest.raises(UpstreamProtocolError, match="middle of a message"):
        _all([frame, frame[:-3]])


def _with_raw_headers(raw_headers: bytes) -> bytes:
    total = 16 + len(raw_headers)
    prelude = struct.pack(">II", total, len(raw_headers))
    head = prelude + struct.pack(">I", binascii.crc32(prelude)) + raw_headers
    return head + struct.pack(">I", binascii.crc32(head))


@pytest.mark.parametrize("raw, problem", [
    (b"\x01x\x0a", "unknown value type"),  # type 10 does not exist
    (b"\x01x\x07\x00\x09abc", "overruns"),  # string longer than the section
    (b"\x01x\x04\x00\x00", "overruns"),  # int cut short
    (b"\x05ab", "overruns"),  # name longer than the section
])
def test_malformed_headers_are_rejected(raw, problem):
    with pytest.raises(UpstreamProtocolError, match=problem):
        _all([_with_raw_headers(raw)])


# --- an independent implementation agrees (optional: botocore is not a dependency) --------------------


def test_botocore_decodes_what_the_test_encoder_builds():
    eventstream = pytest.importorskip("botocore.eventstream")
    buf = eventstream.EventStreamBuffer()
    buf.add_data(_stream_fixture() + encode_message(ALL_TYPES, b"x"))
    theirs = [(m.headers, m.payload) for m in buf]
    ours = [(m.headers, m.payload) for m in _all([_stream_fixture() + encode_message(ALL_TYPES, b"x")])]
    # botocore reports uuids as raw bytes; everything else must be identical
    theirs[-1][0]["uuid"] = uuid.UUID(bytes=theirs[-1][0]["uuid"])
    assert theirs == ours
