"""The Cohere route (/cohere/v2/chat) end to end: the official cohere SDK (ClientV2) against the gateway, with
fake OpenAI and Cohere upstreams behind it."""

from __future__ import annotations

from pathlib import Path

import cohere
import pytest
import requests

from tests.conftest import provider_config
from tests.fakes import Reply, chat_completion, fake_upstreams, openai_chunks, openai_text_then_tool_call, sse

FIXTURES = Path(__file__).parent / "fixtures" / "cohere"
VK = "sk-bf-test-virtual-key-0004"
WEATHER = [{"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
                                             "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]


@pytest.fixture
def ups():
    with fake_upstreams("openai", "cohere") as fakes:
        yield fakes


def gateway_config(ups, **extra) -> dict:
    return {"providers": {"openai": provider_config(ups["openai"].url),
                          "cohere": provider_config(ups["cohere"].url, key="cohere-SECRET")}, **extra}


@pytest.fixture
def url(ups, serve):
    return serve(gateway_config(ups))


@pytest.fixture
def client(url):
    with cohere.ClientV2(api_key="unused", base_url=url + "/cohere", timeout=10) as c:
        yield c


def test_text_from_openai(client, ups):
    ups["openai"].add(Reply(json=chat_completion("Hi there")))
    resp = client.chat(model="openai/gpt-4o", messages=[{"role": "system", "content": "Be brief."},
                                                        {"role": "user", "content": "Hello"}],
                       max_tokens=50, temperature=0.3, p=0.9, k=5, stop_sequences=["END"])
    assert resp.message.content[0].text == "Hi there" and resp.finish_reason == "COMPLETE"
    assert (resp.usage.tokens.input_tokens, resp.usage.tokens.output_tokens) == (9, 3)
    assert ups["openai"].requests[0].json == {
        "model": "gpt-4o", "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}],
        "max_completion_tokens": 50, "temperature": 0.3, "top_p": 0.9, "stop": ["END"]}


def test_tool_round_trip_through_openai(client, ups):
    call = {"id": "call_abc", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}
    ups["openai"].add(Reply(json=chat_completion("", finish_reason="tool_calls", tool_calls=[call])),
                      Reply(json=chat_completion("18 degrees")))
    messages = [{"role": "user", "content": "Weather in Paris?"}]
    first = client.chat(model="openai/gpt-4o", messages=messages, tools=WEATHER, tool_choice="REQUIRED")
    assert first.finish_reason == "TOOL_CALL"
    assert (first.message.tool_calls[0].id, first.message.tool_calls[0].function.arguments) == \
        ("call_abc", "{\"city\":\"Paris\"}")
    messages += [{"role": "assistant", "tool_calls": [call]},
                 {"role": "tool", "tool_call_id": "call_abc", "content": [{"type": "text", "text": "18C"}]}]
    second = client.chat(model="openai/gpt-4o", messages=messages, tools=WEATHER)
    assert second.message.content[0].text == "18 degrees"
    assert ups["openai"].requests[0].json["tool_choice"] == "required"
    assert ups["openai"].requests[1].json["messages"][1:] == [
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_abc", "content": "18C"}]


def test_stream_from_openai(client, ups):
    ups["openai"].add(Reply(chunks=sse(*openai_text_then_tool_call())))
    events = list(client.chat_stream(model="openai/gpt-4o", messages=[{"role": "user", "content": "Weather?"}],
                                     tools=WEATHER))
    assert [e.type for e in events] == ["message-start", "content-start", "content-delta", "content-end",
                                        "tool-call-start", "tool-call-delta", "tool-call-delta", "tool-call-end",
                                        "message-end"]
    assert events[2].delta.message.content.text == "Checking."
    assert events[4].delta.message.tool_calls.function.name == "get_weather"
    assert "".join(e.delta.message.tool_calls.function.arguments for e in events[5:7]) == "{\"city\":\"Rome\"}"
    assert events[-1].delta.finish_reason == "TOOL_CALL" and events[-1].delta.usage.tokens.output_tokens == 8


def test_stream_with_thinking_from_cohere(client, ups):
    raw = (FIXTURES / "thinking.stream").read_bytes()
    ups["cohere"].add(Reply(chunks=[raw[:100], raw[100:]]))
    events = list(client.chat_stream(model="command-a-reasoning-08-2025", messages=[{"role": "user", "content": "?"}],
                                     thinking={"type": "enabled", "token_budget": 2000}))
    kinds = [(e.type, getattr(getattr(e.delta.message, "content", None), "type", None)) for e in events
             if e.type == "content-start"]
    assert kinds == [("content-start", "thinking"), ("content-start", "text")]
    assert ups["cohere"].requests[0].path == "/v2/chat"


def test_errors(client, ups, url):
    ups["openai"].add(Reply(status=429, json={"error": {"message": "slow down"}}))
    with pytest.raises(cohere.errors.TooManyRequestsError):
        client.chat(model="openai/gpt-4o", messages=[{"role": "user", "content": "hi"}],
                    request_options={"max_retries": 0})
    r = requests.post(url + "/cohere/v2/chat", json={"model": "openai/gpt-4o", "messages": [{"role": "robot"}]})
    assert r.status_code == 400 and "messages[0].role" in r.json()["message"]


def test_failure_mid_stream_ends_with_an_error(url, ups):
    chunks = sse(*openai_chunks("partial")[:2], done=False)
    ups["openai"].add(Reply(chunks=[*chunks, b'data: {"error":{"message":"boom","type":"server_error"}}\n\n']))
    r = requests.post(url + "/cohere/v2/chat", json={"model": "openai/gpt-4o", "stream": True,
                                                     "messages": [{"role": "user", "content": "hi"}]})
    assert "event: message-end" in r.text and '"finish_reason":"ERROR"' in r.text and "boom" in r.text


def test_fallbacks_and_virtual_key(ups, serve):
    url = serve(gateway_config(ups, governance={"virtual_keys": [{"id": "vk4", "name": "team", "value": VK}]}))
    ups["openai"].add(Reply(status=500, json={"error": {"message": "down"}}))
    ups["cohere"].add(Reply(json={"id": "c1", "finish_reason": "COMPLETE", "message": {
        "role": "assistant", "content": [{"type": "text", "text": "from cohere"}]},
        "usage": {"billed_units": {"input_tokens": 1, "output_tokens": 2}}}))
    with cohere.ClientV2(api_key=VK, base_url=url + "/cohere") as c:
        resp = c.chat(model="openai/gpt-4o", messages=[{"role": "user", "content": "hi"}],
                      request_options={"additional_headers": {"x-bf-fallbacks": "cohere/command-r"}})
        assert resp.message.content[0].text == "from cohere"
    with cohere.ClientV2(api_key="wrong", base_url=url + "/cohere") as c:
        with pytest.raises(cohere.errors.UnauthorizedError):
            c.chat(model="openai/gpt-4o", messages=[{"role": "user", "content": "hi"}])
