"""The streaming multipart/form-data parser and body (wire/multipart.py): every way a body can be cut into
pieces gives the same parts, and what the body sends is what a standard parser reads back."""

from __future__ import annotations

import email.parser
import email.policy

import pytest

from bifrost_wsgi.errors import BadRequest
from bifrost_wsgi.wire.multipart import DATA, END, PART, Body, Parser, SpooledPart, Part, boundary_of

BOUNDARY = b"----WebKitFormBoundary7MA4YWxkTrZu0gW"
AUDIO = bytes(range(256)) + b"\r\n--not-the-boundary\r\n" + b"\r\n------WebKitFormBoundary7MA4YWxk" + b"\x00" * 40


def form(boundary: bytes = BOUNDARY) -> bytes:
    b = b"--" + boundary
    return (b"preamble is ignored\r\n" + b + b"\r\n"
            b'Content-Disposition: form-data; name="model"\r\n\r\nopenai/whisper-1\r\n' + b + b"\r\n"
            b'Content-Disposition: form-data; name="file"; filename="a \\"b\\".mp3"\r\nContent-Type: audio/mpeg\r\n\r\n'
            + AUDIO + b"\r\n" + b + b"\r\n"
            b'Content-Disposition: form-data; name="empty"\r\n\r\n\r\n' + b + b"\r\n"
            b'Content-Disposition: form-data; name="timestamp_granularities[]"\r\n\r\nword\r\n' + b + b"--\r\nepilogue")


EXPECTED = [(Part("model", None, "application/octet-stream"), b"openai/whisper-1"),
            (Part("file", 'a "b".mp3', "audio/mpeg"), AUDIO),
            (Part("empty", None, "application/octet-stream"), b""),
            (Part("timestamp_granularities[]", None, "application/octet-stream"), b"word")]


def parse(pieces) -> list:
    parser = Parser(BOUNDARY)
    parts, current = [], None
    for piece in pieces:
        for kind, value in parser.feed(piece):
            if kind == PART:
                current = [value, b""]
            elif kind == DATA:
                assert value, "no empty data events"
                current[1] += value
            elif kind == END:
                parts.append(tuple(current))
    parser.close()
    return parts


def test_one_piece():
    assert parse([form()]) == EXPECTED


def test_every_split_point():
    body = form()
    for i in range(len(body) + 1):
        assert parse([body[:i], body[i:]]) == EXPECTED, f"split at {i}"


def test_every_pair_of_split_points_near_boundaries():
    body = form()
    cuts = sorted({i + d for i in range(len(body)) if body.startswith(b"\r\n--", i) for d in range(-2, 45)})
    cuts = [c for c in cuts if 0 <= c <= len(body)]
    for a in cuts:
        for b in cuts:
            if a <= b:
                assert parse([body[:a], body[a:b], body[b:]]) == EXPECTED, f"split at {a}, {b}"


def test_byte_by_byte():
    body = form()
    assert parse([body[i:i + 1] for i in range(len(body))]) == EXPECTED


@pytest.mark.parametrize("body,problem", [
    (form()[:-40], "ended before its closing boundary"),
    (b"--" + BOUNDARY + b"\r\nX-Nothing: 1\r\n\r\nx\r\n--" + BOUNDARY + b"--", "has a part without Content-Disposition"),
    (b"--" + BOUNDARY + b"\r\nContent-Disposition: form-data\r\n\r\nx\r\n--" + BOUNDARY + b"--", "has a part without a name"),
    (b"--" + BOUNDARY + b"\r\n" + b"X: " + b"y" * 20000, "has part headers that are too large"),
    (b"--" + BOUNDARY + b"garbage\r\n", "has garbage after a boundary"),
    (b"no boundary at all", "ended before its closing boundary"),
])
def test_malformed_bodies(body, problem):
    with pytest.raises(BadRequest) as info:
        parse([body])
    assert info.value.message == f"invalid request format: multipart body {problem}"


@pytest.mark.parametrize("content_type,boundary", [
    ("multipart/form-data; boundary=abc", b"abc"),
    ('multipart/form-data; boundary="a b:c"', b"a b:c"),
    ("MULTIPART/FORM-DATA;boundary=xyz; charset=utf-8", b"xyz"),
    ("application/json", None),
    ("", None),
])
def test_boundary_of(content_type, boundary):
    assert boundary_of(content_type) == boundary


def test_boundary_missing_is_refused():
    with pytest.raises(BadRequest):
        boundary_of("multipart/form-data")


def test_body_is_read_back_by_the_standard_parser():
    upload = SpooledPart(Part("file", "voice note.m4a", "audio/mp4"))
    data = bytes(range(256)) * 5000  # past the in-memory spool size
    upload.write(data)
    body = Body([("model", "whisper-1"), ("prompt", "names: Zoë, Ørjan")], [("file", upload)])
    raw = b"".join(body)
    assert len(body) == len(raw)
    assert b"".join(body) == raw  # iterable again (a retry sends it again)
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {body.content_type}\r\n\r\n".encode() + raw)
    parts = list(msg.iter_parts())
    assert [p.get_param("name", header="content-disposition") for p in parts] == ["model", "prompt", "file"]
    assert parts[1].get_payload(decode=True).decode() == "names: Zoë, Ørjan"
    assert parts[2].get_filename() == "voice note.m4a" and parts[2].get_content_type() == "audio/mp4"
    assert parts[2].get_payload(decode=True) == data
    upload.close()
