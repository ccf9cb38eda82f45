"""Gateway authentication with virtual keys (CONTRACT §2 ``governance.virtual_keys``)."""

import hashlib
import os
from pathlib import Path

import openai
import pytest
import requests

from bifrost_wsgi.governance import virtual_keys as governance
from bifrost_wsgi.config import VirtualKey, from_dict
from tests.conftest import provider_config
from tests.fakes import Reply, chat_completion, openai_chunks, sse

ALPHA = "sk-bf-alpha-SECRET-0001"  # openai, gpt-4o-mini only
BETA = "sk-bf-beta-SECRET-0002"  # inactive
GAMMA = "sk-bf-gamma-SECRET-0003"  # no provider_configs: everything
DELTA = "sk-bf-delta-SECRET-0004"  # openai (all models) and groq llama only
HI = [{"role": "user", "content": "hi"}]
EMPTY_EXTRA = {"provider": "", "model_requested": "", "request_type": ""}


def vk_config(upstream_url):
    return {
        "providers": {
            "openai": {**provider_config(upstream_url), "keys": [{"name": "k", "value": "sk-openai-SECRET",
                                                                   "models": ["gpt-4o-mini", "gpt-4o"]}]},
            "groq": {**provider_config(upstream_url), "keys": [{"name": "g", "value": "gsk-SECRET",
                                                                 "models": ["llama", "mixtral"]}]},
        },
        "governance": {"virtual_keys": [
            {"id": "vk-alpha", "name": "alpha", "value": ALPHA,
             "provider_configs": [{"provider": "openai", "allowed_models": ["gpt-4o-mini"]}]},
            {"id": "vk-beta", "name": "beta", "value": BETA, "is_active": False},
            {"id": "vk-gamma", "name": "gamma", "value": GAMMA},
            {"id": "", "name": "delta", "value": DELTA,
             "provider_configs": [{"provider": "openai", "allowed_models": []},
                                  {"provider": "groq", "allowed_models": ["groq/llama"]}]},
        ]},
    }


@pytest.fixture
def gw(upstream, serve):
    return serve(vk_config(upstream.url))


def post(gw, headers=None, *, model="openai/gpt-4o-mini", **body):
    return requests.post(gw + "/v1/chat/completions", headers=headers or {},
                         json={"model": model, "messages": HI, **body})


@pytest.mark.parametrize("headers,model,status,code", [
    ({}, "openai/gpt-4o-mini", 401, "virtual_key_required"),
    ({"x-bf-vk": "sk-bf-nope"}, "openai/gpt-4o-mini", 401, "virtual_key_not_found"),
    ({"Authorization": "Bearer sk-bf-nope"}, "openai/gpt-4o-mini", 401, "virtual_key_not_found"),
    ({"x-bf-vk": ALPHA[:-1]}, "openai/gpt-4o-mini", 401, "virtual_key_not_found"),
    ({"Authorization": "Basic " + ALPHA}, "openai/gpt-4o-mini", 401, "virtual_key_required"),
    ({"Authorization": "Bearer " + BETA}, "openai/gpt-4o-mini", 401, "virtual_key_blocked"),
    ({"x-bf-vk": ALPHA}, "openai/gpt-4o", 403, "model_blocked"),
    ({"x-bf-vk": ALPHA}, "groq/llama", 403, "provider_blocked"),
    ({"x-bf-vk": DELTA}, "groq/mixtral", 403, "model_blocked"),
    # the presented key is the first header present: a wrong x-bf-vk is not rescued by a right bearer
    ({"x-bf-vk": "sk-bf-nope", "Authorization": "Bearer " + ALPHA}, "openai/gpt-4o-mini", 401,
     "virtual_key_not_found"),
])
def test_refusals_carry_the_envelope(gw, upstream, headers, model, status, code):
    r = post(gw, headers, model=model)
    assert r.status_code == status
    env = r.json()
    assert env["status_code"] == status
    assert env["is_bifrost_error"] is False
    assert env["error"]["type"] == ("authentication_error" if status == 401 else "permission_error")
    assert env["error"]["code"] == code
    if status == 401:  # refused before the body is read: no provider known
        assert env["extra_fields"] == EMPTY_EXTRA
    else:
        provider, _, name = model.partition("/")
        assert env["extra_fields"] == {"provider": provider, "model_requested": name,
                                       "request_type": "chat_completion"}
    assert upstream.requests == []
    assert "SECRET" not in r.text


@pytest.mark.parametrize("headers,model", [
    ({"x-bf-vk": ALPHA}, "openai/gpt-4o-mini"),
    ({"Authorization": "Bearer " + ALPHA}, "openai/gpt-4o-mini"),
    ({"authorization": "bearer " + ALPHA}, "openai/gpt-4o-mini"),
    ({"x-api-key": ALPHA}, "openai/gpt-4o-mini"),
    ({"x-bf-vk": GAMMA}, "groq/mixtral"),
    ({"x-bf-vk": DELTA}, "openai/gpt-4o"),
    ({"x-bf-vk": DELTA}, "groq/llama"),  # allowed_models may name "provider/model"
])
def test_allowed_requests_pass_and_the_key_never_goes_upstream(gw, upstream, headers, model):
    upstream.add(Reply(json=chat_completion("ok")))
    r = post(gw, headers, model=model)
    assert r.status_code == 200, r.text
    sent = upstream.requests[0]
    assert not any(v in str(sent.headers) for v in (ALPHA, GAMMA, DELTA))
    assert sent.headers["authorization"] in ("Bearer sk-openai-SECRET", "Bearer gsk-SECRET")


def test_openai_sdk_with_a_virtual_key_as_its_api_key(gw, upstream):
    upstream.add(Reply(json=chat_completion("hello")), Reply(chunks=sse(*openai_chunks("a", "b"))))
    with openai.OpenAI(base_url=gw + "/v1", api_key=ALPHA, max_retries=0) as client:
        done = client.chat.completions.create(model="openai/gpt-4o-mini", messages=HI)
        assert done.choices[0].message.content == "hello"
        chunks = list(client.chat.completions.create(model="openai/gpt-4o-mini", messages=HI, stream=True))
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "ab"
    with openai.OpenAI(base_url=gw + "/v1", api_key="sk-bf-wrong", max_retries=0) as client:
        with pytest.raises(openai.AuthenticationError):
            client.chat.completions.create(model="openai/gpt-4o-mini", messages=HI)


def test_unauthenticated_body_is_not_even_parsed(gw):
    r = requests.post(gw + "/v1/chat/completions", data=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 401


def test_disallowed_fallbacks_are_dropped_not_tried(gw, upstream):
    """ALPHA may not use groq: its fallback to groq is dropped, so the primary's error answers."""
    upstream.handler = lambda rec: Reply(status=500, json={"error": {"message": "boom", "type": "server_error"}})
    r = post(gw, {"x-bf-vk": ALPHA}, fallbacks=["groq/llama"])
    assert r.status_code == 500
    assert [rec.json["model"] for rec in upstream.requests] == ["gpt-4o-mini"]


def test_allowed_fallbacks_are_kept(gw, upstream):
    replies = iter([Reply(status=500, json={"error": {"message": "boom"}}), Reply(json=chat_completion("from groq"))])
    upstream.handler = lambda rec: next(replies)
    r = post(gw, {"x-bf-vk": DELTA}, fallbacks=["groq/mixtral", "groq/llama"])
    assert r.status_code == 200
    assert [rec.json["model"] for rec in upstream.requests] == ["gpt-4o-mini", "llama"]
    assert r.json()["extra_fields"]["provider"] == "groq"


@pytest.mark.parametrize("headers,status,ids", [
    ({}, 401, None),
    ({"x-bf-vk": BETA}, 401, None),
    ({"x-bf-vk": ALPHA}, 200, ["openai/gpt-4o-mini"]),
    ({"x-api-key": DELTA}, 200, ["openai/gpt-4o-mini", "openai/gpt-4o", "groq/llama"]),
    ({"Authorization": "Bearer " + GAMMA}, 200, ["openai/gpt-4o-mini", "openai/gpt-4o", "groq/llama",
                                                 "groq/mixtral"]),
])
def test_models_list_needs_a_key_and_shows_what_it_may_use(gw, headers, status, ids):
    r = requests.get(gw + "/v1/models", headers=headers)
    assert r.status_code == status
    if ids is not None:
        assert [m["id"] for m in r.json()["data"]] == ids


@pytest.mark.parametrize("path", ["/health", "/metrics"])
def test_health_and_metrics_stay_open(gw, path):
    assert requests.get(gw + path).status_code == 200


def test_without_virtual_keys_the_gateway_is_open(gateway, upstream):
    upstream.add(Reply(json=chat_completion()))
    assert requests.post(gateway + "/v1/chat/completions",
                         json={"model": "openai/gpt-4o-mini", "messages": HI}).status_code == 200
    assert requests.get(gateway + "/v1/models").status_code == 200


def test_the_store_holds_digests_never_key_values(gw, upstream):
    """Keys are looked up by SHA-256 digest: no value is written to disk, so a copied database or a timing
    difference in the lookup gives nothing usable away."""
    upstream.add(Reply(json=chat_completion("ok")))
    assert post(gw, {"x-bf-vk": ALPHA}).status_code == 200
    stored = b"".join(p.read_bytes() for p in Path(os.environ["BIFROST_DATA_DIR"]).iterdir())
    assert stored and not any(v.encode() in stored for v in (ALPHA, BETA, GAMMA, DELTA))
    assert hashlib.sha256(ALPHA.encode()).hexdigest().encode() in stored


def _vk(providers):
    return VirtualKey(id="v", name="n", value="x", providers=providers)


@pytest.mark.parametrize("providers,provider,model,allowed", [
    ({}, "anything", "any-model", True),
    ({"openai": ()}, "openai", "gpt-4o", True),
    ({"openai": ("*",)}, "openai", "gpt-4o", True),
    ({"openai": ("gpt-4o-mini",)}, "openai", "gpt-4o-mini", True),
    ({"openai": ("gpt-4o-mini",)}, "openai", "gpt-4o", False),
    ({"openai": ("openai/gpt-4o",)}, "openai", "gpt-4o", True),
    ({"openai": ("gpt-4o",)}, "azure", "gpt-4o", False),
    ({"openai": ("gpt-4o",)}, "openai", None, True),
])
def test_allows(providers, provider, model, allowed):
    assert governance.allows(_vk(providers), provider, model) is allowed


@pytest.mark.parametrize("environ,presented", [
    ({}, ""),
    ({"HTTP_X_BF_VK": " v1 "}, "v1"),
    ({"HTTP_AUTHORIZATION": "Bearer v2"}, "v2"),
    ({"HTTP_AUTHORIZATION": "BEARER v2"}, "v2"),
    ({"HTTP_AUTHORIZATION": "Bearer "}, ""),
    ({"HTTP_AUTHORIZATION": "Token v2"}, ""),
    ({"HTTP_X_API_KEY": "v3"}, "v3"),
    ({"HTTP_X_API_KEY": "v3", "HTTP_AUTHORIZATION": "Bearer v2"}, "v2"),
    ({"HTTP_X_API_KEY": "v3", "HTTP_AUTHORIZATION": "Bearer v2", "HTTP_X_BF_VK": "v1"}, "v1"),
])
def test_presented_key_order(environ, presented):
    assert governance.presented_key(environ) == presented


def test_repr_of_a_virtual_key_hides_its_value():
    assert ALPHA not in repr(from_dict(vk_config("http://127.0.0.1:9")).virtual_keys)
