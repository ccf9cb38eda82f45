"""The Anthropic Messages request (``POST /anthropic/v1/messages``): validated with the schema's helpers
(``param`` is the path in the Anthropic body), kept as sent for an Anthropic upstream, and read as the chat
request every other provider is served from.

The chat reading follows the wire formats' correspondences: ``system`` becomes a system message,
``tool_use`` blocks an assistant's ``tool_calls``, ``tool_result`` blocks tool messages (placed before the
rest of their user turn, as OpenAI wants them right after the assistant's calls), thinking blocks
``reasoning_details`` (signatures kept, so providers that verify them get them back), images and PDFs
content parts, ``thinking.budget_tokens`` ``reasoning.max_tokens``, ``stop_sequences`` ``stop``,
``metadata.user_id`` ``user``.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field

from ..errors import BadRequest, UnsupportedParameter
from .fields import model_target, validated
from ..schema import (ChatRequest, Message, any_object, array, boolean, cache_control, enum, integer, number, obj,
                      one_of_string_or, split_model, string, _fail)

#: the provider of a model named without ``provider/``
DEFAULT_PROVIDER = "anthropic"

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode

# --- the Anthropic body's schema ----------------------------------------------------------------------

source = obj({"type": enum("base64", "url", "text", "file"), "media_type": string, "data": string, "url": string,
              "file_id": string}, required=("type",))

#: the member each block type cannot do without
_BLOCK_PAYLOAD = {"text": ("text",), "image": ("source",), "document": ("source",),
                  "tool_use": ("id", "name"), "tool_result": ("tool_use_id",), "thinking": ("thinking",),
                  "redacted_thinking": ("data",)}


def _check_block(block, path):
    for needed in _BLOCK_PAYLOAD.get(block["type"], ()):
        if needed not in block:
            _fail(f"{path}.{needed}", f"is required for a {block['type']} block")


def _block_content(value, path):
    return one_of_string_or(array(block), what="a string or an array of content blocks")(value, path)


block = obj({"type": string, "text": string, "source": source, "id": string, "name": string, "input": any_object,
             "tool_use_id": string, "content": _block_content, "is_error": boolean, "thinking": string,
             "signature": string, "data": string, "title": string, "cache_control": cache_control},
            required=("type",), check=_check_block)
message = obj({"role": enum("user", "assistant"),
               "content": one_of_string_or(array(block), what="a string or an array of content blocks")},
              required=("role", "content"))
system = one_of_string_or(array(obj({"type": enum("text"), "text": string, "cache_control": cache_control},
                                    required=("type", "text"))), what="a string or an array of text blocks")
tool = obj({"name": string, "description": string, "input_schema": any_object, "type": string,
            "cache_control": cache_control}, required=("name",))


def _check_tool_choice(choice, path):
    if choice["type"] == "tool" and "name" not in choice:
        _fail(f"{path}.name", "is required when type is tool")


tool_choice = obj({"type": enum("auto", "any", "tool", "none"), "name": string,
                   "disable_parallel_tool_use": boolean}, required=("type",), check=_check_tool_choice)


def _check_thinking(thinking, path):
    if thinking["type"] == "enabled" and "budget_tokens" not in thinking:
        _fail(f"{path}.budget_tokens", "is required when type is enabled")


thinking = obj({"type": enum("enabled", "disabled", "adaptive"), "budget_tokens": integer(1)},
               required=("type",), check=_check_thinking)

PARAMS = {
    "max_tokens": integer(1),
    "system": system,
    "messages": array(message, min_items=1),
    "temperature": number(0, 1),
    "top_p": number(0, 1),
    "top_k": integer(0),
    "stop_sequences": array(string),
    "stream": boolean,
    "metadata": obj({"user_id": string}),
    "tools": array(tool),
    "tool_choice": tool_choice,
    "thinking": thinking,
    "service_tier": string,
}


@dataclass(slots=True)
class MessagesRequest(ChatRequest):
    """A chat request that also keeps the Anthropic body as it came (``raw`` its bytes, ``native`` parsed),
    the ``anthropic-*`` headers and the query string the client sent, for an Anthropic upstream."""

    native: dict = field(default_factory=dict)
    raw: bytes = b""
    headers: dict = field(default_factory=dict)
    query: str = ""

    def with_target(self, provider: str, model: str) -> "MessagesRequest":
        return MessagesRequest(provider, model, self.messages, self.params, self.fallbacks, self.stream,
                               self.extra, self.native, self.raw, self.headers, self.query)


def parse_messages(body, *, raw: bytes = b"", counting: bool = False) -> MessagesRequest:
    """Validate an Anthropic Messages body in document order and read it as a chat request. ``counting``:
    a count_tokens body, which has no ``max_tokens``."""
    if not isinstance(body, dict):
        raise BadRequest("invalid request format: request body must be a JSON object")
    if body.get("model") is None:
        _fail("model", "is required")
    provider, model = model_target(string(body["model"], "model"), default=DEFAULT_PROVIDER)
    valid = validated(body, PARAMS, required=("messages",) if counting else ("max_tokens", "messages"))
    fallbacks = []
    if body.get("fallbacks") is not None:
        fallbacks = [split_model(v) for v in array(string)(body["fallbacks"], "fallbacks")]
    req = MessagesRequest(provider, model, [], {}, fallbacks, bool(valid.get("stream")), {}, body, raw)
    try:
        _read_as_chat(req, valid)
    except UnsupportedParameter:
        if provider != DEFAULT_PROVIDER:
            raise
        # Anthropic takes the body as it is; only providers that need the chat reading cannot serve it
        req.messages, req.params, req.fallbacks = [], {}, [f for f in fallbacks if f[0] == DEFAULT_PROVIDER]
    return req


# --- the chat reading ------------------------------------------------------------------------------


def _read_as_chat(req: MessagesRequest, valid: dict) -> None:
    messages = []
    if "system" in valid:
        messages.append(_system_message(valid["system"]))
    for i, msg in enumerate(valid["messages"]):
        messages.extend(_TURNS[msg["role"]](msg["content"], f"messages[{i}].content"))
    req.messages = [Message.from_valid(m) for m in messages]
    params, extra = req.params, req.extra
    if "max_tokens" in valid:
        params["max_completion_tokens"] = valid["max_tokens"]
    for name in ("temperature", "top_p"):
        if name in valid:
            params[name] = valid[name]
    if "top_k" in valid:
        extra["top_k"] = valid["top_k"]
    if valid.get("stop_sequences"):
        params["stop"] = valid["stop_sequences"]
    user = valid.get("metadata", {}).get("user_id")
    if user:
        params["user"] = user
    if valid.get("tools"):
        params["tools"] = [_tool(t, f"tools[{i}]") for i, t in enumerate(valid["tools"])]
    if "tool_choice" in valid:
        choice = valid["tool_choice"]
        params["tool_choice"] = (_TOOL_CHOICES[choice["type"]] if choice["type"] != "tool"
                                 else {"type": "function", "function": {"name": choice["name"]}})
        if choice.get("disable_parallel_tool_use"):
            params["parallel_tool_calls"] = False
    reasoning = _reasoning(valid.get("thinking"))
    if reasoning is not None:
        params["reasoning"] = reasoning
    if req.stream:
        params["stream_options"] = {"include_usage": True}  # message_delta reports the usage


_TOOL_CHOICES = {"auto": "auto", "any": "required", "none": "none"}


def _reasoning(thinking: dict | None) -> dict | None:
    if thinking is None or thinking["type"] == "disabled":
        return None
    if thinking["type"] == "adaptive":
        return {"enabled": True}
    return {"max_tokens": thinking["budget_tokens"]}


def _tool(tool: dict, path: str) -> dict:
    if "input_schema" not in tool and tool.get("type", "custom") != "custom":
        raise UnsupportedParameter(f"server tool {tool['type']} is only supported by anthropic", param=path)
    fn = {"name": tool["name"]}
    if tool.get("description"):
        fn["description"] = tool["description"]
    fn["parameters"] = tool.get("input_schema") or {"type": "object", "properties": {}}
    out = {"type": "function", "function": fn}
    if "cache_control" in tool:
        out["cache_control"] = tool["cache_control"]
    return out


def _system_message(value) -> dict:
    if isinstance(value, str):
        return {"role": "system", "content": value}
    return {"role": "system", "content": [_text_part(b) for b in value]}


def _text_part(b: dict) -> dict:
    part = {"type": "text", "text": b["text"]}
    if "cache_control" in b:
        part["cache_control"] = b["cache_control"]
    return part


def _user_turn(content, path: str) -> list[dict]:
    """Tool results first (each its own tool message), then the rest of the turn as one user message."""
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    out, parts = [], []
    for j, b in enumerate(content):
        kind = b["type"]
        if kind == "tool_result":
            text, images = _tool_result(b, f"{path}[{j}].content")
            out.append({"role": "tool", "tool_call_id": b["tool_use_id"], "content": text})
            parts.extend(images)
        elif kind in ("thinking", "redacted_thinking"):
            continue  # only an assistant's thinking means anything to a model
        else:
            parts.append(_part(b, f"{path}[{j}]"))
    if parts:
        out.append({"role": "user", "content": parts})
    return out


def _tool_result(b: dict, path: str) -> tuple[str, list[dict]]:
    """A tool result's text (tool messages are text for most providers) and its images, which join the
    user message that follows."""
    content = b.get("content", "")
    if isinstance(content, str):
        texts, images = [content], []
    else:
        texts = [c["text"] for c in content if c["type"] == "text"]
        images = [_part(c, f"{path}[{k}]") for k, c in enumerate(content) if c["type"] != "text"]
    text = "\n".join(texts)
    if b.get("is_error"):
        text = f"Error: {text}" if text else "Error"
    return text, images


def _assistant_turn(content, path: str) -> list[dict]:
    if isinstance(content, str):
        return [{"role": "assistant", "content": content}]
    texts, calls, thoughts, details = [], [], [], []
    for j, b in enumerate(content):
        kind = b["type"]
        if kind == "text":
            texts.append(b["text"])
        elif kind == "tool_use":
            calls.append({"id": b["id"], "type": "function",
                          "function": {"name": b["name"], "arguments": _dumps(b.get("input") or {})}})
        elif kind == "thinking":
            thoughts.append(b["thinking"])
            detail = {"type": "reasoning.text", "index": len(details), "text": b["thinking"]}
            if b.get("signature"):
                detail["signature"] = b["signature"]
            details.append(detail)
        elif kind == "redacted_thinking":
            details.append({"type": "reasoning.encrypted", "index": len(details), "data": b["data"]})
        else:
            raise UnsupportedParameter(f"{kind} blocks in assistant turns are only supported by anthropic",
                                       param=f"{path}[{j}]")
    msg: dict = {"role": "assistant", "content": "".join(texts)}
    optional = (("tool_calls", calls), ("reasoning", "".join(thoughts)), ("reasoning_details", details))
    msg.update((name, value) for name, value in optional if value)
    return [msg]


_TURNS = {"user": _user_turn, "assistant": _assistant_turn}


def _part(b: dict, path: str) -> dict:
    convert = _PARTS.get(b["type"])
    if convert is None:
        raise UnsupportedParameter(f"{b['type']} blocks are only supported by anthropic", param=path)
    part = convert(b, path)
    if "cache_control" in b:
        part["cache_control"] = b["cache_control"]
    return part


def _image(b: dict, path: str) -> dict:
    src = b["source"]
    if src["type"] == "url" and "url" in src:
        return {"type": "image_url", "image_url": {"url": src["url"]}}
    if src["type"] == "base64" and "data" in src:
        return {"type": "image_url", "image_url": {"url": f"data:{src.get('media_type', 'image/png')};base64,"
                                                          f"{src['data']}"}}
    raise UnsupportedParameter(f"{src['type']} image sources are only supported by anthropic",
                               param=f"{path}.source")


def _document(b: dict, path: str) -> dict:
    src = b["source"]
    if src["type"] == "base64" and "data" in src:
        data = f"data:{src.get('media_type', 'application/pdf')};base64,{src['data']}"
    elif src["type"] == "text" and "data" in src:
        data = "data:text/plain;base64," + base64.b64encode(src["data"].encode()).decode()
    else:
        raise UnsupportedParameter(f"{src['type']} document sources are only supported by anthropic",
                                   param=f"{path}.source")
    file = {"file_data": data}
    if b.get("title"):
        file["filename"] = b["title"]
    return {"type": "file", "file": file}


_PARTS = {"text": lambda b, path: {"type": "text", "text": b["text"]}, "image": _image, "document": _document}
