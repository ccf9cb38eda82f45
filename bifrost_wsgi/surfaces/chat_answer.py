"""Reading a chat answer for the surfaces that write another format (Anthropic, Bedrock): tool-call
arguments as an object, the stop reason, and the prompt count split as those formats count it."""

from __future__ import annotations

import json


def tool_input(arguments) -> dict:
    """A tool call's JSON arguments as the object those formats carry (``{}`` when they are not one)."""
    try:
        value = json.loads(arguments) if arguments else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def stop_reason(finish: str, *, tools: bool, reasons: dict[str, str]) -> str:
    """``reasons`` maps chat finish reasons (``tool_calls`` to the format's tool-use reason); tool calls that
    came back make it that reason whatever the provider said, unless the answer was cut by the limit."""
    if tools and finish != "length":
        finish = "tool_calls"
    return reasons.get(finish) or reasons["stop"]


def token_counts(usage: dict | None) -> tuple[int, int, int, int]:
    """(input without cache reads and writes, cache reads, cache writes, output): chat's prompt count holds
    all three inputs."""
    u = usage or {}
    details = u.get("prompt_tokens_details") or {}
    read, write = details.get("cached_tokens") or 0, details.get("cache_write_tokens") or 0
    return max((u.get("prompt_tokens") or 0) - read - write, 0), read, write, u.get("completion_tokens") or 0
