"""Cohere v2 chat: golden fixtures for requests, answers and streams; refusals and errors as tables; then the
real gateway end to end with the official openai SDK against a fake Cohere upstream.

Fixtures live in tests/fixtures/cohere/: ``<case>.request.json`` (client body) → ``<case>.upstream.json`` (the
body Cohere must get), ``<case>.response.json`` (Cohere's answer, shaped after docs.cohere.com/reference/chat)
→ ``<case>.expected.json``, ``<case>.stream`` (raw SSE bytes) → ``<case>.chunks.json``. ``created`` is the
gateway's clock (Cohere sends none), so it is checked for type and left out of the comparison.
"""

from __future__ import annotations

import json
from pathlib import Path

import openai
import pytest

from bifrost_wsgi import errors as E
from bifrost_wsgi.providers.base import Key, Target
from bifrost_wsgi.providers.cohere import ADAPTER
from bifrost_wsgi.providers.registry import ROWS
from bifrost_wsgi.schema import parse_request
from bifrost_wsgi.wire.sse import Event, decode
from tests.conftest import provider_config
from tests.golden import readers
from tests.fakes import Reply

FIXTURES = Path(__file__).parent / "fixtures" / "cohere"
COHERE_KEY = "co-test-SECRET-0002"
MODEL = "command-a-03-2025"


load, cases = readers(FIXTURES)


def target(model: str = MODEL) -> Target:
    return Target("cohere", model, "https://api.cohere.com", Key(name="k1", value=COHERE_KEY), ROWS["cohere"])


def request(body: dict):
    req = parse_request(body)
    return req, target(req.model)


def no_nulls(value) -> bool:
    if isinstance(value, dict):
        return all(v is not None and no_nulls(v) for v in value.values())
    if isinstance(value, list):
        return all(no_nulls(v) for v in value)
    return True


def without_created(obj: dict) -> dict:
    assert isinstance(obj.pop("created"), int)
    return obj


# --- requests -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", cases(".request.json"))
def test_request_golden(case):
    req, tgt = request(load(f"{case}.request.json"))
    built = ADAPTER.build_request(req, tgt, stream=req.stream)
    assert built.method == "POST"
    assert built.url == "https://api.cohere.com/v2/chat"
    assert built.headers["Content-Type"] == "application/json"
    assert built.headers["Accept"] == ("text/event-stream" if req.stream else "application/json")
    # credentials are credentials.py's job: a built request never holds the key
    assert COHERE_KEY not in json.dumps(built.headers) and COHERE_KEY.encode() not in built.body
    assert json.loads(built.body) == load(f"{case}.upstream.json")


def test_base_url_is_used_as_given():
    req, _ = request(load("text.request.json"))
    tgt = Target("cohere", MODEL, "http://127.0.0.1:9/proxy", Key(value="k"), ROWS["cohere"])
    assert ADAPTER.build_request(req, tgt, stream=False).url == "http://127.0.0.1:9/proxy/v2/chat"


def test_passthrough_merges_unknown_fields_without_overriding():
    body = {"model": "cohere/" + MODEL, "messages": [{"role": "user", "content": "hi"}], "temperature": 0.1,
            "top_k": 5, "safety_mode": "STRICT", "citation_options": {"mode": "FAST"}}
    req, tgt = request(body)
    plain = json.loads(ADAPTER.build_request(req, tgt, stream=False).body)
    assert "safety_mode" not in plain and plain["k"] == 5
    merged = json.loads(ADAPTER.build_request(req, tgt, stream=False, passthrough=True).body)
    assert merged == {**plain, "safety_mode": "STRICT", "citation_options": {"mode": "FAST"}}
    assert "top_k" not in merged  # already sent as k


REFUSED = [
    # (what the client sends on top of a plain request, error class, param, message fragment)
    ({"n": 2}, E.UnsupportedParameter, "n", "n > 1"),
    ({"logprobs": True, "top_logprobs": 3}, E.UnsupportedParameter, "top_logprobs", "top_logprobs"),
    ({"modalities": ["text", "audio"]}, E.UnsupportedParameter, "modalities", "audio"),
    ({"audio": {"voice": "alloy", "format": "mp3"}}, E.UnsupportedParameter, "audio", "audio"),
    ({"messages": [{"role": "user", "content": [
        {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}]}]},
     E.UnsupportedParameter, "messages[0].content[0]", "input_audio"),
    ({"messages": [{"role": "user", "content": [
        {"type": "text", "text": "read"}, {"type": "file", "file": {"file_data": "data:application/pdf;base64,AA"}}]}]},
     E.UnsupportedParameter, "messages[0].content[1]", "file"),
    ({"messages": [{"role": "system", "content": [
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]}]},
     E.UnsupportedParameter, "messages[0].content[0]", "image_url"),
    ({"tools": [{"type": "custom", "custom": {"name": "grep"}}]}, E.UnsupportedParameter, "tools[0]", "custom"),
    ({"tools": [{"type": "function", "function": {"name": "a"}}],
      "tool_choice": {"type": "function", "function": {"name": "b"}}}, E.BadRequest, "tool_choice", "b"),
    ({"tools": [{"type": "function", "function": {"name": "a"}}], "tool_choice": {"type": "custom"}},
     E.UnsupportedParameter, "tool_choice", "custom"),
]


@pytest.mark.parametrize("extra, cls, param, fragment", REFUSED)
def test_refused(extra, cls, param, fragment):
    body = {"model": "cohere/" + MODEL, "messages": [{"role": "user", "content": "hi"}], **extra}
    req, tgt = request(body)
    with pytest.raises(cls) as info:
        ADAPTER.build_request(req, tgt, stream=False)
    assert info.value.status == 400
    assert info.value.param == param
    assert fragment in info.value.message


# --- answers --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", cases(".response.json"))
def test_response_golden(case):
    got = ADAPTER.parse_response((FIXTURES / f"{case}.response.json").read_bytes(), target())
    assert no_nulls(got)
    assert without_created(got) == load(f"{case}.expected.json")


FINISH = [
    ("COMPLETE", "stop"),
    ("STOP_SEQUENCE", "stop"),
    ("MAX_TOKENS", "length"),
    ("TOOL_CALL", "tool_calls"),
    ("SOMETHING_NEW", "stop"),
]


@pytest.mark.parametrize("cohere, openai_reason", FINISH)
def test_finish_reasons(cohere, openai_reason):
    answer = {"id": "x", "finish_reason": cohere, "message": {"content": [{"type": "text", "text": "a"}]}}
    got = ADAPTER.parse_response(json.dumps(answer).encode(), target())
    assert got["choices"][0]["finish_reason"] == openai_reason


# A failed generation is an error, never a finished answer: the text may stop anywhere.
FAILED = [("ERROR", 500, E.ProviderServerError), ("TIMEOUT", 504, E.ProviderServerError)]


@pytest.mark.parametrize("cohere, status, cls", FAILED)
def test_failed_generation_is_an_error(cohere, status, cls):
    answer = {"id": "x", "finish_reason": cohere, "message": {"content": [{"type": "text", "text": "The ans"}]}}
    with pytest.raises(cls) as info:
        ADAPTER.parse_response(json.dumps(answer).encode(), target())
    assert info.value.status == status
    assert cohere in info.value.message


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'{"id": "x", "finish_reason": "COMPLETE"}'])
def test_unusable_answer_is_a_protocol_error(body):
    with pytest.raises(E.UpstreamProtocolError):
        ADAPTER.parse_response(body, target())


TOO_LONG = "too many tokens: total number of tokens in the prompt cannot exceed 4081 - received 4292."
ERRORS = [
    # (status, body, class, message)
    (429, {"id": "1d2c", "message": "You are using a Trial key, which is limited to 10 API calls / minute."},
     E.ProviderRateLimited, "You are using a Trial key, which is limited to 10 API calls / minute."),
    (400, {"message": "invalid request: temperature must be between 0 and 1.0 inclusive."},
     E.ProviderRejected, "invalid request: temperature must be between 0 and 1.0 inclusive."),
    (400, {"id": "9f", "message": TOO_LONG}, E.ContextLengthExceeded, TOO_LONG),
    (401, {"message": "invalid api token"}, E.ProviderAuthFailed, "invalid api token"),
    (404, {"message": "model 'command-x' not found"}, E.ModelNotFound, "model 'command-x' not found"),
    (498, {"message": "invalid token"}, E.ProviderRejected, "invalid token"),
    (503, {"message": "service unavailable"}, E.ProviderOverloaded, "service unavailable"),
    (500, b"upstream connect error", E.ProviderServerError, "upstream connect error"),
    (502, b"", E.ProviderServerError, "upstream returned status 502"),
    (429, {"error": {"message": "slow down", "type": "rate_limit"}}, E.ProviderRateLimited, "slow down"),
]


@pytest.mark.parametrize("status, body, cls, message", ERRORS)
def test_errors(status, body, cls, message):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    err = ADAPTER.parse_error(status, {}, raw, target())
    assert type(err) is cls
    assert err.status == status
    assert err.message == message
    assert err.is_bifrost_error is False


# --- streams --------------------------------------------------------------------------------------------


def translate(raw: bytes, *, pieces: int = 1):
    """Feed raw SSE bytes (in ``pieces``-byte slices when asked) through a fresh translator."""
    req, tgt = request({"model": "cohere/" + MODEL, "messages": [{"role": "user", "content": "hi"}],
                        "stream": True})
    translator = ADAPTER.new_stream(req, tgt)
    slices = [raw] if pieces == 1 else [raw[i:i + pieces] for i in range(0, len(raw), pieces)]
    chunks = []
    for event in decode(slices):
        chunks.extend(translator.feed(event))
    return translator, chunks


MALFORMED = {"noise": 2}  # a cut JSON payload and a JSON array


@pytest.mark.parametrize("case", cases(".stream"))
def test_stream_golden(case):
    translator, chunks = translate((FIXTURES / f"{case}.stream").read_bytes())
    assert no_nulls(chunks)
    assert [without_created(c) for c in chunks] == load(f"{case}.chunks.json")
    assert translator.finished and translator.done
    assert translator.malformed == MALFORMED.get(case, 0)


def test_stream_does_not_depend_on_how_bytes_are_split():
    raw = (FIXTURES / "tool_calls.stream").read_bytes()
    whole = translate(raw)[1]
    for size in (1, 7, 64):
        assert translate(raw, pieces=size)[1] == whole


def test_stream_cut_before_message_end_is_not_finished():
    raw = (FIXTURES / "text.stream").read_bytes()
    translator, chunks = translate(raw[: raw.index(b"event: message-end")])
    assert chunks and not translator.finished and not translator.done
    assert all("finish_reason" not in c["choices"][0] for c in chunks)


IN_BAND = [
    # (event name, payload, status, message)
    ("message-end", {"type": "message-end", "delta": {"finish_reason": "ERROR", "error": "internal error"}},
     500, "internal error"),
    ("message-end", {"type": "message-end", "delta": {"finish_reason": "TIMEOUT"}},
     504, "cohere stopped the generation with finish_reason TIMEOUT"),
    ("message-end", {"type": "message-end", "delta": {"error": "generation aborted"}}, 500, "generation aborted"),
    ("", {"message": "stream failed"}, 500, "stream failed"),
    ("error", {"message": "too many requests", "status_code": 429}, 429, "too many requests"),
]


@pytest.mark.parametrize("name, payload, status, message", IN_BAND)
def test_stream_in_band_failure_raises(name, payload, status, message):
    translator = ADAPTER.new_stream(*request({"model": "cohere/" + MODEL, "messages": [
        {"role": "user", "content": "hi"}]}))
    translator.feed(Event(json.dumps({"type": "message-start", "id": "m1"}), "message-start"))
    with pytest.raises(E.ProviderError) as info:
        translator.feed(Event(json.dumps(payload), name))
    assert info.value.status == status
    assert info.value.message == message
    assert not translator.finished


# --- end to end through the gateway with the openai SDK -----------------------------------------------------


@pytest.fixture
def gateway(upstream, serve):
    return serve({"providers": {"cohere": provider_config(upstream.url, key=COHERE_KEY, max_retries=0)}})


@pytest.fixture
def client(gateway):
    with openai.OpenAI(base_url=gateway + "/v1", api_key="unused", max_retries=0) as c:
        yield c


def sse_reply(case: str, *, pieces: int = 3) -> Reply:
    """The fixture stream sent in a few network chunks with small pauses, as a real upstream would."""
    raw = (FIXTURES / f"{case}.stream").read_bytes()
    step = len(raw) // pieces + 1
    chunks: list = []
    for i in range(0, len(raw), step):
        chunks += [raw[i:i + step], 0.01]
    return Reply(chunks=chunks, content_type="text/event-stream")


def assert_upstream_call(rec, body_fixture: str, *, accept: str):
    assert rec.method == "POST"
    assert rec.path == "/v2/chat"
    assert rec.headers["authorization"] == "Bearer " + COHERE_KEY
    assert rec.headers["accept"] == accept
    assert rec.json == load(body_fixture)


def test_e2e_completion(upstream, client):
    upstream.add(Reply(json=load("text.response.json")))
    resp = client.chat.completions.create(
        model="cohere/" + MODEL, messages=[{"role": "user", "content": "What is an LLM?"}], max_tokens=200,
        temperature=0.4, top_p=1, stop="END", seed=7, frequency_penalty=0.2, user="u-1",
        parallel_tool_calls=False, metadata={"a": "b"}, extra_body={"top_k": 40})
    assert_upstream_call(upstream.requests[0], "text.upstream.json", accept="application/json")
    assert resp.id == "c14c80c3-18eb-4519-9460-6c92edd8cfb4"
    assert resp.model == MODEL
    assert resp.choices[0].message.content == "An LLM is a large language model."
    assert resp.choices[0].finish_reason == "stop"
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens, resp.usage.total_tokens) == (71, 9, 80)
    extra = resp.model_extra["extra_fields"]
    assert (extra["provider"], extra["model_requested"], extra["request_type"]) == ("cohere", MODEL, "chat_completion")


def test_e2e_tool_round_trip(upstream, client):
    upstream.add(Reply(json=load("tool_calls.response.json")))
    body = load("tool_round_trip.request.json")
    resp = client.chat.completions.create(**body)
    assert_upstream_call(upstream.requests[0], "tool_round_trip.upstream.json", accept="application/json")
    message = resp.choices[0].message
    assert resp.choices[0].finish_reason == "tool_calls"
    assert [(c.id, c.function.name, json.loads(c.function.arguments)) for c in message.tool_calls] == [
        ("get_weather_p1t92w7gfgq7", "get_weather", {"location": "Madrid"}),
        ("get_weather_ay6nmvjgp9vn", "get_weather", {"location": "Brasilia"}),
    ]
    assert message.model_extra["reasoning"] == "I will search for the weather in Madrid and Brasilia."


def test_e2e_stream_text(upstream, client):
    upstream.add(sse_reply("text"))
    chunks = list(client.chat.completions.create(
        model="cohere/" + MODEL, messages=[{"role": "user", "content": "hello world!"}], temperature=0.3,
        stream=True, stream_options={"include_usage": True}))
    assert_upstream_call(upstream.requests[0], "stream.upstream.json", accept="text/event-stream")
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello world!"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert {c.id for c in chunks} == {"29f14a5a-11de-4cae-9800-25e4747408ea"}
    # finish_reason and usage come once, on the final chunk
    final = chunks[-1]
    assert final.choices[0].finish_reason == "stop"
    assert (final.usage.prompt_tokens, final.usage.completion_tokens, final.usage.total_tokens) == (69, 3, 72)
    assert all(c.usage is None and c.choices[0].finish_reason is None for c in chunks[:-1])


def test_e2e_stream_tool_call(upstream, client):
    upstream.add(sse_reply("tool_calls", pieces=5))
    stream = client.chat.completions.create(
        model="cohere/" + MODEL, messages=[{"role": "user", "content": "What's the weather in Madrid and Brasilia?"}],
        tools=[{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
        stream=True)
    calls: dict[int, dict] = {}
    fragments = 0
    reasoning = ""
    chunks = list(stream)
    for chunk in chunks:
        delta = chunk.choices[0].delta
        reasoning += (delta.model_extra or {}).get("reasoning") or ""
        for tc in delta.tool_calls or ():
            call = calls.setdefault(tc.index, {"id": None, "name": None, "arguments": ""})
            if tc.id:
                call["id"], call["name"] = tc.id, tc.function.name
            if tc.function and tc.function.arguments:
                call["arguments"] += tc.function.arguments
                fragments += 1
    assert upstream.requests[0].json["stream"] is True
    assert reasoning == "I will search the weather."
    assert calls == {
        0: {"id": "get_weather_p1t92w7gfgq7", "name": "get_weather", "arguments": "{\n    \"location\": \"Madrid\"\n}"},
        1: {"id": "get_weather_ay6nmvjgp9vn", "name": "get_weather", "arguments": "{\"location\": \"Brasilia\"}"},
    }
    assert fragments == 5  # every fragment forwarded as it came, none buffered
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    assert chunks[-1].usage.total_tokens == 996


@pytest.mark.parametrize("stream", [False, True])
def test_e2e_rate_limit_keeps_status_and_message(upstream, client, stream):
    message = "You are using a Trial key, which is limited to 10 API calls / minute."
    upstream.add(Reply(status=429, json={"id": "5c1e", "message": message}))
    with pytest.raises(openai.RateLimitError) as info:
        result = client.chat.completions.create(
            model="cohere/" + MODEL, messages=[{"role": "user", "content": "hi"}], stream=stream)
        list(result) if stream else None
    assert info.value.status_code == 429
    assert info.value.body["message"] == message
    assert info.value.body["type"] == "rate_limit_error"
    assert len(upstream.requests) == 1
