"""The Anthropic route (/anthropic/v1/messages, count_tokens, models) end to end: the official anthropic SDK
against the gateway, with fake OpenAI, Gemini and Anthropic upstreams behind it. Translated upstreams must
give the SDK well-formed Messages answers and event streams; an Anthropic upstream gets the client's bytes
and headers and its answer comes back unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import anthropic
import pytest
import requests

from bifrost_wsgi.wire import sse as sse_wire
from tests.conftest import provider_config
from tests.fakes import Reply, chat_completion, fake_upstreams, openai_chunks, sse
from tests.procs import Gateway

FIXTURES = Path(__file__).parent / "fixtures"
GEMINI_SIGNATURE = "CiQBVKhc7sIGnatureAA=="
VK = "sk-bf-test-virtual-key-0001"

WEATHER = [{"name": "get_weather", "description": "Weather for a city",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]


@pytest.fixture
def ups():
    with fake_upstreams("openai", "gemini", "anthropic") as fakes:
        yield fakes


def gateway_config(ups, **extra) -> dict:
    gemini = provider_config(ups["gemini"].url + "/v1beta", key="gemini-key-SECRET")
    return {"providers": {"openai": provider_config(ups["openai"].url),
                          "gemini": gemini,
                          "anthropic": provider_config(ups["anthropic"].url, key="sk-ant-SECRET")}, **extra}


@pytest.fixture
def url(ups, serve):
    return serve(gateway_config(ups)) + "/anthropic"


@pytest.fixture
def client(url):
    with anthropic.Anthropic(base_url=url, api_key="unused", max_retries=0) as c:
        yield c


def sse_bytes(path: str) -> list[bytes]:
    data = (FIXTURES / path).read_bytes()
    return [data[i:i + 64] for i in range(0, len(data), 64)]


def events(body: bytes) -> list[tuple[str, dict]]:
    return [(e.event, json.loads(e.data)) for e in sse_wire.decode([body]) if e.data]


def final_message(client, **kwargs):
    """A streamed answer as the SDK's accumulator builds it."""
    with client.messages.stream(**kwargs) as stream:
        return stream.get_final_message()


def check_event_order(evs: list[tuple[str, dict]]) -> None:
    """Anthropic's stream grammar: message_start first, each block started before its deltas and stopped
    once, message_delta then message_stop last, no [DONE]."""
    names = [n for n, _ in evs if n != "ping"]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    usage = evs[0][1]["message"]["usage"]
    assert isinstance(usage["input_tokens"], int) and isinstance(usage["output_tokens"], int)
    open_blocks, stopped = set(), set()
    for name, data in evs:
        assert name == data["type"]
        if name == "content_block_start":
            assert data["index"] not in open_blocks | stopped
            open_blocks.add(data["index"])
        elif name == "content_block_delta":
            assert data["index"] in open_blocks
        elif name == "content_block_stop":
            open_blocks.remove(data["index"])
            stopped.add(data["index"])
    assert not open_blocks


# --- translated upstreams: OpenAI-compatible ---------------------------------------------------------


def test_text_answer_from_openai(client, ups):
    ups["openai"].add(Reply(json=chat_completion("Hi there", usage={
        "prompt_tokens": 20, "completion_tokens": 3, "total_tokens": 23, "prompt_tokens_details": {"cached_tokens": 8}})))
    msg = client.messages.create(model="openai/gpt-4o", max_tokens=100, system="Be brief.",
                                 stop_sequences=["END"], extra_body={"temperature": 0.5}, metadata={"user_id": "u-42"},
                                 messages=[{"role": "user", "content": "Hello"}])
    assert msg.type == "message" and msg.role == "assistant" and msg.model == "openai/gpt-4o"
    assert [(b.type, b.text) for b in msg.content] == [("text", "Hi there")]
    assert msg.stop_reason == "end_turn"
    assert (msg.usage.input_tokens, msg.usage.output_tokens, msg.usage.cache_read_input_tokens) == (12, 3, 8)
    sent = ups["openai"].requests[0]
    assert sent.path == "/v1/chat/completions"
    assert sent.json == {"model": "gpt-4o", "messages": [{"role": "system", "content": "Be brief."},
                                                         {"role": "user", "content": "Hello"}],
                         "max_completion_tokens": 100, "temperature": 0.5, "stop": ["END"], "user": "u-42"}


@pytest.mark.parametrize("finish, tool_calls, expected", [
    ("stop", None, "end_turn"),
    ("length", None, "max_tokens"),
    ("tool_calls", [{"id": "call_1", "type": "function",
                     "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}], "tool_use"),
    ("stop", [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}],
     "tool_use"),
    ("content_filter", None, "refusal"),
])
def test_stop_reasons(client, ups, finish, tool_calls, expected):
    ups["openai"].add(Reply(json=chat_completion("x", finish_reason=finish, tool_calls=tool_calls)))
    msg = client.messages.create(model="openai/gpt-4o", max_tokens=10, tools=WEATHER,
                                 messages=[{"role": "user", "content": "Weather?"}])
    assert msg.stop_reason == expected


def test_tool_round_trip_through_openai(client, ups):
    call = {"id": "call_abc", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}
    ups["openai"].add(Reply(json=chat_completion("", finish_reason="tool_calls", tool_calls=[call])),
                      Reply(json=chat_completion("18 degrees")))
    messages = [{"role": "user", "content": "Weather in Paris?"}]
    first = client.messages.create(model="openai/gpt-4o", max_tokens=100, tools=WEATHER,
                                   tool_choice={"type": "any", "disable_parallel_tool_use": True}, messages=messages)
    assert first.stop_reason == "tool_use"
    use = [b for b in first.content if b.type == "tool_use"][0]
    assert (use.id, use.name, use.input) == ("call_abc", "get_weather", {"city": "Paris"})
    messages += [{"role": "assistant", "content": first.content},
                 {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "18C"},
                                              {"type": "text", "text": "And tomorrow?"}]}]
    second = client.messages.create(model="openai/gpt-4o", max_tokens=100, tools=WEATHER, messages=messages)
    assert second.content[0].text == "18 degrees"
    body = ups["openai"].requests[0].json
    assert body["tools"] == [{"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
                                                               "parameters": WEATHER[0]["input_schema"]}}]
    assert (body["tool_choice"], body["parallel_tool_calls"]) == ("required", False)
    assert ups["openai"].requests[1].json["messages"][1:] == [
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "call_abc", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": "call_abc", "content": "18C"},
        {"role": "user", "content": [{"type": "text", "text": "And tomorrow?"}]}]


def test_images_become_image_parts(client, ups):
    ups["openai"].add(Reply(json=chat_completion("a cat")))
    client.messages.create(model="openai/gpt-4o", max_tokens=10, messages=[{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0K"}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
        {"type": "text", "text": "What is this?"}]}])
    assert ups["openai"].requests[0].json["messages"][0]["content"] == [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0K"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
        {"type": "text", "text": "What is this?"}]


def test_stream_text_and_tool_calls_from_openai(client, ups):
    base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o"}
    chunks = [
        {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Let me check."}}]},
        {**base, "choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}}]},
        {**base, "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\":"}}]}}]},
        {**base, "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "\"Rome\"}"}}]}}]},
        {**base, "choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": 1, "id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}}]}}]},
        {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
        {**base, "choices": [], "usage": {"prompt_tokens": 30, "completion_tokens": 12, "total_tokens": 42}},
    ]
    ups["openai"].add(Reply(chunks=sse(*chunks)))
    msg = final_message(client, model="openai/gpt-4o", max_tokens=100, tools=WEATHER,
                        messages=[{"role": "user", "content": "Weather in Rome and Oslo?"}])
    assert [b.type for b in msg.content] == ["text", "tool_use", "tool_use"]
    assert msg.content[0].text == "Let me check."
    assert [(b.id, b.input) for b in msg.content[1:]] == [("call_1", {"city": "Rome"}), ("call_2", {"city": "Oslo"})]
    assert msg.stop_reason == "tool_use" and (msg.usage.input_tokens, msg.usage.output_tokens) == (30, 12)
    assert ups["openai"].requests[0].json["stream_options"] == {"include_usage": True}


def test_stream_event_order_on_the_wire(url, ups):
    ups["openai"].add(Reply(chunks=sse(*openai_chunks("Hel", "lo"))))
    r = requests.post(url + "/v1/messages?beta=true", json={
        "model": "openai/gpt-4o", "max_tokens": 10, "stream": True, "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    assert b"[DONE]" not in r.content
    evs = events(r.content)
    check_event_order(evs)
    assert [d["delta"]["text"] for n, d in evs if n == "content_block_delta"] == ["Hel", "lo"]
    assert evs[-2][1]["delta"]["stop_reason"] == "end_turn" and evs[-2][1]["usage"]["output_tokens"] == 2


# --- translated upstreams: Gemini ------------------------------------------------------------------


def test_stream_thinking_from_gemini(client, ups):
    ups["gemini"].add(Reply(chunks=sse_bytes("gemini/thinking_signature.stream")))
    msg = final_message(client, model="gemini/gemini-2.5-pro", max_tokens=2000,
                        thinking={"type": "enabled", "budget_tokens": 1024},
                        messages=[{"role": "user", "content": "17*23?"}])
    kinds = [b.type for b in msg.content]
    assert kinds == ["thinking", "text", "redacted_thinking"]
    assert msg.content[0].thinking == "Multiplying 17 by 23." and msg.content[1].text == "391"
    assert msg.content[2].data == "EtcBCtQBAXLI2nw="  # the text part's signature, to be sent back
    body = ups["gemini"].requests[0].json
    assert body["generationConfig"]["thinkingConfig"]["thinkingBudget"] == 1024


def test_stream_tools_from_gemini_keep_the_thought_signature(client, ups):
    ups["gemini"].add(Reply(chunks=sse_bytes("gemini/function_call.stream")), Reply(json={
        "candidates": [{"content": {"role": "model", "parts": [{"text": "Sunny both."}]}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 2, "totalTokenCount": 7}}))
    messages = [{"role": "user", "content": "Weather in Paris and Rome?"}]
    msg = final_message(client, model="gemini/gemini-3-pro-preview", max_tokens=500, tools=WEATHER,
                        messages=messages)
    uses = [b for b in msg.content if b.type == "tool_use"]
    assert [u.input for u in uses] == [{"city": "Paris"}, {"city": "Rome"}] and msg.stop_reason == "tool_use"
    messages += [{"role": "assistant", "content": msg.content},
                 {"role": "user", "content": [{"type": "tool_result", "tool_use_id": u.id, "content": "sunny"}
                                              for u in uses]}]
    client.messages.create(model="gemini/gemini-3-pro-preview", max_tokens=500, tools=WEATHER, messages=messages)
    replayed = ups["gemini"].requests[1].json["contents"][1]["parts"]
    assert replayed[-2] == {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                            "thoughtSignature": GEMINI_SIGNATURE}


# --- Anthropic upstream: passthrough ----------------------------------------------------------------


def test_native_body_and_headers_pass_through(url, ups):
    answer = {"id": "msg_01", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
              "content": [{"type": "text", "text": "Hi", "citations": None}], "stop_reason": "stop_sequence",
              "stop_sequence": "END", "container": None,
              "usage": {"input_tokens": 5, "output_tokens": 1, "cache_read_input_tokens": 3,
                        "cache_creation_input_tokens": 0, "service_tier": "standard"}}
    ups["anthropic"].add(Reply(json=answer))
    body = (b'{"model":"claude-sonnet-4-5","max_tokens":50,"context_management":{"edits":[]},'
            b'"messages":[{"role":"user","content":"hi"}],"stop_sequences":["END"]}')
    r = requests.post(url + "/v1/messages?beta=true", data=body, headers={
        "Content-Type": "application/json", "anthropic-version": "2023-06-01",
        "anthropic-beta": "context-management-2025-06-27"})
    assert r.status_code == 200 and r.json() == answer
    sent = ups["anthropic"].requests[0]
    assert sent.body == body and sent.path == "/v1/messages" and sent.query == {"beta": ["true"]}
    assert sent.headers["anthropic-beta"] == "context-management-2025-06-27"
    assert sent.headers["anthropic-version"] == "2023-06-01" and sent.headers["x-api-key"] == "sk-ant-SECRET"


@pytest.mark.parametrize("fixture", ["anthropic/tools_parallel.stream", "anthropic/thinking.stream"])
def test_native_stream_is_relayed_as_it_came(url, ups, fixture):
    ups["anthropic"].add(Reply(chunks=sse_bytes(fixture)))
    r = requests.post(url + "/v1/messages", json={"model": "anthropic/claude-sonnet-4-5", "max_tokens": 50,
                                                  "stream": True, "messages": [{"role": "user", "content": "hi"}]})
    assert r.content == (FIXTURES / fixture).read_bytes().replace(b"\r\n", b"\n")
    sent = ups["anthropic"].requests[0].json
    assert sent["model"] == "claude-sonnet-4-5" and sent["stream"] is True


def test_native_stream_through_the_sdk(client, ups):
    ups["anthropic"].add(Reply(chunks=sse_bytes("anthropic/thinking.stream")))
    msg = final_message(client, model="claude-sonnet-4-5", max_tokens=5000,
                        thinking={"type": "enabled", "budget_tokens": 2000},
                        messages=[{"role": "user", "content": "GCD of 1071 and 462?"}])
    assert msg.content[0].type == "thinking" and msg.content[0].signature
    assert ups["anthropic"].requests[0].json["thinking"] == {"type": "enabled", "budget_tokens": 2000}


def test_claude_code_like_session_on_translated_upstreams(url, ups):
    """What Claude Code sends: ?beta=true, anthropic-beta, system blocks with cache_control, tools, a stream."""
    headers = {"anthropic-version": "2023-06-01", "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14",
               "x-app": "cli", "User-Agent": "claude-cli/2.0.0 (external, cli)"}
    body = {"max_tokens": 32000, "stream": True, "metadata": {"user_id": "user_abc_account__session_1"},
            "system": [{"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}},
                       {"type": "text", "text": "Working directory: /repo"}],
            "tools": [{"name": "Bash", "description": "Run a command", "input_schema": {
                "type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}}],
            "messages": [{"role": "user", "content": [{"type": "text", "text": "list files",
                                                      "cache_control": {"type": "ephemeral"}}]}]}
    base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o"}
    ups["openai"].add(Reply(chunks=sse(
        {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "tool_calls": [
            {"index": 0, "id": "call_ls", "type": "function", "function": {"name": "Bash", "arguments": "{\"command\""}}]}}]},
        {**base, "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": ":\"ls\"}"}}]}}]},
        {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}],
         "usage": {"prompt_tokens": 100, "completion_tokens": 7, "total_tokens": 107}})))
    ups["gemini"].add(Reply(chunks=sse_bytes("gemini/function_call.stream")))
    done = {"candidates": [{"content": {"role": "model", "parts": [{"text": "Two files."}]}, "finishReason": "STOP"}]}
    ups["openai"].add(Reply(chunks=sse(*openai_chunks("Two", " files."))))
    ups["gemini"].add(Reply(chunks=[b"data: " + json.dumps(done).encode() + b"\n\n"]))
    with anthropic.Anthropic(base_url=url, api_key="unused", max_retries=0) as c:
        for model, name in (("openai/gpt-4o", "Bash"), ("gemini/gemini-3-pro-preview", "get_weather")):
            turn = {k: v for k, v in body.items() if k != "stream"}
            with c.beta.messages.stream(model=model, extra_headers=headers, **turn) as stream:
                msg = stream.get_final_message()
            assert msg.stop_reason == "tool_use" and msg.content[-1].type == "tool_use"
            assert msg.content[-1].name == name
            # the second turn: Claude Code sends the assistant's blocks back with a result per tool call
            results = [{"type": "tool_result", "tool_use_id": b.id, "content": "a.txt b.txt"}
                       for b in msg.content if b.type == "tool_use"]
            turn["messages"] = [*body["messages"], {"role": "assistant", "content": msg.content},
                                {"role": "user", "content": results}]
            with c.beta.messages.stream(model=model, extra_headers=headers, **turn) as stream:
                final = stream.get_final_message()
            assert (final.content[-1].text, final.stop_reason) == ("Two files.", "end_turn")
    assert ups["openai"].requests[1].json["messages"][-2:] == [
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "call_ls", "type": "function", "function": {"name": "Bash", "arguments": "{\"command\":\"ls\"}"}}]},
        {"role": "tool", "tool_call_id": "call_ls", "content": "a.txt b.txt"}]
    replayed = ups["gemini"].requests[1].json["contents"]
    assert replayed[1]["parts"][-2]["thoughtSignature"] == GEMINI_SIGNATURE  # Gemini gets its signature back
    assert [p["functionResponse"]["name"] for p in replayed[2]["parts"]] == ["get_weather", "get_weather"]
    sent = ups["openai"].requests[0].json
    assert sent["messages"][0] == {"role": "system", "content": [
        {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "Working directory: /repo"}]}
    assert sent["max_completion_tokens"] == 32000 and sent["user"] == "user_abc_account__session_1"
    assert "anthropic-beta" not in ups["openai"].requests[0].headers


# --- count_tokens, models ---------------------------------------------------------------------------


def test_count_tokens(client, ups):
    ups["anthropic"].add(Reply(json={"input_tokens": 42}))
    counted = client.messages.count_tokens(model="claude-sonnet-4-5", system="Be brief.",
                                           messages=[{"role": "user", "content": "Hello"}])
    assert counted.input_tokens == 42
    sent = ups["anthropic"].requests[0]
    assert sent.path == "/v1/messages/count_tokens"
    assert sent.json == {"model": "claude-sonnet-4-5", "system": "Be brief.",
                         "messages": [{"role": "user", "content": "Hello"}]}
    # a provider without a counting API gets an estimate, never an error
    estimate = client.messages.count_tokens(model="openai/gpt-4o", messages=[{"role": "user", "content": "Hello " * 40}])
    assert 40 <= estimate.input_tokens <= 120 and not ups["openai"].requests


def test_models_list(client):
    page = client.models.list()
    assert all(m.type == "model" for m in page.data)


# --- errors, fallbacks, virtual keys ----------------------------------------------------------------


@pytest.mark.parametrize("status, error_class, kind", [
    (429, anthropic.RateLimitError, "rate_limit_error"),
    (401, anthropic.AuthenticationError, "authentication_error"),
    (500, anthropic.InternalServerError, "api_error"),
])
def test_upstream_errors_in_anthropics_envelope(client, ups, status, error_class, kind):
    ups["openai"].add(Reply(status=status, json={"error": {"message": "nope", "type": "x"}}))
    with pytest.raises(error_class) as info:
        client.messages.create(model="openai/gpt-4o", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == status
    assert info.value.body["type"] == "error" and info.value.body["error"]["type"] == kind


@pytest.mark.parametrize("body, param", [
    ({"model": "claude-x", "messages": [{"role": "user", "content": "hi"}]}, "max_tokens"),
    ({"max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}, "model"),
    ({"model": "claude-x", "max_tokens": 5, "messages": [{"role": "robot", "content": "hi"}]}, "messages[0].role"),
    ({"model": "claude-x", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "tool_use"}]}]},
     "messages[0].content[0].id"),
    # document order: the first violation in the body is the one reported
    ({"model": "claude-x", "max_tokens": 5, "thinking": {"type": "enabled"}, "messages": []}, "thinking.budget_tokens"),
    ({"model": "claude-x", "max_tokens": 5, "messages": []}, "messages"),
    ({"model": "claude-x", "max_tokens": 0, "messages": [{"role": "user", "content": "hi"}]}, "max_tokens"),
    ("[]", "JSON object"),
])
def test_invalid_requests(url, body, param):
    r = requests.post(url + "/v1/messages", json=body) if isinstance(body, dict) else \
        requests.post(url + "/v1/messages", data=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert r.json()["type"] == "error" and r.json()["error"]["type"] == "invalid_request_error"
    assert param in r.json()["error"]["message"]


def test_error_mid_stream_is_an_error_event(url, ups):
    chunks = sse(*openai_chunks("partial")[:2], done=False)
    ups["openai"].add(Reply(chunks=[*chunks, b'data: {"error":{"message":"boom","type":"server_error"}}\n\n']))
    r = requests.post(url + "/v1/messages", json={"model": "openai/gpt-4o", "max_tokens": 10, "stream": True,
                                                  "messages": [{"role": "user", "content": "hi"}]})
    evs = events(r.content)
    assert evs[0][0] == "message_start" and evs[-1][0] == "error"
    assert evs[-1][1]["type"] == "error" and evs[-1][1]["error"]["type"] == "api_error"


def test_fallbacks_from_the_header(client, ups):
    ups["openai"].add(Reply(status=500, json={"error": {"message": "down"}}))
    ups["gemini"].add(Reply(json={"candidates": [{"content": {"role": "model", "parts": [{"text": "from gemini"}]},
                                                  "finishReason": "STOP"}]}))
    msg = client.messages.create(model="openai/gpt-4o", max_tokens=10, messages=[{"role": "user", "content": "hi"}],
                                 extra_headers={"x-bf-fallbacks": "gemini/gemini-2.5-flash"})
    assert msg.content[0].text == "from gemini"


def test_unknown_provider_is_a_400(client):
    with pytest.raises(anthropic.BadRequestError):
        client.messages.create(model="nosuch/model", max_tokens=10, messages=[{"role": "user", "content": "hi"}])


@pytest.mark.parametrize("how", ["x-api-key", "bearer"])
def test_virtual_key_as_the_sdk_sends_it(ups, serve, how):
    url = serve(gateway_config(ups, governance={"virtual_keys": [{"id": "vk1", "name": "team", "value": VK}]}))
    ups["openai"].add(Reply(json=chat_completion("ok")))
    kwargs = {"api_key": VK} if how == "x-api-key" else {"auth_token": VK}
    with anthropic.Anthropic(base_url=url + "/anthropic", max_retries=0, **kwargs) as c:
        assert c.messages.create(model="openai/gpt-4o", max_tokens=5,
                                 messages=[{"role": "user", "content": "hi"}]).content[0].text == "ok"
    with anthropic.Anthropic(base_url=url + "/anthropic", api_key="wrong", max_retries=0) as c:
        with pytest.raises(anthropic.AuthenticationError):
            c.messages.create(model="openai/gpt-4o", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
    assert VK not in ups["openai"].requests[0].headers.values()


# --- through gunicorn ------------------------------------------------------------------------------


@pytest.mark.slow
def test_streams_through_gunicorn(ups):
    """The real server: a translated stream (an upstream keep-alive becomes a ping) and a native one."""
    chunks = sse(*openai_chunks("one", " two"))
    ups["openai"].add(Reply(chunks=[*chunks[:2], b": keep-alive\n\n", *chunks[2:]]))
    ups["anthropic"].add(Reply(chunks=sse_bytes("anthropic/tools_parallel.stream")))
    gw = Gateway(gateway_config(ups), workers=1, threads=4)
    try:
        r = requests.post(gw.url + "/anthropic/v1/messages", json={
            "model": "openai/gpt-4o", "max_tokens": 10, "stream": True, "messages": [{"role": "user", "content": "x"}]})
        evs = events(r.content)
        check_event_order(evs)
        assert ("ping", {"type": "ping"}) in evs
        assert "".join(d["delta"].get("text", "") for n, d in evs if n == "content_block_delta") == "one two"
        with anthropic.Anthropic(base_url=gw.url + "/anthropic", api_key="unused", max_retries=0) as c:
            msg = final_message(c, model="claude-sonnet-4-5", max_tokens=100, tools=WEATHER,
                                messages=[{"role": "user", "content": "weather"}])
        assert [b.type for b in msg.content] == ["text", "tool_use", "tool_use"]
    finally:
        gw.stop()


@pytest.mark.parametrize("text", ["plain", "é \"quoted\" \n line", ""])
def test_text_fast_path_says_what_the_slow_path_says(text):
    """A PlainChunk's JSON literal is spliced into the event; the result must parse as the dict chunk's does."""
    import time

    from bifrost_wsgi.answers import PlainChunk
    from bifrost_wsgi.routing.relay import StreamState
    from bifrost_wsgi.surfaces.anthropic import MessagesStreamEncoder

    literal = json.dumps(text, ensure_ascii=False)
    data = '{"id":"c","choices":[{"index":0,"delta":{"content":' + literal + '}}]}'
    outputs = []
    for chunk in (PlainChunk(data, literal), json.loads(data)):
        encoder, state = MessagesStreamEncoder(model="m"), StreamState(time.monotonic())
        encoder.chunk({"choices": [{"index": 0, "delta": {"content": "first"}}]}, state)  # opens the text block
        outputs.append(events(encoder.chunk(chunk, state)))
    assert outputs[0] == outputs[1] or (text == "" and outputs[1] == [])


def test_native_primary_falls_back_to_a_translated_stream(client, ups):
    """Anthropic overloaded before the first byte: the OpenAI fallback's stream is written as Anthropic's."""
    ups["anthropic"].add(Reply(status=529, json={"type": "error", "error": {"type": "overloaded_error",
                                                                           "message": "Overloaded"}}))
    ups["openai"].add(Reply(chunks=sse(*openai_chunks("from", " openai"))))
    msg = final_message(client, model="claude-sonnet-4-5", max_tokens=10, messages=[{"role": "user", "content": "hi"}],
                        extra_headers={"x-bf-fallbacks": "openai/gpt-4o"})
    assert msg.content[0].text == "from openai" and msg.stop_reason == "end_turn"
    assert ups["openai"].requests[0].json["model"] == "gpt-4o"
