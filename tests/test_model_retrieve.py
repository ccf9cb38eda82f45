"""GET /v1/models/{provider}/{model}: what ``client.models.retrieve`` calls, answered from the gateway's own
routing table (one entry of /v1/models, or 404)."""

from __future__ import annotations

import openai
import pytest
import requests

from tests.conftest import provider_config
from tests.fakes import Reply


@pytest.fixture
def gw(upstream, serve):
    upstream.handler = lambda rec: Reply(json={"object": "list", "data": [
        {"id": "gpt-4o", "object": "model", "created": 1715367049, "owned_by": "system"}]})
    anthropic = provider_config(upstream.url, key="sk-ant-test")
    anthropic["keys"][0]["models"] = ["claude-sonnet-4-5"]
    return serve({"providers": {"openai": provider_config(upstream.url), "anthropic": anthropic}})


# (model, status, owner)
CASES = [
    ("openai/gpt-4o", 200, "system"),  # listed by the upstream
    ("openai/ft:gpt-4o:org::abc", 200, "openai"),  # not listed, but the open key routes it
    ("anthropic/claude-sonnet-4-5", 200, "anthropic"),  # named in the key's models
    ("anthropic/claude-opus-4", 404, None),  # no key allows it
    ("groq/llama", 404, None),  # provider not configured
]


@pytest.mark.parametrize("model, status, owner", CASES)
def test_retrieve(model, status, owner, gw):
    r = requests.get(f"{gw}/v1/models/{model}", timeout=10)
    assert r.status_code == status
    if status == 200:
        assert r.json()["id"] == model and r.json()["owned_by"] == owner
    else:
        assert r.json()["error"]["type"] == "not_found"


def test_the_sdk_retrieves_a_model_with_slashes(gw):
    client = openai.OpenAI(base_url=gw + "/openai/v1", api_key="unused", max_retries=0)
    assert client.models.retrieve("openai/gpt-4o").created == 1715367049
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("groq/llama")


def test_a_virtual_key_sees_only_its_models(upstream, serve):
    gw = serve({"providers": {"openai": provider_config(upstream.url),
                              "cohere": provider_config(upstream.url)},
                "governance": {"virtual_keys": [{"id": "vk1", "value": "sk-bf-m-1",
                                                 "provider_configs": [{"provider": "openai", "allowed_models": []}]}]},
                "client": {"enforce_governance_header": True}})
    upstream.handler = lambda rec: Reply(json={"object": "list", "data": []})
    h = {"x-bf-vk": "sk-bf-m-1"}
    assert requests.get(gw + "/v1/models/openai/gpt-4o", timeout=10).status_code == 401
    assert requests.get(gw + "/v1/models/openai/gpt-4o", headers=h, timeout=10).status_code == 200
    assert requests.get(gw + "/v1/models/cohere/command", headers=h, timeout=10).status_code == 404
