"""No configured secret ever reaches a client or a log line, whatever an upstream echoes back: provider
keys are redacted by value from every upstream-derived string (error messages, params, codes, in-band
stream errors) on every provider family, streamed or not."""

import json
import logging

import pytest
import requests

from tests.fakes import Reply, openai_chunks, sse

SECRET = "sk-live-SECRET-value-0123456789"
AWS_SECRET = "aws-secret-SECRET-key-987654321"

FAMILIES = {
    "openai": {"keys": [{"value": SECRET}]},
    "anthropic": {"keys": [{"value": SECRET}]},
    "gemini": {"keys": [{"value": SECRET}]},
    "cohere": {"keys": [{"value": SECRET}]},
    "mistral": {"keys": [{"value": SECRET}]},
    "azure": {"keys": [{"value": SECRET, "azure_key_config": {"endpoint": "", "deployments": {"gpt-4o": "gpt-4o"}}}]},
    "bedrock": {"keys": [{"value": SECRET, "bedrock_key_config": {"region": "us-east-1"}}]},
}
MODEL = {"azure": "gpt-4o", "bedrock": "anthropic.claude-3-haiku-20240307-v1:0"}


def _echo(rec):
    """What careless providers and proxies do: repeat the credentials they got in the error."""
    seen = " ".join(f"{k}: {v}" for k, v in rec.headers.items())
    return Reply(status=401, json={"error": {"message": f"Incorrect API key provided: {seen}", "param": seen,
                                             "code": SECRET, "type": "invalid_request_error"},
                                   "message": f"bad key {seen}"})


def _config(provider, url):
    conf = json.loads(json.dumps(FAMILIES[provider]))
    if provider == "azure":
        conf["keys"][0]["azure_key_config"]["endpoint"] = url
    else:
        conf["network_config"] = {"base_url": url}
    return {"providers": {provider: conf}}


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
@pytest.mark.parametrize("provider", sorted(FAMILIES))
def test_an_upstream_that_echoes_the_key_never_makes_the_gateway_repeat_it(serve, upstream, caplog, provider,
                                                                          stream):
    upstream.handler = _echo
    gw = serve(_config(provider, upstream.url))
    with caplog.at_level(logging.DEBUG, logger="bifrost_wsgi"):
        r = requests.post(gw + "/v1/chat/completions", timeout=10, json={
            "model": f"{provider}/{MODEL.get(provider, 'm')}", "stream": stream,
            "messages": [{"role": "user", "content": "hi"}], "fallbacks": ["openai/unconfigured"]})
    assert upstream.requests, "the request reached the upstream"
    assert r.status_code == 401
    assert SECRET not in r.text and "[REDACTED]" in r.text
    assert SECRET not in caplog.text


def test_an_in_band_stream_error_that_echoes_the_key_is_redacted(serve, upstream):
    def handler(rec):
        seen = rec.headers.get("authorization", "")
        error = {"error": {"message": f"quota exceeded for {seen}", "type": "server_error", "code": 500}}
        return Reply(chunks=[*sse(*openai_chunks("partial")[:2], done=False), *sse(error, done=False)])

    upstream.handler = handler
    gw = serve(_config("openai", upstream.url))
    r = requests.post(gw + "/v1/chat/completions", timeout=10, json={
        "model": "openai/m", "stream": True, "messages": [{"role": "user", "content": "hi"}]})
    assert "quota exceeded" in r.text
    assert SECRET not in r.text


def test_secret_key_settings_and_virtual_keys_are_redacted_too(serve, upstream):
    vk = "sk-bf-virtual-SECRET-42424242"
    upstream.handler = lambda rec: Reply(status=500, body=f"boom {AWS_SECRET} {vk}".encode(), content_type="text/plain")
    config = {"providers": {"bedrock": {"keys": [{"value": "", "bedrock_key_config": {
        "access_key": "AKIDEXAMPLE123", "secret_key": AWS_SECRET, "region": "us-east-1"}}],
        "network_config": {"base_url": upstream.url}}},
        "governance": {"virtual_keys": [{"id": "vk1", "name": "team", "value": vk}]}}
    gw = serve(config)
    r = requests.post(gw + "/v1/chat/completions", timeout=10, headers={"x-bf-vk": vk}, json={
        "model": f"bedrock/{MODEL['bedrock']}", "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 500 and "boom" in r.text
    assert AWS_SECRET not in r.text and vk not in r.text


def test_a_provider_name_outside_the_table_is_not_echoed_as_a_provider(serve, upstream):
    gw = serve(_config("openai", upstream.url))
    r = requests.post(gw + "/v1/chat/completions", timeout=10, json={
        "model": "no-such-provider/m", "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 400 and r.json()["error"]["message"] == "provider no-such-provider is not configured"
    assert r.json()["extra_fields"]["provider"] == ""


def test_admin_and_store_passwords_are_redacted(serve, upstream):
    password = "admin-SECRET-password-77"
    upstream.handler = lambda rec: Reply(status=500, body=f"boom {password}".encode(), content_type="text/plain")
    config = _config("openai", upstream.url)
    config["governance"] = {"auth_config": {"is_enabled": True, "admin_username": "admin",
                                            "admin_password": password}}
    gw = serve(config)
    r = requests.post(gw + "/v1/chat/completions", timeout=10, json={
        "model": "openai/m", "messages": [{"role": "user", "content": "hi"}]})
    assert "boom" in r.text and password not in r.text
