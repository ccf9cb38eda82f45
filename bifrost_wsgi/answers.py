"""The internal answer vocabulary every layer shares: a ``chat.completion`` dict, its stream chunks (dicts in
the ``chat.completion.chunk`` shape, or a PlainChunk kept as the upstream's text), finish reasons and usage.

It is OpenAI's shape (Bifrost's schema), so the unified ``/v1`` surface renders it nearly as it is, and every
other surface translates from it."""

from __future__ import annotations

import json

from .errors import UpstreamProtocolError

# Every finish reason the client sees is one of the four OpenAI values.
FINISH_REASONS = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "content_filter": "content_filter",
    "function_call": "tool_calls",
    "eos": "stop",
    "eos_token": "stop",
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_length": "length",
    "tool_use": "tool_calls",
    "safety": "content_filter",
}


def finish_reason(value) -> str:
    if not value:
        return "stop"
    return FINISH_REASONS.get(str(value).lower(), "stop")


def usage(value) -> dict | None:
    """Usage with the three counts always present as integers (an upstream may omit the total)."""
    if not isinstance(value, dict):
        return None
    prompt = value.get("prompt_tokens")
    completion_tokens = value.get("completion_tokens")
    if not isinstance(prompt, int) or isinstance(prompt, bool):
        prompt = 0
    if not isinstance(completion_tokens, int) or isinstance(completion_tokens, bool):
        completion_tokens = 0
    value["prompt_tokens"], value["completion_tokens"] = prompt, completion_tokens
    total = value.get("total_tokens")
    if not isinstance(total, int) or isinstance(total, bool):
        value["total_tokens"] = prompt + completion_tokens
    return value


def check_completion(result: dict) -> dict:
    """A translator's chat.completion made whole: usage counts, finish reasons, roles; a choice without a
    message is the upstream's fault."""
    result.setdefault("object", "chat.completion")
    if "usage" in result:
        fixed = usage(result["usage"])
        if fixed is None:
            del result["usage"]
    choices = result.get("choices")
    if choices is not None and type(choices) is not list:
        raise UpstreamProtocolError("upstream answer has choices that are not a list")
    for choice in choices or ():
        if type(choice) is not dict or not isinstance(choice.get("message"), dict):
            raise UpstreamProtocolError("upstream answer has a choice without a message object")
        choice["finish_reason"] = finish_reason(choice.get("finish_reason"))
        choice["message"].setdefault("role", "assistant")
    return result


def final_chunk(*, chunk_id: str, created: int, model: str, finish: dict[int, str], usage: dict | None,
                system_fingerprint: str | None = None) -> dict:
    """The closing chunk: empty delta, the final finish_reason per choice, and the usage."""
    chunk = {
        "id": chunk_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": i, "delta": {}, "finish_reason": fr} for i, fr in sorted(finish.items())]
        or [{"index": 0, "delta": {}, "finish_reason": "stop"}],
    }
    if system_fingerprint:
        chunk["system_fingerprint"] = system_fingerprint
    if usage:
        chunk["usage"] = usage
    return chunk


class PlainChunk:
    """A chunk that only carries content, kept as the upstream's OpenAI JSON text (an OpenAI-compatible
    translator's fast path): encoders that speak OpenAI forward ``json_without_nulls()`` as it is, others read
    ``content()``."""

    __slots__ = ("data", "text")

    def __init__(self, data: str, text: str) -> None:
        self.data = data  # the upstream's JSON text without its null members
        self.text = text  # the content as its JSON string literal

    def json_without_nulls(self) -> str:
        return self.data

    def content(self) -> str:
        literal = self.text
        return literal[1:-1] if "\\" not in literal else json.loads(literal)

    def as_dict(self) -> dict:
        return json.loads(self.data)


class NativeAnswer(dict):
    """A complete answer that came in the client's own format (an Anthropic upstream behind the Anthropic
    route): the dict is its chat.completion reading, for usage, logs and metrics; ``native`` is the answer as
    the upstream sent it, which the surface returns unchanged."""

    __slots__ = ("native",)

    def __init__(self, completion: dict, native: dict) -> None:
        super().__init__(completion)
        self.native = native


class RawEvent:
    """A stream event that came in the client's own format, relayed as it came (``data``: its bytes on the
    wire), with what the relay must know of it: whether it carries content, and the usage and finish reason
    it reports (chat vocabulary)."""

    __slots__ = ("data", "content", "usage", "finish")

    def __init__(self, data: bytes, *, content: bool = False, usage: dict | None = None,
                 finish: str | None = None) -> None:
        self.data, self.content, self.usage, self.finish = data, content, usage, finish
