"""The stream path's one fast path (an OpenAI-compatible stream's plain content chunks forwarded as their own
text once the stream's template is learnt) gives exactly what the parse-and-re-encode path gives, for every
chunk shape an OpenAI-compatible upstream sends; shapes it cannot forward safely take the general path."""

import json

import pytest

from bifrost_wsgi.answers import PlainChunk
from bifrost_wsgi.providers.openai_compat import OpenAIStream
from bifrost_wsgi.wire.sse import Event
from bifrost_wsgi.routing.relay import StreamState
from bifrost_wsgi.surfaces.openai_chat import ChatStreamEncoder

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


class Sender:
    """The relay's per-chunk work: normalise (StreamState.take), then encode for the client."""

    def __init__(self):
        self.state = StreamState(0.0, keep_text=True)
        self.state.serve("openai", "gpt-4o-mini")
        self.state.id = "chatcmpl-1"  # a role chunk came first, as always
        self.encoder = ChatStreamEncoder()

    def send(self, item):
        chunk = self.state.take(item)
        return None if chunk is None else self.encoder.chunk(chunk, self.state)


def _events(out: bytes):
    assert out.startswith(b"data: ") and out.endswith(b"\n\n")
    event = json.loads(out[6:])
    event["extra_fields"].pop("latency")
    return event


def _fresh(text):
    """What the general path makes of an event: a stream that has learnt nothing yet."""
    return OpenAIStream().feed(Event(text))


def _learnt(text):
    """What a stream makes of the event after it has seen the same event once (and learnt its template)."""
    stream = OpenAIStream()
    stream.feed(Event(text))
    return stream.feed(Event(text))


@pytest.mark.parametrize("chunk", [c[1] for c in CHUNKS], ids=[c[0] for c in CHUNKS])
@pytest.mark.parametrize("separators", [COMPACT, None], ids=["compact", "spaced"])
def test_fast_path_equals_general_path(chunk, separators):
    text = json.dumps(chunk, separators=separators)
    fast, general = Sender(), Sender()
    got = [fast.send(item) for item in _learnt(text)]
    want = [general.send(item) for item in _fresh(text)]
    assert [g is None for g in got] == [w is None for w in want]
    for g, w in zip(got, want):
        if g is not None:
            assert _events(g) == _events(w)
            assert b"null" not in g.replace(b'\\"usage\\":null', b"")
    assert fast.state.text == general.state.text
    assert (fast.state.usage, fast.state.finish) == (general.state.usage, general.state.finish)


PLAIN = {"plain content with nulls", "content with quotes and null-looking text", "unicode and escapes",
         "refusal null in delta", "obfuscation and service tier", "escapes everywhere",
         "fingerprint null before choices"}


@pytest.mark.parametrize("name, chunk", CHUNKS, ids=[c[0] for c in CHUNKS])
def test_exactly_the_plain_chunks_take_the_fast_path(name, chunk):
    text = json.dumps(chunk, separators=COMPACT)
    assert not any(isinstance(item, PlainChunk) for item in _fresh(text))  # the first is always parsed
    assert any(isinstance(item, PlainChunk) for item in _learnt(text)) == (name in PLAIN)


def test_plain_openai_chunk_is_forwarded_as_its_own_text():
    text = json.dumps(CHUNKS[0][1], separators=COMPACT)
    [item] = _learnt(text)
    assert isinstance(item, PlainChunk)
    out = Sender().send(item)
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
    assert not any(isinstance(item, PlainChunk) for item in _learnt(text))


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
    stream.feed(Event(LEARNED))
    assert stream.template is not None
    text = LEARNED[:AT] + literal + LEARNED[AT + 5:]
    learned, fresh = stream.feed(Event(text)), _fresh(text)
    assert [i.as_dict() if isinstance(i, PlainChunk) else i for i in learned] == fresh
    for a in learned:
        if isinstance(a, PlainChunk):
            assert a.content() == fresh[0]["choices"][0]["delta"]["content"]


def test_template_follows_a_stream_whose_id_changes():
    stream = OpenAIStream()
    stream.feed(Event(LEARNED))
    other = LEARNED.replace("chatcmpl-1", "chatcmpl-2")
    stream.feed(Event(other))
    [item] = stream.feed(Event(other))
    assert isinstance(item, PlainChunk) and '"chatcmpl-2"' in item.json_without_nulls()


def test_a_stream_that_keeps_changing_shape_stops_being_learnt():
    stream = OpenAIStream()
    for i in range(10):
        stream.feed(Event(LEARNED.replace("chatcmpl-1", f"chatcmpl-{i}")))
    assert stream.relearn == 0
