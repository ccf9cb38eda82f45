"""The Bedrock Converse request (``POST /bedrock/model/{modelId}/converse`` and ``/converse-stream``), validated
with the schema's helpers (``param`` is the path in the Converse body) and read as the chat request every
provider is served from.

Correspondences: ``system`` text blocks are a system message; ``toolUse`` blocks an assistant's tool calls;
``toolResult`` blocks tool messages (before the rest of their user turn); ``reasoningContent`` the
assistant's ``reasoning_details`` (signatures kept); image and document blocks content parts;
``inferenceConfig`` the sampling parameters; ``toolConfig`` the tools and ``tool_choice``;
``additionalModelRequestFields.thinking.budget_tokens`` the reasoning budget and ``top_k`` ``top_k``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ..errors import UnsupportedParameter
from .fields import model_target, validated
from ..schema import (ChatRequest, Message, any_object, array, enum, integer, number, obj, string)

#: the provider of a model id without ``provider/``
DEFAULT_PROVIDER = "bedrock"

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode

_source = obj({"bytes": string, "s3Location": any_object})
block = obj({"text": string,
             "image": obj({"format": string, "source": _source}, required=("format", "source")),
             "document": obj({"format": string, "name": string, "source": _source}, required=("format", "source")),
             "toolUse": obj({"toolUseId": string, "name": string, "input": any_object},
                            required=("toolUseId", "name")),
             "toolResult": obj({"toolUseId": string, "content": array(any_object), "status": enum("success", "error")},
                               required=("toolUseId",)),
             "reasoningContent": any_object, "cachePoint": any_object})
message = obj({"role": enum("user", "assistant"), "content": array(block)}, required=("role", "content"))
tool_spec = obj({"name": string, "description": string, "inputSchema": obj({"json": any_object})}, required=("name",))
tool_config = obj({"tools": array(obj({"toolSpec": tool_spec, "cachePoint": any_object})),
                   "toolChoice": obj({"auto": any_object, "any": any_object,
                                      "tool": obj({"name": string}, required=("name",))})})
inference_config = obj({"maxTokens": integer(1), "temperature": number(0, 1), "topP": number(0, 1),
                        "stopSequences": array(string)})

PARAMS = {"messages": array(message, min_items=1), "system": array(any_object), "inferenceConfig": inference_config,
          "toolConfig": tool_config, "additionalModelRequestFields": any_object, "guardrailConfig": any_object,
          "performanceConfig": any_object, "requestMetadata": any_object, "promptVariables": any_object}

_IMAGE_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "gif": "image/gif", "webp": "image/webp"}
_DOCUMENT_TYPES = {"pdf": "application/pdf", "txt": "text/plain", "md": "text/markdown", "html": "text/html",
                   "csv": "text/csv"}


@dataclass(slots=True)
class ConverseRequest(ChatRequest):
    """A chat request that remembers the model id as the client sent it."""

    model_name: str = ""

    def with_target(self, provider: str, model: str) -> "ConverseRequest":
        return ConverseRequest(provider, model, self.messages, self.params, self.fallbacks, self.stream, self.extra,
                               self.model_name)


def parse_converse(body, *, model_id: str, stream: bool) -> ConverseRequest:
    provider, model = model_target(model_id, default=DEFAULT_PROVIDER, param="modelId")
    valid = validated(body, PARAMS, required=("messages",))
    messages = []
    system = "\n\n".join(b["text"] for b in valid.get("system", ()) if isinstance(b.get("text"), str))
    if system:
        messages.append({"role": "system", "content": system})
    for i, msg in enumerate(valid["messages"]):
        turn = _assistant_turn if msg["role"] == "assistant" else _user_turn
        messages.extend(turn(msg["content"], f"messages[{i}].content"))
    req = ConverseRequest(provider, model, [Message.from_valid(m) for m in messages], {}, [], stream, {}, model_id)
    _inference(req, valid)
    return req


def _user_turn(blocks, path: str) -> list[dict]:
    out, parts = [], []
    for j, b in enumerate(blocks):
        if "toolResult" in b:
            result = b["toolResult"]
            text = "\n".join(c["text"] if "text" in c else _dumps(c.get("json")) for c in result.get("content", ())
                             if "text" in c or "json" in c)
            if result.get("status") == "error":
                text = f"Error: {text}"
            out.append({"role": "tool", "tool_call_id": result["toolUseId"], "content": text})
        elif "text" in b:
            parts.append({"type": "text", "text": b["text"]})
        elif "image" in b or "document" in b:
            parts.append(_media(b, f"{path}[{j}]"))
    if parts:
        out.append({"role": "user", "content": parts})
    return out


def _media(b: dict, path: str) -> dict:
    kind = "image" if "image" in b else "document"
    media = b[kind]
    data = media["source"].get("bytes")
    if data is None:
        raise UnsupportedParameter("s3Location sources are only supported by bedrock", param=f"{path}.{kind}.source")
    if kind == "image":
        mime = _IMAGE_TYPES.get(media["format"], f"image/{media['format']}")
        return {"type": "image_url", "image_url": {"url": f"data:{mime};base64,{data}"}}
    mime = _DOCUMENT_TYPES.get(media["format"])
    if mime is None:
        raise UnsupportedParameter(f"{media['format']} documents are only supported by bedrock",
                                   param=f"{path}.document.format")
    file = {"file_data": f"data:{mime};base64,{data}"}
    if media.get("name"):
        file["filename"] = media["name"]
    return {"type": "file", "file": file}


def _assistant_turn(blocks, path: str) -> list[dict]:
    texts, calls, thoughts, details = [], [], [], []
    for b in blocks:
        if "text" in b:
            texts.append(b["text"])
        elif "toolUse" in b:
            use = b["toolUse"]
            calls.append({"id": use["toolUseId"], "type": "function",
                          "function": {"name": use["name"], "arguments": _dumps(use.get("input") or {})}})
        elif "reasoningContent" in b:
            reasoning = b["reasoningContent"]
            text = reasoning.get("reasoningText") or {}
            if text:
                thoughts.append(text.get("text", ""))
                detail = {"type": "reasoning.text", "index": len(details), "text": text.get("text", "")}
                if text.get("signature"):
                    detail["signature"] = text["signature"]
                details.append(detail)
            elif reasoning.get("redactedContent"):
                details.append({"type": "reasoning.encrypted", "index": len(details),
                                "data": reasoning["redactedContent"]})
    msg: dict = {"role": "assistant", "content": "".join(texts)}
    optional = (("tool_calls", calls), ("reasoning", "".join(thoughts)), ("reasoning_details", details))
    msg.update((name, value) for name, value in optional if value)
    return [msg]


#: inferenceConfig member → chat parameter
_INFERENCE = {"maxTokens": "max_completion_tokens", "temperature": "temperature", "topP": "top_p",
              "stopSequences": "stop"}


def _inference(req: ConverseRequest, valid: dict) -> None:
    params = req.params
    for name, param in _INFERENCE.items():
        if name in valid.get("inferenceConfig", {}):
            params[param] = valid["inferenceConfig"][name]
    tools = [t["toolSpec"] for t in valid.get("toolConfig", {}).get("tools", ()) if "toolSpec" in t]
    if tools:
        params["tools"] = [{"type": "function", "function": {
            "name": t["name"], **({"description": t["description"]} if t.get("description") else {}),
            "parameters": t.get("inputSchema", {}).get("json") or {"type": "object", "properties": {}}}}
            for t in tools]
        choice = valid["toolConfig"].get("toolChoice") or {}
        if "any" in choice:
            params["tool_choice"] = "required"
        elif "tool" in choice:
            params["tool_choice"] = {"type": "function", "function": {"name": choice["tool"]["name"]}}
    fields = valid.get("additionalModelRequestFields", {})
    thinking = fields.get("thinking") or fields.get("reasoning_config")
    if isinstance(thinking, dict) and thinking.get("type") == "enabled" and isinstance(thinking.get("budget_tokens"), int):
        params["reasoning"] = {"max_tokens": thinking["budget_tokens"]}
    if isinstance(fields.get("top_k"), int):
        req.extra["top_k"] = fields["top_k"]
    if req.provider == DEFAULT_PROVIDER:
        # Bedrock's own fields reach Bedrock (its translator forwards them from extra)
        req.extra.update({k: valid[k] for k in ("guardrailConfig", "performanceConfig", "requestMetadata",
                                                 "promptVariables", "additionalModelRequestFields") if k in valid})
    if req.stream:
        params["stream_options"] = {"include_usage": True}
