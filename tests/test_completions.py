"""POST /v1/completions end to end with the official openai SDK: natively where the provider has the API
(forwarded as it is), and through the chat APIs of Anthropic and Bedrock."""

from __future__ import annotations

import json
from pathlib import Path

import openai
import pytest
import requests

from tests.conftest import provider_config
from tests.fakes import Reply, sse

FIXTURES = Path(__file__).parent / "fixtures"

# https://platform.openai.com/docs/api-reference/completions/object
COMPLETION = {"id": "cmpl-uqkvlQyYK7bGYrRHQ0eXlWi7", "object": "text_completion", "created": 1589478378,
              "model": "gpt-3.5-turbo-instruct", "system_fingerprint": "fp_44709d6fcb",
              "choices": [{"text": "\n\nThis is indeed a test", "index": 0, "logprobs": None, "finish_reason": "length"}],
              "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}}


def completion_chunks(*texts: str) -> list[dict]:
    base = {"id": "cmpl-s", "object": "text_completion", "created": 1589478378, "model": "gpt-3.5-turbo-instruct"}
    out = [{**base, "choices": [{"text": t, "index": 0, "logprobs": None, "finish_reason": None}]} for t in texts]
    out.append({**base, "choices": [{"text": "", "index": 0, "logprobs": None, "finish_reason": "stop"}]})
    out.append({**base, "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": len(texts),
                                                 "total_tokens": 3 + len(texts)}})
    return out


def sdk(gw: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw + "/v1", api_key="unused", max_retries=0)


def bedrock_config(url: str) -> dict:
    return {"keys": [{"name": "b", "value": "", "models": [], "bedrock_key_config": {
        "access_key": "AKIDEXAMPLE", "secret_key": "wJalrXUtnFEMI", "region": "us-west-2"}}],
        "network_config": {"base_url": url, "default_request_timeout_in_seconds": 5}}


def test_native_answer_and_request(upstream, serve):
    upstream.add(Reply(json=COMPLETION))
    gw = serve({"providers": {"openai": provider_config(upstream.url)}})
    resp = sdk(gw).completions.create(model="openai/gpt-3.5-turbo-instruct", prompt="Say this is a test",
                                      max_tokens=7, temperature=0, echo=False)
    assert resp.choices[0].text == "\n\nThis is indeed a test" and resp.usage.total_tokens == 12
    sent = upstream.requests[0]
    assert sent.path == "/v1/completions"
    assert sent.json == {"model": "gpt-3.5-turbo-instruct", "prompt": "Say this is a test", "max_tokens": 7,
                         "temperature": 0, "echo": False}


def test_native_stream_ends_with_done(upstream, serve):
    upstream.add(Reply(chunks=sse(*completion_chunks("Hel", "lo"))))
    gw = serve({"providers": {"openai": provider_config(upstream.url)}})
    r = requests.post(gw + "/v1/completions", json={"model": "openai/i", "prompt": "x", "stream": True}, timeout=10)
    assert r.text.endswith("data: [DONE]\n\n")
    assert upstream.requests[0].json["stream_options"] == {"include_usage": True}
    upstream.add(Reply(chunks=sse(*completion_chunks("Hel", "lo"))))
    chunks = list(sdk(gw).completions.create(model="openai/i", prompt="x", stream=True))
    assert "".join(c.choices[0].text for c in chunks if c.choices) == "Hello"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"


def test_azure_deployment_path(upstream, serve):
    upstream.add(Reply(json=COMPLETION))
    gw = serve({"providers": {"azure": {"keys": [{"name": "a", "value": "az-test-SECRET", "models": [],
                                                  "azure_key_config": {"endpoint": upstream.url}}]}}})
    client = openai.AzureOpenAI(azure_endpoint=gw, api_key="unused", api_version="2024-10-21", max_retries=0)
    assert client.completions.create(model="instruct-dep", prompt="x").choices[0].text.endswith("test")
    assert upstream.requests[0].path == "/openai/deployments/instruct-dep/completions"


def test_anthropic_through_its_chat_api(upstream, serve):
    upstream.add(Reply(json=json.loads((FIXTURES / "anthropic" / "text.response.json").read_text())))
    gw = serve({"providers": {"anthropic": provider_config(upstream.url, key="sk-ant-test")}})
    resp = sdk(gw).completions.create(model="anthropic/claude-sonnet-4-5", prompt="Write a haiku", max_tokens=64)
    assert resp.object == "text_completion" and resp.choices[0].text
    assert resp.choices[0].finish_reason == "stop"
    sent = upstream.requests[0]
    assert sent.path == "/v1/messages"
    assert sent.json["messages"] == [{"role": "user", "content": "Write a haiku"}]
    assert sent.json["max_tokens"] == 64


def test_anthropic_stream_through_its_chat_api(upstream, serve):
    raw = (FIXTURES / "anthropic" / "text.stream").read_bytes()
    upstream.add(Reply(chunks=[raw], content_type="text/event-stream"))
    gw = serve({"providers": {"anthropic": provider_config(upstream.url, key="sk-ant-test")}})
    chunks = list(sdk(gw).completions.create(model="anthropic/claude-sonnet-4-5", prompt="hi", stream=True))
    assert "".join(c.choices[0].text for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop" and chunks[-1].usage.total_tokens > 0


def test_bedrock_through_converse(upstream, serve):
    converse = {"output": {"message": {"role": "assistant", "content": [{"text": "Hello from Bedrock"}]}},
                "stopReason": "end_turn", "usage": {"inputTokens": 3, "outputTokens": 4, "totalTokens": 7},
                "metrics": {"latencyMs": 100}}
    upstream.add(Reply(json=converse))
    gw = serve({"providers": {"bedrock": bedrock_config(upstream.url)}})
    resp = sdk(gw).completions.create(model="bedrock/anthropic.claude-3-haiku", prompt="hi")
    assert resp.choices[0].text == "Hello from Bedrock" and resp.usage.total_tokens == 7
    assert upstream.requests[0].path.endswith("/converse")


@pytest.mark.parametrize("body, param, message", [
    ({"model": "openai/i"}, "prompt", "prompt is required for text completion"),
    ({"prompt": "x"}, "model", "model should be in provider/model format"),
    ({"model": "openai/i", "prompt": "x", "max_tokens": "a"}, "max_tokens",
     "invalid request format: max_tokens: must be an integer"),
    ({"model": "anthropic/c", "prompt": "x", "echo": True}, "echo", "echo is not supported by anthropic"),
    ({"model": "anthropic/c", "prompt": ["a", "b"]}, "prompt",
     "prompt must be one string for anthropic (it has a chat API only)"),
    ({"model": "groq/l", "prompt": "x"}, None, "text_completion is not supported by groq provider"),
    ({"model": "gemini/g", "prompt": "x"}, None, "text_completion is not supported by gemini provider"),
])
def test_refused_without_an_upstream_call(body, param, message, upstream, serve):
    gw = serve({"providers": {"openai": provider_config(upstream.url), "groq": provider_config(upstream.url),
                              "anthropic": provider_config(upstream.url, key="sk-ant-test")}})
    r = requests.post(gw + "/v1/completions", json=body, timeout=10)
    assert r.status_code == 400
    assert (r.json()["error"].get("param"), r.json()["error"]["message"]) == (param, message)
    assert upstream.requests == []
