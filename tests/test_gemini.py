"""The Gemini translator: golden fixtures for requests, answers, streams and errors, then the real gateway end to
end with the official openai SDK against a fake Gemini upstream.

Fixture naming (tests/fixtures/gemini/):
  <case>.request.json  (OpenAI client body) → <case>.upstream.json (exact generateContent body) or <case>.refused.json
  <case>.response.json (GenerateContentResponse) → <case>.expected.json (exact chat.completion)
  <case>.stream        (raw upstream SSE)        → <case>.chunks.json   (translated chunks + end state)
``created`` is pinned and synthesized tool call ids count up (call_…0001, call_…0002, …) so outputs are exact.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import openai
import pytest

from bifrost_wsgi import errors as E
from bifrost_wsgi.wire import sse
from bifrost_wsgi.providers import gemini
from bifrost_wsgi.providers.base import Key, Target
from bifrost_wsgi.providers.registry import ROWS
from bifrost_wsgi.schema import parse_request
from tests.golden import readers, request_outcome_tests
from tests.fakes import Reply

FIXTURES = Path(__file__).parent / "fixtures" / "gemini"
CREATED = 1730000000
API_KEY = "gk-test-SECRET-gemini"
SIGNATURE = "CiQBVKhc7sIGnatureAA=="


load, cases = readers(FIXTURES)


def target(model: str = "gemini-2.5-flash") -> Target:
    row = ROWS["gemini"]
    return Target("gemini", model, row.base_url, Key(value=API_KEY), row)


def build(body: dict, *, stream: bool = False, passthrough: bool = False):
    req = parse_request(body)
    return gemini.ADAPTER.build_request(req, target(req.model), stream=stream, passthrough=passthrough)


@pytest.fixture
def pinned(monkeypatch):
    """Deterministic ``created`` and synthesized ids."""
    counter = iter(range(1, 1000))
    monkeypatch.setattr(gemini.uuid, "uuid4", lambda: uuid.UUID(int=next(counter)))
    monkeypatch.setattr(gemini.time, "time", lambda: float(CREATED))


def split(data: bytes, size: int) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


# --- requests --------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", [c for c in cases(".request.json") if (FIXTURES / f"{c}.upstream.json").exists()])
def test_request_golden(case):
    assert json.loads(build(load(f"{case}.request.json")).body) == load(f"{case}.upstream.json")


test_request_refused, test_every_request_fixture_has_an_outcome = request_outcome_tests(FIXTURES, build)


# (model, stream, url after the base)
URLS = [
    ("gemini-2.5-flash", False, "/models/gemini-2.5-flash:generateContent"),
    ("gemini-2.5-flash", True, "/models/gemini-2.5-flash:streamGenerateContent?alt=sse"),
    ("tunedModels/my-model-7", False, "/tunedModels/my-model-7:generateContent"),
    ("models/gemini-2.0-flash", True, "/models/gemini-2.0-flash:streamGenerateContent?alt=sse"),
]


@pytest.mark.parametrize("model,stream,path", URLS)
def test_url(model, stream, path):
    up = build({"model": f"gemini/{model}", "messages": [{"role": "user", "content": "hi"}]}, stream=stream)
    assert up.url == "https://generativelanguage.googleapis.com/v1beta" + path
    assert up.headers["Accept"] == ("text/event-stream" if stream else "application/json")
    assert API_KEY not in json.dumps(up.headers) and API_KEY.encode() not in up.body  # credentials.py adds the key


def test_stream_body_is_the_same_as_non_stream():
    body = load("tools_round_trip.request.json")
    assert build(body, stream=True).body == build(body).body


def test_passthrough_merges_unknown_fields_but_not_top_k():
    body = {"model": "gemini/gemini-2.5-flash", "messages": [{"role": "user", "content": "hi"}], "top_k": 5,
            "safetySettings": [{"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "BLOCK_NONE"}]}
    sent = json.loads(build(body, passthrough=True).body)
    assert sent["safetySettings"] == body["safetySettings"]
    assert sent["generationConfig"] == {"topK": 5} and "top_k" not in sent
    assert "safetySettings" not in json.loads(build(body).body)


# schema cleaning, one keyword at a time: (JSON Schema in, Gemini Schema out)
SCHEMAS = [
    ({"type": "string", "format": "uri"}, {"type": "string"}),
    ({"type": "string", "format": "date-time"}, {"type": "string", "format": "date-time"}),
    ({"type": "number", "format": "double"}, {"type": "number", "format": "double"}),
    ({"type": ["integer", "null"]}, {"type": "integer", "nullable": True}),
    ({"type": ["null", "string", "number"]}, {"anyOf": [{"type": "string"}, {"type": "number"}], "nullable": True}),
    ({"anyOf": [{"type": "string"}, {"type": "null"}]}, {"type": "string", "nullable": True}),
    ({"oneOf": [{"type": "string"}, {"type": "integer"}]}, {"anyOf": [{"type": "string"}, {"type": "integer"}]}),
    ({"enum": [1, 2, 3], "type": "integer"}, {"type": "integer"}),
    ({"const": "x"}, {"enum": ["x"], "type": "string"}),
    ({"type": "array"}, {"type": "array", "items": {"type": "string"}}),
    ({"items": {"type": "integer"}}, {"items": {"type": "integer"}, "type": "array"}),
    ({}, {"type": "string"}),
    ({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a", "b"], "additionalProperties": False,
      "patternProperties": {"^x": {}}, "$comment": "c", "examples": [{}]},
     {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}),
    ({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["z"]},
     {"type": "object", "properties": {"a": {"type": "string"}}}),
    ({"allOf": [{"properties": {"a": {"type": "string"}}, "required": ["a"]},
                {"properties": {"b": {"type": "integer"}}, "required": ["b"]}], "type": "object"},
     {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}, "required": ["a", "b"]}),
    ({"type": "object", "properties": {"n": {"$ref": "#/$defs/missing"}}},
     {"type": "object", "properties": {"n": {"type": "object"}}}),
    ({"type": "object", "properties": {"u": {"$ref": "https://example.com/schema.json"}}},
     {"type": "object", "properties": {"u": {"type": "object"}}}),
]


@pytest.mark.parametrize("schema,want", SCHEMAS)
def test_clean_schema(schema, want):
    assert gemini.clean_schema(schema) == want


def test_clean_schema_does_not_change_its_input():
    schema = load("schema_cleaning.request.json")["tools"][0]["function"]["parameters"]
    before = json.dumps(schema, sort_keys=True)
    gemini.clean_schema(schema)
    assert json.dumps(schema, sort_keys=True) == before


# (reasoning, model, thinkingConfig)
THINKING = [
    ({"effort": "minimal"}, "gemini-2.5-flash", {"thinkingBudget": 512, "includeThoughts": True}),
    ({"effort": "medium"}, "gemini-2.5-flash", {"thinkingBudget": 8192, "includeThoughts": True}),
    ({"effort": "low"}, "gemini-3-pro-preview", {"thinkingLevel": "low", "includeThoughts": True}),
    ({"effort": "none"}, "gemini-3-flash-preview", {"thinkingLevel": "minimal"}),
    ({"effort": "high", "exclude": True}, "gemini-2.5-pro", {"thinkingBudget": 24576}),
    ({"max_tokens": 0}, "gemini-2.5-flash", {"thinkingBudget": 0, "includeThoughts": True}),
    ({"enabled": False}, "gemini-2.5-flash", {"thinkingBudget": 0}),
    ({"enabled": True}, "gemini-2.5-flash", {"includeThoughts": True}),
    ({"effort": "high"}, "gemma-3-27b-it", {"thinkingBudget": 24576, "includeThoughts": True}),
]


@pytest.mark.parametrize("reasoning,model,want", THINKING)
def test_thinking_config(reasoning, model, want):
    assert gemini.thinking_config(reasoning, model=model) == want


# (tool call id, signature carried in it)
IDS = [
    ("call_0123456789abcdef01234567", None),
    ("call_0123456789abcdef01234567__thought__" + SIGNATURE, SIGNATURE),
    ("call_x__thought__", None),
    ("toolu_01abc", None),
    ("", None),
]


@pytest.mark.parametrize("call_id,signature", IDS)
def test_signature_in_tool_call_id(call_id, signature):
    assert gemini.signature_of(call_id) == signature


def test_new_tool_call_ids_round_trip_their_signature():
    assert gemini.signature_of(gemini.new_tool_call_id(SIGNATURE)) == SIGNATURE
    plain = gemini.new_tool_call_id()
    assert plain.startswith("call_") and len(plain) == 29 and gemini.signature_of(plain) is None


# --- responses -------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", cases(".response.json"))
def test_response_golden(case, pinned):
    body = (FIXTURES / f"{case}.response.json").read_bytes()
    assert gemini.ADAPTER.parse_response(body, target()) == load(f"{case}.expected.json")


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'"text"', b'{"candidates": []}', b"{}"])
def test_unusable_answer_is_a_protocol_error(body):
    with pytest.raises(E.UpstreamProtocolError):
        gemini.ADAPTER.parse_response(body, target())


def test_error_object_in_a_200_answer():
    body = json.dumps({"error": {"code": 500, "message": "Internal error encountered.", "status": "INTERNAL"}})
    with pytest.raises(E.ProviderError) as info:
        gemini.ADAPTER.parse_response(body.encode(), target())
    assert (info.value.status, info.value.message) == (500, "Internal error encountered.")


# --- streams ---------------------------------------------------------------------------------------


def run_stream(data: bytes, *, chunk_size: int | None = None):
    stream = gemini.ADAPTER.new_stream(None, target())
    out = []
    pieces = split(data, chunk_size) if chunk_size else [data]
    for event in sse.decode(pieces):
        out.extend(stream.feed(event))
    return stream, out


@pytest.mark.parametrize("case", cases(".stream"))
@pytest.mark.parametrize("chunk_size", [None, 7])
def test_stream_golden(case, chunk_size, pinned):
    stream, chunks = run_stream((FIXTURES / f"{case}.stream").read_bytes(), chunk_size=chunk_size)
    want = load(f"{case}.chunks.json")
    assert chunks == want["chunks"]
    assert (stream.finished, stream.malformed, stream.done) == (want["finished"], want["malformed"], False)


def test_stream_that_stops_before_a_finish_reason_is_not_finished():
    data = (FIXTURES / "text.stream").read_bytes().split(b"\r\n\r\n")[0] + b"\r\n\r\n"
    stream, chunks = run_stream(data)
    assert chunks and not stream.finished


def test_in_stream_error_raises_with_its_status():
    data = (FIXTURES / "text.stream").read_bytes().split(b"\r\n\r\n")[0] + b"\r\n\r\n" + (
        b'data: {"error": {"code": 503, "message": "The model is overloaded. Please try again later.",'
        b' "status": "UNAVAILABLE"}}\r\n\r\n')
    with pytest.raises(E.ProviderError) as info:
        run_stream(data)
    err = info.value
    assert (err.status, err.type, err.code, err.message) == (
        503, "UNAVAILABLE", "UNAVAILABLE", "The model is overloaded. Please try again later.")


# --- errors ----------------------------------------------------------------------------------------


def google_error(code: int, status: str, message: str, details: list | None = None) -> bytes:
    err = {"code": code, "message": message, "status": status}
    if details:
        err["details"] = details
    return json.dumps({"error": err}).encode()


RETRY_INFO = [{"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": []},
              {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"}]

# (http status, body, error class, type/code, message, retry_after)
ERRORS = [
    (429, google_error(429, "RESOURCE_EXHAUSTED", "You exceeded your current quota.", RETRY_INFO),
     E.ProviderRateLimited, "RESOURCE_EXHAUSTED", "You exceeded your current quota.", 37.0),
    (400, google_error(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key."),
     E.ProviderRejected, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", None),
    (400, google_error(400, "INVALID_ARGUMENT",
                       "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576)."),
     E.ContextLengthExceeded, "INVALID_ARGUMENT",
     "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).", None),
    (403, google_error(403, "PERMISSION_DENIED", "Permission denied on resource project p."),
     E.ProviderAuthFailed, "PERMISSION_DENIED", "Permission denied on resource project p.", None),
    (404, google_error(404, "NOT_FOUND", "models/gemini-9 is not found for API version v1beta."),
     E.ModelNotFound, "NOT_FOUND", "models/gemini-9 is not found for API version v1beta.", None),
    (503, b"[" + google_error(503, "UNAVAILABLE", "The model is overloaded.") + b"]",
     E.ProviderOverloaded, "UNAVAILABLE", "The model is overloaded.", None),
    (500, google_error(500, "INTERNAL", "An internal error has occurred."),
     E.ProviderServerError, "INTERNAL", "An internal error has occurred.", None),
]


@pytest.mark.parametrize("status,body,cls,kind,message,retry_after", ERRORS)
def test_error_mapping(status, body, cls, kind, message, retry_after):
    err = gemini.ADAPTER.parse_error(status, {}, body, target())
    assert type(err) is cls
    assert (err.status, err.type, err.code, err.message, err.retry_after) == (status, kind, kind, message, retry_after)


def test_error_without_json_keeps_the_text():
    err = gemini.ADAPTER.parse_error(502, {}, b"<html>Bad Gateway</html>", target())
    assert (err.status, err.message) == (502, "<html>Bad Gateway</html>")


# --- end to end: the official openai SDK through the gateway -------------------------------------


def config(upstream, **network) -> dict:
    net = {"base_url": upstream.url + "/v1beta", "default_request_timeout_in_seconds": 5, **network}
    return {"providers": {"gemini": {"keys": [{"name": "g", "value": API_KEY, "models": []}], "network_config": net}}}


@pytest.fixture
def client(upstream, serve):
    with openai.OpenAI(base_url=serve(config(upstream)) + "/v1", api_key="unused", max_retries=0) as c:
        yield c


WEATHER = load("tools_round_trip.request.json")["tools"]


def sse_reply(case: str) -> Reply:
    return Reply(chunks=split((FIXTURES / f"{case}.stream").read_bytes(), 40), content_type="text/event-stream")


def test_e2e_text(client, upstream):
    upstream.add(Reply(json=load("text.response.json")))
    resp = client.chat.completions.create(model="gemini/gemini-2.5-flash", max_tokens=64,
                                          messages=[{"role": "system", "content": "Be poetic."},
                                                    {"role": "user", "content": "Haiku about rain"}])
    assert resp.choices[0].message.content.startswith("Soft rain on the roof")
    assert resp.choices[0].finish_reason == "stop"
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens, resp.usage.total_tokens) == (7, 17, 24)
    assert resp.model == "gemini-2.5-flash"
    rec = upstream.requests[0]
    assert rec.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert rec.headers["x-goog-api-key"] == API_KEY and "authorization" not in rec.headers
    assert rec.json == {"systemInstruction": {"parts": [{"text": "Be poetic."}]},
                        "contents": [{"role": "user", "parts": [{"text": "Haiku about rain"}]}],
                        "generationConfig": {"maxOutputTokens": 64}}


def test_e2e_stream_text(client, upstream):
    upstream.add(sse_reply("text"))
    stream = client.chat.completions.create(model="gemini/gemini-2.5-flash", stream=True,
                                            messages=[{"role": "user", "content": "hi"}])
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "The quick brown fox."
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop"
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (8, 5)
    assert [c.choices[0].finish_reason for c in chunks[:-1]] == [None] * (len(chunks) - 1)
    rec = upstream.requests[0]
    assert rec.path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent" and rec.query == {"alt": ["sse"]}


def test_e2e_stream_function_call(client, upstream, pinned):
    upstream.add(sse_reply("function_call"))
    stream = client.chat.completions.create(model="gemini/gemini-3-pro-preview", stream=True, tools=WEATHER,
                                            messages=[{"role": "user", "content": "Weather in Paris and Rome?"}])
    chunks = list(stream)
    calls = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or ()]
    assert [(tc.index, tc.function.name, tc.function.arguments) for tc in calls] == [
        (0, "get_weather", '{"city":"Paris"}'), (1, "get_weather", '{"city":"Rome"}')]
    assert calls[0].id.endswith("__thought__" + SIGNATURE) and gemini.signature_of(calls[1].id) is None
    reasoning = [getattr(c.choices[0].delta, "reasoning", None) for c in chunks if c.choices]
    assert "**Planning**\nI need the weather for both cities." in reasoning
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    assert chunks[-1].usage.completion_tokens_details.reasoning_tokens == 30


def test_e2e_tool_round_trip_carries_the_thought_signature(client, upstream):
    """The second request must give Gemini its thoughtSignature back, with the client doing only what the
    OpenAI docs show: append the assistant message object, then a tool message per call."""
    upstream.add(Reply(json=load("tool_calls.response.json")), Reply(json=load("text.response.json")))
    messages = [{"role": "user", "content": "Weather and time in Paris and Rome?"}]
    first = client.chat.completions.create(model="gemini/gemini-3-pro-preview", messages=messages, tools=WEATHER)
    msg = first.choices[0].message
    assert first.choices[0].finish_reason == "tool_calls" and len(msg.tool_calls) == 3
    messages.append(msg)
    for call, result in zip(msg.tool_calls, ['{"temp": 18}', "sunny", '"14:05"']):
        messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
    client.chat.completions.create(model="gemini/gemini-3-pro-preview", messages=messages, tools=WEATHER)
    contents = upstream.requests[1].json["contents"]
    assert contents[1] == {"role": "model", "parts": [
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": SIGNATURE},
        {"functionCall": {"name": "get_weather", "args": {"city": "Rome", "unit": "celsius"}}},
        {"functionCall": {"name": "get_time", "args": {}}}]}
    assert contents[2] == {"role": "user", "parts": [
        {"functionResponse": {"name": "get_weather", "response": {"content": {"temp": 18}}}},
        {"functionResponse": {"name": "get_weather", "response": {"content": "sunny"}}},
        {"functionResponse": {"name": "get_time", "response": {"content": "14:05"}}}]}


def test_e2e_hand_built_history_keeps_the_signature(client, upstream):
    """Clients that rebuild the assistant message from its parts keep the id, hence the signature."""
    upstream.add(Reply(json=load("tool_calls.response.json")), Reply(json=load("text.response.json")))
    messages = [{"role": "user", "content": "Weather?"}]
    first = client.chat.completions.create(model="gemini/gemini-3-pro-preview", messages=messages, tools=WEATHER)
    call = first.choices[0].message.tool_calls[0]
    messages += [{"role": "assistant", "tool_calls": [{"id": call.id, "type": "function", "function": {
                     "name": call.function.name, "arguments": call.function.arguments}}]},
                 {"role": "tool", "tool_call_id": call.id, "content": "18C"}]
    client.chat.completions.create(model="gemini/gemini-3-pro-preview", messages=messages, tools=WEATHER)
    part = upstream.requests[1].json["contents"][1]["parts"][0]
    assert part["thoughtSignature"] == SIGNATURE


def test_e2e_text_signature_round_trip(client, upstream):
    upstream.add(Reply(json=load("thinking.response.json")), Reply(json=load("text.response.json")))
    messages = [{"role": "user", "content": "17*23?"}]
    first = client.chat.completions.create(model="gemini/gemini-2.5-pro", messages=messages, reasoning_effort="low")
    msg = first.choices[0].message
    assert msg.reasoning.startswith("**Checking the product**")
    assert first.usage.prompt_tokens_details.cached_tokens == 1024
    messages += [msg, {"role": "user", "content": "And 17*24?"}]
    client.chat.completions.create(model="gemini/gemini-2.5-pro", messages=messages)
    assert upstream.requests[1].json["contents"][1] == {
        "role": "model", "parts": [{"text": "17 × 23 = **391**.", "thoughtSignature": "EtcBCtQBAXLI2nw="}]}


def test_e2e_blocked_prompt_is_a_content_filter_answer(client, upstream):
    upstream.add(Reply(json=load("prompt_blocked.response.json")))
    resp = client.chat.completions.create(model="gemini/gemini-2.5-flash", messages=[{"role": "user", "content": "x"}])
    assert resp.choices[0].finish_reason == "content_filter" and resp.choices[0].message.content is None


def test_e2e_rate_limit_keeps_status_and_message(client, upstream):
    upstream.add(Reply(status=429, body=ERRORS[0][1]))
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="gemini/gemini-2.5-flash", messages=[{"role": "user", "content": "x"}])
    body = info.value.body
    assert info.value.status_code == 429
    assert body["message"] == "You exceeded your current quota."
    assert (body["type"], body["code"]) == ("RESOURCE_EXHAUSTED", "RESOURCE_EXHAUSTED")
    assert len(upstream.requests) == 1


def test_e2e_stream_error_before_first_byte_is_a_json_error(client, upstream):
    upstream.add(Reply(chunks=[b'data: {"error": {"code": 429, "message": "Resource has been exhausted.",'
                               b' "status": "RESOURCE_EXHAUSTED"}}\r\n\r\n'], content_type="text/event-stream"))
    with pytest.raises(openai.RateLimitError) as info:
        list(client.chat.completions.create(model="gemini/gemini-2.5-flash", stream=True,
                                            messages=[{"role": "user", "content": "x"}]))
    assert info.value.body["message"] == "Resource has been exhausted."
