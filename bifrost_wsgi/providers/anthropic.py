"""Anthropic Messages API (``POST {base}/v1/messages``): OpenAI chat requests in, Messages bodies out, and back.

The pure functions here (``build_body``, ``parse_message``, ``parse_error_body``) and ``AnthropicStream`` are
also what the Vertex adapter uses for Claude models, so they know nothing about URLs or headers.

Anthropic differs from OpenAI in ways that shape this module:

* system prompts live in a top-level ``system`` field, not in ``messages``;
* turns must alternate user/assistant, so adjacent same-role turns are merged and tool results travel as
  ``tool_result`` blocks inside a *user* turn;
* ``max_tokens`` is required, so a default is sent when the client gives none;
* thinking blocks carry signatures that must be sent back verbatim on later turns (they come back to us as
  the assistant message's ``reasoning_details``);
* streamed tool calls are numbered by content-block index, which counts text and thinking blocks too, so the
  OpenAI tool-call ``index`` is our own counter.
"""

from __future__ import annotations

import binascii
import json
import time
from dataclasses import dataclass
from typing import Mapping

from ..errors import UnsupportedParameter, UpstreamProtocolError, ValidationError, provider_error
from ..wire.sse import Event
from .base import (ChatRequest, KeyRules, add_turn, Target, UpstreamRequest, dumps, error_from_body, json_event, json_object, json_request, refuse_unsupported)

PROVIDER = "anthropic"

#: sent as ``max_tokens`` when the client gives no ``max_completion_tokens`` (Anthropic requires one)
DEFAULT_MAX_TOKENS = 4096
#: Anthropic's floor for ``thinking.budget_tokens``
MIN_THINKING_BUDGET = 1024
#: ``reasoning.effort`` → ``thinking.budget_tokens``
EFFORT_BUDGETS = {"minimal": 1024, "low": 2048, "medium": 4096, "high": 8192, "xhigh": 16384}

STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",  # a server tool paused the turn; the answer so far is complete as far as we can tell
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

#: Anthropic error type → HTTP status, for errors that arrive without one (stream events, 200 bodies)
ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


def _unsupported(what: str, param: str):
    return UnsupportedParameter(f"{what} is not supported by {PROVIDER}", param=param)


# --- request ---------------------------------------------------------------------------------------


def build_body(req: ChatRequest, target: Target, *, stream: bool, passthrough: bool = False) -> dict:
    """The Messages API body for a chat request (``model`` included; Vertex pops it)."""
    params = req.params
    refuse_unsupported(params, PROVIDER)
    body: dict = {"model": target.model}
    max_tokens = params.get("max_completion_tokens", DEFAULT_MAX_TOKENS)
    thinking = _thinking(params.get("reasoning"))
    if thinking is not None and thinking["budget_tokens"] >= max_tokens:
        # keep what the client asked for (or the default) free for the visible answer
        max_tokens += thinking["budget_tokens"]
    body["max_tokens"] = max_tokens
    system = _system(req.messages)
    if system:
        body["system"] = system
    body["messages"] = _turns(req.messages)
    _sampling(body, params, req.extra, thinking=thinking is not None)
    stop = params.get("stop")
    if stop:
        body["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    user = params.get("user") or params.get("safety_identifier")
    if user:
        body["metadata"] = {"user_id": user}
    _tooling(body, params)
    if thinking is not None:
        body["thinking"] = thinking
    fmt = params.get("response_format") or {}
    schema = (fmt.get("json_schema") or {}).get("schema") if fmt.get("type") == "json_schema" else None
    if schema is not None:
        # native structured outputs (GA, no beta header); models without it answer 400, passed through
        body["output_config"] = {"format": {"type": "json_schema", "schema": schema}}
    if stream:
        body["stream"] = True
    if passthrough:
        for k, v in req.extra.items():
            body.setdefault(k, v)
    return body


def _sampling(body: dict, params: dict, extra: dict, *, thinking: bool) -> None:
    # Anthropic rejects temperature and top_k together with thinking; newer models also reject
    # temperature and top_p together, so top_p only goes when temperature does not.
    if not thinking and "temperature" in params:
        body["temperature"] = params["temperature"]
    if "top_p" in params and "temperature" not in body:
        body["top_p"] = params["top_p"]
    if not thinking and "top_k" in extra:
        body["top_k"] = extra["top_k"]


def _thinking(reasoning: dict | None) -> dict | None:
    """``reasoning`` → ``thinking`` (None when thinking stays off)."""
    if not reasoning or reasoning.get("enabled") is False or reasoning.get("effort") == "none":
        return None
    budget = reasoning.get("max_tokens")
    if budget is None:
        effort = reasoning.get("effort") or ("medium" if reasoning.get("enabled") else None)
        if effort is None:
            return None
        budget = EFFORT_BUDGETS[effort]
    if budget <= 0:
        return None
    return {"type": "enabled", "budget_tokens": max(budget, MIN_THINKING_BUDGET)}


def _tooling(body: dict, params: dict) -> None:
    tools = params.get("tools")
    if not tools:
        return
    choice = params.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") == "allowed_tools":
        allowed = choice.get("allowed_tools", {})
        names = {t.get("function", {}).get("name") for t in allowed.get("tools", ())}
        tools = [t for t in tools if t.get("function", {}).get("name") in names]
        choice = allowed.get("mode", "auto")
    body["tools"] = [_tool(t, f"tools[{i}]") for i, t in enumerate(tools)]
    out = _tool_choice(choice)
    if params.get("parallel_tool_calls") is False and (out or {"type": "auto"})["type"] != "none":
        out = {**(out or {"type": "auto"}), "disable_parallel_tool_use": True}
    if out is not None:
        body["tool_choice"] = out


def _tool(tool: dict, path: str) -> dict:
    if tool.get("type") != "function":
        raise _unsupported(f"tool type {tool.get('type')}", path)
    fn = tool["function"]
    out = {"name": fn["name"]}
    if fn.get("description"):
        out["description"] = fn["description"]
    out["input_schema"] = fn.get("parameters") or {"type": "object", "properties": {}}
    if "cache_control" in tool:
        out["cache_control"] = tool["cache_control"]
    return out


_TOOL_CHOICES = {"auto": "auto", "none": "none", "required": "any", "any": "any"}


def _tool_choice(choice) -> dict | None:
    if choice is None:
        return None
    kind = choice if isinstance(choice, str) else choice["type"]
    if kind == "function":
        return {"type": "tool", "name": choice["function"]["name"]}
    if kind not in _TOOL_CHOICES:
        raise _unsupported(f"tool_choice type {kind}", "tool_choice")
    return {"type": _TOOL_CHOICES[kind]}


def _system(messages) -> str | list | None:
    """System and developer messages, wherever they stand, become the top-level ``system``."""
    blocks = []
    for i, msg in enumerate(messages):
        if msg.role not in ("system", "developer"):
            continue
        if isinstance(msg.content, str):
            blocks.append({"type": "text", "text": msg.content})
            continue
        for j, part in enumerate(msg.content or ()):
            if part.get("type") != "text":
                raise _unsupported(f"{part.get('type')} content in system messages", f"messages[{i}].content[{j}]")
            blocks.append(_text_block(part))
    blocks = [b for b in blocks if b["text"]]
    if any("cache_control" in b for b in blocks):
        return blocks
    return "\n\n".join(b["text"] for b in blocks) or None


def _turns(messages) -> list[dict]:
    """Conversation turns with strict user/assistant alternation (adjacent same-role turns merged)."""
    turns: list[dict] = []
    for i, msg in enumerate(messages):
        convert = _TURN_BUILDERS.get(msg.role)
        if convert is None:  # system/developer: already in ``system``
            continue
        role, blocks = convert(msg, i)
        if not blocks:
            continue
        add_turn(turns, role, blocks)
    _trim_prefill(turns)
    for turn in turns:
        blocks = turn["content"]
        if len(blocks) == 1 and blocks[0].keys() == {"type", "text"}:
            turn["content"] = blocks[0]["text"]
    return turns


def _trim_prefill(turns: list[dict]) -> None:
    # A final assistant turn is a prefill (e.g. a resumed stream), and Anthropic rejects one that ends
    # in whitespace.
    if not turns or turns[-1]["role"] != "assistant":
        return
    blocks = turns[-1]["content"]
    if blocks[-1]["type"] == "text":
        blocks[-1]["text"] = blocks[-1]["text"].rstrip()
        if not blocks[-1]["text"]:
            blocks.pop()
    if not blocks:
        turns.pop()


def _user_turn(msg, i: int) -> tuple[str, list]:
    return "user", _content_blocks(msg.content, f"messages[{i}].content")


def _assistant_turn(msg, i: int) -> tuple[str, list]:
    blocks = _replayed_thinking(msg.reasoning_details or ())
    blocks += _content_blocks(msg.content, f"messages[{i}].content")
    for j, call in enumerate(msg.tool_calls or ()):
        fn = call.get("function", {})
        blocks.append({"type": "tool_use", "id": call.get("id", ""), "name": fn.get("name", ""),
                       "input": _arguments(fn.get("arguments"), f"messages[{i}].tool_calls[{j}].function.arguments")})
    return "assistant", blocks


def _tool_turn(msg, i: int) -> tuple[str, list]:
    content = msg.content
    if isinstance(content, list):
        content = _content_blocks(content, f"messages[{i}].content")
    return "user", [{"type": "tool_result", "tool_use_id": msg.tool_call_id, "content": content}]


_TURN_BUILDERS = {"user": _user_turn, "assistant": _assistant_turn, "tool": _tool_turn}


def _replayed_thinking(details) -> list[dict]:
    """Earlier thinking, sent back as it came: Anthropic verifies the signatures, and needs them to continue
    a tool-use turn that started with thinking. Details without a signature cannot be replayed."""
    blocks = []
    for d in sorted(details, key=lambda d: d.get("index", 0)):
        if d.get("type") == "reasoning.text" and d.get("signature"):
            blocks.append({"type": "thinking", "thinking": d.get("text", ""), "signature": d["signature"]})
        elif d.get("type") == "reasoning.encrypted" and d.get("data"):
            blocks.append({"type": "redacted_thinking", "data": d["data"]})
    return blocks


def _arguments(arguments, path: str) -> dict:
    if not arguments:
        return {}
    try:
        value = json.loads(arguments)
    except ValueError:
        raise ValidationError(f"invalid request format: {path}: must be valid JSON", param=path) from None
    if not isinstance(value, dict):
        raise ValidationError(f"invalid request format: {path}: must be a JSON object", param=path)
    return value


def _content_blocks(content, path: str) -> list[dict]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks = []
    for j, part in enumerate(content):
        convert = _PART_BUILDERS.get(part.get("type"))
        if convert is None:
            raise _unsupported(f"{part.get('type')} content", f"{path}[{j}]")
        block = convert(part, f"{path}[{j}]")
        if block is None:
            continue
        if "cache_control" in part:
            block["cache_control"] = part["cache_control"]
        blocks.append(block)
    return blocks


def _text_block(part: dict) -> dict:
    block = {"type": "text", "text": part.get("text", "")}
    if "cache_control" in part:
        block["cache_control"] = part["cache_control"]
    return block


def _text_part(part: dict, path: str) -> dict | None:
    text = part.get("text") or part.get("refusal") or ""
    return {"type": "text", "text": text} if text else None


def _image_part(part: dict, path: str) -> dict:
    url = part["image_url"]["url"]
    if url.startswith(("http://", "https://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    media_type, data = _data_uri(url, f"{path}.image_url.url")
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}


def _file_part(part: dict, path: str) -> dict:
    file = part["file"]
    raw = file.get("file_data")
    if not raw:
        raise _unsupported("file_id", f"{path}.file.file_id")
    if raw.startswith("data:"):
        media_type, data = _data_uri(raw, f"{path}.file.file_data")
    else:  # bare base64: only a PDF can be recognised without a media type
        media_type = "application/pdf" if raw.startswith("JVBERi") else ""
        data = raw
    if media_type == "application/pdf":
        source = {"type": "base64", "media_type": media_type, "data": data}
    elif media_type == "text/plain":
        source = {"type": "text", "media_type": media_type, "data": _decode_text(data, f"{path}.file.file_data")}
    else:
        raise _unsupported(f"file content of type {media_type or 'unknown'}", f"{path}.file.file_data")
    block = {"type": "document", "source": source}
    if file.get("filename"):
        block["title"] = file["filename"]
    return block


_PART_BUILDERS = {"text": _text_part, "refusal": _text_part, "image_url": _image_part, "file": _file_part}


def _data_uri(uri: str, path: str) -> tuple[str, str]:
    """``data:<mime>;base64,<data>`` → (mime, data)."""
    head, sep, data = uri.partition(",")
    if not uri.startswith("data:") or not sep or not head.endswith(";base64"):
        raise ValidationError(f"invalid request format: {path}: must be an http(s) URL or a base64 data URI",
                              param=path)
    return head[5:-7].split(";")[0], data


def _decode_text(data: str, path: str) -> str:
    try:
        return binascii.a2b_base64(data).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise ValidationError(f"invalid request format: {path}: must be base64 UTF-8 text", param=path) from None


# --- response --------------------------------------------------------------------------------------


def parse_message(data: dict, *, model: str, created: int | None = None) -> dict:
    """An Anthropic ``message`` object → an OpenAI ``chat.completion`` dict (no nulls)."""
    texts: list[str] = []
    calls: list[dict] = []
    reasoning: list[str] = []
    details: list[dict] = []
    for block in data.get("content") or ():
        kind = block.get("type")
        if kind == "text":
            texts.append(block.get("text") or "")
        elif kind == "tool_use":
            calls.append({"id": block.get("id", ""), "type": "function",
                          "function": {"name": block.get("name", ""), "arguments": dumps(block.get("input") or {})}})
        elif kind == "thinking":
            reasoning.append(block.get("thinking") or "")
            details.append(_detail("reasoning.text", len(details), text=block.get("thinking") or "",
                                   signature=block.get("signature")))
        elif kind == "redacted_thinking":
            details.append(_detail("reasoning.encrypted", len(details), data=block.get("data")))
    message: dict = {"role": "assistant"}
    if texts:
        message["content"] = "".join(texts)
    if calls:
        message["tool_calls"] = calls
    if reasoning:
        message["reasoning"] = "".join(reasoning)
    if details:
        message["reasoning_details"] = details
    result = {
        "id": data.get("id", ""),
        "object": "chat.completion",
        "created": int(time.time()) if created is None else created,
        "model": data.get("model") or model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason(data.get("stop_reason"))}],
    }
    usage = _usage(data.get("usage"))
    if usage:
        result["usage"] = usage
    return result


def finish_reason(stop_reason) -> str:
    return STOP_REASONS.get(stop_reason, "stop")


def _detail(kind: str, index: int, **fields) -> dict:
    out = {"type": kind, "index": index}
    out.update((k, v) for k, v in fields.items() if v is not None)
    return out


def _usage(u: Mapping | None) -> dict | None:
    """Anthropic counts cache reads and writes apart from ``input_tokens``; OpenAI's prompt_tokens has all."""
    if not u:
        return None
    read = _int(u.get("cache_read_input_tokens"))
    write = _int(u.get("cache_creation_input_tokens"))
    prompt = _int(u.get("input_tokens")) + read + write
    completion = _int(u.get("output_tokens"))
    usage = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
    details = {}
    if "cache_read_input_tokens" in u and u["cache_read_input_tokens"] is not None:
        details["cached_tokens"] = read
    if write:
        details["cache_write_tokens"] = write
    if details:
        usage["prompt_tokens_details"] = details
    return usage


def _int(value) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def parse_error_body(status: int, body: bytes):
    """Anthropic's ``{"type": "error", "error": {"type", "message"}}`` → a ProviderError with that status."""
    return error_from_body(status, body, _error)


def _error(status: int | None, data: dict):
    err = data.get("error")
    if not isinstance(err, dict):
        err = {"message": err if isinstance(err, str) else json.dumps(data)[:1000]}
    etype = err.get("type") if isinstance(err.get("type"), str) else None
    if status is None or status < 400:
        status = ERROR_STATUS.get(etype, 500)
    message = err.get("message")
    if not isinstance(message, str):
        message = json.dumps(message) if message is not None else ""
    return provider_error(status, message, type=etype)


# --- streaming -------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Block:
    kind: str  # "text", "tool", "thinking", "redacted", or "other" (server tools, results: not relayed)
    ordinal: int = 0  # tool-call index (tool) or reasoning_details index (thinking, redacted)
    has_arguments: bool = False


class AnthropicStream:
    """Anthropic SSE events → OpenAI chunks. ``message_stop`` ends the stream; ``ping`` is ignored."""

    __slots__ = ("finished", "done", "malformed", "_id", "_model", "_created", "_usage", "_blocks", "_tools",
                 "_reasonings")

    def __init__(self, *, model: str = "", created: int | None = None) -> None:
        self.finished = False
        self.done = False
        self.malformed = 0
        self._id = ""
        self._model = model
        self._created = int(time.time()) if created is None else created
        self._usage: dict = {}
        self._blocks: dict[int, _Block] = {}
        self._tools = 0
        self._reasonings = 0

    def feed(self, event: Event) -> list[dict]:
        if not event.data:
            return []
        data = json_event(event.data)
        if data is None:
            self.malformed += 1
            return []
        handler = self._HANDLERS.get(data.get("type") or event.event)
        return handler(self, data) if handler is not None else []

    def _chunk(self, delta: dict, finish: str | None = None) -> dict:
        choice = {"index": 0, "delta": delta}
        if finish is not None:
            choice["finish_reason"] = finish
        return {"id": self._id, "object": "chat.completion.chunk", "created": self._created, "model": self._model,
                "choices": [choice]}

    def _message_start(self, data: dict) -> list[dict]:
        msg = data.get("message") or {}
        self._id = msg.get("id") or self._id
        self._model = msg.get("model") or self._model
        self._usage.update(_present(msg.get("usage")))
        return [self._chunk({"role": "assistant"})]

    def _block_start(self, data: dict) -> list[dict]:
        block = data.get("content_block") or {}
        start = self._STARTS.get(block.get("type"))
        if start is None:
            self._blocks[data.get("index", 0)] = _Block("other")
            return []
        return start(self, data.get("index", 0), block)

    def _start_text(self, index: int, block: dict) -> list[dict]:
        self._blocks[index] = _Block("text")
        return [self._chunk({"content": block["text"]})] if block.get("text") else []

    def _start_tool(self, index: int, block: dict) -> list[dict]:
        state = self._blocks[index] = _Block("tool", self._tools)
        self._tools += 1
        # a streamed tool_use starts with input {}; anything else is already the whole input
        arguments = dumps(block["input"]) if block.get("input") else ""
        state.has_arguments = bool(arguments)
        return [self._chunk({"tool_calls": [{"index": state.ordinal, "id": block.get("id", ""), "type": "function",
                                             "function": {"name": block.get("name", ""), "arguments": arguments}}]})]

    def _start_thinking(self, index: int, block: dict) -> list[dict]:
        state = self._blocks[index] = _Block("thinking", self._reasonings)
        self._reasonings += 1
        out = []
        if block.get("thinking"):
            out += self._thinking_delta(state, {"thinking": block["thinking"]})
        if block.get("signature"):
            out += self._signature_delta(state, {"signature": block["signature"]})
        return out

    def _start_redacted(self, index: int, block: dict) -> list[dict]:
        state = self._blocks[index] = _Block("redacted", self._reasonings)
        self._reasonings += 1
        detail = _detail("reasoning.encrypted", state.ordinal, data=block.get("data", ""))
        return [self._chunk({"reasoning_details": [detail]})]

    _STARTS = {"text": _start_text, "tool_use": _start_tool, "thinking": _start_thinking,
               "redacted_thinking": _start_redacted}

    def _block_delta(self, data: dict) -> list[dict]:
        delta = data.get("delta") or {}
        apply = self._DELTAS.get(delta.get("type"))
        if apply is None:  # citations_delta and future kinds
            return []
        state = self._blocks.get(data.get("index", 0)) or _Block("text")
        return apply(self, state, delta)

    def _text_delta(self, state: _Block, delta: dict) -> list[dict]:
        return [self._chunk({"content": delta["text"]})] if delta.get("text") else []

    def _json_delta(self, state: _Block, delta: dict) -> list[dict]:
        fragment = delta.get("partial_json")
        if state.kind != "tool" or not fragment:
            return []
        state.has_arguments = True
        return [self._chunk({"tool_calls": [{"index": state.ordinal, "function": {"arguments": fragment}}]})]

    def _thinking_delta(self, state: _Block, delta: dict) -> list[dict]:
        text = delta.get("thinking")
        if not text:
            return []
        detail = _detail("reasoning.text", state.ordinal, text=text)
        return [self._chunk({"reasoning": text, "reasoning_details": [detail]})]

    def _signature_delta(self, state: _Block, delta: dict) -> list[dict]:
        if not delta.get("signature"):
            return []
        detail = _detail("reasoning.text", state.ordinal, signature=delta["signature"])
        return [self._chunk({"reasoning_details": [detail]})]

    _DELTAS = {"text_delta": _text_delta, "input_json_delta": _json_delta, "thinking_delta": _thinking_delta,
               "signature_delta": _signature_delta}

    def _block_stop(self, data: dict) -> list[dict]:
        state = self._blocks.get(data.get("index", 0))
        if state is None or state.kind != "tool" or state.has_arguments:
            return []
        # a tool without arguments still gets valid JSON arguments
        state.has_arguments = True
        return [self._chunk({"tool_calls": [{"index": state.ordinal, "function": {"arguments": "{}"}}]})]

    def _message_delta(self, data: dict) -> list[dict]:
        self._usage.update(_present(data.get("usage")))
        stop = (data.get("delta") or {}).get("stop_reason")
        finish = finish_reason(stop) if stop else None
        if finish is not None:
            self.finished = True
        chunk = self._chunk({}, finish)
        usage = _usage(self._usage)
        if usage:
            chunk["usage"] = usage
        return [chunk]

    def _message_stop(self, data: dict) -> list[dict]:
        self.finished = self.done = True
        return []

    def _ignore(self, data: dict) -> list[dict]:
        return []

    def _in_band_error(self, data: dict) -> list[dict]:
        raise _error(None, data)

    _HANDLERS = {
        "message_start": _message_start,
        "content_block_start": _block_start,
        "content_block_delta": _block_delta,
        "content_block_stop": _block_stop,
        "message_delta": _message_delta,
        "message_stop": _message_stop,
        "ping": _ignore,
        "error": _in_band_error,
    }


def _present(usage) -> dict:
    return {k: v for k, v in usage.items() if v is not None} if isinstance(usage, dict) else {}


# --- adapter ---------------------------------------------------------------------------------------


class AnthropicAdapter(KeyRules):
    framing = "sse"

    def build_request(self, req: ChatRequest, target: Target, *, stream: bool,
                      passthrough: bool = False) -> UpstreamRequest:
        body = build_body(req, target, stream=stream, passthrough=passthrough)
        # anthropic-version comes from the registry row, the key from credentials.py
        return json_request(target.base_url + target.row.chat_path, body, stream=stream)

    def parse_response(self, body: bytes, target: Target) -> dict:
        data = json_object(body)
        if data.get("type") == "error":
            raise _error(None, data)
        if not isinstance(data.get("content"), list):
            raise UpstreamProtocolError("upstream answer has no content")
        return parse_message(data, model=target.model)

    def parse_error(self, status: int, headers: Mapping[str, str], body: bytes, target: Target):
        return parse_error_body(status, body)

    def new_stream(self, req: ChatRequest, target: Target) -> AnthropicStream:
        return AnthropicStream(model=target.model)


ADAPTER = AnthropicAdapter()
