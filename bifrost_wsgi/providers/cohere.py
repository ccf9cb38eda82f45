"""Cohere v2 chat (``POST {base}/v2/chat``): OpenAI requests to Cohere's wire format and back, streams included.

Wire facts (docs.cohere.com/reference/chat and /reference/chat-stream, cohere-python 7.x types):

- roles ``system``, ``user``, ``assistant``, ``tool``; every ``content`` is a string or a list of blocks
  (user: ``text`` and ``image_url``; system and tool: ``text``; assistant: ``text`` and ``thinking``);
  an assistant turn carries ``tool_calls`` in the OpenAI shape plus an optional ``tool_plan``;
- sampling is ``p`` (0.01–0.99) and ``k``; ``tool_choice`` only knows ``REQUIRED`` and ``NONE``;
  ``response_format`` is ``{"type": "json_object", "json_schema": {...}}``;
  ``thinking`` is ``{"type": "enabled" | "disabled", "token_budget": N}``;
- the answer is ``{id, finish_reason, message: {content, tool_calls, tool_plan, citations}, usage, logprobs}``
  without ``model`` or ``created``; errors are ``{"id", "message"}``;
- a stream is SSE with ``event: <type>`` lines *and* the same ``type`` inside each JSON payload,
  closed by ``message-end`` (no ``[DONE]``).
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Mapping

from ..errors import BadRequest, UnsupportedParameter, UpstreamProtocolError, provider_error
from ..wire.sse import Event
from .base import ChatRequest, KeyRules, Target, UpstreamRequest, error_from_body, json_event, json_object, json_request
from .openai_compat import parse_error_body

#: Cohere finish reasons that end a usable answer
FINISH_REASONS = {
    "COMPLETE": "stop",
    "STOP_SEQUENCE": "stop",
    "MAX_TOKENS": "length",
    "TOOL_CALL": "tool_calls",
}
#: finish reasons that mean the generation failed: answered as an error with this status, never as a
#: finished answer (the text so far may be cut anywhere)
FAILED = {"ERROR": 500, "TIMEOUT": 504}

# Parameters with the same meaning under another (or the same) name.
_RENAMED = {
    "max_completion_tokens": "max_tokens",
    "temperature": "temperature",
    "seed": "seed",
    "frequency_penalty": "frequency_penalty",
    "presence_penalty": "presence_penalty",
}
# Cohere documents p in [0.01, 0.99]; OpenAI clients routinely send top_p=1 meaning "no nucleus cut"
_P_RANGE = (0.01, 0.99)
_EMPTY_SCHEMA = {"type": "object", "properties": {}}


# --- request ------------------------------------------------------------------------------------------


def build_body(req: ChatRequest, target: Target, *, stream: bool, passthrough: bool) -> dict:
    params = req.params
    _refuse(params)
    messages = [_message(m, f"messages[{i}]") for i, m in enumerate(req.messages)]
    body: dict = {"model": target.model, "messages": messages}
    for name, wire in _RENAMED.items():
        if name in params:
            body[wire] = params[name]
    if "top_p" in params:
        lo, hi = _P_RANGE
        body["p"] = min(max(params["top_p"], lo), hi)
    top_k = req.extra.get("top_k")
    if top_k is not None:
        body["k"] = top_k
    stop = params.get("stop")
    if stop is not None:
        body["stop_sequences"] = [stop] if isinstance(stop, str) else stop
    if params.get("logprobs"):
        body["logprobs"] = True
    fmt = _response_format(params.get("response_format"))
    if fmt is not None:
        body["response_format"] = fmt
    thinking = _thinking(params.get("reasoning"))
    if thinking is not None:
        body["thinking"] = thinking
    tools, choice, strict = _tools(params.get("tools"), params.get("tool_choice"))
    if tools is not None:
        body["tools"] = tools
    if choice is not None:
        body["tool_choice"] = choice
    if strict:
        body["strict_tools"] = True
    body["stream"] = stream
    if passthrough:
        for k, v in req.extra.items():
            if k != "top_k":  # already sent as k
                body.setdefault(k, v)
    return body


def _refuse(params: dict) -> None:
    """Parameters whose silent loss would change what the client gets."""
    if params.get("n", 1) > 1:
        raise UnsupportedParameter("n > 1 is not supported by cohere", param="n")
    if params.get("logprobs") and params.get("top_logprobs"):
        raise UnsupportedParameter("top_logprobs is not supported by cohere", param="top_logprobs")
    if "audio" in params.get("modalities", ()):
        raise UnsupportedParameter("audio output is not supported by cohere", param="modalities")
    if "audio" in params:
        raise UnsupportedParameter("audio output is not supported by cohere", param="audio")


# --- messages ---

def _image(part: dict) -> dict:
    image = part["image_url"]
    out = {"url": image["url"]}
    if "detail" in image:
        out["detail"] = image["detail"]
    return {"type": "image_url", "image_url": out}


# OpenAI part type -> Cohere block, per role; anything else in that role is refused
_TEXT = {"text": lambda part: {"type": "text", "text": part["text"]}}
_PARTS = {
    "system": _TEXT,
    "developer": _TEXT,
    "user": {**_TEXT, "image_url": _image},
    "assistant": {**_TEXT, "refusal": lambda part: {"type": "text", "text": part["refusal"]}},
    "tool": _TEXT,
}


def _content(content, role: str, path: str):
    """A string stays a string; a part list becomes Cohere blocks (None when there is nothing)."""
    if content is None or isinstance(content, str):
        return content
    builders = _PARTS[role]
    blocks = []
    for j, part in enumerate(content):
        build = builders.get(part["type"])
        if build is None:
            raise UnsupportedParameter(f"{part['type']} content in a {role} message is not supported by cohere",
                                       param=f"{path}.content[{j}]")
        blocks.append(build(part))
    return blocks


def _plain(msg, path: str) -> dict:
    # developer is OpenAI's newer name for system
    role = "system" if msg.role == "developer" else msg.role
    return {"role": role, "content": _content(msg.content, msg.role, path)}


def _assistant(msg, path: str) -> dict:
    out: dict = {"role": "assistant"}
    if msg.tool_calls:
        out["tool_calls"] = [_tool_call(tc) for tc in msg.tool_calls]
        # our answers carry Cohere's tool plan as `reasoning`; it goes back where it came from
        if msg.reasoning:
            out["tool_plan"] = msg.reasoning
    content = _content(msg.content, "assistant", path)
    if content or not msg.tool_calls:
        out["content"] = content if content is not None else ""
    return out


def _tool(msg, path: str) -> dict:
    return {"role": "tool", "tool_call_id": msg.tool_call_id, "content": _content(msg.content, "tool", path)}


_MESSAGES = {"system": _plain, "developer": _plain, "user": _plain, "assistant": _assistant, "tool": _tool}


def _message(msg, path: str) -> dict:
    return _MESSAGES[msg.role](msg, path)


def _tool_call(tc: dict) -> dict:
    fn = tc.get("function") or {}
    return {"id": tc.get("id", ""), "type": "function",
            "function": {"name": fn.get("name", ""), "arguments": fn.get("arguments") or "{}"}}


# --- tools ---

def _tools(tools, choice) -> tuple[list | None, str | None, bool]:
    """(tools, tool_choice, strict_tools) for Cohere.

    Cohere's ``tool_choice`` has no "this function": a named choice becomes ``REQUIRED`` with only the
    named tool offered, which forces exactly that call. ``allowed_tools`` narrows the list the same way.
    """
    converted = None if tools is None else [_function_tool(tool, f"tools[{i}]") for i, tool in enumerate(tools)]
    # Cohere's strictness is one switch for all tools; asking it for one function asks it for all
    strict = any(tool.get("function", {}).get("strict") for tool in tools or ())
    if choice is None:
        return converted, None, strict
    if isinstance(choice, str):
        return converted, _CHOICES[choice], strict
    kind = choice["type"]
    if kind == "function":
        return _only(converted, [choice["function"]["name"]]), "REQUIRED", strict
    if kind == "allowed_tools":
        allowed = choice.get("allowed_tools", {})
        names = [t["function"]["name"] for t in allowed.get("tools", ()) if "function" in t]
        return _only(converted, names), _CHOICES[allowed.get("mode", "auto")], strict
    if kind in _CHOICES:
        return converted, _CHOICES[kind], strict
    raise UnsupportedParameter(f"tool_choice {kind} is not supported by cohere", param="tool_choice")


def _function_tool(tool: dict, path: str) -> dict:
    if tool["type"] != "function":
        raise UnsupportedParameter(f"{tool['type']} tools are not supported by cohere", param=path)
    fn = tool["function"]
    out = {"name": fn["name"]}
    if "description" in fn:
        out["description"] = fn["description"]
    # Cohere requires parameters; OpenAI lets a function without arguments omit them
    out["parameters"] = fn.get("parameters") or _EMPTY_SCHEMA
    return {"type": "function", "function": out}


# auto is Cohere's default and has no wire value
_CHOICES = {"none": "NONE", "auto": None, "required": "REQUIRED", "any": "REQUIRED"}


def _only(tools: list | None, names: list[str]) -> list:
    wanted = set(names)
    kept = [t for t in tools or () if t["function"]["name"] in wanted]
    missing = wanted - {t["function"]["name"] for t in kept}
    if missing:
        raise BadRequest(f"tool_choice names a function that is not in tools: {', '.join(sorted(missing))}",
                         param="tool_choice")
    return kept


# --- structured output and reasoning ---

def _response_format(fmt: dict | None) -> dict | None:
    if fmt is None or fmt["type"] == "text":
        return None
    out = {"type": "json_object"}
    schema = (fmt.get("json_schema") or {}).get("schema")
    if fmt["type"] == "json_schema" and schema is not None:
        out["json_schema"] = schema
    return out


def _thinking(reasoning: dict | None) -> dict | None:
    if reasoning is None:
        return None
    if reasoning.get("enabled") is False or reasoning.get("effort") == "none":
        return {"type": "disabled"}
    out = {"type": "enabled"}
    if reasoning.get("max_tokens"):
        out["token_budget"] = reasoning["max_tokens"]
    return out


# --- response -----------------------------------------------------------------------------------------


def _raise_if_failed(reason, detail) -> None:
    status = FAILED.get(reason)
    if status is not None:
        raise provider_error(status, detail if isinstance(detail, str) and detail
                             else f"cohere stopped the generation with finish_reason {reason}")


def _join_reasoning(thinking: str, plan) -> str:
    if not isinstance(plan, str) or not plan:
        return thinking
    return f"{thinking}\n{plan}" if thinking else plan


def _usage(usage) -> dict | None:
    """Cohere usage → OpenAI usage. ``tokens`` counts what the model saw; ``billed_units`` is the fallback."""
    if not isinstance(usage, dict):
        return None
    counts = usage.get("tokens") or usage.get("billed_units")
    if not isinstance(counts, dict):
        return None
    prompt = int(counts.get("input_tokens") or 0)
    completion = int(counts.get("output_tokens") or 0)
    out = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
    cached = usage.get("cached_tokens")
    if isinstance(cached, (int, float)) and not isinstance(cached, bool):
        out["prompt_tokens_details"] = {"cached_tokens": int(cached)}
    return out


def _logprob(item) -> dict | None:
    # Cohere gives one item per decoded text piece, with a logprob per token id and no alternatives;
    # the piece's logprob is the sum over its tokens
    if not isinstance(item, dict):
        return None
    text = item.get("text") or ""
    return {"token": text, "logprob": sum(item.get("logprobs") or ()), "bytes": list(text.encode()),
            "top_logprobs": []}


def parse_answer(data: dict, target: Target, *, created: int) -> dict:
    message = data.get("message")
    if not isinstance(message, dict):
        raise UpstreamProtocolError("cohere answer has no message")
    reason = data.get("finish_reason")
    _raise_if_failed(reason, data.get("error"))
    texts, thoughts = [], []
    for block in message.get("content") or ():
        if isinstance(block, dict):
            if block.get("type") == "text":
                texts.append(block.get("text") or "")
            elif block.get("type") == "thinking":
                thoughts.append(block.get("thinking") or "")
    out: dict = {"role": "assistant"}
    text = "".join(texts)
    if text:
        out["content"] = text
    reasoning = _join_reasoning("".join(thoughts), message.get("tool_plan"))
    if reasoning:
        out["reasoning"] = reasoning
    calls = [_tool_call(tc) for tc in message.get("tool_calls") or () if isinstance(tc, dict)]
    if calls:
        out["tool_calls"] = calls
    choice = {"index": 0, "message": out, "finish_reason": FINISH_REASONS.get(reason, "stop")}
    if isinstance(data.get("logprobs"), list):
        choice["logprobs"] = {"content": [lp for lp in map(_logprob, data["logprobs"]) if lp]}
    result = {"id": data.get("id") or _new_id(), "object": "chat.completion", "created": created,
              "model": target.model, "choices": [choice]}
    usage = _usage(data.get("usage"))
    if usage:
        result["usage"] = usage
    return result


def _new_id() -> str:
    return "chatcmpl-" + uuid.uuid4().hex


def parse_error_data(status: int, data: dict):
    """Cohere's ``{"id", "message"}``; an OpenAI-style ``{"error": ...}`` (a proxy in between) also works."""
    message = data.get("message")
    if isinstance(message, str) and message:
        return provider_error(status, message)
    if "error" in data:
        return parse_error_body(status, data)
    return provider_error(status, json.dumps(data)[:1000])


class CohereAdapter(KeyRules):
    framing = "sse"

    def build_request(self, req: ChatRequest, target: Target, *, stream: bool,
                      passthrough: bool = False) -> UpstreamRequest:
        body = build_body(req, target, stream=stream, passthrough=passthrough)
        return json_request(target.base_url + target.row.chat_path, body, stream=stream)

    def parse_response(self, body: bytes, target: Target) -> dict:
        return parse_answer(json_object(body), target, created=int(time.time()))

    def parse_error(self, status: int, headers: Mapping[str, str], body: bytes, target: Target):
        return error_from_body(status, body, parse_error_data)

    def new_stream(self, req: ChatRequest, target: Target) -> "CohereStream":
        return CohereStream(target.model)


# --- streaming ----------------------------------------------------------------------------------------


def _dig(value, *keys) -> dict:
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value if isinstance(value, dict) else {}


class CohereStream:
    """Cohere v2 stream events → OpenAI chunks.

    Tool calls are numbered from 0 in order of ``tool-call-start``; Cohere's own ``index`` only finds the
    call a ``tool-call-delta`` belongs to. Thinking and the tool plan both stream as ``delta.reasoning``.
    Citations have no OpenAI counterpart (annotations are URL citations) and are dropped.
    """

    __slots__ = ("finished", "done", "malformed", "_id", "_created", "_model", "_role_sent", "_tools",
                 "_next_tool", "_last_reasoning")

    def __init__(self, model: str, *, created: int | None = None) -> None:
        self.finished = False
        self.done = False
        self.malformed = 0
        self._id = _new_id()
        self._created = int(time.time()) if created is None else created
        self._model = model
        self._role_sent = False
        self._tools: dict = {}  # Cohere index -> our index
        self._next_tool = 0
        self._last_reasoning = ""  # "thinking" or "plan": where the reasoning text came from last

    def feed(self, event: Event) -> list[dict]:
        data = event.data
        if not data:
            return []
        if data == "[DONE]":
            self.done = True
            return []
        payload = json_event(data)
        if payload is None:
            self.malformed += 1
            return []
        kind = payload.get("type") or event.event
        handler = _HANDLERS.get(kind)
        if handler is not None:
            return handler(self, payload)
        if kind in ("", "error") and isinstance(payload.get("message"), str):
            status = payload.get("status_code") or payload.get("status")
            raise parse_error_data(status if isinstance(status, int) and 400 <= status <= 599 else 500, payload)
        # content-end, tool-call-end, citation-start/end, debug and types we do not know carry nothing
        return []

    # --- chunk building ---

    def _chunk(self, delta: dict, *, finish_reason: str | None = None, logprobs: dict | None = None) -> dict:
        if not self._role_sent:
            delta = {"role": "assistant", **delta}
            self._role_sent = True
        choice: dict = {"index": 0, "delta": delta}
        if finish_reason is not None:
            choice["finish_reason"] = finish_reason
        if logprobs is not None:
            choice["logprobs"] = logprobs
        return {"id": self._id, "object": "chat.completion.chunk", "created": self._created, "model": self._model,
                "choices": [choice]}

    def _reasoning(self, text: str, source: str) -> dict:
        # thinking then a tool plan read as two paragraphs, as in the non-streamed answer
        if source == "plan" and self._last_reasoning == "thinking":
            text = "\n" + text
        self._last_reasoning = source
        return {"reasoning": text}

    # --- one method per event type ---

    def _message_start(self, payload: dict) -> list[dict]:
        if isinstance(payload.get("id"), str) and payload["id"]:
            self._id = payload["id"]
        return [self._chunk({})]

    def _content_delta(self, payload: dict) -> list[dict]:
        content = _dig(payload, "delta", "message", "content")
        delta: dict = {}
        thinking = content.get("thinking")
        if isinstance(thinking, str) and thinking:
            delta.update(self._reasoning(thinking, "thinking"))
        text = content.get("text")
        if isinstance(text, str) and text:
            delta["content"] = text
        lp = _logprob(payload.get("logprobs"))
        if not delta and lp is None:
            return []
        return [self._chunk(delta, logprobs={"content": [lp]} if lp else None)]

    def _tool_plan_delta(self, payload: dict) -> list[dict]:
        plan = _dig(payload, "delta", "message").get("tool_plan")
        if not isinstance(plan, str) or not plan:
            return []
        return [self._chunk(self._reasoning(plan, "plan"))]

    def _tool_call_start(self, payload: dict) -> list[dict]:
        call = _dig(payload, "delta", "message", "tool_calls")
        index = self._next_tool
        self._next_tool += 1
        self._tools[payload.get("index", index)] = index
        fn = call.get("function") if isinstance(call.get("function"), dict) else {}
        return [self._chunk({"tool_calls": [{
            "index": index, "id": call.get("id") or f"call_{index}", "type": "function",
            "function": {"name": fn.get("name") or "", "arguments": fn.get("arguments") or ""},
        }]})]

    def _tool_call_delta(self, payload: dict) -> list[dict]:
        args = _dig(payload, "delta", "message", "tool_calls", "function").get("arguments")
        if not isinstance(args, str) or not args:
            return []
        index = self._tools.get(payload.get("index"), self._next_tool - 1)
        if index < 0:  # arguments before any tool-call-start: nothing to attach them to
            self.malformed += 1
            return []
        return [self._chunk({"tool_calls": [{"index": index, "function": {"arguments": args}}]})]

    def _message_end(self, payload: dict) -> list[dict]:
        delta = payload.get("delta") if isinstance(payload.get("delta"), dict) else {}
        reason = delta.get("finish_reason")
        _raise_if_failed(reason, delta.get("error"))
        if not reason and isinstance(delta.get("error"), str) and delta["error"]:
            raise provider_error(500, delta["error"])
        self.finished = self.done = True
        chunk = self._chunk({}, finish_reason=FINISH_REASONS.get(reason, "stop"))
        usage = _usage(delta.get("usage"))
        if usage:
            chunk["usage"] = usage
        return [chunk]


_HANDLERS = {
    "message-start": CohereStream._message_start,
    "content-start": CohereStream._content_delta,  # normally empty, but may already hold text
    "content-delta": CohereStream._content_delta,
    "tool-plan-delta": CohereStream._tool_plan_delta,
    "tool-call-start": CohereStream._tool_call_start,
    "tool-call-delta": CohereStream._tool_call_delta,
    "message-end": CohereStream._message_end,
}

ADAPTER = CohereAdapter()
