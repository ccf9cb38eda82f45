"""The Bedrock route (/bedrock/model/{modelId}/converse, /converse-stream) end to end: boto3's bedrock-runtime
client against the gateway (fake credentials: the gateway does not check SigV4), with fake OpenAI and
Bedrock upstreams behind it; and the event-stream encoder pinned by botocore's own decoder."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.eventstream import EventStreamBuffer
from botocore.exceptions import ClientError, EventStreamError

from bifrost_wsgi.wire.eventstream import decode, encode
from tests.conftest import provider_config
from tests.fakes import Reply, chat_completion, fake_upstreams, openai_chunks, openai_text_then_tool_call, sse

FIXTURES = Path(__file__).parent / "fixtures" / "bedrock"
VK = "sk-bf-test-virtual-key-0003"
WEATHER = {"tools": [{"toolSpec": {"name": "get_weather", "description": "Weather for a city", "inputSchema": {
    "json": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}}]}


@pytest.mark.parametrize("headers, payload", [
    ({":event-type": "messageStart", ":content-type": "application/json", ":message-type": "event"},
     b'{"role":"assistant"}'),
    ({":exception-type": "throttlingException", ":message-type": "exception"}, b'{"message":"slow down \xc3\xa9"}'),
    ({}, b""),
])
def test_encoder_is_what_botocore_decodes(headers, payload):
    raw = encode(headers, payload)
    buffer = EventStreamBuffer()
    buffer.add_data(raw)
    (message,) = list(buffer)
    assert (message.headers, message.payload) == (headers, payload)
    assert [(m.headers, m.payload) for m in decode([raw[:5], raw[5:]])] == [(headers, payload)]


@pytest.fixture
def ups():
    with fake_upstreams("openai", "bedrock") as fakes:
        yield fakes


def gateway_config(ups, **extra) -> dict:
    bedrock = {"keys": [{"name": "b", "value": "", "models": [], "bedrock_key_config": {
        "access_key": "AKIDEXAMPLE", "secret_key": "bedrock-SECRET", "region": "us-east-1"}}],
        "network_config": {"base_url": ups["bedrock"].url, "default_request_timeout_in_seconds": 5}}
    return {"providers": {"openai": provider_config(ups["openai"].url), "bedrock": bedrock}, **extra}


def make_client(url: str, *, headers: dict | None = None):
    client = boto3.client("bedrock-runtime", endpoint_url=url + "/bedrock", region_name="us-east-1",
                          aws_access_key_id="fake", aws_secret_access_key="fake",
                          config=Config(retries={"total_max_attempts": 1}))

    def add_headers(request, **_):
        request.headers.update(headers or {})

    client.meta.events.register("before-send.bedrock-runtime.*", add_headers)
    return client


@pytest.fixture
def url(ups, serve):
    return serve(gateway_config(ups))


@pytest.fixture
def client(url):
    client = make_client(url)
    yield client
    client.close()


def test_converse_text_from_openai(client, ups):
    ups["openai"].add(Reply(json=chat_completion("Hi there")))
    resp = client.converse(modelId="openai/gpt-4o", system=[{"text": "Be brief."}],
                           messages=[{"role": "user", "content": [{"text": "Hello"}]}],
                           inferenceConfig={"maxTokens": 50, "temperature": 0.2, "stopSequences": ["END"]})
    assert resp["output"]["message"] == {"role": "assistant", "content": [{"text": "Hi there"}]}
    assert resp["stopReason"] == "end_turn"
    assert resp["usage"] == {"inputTokens": 9, "outputTokens": 3, "totalTokens": 12}
    assert ups["openai"].requests[0].json == {
        "model": "gpt-4o", "messages": [{"role": "system", "content": "Be brief."},
                                        {"role": "user", "content": [{"type": "text", "text": "Hello"}]}],
        "max_completion_tokens": 50, "temperature": 0.2, "stop": ["END"]}


def test_tool_round_trip_through_openai(client, ups):
    call = {"id": "call_abc", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}
    ups["openai"].add(Reply(json=chat_completion("", finish_reason="tool_calls", tool_calls=[call])),
                      Reply(json=chat_completion("18 degrees")))
    messages = [{"role": "user", "content": [{"text": "Weather in Paris?"}]}]
    first = client.converse(modelId="openai/gpt-4o", messages=messages,
                            toolConfig={**WEATHER, "toolChoice": {"any": {}}})
    assert first["stopReason"] == "tool_use"
    use = first["output"]["message"]["content"][0]["toolUse"]
    assert use == {"toolUseId": "call_abc", "name": "get_weather", "input": {"city": "Paris"}}
    messages += [first["output"]["message"],
                 {"role": "user", "content": [{"toolResult": {"toolUseId": "call_abc", "content": [{"json": {"t": 18}}]}}]}]
    second = client.converse(modelId="openai/gpt-4o", messages=messages, toolConfig=WEATHER)
    assert second["output"]["message"]["content"] == [{"text": "18 degrees"}]
    assert ups["openai"].requests[0].json["tool_choice"] == "required"
    assert ups["openai"].requests[1].json["messages"][1:] == [
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_abc", "content": "{\"t\":18}"}]


def test_converse_stream_from_openai(client, ups):
    ups["openai"].add(Reply(chunks=sse(*openai_text_then_tool_call())))
    resp = client.converse_stream(modelId="openai/gpt-4o", toolConfig=WEATHER,
                                  messages=[{"role": "user", "content": [{"text": "Weather in Rome?"}]}])
    events = list(resp["stream"])
    names = [next(iter(e)) for e in events]
    assert names == ["messageStart", "contentBlockDelta", "contentBlockStop", "contentBlockStart", "contentBlockDelta",
                     "contentBlockDelta", "contentBlockStop", "messageStop", "metadata"]
    assert events[1]["contentBlockDelta"] == {"contentBlockIndex": 0, "delta": {"text": "Checking."}}
    assert events[3]["contentBlockStart"] == {"contentBlockIndex": 1, "start": {"toolUse": {
        "toolUseId": "call_1", "name": "get_weather"}}}
    assert "".join(e["contentBlockDelta"]["delta"]["toolUse"]["input"] for e in events[4:6]) == '{"city":"Rome"}'
    assert events[7]["messageStop"] == {"stopReason": "tool_use"}
    assert events[8]["metadata"]["usage"] == {"inputTokens": 20, "outputTokens": 8, "totalTokens": 28}


def test_converse_stream_from_bedrock(client, ups):
    raw = (FIXTURES / "stream_text.stream").read_bytes()
    ups["bedrock"].add(Reply(chunks=[raw[:40], raw[40:]], content_type="application/vnd.amazon.eventstream"))
    resp = client.converse_stream(modelId="anthropic.claude-3-haiku-20240307-v1:0",
                                  messages=[{"role": "user", "content": [{"text": "hi"}]}])
    events = list(resp["stream"])
    assert events[0] == {"messageStart": {"role": "assistant"}} and "metadata" in events[-1]
    text = "".join(e["contentBlockDelta"]["delta"].get("text", "") for e in events if "contentBlockDelta" in e)
    expected = [e["data"] for e in json.loads((FIXTURES / "stream_text.events.json").read_text())
                if e.get("event") == "contentBlockDelta"]
    assert text == "".join(e["delta"].get("text", "") for e in expected)
    assert ups["bedrock"].requests[0].path == "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse-stream"


def test_errors_carry_the_exception_name(client, ups):
    ups["openai"].add(Reply(status=429, json={"error": {"message": "slow down"}}))
    with pytest.raises(client.exceptions.ThrottlingException) as info:
        client.converse(modelId="openai/gpt-4o", messages=[{"role": "user", "content": [{"text": "hi"}]}])
    assert info.value.response["Error"]["Message"] == "slow down"
    with pytest.raises(client.exceptions.ValidationException):
        client.converse(modelId="openai/gpt-4o", messages=[])


def test_invalid_body_is_a_validation_exception(url):
    r = requests.post(url + "/bedrock/model/openai%2Fgpt-4o/converse", json={"messages": [{"role": "robot", "content": []}]})
    assert r.status_code == 400 and r.headers["x-amzn-ErrorType"] == "ValidationException"
    assert "messages[0].role" in r.json()["message"]


def test_failure_mid_stream_is_an_exception_frame(client, ups):
    chunks = sse(*openai_chunks("partial")[:2], done=False)
    ups["openai"].add(Reply(chunks=[*chunks, b'data: {"error":{"message":"boom","type":"server_error"}}\n\n']))
    resp = client.converse_stream(modelId="openai/gpt-4o", messages=[{"role": "user", "content": [{"text": "hi"}]}])
    seen = []
    with pytest.raises(EventStreamError) as info:
        for event in resp["stream"]:
            seen.append(event)
    resp["stream"].close()
    assert seen[0] == {"messageStart": {"role": "assistant"}}
    assert info.value.response["Error"]["Code"] == "internalServerException"


def test_fallbacks_and_virtual_key(ups, serve):
    url = serve(gateway_config(ups, governance={"virtual_keys": [{"id": "vk3", "name": "team", "value": VK}]}))
    ups["openai"].add(Reply(status=500, json={"error": {"message": "down"}}))
    ups["bedrock"].add(Reply(json={"output": {"message": {"role": "assistant", "content": [{"text": "from bedrock"}]}},
                                   "stopReason": "end_turn", "usage": {"inputTokens": 1, "outputTokens": 2, "totalTokens": 3}}))
    good = make_client(url, headers={"x-bf-vk": VK, "x-bf-fallbacks": "bedrock/amazon.nova-lite-v1:0"})
    resp = good.converse(modelId="openai/gpt-4o", messages=[{"role": "user", "content": [{"text": "hi"}]}])
    good.close()
    assert resp["output"]["message"]["content"] == [{"text": "from bedrock"}]
    anonymous = make_client(url)
    with pytest.raises(ClientError) as info:
        anonymous.converse(modelId="openai/gpt-4o", messages=[{"role": "user", "content": [{"text": "hi"}]}])
    anonymous.close()
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 401
    assert info.value.response["Error"]["Code"] == "AccessDeniedException"
