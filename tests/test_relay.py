"""The relay's text fast path (forwarding a plain OpenAI content chunk's own text) gives exactly what the
parse-and-re-encode path gives, for every chunk shape an OpenAI-compatible upstream sends; shapes it cannot
forward safely take the full path."""

import json

import pytest

from bifrost_wsgi.express import Lane
from bifrost_wsgi.providers.openai_compat import OpenAIStream, PlainChunk
from bifrost_wsgi.wire.sse import Event
from bifrost_wsgi.routing.relay import Relay

BASE = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1730000000, "model": "gpt-4o-mini"}
COMPACT = (",", ":")

CHUNKS = [
    ("plain content with nulls", {**BASE, "system_fingerprint": "fp_1", "choices": [
        {"index": 0, "delta": {"content": "Hel"}, "logprobs": None, "finish_reason": None}], "usage": None}),
    ("content with quotes and null-looking text", {**BASE, "choices": [
        {"index": 0, "delta": {"content": 'say ,"usage":null and "x"'}, "logprobs": None, "finish_reason": None}]}),
    ("unicode and escapes", {**BASE, "choices": [{"index": 0, "delta": {"content": "é\u2028\n\t"}, "finish_reason": None}]}),
    ("two choices", {**BASE, "choices": [{"index": 0, "delta": {"content": "a"}, "finish_reason": None},
                                         {"index": 1, "delta": {"content": "b"}, "finish_reason": None}]}),
    ("refusal null in delta", {**BASE, "choices": [{"index": 0, "delta": {"content": "x", "refusal": None}}]}),
    ("obfuscation and service tier", {**BASE, "service_tier": "default", "obfuscation": "abc",
                                      "choices": [{"index": 0, "delta": {"content": "x"}}]}),
    ("escapes everywhere", {**BASE, "model": "m\"odel\\x", "choices": [
        {"index": 0, "delta": {"content": "q\" b\\ nl\n tab\t u\u00e9 \u2028 /"}, "logprobs": None, "finish_reason": None}],
        "usage": None}),
    ("fingerprint null before choices", {**BASE, "system_fingerprint": None, "choices": [
        {"index": 0, "delta": {"content": "x"}, "finish_reason": None, "logprobs": None}], "usage": None}),
    # not forwarded as text: each needs the full path
    ("role chunk", {**BASE, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}),
    ("finish chunk", {**BASE, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
    ("usage chunk", {**BASE, "choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}}),
    ("tool call", {**BASE, "choices": [{"index": 0, "delta": {"tool_calls": [
        {"index": 0, "function": {"arguments": "{}"}}]}}]}),
    ("logprobs present", {**BASE, "choices": [{"index": 0, "delta": {"content": "x"},
                                               "logprobs": {"content": [{"token": "x", "logprob": -0.1}]}}]}),
    ("null as first member", {"choices": [{"logprobs": None, "index": 0, "delta": {"content": "x"}}], **BASE}),
    ("unknown member", {**BASE, "x_provider": {"a": None}, "choices": [{"index": 0, "delta": {"content": "x"}}]}),
]


def _relay():
    relay = Relay(0.0, keep_text=True)
    relay.serve("openai", "gpt-4o-mini")
    relay.id = "chatcmpl-1"  # a role chunk came first, as always
    return relay


def _events(out: bytes):
    assert out.startswith(b"data: ") and out.endswith(b"\n\n")
    event = json.loads(out[6:])
    event["extra_fields"].pop("latency")
    return event


def _items(text):
    return OpenAIStream().feed(Event(text))


@pytest.mark.parametrize("chunk", [c[1] for c in CHUNKS], ids=[c[0] for c in CHUNKS])
@pytest.mark.parametrize("separators", [COMPACT, None], ids=["compact", "spaced"])
def test_fast_path_equals_full_path(chunk, separators):
    text = json.dumps(chunk, separators=separators)
    fast, full = _relay(), _relay()
    got = [fast.encode(item) for item in _items(text)]
    want = [full.encode(item if type(item) is dict else item.as_dict()) for item in _items(text)]
    assert [g is None for g in got] == [w is None for w in want]
    for g, w in zip(got, want):
        if g is not None:
            assert _events(g) == _events(w)
            assert b"null" not in g.replace(b'\\"usage\\":null', b"")
    assert fast.text == full.text
    assert (fast.usage, fast.finish) == (full.usage, full.finish)


def test_plain_openai_chunk_is_forwarded_as_its_own_text():
    chunk = CHUNKS[0][1]
    text = json.dumps(chunk, separators=COMPACT)
    [item] = _items(text)
    assert isinstance(item, PlainChunk)
    out = _relay().encode(item)
    assert out.startswith(b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1730000000,'
                          b'"model":"gpt-4o-mini","system_fingerprint":"fp_1","choices":[{"index":0,'
                          b'"delta":{"content":"Hel"}}],"extra_fields":{"request_type":"chat_completion_stream",'
                          b'"provider":"openai","model_requested":"gpt-4o-mini","chunk_index":0,"latency":')


@pytest.mark.parametrize("text", [
    '{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"a\x01"}}]}',
    '{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"a\\q"}}]}',
    '{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"a"}}]',
    '{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"a"}}]}}',
], ids=["raw control character", "invalid escape", "cut short", "extra brace"])
def test_invalid_json_is_never_forwarded_as_text(text):
    assert not any(isinstance(item, PlainChunk) for item in _items(text))


# After a plain chunk, the next chunks of the same stream are recognised by the text around their content
# (the template); whatever sits where the content was must give what a fresh stream gives for that chunk.
LEARNED = json.dumps(CHUNKS[0][1], separators=COMPACT)
AT = LEARNED.index('"Hel"')


LITERALS = [
    '"lo"', '" world"', '"é ✓ 😀"', '"\u2028"', '"\x7f"', '"a\\"b"', '"a\\\\"', '"nl\\n tab\\t"', '"\\u00e9"',
    '"say ,\\"usage\\":null"', '""', '"a\x01"', '"a\\q"', '"a\\u12"', '"a","refusal":"b"', '"a"}],"x":{"y":"b"',
    '"a', 'a"', '"', '"a"b"', 'null', '1',
]


@pytest.mark.parametrize("literal", LITERALS, ids=repr)
def test_template_gives_what_a_fresh_stream_gives(literal):
    stream = OpenAIStream()
    assert isinstance(stream.feed(Event(LEARNED))[0], PlainChunk)
    text = LEARNED[:AT] + literal + LEARNED[AT + 5:]
    learned, fresh = stream.feed(Event(text)), _items(text)
    assert [type(i) for i in learned] == [type(i) for i in fresh]
    for a, b in zip(learned, fresh):
        if isinstance(a, PlainChunk):
            assert (a.json_without_nulls(), a.content()) == (b.json_without_nulls(), b.content())
            json.loads(a.json_without_nulls())
        else:
            assert a == b


def test_template_follows_a_stream_whose_id_changes():
    stream = OpenAIStream()
    stream.feed(Event(LEARNED))
    other = LEARNED.replace("chatcmpl-1", "chatcmpl-2")
    [item] = stream.feed(Event(other))
    assert isinstance(item, PlainChunk) and '"chatcmpl-2"' in item.json_without_nulls()


@pytest.mark.parametrize("literal", LITERALS, ids=repr)
def test_express_lane_takes_exactly_the_plain_chunks_and_gives_the_same_event(literal):
    stream = OpenAIStream()
    stream.feed(Event(LEARNED))
    text = LEARNED[:AT] + literal + LEARNED[AT + 5:]
    express, general = _relay(), _relay()
    express.keep_text = general.keep_text = False
    got = Lane(stream.template, express)(b"data: " + text.encode() + b"\n\n")
    items = stream.feed(Event(text))
    assert (got is not None) == any(isinstance(i, PlainChunk) for i in items)
    if got is not None:
        assert got.replace(b'"latency":0', b"") == general.encode(items[0]).replace(b'"latency":0', b"")
        assert express.index == general.index == 1


@pytest.mark.parametrize("body", [
    b"data: " + LEARNED.encode() + b"\n\n\n",  # a blank line too many is still one event, but not this shape
    b"data: " + LEARNED.encode() + b"\n",
    b"data:" + LEARNED.encode() + b"\n\n",
    b"event: x\ndata: " + LEARNED.encode() + b"\n\n",
    b"data: " + LEARNED.replace('"Hel"', '"\xff"').encode("latin-1") + b"\n\n",
    b"data: " + LEARNED.encode() + b"\n\ndata: " + LEARNED.encode() + b"\n\n",
], ids=["extra blank line", "unfinished event", "no space", "named event", "not UTF-8", "two events"])
def test_express_lane_leaves_everything_else_to_the_general_path(body):
    stream = OpenAIStream()
    stream.feed(Event(LEARNED))
    relay = _relay()
    assert Lane(stream.template, relay)(body) is None
    assert relay.index == 0
