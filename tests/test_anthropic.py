"""The Anthropic Messages translator: golden fixtures for requests, answers, streams and errors, then the real
gateway end to end with the official openai SDK against a fake Anthropic upstream.

Fixture naming (tests/fixtures/anthropic/):
  <case>.request.json  (OpenAI client body) → <case>.upstream.json (exact Messages body) or <case>.refused.json
  <case>.response.json (Messages answer)    → <case>.expected.json (exact chat.completion, created fixed)
  <case>.stream        (raw upstream SSE)   → <case>.chunks.json   (translated chunks + end state / error)
  errors.json, stream_errors.json           tables of error bodies and in-band error types
"""

from __future__ import annotations

import json
from pathlib import Path

import openai
import pytest
import requests

from bifrost_wsgi import errors as E
from bifrost_wsgi.wire import sse
from bifrost_wsgi.providers import anthropic
from bifrost_wsgi.providers.base import Key, Target
from bifrost_wsgi.providers.registry import ROWS
from bifrost_wsgi.schema import parse_request
from tests.golden import readers, request_outcome_tests
from tests.fakes import Reply

FIXTURES = Path(__file__).parent / "fixtures" / "anthropic"
CREATED = 1700000000
API_KEY = "sk-ant-test-SECRET"


load, cases = readers(FIXTURES)


def target(model: str = "claude-sonnet-4-5") -> Target:
    row = ROWS["anthropic"]
    return Target("anthropic", model, row.base_url, Key(value=API_KEY), row, dict(row.extra_headers))


def build(body: dict, *, passthrough: bool = False) -> dict:
    req = parse_request(body)
    up = anthropic.ADAPTER.build_request(req, target(req.model), stream=req.stream, passthrough=passthrough)
    return json.loads(up.body)


def stream_bytes(case: str) -> bytes:
    return (FIXTURES / f"{case}.stream").read_bytes()


def split(data: bytes, size: int) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


# --- requests --------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", [c for c in cases(".request.json") if (FIXTURES / f"{c}.upstream.json").exists()])
def test_request_golden(case):
    assert build(load(f"{case}.request.json")) == load(f"{case}.upstream.json")


test_request_refused, test_every_request_fixture_has_an_outcome = request_outcome_tests(FIXTURES, build)


def test_upstream_request_line_and_headers():
    req = parse_request(load("simple_text.request.json"))
    plain = anthropic.ADAPTER.build_request(req, target(), stream=False)
    streamed = anthropic.ADAPTER.build_request(req, target(), stream=True)
    assert (plain.method, plain.url) == ("POST", "https://api.anthropic.com/v1/messages")
    assert plain.headers == {"Content-Type": "application/json", "Accept": "application/json"}
    assert streamed.headers["Accept"] == "text/event-stream"
    assert json.loads(streamed.body)["stream"] is True
    # no secret in what the adapter builds: credentials.py adds the key later
    assert API_KEY not in repr(plain.headers) and API_KEY.encode() not in plain.body


# reasoning → thinking, and what it does to max_tokens and the sampling parameters
THINKING = [
    # (client params, expected max_tokens, expected thinking or None)
    ({}, 4096, None),
    ({"reasoning_effort": "none"}, 4096, None),
    ({"reasoning_effort": "minimal"}, 4096, {"type": "enabled", "budget_tokens": 1024}),
    ({"reasoning_effort": "low"}, 4096, {"type": "enabled", "budget_tokens": 2048}),
    ({"reasoning_effort": "medium"}, 8192, {"type": "enabled", "budget_tokens": 4096}),
    ({"reasoning_effort": "high"}, 12288, {"type": "enabled", "budget_tokens": 8192}),
    ({"reasoning_effort": "xhigh"}, 20480, {"type": "enabled", "budget_tokens": 16384}),
    ({"reasoning_effort": "low", "max_tokens": 10000}, 10000, {"type": "enabled", "budget_tokens": 2048}),
    ({"reasoning": {"max_tokens": 3000}, "max_completion_tokens": 2000}, 5000,
     {"type": "enabled", "budget_tokens": 3000}),
    ({"reasoning": {"max_tokens": 100}}, 4096, {"type": "enabled", "budget_tokens": 1024}),
    ({"reasoning": {"max_tokens": 0}}, 4096, None),
    ({"reasoning": {"enabled": True}}, 8192, {"type": "enabled", "budget_tokens": 4096}),
    ({"reasoning": {"enabled": False, "effort": "high"}}, 4096, None),
    ({"reasoning": {"summary": "auto"}}, 4096, None),
]


@pytest.mark.parametrize("params,max_tokens,thinking", THINKING)
def test_reasoning_to_thinking(params, max_tokens, thinking):
    body = build({"model": "anthropic/claude-sonnet-4-5", "messages": [{"role": "user", "content": "x"}], **params})
    assert body["max_tokens"] == max_tokens
    assert body.get("thinking") == thinking
    if thinking:
        assert anthropic.MIN_THINKING_BUDGET <= thinking["budget_tokens"] < body["max_tokens"]

SAMPLING = [
    # (client params, expected sampling keys in the body)
    ({"temperature": 0.5}, {"temperature": 0.5}),
    ({"top_p": 0.5}, {"top_p": 0.5}),
    ({"temperature": 0.5, "top_p": 0.5}, {"temperature": 0.5}),
    ({"top_k": 3}, {"top_k": 3}),
    ({"temperature": 0.5, "top_k": 3, "reasoning_effort": "low"}, {}),
    ({"temperature": 0.5, "top_p": 0.97, "reasoning_effort": "low"}, {"top_p": 0.97}),
]


@pytest.mark.parametrize("params,metadata", [
    ({"user": "u1"}, {"user_id": "u1"}),
    ({"safety_identifier": "s1"}, {"user_id": "s1"}),
    ({"user": "u1", "safety_identifier": "s1", "metadata": {"a": "b"}}, {"user_id": "u1"}),
    ({"metadata": {"a": "b"}}, None),
])
def test_user_becomes_metadata_user_id(params, metadata):
    body = build({"model": "anthropic/claude-haiku-4-5", "messages": [{"role": "user", "content": "x"}], **params})
    assert body.get("metadata") == metadata


@pytest.mark.parametrize("params,expected", SAMPLING)
def test_sampling_parameters(params, expected):
    body = build({"model": "anthropic/claude-haiku-4-5", "messages": [{"role": "user", "content": "x"}], **params})
    assert {k: body[k] for k in ("temperature", "top_p", "top_k") if k in body} == expected


WEATHER = {"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}
TIME = {"type": "function", "function": {"name": "time"}}
TOOL_CHOICES = [
    # (tool_choice, parallel_tool_calls, expected tool_choice, expected tool names)
    (None, None, None, ["weather", "time"]),
    ("auto", None, {"type": "auto"}, ["weather", "time"]),
    ("required", None, {"type": "any"}, ["weather", "time"]),
    ("none", None, {"type": "none"}, ["weather", "time"]),
    ({"type": "function", "function": {"name": "time"}}, None, {"type": "tool", "name": "time"}, ["weather", "time"]),
    (None, False, {"type": "auto", "disable_parallel_tool_use": True}, ["weather", "time"]),
    ("required", False, {"type": "any", "disable_parallel_tool_use": True}, ["weather", "time"]),
    ({"type": "function", "function": {"name": "time"}}, False,
     {"type": "tool", "name": "time", "disable_parallel_tool_use": True}, ["weather", "time"]),
    ("none", False, {"type": "none"}, ["weather", "time"]),
    ("auto", True, {"type": "auto"}, ["weather", "time"]),
    ({"type": "allowed_tools", "allowed_tools": {"mode": "required", "tools": [
        {"type": "function", "function": {"name": "time"}}]}}, None, {"type": "any"}, ["time"]),
]


@pytest.mark.parametrize("choice,parallel,expected,names", TOOL_CHOICES)
def test_tool_choice(choice, parallel, expected, names):
    body = {"model": "anthropic/claude-haiku-4-5", "messages": [{"role": "user", "content": "x"}],
            "tools": [WEATHER, TIME], "tool_choice": choice, "parallel_tool_calls": parallel}
    out = build(body)
    assert out.get("tool_choice") == expected
    assert [t["name"] for t in out["tools"]] == names


def test_tool_choice_without_tools_is_not_sent():
    out = build({"model": "anthropic/claude-haiku-4-5", "messages": [{"role": "user", "content": "x"}],
                 "tool_choice": "none", "parallel_tool_calls": False})
    assert "tools" not in out and "tool_choice" not in out


def test_passthrough_merges_unknown_fields_without_overriding():
    body = {"model": "anthropic/claude-haiku-4-5", "messages": [{"role": "user", "content": "x"}],
            "top_k": 2, "service_tier": "auto", "mcp_servers": [{"type": "url", "url": "https://mcp.example"}],
            "max_tokens": 10}
    plain, merged = build(body), build(body, passthrough=True)
    assert "mcp_servers" not in plain and "service_tier" not in plain
    assert merged["mcp_servers"] == [{"type": "url", "url": "https://mcp.example"}]
    assert merged["top_k"] == 2 and merged["max_tokens"] == 10
    assert "service_tier" not in merged  # a known OpenAI parameter, not an extra: still dropped


def test_build_body_is_reusable_by_vertex():
    req = parse_request(load("tool_round_trip.request.json"))
    body = anthropic.build_body(req, target(), stream=False)
    assert body == load("tool_round_trip.upstream.json")
    assert anthropic.build_body(req, target(), stream=True)["stream"] is True


# --- responses -------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", cases(".response.json"))
def test_response_golden(case):
    got = anthropic.parse_message(load(f"{case}.response.json"), model="claude-requested", created=CREATED)
    assert got == load(f"{case}.expected.json")


def test_parse_response_through_the_adapter(monkeypatch):
    monkeypatch.setattr(anthropic.time, "time", lambda: CREATED + 0.7)
    body = (FIXTURES / "tool_use.response.json").read_bytes()
    assert anthropic.ADAPTER.parse_response(body, target()) == load("tool_use.expected.json")


def test_parse_message_falls_back_to_the_requested_model():
    got = anthropic.parse_message({"id": "m", "content": [{"type": "text", "text": "x"}]}, model="claude-x",
                                  created=CREATED)
    assert got["model"] == "claude-x"
    assert got["choices"][0]["finish_reason"] == "stop"
    assert "usage" not in got


STOP_REASONS = [("end_turn", "stop"), ("stop_sequence", "stop"), ("pause_turn", "stop"), ("max_tokens", "length"),
                ("model_context_window_exceeded", "length"), ("tool_use", "tool_calls"),
                ("refusal", "content_filter"), (None, "stop"), ("something_new", "stop")]


@pytest.mark.parametrize("stop,finish", STOP_REASONS)
def test_stop_reasons(stop, finish):
    assert anthropic.finish_reason(stop) == finish


@pytest.mark.parametrize("body", [b"not json", b"[1]", b'{"id": "msg", "type": "message"}'])
def test_malformed_answers_are_protocol_errors(body):
    with pytest.raises(E.UpstreamProtocolError):
        anthropic.ADAPTER.parse_response(body, target())


def test_error_object_in_a_200_answer_raises_it():
    body = json.dumps({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}).encode()
    with pytest.raises(E.ProviderOverloaded) as info:
        anthropic.ADAPTER.parse_response(body, target())
    assert (info.value.status, info.value.type) == (529, "overloaded_error")


# --- errors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("row", load("errors.json"), ids=lambda r: r["case"])
def test_error_bodies(row):
    body = row["raw"].encode() if "raw" in row else json.dumps(row["body"]).encode()
    err = anthropic.ADAPTER.parse_error(row["status"], {}, body, target())
    want = row["expect"]
    assert type(err).__name__ == want["class"]
    assert (err.status, err.type, err.message) == (want["status"], want["type"], want["message"])
    assert err.is_bifrost_error is False
    assert anthropic.parse_error_body(row["status"], body).to_dict() == err.to_dict()


@pytest.mark.parametrize("row", load("stream_errors.json"), ids=lambda r: r["error_type"])
def test_in_band_error_status_by_type(row):
    stream = anthropic.AnthropicStream(created=CREATED)
    data = json.dumps({"type": "error", "error": {"type": row["error_type"], "message": "boom"}})
    with pytest.raises(E.ProviderError) as info:
        stream.feed(sse.Event(data, "error"))
    assert (info.value.status, info.value.type, info.value.message) == (row["status"], row["error_type"], "boom")


# --- streams ---------------------------------------------------------------------------------------


def translate(case: str, *, piece: int):
    stream = anthropic.AnthropicStream(model="claude-requested", created=CREATED)
    chunks, error = [], None
    try:
        for event in sse.decode(split(stream_bytes(case), piece)):
            chunks.extend(stream.feed(event))
    except E.ProviderError as exc:
        error = exc
    return stream, chunks, error


@pytest.mark.parametrize("piece", [1, 7, 1 << 20])
@pytest.mark.parametrize("case", cases(".stream"))
def test_stream_golden(case, piece):
    want = load(f"{case}.chunks.json")
    stream, chunks, error = translate(case, piece=piece)
    assert chunks == want["chunks"]
    assert (stream.finished, stream.done, stream.malformed) == (want["finished"], want["done"], want["malformed"])
    if "error" in want:
        assert error is not None
        w = want["error"]
        assert (type(error).__name__, error.status, error.type, error.message) == (
            w["class"], w["status"], w["type"], w["message"])
    else:
        assert error is None


def test_streamed_tool_arguments_concatenate_to_the_final_input():
    _, chunks, _ = translate("tools_parallel", piece=5)
    args: dict[int, str] = {}
    for chunk in chunks:
        for call in chunk["choices"][0]["delta"].get("tool_calls", ()):
            args[call["index"]] = args.get(call["index"], "") + call["function"]["arguments"]
    assert {i: json.loads(a) for i, a in args.items()} == {0: {"location": "San Francisco, CA"}, 1: {}}


def test_a_tool_use_block_that_starts_with_its_input():
    stream = anthropic.AnthropicStream(created=CREATED)
    start = {"type": "content_block_start", "index": 0,
             "content_block": {"type": "tool_use", "id": "t", "name": "f", "input": {"a": 1}}}
    first = stream.feed(sse.Event(json.dumps(start), "content_block_start"))
    assert first[0]["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"] == '{"a":1}'
    assert stream.feed(sse.Event('{"type": "content_block_stop", "index": 0}', "content_block_stop")) == []


# --- end to end through the gateway ---------------------------------------------------------------


@pytest.fixture
def gw(upstream, serve):
    return serve({"providers": {"anthropic": {
        "keys": [{"name": "k1", "value": API_KEY, "models": [], "weight": 1.0}],
        "network_config": {"base_url": upstream.url, "default_request_timeout_in_seconds": 5},
    }}})


def sse_reply(case: str) -> Reply:
    return Reply(chunks=split(stream_bytes(case), 64), content_type="text/event-stream")


def assert_upstream_call(upstream, body: dict):
    rec = upstream.requests[-1]
    assert (rec.method, rec.path) == ("POST", "/v1/messages")
    assert rec.headers["x-api-key"] == API_KEY
    assert rec.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in rec.headers
    assert rec.json == body


def test_e2e_non_streaming_tool_calls(gw, upstream):
    upstream.add(Reply(json=load("tool_use.response.json")))
    request = load("tool_round_trip.request.json")
    with openai.OpenAI(base_url=gw + "/v1", api_key="unused", max_retries=0) as client:
        resp = client.chat.completions.create(**request)
    assert_upstream_call(upstream, load("tool_round_trip.upstream.json"))
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "I'll check both cities."
    assert [(c.id, c.function.name, json.loads(c.function.arguments)) for c in choice.message.tool_calls] == [
        ("toolu_01A09q90qw90lq917835lq9", "get_weather", {"location": "San Francisco, CA", "unit": "celsius"}),
        ("toolu_01B", "get_weather", {"location": "Tokyo, JP"}),
        ("toolu_01C", "get_time", {}),
    ]
    assert (resp.id, resp.model) == ("msg_01Aq9w938a90dw8q", "claude-sonnet-4-5-20250929")
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens, resp.usage.total_tokens) == (472, 91, 563)
    assert resp.model_extra["extra_fields"]["provider"] == "anthropic"


def test_e2e_non_streaming_thinking_and_cache_usage(gw, upstream):
    upstream.add(Reply(json=load("thinking.response.json")), Reply(json=load("cache_usage.response.json")))
    with openai.OpenAI(base_url=gw + "/v1", api_key="unused", max_retries=0) as client:
        first = client.chat.completions.create(model="anthropic/claude-sonnet-4-5", reasoning_effort="low",
                                               messages=[{"role": "user", "content": "27 * 453?"}])
        second = client.chat.completions.create(model="anthropic/claude-sonnet-4-5",
                                                messages=[{"role": "user", "content": "Which clause?"}])
    msg = first.choices[0].message.model_extra
    assert msg["reasoning"] == "Let me analyze this step by step..."
    assert [d["type"] for d in msg["reasoning_details"]] == ["reasoning.text", "reasoning.encrypted"]
    assert upstream.requests[0].json["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert second.usage.prompt_tokens == 189307
    assert second.usage.prompt_tokens_details.cached_tokens == 1200


def test_e2e_streaming_text_with_usage_on_the_final_chunk(gw, upstream):
    upstream.add(sse_reply("text"))
    with openai.OpenAI(base_url=gw + "/v1", api_key="unused", max_retries=0) as client:
        chunks = list(client.chat.completions.create(model="anthropic/claude-sonnet-4-5", stream=True,
                                                     messages=[{"role": "user", "content": "Hello, Claude"}]))
    assert_upstream_call(upstream, {"model": "claude-sonnet-4-5", "max_tokens": 4096, "stream": True,
                                    "messages": [{"role": "user", "content": "Hello, Claude"}]})
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello!"
    final = chunks[-1]
    assert final.choices[0].finish_reason == "stop"
    assert (final.usage.prompt_tokens, final.usage.completion_tokens, final.usage.total_tokens) == (25, 15, 40)
    assert [c.choices[0].finish_reason for c in chunks[:-1]] == [None] * (len(chunks) - 1)
    assert all(c.usage is None for c in chunks[:-1])
    assert {c.id for c in chunks} == {"msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY"}


def test_e2e_streaming_parallel_tool_calls(gw, upstream):
    upstream.add(sse_reply("tools_parallel"))
    with openai.OpenAI(base_url=gw + "/v1", api_key="unused", max_retries=0) as client:
        chunks = list(client.chat.completions.create(
            model="anthropic/claude-sonnet-4-5", stream=True, tools=[WEATHER, TIME],
            messages=[{"role": "user", "content": "Weather and time?"}]))
    calls: dict[int, dict] = {}
    for chunk in chunks:
        for tc in (chunk.choices[0].delta.tool_calls or ()) if chunk.choices else ():
            slot = calls.setdefault(tc.index, {"id": None, "name": None, "arguments": ""})
            slot["id"] = tc.id or slot["id"]
            slot["name"] = (tc.function.name if tc.function else None) or slot["name"]
            slot["arguments"] += (tc.function.arguments if tc.function else None) or ""
    assert sorted(calls) == [0, 1]
    assert (calls[0]["id"], calls[0]["name"]) == ("toolu_01T1x1fJ34qAmk2tNTrN7Up6", "get_weather")
    assert (calls[1]["id"], calls[1]["name"]) == ("toolu_02", "get_time")
    assert json.loads(calls[0]["arguments"]) == {"location": "San Francisco, CA"}
    assert json.loads(calls[1]["arguments"]) == {}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    assert upstream.requests[0].json["tools"][0] == {"name": "weather", "input_schema": {"type": "object"}}


def test_e2e_streaming_thinking(gw, upstream):
    upstream.add(sse_reply("thinking"))
    with openai.OpenAI(base_url=gw + "/v1", api_key="unused", max_retries=0) as client:
        chunks = list(client.chat.completions.create(model="anthropic/claude-sonnet-4-5", stream=True,
                                                     reasoning_effort="medium",
                                                     messages=[{"role": "user", "content": "GCD(1071, 462)?"}]))
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    reasoning = "".join((d.model_extra or {}).get("reasoning") or "" for d in deltas)
    assert reasoning == "I need to find the GCD of 1071 and 462 using the Euclidean algorithm.\n\n1071 = 2 × 462 + 147"
    details = [x for d in deltas for x in (d.model_extra or {}).get("reasoning_details") or ()]
    assert [x.get("signature") for x in details if x.get("signature")] == [
        "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds..."]
    assert [x["data"] for x in details if x["type"] == "reasoning.encrypted"] == ["EmwKAhgBEgy3va3pzix/LafPsn4a"]
    assert "".join(d.content or "" for d in deltas) == "The GCD is 21."
    final = chunks[-1]
    assert final.usage.prompt_tokens == 2112 and final.usage.prompt_tokens_details.cached_tokens == 2000
    sent = upstream.requests[0].json
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 4096} and sent["max_tokens"] == 8192


@pytest.mark.parametrize("status,etype,cls", [(429, "rate_limit_error", openai.RateLimitError),
                                              (529, "overloaded_error", openai.APIStatusError)])
@pytest.mark.parametrize("stream", [False, True])
def test_e2e_upstream_error_status_is_preserved(gw, upstream, status, etype, cls, stream):
    message = "Number of requests has exceeded your rate limit" if status == 429 else "Overloaded"
    upstream.add(Reply(status=status, json={"type": "error", "error": {"type": etype, "message": message},
                                            "request_id": "req_1"}))
    with openai.OpenAI(base_url=gw + "/v1", api_key="unused", max_retries=0) as client:
        with pytest.raises(cls) as info:
            out = client.chat.completions.create(model="anthropic/claude-haiku-4-5", stream=stream,
                                                 messages=[{"role": "user", "content": "Hi"}])
            if stream:
                list(out)
    err = info.value
    assert err.status_code == status
    assert err.body["type"] == etype and err.body["message"] == message
    assert len(upstream.requests) == 1


def test_e2e_in_band_error_mid_stream(gw, upstream):
    upstream.add(sse_reply("error_midstream"))
    body = {"model": "anthropic/claude-haiku-4-5", "stream": True, "messages": [{"role": "user", "content": "Hi"}]}
    with requests.post(gw + "/v1/chat/completions", json=body, stream=True, timeout=10) as resp:
        assert resp.status_code == 200
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        lines = [ln for ln in resp.iter_lines(decode_unicode=True) if ln]
    assert all(ln.startswith("data: ") for ln in lines)
    assert lines[-1] == "data: [DONE]"
    events = [json.loads(ln[6:]) for ln in lines[:-1]]
    error = events[-1]
    assert error["status_code"] == 529 and error["is_bifrost_error"] is False
    assert error["error"]["type"] == "overloaded_error" and error["error"]["message"] == "Overloaded"
    assert error["extra_fields"]["provider"] == "anthropic"
    content = "".join(c["choices"][0]["delta"].get("content", "") for c in events[:-1])
    assert content == "Partial"
    assert not any(ch.get("finish_reason") for c in events[:-1] for ch in c["choices"])


def test_e2e_in_band_error_before_any_content_is_a_json_error(gw, upstream):
    events = (b'event: message_start\ndata: {"type": "message_start", "message": {"id": "msg_e", "model": "m", '
              b'"content": [], "usage": {"input_tokens": 1, "output_tokens": 0}}}\n\n'
              b'event: error\ndata: {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}\n\n')
    upstream.add(Reply(chunks=[events], content_type="text/event-stream"))
    with openai.OpenAI(base_url=gw + "/v1", api_key="unused", max_retries=0) as client:
        with pytest.raises(openai.RateLimitError) as info:
            list(client.chat.completions.create(model="anthropic/claude-haiku-4-5", stream=True,
                                                messages=[{"role": "user", "content": "Hi"}]))
    assert info.value.status_code == 429 and info.value.body["message"] == "slow down"


def test_e2e_validation_refusal_never_reaches_upstream(gw, upstream):
    with openai.OpenAI(base_url=gw + "/v1", api_key="unused", max_retries=0) as client:
        with pytest.raises(openai.BadRequestError) as info:
            client.chat.completions.create(model="anthropic/claude-haiku-4-5", n=2,
                                           messages=[{"role": "user", "content": "Hi"}])
    assert info.value.body["param"] == "n"
    assert upstream.requests == []
