"""Every OpenAI-compatible row, end to end with the official openai SDK as the client: the URL, auth header
and body each provider receives (CONTRACT §4), and the answer the client gets back (CONTRACT §6)."""

import collections

import openai
import pytest
import requests

from tests.fakes import FakeUpstream, Reply, chat_completion, openai_chunks, sse

# provider, path the provider must receive (after the configured base_url), auth header, key prefix
ROWS = [
    ("openai", "/v1/chat/completions", "authorization", "Bearer "),
    ("groq", "/v1/chat/completions", "authorization", "Bearer "),
    ("mistral", "/v1/chat/completions", "authorization", "Bearer "),
    ("cerebras", "/v1/chat/completions", "authorization", "Bearer "),
    ("xai", "/v1/chat/completions", "authorization", "Bearer "),
    ("openrouter", "/v1/chat/completions", "authorization", "Bearer "),
    ("nebius", "/v1/chat/completions", "authorization", "Bearer "),
    ("parasail", "/v1/chat/completions", "authorization", "Bearer "),
    ("perplexity", "/chat/completions", "authorization", "Bearer "),
    ("huggingface", "/v1/chat/completions", "authorization", "Bearer "),
    ("sgl", "/v1/chat/completions", "authorization", "Bearer "),
    ("ollama", "/v1/chat/completions", "authorization", "Bearer "),
]
MODELS = {"openrouter": "openai/gpt-4o", "huggingface": "meta-llama/Llama-3.3-70B-Instruct:groq"}


def key_for(name):
    return f"key-{name}-SECRET"


@pytest.fixture(scope="module")
def fleet():
    """One fake upstream per provider, each provider with its own key, plus azure and a custom provider."""
    from bifrost_wsgi import make_app
    from tests.servers import LiveServer

    fakes = {name: FakeUpstream() for name, *_ in ROWS}
    fakes["azure"] = FakeUpstream()
    fakes["mycorp"] = FakeUpstream()
    providers = {name: {"keys": [{"value": key_for(name), "models": []}],
                        "network_config": {"base_url": fakes[name].url + "/base", "default_request_timeout_in_seconds": 5}}
                 for name, *_ in ROWS}
    providers["azure"] = {"keys": [{"value": key_for("azure"), "models": [], "azure_key_config": {
        "endpoint": fakes["azure"].url, "deployments": {"gpt-4o": "prod-gpt4o"}, "api_version": "2024-10-21"}}]}
    providers["mycorp"] = {"keys": [{"value": key_for("mycorp")}],
                           "network_config": {"base_url": fakes["mycorp"].url},
                           "custom_provider_config": {"base_provider_type": "openai"}}
    server = LiveServer(make_app({"providers": providers}))
    yield server.url, fakes
    server.close()
    for f in fakes.values():
        f.close()


def _client(url):
    return openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)


@pytest.mark.parametrize("name,path,header,prefix", ROWS, ids=[r[0] for r in ROWS])
def test_row_non_streaming(fleet, name, path, header, prefix):
    url, fakes = fleet
    fake = fakes[name]
    model = MODELS.get(name, "some-model")
    fake.add(Reply(json=chat_completion("pong", model=model)))
    with _client(url) as client:
        resp = client.chat.completions.create(model=f"{name}/{model}", messages=[{"role": "user", "content": "ping"}],
                                              max_tokens=7, temperature=0.5)
    assert resp.choices[0].message.content == "pong"
    assert resp.model_extra["extra_fields"]["provider"] == name
    assert resp.model_extra["extra_fields"]["model_requested"] == model
    rec = fake.requests[-1]
    assert rec.path == "/base" + path
    assert rec.headers[header] == prefix + key_for(name)
    sent = rec.json
    assert sent["model"] == model  # everything after the first "/" unchanged
    assert sent["messages"] == [{"role": "user", "content": "ping"}]
    assert sent["temperature"] == 0.5
    tokens_field = "max_completion_tokens" if name in ("openai", "groq", "cerebras", "xai") else "max_tokens"
    assert sent[tokens_field] == 7
    # no other provider's key ever reaches this upstream
    others = [key_for(n) for n in fakes if n != name]
    assert not any(k in str(rec.headers) or k.encode() in rec.body for k in others)


@pytest.mark.parametrize("name,path,header,prefix", ROWS, ids=[r[0] for r in ROWS])
def test_row_streaming(fleet, name, path, header, prefix):
    url, fakes = fleet
    fake = fakes[name]
    fake.add(Reply(chunks=sse(*openai_chunks("Hel", "lo"))))
    with _client(url) as client:
        chunks = list(client.chat.completions.create(model=f"{name}/m", stream=True,
                                                     messages=[{"role": "user", "content": "ping"}]))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].usage.completion_tokens == 2
    assert [c.model_extra["extra_fields"]["chunk_index"] for c in chunks] == list(range(len(chunks)))
    sent = fake.requests[-1].json
    assert sent["stream"] is True
    assert sent["stream_options"] == {"include_usage": True}
    assert fake.requests[-1].headers["accept"] == "text/event-stream"


def test_azure_deployment_url_and_api_key_header(fleet):
    url, fakes = fleet
    fake = fakes["azure"]
    fake.add(Reply(json=chat_completion("hi", model="gpt-4o")))
    with _client(url) as client:
        resp = client.chat.completions.create(model="azure/gpt-4o", messages=[{"role": "user", "content": "x"}])
    assert resp.choices[0].message.content == "hi"
    rec = fake.requests[-1]
    assert rec.path == "/openai/deployments/prod-gpt4o/chat/completions"
    assert rec.query == {"api-version": ["2024-10-21"]}
    assert rec.headers["api-key"] == key_for("azure")
    assert "authorization" not in rec.headers


def test_azure_model_without_deployment_has_no_key(fleet):
    url, _ = fleet
    r = requests.post(url + "/v1/chat/completions",
                      json={"model": "azure/gpt-35", "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 400
    assert r.json()["error"]["message"] == "no keys found that support model: gpt-35"


def test_custom_provider_reuses_base_wire_format(fleet):
    url, fakes = fleet
    fakes["mycorp"].add(Reply(json=chat_completion("custom")))
    with _client(url) as client:
        resp = client.chat.completions.create(model="mycorp/llama", messages=[{"role": "user", "content": "x"}])
    assert resp.choices[0].message.content == "custom"
    assert resp.model_extra["extra_fields"]["provider"] == "mycorp"
    rec = fakes["mycorp"].requests[-1]
    assert rec.path == "/v1/chat/completions"
    assert rec.headers["authorization"] == "Bearer " + key_for("mycorp")


def test_reasoning_effort_per_row(fleet):
    url, fakes = fleet
    for name, expect in (("openai", ("reasoning_effort", "low")), ("openrouter", ("reasoning", {"effort": "low"}))):
        fakes[name].add(Reply(json=chat_completion()))
        r = requests.post(url + "/v1/chat/completions", json={
            "model": f"{name}/m", "messages": [{"role": "user", "content": "x"}], "reasoning": {"effort": "low"}})
        assert r.status_code == 200
        sent = fakes[name].requests[-1].json
        assert sent[expect[0]] == expect[1]


def test_unknown_fields_dropped_unless_passthrough(fleet):
    url, fakes = fleet
    fake = fakes["openai"]
    payload = {"model": "openai/m", "messages": [{"role": "user", "content": "x"}], "top_k": 5, "fallbacks": []}
    fake.add(Reply(json=chat_completion()), Reply(json=chat_completion()))
    requests.post(url + "/v1/chat/completions", json=payload)
    assert "top_k" not in fake.requests[-1].json
    requests.post(url + "/v1/chat/completions", json=payload, headers={"x-bf-passthrough-extra-params": "true"})
    assert fake.requests[-1].json["top_k"] == 5
    assert "fallbacks" not in fake.requests[-1].json


def test_extra_headers_forwarded_but_never_credentials(fleet):
    url, fakes = fleet
    fake = fakes["openai"]
    fake.add(Reply(json=chat_completion()))
    r = requests.post(url + "/v1/chat/completions", json={"model": "openai/m", "messages": [{"role": "user", "content": "x"}]},
                      headers={"x-bf-eh-openai-organization": "org-1", "x-bf-eh-authorization": "Bearer stolen",
                               "x-request-id": "req-123"})
    assert r.headers["x-request-id"] == "req-123"
    rec = fake.requests[-1]
    assert rec.headers["openai-organization"] == "org-1"
    assert rec.headers["authorization"] == "Bearer " + key_for("openai")


def test_request_id_generated_when_absent(fleet):
    url, _ = fleet
    r = requests.get(url + "/health")
    assert len(r.headers["x-request-id"]) >= 16


def test_upstream_error_keeps_status_and_message(fleet):
    url, fakes = fleet
    fake = fakes["groq"]
    fake.add(Reply(status=401, json={"error": {"message": "Invalid API Key", "type": "invalid_request_error",
                                               "code": "invalid_api_key"}}))
    with _client(url) as client, pytest.raises(openai.AuthenticationError) as info:
        client.chat.completions.create(model="groq/m", messages=[{"role": "user", "content": "x"}])
    body = info.value.body
    env = info.value.response.json()
    assert info.value.status_code == 401
    assert env["error"]["message"] == "Invalid API Key"
    assert env["error"]["code"] == "invalid_api_key"
    assert env["error"]["type"] == "invalid_request_error"
    assert env["is_bifrost_error"] is False
    assert env["extra_fields"] == {"provider": "groq", "model_requested": "m", "request_type": "chat_completion"}
    assert key_for("groq") not in str(body)


def test_upstream_non_json_error(fleet):
    url, fakes = fleet
    fakes["mistral"].add(Reply(status=502, body=b"<html>Bad Gateway</html>", content_type="text/html"))
    r = requests.post(url + "/v1/chat/completions", json={"model": "mistral/m", "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 502
    assert r.json()["error"]["message"] == "<html>Bad Gateway</html>"


def test_response_without_nulls_and_tool_calls(fleet):
    url, fakes = fleet
    calls = [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]
    fakes["xai"].add(Reply(json=chat_completion(tool_calls=calls, finish_reason="tool_calls")))
    r = requests.post(url + "/v1/chat/completions", json={"model": "xai/grok", "messages": [{"role": "user", "content": "x"}]})
    data = r.json()
    assert "null" not in r.text
    msg = data["choices"][0]["message"]
    assert msg["tool_calls"] == calls and "content" not in msg
    assert data["choices"][0]["finish_reason"] == "tool_calls"


def test_weighted_key_choice_among_allowed_keys(upstream, serve):
    url = serve({"providers": {"openai": {
        "keys": [{"name": "a", "value": "key-a", "models": [], "weight": 3},
                 {"name": "b", "value": "key-b", "models": [], "weight": 1},
                 {"name": "c", "value": "key-c", "models": ["special"], "weight": 100}],
        "network_config": {"base_url": upstream.url}}}})
    upstream.handler = lambda rec: Reply(json=chat_completion())
    s = requests.Session()
    for _ in range(400):
        s.post(url + "/v1/chat/completions", json={"model": "openai/gpt", "messages": [{"role": "user", "content": "x"}]})
    s.post(url + "/v1/chat/completions", json={"model": "openai/special", "messages": [{"role": "user", "content": "x"}]})
    s.close()
    seen = collections.Counter(r.headers["authorization"] for r in upstream.requests[:400])
    assert set(seen) <= {"Bearer key-a", "Bearer key-b"}
    assert 0.65 < seen["Bearer key-a"] / 400 < 0.85
    assert upstream.requests[-1].headers["authorization"] in ("Bearer key-a", "Bearer key-b", "Bearer key-c")


def test_http_proxy_from_proxy_config_and_env_proxies_ignored(upstream, serve, monkeypatch):
    """proxy_config decides: an HTTP forward proxy gets the absolute-URI request; the machine's *_PROXY
    variables are not consulted when the type is none (without a proxy_config they would be: see
    test_ops_hardening.py)."""
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # would fail if requests read it
    proxy = FakeUpstream()
    try:
        url = serve({"providers": {
            "openai": {"keys": [{"value": "k-o"}], "network_config": {"base_url": "http://api.example.test"},
                       "proxy_config": {"type": "http", "url": proxy.url}},
            "groq": {"keys": [{"value": "k-g"}], "network_config": {"base_url": upstream.url},
                     "proxy_config": {"type": "none"}},
        }})
        proxy.add(Reply(json=chat_completion("via proxy")))
        upstream.add(Reply(json=chat_completion("direct")))
        client = requests.Session()
        client.trust_env = False  # the test's own client must not use the variable either
        r1 = client.post(url + "/v1/chat/completions", json={"model": "openai/m", "messages": [{"role": "user", "content": "x"}]})
        r2 = client.post(url + "/v1/chat/completions", json={"model": "groq/m", "messages": [{"role": "user", "content": "x"}]})
        client.close()
        assert r1.json()["choices"][0]["message"]["content"] == "via proxy"
        assert r2.json()["choices"][0]["message"]["content"] == "direct"
        assert proxy.requests[0].headers["host"] == "api.example.test"
        assert proxy.requests[0].path == "/v1/chat/completions"
    finally:
        proxy.close()


@pytest.mark.parametrize("answer", [
    {"choices": [None]},
    {"choices": [{"message": "text", "finish_reason": "stop"}]},
    {"choices": "all of them"},
    [1, 2],
], ids=["null choice", "message not an object", "choices not a list", "not an object"])
def test_answer_with_unexpected_shape_is_502_not_500(fleet, answer):
    url, fakes = fleet
    fakes["openai"].add(Reply(json=answer))
    r = requests.post(url + "/v1/chat/completions", json={"model": "openai/m", "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 502
    assert r.json()["error"]["type"] == "upstream_protocol_error"
