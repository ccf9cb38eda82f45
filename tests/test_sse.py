"""The SSE decoder, fed every possible split of each input, gives the same events (CR, LF, CRLF line ends,
comments, multi-line data, BOM, fields without a space, U+2028 kept inside data)."""

import pytest

from bifrost_wsgi.errors import UpstreamProtocolError
from bifrost_wsgi.wire.sse import KEEPALIVE, MAX_LINE_BYTES, Event, SSEDecoder, decode, encode

CASES = [
    ("lf", b"data: a\n\ndata: b\n\n", [Event("a"), Event("b")]),
    ("crlf", b"data: a\r\n\r\ndata: b\r\n\r\n", [Event("a"), Event("b")]),
    ("cr", b"data: a\r\rdata: b\r\r", [Event("a"), Event("b")]),
    ("mixed line ends", b"data: a\r\n\ndata: b\r\rdata: c\n\r\n", [Event("a"), Event("b"), Event("c")]),
    ("comments between events are keep-alives", b": ping\n\n: keep-alive\ndata: x\n\n", [KEEPALIVE, KEEPALIVE, Event("x")]),
    ("a comment inside an event is ignored", b"data: a\n: note\ndata: b\n\n", [Event("a\nb")]),
    ("event and id fields", b"event: message_start\nid: 7\ndata: {}\n\n", [Event("{}", "message_start", "7")]),
    ("multi-line data joined with LF", b"data: one\ndata: two\n\n", [Event("one\ntwo")]),
    ("no space after colon", b"data:x\n\n", [Event("x")]),
    ("only the first space stripped", b"data:  x\n\n", [Event(" x")]),
    ("unknown fields ignored", b"retry: 10\nfoo: bar\ndata: y\n\n", [Event("y")]),
    ("BOM at start", b"\xef\xbb\xbfdata: z\n\n", [Event("z")]),
    ("U+2028 is not a line end", "data: a\u2028b\n\n".encode(), [Event("a\u2028b")]),
    ("utf-8 split inside a character", "data: héllo\n\n".encode(), [Event("héllo")]),
    ("DONE marker", b"data: [DONE]\n\n", [Event("[DONE]")]),
    ("last event without blank line at EOF", b"data: a\n\ndata: b\n", [Event("a"), Event("b")]),
    ("empty data line dispatches empty event", b"data\n\n", [Event("")]),
    ("blank lines alone dispatch nothing", b"\n\n\r\n", []),
]


@pytest.mark.parametrize("raw,expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_every_two_way_split(raw, expected):
    for i in range(len(raw) + 1):
        assert list(decode([raw[:i], raw[i:]])) == expected, f"split at {i}"


@pytest.mark.parametrize("raw,expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_byte_by_byte(raw, expected):
    assert list(decode(raw[i:i + 1] for i in range(len(raw)))) == expected


def test_cr_at_chunk_end_then_lf_is_one_line_end():
    # requests.iter_lines gets this wrong (psf/requests#3980): one event must not become two
    d = SSEDecoder()
    assert d.feed(b"data: one\r") == []
    assert d.feed(b"\ndata: two\r\n\r\n") == [Event("one\ntwo")]


def test_oversized_line_is_rejected():
    d = SSEDecoder()
    with pytest.raises(UpstreamProtocolError):
        for _ in range(MAX_LINE_BYTES // (1024 * 1024) + 2):
            d.feed(b"x" * (1024 * 1024))


def test_encode_is_one_compact_data_event():
    assert encode({"a": [1, "x\ny"]}) == b'data: {"a":[1,"x\\ny"]}\n\n'
