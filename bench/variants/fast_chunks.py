"""PROTOTYPE, not gateway code: a byte-level fast path for plain OpenAI content chunks, applied by patching the
installed classes, so its effect can be measured before anyone changes the package:

    python bench/run.py --gateway-app variants.fast_chunks:application

A chunk whose JSON text, once OpenAI's usual null members are cut out as exact substrings, holds no other
null, no finish_reason, usage, role, tool_calls or error, a non-empty delta and the chunk object type, is
forwarded as text with ``extra_fields`` spliced in before its closing brace: no ``json.loads``, no dict work,
no ``json.dumps``. Anything else takes the normal path. The output is the same JSON (byte for byte for
ASCII text; non-ASCII stays as the upstream wrote it instead of being \\u-escaped).

Left out on purpose, as a real change would have to decide them: the text of such chunks is not added to
``Relay.text`` (resumed fallbacks need it), and the upstream JSON is trusted to be well formed.
"""

import json
import time

from bifrost_wsgi import streaming
from bifrost_wsgi.providers import openai_compat

_NULLS = (',"logprobs":null', ',"finish_reason":null', ',"usage":null', ',"refusal":null')
_SLOW = ("null", '"finish_reason"', '"usage"', '"tool_calls"', '"error"', '"role"', '"delta":{}', '"choices":[]')
_dumps = json.JSONEncoder(separators=(",", ":")).encode


class RawChunk(str):
    """A chunk's JSON text that needs nothing but extra_fields."""

    __slots__ = ()


_feed = openai_compat.OpenAIStream.feed
_prepare = streaming.Relay.prepare
_stamp = streaming.Relay.stamp
_has_content = streaming._has_content
_prefixes: dict = {}


def feed(self, event):
    data = event.data
    if data[:1] == "{" and data[-1:] == "}" and not event.event and '"object":"chat.completion.chunk"' in data:
        text = data
        for member in _NULLS:
            text = text.replace(member, "")
        if not any(marker in text for marker in _SLOW):
            return [RawChunk(text)]
    return _feed(self, event)


def prepare(self, chunk):
    if type(chunk) is RawChunk:
        if not self.id:  # id, model, created of the answer: learnt from the first such chunk, the slow way
            _prepare(self, json.loads(chunk))
        return chunk
    return _prepare(self, chunk)


def stamp(self, chunk):
    if type(chunk) is not RawChunk:
        return _stamp(self, chunk)
    now = time.monotonic()
    if self.first_at is None:
        self.first_at = now
    key = (self.provider, self.model_requested)
    prefix = _prefixes.get(key)
    if prefix is None:
        prefix = _prefixes[key] = (
            b',"extra_fields":{"request_type":"chat_completion_stream","provider":' + _dumps(self.provider).encode()
            + b',"model_requested":' + _dumps(self.model_requested).encode() + b',"chunk_index":')
    out = b"data: " + chunk[:-1].encode() + prefix + b'%d,"latency":%d}}\n\n' % (
        self.index, int((now - self.last) * 1000))
    self.index += 1
    self.last = now
    return out


def has_content(chunk):
    if type(chunk) is RawChunk:
        return '"content":""' not in chunk
    return _has_content(chunk)


openai_compat.OpenAIStream.feed = feed
streaming.Relay.prepare = prepare
streaming.Relay.stamp = stamp
streaming._has_content = has_content

from bifrost_wsgi.wsgi import application  # noqa: E402  (after the patches: the app is built on import)

__all__ = ["application"]
