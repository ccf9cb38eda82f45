"""The adapter interface every provider module implements, and the values that cross it.

Adapters are pure translation: a ``ChatRequest`` and a ``Target`` in, an ``UpstreamRequest`` out; upstream
bytes in, OpenAI-shaped dicts out. They never do I/O, never log, and never see another provider's key.
Credentials are applied afterwards by ``credentials.py``, so golden fixtures of built requests hold no secrets.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Protocol

from ..errors import UnsupportedParameter, UpstreamProtocolError, provider_error
from ..schema import ChatRequest
from ..transport import UpstreamRequest

#: compact JSON that keeps non-ASCII text as it is: how the adapters encode request bodies and the JSON
#: strings they build for the client (tool-call arguments)
dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


@dataclass(frozen=True, slots=True)
class Key:
    """One configured credential of a provider (Bifrost ``keys[]``). ``settings`` is the provider's own key
    configuration (``azure_key_config``, ``bedrock_key_config``, …), read only by that provider's module;
    ``reach``, when not empty, is every model the key can serve at all (Azure's deployments)."""

    name: str = ""
    value: str = ""
    models: tuple[str, ...] = ()
    weight: float = 1.0
    settings: Mapping[str, Any] | None = None
    reach: frozenset[str] = frozenset()

    def allows(self, model: str) -> bool:
        if self.models and "*" not in self.models and model not in self.models:
            return False
        return not self.reach or model in self.reach

    @property
    def deployments(self) -> Mapping[str, str]:
        """Model name -> the provider's own name for it (a deployment, an inference profile)."""
        return (self.settings or {}).get("deployments") or {}

    def __repr__(self) -> str:  # never show the secret
        return f"Key(name={self.name!r}, models={self.models!r}, weight={self.weight})"


@dataclass(frozen=True, slots=True)
class KeyFields:
    """A provider's own key configuration: the member of ``keys[]`` that holds it, the fields it reads, the
    Bifrost fields it accepts but ignores, and whether its ``deployments`` are all the key can reach."""

    member: str
    known: frozenset[str]
    ignored: frozenset[str] = frozenset()
    deployments_limit_reach: bool = False
    secrets: frozenset[str] = frozenset()  # fields that are credentials (never shown, redacted by value)


@dataclass(frozen=True, slots=True)
class Target:
    """Where one attempt goes: the provider row, the provider-native model name and the chosen key."""

    provider: str  # the name the client used (a custom provider's own name)
    model: str  # provider-native model name: everything after the first "/"
    base_url: str  # without trailing slash
    key: Key
    row: Any  # registry.ProviderRow
    extra_headers: Mapping[str, str] = field(default_factory=dict)


class StreamTranslator(Protocol):
    """Turns upstream stream events into OpenAI ``chat.completion.chunk`` dicts.

    ``feed`` returns zero or more chunk dicts (without ``extra_fields``; the core adds them, strips usage and
    finish_reason from intermediate chunks and sends one final chunk). It raises a ``ProviderError`` for an
    in-band error event. ``finished`` becomes true once the answer is complete (a terminal event or a
    finish reason was seen), ``done`` once nothing more will come and reading can stop.
    """

    finished: bool
    done: bool

    def feed(self, event: Any) -> list[dict]: ...
    # A translator may also return, instead of a dict, an object the relay can forward as text: with
    # ``json_without_nulls()``, ``content()`` and ``as_dict()`` (openai_compat.PlainChunk).


class Adapter(Protocol):
    #: "sse" or "aws-eventstream": which decoder turns the upstream bytes into events
    framing: str
    #: the provider's own key configuration, or None when its keys are a plain value
    key_fields: KeyFields | None
    #: whether a key's settings may supply the base URL (then the row needs none)
    key_has_endpoint: bool

    def check_key(self, key: Key) -> tuple[str, str] | None:
        """What a key of this provider lacks: (the JSON path below the key, the problem), or None."""

    def models_request(self, target: Target) -> UpstreamRequest | None:
        """The request that lists the provider's models (OpenAI's ``/models`` shape), or None."""

    def build_request(self, req: ChatRequest, target: Target, *, stream: bool, passthrough: bool) -> UpstreamRequest: ...

    def parse_response(self, body: bytes, target: Target) -> dict: ...

    def parse_error(self, status: int, headers: Mapping[str, str], body: bytes, target: Target) -> Exception: ...

    def new_stream(self, req: ChatRequest, target: Target) -> StreamTranslator: ...


def add_turn(turns: list, role: str, blocks: list, *, key: str = "content") -> None:
    """Append a turn, merged into the previous one when it has the same role (providers that require
    strictly alternating roles: Anthropic, Bedrock, Gemini)."""
    if turns and turns[-1]["role"] == role:
        turns[-1][key].extend(blocks)
    else:
        turns.append({"role": role, key: blocks})


def json_event(data: str | bytes) -> dict | None:
    """A stream event's payload as a JSON object, or None when it is not one: the translator counts it as
    malformed and skips it (logged), never failing the stream."""
    try:
        value = json.loads(data)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def drop_nulls(value):
    """Remove null members from a parsed JSON value, in place, and return it (fields without a
    value are omitted). In place because it runs on every streamed chunk."""
    if isinstance(value, dict):
        dead = [k for k, v in value.items() if v is None]
        for k in dead:
            del value[k]
        for v in value.values():
            if isinstance(v, (dict, list)):
                drop_nulls(v)
    elif isinstance(value, list):  # array elements are data, not optional fields: kept
        for v in value:
            if isinstance(v, (dict, list)):
                drop_nulls(v)
    return value


def iter_text_parts(content) -> Iterable[str]:
    """The text of a message content (a string, or the text parts of a part list)."""
    if isinstance(content, str):
        yield content
    elif isinstance(content, list):
        for part in content:
            if part.get("type") == "text":
                yield part.get("text", "")


# --- shared by the adapters -------------------------------------------------------------------------


def json_request(url: str, body: dict, *, stream: bool,
                 stream_accept: str = "text/event-stream") -> UpstreamRequest:
    """A POST of ``body`` as compact JSON. Every adapter streams server-sent events except Bedrock, which
    passes its event-stream media type as ``stream_accept``. The headers are a new dict each time because
    ``credentials.py`` adds the credentials to it."""
    accept = stream_accept if stream else "application/json"
    return UpstreamRequest("POST", url, {"Content-Type": "application/json", "Accept": accept}, dumps(body).encode())


def json_object(body: bytes, *, unwrap_single: bool = False) -> dict:
    """An upstream answer body that must be a JSON object; anything else is a protocol error.

    ``unwrap_single`` also takes an object inside a one-element array (Vertex answers so for Gemini models).
    """
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise UpstreamProtocolError(f"upstream answered with invalid JSON: {exc}") from None
    if unwrap_single and isinstance(data, list) and len(data) == 1:
        data = data[0]
    if not isinstance(data, dict):
        raise UpstreamProtocolError("upstream answered with JSON that is not an object")
    return data


def error_from_body(status: int, body: bytes, parse_dict: Callable[[int, dict], Exception], *,
                    unwrap_first: bool = False) -> Exception:
    """An upstream error answer: a JSON object goes to the provider's ``parse_dict``; any other body becomes
    the message as it is (cut to 1000 characters), an empty one a message naming the status.

    ``unwrap_first`` reads an array that starts with an object as that object (Google may wrap its errors
    so). It is looser than ``json_object``'s ``unwrap_single``; both rules are kept as Gemini had them.
    """
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if unwrap_first and isinstance(data, list) and data and isinstance(data[0], dict):
        data = data[0]
    if isinstance(data, dict):
        return parse_dict(status, data)
    text = body.decode("utf-8", "replace").strip()[:1000]
    return provider_error(status, text or f"upstream returned status {status}")


def refuse_unsupported(params: dict, provider: str) -> None:
    """Refuse what the Anthropic and Bedrock wire formats have no field for and whose silent loss would change
    what the client gets: several choices, logprobs, audio output. Cohere and Gemini keep their own checks:
    they support some of these, and their refusals differ in order or wording."""
    def refuse(what: str, param: str):
        return UnsupportedParameter(f"{what} is not supported by {provider}", param=param)

    if params.get("n", 1) > 1:
        raise refuse("n > 1", "n")
    if params.get("logprobs"):
        raise refuse("logprobs", "logprobs")
    if "audio" in params:
        raise refuse("audio output", "audio")
    if "audio" in params.get("modalities", ()):
        raise refuse("audio output", "modalities")


class KeyRules:
    """The key rules of a provider whose keys are a plain value: no settings, a value required. Adapters
    that need more override these (azure, bedrock, vertex)."""

    key_fields: KeyFields | None = None
    key_has_endpoint = False

    def check_key(self, key: Key) -> tuple[str, str] | None:
        return None if key.value else (".value", "must not be empty")

    def models_request(self, target: Target) -> UpstreamRequest | None:
        return None

    def translator(self, name: str):
        """The adapter itself translates chat (providers/translators.py finds the other operations')."""
        return self if name == "chat" else None
