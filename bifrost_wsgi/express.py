"""The express lane: a plain OpenAI content chunk relayed straight from the upstream's bytes.

PERF: under gunicorn, with streams running side by side, a microsecond of Python per chunk costs about five
of CPU (threads take turns on cold caches), and the general path (SSE decoder, translator, relay) runs a
dozen Python functions per chunk. Once the translator has learnt the stream's template
(openai_compat.Template), the next chunks repeat its text around the content byte for byte. A read that
holds exactly one such ``data:`` event, arriving at an event boundary, is checked and stamped here in one
step; anything else, or any doubt, returns None and takes the general path, which gives the same bytes
(tests/test_relay.py holds the two paths to that).
"""

from __future__ import annotations

from .providers.openai_compat import Template, is_string


class Lane:
    __slots__ = ("template", "relay", "_head", "_tail", "_cut", "_out_head", "_out_tail")

    def __init__(self, template: Template, relay) -> None:
        self.template = template
        self.relay = relay
        # the wire form of one event whose data is the template around a string: no newline can occur
        # inside (JSON has none outside strings, and none raw inside them), so this is exactly one event
        self._head = b"data: " + template.head.encode()
        self._tail = template.tail.encode() + b"\n\n"
        self._cut = len(self._tail)
        self._out_head = b"data: " + template.out_head.encode()
        self._out_tail = template.out_tail[:-1].encode()  # extra_fields goes before the closing brace

    def __call__(self, body: bytes) -> bytes | None:
        """The event to send for ``body`` (one whole upstream event), or None when it is not a plain one."""
        if not (body.startswith(self._head) and body.endswith(self._tail)):
            return None
        literal = body[len(self._head):len(body) - self._cut]
        try:
            text = literal.decode()
        except UnicodeDecodeError:
            return None  # the general path replaces what is not UTF-8
        inner = text[1:-1]
        if not inner:
            return None  # an empty content chunk is not a plain one
        if '"' in inner or "\\" in inner or not inner.isprintable() or text[0] != '"' or text[-1] != '"':
            if not is_string(text):  # escapes, or not one string: the careful check
                return None
        return b"".join((self._out_head, literal, self._out_tail, self.relay.fields().encode(), b"}\n\n"))
