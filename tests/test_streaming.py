"""Streaming relay over real HTTP (CONTRACT §7): framing variants from the upstream, the shape of what the
client gets, errors before the first byte as JSON, errors after it in-band, and the final chunk."""

import json
import time

import openai
import pytest
import requests

from tests.fakes import Reply, openai_chunks, sse

HI = [{"role": "user", "content": "hi"}]


def post_stream(url, **extra):
    payload = {"model": "openai/gpt-4o-mini", "stream": True, "messages": HI}
    payload.update(extra)
    return requests.post(url + "/v1/chat/completions", json=payload, stream=True)


def events(resp):
    """The data payloads of an SSE response body, in order."""
    out = []
    for block in resp.content.decode("utf-8").split("\n\n"):  # SSE is UTF-8 whatever the headers say
        if block.startswith("data: "):
            data = block[6:]
            out.append(data if data == "[DONE]" else json.loads(data))
    return out


def joined(raw: bytes, parts: int) -> list:
    size = max(1, len(raw) // parts)
    return [raw[i:i + size] for i in range(0, len(raw), size)]


FRAMINGS = {
    "lf": lambda chunks: chunks,
    "crlf": lambda chunks: [c.replace(b"\n", b"\r\n") for c in chunks],
    "one byte at a time": lambda chunks: [bytes([b]) for b in b"".join(chunks)],
    "comments and pings": lambda chunks: [b": OPENROUTER PROCESSING\n\n", *chunks[:2], b": ping\n\n", *chunks[2:]],
    "split across chunk edges": lambda chunks: joined(b"".join(chunks), 7),
    "cr only": lambda chunks: [c.replace(b"\n", b"\r") for c in chunks],
}


@pytest.mark.parametrize("framing", FRAMINGS, ids=list(FRAMINGS))
def test_framing_variants(gateway, upstream, framing):
    upstream.add(Reply(chunks=FRAMINGS[framing](sse(*openai_chunks("Hel", "lo", " world")))))
    r = post_stream(gateway)
    assert r.status_code == 200
    evs = events(r)
    assert evs[-1] == "[DONE]"
    chunks = evs[:-1]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == "Hello world"
    # usage and finish_reason only on the last chunk, which has an empty delta
    assert all("usage" not in c for c in chunks[:-1])
    assert all("finish_reason" not in ch for c in chunks[:-1] for ch in c["choices"])
    assert chunks[-1]["choices"] == [{"index": 0, "delta": {}, "finish_reason": "stop"}]
    assert chunks[-1]["usage"]["total_tokens"] == 12
    assert [c["extra_fields"]["chunk_index"] for c in chunks] == list(range(len(chunks)))
    for c in chunks:
        assert c["object"] == "chat.completion.chunk"
        assert c["extra_fields"]["request_type"] == "chat_completion_stream"
        assert c["extra_fields"]["provider"] == "openai"
        assert isinstance(c["extra_fields"]["latency"], int)


# Plain content chunks that arrive one per read take the express lane (bifrost_wsgi/express.py); the same
# bytes arriving at once take the general path. What the client gets must not depend on which one ran.
TRICKY = ["Hel", "lo", ' "quoted"', " back\\slash", " new\nline", " é✓😀", " \u2028", ' ,"usage":null', " tab\t",
          "\x7f", " \u00a0nbsp", "", " ", "null", "</script>"]


def _odd_chunks() -> list[bytes]:
    chunks = sse(*openai_chunks(*TRICKY))
    plain = chunks[2]
    odd = [plain.replace(b'"lo"', b'"\xff\xfe not utf-8"'),  # replaced, as the general path does
           plain.replace(b'"lo"', b'"a\\q"'),  # an invalid escape: malformed, skipped
           plain.replace(b"chatcmpl-str1", b"chatcmpl-other"),  # another id: a new template
           b": keep-alive\n\n",
           plain.replace(b'"lo"', b'"two"') + plain.replace(b'"lo"', b'"events"'),
           plain.replace(b"data: ", b"data:"),  # no space after the colon
           plain.replace(b"\n\n", b"\r\n\r\n"),
           plain.replace(b'"lo"', '" é ✓ 😀 \u00a0 \u2028 \x7f"'.encode())]  # raw UTF-8, as most upstreams send it
    return chunks[:4] + odd + chunks[4:]


def _comparable(evs):
    for e in evs:
        if isinstance(e, dict):
            e["extra_fields"].pop("latency")
    return evs


def test_events_read_one_at_a_time_give_what_a_burst_gives(gateway, upstream):
    chunks = _odd_chunks()
    upstream.add(Reply(chunks=[b"".join(chunks)]))
    upstream.add(Reply(chunks=[x for c in chunks for x in (c, 0.004)]))
    upstream.add(Reply(chunks=[bytes([b]) for b in b"".join(chunks)]))
    burst, one_by_one, bytewise = (_comparable(events(post_stream(gateway))) for _ in range(3))
    assert one_by_one == burst
    assert bytewise == burst
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in burst[:-1] if c["choices"])
    odd = "\ufffd\ufffd not utf-8" + "lo" + "two" + "events" + "lo" + "lo" + " é ✓ 😀 \u00a0 \u2028 \x7f"
    assert text == "".join(TRICKY[:3]) + odd + "".join(TRICKY[3:])
    assert [c["extra_fields"]["chunk_index"] for c in burst[:-1]] == list(range(len(burst) - 1))
    assert {c["id"] for c in burst[:-1]} == {"chatcmpl-str1", "chatcmpl-other"}


def test_headers(gateway, upstream):
    upstream.add(Reply(chunks=sse(*openai_chunks("x"))))
    r = post_stream(gateway)
    assert r.headers["Content-Type"] == "text/event-stream"
    assert r.headers["Cache-Control"] == "no-cache"
    assert r.headers["X-Accel-Buffering"] == "no"
    assert "Content-Length" not in r.headers
    assert r.headers["x-request-id"]


def test_openai_sdk_parses_every_chunk(gateway, upstream):
    tool_chunks = [
        {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
         "choices": [{"index": 0, "delta": {"role": "assistant", "tool_calls": [
             {"index": 0, "id": "call_a", "type": "function", "function": {"name": "f", "arguments": ""}}]}}]},
        {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
         "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": '{"a":'}}]}}]},
        {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
         "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}}]},
        {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
         "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
        {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [],
         "usage": {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9}},
    ]
    upstream.add(Reply(chunks=sse(*tool_chunks)))
    with openai.OpenAI(base_url=gateway + "/v1", api_key="x", max_retries=0) as client:
        chunks = list(client.chat.completions.create(model="openai/m", messages=HI, stream=True))
    args = "".join(c.choices[0].delta.tool_calls[0].function.arguments for c in chunks
                   if c.choices and c.choices[0].delta.tool_calls)
    assert json.loads(args) == {"a": 1}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    assert chunks[-1].usage.total_tokens == 9


def test_upstream_error_status_before_first_byte_is_json(gateway, upstream):
    upstream.add(Reply(status=429, json={"error": {"message": "Rate limit reached", "type": "requests",
                                                   "code": "rate_limit_exceeded"}}))
    r = post_stream(gateway)
    assert r.status_code == 429
    assert r.headers["Content-Type"] == "application/json"
    assert r.json()["error"]["message"] == "Rate limit reached"
    assert r.json()["extra_fields"]["request_type"] == "chat_completion_stream"


def test_error_as_first_event_is_json(gateway, upstream):
    upstream.add(Reply(chunks=sse({"error": {"message": "model overloaded", "type": "server_error", "code": 503}},
                                  done=False)))
    r = post_stream(gateway)
    assert r.status_code == 503
    assert r.json()["error"]["message"] == "model overloaded"


def test_connection_refused_is_502(serve):
    from tests.conftest import provider_config
    from tests.procs import free_port

    url = serve({"providers": {"openai": provider_config(f"http://127.0.0.1:{free_port()}")}})
    r = post_stream(url)
    assert r.status_code == 502
    env = r.json()
    assert env["error"]["type"] == "upstream_connection_error"
    assert env["is_bifrost_error"] is True


def test_mid_stream_error_event_is_in_band(gateway, upstream):
    chunks = openai_chunks("Hel", "lo")
    upstream.add(Reply(chunks=sse(chunks[0], chunks[1], {"error": {"message": "upstream exploded", "type": "server_error"}},
                                  done=False)))
    r = post_stream(gateway)
    assert r.status_code == 200
    evs = events(r)
    assert evs[-1] == "[DONE]"
    err = evs[-2]
    assert err["error"]["message"] == "upstream exploded"
    assert err["extra_fields"]["provider"] == "openai"
    # a failed stream never presents a finish
    assert not any("finish_reason" in ch for e in evs[:-2] for ch in e["choices"])


def test_truncated_stream_is_not_a_finished_answer(gateway, upstream):
    chunks = openai_chunks("Hel", "lo")
    upstream.add(Reply(chunks=sse(*chunks[:3], done=False), fault="truncate"))
    r = post_stream(gateway)
    evs = events(r)
    assert evs[-1] == "[DONE]"
    assert evs[-2]["error"]["type"] in ("upstream_protocol_error",)
    assert not any("finish_reason" in ch for e in evs[:-2] for ch in e.get("choices", []))


def test_clean_end_without_done_after_finish_reason_is_complete(gateway, upstream):
    upstream.add(Reply(chunks=sse(*openai_chunks("ok"), done=False)))
    evs = events(post_stream(gateway))
    assert evs[-1] == "[DONE]"
    assert evs[-2]["choices"][0]["finish_reason"] == "stop"
    assert evs[-2]["usage"]["total_tokens"] == 10


def test_clean_end_without_finish_reason_is_an_error(gateway, upstream):
    upstream.add(Reply(chunks=sse(*openai_chunks("ok")[:2], done=False)))
    evs = events(post_stream(gateway))
    assert evs[-2]["error"]["message"] == "upstream stream ended before the answer was complete"


def test_malformed_event_is_skipped(gateway, upstream):
    chunks = sse(*openai_chunks("a", "b"))
    chunks.insert(2, b"data: {not json\n\n")
    upstream.add(Reply(chunks=chunks))
    evs = events(post_stream(gateway))
    text = "".join(e["choices"][0]["delta"].get("content", "") for e in evs[:-1])
    assert text == "ab"
    assert evs[-2]["choices"][0]["finish_reason"] == "stop"


def test_finish_reason_normalised(gateway, upstream):
    upstream.add(Reply(chunks=sse(*openai_chunks("a", finish_reason="eos"))))
    evs = events(post_stream(gateway))
    assert evs[-2]["choices"][0]["finish_reason"] == "stop"


def test_multiple_choices_keep_their_finish_reasons(gateway, upstream):
    base = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    upstream.add(Reply(chunks=sse(
        {**base, "choices": [{"index": 0, "delta": {"content": "a"}}, {"index": 1, "delta": {"content": "b"}}]},
        {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"},
                             {"index": 1, "delta": {}, "finish_reason": "length"}]})))
    evs = events(post_stream(gateway, n=2))
    assert evs[-2]["choices"] == [{"index": 0, "delta": {}, "finish_reason": "stop"},
                                  {"index": 1, "delta": {}, "finish_reason": "length"}]


def test_chunk_with_unexpected_shape_is_an_in_band_protocol_error(gateway, upstream):
    chunks = openai_chunks("a")
    bad = {**chunks[1], "choices": -1}
    upstream.add(Reply(chunks=sse(chunks[0], chunks[1], bad, done=False)))
    evs = events(post_stream(gateway))
    assert evs[-2]["error"]["type"] == "upstream_protocol_error"
    assert evs[-2]["status_code"] == 502


def test_stream_without_chunked_encoding_is_relayed_as_it_arrives(gateway, upstream):
    """Some servers stream SSE as a body that simply ends when the connection closes; each event must still
    reach the client when it is produced, not when the body ends."""
    chunks = sse(*openai_chunks("first", " second"))
    upstream.add(Reply(chunks=[*chunks[:2], 1.0, *chunks[2:]], chunked=False))
    r = requests.post(gateway + "/v1/chat/completions", stream=True,
                      json={"model": "openai/gpt-4o-mini", "stream": True, "messages": HI})
    t0 = time.monotonic()
    first = b""
    while b'"first"' not in first:  # read1: whatever has arrived (this test server's reply is not chunked)
        first += r.raw.read1(65536)
    assert time.monotonic() - t0 < 0.8
    rest = first + r.raw.read()
    assert rest.endswith(b"data: [DONE]\n\n") and b" second" in rest


def test_upstream_keep_alives_are_passed_on_after_the_first_byte(gateway, upstream):
    """Keep-alive comments from the upstream reach the client, so proxies in front of it do not cut a long
    silence (e.g. a model thinking between tokens) either; before the first byte they are swallowed."""
    chunks = sse(*openai_chunks("a", "b"))
    upstream.add(Reply(chunks=[b": OPENROUTER PROCESSING\n\n", *chunks[:2], b": ping\n\n", *chunks[2:]]))
    r = post_stream(gateway)
    body = r.text
    assert body.count(": ping\n\n") == 1
    assert "OPENROUTER" not in body
    assert body.index('"a"') < body.index(": ping") < body.index('"b"')
    assert events(r)[-1] == "[DONE]"
