"""The chat-completion request: stdlib dataclasses and the validator that builds them from parsed JSON.

Validation order (README, "Validation and errors"): ``model`` first, then ``messages`` presence, then every other field in the
order it appears in the body, so the first violation reported is the first one in the document. Each
violation raises ``ValidationError`` whose ``param`` is the JSON path (``messages[2].content[0].image_url.url``).
``null`` is accepted for every optional field and treated as absent. Objects nested inside known fields keep
keys we do not know (providers add their own); unknown *top-level* keys go to ``ChatRequest.extra``.

Validators are small functions ``(value, path) -> cleaned value`` composed from tables, so the schema reads
as data and each object is walked once, without rebuilding what does not need it.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field
from collections.abc import Sequence
from typing import Any, Callable

from .errors import BadRequest, ValidationError

Validator = Callable[[Any, str], Any]

MODEL_FORMAT = "model should be in provider/model format"
MESSAGES_REQUIRED = "messages is required for chat completion"


def _fail(path: str, problem: str):
    raise ValidationError(f"invalid request format: {path}: {problem}", param=path)


# --- leaf validators ------------------------------------------------------------------------------


def string(value, path):
    if not isinstance(value, str):
        _fail(path, "must be a string")
    return value


def boolean(value, path):
    if not isinstance(value, bool):
        _fail(path, "must be a boolean")
    return value


def any_object(value, path):
    if not isinstance(value, dict):
        _fail(path, "must be an object")
    return value


def number(lo: float | None = None, hi: float | None = None) -> Validator:
    def check(value, path):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            _fail(path, "must be a number")
        if lo is not None and value < lo or hi is not None and value > hi:
            _fail(path, f"must be between {_fmt(lo)} and {_fmt(hi)}" if hi is not None
                  else f"must be at least {_fmt(lo)}")
        return value

    return check


def integer(lo: int | None = None, hi: int | None = None) -> Validator:
    def check(value, path):
        if isinstance(value, bool) or not isinstance(value, int):
            _fail(path, "must be an integer")
        if lo is not None and value < lo or hi is not None and value > hi:
            _fail(path, f"must be between {lo} and {hi}" if hi is not None else f"must be at least {lo}")
        return value

    return check


def enum(*allowed: str) -> Validator:
    """One of ``allowed``; returns the schema's own string, so that a value repeated in every message
    (``"role": "user"``) is held once, not once per message."""
    choices = ", ".join(allowed)
    canonical = {a: a for a in allowed}

    def check(value, path):
        if not isinstance(value, str):
            _fail(path, "must be a string")
        own = canonical.get(value)
        if own is None:
            _fail(path, f"must be one of {choices}")
        return own

    return check


def _fmt(x):
    return int(x) if isinstance(x, float) and x.is_integer() else x


# --- composite validators -------------------------------------------------------------------------


def array(item: Validator, *, min_items: int = 0) -> Validator:
    def check(value, path):
        if not isinstance(value, list):
            _fail(path, "must be an array")
        if len(value) < min_items:
            _fail(path, f"must have at least {min_items} item{'s' if min_items > 1 else ''}")
        out = [item(v, f"{path}[{i}]") for i, v in enumerate(value)]
        return value if all(map(operator.is_, out, value)) else out

    return check


def map_of(item: Validator) -> Validator:
    def check(value, path):
        if not isinstance(value, dict):
            _fail(path, "must be an object")
        out = {k: item(v, f"{path}.{k}") for k, v in value.items()}
        return value if all(map(operator.is_, out.values(), value.values())) else out

    return check


def obj(fields: dict[str, Validator], *, required: tuple[str, ...] = (), check: Callable | None = None) -> Validator:
    """An object validated key by key in document order; unknown keys are kept, nulls dropped.

    PERF: memory. The object is returned as it is unless a null was dropped or a rule changed a value, so a
    large body is not copied object by object (composite validators likewise return their input unchanged).
    """

    def validate(value, path):
        if not isinstance(value, dict):
            _fail(path, "must be an object")
        changed = None  # the values rules replaced, by key; {} as soon as there is a null to drop
        for key, v in value.items():
            if v is None:
                changed = changed if changed is not None else {}
                continue
            rule = fields.get(key)
            if rule is not None:
                cleaned = rule(v, f"{path}.{key}")
                if cleaned.__class__ is str:
                    if cleaned is not v:
                        value[key] = cleaned  # an enum's own equal string: swapped in place (see enum)
                elif cleaned is not v:
                    changed = changed if changed is not None else {}
                    changed[key] = cleaned
        out = value if changed is None else {k: c for k, v in value.items() if (c := changed.get(k, v)) is not None}
        for key in required:
            if key not in out:
                _fail(f"{path}.{key}", "is required")
        if check is not None:
            check(out, path)
        return out

    return validate


def one_of_string_or(other: Validator, *, string_check: Validator = string, what: str) -> Validator:
    def check(value, path):
        if isinstance(value, str):
            return string_check(value, path)
        if isinstance(value, (dict, list)):
            return other(value, path)
        _fail(path, f"must be {what}")

    return check


# --- the request schema (spec/chat-completions.openapi.yaml) --------------------------------------

cache_control = obj({"type": enum("ephemeral"), "ttl": string})

_PART_FIELDS = {
    "type": enum("text", "image_url", "input_audio", "file", "refusal"),
    "text": string,
    "refusal": string,
    "image_url": obj({"url": string, "detail": enum("low", "high", "auto")}, required=("url",)),
    "input_audio": obj({"data": string, "format": string}, required=("data",)),
    "file": obj({"file_data": string, "file_id": string, "filename": string, "file_type": string}),
    "cache_control": cache_control,
}
# the payload field each part type cannot do without
_PART_PAYLOAD = {"text": "text", "image_url": "image_url", "input_audio": "input_audio",
                 "file": "file", "refusal": "refusal"}


def _check_part(part, path):
    kind = part.get("type")
    needed = _PART_PAYLOAD.get(kind)
    if needed and needed not in part:
        _fail(f"{path}.{needed}", f"is required for a {kind} content part")


content_part = obj(_PART_FIELDS, required=("type",), check=_check_part)
content = one_of_string_or(array(content_part), what="a string or an array of content parts")

function_call = obj({"name": string, "arguments": string})
tool_call = obj(
    {"index": integer(0), "type": string, "id": string, "function": function_call},
    required=("function",),
)
reasoning_detail = obj({
    "id": string,
    "index": integer(0),
    "type": enum("reasoning.summary", "reasoning.encrypted", "reasoning.text"),
    "summary": string,
    "text": string,
    "signature": string,
    "data": string,
})
annotation = obj({"type": string, "url_citation": obj({
    "start_index": integer(), "end_index": integer(), "title": string, "url": string,
    "sources": any_object, "type": string,
})})
message_audio = obj({"id": string, "data": string, "expires_at": integer(), "transcript": string})

ROLES = ("assistant", "user", "system", "tool", "developer")


def _check_message(msg, path):
    role = msg["role"]
    if role == "assistant":
        if "content" not in msg and "tool_calls" not in msg and "refusal" not in msg and "audio" not in msg:
            _fail(f"{path}.content", "is required unless tool_calls is given")
    elif "content" not in msg:
        _fail(f"{path}.content", "is required")
    if role == "tool" and "tool_call_id" not in msg:
        _fail(f"{path}.tool_call_id", "is required for tool messages")


message = obj(
    {
        "role": enum(*ROLES),
        "name": string,
        "content": content,
        "tool_call_id": string,
        "refusal": string,
        "audio": message_audio,
        "reasoning": string,
        "reasoning_details": array(reasoning_detail),
        "annotations": array(annotation),
        "tool_calls": array(tool_call),
    },
    required=("role",),
    check=_check_message,
)


def _check_tool(tool, path):
    if tool["type"] == "function" and "function" not in tool:
        _fail(f"{path}.function", "is required for a function tool")


tool = obj(
    {
        "type": enum("function", "custom"),
        "function": obj(
            {"name": string, "description": string, "parameters": any_object, "strict": boolean},
            required=("name",),
        ),
        "custom": any_object,
        "cache_control": cache_control,
    },
    required=("type",),
    check=_check_tool,
)


def _check_tool_choice(choice, path):
    if choice["type"] == "function" and "function" not in choice:
        _fail(f"{path}.function", "is required when type is function")


named_function = obj({"name": string}, required=("name",))
tool_choice = one_of_string_or(
    obj(
        {
            "type": enum("none", "any", "required", "function", "allowed_tools", "custom", "auto"),
            "function": named_function,
            "allowed_tools": obj({
                "mode": enum("auto", "required"),
                "tools": array(obj({"type": string, "function": named_function}, required=("type",))),
            }),
        },
        required=("type",),
        check=_check_tool_choice,
    ),
    string_check=enum("none", "auto", "required"),
    what="a string or an object",
)


def _check_response_format(fmt, path):
    if fmt["type"] == "json_schema" and "json_schema" not in fmt:
        _fail(f"{path}.json_schema", "is required when type is json_schema")


response_format = obj(
    {
        "type": enum("text", "json_object", "json_schema"),
        "json_schema": obj(
            {"name": string, "description": string, "schema": any_object, "strict": boolean},
            required=("name",),
        ),
    },
    required=("type",),
    check=_check_response_format,
)
reasoning = obj({
    "effort": enum("none", "minimal", "low", "medium", "high", "xhigh"),
    "max_tokens": integer(0),
    "summary": string,
    "exclude": boolean,
    "enabled": boolean,
})
stream_options = obj({"include_obfuscation": boolean, "include_usage": boolean})
stop = one_of_string_or(array(string), what="a string or an array of strings")


def _model_ref(value, path):
    if not isinstance(value, str):
        _fail(path, "must be a string")
    provider, sep, model = value.partition("/")
    if not sep or not provider or not model:
        _fail(path, "must be in provider/model format")
    return provider, model


# Top-level parameters: name -> validator. Order here is irrelevant: the body's own order decides
# which violation is reported first.
PARAMS: dict[str, Validator] = {
    "frequency_penalty": number(-2, 2),
    "presence_penalty": number(-2, 2),
    "logit_bias": map_of(number(-100, 100)),
    "logprobs": boolean,
    "top_logprobs": integer(0, 20),
    "max_completion_tokens": integer(1),
    "metadata": any_object,
    "modalities": array(enum("text", "audio")),
    "parallel_tool_calls": boolean,
    "prompt_cache_key": string,
    "reasoning": reasoning,
    "reasoning_effort": enum("none", "minimal", "low", "medium", "high", "xhigh"),
    "response_format": response_format,
    "safety_identifier": string,
    "service_tier": string,
    "stream_options": stream_options,
    "store": boolean,
    "temperature": number(0, 2),
    "top_p": number(0, 1),
    "n": integer(1, 128),
    "seed": integer(),
    "stop": stop,
    "tool_choice": tool_choice,
    "tools": array(tool),
    "truncation": string,
    "user": string,
    "verbosity": enum("low", "medium", "high"),
    "audio": any_object,
    "prediction": any_object,
    "web_search_options": any_object,
}


def _raw_field(name: str) -> property:
    return property(lambda self: self.raw.get(name), doc=f"``{name}`` of the turn, None when absent")


@dataclass(slots=True)
class Message:
    """One conversation turn: a view of ``raw``, the validated dict (nulls dropped), forwarded as is.

    PERF: memory. A body of many small turns must not cost many times its size, so a turn holds nothing
    but its dict and reads its fields from it.
    """

    raw: dict

    role = property(lambda self: self.raw["role"], doc="the turn's role (always present)")
    content = _raw_field("content")  # str, list of part dicts, or None
    name = _raw_field("name")
    tool_calls = _raw_field("tool_calls")
    tool_call_id = _raw_field("tool_call_id")
    reasoning = _raw_field("reasoning")
    reasoning_details = _raw_field("reasoning_details")

    @classmethod
    def from_valid(cls, raw: dict) -> "Message":
        return cls(raw)


class Turns(Sequence):
    """``ChatRequest.messages`` as parsed: the validated turn dicts, handed out as ``Message`` views.

    PERF: memory. Views are made as the turns are read (a translator reads them once or twice), so a body
    of many tiny messages holds one dict per turn, not a dict and an object.
    """

    __slots__ = ("raw",)

    def __init__(self, raw: list[dict]) -> None:
        self.raw = raw

    def __len__(self) -> int:
        return len(self.raw)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [Message(r) for r in self.raw[index]]
        return Message(self.raw[index])

    def __iter__(self):
        return map(Message, self.raw)

    def __eq__(self, other) -> bool:
        return isinstance(other, Sequence) and list(self) == list(other)

    def __repr__(self) -> str:
        return f"Turns({self.raw!r})"


@dataclass(slots=True)
class ChatRequest:
    """A validated chat-completion request.

    ``params`` holds the known OpenAI parameters that were given (validated, nulls dropped, in body order,
    ``max_tokens`` folded into ``max_completion_tokens``); ``extra`` holds unknown top-level fields.
    """

    provider: str
    model: str
    messages: Sequence[Message]  # Turns when parsed from a body
    params: dict
    fallbacks: list[tuple[str, str]] = field(default_factory=list)
    stream: bool = False
    extra: dict = field(default_factory=dict)

    @property
    def model_ref(self) -> str:
        return f"{self.provider}/{self.model}"

    def param(self, name: str, default=None):
        return self.params.get(name, default)

    @property
    def include_usage(self) -> bool:
        return bool(self.params.get("stream_options", {}).get("include_usage"))

    def with_target(self, provider: str, model: str) -> "ChatRequest":
        return ChatRequest(provider, model, self.messages, self.params, self.fallbacks, self.stream, self.extra)


def split_model(value) -> tuple[str, str]:
    """``provider/model`` split at the first slash (the rest may contain slashes)."""
    if not isinstance(value, str):
        raise BadRequest(MODEL_FORMAT, param="model")
    provider, sep, model = value.partition("/")
    if not sep or not provider.strip() or not model.strip():
        raise BadRequest(MODEL_FORMAT, param="model")
    return provider, model


def parse_request(body, *, max_fallbacks: int = 10) -> ChatRequest:
    """Validate a parsed JSON body (in the documented order) and build the ChatRequest; at most ``max_fallbacks``
    fallbacks (each is a whole upstream call)."""
    if not isinstance(body, dict):
        raise BadRequest("invalid request format: request body must be a JSON object")
    provider, model = split_model(body.get("model"))
    raw_messages = body.get("messages")
    if not isinstance(raw_messages, list) or not raw_messages:
        raise BadRequest(MESSAGES_REQUIRED, param="messages")

    messages: Sequence[Message] = ()
    params: dict = {}
    extra: dict = {}
    fallbacks: list[tuple[str, str]] = []
    stream = False
    max_tokens = None
    for key, value in body.items():
        if value is None:
            continue
        rule = PARAMS.get(key)
        if rule is not None:
            params[key] = rule(value, key)
        elif key == "messages":
            messages = Turns(array(message)(value, key))
        elif key == "stream":
            stream = boolean(value, key)
        elif key == "fallbacks":
            if isinstance(value, list) and len(value) > max_fallbacks:
                _fail(key, f"must have at most {max_fallbacks} item{'s' if max_fallbacks != 1 else ''}")
            fallbacks = array(_model_ref)(value, key)
        elif key == "max_tokens":
            max_tokens = integer(1)(value, key)
        elif key != "model":
            extra[key] = value
    if max_tokens is not None and "max_completion_tokens" not in params:
        params["max_completion_tokens"] = max_tokens
    effort = params.pop("reasoning_effort", None)
    if effort is not None:
        params["reasoning"] = {"effort": effort, **params.get("reasoning", {})}
    return ChatRequest(provider, model, messages, params, fallbacks, stream, extra)
