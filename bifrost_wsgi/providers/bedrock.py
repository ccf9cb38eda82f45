"""Amazon Bedrock Converse and ConverseStream: OpenAI chat requests in, Converse bodies out, and back.

Wire facts (Amazon Bedrock API reference: Converse, ConverseStream, ContentBlock, ConverseStreamOutput):

* ``POST {base}/model/{modelId}/converse`` (``/converse-stream``); ``modelId`` is fully percent-encoded,
  so an ARN's ``:`` and ``/`` travel as ``%3A`` / ``%2F`` and stay one path segment (SigV4 signs them
  encoded once more, see ``sigv4.py``). ``modelId`` is the key's ``deployments[model]`` when mapped,
  prefixed with the key's ``arn`` (as Bifrost's ``getModelPath`` does), else the model as given.
* System and developer messages go to ``system``; tool results become ``toolResult`` blocks in a user
  turn; adjacent turns of one role are merged (Converse wants user and assistant to alternate).
* Images and files travel as bytes (base64 in JSON): only data URIs / base64 can be sent; Converse cannot
  fetch a URL, so an http(s) image URL is refused with 400 naming the part.
* ``response_format`` json_schema / json_object has no native Converse field for every model: the schema
  becomes a tool named ``bf_so_<name>`` the model must call (Bifrost's approach), and the tool's input is
  returned as the message ``content``; tools named ``bf_so_*`` are reserved for this.
* Claude thinking goes in ``additionalModelRequestFields.thinking``, Nova's in ``reasoningConfig``.
* The stream is the AWS event-stream framing (``eventstream.py``); ``feed`` receives its messages.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
import uuid
from typing import Mapping
from urllib.parse import quote, unquote_to_bytes

from ..errors import UnsupportedParameter, UpstreamProtocolError, ValidationError, provider_error
from .base import (ChatRequest, Key, KeyFields, KeyRules, add_turn, Target, UpstreamRequest, dumps, json_event, json_object,
                   json_request, refuse_unsupported)

PROVIDER = "bedrock"
DEFAULT_REGION = "us-east-1"
#: tools with this prefix carry ``response_format`` (structured output); their input is the answer
STRUCTURED_PREFIX = "bf_so_"

#: sent as ``maxTokens`` with thinking when the client gives none (thinking needs room beyond its budget)
DEFAULT_MAX_TOKENS = 4096
MIN_THINKING_BUDGET = 1024
#: ``reasoning.effort`` → Claude ``thinking.budget_tokens`` (same table as the anthropic adapter)
EFFORT_BUDGETS = {"minimal": 1024, "low": 2048, "medium": 4096, "high": 8192, "xhigh": 16384}
#: ``reasoning.effort`` → Nova ``reasoningConfig.maxReasoningEffort``
NOVA_EFFORTS = {"minimal": "low", "low": "low", "medium": "medium", "high": "high", "xhigh": "high"}

STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}

#: in-stream exception → HTTP status. The documented 424 of modelStreamErrorException and 408 of
#: modelTimeoutException become 503 / 504, as in Bifrost, so that retries and fallbacks apply
#: (AWS: "A streaming error occurred. Retry your request.").
EXCEPTION_STATUS = {
    "validationexception": 400,
    "accessdeniedexception": 403,
    "resourcenotfoundexception": 404,
    "modelerrorexception": 424,
    "throttlingexception": 429,
    "servicequotaexceededexception": 429,
    "internalserverexception": 500,
    "serviceunavailableexception": 503,
    "modelnotreadyexception": 503,
    "modelstreamerrorexception": 503,
    "modeltimeoutexception": 504,
}

IMAGE_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/jpg": "jpeg", "image/gif": "gif",
                 "image/webp": "webp"}
DOCUMENT_FORMATS = {  # Converse DocumentFormat: pdf | csv | doc | docx | xls | xlsx | html | txt | md
    "application/pdf": "pdf",
    "text/csv": "csv",
    "application/msword": "doc",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.ms-excel": "xls",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "text/html": "html",
    "text/plain": "txt",
    "text/markdown": "md",
}
DOCUMENT_EXTENSIONS = {fmt: fmt for fmt in DOCUMENT_FORMATS.values()} | {"htm": "html", "markdown": "md"}

#: Bedrock-specific top-level fields honoured without the pass-through header (as Bifrost does)
BEDROCK_FIELDS = ("guardrailConfig", "performanceConfig", "promptVariables", "requestMetadata",
                  "additionalModelResponseFieldPaths")
# extra fields this module consumes itself; pass-through never copies them to the top level
_CONSUMED = frozenset({*BEDROCK_FIELDS, "additionalModelRequestFields", "top_k"})

#: ConverseStream answers in the AWS event-stream framing, not server-sent events
_STREAM_ACCEPT = "application/vnd.amazon.eventstream"
_CACHE_POINT = {"cachePoint": {"type": "default"}}
_EMPTY_RESULT = {"text": "(empty)"}
_NAME_JUNK = re.compile(r"[^A-Za-z0-9\s\-()\[\]]+")


def _unsupported(what: str, param: str) -> UnsupportedParameter:
    return UnsupportedParameter(f"{what} is not supported by {PROVIDER}", param=param)


# --- where the request goes ---------------------------------------------------------------------------


def region(target: Target) -> str:
    return (target.key.settings or {}).get("region") or DEFAULT_REGION


def model_id(target: Target) -> str:
    """The Converse ``modelId``: a deployment (inference profile) mapping, ARN-prefixed, or the model."""
    conf = target.key.settings or {}
    mapped = target.key.deployments.get(target.model)
    if not mapped:
        return target.model
    arn = conf.get("arn")
    if arn and not mapped.startswith("arn:"):
        return f"{arn.rstrip('/')}/{mapped}"
    return mapped


def url(target: Target, *, stream: bool) -> str:
    base = target.base_url.replace("{region}", region(target))
    operation = "converse-stream" if stream else "converse"
    return f"{base}/model/{quote(model_id(target), safe='')}/{operation}"


def _family(target: Target) -> str:
    """``claude``, ``nova`` or ``other``: decides where reasoning settings go."""
    name = f"{target.model} {model_id(target)}".lower()
    if "claude" in name or "anthropic." in name:
        return "claude"
    if "nova" in name:
        return "nova"
    return "other"


# --- request --------------------------------------------------------------------------------------


def build_body(req: ChatRequest, target: Target, *, stream: bool = False, passthrough: bool = False) -> dict:
    """The Converse request body (``modelId`` travels in the URL)."""
    params, extra = req.params, req.extra
    _refuse_unsupported(params)
    family = _family(target)
    system, turns = _conversation(req.messages)
    body: dict = {"messages": turns}
    if system:
        body["system"] = system
    given = extra.get("additionalModelRequestFields")
    fields = dict(given) if isinstance(given, dict) else {}
    thinking = _REASONING.get(family, _no_reasoning)(params.get("reasoning"), fields)
    inference = _inference_config(params, claude=family == "claude", thinking=thinking)
    if inference:
        body["inferenceConfig"] = inference
    tool_config = _tool_config(params, turns, thinking=thinking is not None)
    if tool_config:
        body["toolConfig"] = tool_config
    if "top_k" in extra and not (family == "claude" and thinking is not None):  # Claude: not with thinking
        _TOP_K.get(family, _top_k)(fields, extra["top_k"])
    if fields:
        body["additionalModelRequestFields"] = fields
    for name in BEDROCK_FIELDS:
        if name in extra:
            body[name] = extra[name]
    if passthrough:
        for k, v in extra.items():
            if k not in _CONSUMED:
                body.setdefault(k, v)
    return body


def _refuse_unsupported(params: dict) -> None:
    """Parameters whose silent loss would change what the client gets: the ones Anthropic refuses too, and
    web search, which Converse does not offer."""
    refuse_unsupported(params, PROVIDER)
    if "web_search_options" in params:
        raise _unsupported("web_search_options", "web_search_options")


def _inference_config(params: dict, *, claude: bool, thinking: dict | None) -> dict:
    cfg: dict = {}
    max_tokens = params.get("max_completion_tokens")
    if thinking is not None:
        # the budget is part of maxTokens: keep what the client asked for free for the visible answer
        max_tokens = max_tokens or DEFAULT_MAX_TOKENS
        if thinking["budget_tokens"] >= max_tokens:
            max_tokens += thinking["budget_tokens"]
    if max_tokens is not None:
        cfg["maxTokens"] = max_tokens
    # Claude rejects temperature with thinking, and newer Claude models reject temperature with top_p
    if "temperature" in params and not (claude and thinking is not None):
        cfg["temperature"] = params["temperature"]
    if "top_p" in params and not (claude and "temperature" in cfg):
        cfg["topP"] = params["top_p"]
    stop = params.get("stop")
    if stop:
        cfg["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    return cfg


# reasoning: family → fn(reasoning param, additionalModelRequestFields) -> Claude thinking dict or None


def _effort(reasoning: dict | None) -> str | None:
    if not reasoning or reasoning.get("enabled") is False or reasoning.get("effort") == "none":
        return None
    if reasoning.get("effort"):
        return reasoning["effort"]
    return "medium" if reasoning.get("enabled") or reasoning.get("max_tokens") else None


def _claude_thinking(reasoning: dict | None, fields: dict) -> dict | None:
    effort = _effort(reasoning)
    if effort is None:
        return None
    budget = reasoning.get("max_tokens") or EFFORT_BUDGETS[effort]
    # an explicit additionalModelRequestFields.thinking from the client wins
    thinking = fields.setdefault("thinking", {"type": "enabled", "budget_tokens": max(budget, MIN_THINKING_BUDGET)})
    return thinking if isinstance(thinking, dict) and isinstance(thinking.get("budget_tokens"), int) else None


def _nova_reasoning(reasoning: dict | None, fields: dict) -> None:
    effort = _effort(reasoning)
    if effort is not None:
        fields.setdefault("reasoningConfig", {"type": "enabled", "maxReasoningEffort": NOVA_EFFORTS[effort]})
    return None


def _no_reasoning(reasoning: dict | None, fields: dict) -> None:
    return None  # other families have no documented Converse reasoning switch; dropped


_REASONING = {"claude": _claude_thinking, "nova": _nova_reasoning}


def _top_k(fields: dict, value) -> None:
    fields.setdefault("top_k", value)


def _nova_top_k(fields: dict, value) -> None:
    # Nova reads its own sampling knobs from an inner inferenceConfig (Amazon Nova user guide, "Core inference")
    inner = fields.get("inferenceConfig")
    if inner is None or isinstance(inner, dict):
        fields["inferenceConfig"] = {"topK": value, **(inner or {})}


_TOP_K = {"nova": _nova_top_k}


# messages


class _DocumentNames:
    """Converse wants document names unique in a request and limited to a small alphabet."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def take(self, filename: str | None) -> str:
        stem = (filename or "").rsplit("/", 1)[-1]
        if "." in stem:
            stem = stem.rsplit(".", 1)[0]
        name = " ".join(_NAME_JUNK.sub("-", stem).split())[:190].strip() or "document"
        unique, n = name, 1
        while unique in self.seen:
            n += 1
            unique = f"{name} ({n})"
        self.seen.add(unique)
        return unique


def _conversation(messages) -> tuple[list[dict], list[dict]]:
    system: list[dict] = []
    turns: list[dict] = []
    names = _DocumentNames()
    for i, msg in enumerate(messages):
        path = f"messages[{i}]"
        if msg.role in ("system", "developer"):
            system.extend(_system_blocks(msg.content, f"{path}.content"))
            continue
        role, blocks = _TURNS[msg.role](msg, path, names)
        if not blocks:
            continue
        add_turn(turns, role, blocks)
    return system, turns


def _system_blocks(content, path: str) -> list[dict]:
    if isinstance(content, str):
        return [{"text": content}] if content else []
    blocks = []
    for j, part in enumerate(content or ()):
        if part.get("type") != "text":
            raise _unsupported(f"{part.get('type')} content in a system message", f"{path}[{j}]")
        if part.get("text"):
            blocks.append({"text": part["text"]})
            if part.get("cache_control"):
                blocks.append(dict(_CACHE_POINT))
    return blocks


def _user_turn(msg, path: str, names: _DocumentNames) -> tuple[str, list[dict]]:
    return "user", _blocks(msg.content, f"{path}.content", names)


def _assistant_turn(msg, path: str, names: _DocumentNames) -> tuple[str, list[dict]]:
    blocks = _replayed_reasoning(msg.reasoning_details or ())
    blocks += _blocks(msg.content, f"{path}.content", names)
    for j, call in enumerate(msg.tool_calls or ()):
        fn = call.get("function") or {}
        arguments = _arguments(fn.get("arguments"), f"{path}.tool_calls[{j}].function.arguments")
        blocks.append({"toolUse": {"toolUseId": call.get("id", ""), "name": fn.get("name", ""), "input": arguments}})
    return "assistant", blocks


def _tool_turn(msg, path: str, names: _DocumentNames) -> tuple[str, list[dict]]:
    result = [b for b in _blocks(msg.content, f"{path}.content", names) if "cachePoint" not in b]
    # Converse rejects blank text in tool results too; an empty result must still answer its toolUse
    return "user", [{"toolResult": {"toolUseId": msg.tool_call_id or "", "content": result or [dict(_EMPTY_RESULT)]}}]


_TURNS = {"user": _user_turn, "assistant": _assistant_turn, "tool": _tool_turn}


def _arguments(arguments, path: str):
    if not arguments:
        return {}
    try:
        return json.loads(arguments)
    except ValueError:
        raise ValidationError(f"invalid request format: {path}: must be valid JSON", param=path) from None


def _replayed_reasoning(details) -> list[dict]:
    """``reasoning_details`` of an earlier answer → ``reasoningContent`` blocks. Fragments of one index (as a
    client may have collected them from a stream) are joined; text without a signature cannot be replayed."""
    merged: list[dict] = []
    for d in details:
        last = merged[-1] if merged else None
        if last is not None and last.get("type") == d.get("type") and last.get("index") == d.get("index"):
            for key in ("text", "data"):
                if d.get(key):
                    last[key] = last.get(key, "") + d[key]
            if d.get("signature"):
                last["signature"] = d["signature"]
        else:
            merged.append(dict(d))
    blocks = []
    for d in merged:
        if d.get("type") == "reasoning.text" and d.get("signature"):
            blocks.append({"reasoningContent": {"reasoningText": {"text": d.get("text", ""),
                                                                  "signature": d["signature"]}}})
        elif d.get("type") == "reasoning.encrypted" and d.get("data"):
            blocks.append({"reasoningContent": {"redactedContent": d["data"]}})
    return blocks


def _blocks(content, path: str, names: _DocumentNames) -> list[dict]:
    if isinstance(content, str):
        return [{"text": content}] if content else []  # Converse rejects blank text blocks
    blocks: list[dict] = []
    for j, part in enumerate(content or ()):
        build = _PARTS.get(part.get("type"))
        if build is None:
            continue
        block = build(part, f"{path}[{j}]", names)
        if block is None:
            continue
        blocks.append(block)
        if part.get("cache_control"):
            blocks.append(dict(_CACHE_POINT))
    return blocks


def _text_part(part: dict, path: str, names) -> dict | None:
    return {"text": part["text"]} if part.get("text") else None


def _image_part(part: dict, path: str, names) -> dict:
    path = f"{path}.image_url.url"
    mime, data = _data_uri(part["image_url"]["url"], path, what="image URLs")
    fmt = IMAGE_FORMATS.get(mime)
    if fmt is None:
        raise _unsupported(f"image type {mime or 'unknown'}", path)
    return {"image": {"format": fmt, "source": {"bytes": data}}}


def _file_part(part: dict, path: str, names: _DocumentNames) -> dict:
    file = part["file"]
    if "file_data" not in file:
        raise _unsupported("file_id references", f"{path}.file.file_id")
    data_path = f"{path}.file.file_data"
    raw = file["file_data"]
    if raw.startswith("data:"):
        mime, data = _data_uri(raw, data_path, what="file URLs")
    else:
        mime, data = "", "".join(raw.split())
    mime = mime or (file.get("file_type") or "").lower()
    if mime in IMAGE_FORMATS:
        return {"image": {"format": IMAGE_FORMATS[mime], "source": {"bytes": data}}}
    fmt = DOCUMENT_FORMATS.get(mime) or _format_from_name(file.get("filename")) or _sniff_pdf(data)
    if fmt is None:
        raise _unsupported(f"file type {mime or 'unknown'} (send pdf, csv, doc, docx, xls, xlsx, html, txt or md)",
                           data_path)
    return {"document": {"format": fmt, "name": names.take(file.get("filename")), "source": {"bytes": data}}}


def _audio_part(part: dict, path: str, names) -> dict:
    raise _unsupported("audio input", path)


_PARTS = {"text": _text_part, "image_url": _image_part, "file": _file_part, "input_audio": _audio_part}


def _data_uri(uri: str, path: str, *, what: str) -> tuple[str, str]:
    """``data:<mime>[;base64],<data>`` → (mime, base64 data). Converse takes bytes only, never a URL."""
    if not uri.startswith("data:"):
        raise UnsupportedParameter(f"{what} are not supported by {PROVIDER} (Converse cannot fetch them): "
                                   "send the content as a base64 data URI", param=path)
    meta, sep, data = uri[5:].partition(",")
    if not sep:
        raise ValidationError(f"invalid request format: {path}: malformed data URI", param=path)
    fields = meta.split(";")
    mime = fields[0].strip().lower()
    if "base64" in (f.strip().lower() for f in fields[1:]):
        return mime, "".join(data.split())
    return mime, base64.b64encode(unquote_to_bytes(data)).decode()


def _format_from_name(filename: str | None) -> str | None:
    if not filename or "." not in filename:
        return None
    return DOCUMENT_EXTENSIONS.get(filename.rsplit(".", 1)[1].lower())


def _sniff_pdf(data: str) -> str | None:
    try:
        head = base64.b64decode(data[:8] + "=" * (-len(data[:8]) % 4))
    except (binascii.Error, ValueError):
        return None
    return "pdf" if head.startswith(b"%PDF") else None


# tools


def _tool_config(params: dict, turns: list[dict], *, thinking: bool) -> dict | None:
    mode, name, allowed = _tool_choice(params.get("tool_choice"))
    tools: list[dict] = []
    for i, tool in enumerate(params.get("tools") or ()):
        if tool.get("type") != "function":
            raise _unsupported(f"{tool.get('type')} tools", f"tools[{i}]")
        fn = tool["function"]
        if allowed is not None and fn["name"] not in allowed:
            continue
        spec = {"name": fn["name"]}
        if fn.get("description"):
            spec["description"] = fn["description"]
        spec["inputSchema"] = {"json": fn.get("parameters") or {"type": "object", "properties": {}}}
        tools.append({"toolSpec": spec})
        if tool.get("cache_control"):
            tools.append(dict(_CACHE_POINT))
    if mode == "none" and not _has_tool_blocks(turns):
        tools = []  # Converse has no "none" choice: the model cannot call what it is not given
    structured = _structured_tool(params.get("response_format"))
    if structured is not None:
        real = any("toolSpec" in t for t in tools)
        tools.append({"toolSpec": structured})
        if thinking:
            mode, name = "auto", None  # Claude rejects forced tool use while thinking: the tool is only offered
        elif not real or mode == "none":
            mode, name = "tool", structured["name"]
        elif mode in (None, "auto"):
            mode = "any"  # answer through some tool: a real tool call, or the structured answer
    if not tools:
        # Converse requires toolConfig whenever the history holds toolUse/toolResult blocks
        history = _tools_from_history(turns)
        return {"tools": history} if history else None
    config: dict = {"tools": tools}
    if mode in ("auto", "any"):
        config["toolChoice"] = {mode: {}}
    elif mode == "tool":
        config["toolChoice"] = {"tool": {"name": name}}
    return config


def _tool_choice(choice) -> tuple[str | None, str | None, set | None]:
    """(mode, tool name, allowed tool names) for an OpenAI ``tool_choice``."""
    if choice is None:
        return None, None, None
    if isinstance(choice, str):
        return {"required": "any"}.get(choice, choice), None, None
    kind = choice["type"]
    if kind == "function":
        return "tool", choice["function"]["name"], None
    if kind == "allowed_tools":
        spec = choice.get("allowed_tools") or {}
        names = {t["function"]["name"] for t in spec.get("tools") or () if t.get("function")}
        return ("any" if spec.get("mode") == "required" else "auto"), None, names
    if kind == "custom":
        raise _unsupported("custom tool_choice", "tool_choice")
    return {"required": "any"}.get(kind, kind), None, None


def _structured_tool(fmt: dict | None) -> dict | None:
    if not fmt or fmt.get("type") == "text":
        return None
    if fmt["type"] == "json_object":
        return {"name": STRUCTURED_PREFIX + "json_object", "description": "Answer with a JSON object.",
                "inputSchema": {"json": {"type": "object"}}}
    js = fmt["json_schema"]
    return {"name": STRUCTURED_PREFIX + js["name"],
            "description": js.get("description") or "Answer with JSON that matches this schema.",
            "inputSchema": {"json": js.get("schema") or {"type": "object"}}}


def _has_tool_blocks(turns: list[dict]) -> bool:
    return any("toolUse" in b or "toolResult" in b for t in turns for b in t["content"])


def _tools_from_history(turns: list[dict]) -> list[dict]:
    names = dict.fromkeys(b["toolUse"]["name"] for t in turns for b in t["content"] if "toolUse" in b)
    return [{"toolSpec": {"name": n, "inputSchema": {"json": {"type": "object", "properties": {}}}}}
            for n in names if n]


# --- response -------------------------------------------------------------------------------------


def _new_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


class _Answer:
    """What the content blocks of one Converse answer add up to."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.tool_calls: list[dict] = []
        self.reasoning: list[str] = []
        self.details: list[dict] = []
        self.structured: str | None = None

    def text(self, value) -> None:
        if isinstance(value, str):
            self.texts.append(value)

    def tool_use(self, use) -> None:
        if not isinstance(use, dict):
            return
        arguments = dumps(use.get("input", {}))
        if use.get("name", "").startswith(STRUCTURED_PREFIX):
            self.structured = arguments
            return
        self.tool_calls.append({"id": use.get("toolUseId", ""), "type": "function",
                                "function": {"name": use.get("name", ""), "arguments": arguments}})

    def reasoning_content(self, content) -> None:
        text = content.get("reasoningText") if isinstance(content, dict) else None
        if isinstance(text, dict):
            self.reasoning.append(text.get("text", ""))
            detail = {"index": len(self.details), "type": "reasoning.text", "text": text.get("text", "")}
            if text.get("signature"):
                detail["signature"] = text["signature"]
            self.details.append(detail)
        elif isinstance(content, dict) and content.get("redactedContent"):
            self.details.append({"index": len(self.details), "type": "reasoning.encrypted",
                                 "data": content["redactedContent"]})

    def citations_content(self, content) -> None:
        # the generated text of an answer with citations; the citations themselves have no OpenAI field
        for part in (content.get("content") or ()) if isinstance(content, dict) else ():
            self.text(part.get("text"))

    def message(self) -> dict:
        out: dict = {"role": "assistant"}
        if self.structured is not None:
            out["content"] = self.structured
        elif self.texts or not self.tool_calls:
            out["content"] = "".join(self.texts)
        if self.reasoning:
            out["reasoning"] = "".join(self.reasoning)
        if self.details:
            out["reasoning_details"] = self.details
        if self.tool_calls:
            out["tool_calls"] = self.tool_calls
        return out


#: Converse content block kind → what it adds to the answer (guardContent, images, … add nothing)
_BLOCKS = {"text": _Answer.text, "toolUse": _Answer.tool_use, "reasoningContent": _Answer.reasoning_content,
           "citationsContent": _Answer.citations_content}


def parse_message(data: dict, target: Target) -> dict:
    """A Converse response → OpenAI chat.completion (Converse has no id: one is made up)."""
    message = (data.get("output") or {}).get("message")
    if not isinstance(message, dict):
        raise UpstreamProtocolError("upstream answer has no output message")
    answer = _Answer()
    for block in message.get("content") or ():
        for kind, value in block.items() if isinstance(block, dict) else ():
            handler = _BLOCKS.get(kind)
            if handler is not None:
                handler(answer, value)
    finish = STOP_REASONS.get(data.get("stopReason"), "stop")
    if finish == "tool_calls" and not answer.tool_calls:
        finish = "stop"  # the structured-output tool answered
    result = {"id": _new_id(), "object": "chat.completion", "created": int(time.time()), "model": target.model,
              "choices": [{"index": 0, "message": answer.message(), "finish_reason": finish}]}
    usage = parse_usage(data.get("usage"))
    if usage:
        result["usage"] = usage
    return result


def parse_usage(usage) -> dict | None:
    """Converse counts cache reads and writes apart from ``inputTokens``; OpenAI's prompt_tokens holds them."""
    if not isinstance(usage, dict):
        return None
    read, write = usage.get("cacheReadInputTokens"), usage.get("cacheWriteInputTokens")
    prompt = _int(usage.get("inputTokens")) + _int(read) + _int(write)
    completion = _int(usage.get("outputTokens"))
    out = {"prompt_tokens": prompt, "completion_tokens": completion,
           "total_tokens": max(_int(usage.get("totalTokens")), prompt + completion)}
    if read is not None or write is not None:
        out["prompt_tokens_details"] = {"cached_tokens": _int(read)}
    return out


def _int(value) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


# --- errors ---------------------------------------------------------------------------------------


def error_type(headers: Mapping[str, str], data: dict | None) -> str | None:
    """``x-amzn-ErrorType: ThrottlingException:http://…`` or a body ``__type`` (``…#ValidationException``)."""
    raw = next((v for k, v in headers.items() if k.lower() == "x-amzn-errortype"), None)
    if not raw and isinstance(data, dict):
        raw = data.get("__type")
    if not isinstance(raw, str) or not raw:
        return None
    return raw.split(":", 1)[0].rsplit("#", 1)[-1] or None


def _message_of(data, fallback: str) -> str:
    if isinstance(data, dict):
        for key in ("message", "Message"):
            if isinstance(data.get(key), str) and data[key]:
                return data[key]
    return fallback


def parse_error(status: int, headers: Mapping[str, str], body: bytes):
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    text = body.decode("utf-8", "replace").strip()[:1000]
    message = _message_of(data, text or f"upstream returned status {status}")
    return provider_error(status, message, type=error_type(headers, data))


# --- stream ---------------------------------------------------------------------------------------


class ConverseStream:
    """ConverseStream event-stream messages → OpenAI chunks.

    ``messageStop`` completes the answer (``finished``); ``metadata`` (usage) is the last event (``done``).
    An ``exception`` message raises the matching ProviderError.
    """

    __slots__ = ("finished", "done", "malformed", "_id", "_created", "_model", "_role_sent", "_blocks",
                 "_tool_count", "_reasoning_count")

    def __init__(self, model: str) -> None:
        self.finished = False
        self.done = False
        self.malformed = 0
        self._id = _new_id()
        self._created = int(time.time())
        self._model = model
        self._role_sent = False
        self._blocks: dict[int, tuple[str, int]] = {}  # contentBlockIndex → (kind, ordinal)
        self._tool_count = 0
        self._reasoning_count = 0

    def feed(self, message) -> list[dict]:
        kind = message.message_type
        if kind == "exception":
            raise self._exception(message)
        if kind == "error":
            text = message.headers.get(":error-message") or "upstream stream error"
            raise provider_error(500, str(text), type=str(message.headers.get(":error-code") or "") or None)
        handler = self._EVENTS.get(message.event_type)
        if handler is None:
            return []
        data = json_event(message.payload)
        if data is None:
            self.malformed += 1
            return []
        return handler(self, data)

    @staticmethod
    def _exception(message):
        etype = message.exception_type or message.event_type
        try:
            data = json.loads(message.payload)
        except ValueError:
            data = None
        text = message.payload.decode("utf-8", "replace").strip()[:1000]
        return provider_error(EXCEPTION_STATUS.get(etype.lower(), 500),
                              _message_of(data, text or f"upstream stream raised {etype}"), type=etype or None)

    def _chunk(self, delta: dict, finish: str | None = None) -> dict:
        if delta and not self._role_sent:
            delta = {"role": "assistant", **delta}
            self._role_sent = True
        choice: dict = {"index": 0, "delta": delta}
        if finish:
            choice["finish_reason"] = finish
        return {"id": self._id, "object": "chat.completion.chunk", "created": self._created, "model": self._model,
                "choices": [choice]}

    def _block_start(self, data: dict) -> list[dict]:
        use = (data.get("start") or {}).get("toolUse")
        if not isinstance(use, dict):
            return []
        index = data.get("contentBlockIndex", 0)
        name = use.get("name", "")
        if name.startswith(STRUCTURED_PREFIX):
            self._blocks[index] = ("structured", 0)
            return []
        ordinal = self._tool_count
        self._tool_count += 1
        self._blocks[index] = ("tool", ordinal)
        call = {"index": ordinal, "id": use.get("toolUseId", ""), "type": "function",
                "function": {"name": name, "arguments": ""}}
        return [self._chunk({"tool_calls": [call]})]

    def _block_delta(self, data: dict) -> list[dict]:
        delta = data.get("delta") or {}
        index = data.get("contentBlockIndex", 0)
        if delta.get("text"):
            return [self._chunk({"content": delta["text"]})]
        if isinstance(delta.get("toolUse"), dict):
            return self._tool_delta(index, delta["toolUse"].get("input"))
        if isinstance(delta.get("reasoningContent"), dict):
            return self._reasoning_delta(index, delta["reasoningContent"])
        return []

    def _tool_delta(self, index: int, fragment) -> list[dict]:
        kind, ordinal = self._blocks.get(index, ("", 0))
        if not fragment or not isinstance(fragment, str):
            return []
        if kind == "structured":
            return [self._chunk({"content": fragment})]
        if kind == "tool":
            return [self._chunk({"tool_calls": [{"index": ordinal, "function": {"arguments": fragment}}]})]
        return []

    def _reasoning_delta(self, index: int, content: dict) -> list[dict]:
        kind, ordinal = self._blocks.get(index, ("", 0))
        if kind != "reasoning":
            ordinal = self._reasoning_count
            self._reasoning_count += 1
            self._blocks[index] = ("reasoning", ordinal)
        if content.get("text"):
            detail = {"index": ordinal, "type": "reasoning.text", "text": content["text"]}
            return [self._chunk({"reasoning": content["text"], "reasoning_details": [detail]})]
        if content.get("signature"):
            detail = {"index": ordinal, "type": "reasoning.text", "signature": content["signature"]}
            return [self._chunk({"reasoning_details": [detail]})]
        if content.get("redactedContent"):
            detail = {"index": ordinal, "type": "reasoning.encrypted", "data": content["redactedContent"]}
            return [self._chunk({"reasoning_details": [detail]})]
        return []

    def _message_stop(self, data: dict) -> list[dict]:
        self.finished = True
        finish = STOP_REASONS.get(data.get("stopReason"), "stop")
        if finish == "tool_calls" and not self._tool_count:
            finish = "stop"  # the structured-output tool answered
        return [self._chunk({}, finish)]

    def _metadata(self, data: dict) -> list[dict]:
        self.done = True
        usage = parse_usage(data.get("usage"))
        if not usage:
            return []
        return [{"id": self._id, "object": "chat.completion.chunk", "created": self._created, "model": self._model,
                 "choices": [], "usage": usage}]

    def _ignore(self, data: dict) -> list[dict]:
        return []

    _EVENTS = {"messageStart": _ignore, "contentBlockStart": _block_start, "contentBlockDelta": _block_delta,
               "contentBlockStop": _ignore, "messageStop": _message_stop, "metadata": _metadata}


# --- the adapter ----------------------------------------------------------------------------------


class BedrockAdapter(KeyRules):
    key_fields = KeyFields("bedrock_key_config",
                           frozenset({"access_key", "secret_key", "session_token", "region", "arn", "deployments"}),
                           frozenset({"role_arn", "external_id", "session_name"}),
                           secrets=frozenset({"access_key", "secret_key", "session_token"}))

    def check_key(self, key: Key) -> tuple[str, str] | None:
        settings = key.settings or {}
        if key.value or (settings.get("access_key") and settings.get("secret_key")):
            return None
        return "", "bedrock needs a value (API key) or bedrock_key_config.access_key and secret_key"

    framing = "aws-eventstream"

    def build_request(self, req: ChatRequest, target: Target, *, stream: bool,
                      passthrough: bool = False) -> UpstreamRequest:
        body = build_body(req, target, stream=stream, passthrough=passthrough)
        return json_request(url(target, stream=stream), body, stream=stream, stream_accept=_STREAM_ACCEPT)

    def parse_response(self, body: bytes, target: Target) -> dict:
        return parse_message(json_object(body), target)

    def parse_error(self, status: int, headers: Mapping[str, str], body: bytes, target: Target):
        return parse_error(status, headers, body)

    def new_stream(self, req: ChatRequest, target: Target) -> ConverseStream:
        return ConverseStream(target.model)


ADAPTER = BedrockAdapter()
