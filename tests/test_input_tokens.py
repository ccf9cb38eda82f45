"""POST /v1/responses/input_tokens through the official openai SDK (``client.responses.input_tokens.count``)
against a fake of each provider's token-counting API: the upstream request (path and body) and the count."""

from __future__ import annotations

import openai
import pytest
import requests

from tests.conftest import provider_config
from tests.fakes import Reply

BEDROCK = {"keys": [{"name": "b", "value": "", "models": [], "bedrock_key_config": {
    "access_key": "AKIDEXAMPLE", "secret_key": "wJalrXUtnFEMI", "region": "us-west-2"}}]}
VERTEX = {"keys": [{"name": "v", "value": "ya29.test-token", "models": [],
                    "vertex_key_config": {"project_id": "my-proj", "region": "us-east5"}}]}

# (provider, model, key config, upstream path, upstream body, upstream answer, count)
CASES = [
    ("openai", "gpt-5", {}, "/v1/responses/input_tokens",
     {"model": "gpt-5", "instructions": "Be brief.", "input": "Hello"},
     {"object": "response.input_tokens", "input_tokens": 11}, 11),
    ("anthropic", "claude-sonnet-4-5", {}, "/v1/messages/count_tokens",
     {"model": "claude-sonnet-4-5", "system": "Be brief.", "messages": [{"role": "user", "content": "Hello"}]},
     {"input_tokens": 14}, 14),
    ("gemini", "gemini-2.5-flash", {}, "/models/gemini-2.5-flash:countTokens",
     {"generateContentRequest": {"model": "models/gemini-2.5-flash",
                                 "systemInstruction": {"parts": [{"text": "Be brief."}]},
                                 "contents": [{"role": "user", "parts": [{"text": "Hello"}]}]}},
     {"totalTokens": 9, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 9}]}, 9),
    ("vertex", "gemini-2.5-flash", VERTEX,
     "/v1/projects/my-proj/locations/us-east5/publishers/google/models/gemini-2.5-flash:countTokens",
     {"systemInstruction": {"parts": [{"text": "Be brief."}]},
      "contents": [{"role": "user", "parts": [{"text": "Hello"}]}]},
     {"totalTokens": 8, "totalBillableCharacters": 14}, 8),
    ("bedrock", "anthropic.claude-3-haiku", BEDROCK, "/model/anthropic.claude-3-haiku/count-tokens",
     {"input": {"converse": {"messages": [{"role": "user", "content": [{"text": "Hello"}]}],
                             "system": [{"text": "Be brief."}]}}},
     {"inputTokens": 12}, 12),
    ("cohere", "command-a-03-2025", {}, "/v1/tokenize", {"text": "Be brief.\nHello", "model": "command-a-03-2025"},
     {"tokens": [8466, 5169, 2594, 8, 2792], "token_strings": ["Be", " brief", ".", "\n", "Hello"]}, 5),
]


def config_for(provider: str, key: dict, url: str) -> dict:
    net = {"base_url": url, "default_request_timeout_in_seconds": 5}
    return {**provider_config(url), **key, "network_config": net}


@pytest.mark.parametrize("provider, model, key, path, body, reply, count", CASES, ids=[c[0] for c in CASES])
def test_counts_through_each_provider(provider, model, key, path, body, reply, count, upstream, serve):
    upstream.add(Reply(json=reply))
    gw = serve({"providers": {provider: config_for(provider, key, upstream.url)}})
    client = openai.OpenAI(base_url=gw + "/v1", api_key="unused", max_retries=0)
    got = client.responses.input_tokens.count(model=f"{provider}/{model}", instructions="Be brief.", input="Hello")
    assert (got.object, got.input_tokens) == ("response.input_tokens", count)
    sent = upstream.requests[0]
    assert (sent.path, sent.json) == (path, body)


@pytest.mark.parametrize("model, message", [
    ("groq/llama", "count_tokens is not supported by groq provider"),
    ("azure/gpt-5", "count_tokens is not supported by azure provider"),
])
def test_providers_without_a_count(model, message, upstream, serve):
    gw = serve({"providers": {"groq": provider_config(upstream.url)}})
    r = requests.post(gw + "/v1/responses/input_tokens", json={"model": model, "input": "x"}, timeout=10)
    assert r.status_code == 400 and r.json()["error"]["message"] == message
    assert upstream.requests == []


def test_input_is_required(upstream, serve):
    gw = serve({"providers": {"openai": provider_config(upstream.url)}})
    r = requests.post(gw + "/v1/responses/input_tokens", json={"model": "openai/gpt-5"}, timeout=10)
    assert (r.status_code, r.json()["error"]["message"]) == (400, "input is required for responses")
