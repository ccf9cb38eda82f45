"""Google Gemini (native ``generateContent``): OpenAI chat requests in, ``GenerateContentResponse`` out.

Vertex AI serves the same wire format for Google's models, so ``build_body``, ``parse_body``,
``parse_error_body`` and ``GeminiStream`` are public and reused by ``vertex.py``.

Decisions worth knowing (the README repeats them for users):

* Thought signatures. Gemini 2.5+/3 put an opaque ``thoughtSignature`` on function-call parts and require it
  back on the same part when that turn is replayed. It travels inside the tool call id:
  ``call_<24 hex>__thought__<signature>``. An id is the one field every OpenAI client (the official SDKs,
  hand-built histories, frameworks) sends back unchanged, so the signature survives any round trip. A
  signature on a text part (recommended, not required, to echo) goes out as a ``reasoning.encrypted``
  reasoning detail and is put back on the last text part when the assistant message is replayed.
  Gemini 3 rejects a replayed function call that has no signature (a history from another provider, a
  fallback); Google documents a placeholder signature for exactly that case, which is sent then.
* Tool call ids are ours (``call_…``) and never sent upstream; Gemini pairs calls and responses by order
  and name, and ``functionResponse.name`` is found from the assistant message that made the call.
* Tool parameter schemas are cut down to the OpenAPI subset ``Schema`` accepts (``clean_schema``);
  ``response_format`` schemas go out unchanged as ``responseJsonSchema``, which takes JSON Schema.
* ``MALFORMED_FUNCTION_CALL`` (and the other tool-call failure reasons) finish as ``stop``: no tool call
  reached the client, so ``tool_calls`` would send it looking for one. A prompt blocked before any
  candidate (``promptFeedback.blockReason``) is a normal answer with ``finish_reason: content_filter`` and
  no content, as Gemini itself answers 200; the same holds in streams.
"""

from __future__ import annotations

import json
import mimetypes
import re
import time
import uuid
from typing import Mapping
from urllib.parse import quote

from ..errors import BadRequest, UnsupportedParameter, UpstreamProtocolError, provider_error
from ..wire.sse import Event
from . import base
from .base import ChatRequest, KeyRules, add_turn, Target, UpstreamRequest, dumps, error_from_body, iter_text_parts, json_request

THOUGHT_MARK = "__thought__"
# Google's documented stand-in for a function call whose real signature is unknown (Gemini 3+ only).
PLACEHOLDER_SIGNATURE = "skip_thought_signature_validator"

ROLES = {"user": "user", "assistant": "model", "tool": "user"}

FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "IMAGE_PROHIBITED_CONTENT": "content_filter",
    "IMAGE_RECITATION": "content_filter",
    # no usable tool call came out of these; see the module notes
    "MALFORMED_FUNCTION_CALL": "stop",
    "UNEXPECTED_TOOL_CALL": "stop",
    "TOO_MANY_TOOL_CALLS": "stop",
}

# reasoning.effort -> thinkingBudget (Gemini 2.x) and thinkingLevel (Gemini 3+). Budgets stay within every
# 2.5 model's range (Flash tops out at 24576); "none" asks 2.x not to think at all.
EFFORT_BUDGET = {"none": 0, "minimal": 512, "low": 2048, "medium": 8192, "high": 24576, "xhigh": 24576}
EFFORT_LEVEL = {"none": "minimal", "minimal": "minimal", "low": "low", "medium": "medium", "high": "high",
                "xhigh": "high"}

TOOL_CHOICE_MODES = {"none": "NONE", "auto": "AUTO", "required": "ANY", "any": "ANY"}

_MAJOR = re.compile(r"gemini-(\d+)")


def model_generation(model: str) -> int:
    """The major version in a Gemini model name (``gemini-2.5-flash`` → 2); 0 when it has none."""
    m = _MAJOR.search(model)
    return int(m.group(1)) if m else 0


# --- thought signatures in tool call ids -------------------------------------------------------------


def new_tool_call_id(signature: str | None = None) -> str:
    base = "call_" + uuid.uuid4().hex[8:]
    return f"{base}{THOUGHT_MARK}{signature}" if signature else base


def signature_of(tool_call_id: str) -> str | None:
    _, mark, sig = (tool_call_id or "").partition(THOUGHT_MARK)
    return sig if mark and sig else None


# --- request -------------------------------------------------------------------------------------------


def build_body(req: ChatRequest, target: Target, *, stream: bool = False, passthrough: bool = False) -> dict:
    """The ``GenerateContentRequest`` for a chat request (same body for Gemini and Vertex)."""
    system, contents = convert_messages(req.messages, model=target.model)
    body: dict = {"systemInstruction": {"parts": system}} if system else {}
    body["contents"] = contents
    params = req.params
    tools, tool_config = convert_tools(params)
    if tools:
        body["tools"] = tools
    if tool_config:
        body["toolConfig"] = tool_config
    config = generation_config(req, model=target.model)
    if config:
        body["generationConfig"] = config
    if passthrough and req.extra:
        for k, v in req.extra.items():
            if k != "top_k":  # already in generationConfig
                body.setdefault(k, v)
    return body


def convert_messages(messages, *, model: str) -> tuple[list[dict], list[dict]]:
    """OpenAI messages → (systemInstruction parts, contents). Consecutive turns of one role are merged."""
    system: list[dict] = []
    contents: list[dict] = []
    names: dict[str, str] = {}  # tool_call_id -> function name, from earlier assistant messages
    needs_placeholder = model_generation(model) >= 3
    for i, msg in enumerate(messages):
        role = msg.role
        if role in ("system", "developer"):
            system.extend({"text": t} for t in iter_text_parts(msg.content) if t)
            continue
        if role == "assistant":
            parts = _assistant_parts(msg, i, names, placeholder=needs_placeholder)
        elif role == "tool":
            parts = [_function_response(msg, names)]
        else:
            parts = [_content_part(p, f"messages[{i}].content[{j}]") for j, p in enumerate(_as_parts(msg.content))]
        parts = [p for p in parts if p]
        if not parts:
            continue
        add_turn(contents, ROLES[role], parts, key="parts")
    return system, contents


def _as_parts(content) -> list[dict]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    return content


def _assistant_parts(msg, index: int, names: dict, *, placeholder: bool) -> list[dict]:
    parts = [{"text": t} for t in iter_text_parts(msg.content) if t]
    for p in msg.content if isinstance(msg.content, list) else ():
        if p.get("type") == "refusal" and p.get("refusal"):
            parts.append({"text": p["refusal"]})
    text_signature = next((d.get("data") for d in msg.reasoning_details or ()
                           if d.get("type") == "reasoning.encrypted" and d.get("data")), None)
    if text_signature and parts:
        parts[-1]["thoughtSignature"] = text_signature
    first_call = True
    for j, call in enumerate(msg.tool_calls or ()):
        fn = call.get("function") or {}
        name = fn.get("name", "")
        call_id = call.get("id") or ""
        if call_id:
            names[call_id] = name
        part: dict = {"functionCall": {"name": name, "args": _arguments(fn.get("arguments"),
                                                                        f"messages[{index}].tool_calls[{j}]")}}
        signature = signature_of(call_id)
        if signature is None and first_call and placeholder:
            signature = PLACEHOLDER_SIGNATURE
        if signature:
            part["thoughtSignature"] = signature
        first_call = False
        parts.append(part)
    return parts


def _arguments(raw, path: str) -> dict:
    if raw is None or raw == "":
        return {}
    try:
        args = json.loads(raw)
    except ValueError:
        raise BadRequest(f"invalid request format: {path}.function.arguments: must be a JSON object",
                         param=f"{path}.function.arguments") from None
    if not isinstance(args, dict):
        raise BadRequest(f"invalid request format: {path}.function.arguments: must be a JSON object",
                         param=f"{path}.function.arguments")
    return args


def _function_response(msg, names: dict) -> dict:
    text = "".join(iter_text_parts(msg.content))
    try:
        result = json.loads(text)
    except ValueError:
        result = text
    name = names.get(msg.tool_call_id or "") or msg.name or msg.tool_call_id or ""
    return {"functionResponse": {"name": name, "response": {"content": result}}}


def _content_part(part: dict, path: str) -> dict | None:
    kind = part.get("type")
    if kind == "text":
        return {"text": part["text"]} if part.get("text") else None
    if kind == "refusal":
        return {"text": part["refusal"]} if part.get("refusal") else None
    if kind == "image_url":
        # Vertex requires a MIME type on fileData; an image URL without a telling extension says JPEG
        return media_part(part["image_url"]["url"], default_mime="image/jpeg")
    if kind == "input_audio":
        audio = part["input_audio"]
        fmt = (audio.get("format") or "wav").lower()
        return {"inlineData": {"mimeType": f"audio/{fmt}", "data": audio["data"]}}
    if kind == "file":
        return _file_part(part["file"], path)
    return None


def media_part(url: str, *, default_mime: str | None = None, filename: str = "") -> dict:
    """A data URI → ``inlineData``; an http(s)/gs:// URL → ``fileData`` with a MIME type guessed from the name."""
    if url.startswith("data:"):
        header, _, data = url.partition(",")
        mime = header[5:].split(";", 1)[0] or default_mime or "application/octet-stream"
        return {"inlineData": {"mimeType": mime, "data": data}}
    file_data: dict = {}
    mime = guess_mime(filename or url) or default_mime
    if mime:
        file_data["mimeType"] = mime
    file_data["fileUri"] = url
    return {"fileData": file_data}


# Gemini's own names where the stdlib table says something else or nothing; a private table keeps the
# guess independent of the machine's /etc/mime.types.
_MIME_NAMES = {".wav": "audio/wav", ".mp3": "audio/mp3", ".flac": "audio/flac", ".aac": "audio/aac",
               ".ogg": "audio/ogg", ".aiff": "audio/aiff", ".md": "text/markdown", ".mov": "video/mov",
               ".heif": "image/heif"}
_MIME_TABLE = mimetypes.MimeTypes()


def guess_mime(name: str) -> str | None:
    path = name.split("?", 1)[0].split("#", 1)[0]
    dot = path.rfind(".")
    known = _MIME_NAMES.get(path[dot:].lower()) if dot > path.rfind("/") else None
    return known or _MIME_TABLE.guess_type(path, strict=False)[0]


def _file_part(file: dict, path: str) -> dict:
    filename = file.get("filename") or ""
    data = file.get("file_data")
    if data:
        if data.startswith(("data:", "http://", "https://", "gs://")):
            return media_part(data, default_mime=guess_mime(filename), filename=filename)
        # bare base64: the type comes from the file name; PDF is what clients send this way
        return {"inlineData": {"mimeType": guess_mime(filename) or "application/pdf", "data": data}}
    file_id = file.get("file_id")
    if file_id:
        return media_part(file_id, filename=filename)
    raise BadRequest(f"invalid request format: {path}: a file part needs file_data or file_id", param=path)


def generation_config(req: ChatRequest, *, model: str) -> dict:
    p = req.params
    # parameters Gemini has no field for and whose loss cannot change the answer's shape (user, metadata,
    # parallel_tool_calls, logit_bias, service_tier, …) are left out; audio output would, so it is refused
    if "audio" in p:
        raise UnsupportedParameter("audio is not supported by gemini", param="audio")
    if "audio" in (p.get("modalities") or ()):
        raise UnsupportedParameter("audio output is not supported by gemini", param="modalities")
    cfg: dict = {}
    simple = (("max_completion_tokens", "maxOutputTokens"), ("temperature", "temperature"), ("top_p", "topP"),
              ("presence_penalty", "presencePenalty"), ("frequency_penalty", "frequencyPenalty"),
              ("seed", "seed"), ("n", "candidateCount"))
    for ours, theirs in simple:
        if ours in p:
            cfg[theirs] = p[ours]
    top_k = req.extra.get("top_k")
    if isinstance(top_k, (int, float)) and not isinstance(top_k, bool):
        cfg["topK"] = top_k
    stop = p.get("stop")
    if stop:
        cfg["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    if p.get("logprobs"):
        cfg["responseLogprobs"] = True
        if "top_logprobs" in p:
            cfg["logprobs"] = p["top_logprobs"]
    fmt = p.get("response_format")
    if fmt and fmt["type"] in ("json_object", "json_schema"):
        cfg["responseMimeType"] = "application/json"
        schema = (fmt.get("json_schema") or {}).get("schema")
        if schema is not None:
            cfg["responseJsonSchema"] = schema
    thinking = thinking_config(p.get("reasoning"), model=model)
    if thinking:
        cfg["thinkingConfig"] = thinking
    return cfg


def thinking_config(reasoning: dict | None, *, model: str) -> dict | None:
    """``reasoning`` → ``thinkingConfig``: an explicit token budget wins; an effort becomes a budget on Gemini 2.x
    and a ``thinkingLevel`` on Gemini 3+ (levels a model lacks are refused by Google with a 400, passed on)."""
    if not reasoning:
        return None
    effort = reasoning.get("effort")
    if reasoning.get("enabled") is False:
        effort = "none"
    cfg: dict = {}
    if "max_tokens" in reasoning:
        cfg["thinkingBudget"] = reasoning["max_tokens"]
    elif effort:
        if model_generation(model) >= 3:
            cfg["thinkingLevel"] = EFFORT_LEVEL[effort]
        else:
            cfg["thinkingBudget"] = EFFORT_BUDGET[effort]
    if effort != "none" and not reasoning.get("exclude"):
        cfg["includeThoughts"] = True
    return cfg or None


# --- tools and their schemas ---------------------------------------------------------------------------


def convert_tools(params: dict) -> tuple[list[dict], dict | None]:
    declarations = []
    for i, tool in enumerate(params.get("tools") or ()):
        if tool.get("type") != "function":
            raise UnsupportedParameter(f"{tool.get('type')} tools are not supported by gemini", param=f"tools[{i}]")
        fn = tool["function"]
        decl: dict = {"name": fn["name"]}
        if fn.get("description"):
            decl["description"] = fn["description"]
        schema = clean_schema(fn.get("parameters") or {})
        if schema.get("properties"):  # Gemini refuses an OBJECT without properties: no parameters at all
            decl["parameters"] = schema
        declarations.append(decl)
    choice = params.get("tool_choice")
    config, allowed = _tool_choice(choice)
    if allowed is not None:
        declarations = [d for d in declarations if d["name"] in allowed]
    tools = [{"functionDeclarations": declarations}] if declarations else []
    if "web_search_options" in params:
        tools.append({"googleSearch": {}})
    return tools, config


def _tool_choice(choice) -> tuple[dict | None, set | None]:
    """``toolConfig`` for an OpenAI tool_choice, and the names declarations are narrowed to (allowed_tools)."""
    if choice is None:
        return None, None
    if isinstance(choice, str):
        return {"functionCallingConfig": {"mode": TOOL_CHOICE_MODES[choice]}}, None
    kind = choice["type"]
    if kind == "function":
        return {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [choice["function"]["name"]]}}, None
    if kind == "allowed_tools":
        allowed = choice.get("allowed_tools") or {}
        names = [t["function"]["name"] for t in allowed.get("tools") or () if t.get("function")]
        if allowed.get("mode") == "required":
            return {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": names}}, None
        # allowedFunctionNames only applies in ANY mode: in AUTO the other tools are simply not offered
        return {"functionCallingConfig": {"mode": "AUTO"}}, set(names)
    if kind in TOOL_CHOICE_MODES:
        return {"functionCallingConfig": {"mode": TOOL_CHOICE_MODES[kind]}}, None
    raise UnsupportedParameter(f"tool_choice type {kind} is not supported by gemini", param="tool_choice")


# Fields of Gemini's ``Schema`` (a subset of OpenAPI 3.0) that JSON Schema spells the same way.
SCHEMA_KEYS = frozenset({"type", "format", "title", "description", "nullable", "enum", "items", "properties",
                         "required", "minItems", "maxItems", "minProperties", "maxProperties", "minLength",
                         "maxLength", "pattern", "minimum", "maximum", "anyOf", "propertyOrdering", "default",
                         "example"})
# ``format`` values Gemini accepts per type; anything else (uri, uuid, email…) is dropped.
SCHEMA_FORMATS = {"string": {"enum", "date-time"}, "number": {"float", "double"}, "integer": {"int32", "int64"}}
_MAX_REF_DEPTH = 8


def clean_schema(schema: dict) -> dict:
    """A JSON Schema cut down to what Gemini's function ``parameters`` accept.

    Local ``$ref`` s (``#/$defs/…``, ``#/definitions/…``) are inlined (a recursive one is cut to a bare
    object), ``oneOf`` becomes ``anyOf``, ``allOf`` branches are merged into one schema, ``type: [X, "null"]`` and a
    ``{"type": "null"}`` branch become ``nullable: true``, ``const`` becomes a one-value enum, non-string
    enums and unsupported ``format`` s are dropped, ``required`` keeps only declared properties, every
    keyword outside ``SCHEMA_KEYS`` (``$schema``, ``additionalProperties``, ``examples``, ``strict``…) is
    dropped, a schema without a type gets the one its keywords imply (else string) and an array without
    ``items`` gets string items: Gemini refuses both gaps.
    """
    if not isinstance(schema, dict):
        return {}
    defs = {**(schema.get("definitions") or {}), **(schema.get("$defs") or {})}
    return _clean(schema, defs, ())


def _clean(node, defs: dict, stack: tuple) -> dict:
    if not isinstance(node, dict):
        return {}
    ref = node.get("$ref")
    if isinstance(ref, str):
        name = ref.rsplit("/", 1)[-1]
        target = defs.get(name) if ref.startswith(("#/$defs/", "#/definitions/")) else None
        if target is None or name in stack or len(stack) >= _MAX_REF_DEPTH:
            out = {"type": "object"}
        else:
            out = _clean(target, defs, (*stack, name))
        if isinstance(node.get("description"), str):
            out["description"] = node["description"]
        return out
    node = dict(node)
    all_of = node.pop("allOf", None)
    if isinstance(all_of, list):
        for sub in all_of:
            _merge(node, sub if not isinstance(sub, dict) or "$ref" not in sub else _clean(sub, defs, stack))
    if "oneOf" in node and "anyOf" not in node:
        node["anyOf"] = node.pop("oneOf")
    if "const" in node and "enum" not in node:
        node["enum"] = [node["const"]]
    out: dict = {}
    nullable = node.get("nullable") is True
    types = node.get("type")
    if isinstance(types, list):
        nullable = nullable or "null" in types
        types = [t for t in types if t != "null"]
        if len(types) == 1:
            out["type"] = types[0]
        elif types:
            out["anyOf"] = [{"type": t} for t in types]
    elif isinstance(types, str) and types != "null":
        out["type"] = types
    for key, value in node.items():
        if key not in SCHEMA_KEYS or key in ("type", "nullable"):
            continue
        if key == "properties" and isinstance(value, dict):
            out[key] = {k: _clean(v, defs, stack) for k, v in value.items()}
        elif key == "items" and isinstance(value, dict):
            out[key] = _clean(value, defs, stack)
        elif key == "anyOf" and isinstance(value, list):
            branches = []
            for sub in value:
                if isinstance(sub, dict) and sub.get("type") == "null":
                    nullable = True
                else:
                    branches.append(_clean(sub, defs, stack))
            if len(branches) == 1:
                for k, v in branches[0].items():
                    out.setdefault(k, v)
            elif branches:
                out["anyOf"] = branches
        elif key == "enum" and isinstance(value, list):
            if None in value:
                nullable = True
            values = [v for v in value if v is not None]
            if values and all(isinstance(v, str) for v in values):
                out[key] = values
        elif key == "format":
            if value in SCHEMA_FORMATS.get(out.get("type", ""), ()):
                out[key] = value
        else:
            out[key] = value
    if "required" in out:
        props = out.get("properties") or {}
        required = [r for r in out["required"] if r in props]
        if required:
            out["required"] = required
        else:
            del out["required"]
    if "type" not in out and "anyOf" not in out:
        # Gemini wants a type on every schema: the one the keywords imply, else string (the type any value
        # can be written in)
        implied = next((t for hint, t in (("properties", "object"), ("items", "array")) if hint in out), "string")
        out["type"] = implied
    if out.get("type") == "array" and "items" not in out:
        out["items"] = {"type": "string"}  # Gemini rejects an array schema without items
    if nullable:
        out["nullable"] = True
    return out


def _merge(into: dict, sub) -> None:
    if not isinstance(sub, dict):
        return
    for k, v in sub.items():
        if k == "properties" and isinstance(v, dict):
            into["properties"] = {**(into.get("properties") or {}), **v}
        elif k == "required" and isinstance(v, list):
            into["required"] = [*(into.get("required") or []), *(r for r in v if r not in (into.get("required") or []))]
        else:
            into.setdefault(k, v)


# --- response --------------------------------------------------------------------------------------------


def finish_reason(reason: str | None, *, has_tool_calls: bool) -> str:
    mapped = FINISH_REASONS.get(reason or "", "stop")
    if has_tool_calls and mapped == "stop":
        return "tool_calls"
    return mapped


def usage(meta) -> dict | None:
    """``usageMetadata`` → OpenAI usage; thinking tokens count as completion tokens, as OpenAI counts them."""
    if not isinstance(meta, dict) or not meta:
        return None
    prompt = (meta.get("promptTokenCount") or 0) + (meta.get("toolUsePromptTokenCount") or 0)
    thoughts = meta.get("thoughtsTokenCount") or 0
    completion = (meta.get("candidatesTokenCount") or 0) + thoughts
    out: dict = {"prompt_tokens": prompt, "completion_tokens": completion,
                 "total_tokens": meta.get("totalTokenCount") or prompt + completion}
    if meta.get("cachedContentTokenCount"):
        out["prompt_tokens_details"] = {"cached_tokens": meta["cachedContentTokenCount"]}
    if thoughts:
        out["completion_tokens_details"] = {"reasoning_tokens": thoughts}
    return out


def logprobs(result) -> dict | None:
    if not isinstance(result, dict) or not result.get("chosenCandidates"):
        return None
    tops = result.get("topCandidates") or []
    content = []
    for i, chosen in enumerate(result["chosenCandidates"]):
        entry = {"token": chosen.get("token", ""), "logprob": chosen.get("logProbability", 0.0)}
        top = tops[i].get("candidates") if i < len(tops) and isinstance(tops[i], dict) else None
        entry["top_logprobs"] = [{"token": c.get("token", ""), "logprob": c.get("logProbability", 0.0)}
                                 for c in top or ()]
        content.append(entry)
    return {"content": content}


class _Parts:
    """What the parts of one candidate (or one streamed fragment of it) say, in OpenAI terms."""

    __slots__ = ("text", "reasoning", "tool_calls", "signatures")

    def __init__(self, parts) -> None:
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self.tool_calls: list[dict] = []
        self.signatures: list[str] = []
        for part in parts or ():
            if not isinstance(part, dict):
                continue
            signature = part.get("thoughtSignature")
            call = part.get("functionCall")
            if isinstance(call, dict):
                self.tool_calls.append({
                    "id": new_tool_call_id(signature),
                    "type": "function",
                    "function": {"name": call.get("name", ""), "arguments": dumps(call.get("args") or {})},
                })
                continue
            if signature:
                self.signatures.append(signature)
            text = part.get("text")
            if isinstance(text, str) and text:
                (self.reasoning if part.get("thought") else self.text).append(text)

    def fill(self, out: dict) -> dict:
        """Put the text, the reasoning and its signatures into a message or a delta (tool calls are the
        caller's: a delta numbers them across fragments)."""
        if self.text:
            out["content"] = "".join(self.text)
        if self.reasoning:
            out["reasoning"] = "".join(self.reasoning)
        if self.signatures:
            out["reasoning_details"] = [{"type": "reasoning.encrypted", "data": s, "index": 0}
                                        for s in self.signatures]
        return out


def parse_body(data: dict, *, model: str) -> dict:
    """A ``GenerateContentResponse`` dict → an OpenAI ``chat.completion`` dict."""
    if isinstance(data.get("error"), dict) and "candidates" not in data:
        raise error_from_object(_status_of(data["error"]), data)
    candidates = data.get("candidates")
    choices = []
    for pos, cand in enumerate(candidates or ()):
        parts = _Parts((cand.get("content") or {}).get("parts"))
        message = parts.fill({"role": "assistant"})
        if parts.tool_calls:
            message["tool_calls"] = parts.tool_calls
        choice = {"index": cand.get("index", pos), "message": message,
                  "finish_reason": finish_reason(cand.get("finishReason"), has_tool_calls=bool(parts.tool_calls))}
        lp = logprobs(cand.get("logprobsResult"))
        if lp:
            choice["logprobs"] = lp
        choices.append(choice)
    if not choices:
        if not (data.get("promptFeedback") or {}).get("blockReason"):
            raise UpstreamProtocolError("gemini answered without candidates")
        choices.append({"index": 0, "message": {"role": "assistant"}, "finish_reason": "content_filter"})
    out = {"id": data.get("responseId") or "chatcmpl-" + uuid.uuid4().hex, "object": "chat.completion",
           "created": created_at(data), "model": data.get("modelVersion") or model, "choices": choices}
    u = usage(data.get("usageMetadata"))
    if u:
        out["usage"] = u
    return out


def created_at(data: dict) -> int:
    stamp = data.get("createTime")  # Vertex only (RFC 3339)
    if isinstance(stamp, str):
        try:
            from datetime import datetime

            return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp())
        except ValueError:
            pass
    return int(time.time())


def json_object(body: bytes) -> dict:
    # Vertex wraps some answers in a one-element array
    return base.json_object(body, unwrap_single=True)


# --- errors ------------------------------------------------------------------------------------------------


def parse_error_body(status: int, body: bytes):
    """Google's ``{"error": {"code", "message", "status", "details"}}`` (bare or in a one-element array)."""
    return error_from_body(status, body, error_from_object, unwrap_first=True)


def error_from_object(status: int, data: dict):
    err = data.get("error")
    if not isinstance(err, dict):
        return provider_error(status, dumps(data)[:1000])
    message = err.get("message") if isinstance(err.get("message"), str) else ""
    rpc_status = err.get("status") if isinstance(err.get("status"), str) else None
    return provider_error(status, message, type=rpc_status, code=rpc_status, retry_after=_retry_delay(err))


def _retry_delay(err: dict) -> float | None:
    # google.rpc.RetryInfo carries the wait a 429 asks for, as a duration string like "37s"
    for detail in err.get("details") or ():
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
            delay = detail.get("retryDelay")
            if isinstance(delay, str) and delay.endswith("s"):
                try:
                    return float(delay[:-1])
                except ValueError:
                    return None
    return None


def _status_of(err) -> int:
    code = err.get("code") if isinstance(err, dict) else None
    return code if isinstance(code, int) and 400 <= code <= 599 else 500


# --- streaming ---------------------------------------------------------------------------------------------


class GeminiStream:
    """Each SSE ``data:`` is a whole ``GenerateContentResponse`` fragment; there is no ``[DONE]``.

    ``finished`` is set by a ``finishReason`` (or a blocked prompt); reading goes on to the end of the
    stream, which Gemini closes right after the last fragment, so usage sent after it is not lost.
    Function calls arrive whole, so each goes out as one delta with its id, name and full arguments.
    """

    __slots__ = ("finished", "done", "malformed", "model", "id", "created", "_started", "_calls")

    def __init__(self, *, model: str) -> None:
        self.finished = False
        self.done = False
        self.malformed = 0
        self.model = model
        self.id = ""
        self.created = int(time.time())
        self._started: set[int] = set()  # candidates whose first delta (with the role) went out
        self._calls: dict[int, int] = {}  # candidate index -> tool calls sent so far

    def feed(self, event: Event) -> list[dict]:
        data = event.data
        if not data or not data.strip():
            return []
        try:
            obj = json.loads(data)
        except ValueError:
            self.malformed += 1
            return []
        if isinstance(obj, list) and len(obj) == 1:
            obj = obj[0]
        if not isinstance(obj, dict):
            self.malformed += 1
            return []
        if isinstance(obj.get("error"), dict):
            raise error_from_object(_status_of(obj["error"]), obj)
        if not self.id:
            self.id = obj.get("responseId") or "chatcmpl-" + uuid.uuid4().hex
        if obj.get("modelVersion"):
            self.model = obj["modelVersion"]
        choices = [self._choice(pos, cand) for pos, cand in enumerate(obj.get("candidates") or ())]
        if not obj.get("candidates") and (obj.get("promptFeedback") or {}).get("blockReason"):
            self.finished = True
            choices.append({"index": 0, "delta": {"role": "assistant"}, "finish_reason": "content_filter"})
        chunk = {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                 "choices": choices}
        u = usage(obj.get("usageMetadata"))
        if u:
            chunk["usage"] = u
        return [chunk] if choices or u else []

    def _choice(self, pos: int, cand: dict) -> dict:
        index = cand.get("index", pos)
        parts = _Parts((cand.get("content") or {}).get("parts"))
        delta: dict = {}
        if index not in self._started:
            self._started.add(index)
            delta["role"] = "assistant"
        parts.fill(delta)
        if parts.tool_calls:
            first = self._calls.get(index, 0)
            delta["tool_calls"] = [{"index": first + k, **call} for k, call in enumerate(parts.tool_calls)]
            self._calls[index] = first + len(parts.tool_calls)
        choice: dict = {"index": index, "delta": delta}
        lp = logprobs(cand.get("logprobsResult"))
        if lp:
            choice["logprobs"] = lp
        if cand.get("finishReason"):
            self.finished = True
            choice["finish_reason"] = finish_reason(cand["finishReason"], has_tool_calls=bool(self._calls.get(index)))
        return choice


# --- the adapter -------------------------------------------------------------------------------------------


class GeminiAdapter(KeyRules):
    framing = "sse"

    def url(self, target: Target, *, stream: bool) -> str:
        model = target.model
        # a full resource name (tunedModels/…, models/…) is used as the path; a bare name goes under models/
        path = quote(model, safe="/-._@") if "/" in model else "models/" + quote(model, safe="-._@")
        method = ":streamGenerateContent?alt=sse" if stream else ":generateContent"
        return f"{target.base_url}/{path}{method}"

    def build_request(self, req: ChatRequest, target: Target, *, stream: bool, passthrough: bool = False) -> UpstreamRequest:
        body = build_body(req, target, stream=stream, passthrough=passthrough)
        return json_request(self.url(target, stream=stream), body, stream=stream)

    def parse_response(self, body: bytes, target: Target) -> dict:
        return parse_body(json_object(body), model=target.model)

    def parse_error(self, status: int, headers: Mapping[str, str], body: bytes, target: Target):
        return parse_error_body(status, body)

    def new_stream(self, req: ChatRequest, target: Target) -> GeminiStream:
        return GeminiStream(model=target.model)


ADAPTER = GeminiAdapter()
