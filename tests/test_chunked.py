"""The chunked transfer-coding decoder (bifrost_wsgi/chunked.py): the body comes out the same however the
bytes are cut, malformed framing is an upstream protocol error, and nothing after the end is accepted."""

import pytest

from bifrost_wsgi.chunked import ChunkedDecoder
from bifrost_wsgi.errors import UpstreamProtocolError

BODIES = {
    "one chunk": (b"5\r\nhello\r\n0\r\n\r\n", b"hello"),
    "several chunks": (b"5\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\n\r\n", b"hello world"),
    "upper and lower hex": (b"A\r\n0123456789\r\nb\r\nabcdefghijk\r\n0\r\n\r\n", b"0123456789abcdefghijk"),
    "leading zeros": (b"0005\r\nhello\r\n000\r\n\r\n", b"hello"),
    "extensions": (b"5;name=value\r\nhello\r\n0;last\r\n\r\n", b"hello"),
    "trailers": (b"5\r\nhello\r\n0\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\n", b"hello"),
    "bare LF size and trailer lines": (b"5\nhello\r\n0\nX: 1\n\n", b"hello"),
    "data holding CRLF": (b"7\r\na\r\n\r\nbc\r\n0\r\n\r\n", b"a\r\n\r\nbc"),
    "data that looks like framing": (b"8\r\n0\r\n\r\n5\r\n\r\n0\r\n\r\n", b"0\r\n\r\n5\r\n"),
    "empty body": (b"0\r\n\r\n", b""),
    "an SSE event": (b"f\r\ndata: {\"a\":1}\n\n\r\n0\r\n\r\n", b"data: {\"a\":1}\n\n"),
}


def decode_pieces(pieces):
    dec = ChunkedDecoder()
    out = b"".join(dec.feed(p) for p in pieces)
    return out, dec.done


@pytest.mark.parametrize("raw,body", BODIES.values(), ids=list(BODIES))
def test_every_split_point(raw, body):
    assert decode_pieces([raw]) == (body, True)
    for i in range(1, len(raw)):
        assert decode_pieces([raw[:i], raw[i:]]) == (body, True), f"split at {i}"
    for i in range(1, len(raw)):
        for j in range(i + 1, len(raw)):
            assert decode_pieces([raw[:i], raw[i:j], raw[j:]]) == (body, True), f"split at {i}, {j}"


@pytest.mark.parametrize("raw,body", BODIES.values(), ids=list(BODIES))
def test_byte_by_byte(raw, body):
    assert decode_pieces([bytes([b]) for b in raw]) == (body, True)


def test_one_whole_chunk_per_read_comes_out_as_it_arrives():
    dec = ChunkedDecoder()
    assert dec.feed(b"5\r\nhello\r\n") == b"hello"
    assert dec.feed(b"6\r\n world\r\n") == b" world"
    assert not dec.done
    assert dec.feed(b"0\r\n\r\n") == b"" and dec.done


def test_a_large_chunk_is_passed_on_as_it_arrives():
    dec = ChunkedDecoder()
    assert dec.feed(b"1000\r\n" + b"a" * 100) == b"a" * 100
    assert dec.feed(b"b" * 100) == b"b" * 100


def test_unfinished_body_is_not_done():
    for raw in (b"5\r\nhel", b"5\r\nhello\r\n", b"5\r\nhello\r\n0\r\n", b"5\r\nhello\r\n0\r\nX: 1\r\n"):
        assert decode_pieces([raw])[1] is False


@pytest.mark.parametrize("raw", [
    b"zz\r\nhello\r\n", b"-5\r\nhello\r\n", b"+5\r\nhello\r\n", b"0x5\r\nhello\r\n", b"5_0\r\n", b"\r\nhello\r\n",
    b"5\r\nhelloX\r\n", b"6\r\nhello\r\n0\r\n\r\n", b"5\r\nhello\n0\r\n\r\n", b"5\r\nhello\r\n0\r\n\r\nextra", b"1" * 5000,
], ids=["not hex", "negative", "plus", "0x prefix", "underscore", "empty size", "data longer than size", "size one too large", "bare LF after data",
        "data after the end", "endless size line"])
def test_malformed_framing_is_an_upstream_protocol_error(raw):
    with pytest.raises(UpstreamProtocolError):
        decode_pieces([raw])
    with pytest.raises(UpstreamProtocolError):
        decode_pieces([bytes([b]) for b in raw])


def test_bytes_after_the_end_in_a_later_read_are_refused():
    dec = ChunkedDecoder()
    dec.feed(b"0\r\n\r\n")
    with pytest.raises(UpstreamProtocolError):
        dec.feed(b"5\r\nhello\r\n")
