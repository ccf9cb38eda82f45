"""POST /v1/responses end to end with the official openai SDK: natively on OpenAI (the body passed through,
events relayed), and translated through the chat APIs of Anthropic, Gemini and an OpenAI-compatible row.

For every translated stream the SDK's three ways of reading it (``responses.create``,
``responses.create(stream=True)`` and the ``responses.stream`` helper) must parse it without error, and the
final ``output_text`` must equal the text streamed as ``response.output_text.delta`` events."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from types import SimpleNamespace

import openai
import pytest
import requests

from bifrost_wsgi.providers.responses.via_chat import as_chat
from bifrost_wsgi.schemas.responses import parse_responses
from bifrost_wsgi.surfaces.openai_responses import ResponsesStreamEncoder
from bifrost_wsgi.wire.sse import compact
from tests.conftest import provider_config
from tests.fakes import Reply, chat_completion, openai_chunks, sse
from tests.procs import Gateway

FIXTURES = Path(__file__).parent / "fixtures"
NATIVE = FIXTURES / "responses"

CONFIGS = {
    "openai": lambda url: provider_config(url),
    "groq": lambda url: provider_config(url),
    "anthropic": lambda url: provider_config(url, key="sk-ant-test-SECRET"),
    "gemini": lambda url: provider_config(url, key="gm-test-SECRET"),
    "cohere": lambda url: provider_config(url, key="co-test-SECRET"),
    "bedrock": lambda url: {"keys": [{"name": "b", "value": "", "models": [], "bedrock_key_config": {
        "access_key": "AKIDEXAMPLE", "secret_key": "wJalrXUtnFEMI", "region": "us-west-2"}}],
        "network_config": {"base_url": url, "default_request_timeout_in_seconds": 5}},
}
STREAM_TYPES = {"bedrock": "application/vnd.amazon.eventstream"}


def gateway_for(serve, upstream, *names):
    return serve({"providers": {n: CONFIGS[n](upstream.url) for n in names}})


def sdk(gw: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw + "/v1", api_key="unused", max_retries=0)


def stream_reply(raw: bytes, size: int = 64, *, provider: str = "") -> Reply:
    return Reply(chunks=[raw[i:i + size] for i in range(0, len(raw), size)],
                 content_type=STREAM_TYPES.get(provider, "text/event-stream"))


def openai_tool_chunks() -> list[dict]:
    base = {"id": "chatcmpl-t", "object": "chat.completion.chunk", "created": 1730000000, "model": "llama"}
    calls = [
        {"index": 0, "id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": ""}},
        {"index": 0, "function": {"arguments": "{\"city\":"}},
        {"index": 0, "function": {"arguments": "\"Paris\"}"}},
        {"index": 1, "id": "call_b", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}},
    ]
    out = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Checking."}}]}]
    out += [{**base, "choices": [{"index": 0, "delta": {"tool_calls": [c]}}]} for c in calls]
    out.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})
    out.append({**base, "choices": [], "usage": {"prompt_tokens": 20, "completion_tokens": 7, "total_tokens": 27}})
    return out


# (case, provider, model, upstream stream bytes, what the final output holds)
STREAMS = [
    ("anthropic_text", "anthropic", "claude-sonnet-4-5", (FIXTURES / "anthropic" / "text.stream").read_bytes(),
     {"message"}),
    ("anthropic_thinking", "anthropic", "claude-sonnet-4-5",
     (FIXTURES / "anthropic" / "thinking.stream").read_bytes(), {"reasoning", "message"}),
    ("anthropic_tools", "anthropic", "claude-sonnet-4-5",
     (FIXTURES / "anthropic" / "tools_parallel.stream").read_bytes(), {"message", "function_call"}),
    ("gemini_text", "gemini", "gemini-2.5-flash", (FIXTURES / "gemini" / "text.stream").read_bytes(), {"message"}),
    ("gemini_tools", "gemini", "gemini-3-pro-preview", (FIXTURES / "gemini" / "function_call.stream").read_bytes(),
     {"reasoning", "function_call"}),
    ("cohere_text", "cohere", "command-a-03-2025", (FIXTURES / "cohere" / "text.stream").read_bytes(),
     {"message"}),
    ("cohere_tools", "cohere", "command-a-03-2025", (FIXTURES / "cohere" / "tool_calls.stream").read_bytes(),
     {"reasoning", "function_call"}),  # Cohere's tool plan is its reasoning
    ("bedrock_text", "bedrock", "anthropic.claude-3-haiku",
     (FIXTURES / "bedrock" / "stream_text.stream").read_bytes(), {"message"}),
    ("bedrock_tools", "bedrock", "anthropic.claude-3-haiku",
     (FIXTURES / "bedrock" / "stream_tool_call.stream").read_bytes(), {"message", "function_call"}),
    ("openai_compat_text", "groq", "llama", b"".join(sse(*openai_chunks("Hel", "lo", " there"))), {"message"}),
    ("openai_compat_tools", "groq", "llama", b"".join(sse(*openai_tool_chunks())), {"message", "function_call"}),
]
IDS = [s[0] for s in STREAMS]


@pytest.mark.parametrize("case, provider, model, raw, kinds", STREAMS, ids=IDS)
def test_translated_stream_read_by_create_stream(case, provider, model, raw, kinds, upstream, serve):
    upstream.add(stream_reply(raw, provider=provider))
    gw = gateway_for(serve, upstream, provider)
    events = list(sdk(gw).responses.create(model=f"{provider}/{model}", input="hi", stream=True))
    types = [e.type for e in events]
    assert types[:2] == ["response.created", "response.in_progress"]
    assert types[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    final = events[-1].response
    streamed = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert final.output_text == streamed
    assert {item.type for item in final.output} == kinds
    assert final.usage.input_tokens > 0 and final.usage.total_tokens >= final.usage.output_tokens
    assert len({item.id for item in final.output}) == len(final.output)
    # every delta names an item that was added at its output index
    added = {e.output_index: e.item.id for e in events if e.type == "response.output_item.added"}
    for e in events:
        if hasattr(e, "item_id") and hasattr(e, "output_index"):
            assert added[e.output_index] == e.item_id
    for e in events:
        if e.type == "response.function_call_arguments.done":
            json.loads(e.arguments)


@pytest.mark.parametrize("case, provider, model, raw, kinds", STREAMS, ids=IDS)
def test_translated_stream_read_by_the_stream_helper(case, provider, model, raw, kinds, upstream, serve):
    upstream.add(stream_reply(raw, provider=provider))
    gw = gateway_for(serve, upstream, provider)
    with sdk(gw).responses.stream(model=f"{provider}/{model}", input="hi") as stream:
        streamed = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
        final = stream.get_final_response()
    assert final.output_text == streamed
    assert final.status == "completed"


def test_the_stream_has_no_done_marker_and_typed_event_lines(upstream, serve):
    upstream.add(stream_reply(b"".join(sse(*openai_chunks("a", "b")))))
    gw = gateway_for(serve, upstream, "groq")
    r = requests.post(gw + "/v1/responses", json={"model": "groq/llama", "input": "hi", "stream": True}, timeout=10)
    assert r.headers["content-type"].startswith("text/event-stream")
    blocks = [b for b in r.text.split("\n\n") if b]
    assert "[DONE]" not in r.text
    for block in blocks:
        event, data = block.split("\n")
        assert json.loads(data[len("data: "):])["type"] == event[len("event: "):]


# (provider, model, upstream answer, expected output_text, output item types)
ANSWERS = [
    ("anthropic", "claude-sonnet-4-5", json.loads((FIXTURES / "anthropic" / "text.response.json").read_text()), None,
     ["message"]),
    ("gemini", "gemini-2.5-flash", json.loads((FIXTURES / "gemini" / "text.response.json").read_text()), None,
     ["message"]),
    ("cohere", "command-a-03-2025", json.loads((FIXTURES / "cohere" / "text.response.json").read_text()), None,
     ["message"]),
    ("cohere", "command-a-03-2025", json.loads((FIXTURES / "cohere" / "tool_calls.response.json").read_text()),
     None, ["reasoning", "function_call", "function_call"]),
    ("bedrock", "anthropic.claude-3-haiku", json.loads((FIXTURES / "bedrock" / "text.response.json").read_text()),
     None, ["message"]),
    ("bedrock", "anthropic.claude-3-haiku",
     json.loads((FIXTURES / "bedrock" / "tool_use.response.json").read_text()), None,
     ["message", "function_call", "function_call"]),
    ("groq", "llama", chat_completion("Hello!", usage={"prompt_tokens": 5, "completion_tokens": 2,
                                                         "total_tokens": 7}), "Hello!", ["message"]),
]


@pytest.mark.parametrize("provider, model, answer, text, types", ANSWERS)
def test_translated_answer(provider, model, answer, text, types, upstream, serve):
    upstream.add(Reply(json=answer))
    gw = gateway_for(serve, upstream, provider)
    resp = sdk(gw).responses.create(model=f"{provider}/{model}", input="hi", instructions="Be brief.")
    assert resp.object == "response" and resp.status == "completed"
    assert [item.type for item in resp.output] == types
    assert text is None or resp.output_text == text
    assert resp.usage.input_tokens > 0


def test_translated_request_to_a_chat_api(upstream, serve):
    upstream.add(Reply(json=chat_completion("ok")))
    gw = gateway_for(serve, upstream, "groq")
    sdk(gw).responses.create(
        model="groq/llama", instructions="Be brief.", max_output_tokens=50, tool_choice="auto",
        input=[{"role": "user", "content": [{"type": "input_text", "text": "weather?"},
                                            {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo="}]},
               {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"},
               {"type": "function_call_output", "call_id": "call_1", "output": "sunny"}],
        tools=[{"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {}}}],
        text={"format": {"type": "json_schema", "name": "w", "schema": {"type": "object"}, "strict": True}})
    sent = upstream.requests[0]
    assert sent.path == "/v1/chat/completions"
    body = sent.json
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "weather?"},
                                     {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]},
        {"role": "assistant", "tool_calls": [{"id": "call_1", "type": "function", "function": {
            "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]
    assert body["tools"] == [{"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {}}}}]
    assert body["max_completion_tokens"] == 50 and body["tool_choice"] == "auto"
    assert body["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "w", "schema": {"type": "object"}, "strict": True}}


def test_native_openai_body_passes_through_untouched(upstream, serve):
    answer = json.loads((NATIVE / "openai.response.json").read_text())
    upstream.add(Reply(json=answer))
    gw = gateway_for(serve, upstream, "openai")
    body = {"model": "openai/gpt-5", "input": "hi", "fallbacks": ["groq/llama"], "store": None,
            "tools": [{"type": "some_future_tool", "knob": {"deep": [1, None]}}],
            "reasoning": {"effort": "high", "summary": "auto"}, "unknown_field": 1}
    r = requests.post(gw + "/v1/responses", json=body, timeout=10)
    assert r.status_code == 200
    sent = upstream.requests[0]
    assert sent.path == "/v1/responses"
    assert sent.json == {"model": "gpt-5", "input": "hi", "store": None,
                         "tools": [{"type": "some_future_tool", "knob": {"deep": [1, None]}}],
                         "reasoning": {"effort": "high", "summary": "auto"}, "unknown_field": 1}
    got = r.json()
    assert got.pop("extra_fields")["request_type"] == "responses"
    assert got == answer


def test_native_openai_stream_is_relayed_as_it_came(upstream, serve):
    raw = (NATIVE / "openai.stream").read_bytes()
    upstream.add(stream_reply(raw, size=50))
    gw = gateway_for(serve, upstream, "openai")
    r = requests.post(gw + "/v1/responses", json={"model": "openai/gpt-5", "input": "hi", "stream": True},
                      timeout=10)
    assert r.content == raw
    upstream.add(stream_reply(raw, size=50))
    with sdk(gw).responses.stream(model="openai/gpt-5", input="hi") as stream:
        streamed = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
        final = stream.get_final_response()
    assert final.output_text == streamed == "Hi there!"


def test_failure_after_the_first_byte_is_an_error_event(upstream, serve):
    raw = b"".join(sse(*openai_chunks("a", "b"), done=False))
    cut = raw[: raw.index(b"data:", 300)]  # a stream that ends before its finish_reason
    upstream.add(stream_reply(cut))
    gw = gateway_for(serve, upstream, "groq")
    r = requests.post(gw + "/v1/responses", json={"model": "groq/llama", "input": "hi", "stream": True}, timeout=10)
    last = [b for b in r.text.split("\n\n") if b][-1]
    assert last.startswith("event: error\ndata: ")
    assert json.loads(last.split("data: ", 1)[1])["type"] == "error"
    assert "response.completed" not in r.text


# (body, param, message)
REFUSED = [
    ({"input": "x"}, "model", "model should be in provider/model format"),
    ({"model": "anthropic/c"}, "input", "input is required for responses"),
    ({"model": "anthropic/c", "input": 3}, "input",
     "invalid request format: input: must be a string or an array of input items"),
    ({"model": "anthropic/c", "input": "x", "tools": [{"type": "web_search_preview"}]}, "tools[0].type",
     "web_search_preview tools are not supported by anthropic: only function tools can be translated"),
    ({"model": "anthropic/c", "input": [{"type": "item_reference", "id": "x"}]}, "input[0].type",
     "input items of type item_reference are not supported by anthropic"),
    ({"model": "elevenlabs/v", "input": "x"}, None, "responses is not supported by elevenlabs provider"),
]


@pytest.mark.parametrize("body, param, message", REFUSED)
def test_refused_without_an_upstream_call(body, param, message, upstream, serve):
    gw = gateway_for(serve, upstream, "anthropic")
    r = requests.post(gw + "/v1/responses", json=body, timeout=10)
    assert r.status_code == 400
    assert (r.json()["error"].get("param"), r.json()["error"]["message"]) == (param, message)
    assert upstream.requests == []


def test_falls_back_from_a_native_to_a_translated_provider(upstream, serve):
    upstream.add(Reply(status=500, json={"error": {"message": "boom", "type": "server_error"}}),
                 Reply(json=chat_completion("from groq")))
    gw = gateway_for(serve, upstream, "openai", "groq")
    resp = sdk(gw).responses.create(model="openai/gpt-5", input="hi", extra_body={"fallbacks": ["groq/llama"]})
    assert resp.output_text == "from groq"
    assert [q.path for q in upstream.requests] == ["/v1/responses", "/v1/chat/completions"]


def test_azure_native_uses_the_deployment_as_the_model(upstream, serve):
    answer = json.loads((NATIVE / "openai.response.json").read_text())
    upstream.add(Reply(json=answer))
    gw = serve({"providers": {"azure": {"keys": [{"name": "a", "value": "az-test-SECRET", "models": [],
                                                  "azure_key_config": {"endpoint": upstream.url,
                                                                       "deployments": {"gpt-5": "gpt5-prod"}}}]}}})
    resp = sdk(gw).responses.create(model="azure/gpt-5", input="hi", tools=[{"type": "mcp", "server_label": "x"}])
    assert resp.output_text == "Hi there!"
    sent = upstream.requests[0]
    assert (sent.path, sent.headers["api-key"]) == ("/openai/v1/responses", "az-test-SECRET")
    assert sent.json == {"model": "gpt5-prod", "input": "hi", "tools": [{"type": "mcp", "server_label": "x"}]}


def test_virtual_key_governs_responses(upstream, serve):
    upstream.add(Reply(json=chat_completion("ok")))
    gw = serve({"providers": {"groq": provider_config(upstream.url), "anthropic": provider_config(upstream.url)},
                "governance": {"virtual_keys": [{"id": "vk1", "value": "sk-bf-resp-1",
                                                 "provider_configs": [{"provider": "groq", "allowed_models": []}]}]},
                "client": {"enforce_governance_header": True}})
    body = {"model": "groq/llama", "input": "hi"}
    assert requests.post(gw + "/v1/responses", json=body, timeout=10).status_code == 401
    assert requests.post(gw + "/v1/responses", json=body, headers={"x-bf-vk": "sk-bf-resp-1"},
                         timeout=10).status_code == 200
    assert requests.post(gw + "/v1/responses", json={**body, "model": "anthropic/c"},
                         headers={"x-bf-vk": "sk-bf-resp-1"}, timeout=10).status_code == 403


@pytest.mark.slow
def test_sdk_sync_async_and_streams_through_gunicorn(upstream):
    embedding = {"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": [0.5, -0.25]}],
                 "model": "text-embedding-3-small", "usage": {"prompt_tokens": 1, "total_tokens": 1}}
    upstream.add(Reply(json=embedding), Reply(json=chat_completion("sync")), Reply(json=chat_completion("async")),
                 stream_reply(b"".join(sse(*openai_chunks("str", "eam")))),
                 stream_reply((NATIVE / "openai.stream").read_bytes()))
    gw = Gateway({"providers": {"openai": provider_config(upstream.url), "groq": provider_config(upstream.url)}},
                 workers=1, threads=8)
    try:
        client = sdk(gw.url)
        assert client.embeddings.create(model="openai/text-embedding-3-small", input="x").data[0].embedding == [0.5, -0.25]
        assert client.responses.create(model="groq/llama", input="hi").output_text == "sync"

        async def ask():
            async with openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key="unused", max_retries=0) as aclient:
                return (await aclient.responses.create(model="groq/llama", input="hi")).output_text

        assert asyncio.run(ask()) == "async"
        with client.responses.stream(model="groq/llama", input="hi") as stream:
            assert stream.get_final_response().output_text == "stream"
        with client.responses.stream(model="openai/gpt-5", input="hi") as stream:
            assert stream.get_final_response().output_text == "Hi there!"
    finally:
        gw.stop()


def test_reasoning_effort_becomes_the_providers_thinking_budget(upstream, serve):
    upstream.add(Reply(json=json.loads((FIXTURES / "anthropic" / "thinking.response.json").read_text())))
    gw = gateway_for(serve, upstream, "anthropic")
    resp = sdk(gw).responses.create(model="anthropic/claude-sonnet-4-5", input="hi", max_output_tokens=2000,
                                    reasoning={"effort": "low", "summary": "auto"})
    thinking = upstream.requests[0].json["thinking"]
    assert thinking["type"] == "enabled" and thinking["budget_tokens"] > 0
    assert resp.output[0].type == "reasoning" and resp.output[0].summary[0].text
    assert resp.output_text


def test_a_stream_cut_by_max_output_tokens_ends_incomplete_as_openai_does(upstream, serve):
    upstream.add(stream_reply((FIXTURES / "anthropic" / "max_tokens.stream").read_bytes()))
    gw = gateway_for(serve, upstream, "anthropic")
    events = list(sdk(gw).responses.create(model="anthropic/claude-sonnet-4-5", input="hi", stream=True,
                                           max_output_tokens=16))
    last = events[-1]
    assert last.type == "response.incomplete"
    assert last.response.incomplete_details.reason == "max_output_tokens"
    assert last.response.output_text == "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert last.response.usage.output_tokens > 0


# --- output_text.delta written from its template (ResponsesStreamEncoder._delta) ---------------------------

TEXTS = ["Hello", " tok1", "", 'say "hi"', "back\\slash", "tab\there\nnew", "caf\u00e9", "emoji \U0001F600",
         "\x7f del", "\u2028 sep", "</script>", "a/b"]


@pytest.mark.parametrize("text", TEXTS)
@pytest.mark.parametrize("upstream_literal", [None, "ascii", "utf8"])
def test_delta_template_writes_what_the_general_event_writes(text, upstream_literal):
    enc = ResponsesStreamEncoder({})
    enc.started = True
    enc._text("first")  # opens the message
    literal = {None: None, "ascii": json.dumps(text), "utf8": json.dumps(text, ensure_ascii=False)}[upstream_literal]
    _, item_id, index, parts, _ = enc.open
    seq = enc.seq
    fast = enc._delta(text, literal)
    enc.seq = seq
    plain = enc.event("response.output_text.delta", {"item_id": item_id, "output_index": index, "content_index": 0,
                                                     "delta": text, "logprobs": []})
    assert fast == plain
    assert parts == ["first", text] and enc.seq == seq + 1


@pytest.mark.parametrize("ensure_ascii", [True, False])
def test_translated_stream_events_are_written_as_the_general_path_writes_them(ensure_ascii, upstream, serve):
    chunks = openai_chunks("Hel", "lo", ' "q"', "caf\u00e9", "\\", "\U0001F600", "\x7f", " end")
    raw = b"".join(b"data: " + json.dumps(c, ensure_ascii=ensure_ascii).encode() + b"\n\n" for c in chunks)
    upstream.add(stream_reply(raw + b"data: [DONE]\n\n"))
    gw = gateway_for(serve, upstream, "groq")
    r = requests.post(gw + "/v1/responses", json={"model": "groq/llama", "input": "hi", "stream": True}, timeout=10)
    events = [block.split("\n") for block in r.content.decode().split("\n\n") if block]
    deltas = []
    for n, (event, data) in enumerate(events):
        parsed = json.loads(data[len("data: "):])
        assert data[len("data: "):] == compact(parsed)  # what event() writes for the same fields
        assert (event[len("event: "):], parsed["sequence_number"]) == (parsed["type"], n)
        if parsed["type"] == "response.output_text.delta":
            deltas.append(parsed["delta"])
    assert deltas == ["Hel", "lo", ' "q"', "caf\u00e9", "\\", "\U0001F600", "\x7f", " end"]
    assert json.loads(events[-1][1][len("data: "):])["response"]["output"][0]["content"][0]["text"] == "".join(deltas)


def test_the_chat_request_is_translated_once_per_target_and_equals_a_fresh_translation():
    body = {"model": "groq/llama", "instructions": "Be brief.", "stream": True, "max_output_tokens": 64,
            "input": [{"role": "user", "content": [{"type": "input_text", "text": "hi"}]}],
            "tools": [{"type": "function", "name": "f", "parameters": {"type": "object", "properties": {}}}]}
    groq, anthropic = SimpleNamespace(provider="groq", model="llama"), SimpleNamespace(provider="anthropic", model="c")
    req = parse_responses(body)
    first = as_chat(req, groq, stream=True)
    assert as_chat(req, groq, stream=True) is first
    assert first == as_chat(parse_responses(body), groq, stream=True)
    for target, stream in ((anthropic, True), (groq, False)):
        other = as_chat(req, target, stream=stream)
        assert other == as_chat(parse_responses(body), target, stream=stream) and other != first
    assert req.with_target("anthropic", "c").chat is None
