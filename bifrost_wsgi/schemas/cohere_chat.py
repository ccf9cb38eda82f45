"""The Cohere v2 chat request (``POST /cohere/v2/chat``), validated with the schema's helpers and read as the chat
request every provider is served from. Cohere's messages are close to OpenAI's: the differences are its
parameter names (``p``, ``k``, ``max_tokens``, ``stop_sequences``), upper-case ``tool_choice``,
``thinking.token_budget``, assistant ``tool_plan`` and content lists with thinking parts, and tool results
that may be lists of text or documents."""

from __future__ import annotations

import json
from dataclasses import dataclass

from ..errors import UnsupportedParameter
from ..schema import (ChatRequest, Message, any_object, array, boolean, enum, integer, number, obj,
                      one_of_string_or, string)
from .fields import model_target, validated

#: the provider of a model named without ``provider/``
DEFAULT_PROVIDER = "cohere"

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode

content_item = obj({"type": enum("text", "image_url", "thinking", "document"), "text": string, "thinking": string,
                    "image_url": obj({"url": string, "detail": string}, required=("url",)),
                    "document": any_object}, required=("type",))
message = obj({"role": enum("system", "user", "assistant", "tool"),
               "content": one_of_string_or(array(content_item), what="a string or an array of content items"),
               "tool_plan": string, "tool_call_id": string,
               "tool_calls": array(obj({"id": string, "type": string,
                                        "function": obj({"name": string, "arguments": string}, required=("name",))},
                                       required=("function",)))},
              required=("role",))
tool = obj({"type": enum("function"), "function": obj({"name": string, "description": string,
                                                       "parameters": any_object}, required=("name",))},
           required=("function",))

PARAMS = {"messages": array(message, min_items=1), "tools": array(tool), "stream": boolean,
          "max_tokens": integer(1), "temperature": number(0, 2), "p": number(0, 1), "k": integer(0),
          "stop_sequences": array(string), "seed": integer(), "frequency_penalty": number(0, 1),
          "presence_penalty": number(0, 1), "logprobs": boolean, "tool_choice": enum("REQUIRED", "NONE"),
          "response_format": obj({"type": enum("text", "json_object"), "json_schema": any_object}, required=("type",)),
          "thinking": obj({"type": enum("enabled", "disabled"), "token_budget": integer(1)}, required=("type",)),
          "documents": array(any_object), "strict_tools": boolean, "safety_mode": string, "citation_options": any_object}

#: Cohere parameter → chat parameter (same meaning)
_PARAMS = {"max_tokens": "max_completion_tokens", "temperature": "temperature", "p": "top_p",
           "stop_sequences": "stop", "seed": "seed", "frequency_penalty": "frequency_penalty",
           "presence_penalty": "presence_penalty", "logprobs": "logprobs"}


@dataclass(slots=True)
class CohereChatRequest(ChatRequest):
    """A chat request that remembers the model as the client named it."""

    model_name: str = ""

    def with_target(self, provider: str, model: str) -> "CohereChatRequest":
        return CohereChatRequest(provider, model, self.messages, self.params, self.fallbacks, self.stream,
                                 self.extra, self.model_name)


def parse_cohere_chat(body) -> CohereChatRequest:
    valid = validated(body, {"model": string, **PARAMS}, required=("model", "messages"))
    provider, model = model_target(valid["model"], default=DEFAULT_PROVIDER)
    if valid.get("documents"):
        raise UnsupportedParameter("documents are not supported on this route", param="documents")
    stream = bool(valid.get("stream"))
    messages = [Message.from_valid(_message(m, f"messages[{i}]")) for i, m in enumerate(valid["messages"])]
    req = CohereChatRequest(provider, model, messages, {}, [], stream, {}, valid["model"])
    params = req.params
    for name, param in _PARAMS.items():
        if name in valid:
            params[param] = valid[name]
    if "k" in valid:
        req.extra["top_k"] = valid["k"]
    if valid.get("tools"):
        params["tools"] = valid["tools"]
    if "tool_choice" in valid:
        params["tool_choice"] = valid["tool_choice"].lower()
    fmt = valid.get("response_format")
    if fmt and fmt["type"] == "json_object":
        params["response_format"] = ({"type": "json_schema", "json_schema": {"name": "response",
                                                                           "schema": fmt["json_schema"]}}
                                     if fmt.get("json_schema") else {"type": "json_object"})
    thinking = valid.get("thinking")
    if thinking and thinking["type"] == "enabled":
        params["reasoning"] = {"max_tokens": thinking["token_budget"]} if "token_budget" in thinking \
            else {"enabled": True}
    if stream:
        params["stream_options"] = {"include_usage": True}
    return req


def _message(m: dict, path: str) -> dict:
    """A Cohere message as an OpenAI one: text parts joined where OpenAI wants text, thinking as reasoning."""
    content = m.get("content")
    out: dict = {"role": m["role"]}
    if m["role"] == "tool":
        out["tool_call_id"] = m.get("tool_call_id", "")
        out["content"] = content if isinstance(content, str) else "\n".join(
            c.get("text") if c["type"] == "text" else _dumps(c.get("document", {}).get("data", c.get("document")))
            for c in content or ())
        return out
    if isinstance(content, list):
        thoughts = [c.get("thinking", "") for c in content if c["type"] == "thinking"]
        if thoughts:
            out["reasoning"] = "".join(thoughts)
        content = [_part(c, f"{path}.content[{j}]") for j, c in enumerate(content) if c["type"] != "thinking"]
    if m["role"] == "assistant":
        content = "".join(p.get("text", "") for p in content) if isinstance(content, list) else content
        if m.get("tool_calls"):
            out["tool_calls"] = [{"id": c.get("id", ""), "type": "function", "function": c["function"]}
                                 for c in m["tool_calls"]]
        out["content"] = content or ""
        return out
    out["content"] = content if content is not None else ""
    return out


def _part(c: dict, path: str) -> dict:
    if c["type"] == "text":
        return {"type": "text", "text": c.get("text", "")}
    if c["type"] == "image_url":
        return {"type": "image_url", "image_url": c["image_url"]}
    raise UnsupportedParameter(f"{c['type']} content is not supported on this route", param=path)
