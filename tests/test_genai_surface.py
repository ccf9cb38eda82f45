"""The Gemini route (/genai/v1beta/models/…) end to end: the official google-genai SDK against the gateway, with
fake OpenAI and Gemini upstreams behind it."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import requests
from google import genai
from google.genai import errors as genai_errors, types

from tests.conftest import provider_config
from tests.fakes import Reply, chat_completion, fake_upstreams, openai_chunks, sse

FIXTURES = Path(__file__).parent / "fixtures"
FIXTURE_SIGNATURE = b"CiQBVKhc7sIGnatureAA=="  # not base64: the SDK decodes signatures, so the tests use
GEMINI_SIGNATURE = "CiQBVKhc7sIGbmF0dXJl"  # this one in its place
VK = "sk-bf-test-virtual-key-0002"

WEATHER = types.Tool(function_declarations=[types.FunctionDeclaration(
    name="get_weather", description="Weather for a city",
    parameters_json_schema={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})])


@pytest.fixture
def ups():
    with fake_upstreams("openai", "gemini") as fakes:
        yield fakes


def gateway_config(ups, **extra) -> dict:
    return {"providers": {"openai": provider_config(ups["openai"].url),
                          "gemini": provider_config(ups["gemini"].url + "/v1beta", key="gemini-key-SECRET")}, **extra}


@pytest.fixture
def url(ups, serve):
    return serve(gateway_config(ups)) + "/genai"


def make_client(url: str, key: str = "unused") -> genai.Client:
    return genai.Client(api_key=key, http_options=types.HttpOptions(base_url=url, retry_options=None))


@pytest.fixture
def client(url):
    return make_client(url)


def sse_bytes(path: str) -> list[bytes]:
    data = (FIXTURES / path).read_bytes().replace(FIXTURE_SIGNATURE, GEMINI_SIGNATURE.encode())
    return [data[i:i + 64] for i in range(0, len(data), 64)]


def test_text_from_openai(client, ups):
    ups["openai"].add(Reply(json=chat_completion("Hi there")))
    resp = client.models.generate_content(
        model="openai/gpt-4o", contents="Hello",
        config=types.GenerateContentConfig(system_instruction="Be brief.", max_output_tokens=50, temperature=0.3,
                                           stop_sequences=["END"], top_k=5))
    assert resp.text == "Hi there"
    assert resp.candidates[0].finish_reason == types.FinishReason.STOP
    assert (resp.usage_metadata.prompt_token_count, resp.usage_metadata.candidates_token_count) == (9, 3)
    sent = ups["openai"].requests[0]
    assert sent.path == "/v1/chat/completions"
    assert sent.json == {"model": "gpt-4o", "messages": [{"role": "system", "content": "Be brief."},
                                                         {"role": "user", "content": [{"type": "text", "text": "Hello"}]}],
                         "temperature": 0.3, "max_completion_tokens": 50, "stop": ["END"]}


def test_function_call_round_trip_through_openai(client, ups):
    call = {"id": "call_abc", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}
    ups["openai"].add(Reply(json=chat_completion("", finish_reason="tool_calls", tool_calls=[call])),
                      Reply(json=chat_completion("18 degrees")))
    config = types.GenerateContentConfig(tools=[WEATHER], automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
                                         tool_config=types.ToolConfig(function_calling_config=types.FunctionCallingConfig(mode="ANY")))
    contents = [types.Content(role="user", parts=[types.Part(text="Weather in Paris?")])]
    first = client.models.generate_content(model="openai/gpt-4o", contents=contents, config=config)
    fc = first.function_calls[0]
    assert (fc.name, fc.args) == ("get_weather", {"city": "Paris"})
    contents += [first.candidates[0].content,
                 types.Content(role="user", parts=[types.Part.from_function_response(name="get_weather",
                                                                                     response={"temp": 18})])]
    second = client.models.generate_content(model="openai/gpt-4o", contents=contents, config=config)
    assert second.text == "18 degrees"
    body = ups["openai"].requests[0].json
    assert body["tools"][0]["function"]["name"] == "get_weather" and body["tool_choice"] == "required"
    replay = ups["openai"].requests[1].json["messages"]
    assert replay[1]["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}
    assert replay[2] == {"role": "tool", "tool_call_id": replay[1]["tool_calls"][0]["id"], "content": "{\"temp\":18}"}


def test_stream_from_openai(client, ups):
    ups["openai"].add(Reply(chunks=sse(*openai_chunks("Hel", "lo"))))
    chunks = list(client.models.generate_content_stream(model="openai/gpt-4o", contents="hi"))
    assert "".join(c.text or "" for c in chunks) == "Hello"
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert chunks[-1].usage_metadata.candidates_token_count == 2
    assert ups["openai"].requests[0].json["stream_options"] == {"include_usage": True}


def test_stream_from_gemini_with_thoughts_and_function_calls(client, ups):
    ups["gemini"].add(Reply(chunks=sse_bytes("gemini/function_call.stream")))
    chunks = list(client.models.generate_content_stream(
        model="gemini-3-pro-preview", contents="Weather in Paris and Rome?",
        config=types.GenerateContentConfig(tools=[WEATHER], thinking_config=types.ThinkingConfig(include_thoughts=True))))
    thoughts = [p.text for c in chunks for p in c.candidates[0].content.parts or () if p.thought]
    assert "**Planning**\nI need the weather for both cities." in thoughts
    calls = [p for c in chunks for p in c.candidates[0].content.parts or () if p.function_call]
    assert [(p.function_call.name, p.function_call.args) for p in calls] == [
        ("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Rome"})]
    assert calls[0].thought_signature == base64.b64decode(GEMINI_SIGNATURE)
    rec = ups["gemini"].requests[0]
    assert rec.path == "/v1beta/models/gemini-3-pro-preview:streamGenerateContent" and rec.query == {"alt": ["sse"]}


def test_signature_goes_back_to_gemini(url, ups):
    answer = {"candidates": [{"content": {"role": "model", "parts": [{"text": "ok"}]}, "finishReason": "STOP"}]}
    ups["gemini"].add(Reply(json=answer))
    contents = [{"role": "user", "parts": [{"text": "Weather?"}]},
                {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                                             "thoughtSignature": GEMINI_SIGNATURE}]},
                {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"temp": 18}}}]}]
    r = requests.post(url + "/v1beta/models/gemini-3-pro-preview:generateContent",
                      json={"contents": contents, "tools": [{"functionDeclarations": [{"name": "get_weather"}]}]})
    assert r.status_code == 200 and r.json()["candidates"][0]["content"]["parts"] == [{"text": "ok"}]
    sent = ups["gemini"].requests[0].json["contents"]
    assert sent[1]["parts"][0]["thoughtSignature"] == GEMINI_SIGNATURE
    assert sent[2]["parts"][0]["functionResponse"]["name"] == "get_weather"


def test_count_tokens_is_an_estimate(client, ups):
    counted = client.models.count_tokens(model="openai/gpt-4o", contents="Hello " * 40)
    assert 40 <= counted.total_tokens <= 120 and not ups["openai"].requests


def test_models_list_and_get(url):
    r = requests.get(url + "/v1beta/models")
    assert r.status_code == 200 and isinstance(r.json()["models"], list)
    r = requests.get(url + "/v1beta/models/nosuch-model")
    assert r.status_code == 404 and r.json()["error"]["status"] == "NOT_FOUND"


@pytest.mark.parametrize("status, google", [(429, "RESOURCE_EXHAUSTED"), (401, "UNAUTHENTICATED"), (500, "INTERNAL")])
def test_upstream_errors_in_googles_envelope(client, ups, status, google):
    ups["openai"].add(Reply(status=status, json={"error": {"message": "nope"}}))
    with pytest.raises(genai_errors.APIError) as info:
        client.models.generate_content(model="openai/gpt-4o", contents="hi")
    assert info.value.code == status and info.value.status == google


@pytest.mark.parametrize("body, param", [
    ({}, "contents"),
    ({"contents": [{"role": "user", "parts": [{"text": 5}]}]}, "contents[0].parts[0].text"),
    ({"contents": [{"parts": []}], "generationConfig": {"temperature": 3}}, "generationConfig.temperature"),
    ({"contents": [{"parts": [{"text": "x"}]}], "tools": [{"googleSearch": {}}]}, "tools[0].googleSearch"),
])
def test_invalid_requests(url, body, param):
    r = requests.post(url + "/v1beta/models/openai/gpt-4o:generateContent", json=body)
    assert r.status_code == 400 and r.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert param in r.json()["error"]["message"]


def test_error_mid_stream(url, ups):
    chunks = sse(*openai_chunks("partial")[:2], done=False)
    ups["openai"].add(Reply(chunks=[*chunks, b'data: {"error":{"message":"boom","type":"server_error"}}\n\n']))
    r = requests.post(url + "/v1beta/models/openai/gpt-4o:streamGenerateContent?alt=sse",
                      json={"contents": [{"parts": [{"text": "hi"}]}]})
    events = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: ")]
    assert events[0]["candidates"][0]["content"]["parts"] == [{"text": "partial"}]
    assert events[-1]["error"]["status"] == "INTERNAL" and "[DONE]" not in r.text


def test_fallbacks_and_virtual_key(ups, serve):
    url = serve(gateway_config(ups, governance={"virtual_keys": [{"id": "vk2", "name": "team", "value": VK}]}))
    ups["openai"].add(Reply(status=500, json={"error": {"message": "down"}}))
    ups["gemini"].add(Reply(json={"candidates": [{"content": {"role": "model", "parts": [{"text": "from gemini"}]},
                                                  "finishReason": "STOP"}]}))
    client = genai.Client(api_key=VK, http_options=types.HttpOptions(
        base_url=url + "/genai", headers={"x-bf-fallbacks": "gemini/gemini-2.5-flash"}))
    assert client.models.generate_content(model="openai/gpt-4o", contents="hi").text == "from gemini"
    wrong = make_client(url + "/genai", key="wrong")
    with pytest.raises(genai_errors.APIError) as info:
        wrong.models.generate_content(model="openai/gpt-4o", contents="hi")
    assert info.value.code == 401
