"""The output wire shape: the one place that knows what a completion and a chunk look like to the client."""

from __future__ import annotations

from ..errors import UpstreamProtocolError

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


def completion(result: dict, *, provider: str, model_requested: str, latency_ms: int) -> dict:
    """Finish an adapter's chat.completion dict for the client: normalised finish reasons, extra_fields."""
    result.setdefault("object", "chat.completion")
    if "usage" in result:
        fixed = usage(result["usage"])
        if fixed is None:
            del result["usage"]
    for choice in result.get("choices") or ():
        choice["finish_reason"] = finish_reason(choice.get("finish_reason"))
        msg = choice.get("message")
        if not isinstance(msg, dict):
            raise UpstreamProtocolError("upstream answer has a choice without a message object")
        msg.setdefault("role", "assistant")
    result["extra_fields"] = {
        "request_type": "chat_completion",
        "provider": provider,
        "model_requested": model_requested,
        "latency": latency_ms,
    }
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
