"""The Gemini ``generateContent`` request (``POST /genai/v1beta/models/{model}:generateContent``), validated with
the schema's helpers (``param`` is the path in the Gemini body) and read as the chat request every provider
is served from.

Correspondences: ``systemInstruction`` is a system message; ``model`` turns are assistant messages (thought
parts their ``reasoning``, a text part's ``thoughtSignature`` a ``reasoning.encrypted`` detail, each
``functionCall`` a tool call whose id carries the part's ``thoughtSignature``, which is how the Gemini
translator gives it back); each ``functionResponse`` a tool message answering the call of that id, or else
the earliest unanswered call of that name; ``inlineData``/``fileData`` content parts;
``functionDeclarations`` function tools; ``toolConfig`` ``tool_choice``; ``generationConfig`` the sampling
parameters, ``responseMimeType``/``responseSchema`` ``response_format``, ``thinkingConfig`` ``reasoning``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ..errors import UnsupportedParameter
from .fields import model_target, validated
from ..schema import (ChatRequest, Message, any_object, array, boolean, enum, integer, number, obj, string)

#: the provider of a model named without ``provider/``
DEFAULT_PROVIDER = "gemini"
#: the Gemini translator's tool-call id mark: ``call_<hex>__thought__<signature>``
THOUGHT_MARK = "__thought__"

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode

part = obj({"text": string, "thought": boolean, "thoughtSignature": string,
            "inlineData": obj({"mimeType": string, "data": string}, required=("mimeType", "data")),
            "fileData": obj({"mimeType": string, "fileUri": string}, required=("fileUri",)),
            "functionCall": obj({"name": string, "args": any_object, "id": string}, required=("name",)),
            "functionResponse": obj({"name": string, "response": any_object, "id": string}, required=("name",))})
content = obj({"role": enum("user", "model", "function"), "parts": array(part)}, required=("parts",))
declaration = obj({"name": string, "description": string, "parameters": any_object,
                   "parametersJsonSchema": any_object}, required=("name",))
tool = obj({"functionDeclarations": array(declaration)})
tool_config = obj({"functionCallingConfig": obj({"mode": enum("AUTO", "ANY", "NONE", "VALIDATED",
                                                              "MODE_UNSPECIFIED"),
                                                 "allowedFunctionNames": array(string)})})
thinking_config = obj({"thinkingBudget": integer(-1), "includeThoughts": boolean,
                       "thinkingLevel": enum("MINIMAL", "LOW", "MEDIUM", "HIGH", "THINKING_LEVEL_UNSPECIFIED",
                                             "minimal", "low", "medium", "high")})
generation_config = obj({
    "temperature": number(0, 2), "topP": number(0, 1), "topK": number(0), "candidateCount": integer(1, 8),
    "maxOutputTokens": integer(1), "stopSequences": array(string), "seed": integer(),
    "presencePenalty": number(-2, 2), "frequencyPenalty": number(-2, 2), "responseMimeType": string,
    "responseSchema": any_object, "responseJsonSchema": any_object, "thinkingConfig": thinking_config,
})

PARAMS = {"contents": array(content, min_items=1), "systemInstruction": content, "tools": array(tool),
          "toolConfig": tool_config, "generationConfig": generation_config, "safetySettings": array(any_object),
          "cachedContent": string, "labels": any_object}


@dataclass(slots=True)
class GenerateContentRequest(ChatRequest):
    """A chat request that remembers the model as the client named it (the answer's ``modelVersion``)."""

    model_name: str = ""

    def with_target(self, provider: str, model: str) -> "GenerateContentRequest":
        return GenerateContentRequest(provider, model, self.messages, self.params, self.fallbacks, self.stream,
                                      self.extra, self.model_name)


def parse_generate_content(body, *, model: str, stream: bool) -> GenerateContentRequest:
    provider, native_model = model_target(model, default=DEFAULT_PROVIDER)
    valid = validated(body, PARAMS, required=("contents",))
    req = GenerateContentRequest(provider, native_model, [], {}, [], stream, {}, model)
    messages = []
    if "systemInstruction" in valid:
        text = "".join(p.get("text", "") for p in valid["systemInstruction"].get("parts", ()))
        if text:
            messages.append({"role": "system", "content": text})
    calls = _Calls()
    for i, turn in enumerate(valid["contents"]):
        read = _model_turn if turn.get("role") == "model" else _user_turn
        messages.extend(read(turn.get("parts", ()), f"contents[{i}].parts", calls))
    req.messages = [Message.from_valid(m) for m in messages]
    _tools(req.params, valid)
    _generation(req.params, req.extra, valid.get("generationConfig", {}))
    if stream:
        req.params["stream_options"] = {"include_usage": True}
    return req


class _Calls:
    """The tool-call ids given so far, to pair each functionResponse with its call."""

    def __init__(self) -> None:
        self.count = 0
        self.open: list[tuple[str, str]] = []  # (name, id), unanswered, in order

    def new(self, call: dict, signature: str | None) -> str:
        self.count += 1
        call_id = call.get("id") or f"call_{self.count}"
        if signature:
            call_id = f"{call_id}{THOUGHT_MARK}{signature}"
        self.open.append((call["name"], call_id))
        return call_id

    def answer(self, response: dict) -> str:
        wanted = response.get("id")
        for k, (name, call_id) in enumerate(self.open):
            if (wanted and call_id.partition(THOUGHT_MARK)[0] == wanted) or (not wanted and name == response["name"]):
                del self.open[k]
                return call_id
        return wanted or f"call_{response['name']}"


def _model_turn(parts, path: str, calls: _Calls) -> list[dict]:
    texts, thoughts, tool_calls, details = [], [], [], []
    for p in parts:
        if "functionCall" in p:
            call = p["functionCall"]
            tool_calls.append({"id": calls.new(call, p.get("thoughtSignature")), "type": "function",
                               "function": {"name": call["name"], "arguments": _dumps(call.get("args") or {})}})
        elif p.get("thought"):
            thoughts.append(p.get("text", ""))
        else:
            texts.append(p.get("text", ""))
            if p.get("thoughtSignature"):
                details.append({"type": "reasoning.encrypted", "index": 0, "data": p["thoughtSignature"]})
    msg: dict = {"role": "assistant", "content": "".join(texts)}
    optional = (("tool_calls", tool_calls), ("reasoning", "".join(thoughts)), ("reasoning_details", details[-1:]))
    msg.update((name, value) for name, value in optional if value)
    return [msg]


def _user_turn(parts, path: str, calls: _Calls) -> list[dict]:
    out, content = [], []
    for j, p in enumerate(parts):
        if "functionResponse" in p:
            response = p["functionResponse"]
            out.append({"role": "tool", "tool_call_id": calls.answer(response),
                        "content": _dumps(response.get("response") or {})})
        elif "text" in p:
            content.append({"type": "text", "text": p["text"]})
        elif "inlineData" in p:
            data = p["inlineData"]
            content.append(_media(data["mimeType"], f"data:{data['mimeType']};base64,{data['data']}"))
        elif "fileData" in p:
            content.append(_media(p["fileData"].get("mimeType", ""), p["fileData"]["fileUri"]))
        elif "functionCall" in p:
            raise UnsupportedParameter("functionCall parts belong in model turns", param=f"{path}[{j}]")
    if content:
        out.append({"role": "user", "content": content})
    return out


def _media(mime: str, url: str) -> dict:
    if mime.startswith("image/"):
        return {"type": "image_url", "image_url": {"url": url}}
    return {"type": "file", "file": {"file_data": url}}


_MODES = {"AUTO": "auto", "ANY": "required", "NONE": "none", "VALIDATED": "auto", "MODE_UNSPECIFIED": "auto"}


def _tools(params: dict, valid: dict) -> None:
    functions = []
    for i, t in enumerate(valid.get("tools", ())):
        if set(t) - {"functionDeclarations"}:
            extra = sorted(set(t) - {"functionDeclarations"})[0]
            raise UnsupportedParameter(f"tools[{i}].{extra}: only functionDeclarations tools are supported",
                                       param=f"tools[{i}].{extra}")
        for d in t.get("functionDeclarations", ()):
            fn = {"name": d["name"]}
            if d.get("description"):
                fn["description"] = d["description"]
            fn["parameters"] = d.get("parametersJsonSchema") or d.get("parameters") or {"type": "object",
                                                                                          "properties": {}}
            functions.append({"type": "function", "function": fn})
    if functions:
        params["tools"] = functions
    config = valid.get("toolConfig", {}).get("functionCallingConfig")
    if config and functions:
        mode = _MODES[config.get("mode", "AUTO")]
        names = config.get("allowedFunctionNames") or []
        if mode == "required" and len(names) == 1:
            params["tool_choice"] = {"type": "function", "function": {"name": names[0]}}
        elif mode != "none" and names:
            params["tool_choice"] = {"type": "allowed_tools", "allowed_tools": {
                "mode": mode, "tools": [{"type": "function", "function": {"name": n}} for n in names]}}
        else:
            params["tool_choice"] = mode


#: generationConfig member → chat parameter
_GENERATION = {"temperature": "temperature", "topP": "top_p", "candidateCount": "n", "seed": "seed",
               "maxOutputTokens": "max_completion_tokens", "presencePenalty": "presence_penalty",
               "frequencyPenalty": "frequency_penalty", "stopSequences": "stop"}
_LEVELS = {"minimal": "minimal", "low": "low", "medium": "medium", "high": "high"}


def _generation(params: dict, extra: dict, config: dict) -> None:
    for name, param in _GENERATION.items():
        if name in config:
            params[param] = config[name]
    if "topK" in config:
        extra["top_k"] = int(config["topK"])  # the SDK sends a float
    schema = config.get("responseJsonSchema") or config.get("responseSchema")
    if schema is not None:
        params["response_format"] = {"type": "json_schema", "json_schema": {"name": "response", "schema": schema}}
    elif config.get("responseMimeType") == "application/json":
        params["response_format"] = {"type": "json_object"}
    thinking = config.get("thinkingConfig")
    if thinking:
        level = _LEVELS.get(str(thinking.get("thinkingLevel", "")).lower())
        budget = thinking.get("thinkingBudget")
        if level:
            params["reasoning"] = {"effort": level}
        elif budget == 0:
            params["reasoning"] = {"effort": "none"}
        elif budget is not None and budget > 0:
            params["reasoning"] = {"max_tokens": budget}
        elif budget == -1 or thinking.get("includeThoughts"):
            params["reasoning"] = {"enabled": True}
