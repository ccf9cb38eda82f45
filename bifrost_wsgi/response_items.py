"""The Responses API's answer vocabulary every layer shares (like answers.py for chat): the Response object and
its output items, usage in its shape, a whole chat.completion as a Response, and ``RawEvent``, an upstream
Responses stream event that is relayed as it came."""

from __future__ import annotations

import json
import random
import time

#: the events that end a Responses stream
TERMINAL = frozenset({"response.completed", "response.failed", "response.incomplete"})


class RawEvent:
    """An upstream Responses event relayed as it came: ``kind`` (its type), ``data`` (its JSON text, sent
    unchanged) and ``parsed`` (the same, read once for the end of the stream and the usage)."""

    __slots__ = ("kind", "data", "parsed")

    def __init__(self, kind: str, data: str, parsed: dict) -> None:
        self.kind, self.data, self.parsed = kind, data, parsed


def new_id(prefix: str) -> str:
    # PERF: ids only need to be unique, not secret: the seeded generator (reseeded in each forked worker)
    # costs a fraction of uuid4's os.urandom call, and a translated answer takes several
    return f"{prefix}_{random.getrandbits(128):032x}"



def usage_from_chat(usage: dict | None) -> dict:
    usage = usage or {}
    prompt, completion = usage.get("prompt_tokens") or 0, usage.get("completion_tokens") or 0
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": prompt_details.get("cached_tokens") or 0},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": completion_details.get("reasoning_tokens") or 0},
        "total_tokens": usage.get("total_tokens") or prompt + completion,
    }


def text_part(text: str) -> dict:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def message_item(item_id: str, text: str | None, *, status: str = "completed") -> dict:
    content = [] if text is None else [text_part(text)]
    return {"id": item_id, "type": "message", "status": status, "role": "assistant", "content": content}


def function_call_item(item_id: str, call_id: str, name: str, arguments: str, *, status: str = "completed") -> dict:
    return {"id": item_id, "type": "function_call", "status": status, "call_id": call_id, "name": name,
            "arguments": arguments}


def reasoning_item(item_id: str, summary: str | None) -> dict:
    return {"id": item_id, "type": "reasoning",
            "summary": [] if summary is None else [{"type": "summary_text", "text": summary}]}


def response_object(*, response_id: str, created: int, model: str, body: dict, output: list, status: str,
                    usage: dict | None, finish: str | None = None) -> dict:
    """A Response as OpenAI shapes it, echoing the request's settings the SDK reads back."""
    incomplete = {"reason": "max_output_tokens"} if finish == "length" else None
    if finish == "content_filter":
        incomplete = {"reason": "content_filter"}
    out = {
        "id": response_id, "object": "response", "created_at": created,
        "status": "incomplete" if incomplete and status == "completed" else status,
        "model": model, "output": output,
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "tool_choice": body.get("tool_choice") or "auto",
        "tools": body.get("tools") or [],
        "text": body.get("text") or {"format": {"type": "text"}},
    }
    for name in ("instructions", "max_output_tokens", "temperature", "top_p", "metadata", "reasoning", "user"):
        if body.get(name) is not None:
            out[name] = body[name]
    if incomplete:
        out["incomplete_details"] = incomplete
    if usage is not None:
        out["usage"] = usage
    return out


def response_from_chat(chat: dict, body: dict) -> dict:
    """A whole chat.completion (checked) as a Response: reasoning, then the message, then function calls."""
    choice = chat["choices"][0]
    message = choice["message"]
    output = []
    reasoning = message.get("reasoning") or message.get("reasoning_content")
    if isinstance(reasoning, str) and reasoning:
        output.append(reasoning_item(new_id("rs"), reasoning))
    content = message.get("content")
    if isinstance(content, list):
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    if content or not message.get("tool_calls"):
        output.append(message_item(new_id("msg"), content or ""))
    for call in message.get("tool_calls") or ():
        fn = call["function"]
        arguments = fn.get("arguments")
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments)
        output.append(function_call_item(new_id("fc"), call.get("id") or new_id("call"), fn["name"], arguments))
    created = chat.get("created") if isinstance(chat.get("created"), int) else int(time.time())
    return response_object(response_id=new_id("resp"), created=created, model=chat.get("model") or "",
                           body=body, output=output, status="completed", usage=usage_from_chat(chat.get("usage")),
                           finish=choice.get("finish_reason"))
