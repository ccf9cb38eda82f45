"""Responses API <-> the internal chat vocabulary, for providers that only have a chat API.

``chat_body`` turns a Responses request into a chat-completions body (validated afterwards by the chat
schema, so every provider's chat translator serves it); the answer goes back through response_items.py.

Translated: ``input`` (a string, or items: messages with text/image/file parts, ``function_call``,
``function_call_output``; ``reasoning`` items are skipped), ``instructions``, function ``tools``,
``tool_choice``, ``max_output_tokens``, ``temperature``, ``top_p``, ``parallel_tool_calls``, ``user``,
``reasoning.effort``, ``text.format`` (``json_schema``, ``json_object``). Other tool types and input items are
refused (400, naming the field): they would need the provider's own Responses API."""

from __future__ import annotations

from ...errors import UnsupportedParameter
from ...schema import _fail

ROLES = {"user": "user", "system": "system", "developer": "system", "assistant": "assistant"}
COPIED = ("temperature", "top_p", "parallel_tool_calls", "user", "metadata", "store", "service_tier")


# --- request ---------------------------------------------------------------------------------------------


def chat_body(body: dict, *, provider: str, model: str, stream: bool) -> dict:
    """The chat-completions body for a Responses body (``model`` is provider/model for the chat schema)."""
    messages: list[dict] = []
    instructions = body.get("instructions")
    if instructions is not None:
        if not isinstance(instructions, str):
            _fail("instructions", "must be a string")
        messages.append({"role": "system", "content": instructions})
    raw_input = body["input"]
    if isinstance(raw_input, str):
        messages.append({"role": "user", "content": raw_input})
    else:
        for i, item in enumerate(raw_input):
            _input_item(item, f"input[{i}]", messages, provider)
    out: dict = {"model": f"{provider}/{model}", "messages": messages}
    for name in COPIED:
        if body.get(name) is not None:
            out[name] = body[name]
    if body.get("max_output_tokens") is not None:
        out["max_completion_tokens"] = body["max_output_tokens"]
    if body.get("tools"):
        out["tools"] = _tools(body["tools"], provider)
    if body.get("tool_choice") is not None:
        out["tool_choice"] = _tool_choice(body["tool_choice"])
    reasoning = body.get("reasoning")
    if isinstance(reasoning, dict) and reasoning.get("effort") is not None:
        out["reasoning"] = {"effort": reasoning["effort"]}
    text = body.get("text")
    if isinstance(text, dict) and isinstance(text.get("format"), dict):
        fmt = _text_format(text["format"])
        if fmt is not None:
            out["response_format"] = fmt
    if stream:
        out["stream"] = True
    return out


def _input_item(item, path: str, messages: list, provider: str) -> None:
    if not isinstance(item, dict):
        _fail(path, "must be an object")
    kind = item.get("type") or ("message" if "role" in item else None)
    if kind == "message":
        role = ROLES.get(item.get("role"))
        if role is None:
            _fail(f"{path}.role", "must be one of user, system, developer, assistant")
        messages.append({"role": role, "content": _content(item.get("content"), f"{path}.content", role)})
    elif kind == "function_call":
        call = {"id": item.get("call_id") or item.get("id"), "type": "function",
                "function": {"name": item.get("name"), "arguments": item.get("arguments") or "{}"}}
        last = messages[-1] if messages else None
        if last is not None and last["role"] == "assistant" and "tool_calls" in last:
            last["tool_calls"].append(call)
        elif last is not None and last["role"] == "assistant" and isinstance(last.get("content"), str):
            last["tool_calls"] = [call]
        else:
            messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
    elif kind == "function_call_output":
        output = item.get("output")
        if isinstance(output, list):
            output = "".join(p.get("text", "") for p in output if isinstance(p, dict))
        messages.append({"role": "tool", "tool_call_id": item.get("call_id"), "content": output or ""})
    elif kind == "reasoning":
        return  # the provider's own reasoning cannot be replayed through another API
    else:
        raise UnsupportedParameter(f"input items of type {kind} are not supported by {provider}",
                                   param=f"{path}.type")


def _content(content, path: str, role: str):
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        _fail(path, "must be a string or an array of content parts")
    parts = []
    for i, part in enumerate(content):
        p = f"{path}[{i}]"
        if not isinstance(part, dict):
            _fail(p, "must be an object")
        kind = part.get("type")
        if kind in ("input_text", "output_text", "text"):
            parts.append({"type": "text", "text": part.get("text", "")})
        elif kind == "refusal":
            parts.append({"type": "text", "text": part.get("refusal", "")})
        elif kind == "input_image":
            url = part.get("image_url")
            if not isinstance(url, str):
                _fail(f"{p}.image_url", "must be a string (file_id images are not supported)")
            image = {"url": url}
            if part.get("detail") in ("low", "high", "auto"):
                image["detail"] = part["detail"]
            parts.append({"type": "image_url", "image_url": image})
        elif kind == "input_file":
            file = {k: part[k] for k in ("file_data", "filename", "file_id") if part.get(k) is not None}
            parts.append({"type": "file", "file": file})
        else:
            _fail(f"{p}.type", "must be one of input_text, output_text, input_image, input_file")
    if role == "assistant":
        return "".join(p["text"] for p in parts if p["type"] == "text")
    return parts


def _tools(tools, provider: str) -> list:
    if not isinstance(tools, list):
        _fail("tools", "must be an array")
    out = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict):
            _fail(f"tools[{i}]", "must be an object")
        if tool.get("type") != "function":
            raise UnsupportedParameter(f"{tool.get('type')} tools are not supported by {provider}: only function "
                                       f"tools can be translated", param=f"tools[{i}].type")
        fn = {"name": tool.get("name")}
        for k in ("description", "parameters", "strict"):
            if tool.get(k) is not None:
                fn[k] = tool[k]
        out.append({"type": "function", "function": fn})
    return out


def _tool_choice(choice):
    if isinstance(choice, dict) and choice.get("type") == "function":
        return {"type": "function", "function": {"name": choice.get("name")}}
    return choice


def _text_format(fmt: dict) -> dict | None:
    kind = fmt.get("type")
    if kind == "json_schema":
        schema = {k: fmt[k] for k in ("name", "schema", "strict", "description") if fmt.get(k) is not None}
        return {"type": "json_schema", "json_schema": schema}
    if kind == "json_object":
        return {"type": "json_object"}
    return None
