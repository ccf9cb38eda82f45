"""Bad requests get the Bifrost error envelope with the right status, message and param (CONTRACT §5, §8),
over real HTTP, and never reach the provider."""

import json

import pytest
import requests

from tests.conftest import provider_config

USER = [{"role": "user", "content": "hi"}]


def body(**fields):
    out = {"model": "openai/gpt-4o-mini", "messages": USER}
    out.update(fields)
    return out


# (id, request body (dict, or raw bytes), status, message (exact, or prefix ending in "…"), param)
CASES = [
    ("not json", b"{nope", 400, "invalid request format: …", None),
    ("empty body", b"", 400, "invalid request format: …", None),
    ("json array", b"[]", 400, "invalid request format: …", None),
    ("NaN is not JSON", b'{"model":"openai/x","messages":[{"role":"user","content":"hi"}],"temperature":NaN}',
     400, "invalid request format: …", None),
    ("model missing", {"messages": USER}, 400, "model should be in provider/model format", "model"),
    ("model not a string", body(model=5), 400, "model should be in provider/model format", "model"),
    ("model without provider", body(model="gpt-4o"), 400, "model should be in provider/model format", "model"),
    ("model empty half", body(model="openai/"), 400, "model should be in provider/model format", "model"),
    ("model empty provider", body(model="/gpt-4o"), 400, "model should be in provider/model format", "model"),
    ("messages missing", {"model": "openai/gpt-4o"}, 400, "messages is required for chat completion", "messages"),
    ("messages empty", body(messages=[]), 400, "messages is required for chat completion", "messages"),
    ("messages not array", body(messages="hi"), 400, "messages is required for chat completion", "messages"),
    ("model checked before messages", {"model": "x", "messages": []}, 400,
     "model should be in provider/model format", "model"),
    ("message not object", body(messages=["hi"]), 400, "invalid request format: messages[0]: must be an object",
     "messages[0]"),
    ("bad role", body(messages=[{"role": "robot", "content": "x"}]), 400,
     "invalid request format: messages[0].role: must be one of assistant, user, system, tool, developer",
     "messages[0].role"),
    ("role missing", body(messages=[{"content": "x"}]), 400, "invalid request format: messages[0].role: is required",
     "messages[0].role"),
    ("content wrong type", body(messages=[{"role": "user", "content": 5}]), 400,
     "invalid request format: messages[0].content: must be a string or an array of content parts",
     "messages[0].content"),
    ("user content missing", body(messages=[{"role": "user"}]), 400,
     "invalid request format: messages[0].content: is required", "messages[0].content"),
    ("bad part type", body(messages=[{"role": "user", "content": [{"type": "video", "video": {}}]}]), 400,
     "invalid request format: messages[0].content[0].type: must be one of text, image_url, input_audio, file, refusal",
     "messages[0].content[0].type"),
    ("image url not string", body(messages=[USER[0], USER[0], {"role": "user", "content": [
        {"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": 7}}]}]), 400,
     "invalid request format: messages[2].content[1].image_url.url: must be a string",
     "messages[2].content[1].image_url.url"),
    ("image url missing", body(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]), 400,
     "invalid request format: messages[0].content[0].image_url.url: is required",
     "messages[0].content[0].image_url.url"),
    ("image detail enum", body(messages=[{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "max"}}]}]), 400,
     "invalid request format: messages[0].content[0].image_url.detail: must be one of low, high, auto",
     "messages[0].content[0].image_url.detail"),
    ("text part without text", body(messages=[{"role": "user", "content": [{"type": "text"}]}]), 400,
     "invalid request format: messages[0].content[0].text: is required for a text content part",
     "messages[0].content[0].text"),
    ("tool message without id", body(messages=[{"role": "tool", "content": "42"}]), 400,
     "invalid request format: messages[0].tool_call_id: is required for tool messages", "messages[0].tool_call_id"),
    ("tool call arguments not string", body(messages=[{"role": "assistant", "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": {"a": 1}}}]}]), 400,
     "invalid request format: messages[0].tool_calls[0].function.arguments: must be a string",
     "messages[0].tool_calls[0].function.arguments"),
    ("temperature too high", body(temperature=2.5), 400,
     "invalid request format: temperature: must be between 0 and 2", "temperature"),
    ("temperature string", body(temperature="hot"), 400, "invalid request format: temperature: must be a number",
     "temperature"),
    ("temperature bool", body(temperature=True), 400, "invalid request format: temperature: must be a number",
     "temperature"),
    ("top_p above 1", body(top_p=1.5), 400, "invalid request format: top_p: must be between 0 and 1", "top_p"),
    ("presence_penalty range", body(presence_penalty=-3), 400,
     "invalid request format: presence_penalty: must be between -2 and 2", "presence_penalty"),
    ("frequency_penalty range", body(frequency_penalty=2.01), 400,
     "invalid request format: frequency_penalty: must be between -2 and 2", "frequency_penalty"),
    ("max_tokens float", body(max_tokens=10.5), 400, "invalid request format: max_tokens: must be an integer",
     "max_tokens"),
    ("max_completion_tokens zero", body(max_completion_tokens=0), 400,
     "invalid request format: max_completion_tokens: must be at least 1", "max_completion_tokens"),
    ("n zero", body(n=0), 400, "invalid request format: n: must be between 1 and 128", "n"),
    ("top_logprobs range", body(top_logprobs=21), 400, "invalid request format: top_logprobs: must be between 0 and 20",
     "top_logprobs"),
    ("logit_bias value", body(logit_bias={"50256": "x"}), 400,
     "invalid request format: logit_bias.50256: must be a number", "logit_bias.50256"),
    ("stream not bool", body(stream="yes"), 400, "invalid request format: stream: must be a boolean", "stream"),
    ("stop wrong type", body(stop=5), 400, "invalid request format: stop: must be a string or an array of strings",
     "stop"),
    ("stop list item", body(stop=["a", 1]), 400, "invalid request format: stop[1]: must be a string", "stop[1]"),
    ("tool_choice bad string", body(tool_choice="sometimes"), 400,
     "invalid request format: tool_choice: must be one of none, auto, required", "tool_choice"),
    ("tool_choice function without name", body(tool_choice={"type": "function", "function": {}}), 400,
     "invalid request format: tool_choice.function.name: is required", "tool_choice.function.name"),
    ("tool without function", body(tools=[{"type": "function"}]), 400,
     "invalid request format: tools[0].function: is required for a function tool", "tools[0].function"),
    ("tool bad type", body(tools=[{"type": "retrieval"}]), 400,
     "invalid request format: tools[0].type: must be one of function, custom", "tools[0].type"),
    ("tool parameters not object", body(tools=[{"type": "function", "function": {"name": "f", "parameters": []}}]),
     400, "invalid request format: tools[0].function.parameters: must be an object", "tools[0].function.parameters"),
    ("response_format type", body(response_format={"type": "xml"}), 400,
     "invalid request format: response_format.type: must be one of text, json_object, json_schema",
     "response_format.type"),
    ("json_schema missing", body(response_format={"type": "json_schema"}), 400,
     "invalid request format: response_format.json_schema: is required when type is json_schema",
     "response_format.json_schema"),
    ("reasoning effort enum", body(reasoning={"effort": "extreme"}), 400,
     "invalid request format: reasoning.effort: must be one of none, minimal, low, medium, high, xhigh",
     "reasoning.effort"),
    ("stream_options type", body(stream_options={"include_usage": "yes"}), 400,
     "invalid request format: stream_options.include_usage: must be a boolean", "stream_options.include_usage"),
    ("verbosity enum", body(verbosity="loud"), 400,
     "invalid request format: verbosity: must be one of low, medium, high", "verbosity"),
    ("metadata not object", body(metadata=[1]), 400, "invalid request format: metadata: must be an object",
     "metadata"),
    ("fallbacks not array", body(fallbacks="openai/x"), 400, "invalid request format: fallbacks: must be an array",
     "fallbacks"),
    ("fallback bad format", body(fallbacks=["gpt-4o"]), 400,
     "invalid request format: fallbacks[0]: must be in provider/model format", "fallbacks[0]"),
    ("too many fallbacks", body(fallbacks=["openai/gpt-4o"] * 11), 400,
     "invalid request format: fallbacks: must have at most 10 items", "fallbacks"),
    ("not UTF-8", b'{"model":"openai/x","messages":[{"role":"user","content":"\xff"}]}', 400,
     "invalid request format: request body is not valid UTF-8 (byte 58)", None),
    ("lone surrogate", body(user="\ud800"), 400, "invalid request format: user: holds a lone UTF-16 surrogate",
     "user"),
    ("lone surrogate before other violations", body(temperature=9, stop=["\udc00"]), 400,
     "invalid request format: stop[0]: holds a lone UTF-16 surrogate", "stop[0]"),
    ("first violation in document order", {"model": "openai/x", "top_p": 9, "messages": USER, "temperature": 9},
     400, "invalid request format: top_p: must be between 0 and 1", "top_p"),
    ("document order inside messages", body(messages=[{"role": "user", "content": "ok"},
                                                      {"role": "user", "content": 1},
                                                      {"role": "bad", "content": "x"}]), 400,
     "invalid request format: messages[1].content: must be a string or an array of content parts",
     "messages[1].content"),
    ("unknown provider", body(model="nosuch/model"), 400, "provider nosuch is not configured", "model"),
    ("provider without chat", body(model="elevenlabs/eleven_v3"), 400,
     "chat_completion is not supported by elevenlabs provider", None),
    ("key does not allow model", body(model="groq/llama-3.3-70b"), 400,
     "no keys found that support model: llama-3.3-70b", "model"),
]


@pytest.fixture(scope="module")
def gw():
    from tests.fakes import FakeUpstream
    from tests.servers import LiveServer
    from bifrost_wsgi import make_app

    fake = FakeUpstream()
    groq = provider_config(fake.url, key="gsk-test")
    groq["keys"][0]["models"] = ["only-this-model"]
    server = LiveServer(make_app({
        "client": {"max_request_body_size_mb": 0.01},
        "providers": {"openai": provider_config(fake.url), "groq": groq},
    }))
    yield server.url, fake
    server.close()
    fake.close()


@pytest.mark.parametrize("payload,status,message,param", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_request_gets_envelope(gw, payload, status, message, param):
    url, fake = gw
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    r = requests.post(url + "/v1/chat/completions", data=data, headers={"Content-Type": "application/json"})
    assert r.status_code == status
    assert r.headers["Content-Type"] == "application/json"
    env = r.json()
    assert env["is_bifrost_error"] is False
    assert env["status_code"] == status
    if message.endswith("…"):
        assert env["error"]["message"].startswith(message[:-1])
    else:
        assert env["error"]["message"] == message
    assert env["error"].get("param") == param
    assert set(env["extra_fields"]) == {"provider", "model_requested", "request_type"}
    assert fake.requests == []


def test_oversized_body_is_413_before_reading(gw):
    url, fake = gw
    big = json.dumps(body(messages=[{"role": "user", "content": "x" * 20000}])).encode()
    r = requests.post(url + "/v1/chat/completions", data=big)
    assert r.status_code == 413
    assert r.json()["status_code"] == 413
    assert "larger than the limit" in r.json()["error"]["message"]


ACCEPTED = [
    ("assistant content null with tool_calls", body(messages=[
        USER[0],
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "42"}])),
    ("null optional fields", body(temperature=None, tools=None, stop=None, user=None)),
    ("every content part type", body(messages=[{"role": "user", "content": [
        {"type": "text", "text": "a", "cache_control": {"type": "ephemeral", "ttl": "5m"}},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}},
        {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
        {"type": "file", "file": {"file_data": "data:application/pdf;base64,AAAA", "filename": "a.pdf"}},
    ]}])),
    ("tool_choice forms", body(tools=[{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
                               tool_choice={"type": "function", "function": {"name": "f"}})),
    ("max_tokens alias", body(max_tokens=5)),
    ("reasoning_effort alias", body(reasoning_effort="low")),
]


@pytest.mark.parametrize("payload", [c[1] for c in ACCEPTED], ids=[c[0] for c in ACCEPTED])
def test_valid_requests_reach_the_provider(gw, payload):
    from tests.fakes import Reply, chat_completion

    url, fake = gw
    fake.add(Reply(json=chat_completion()))
    before = len(fake.requests)
    r = requests.post(url + "/v1/chat/completions", json=payload)
    assert r.status_code == 200, r.text
    assert len(fake.requests) == before + 1
    sent = fake.requests[-1].json
    assert "fallbacks" not in sent
    assert all(v is not None for v in sent.values())
