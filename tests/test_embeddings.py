"""POST /v1/embeddings end to end: the official openai SDK → the gateway → a fake upstream speaking each
provider's embeddings API.

Each case in tests/fixtures/embedding/<case>.json holds the client's request, the upstream requests the
gateway must send (path and body, in order), the provider's answers (shaped after its documentation) and the
vectors and usage the client must get back in OpenAI's shape."""

from __future__ import annotations

import base64
import json
import re
import struct
from pathlib import Path

import openai
import pytest
import requests

from bifrost_wsgi.providers.embedding.openai_compat import vector_texts
from tests.conftest import provider_config
from tests.fakes import Reply
from tests.golden import readers

load, cases = readers(Path(__file__).parent / "fixtures" / "embedding")

PROVIDERS = {
    "openai": lambda url: provider_config(url),
    "gemini": lambda url: provider_config(url, key="gm-test-SECRET"),
    "cohere": lambda url: provider_config(url, key="co-test-SECRET"),
    "vertex": lambda url: {"keys": [{"name": "v", "value": "ya29.test-token", "models": [],
                                     "vertex_key_config": {"project_id": "my-proj", "region": "us-east5"}}],
                           "network_config": {"base_url": url, "default_request_timeout_in_seconds": 5}},
    "bedrock": lambda url: {"keys": [{"name": "b", "value": "", "models": [], "bedrock_key_config": {
                                "access_key": "AKIDEXAMPLE", "secret_key": "wJalrXUtnFEMI", "region": "us-west-2"}}],
                            "network_config": {"base_url": url, "default_request_timeout_in_seconds": 5}},
    "azure": lambda url: {"keys": [{"name": "a", "value": "az-test-SECRET", "models": [], "azure_key_config": {
                              "endpoint": url, "deployments": {"text-embedding-3-small": "emb-deploy"},
                              "api_version": "2024-10-21"}}]},
    "groq": lambda url: provider_config(url),
}


def gateway_for(serve, upstream, *names):
    return serve({"providers": {name: PROVIDERS[name](upstream.url) for name in names}})


def sdk(gw: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw + "/v1", api_key="unused", max_retries=0)


def floats32(vectors):
    """What a float32 round trip makes of each number (the base64 encoding is float32)."""
    return [[struct.unpack("<f", struct.pack("<f", x))[0] for x in v] for v in vectors]


@pytest.mark.parametrize("case", cases(".json"))
def test_each_provider_through_the_sdk(case, upstream, serve):
    c = load(f"{case}.json")
    upstream.add(*(Reply(json=r) for r in c["replies"]))
    gw = gateway_for(serve, upstream, c["provider"])
    req = dict(c["request"])
    body = {k: req.pop(k) for k in list(req) if k not in ("input", "dimensions")}
    # the SDK asks for base64 unless told otherwise: the gateway encodes every provider's floats
    resp = sdk(gw).embeddings.create(model=f"{c['provider']}/{c['model']}", **req, extra_body=body or None)
    assert [d.embedding for d in resp.data] == floats32(c["vectors"])
    assert [d.index for d in resp.data] == list(range(len(c["vectors"])))
    assert resp.usage.model_dump() == c["usage"]
    sent = [(r.path, r.json) for r in upstream.requests]
    assert sent == [(u["path"], u["body"]) for u in c["upstream"]]


@pytest.mark.parametrize("case", ["openai", "cohere", "bedrock_titan"])
def test_float_and_base64_answers(case, upstream, serve):
    c = load(f"{case}.json")
    gw = gateway_for(serve, upstream, c["provider"])
    model = f"{c['provider']}/{c['model']}"
    upstream.add(*(Reply(json=r) for r in c["replies"]))
    plain = requests.post(gw + "/v1/embeddings", json={"model": model, **c["request"]}, timeout=10).json()
    assert plain["object"] == "list"
    assert plain["data"] == [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(c["vectors"])]
    assert plain["extra_fields"]["request_type"] == "embedding"
    assert (plain["extra_fields"]["provider"], plain["extra_fields"]["model_requested"]) == (c["provider"], c["model"])
    upstream.add(*(Reply(json=r) for r in c["replies"]))
    b64 = requests.post(gw + "/v1/embeddings", json={"model": model, **c["request"], "encoding_format": "base64"},
                        timeout=10).json()
    for item, v in zip(b64["data"], c["vectors"]):
        assert base64.b64decode(item["embedding"]) == struct.pack(f"<{len(v)}f", *v)


def test_azure_sdk_on_the_deployment_path(upstream, serve):
    upstream.add(Reply(json=load("openai.json")["replies"][0]))
    gw = gateway_for(serve, upstream, "azure")
    client = openai.AzureOpenAI(azure_endpoint=gw, api_key="unused", api_version="2024-10-21", max_retries=0)
    resp = client.embeddings.create(model="text-embedding-3-small", input=["first", "second"])
    assert len(resp.data) == 2
    sent = upstream.requests[0]
    assert (sent.path, sent.query["api-version"]) == ("/openai/deployments/emb-deploy/embeddings", ["2024-10-21"])
    assert sent.headers["api-key"] == "az-test-SECRET"


@pytest.mark.parametrize("path", ["/openai/v1/embeddings", "/openai/embeddings"])
def test_openai_prefixed_routes(path, upstream, serve):
    upstream.add(Reply(json=load("openai.json")["replies"][0]))
    gw = gateway_for(serve, upstream, "openai")
    r = requests.post(gw + path, json={"model": "openai/text-embedding-3-small", "input": "x"}, timeout=10)
    assert r.status_code == 200 and len(r.json()["data"]) == 2


# (body, status, param, message): validation happens before any upstream call
REFUSED = [
    ({"input": "x"}, 400, "model", "model should be in provider/model format"),
    ({"model": "openai/e"}, 400, "input", "input is required for embeddings"),
    ({"model": "openai/e", "input": []}, 400, "input", "input is required for embeddings"),
    ({"model": "openai/e", "input": 5}, 400, "input",
     "invalid request format: input: must be a string, an array of strings, or an array of token arrays"),
    ({"model": "openai/e", "input": ["a", 1]}, 400, "input[1]", "invalid request format: input[1]: must be a string"),
    ({"model": "openai/e", "input": [[1], [-2]]}, 400, "input[1][0]",
     "invalid request format: input[1][0]: must be a non-negative integer token id"),
    ({"model": "openai/e", "input": "x", "encoding_format": "hex"}, 400, "encoding_format",
     "invalid request format: encoding_format: must be one of float, base64"),
    ({"model": "openai/e", "input": "x", "dimensions": 0}, 400, "dimensions",
     "invalid request format: dimensions: must be at least 1"),
    ({"model": "gemini/gemini-embedding-001", "input": [1, 2]}, 400, "input",
     "token arrays as embeddings input are not supported by gemini; send text"),
    ({"model": "groq/llama", "input": "x"}, 400, None, "embedding is not supported by groq provider"),
    ({"model": "anthropic/claude", "input": "x"}, 400, None, "embedding is not supported by anthropic provider"),
]


@pytest.mark.parametrize("body, status, param, message", REFUSED)
def test_refused_without_an_upstream_call(body, status, param, message, upstream, serve):
    gw = gateway_for(serve, upstream, "openai", "gemini", "groq")
    r = requests.post(gw + "/v1/embeddings", json=body, timeout=10)
    assert r.status_code == status
    err = r.json()
    assert err["error"]["message"] == message
    assert err["error"].get("param") == param
    assert upstream.requests == []


def test_unsupported_operation_is_typed(upstream, serve):
    gw = gateway_for(serve, upstream, "groq")
    err = requests.post(gw + "/v1/embeddings", json={"model": "groq/x", "input": "x"}, timeout=10).json()
    assert err["error"]["code"] == "unsupported_operation"
    assert err["extra_fields"] == {"provider": "groq", "model_requested": "x", "request_type": "embedding"}


def test_falls_back_to_another_provider(upstream, serve):
    c = load("openai.json")
    upstream.add(Reply(status=503, json={"id": "x", "message": "overloaded"}), Reply(json=c["replies"][0]))
    gw = gateway_for(serve, upstream, "cohere", "openai")
    r = requests.post(gw + "/v1/embeddings", timeout=10, json={
        "model": "cohere/embed-v4.0", "input": ["first", "second"],
        "fallbacks": ["openai/text-embedding-3-small"]}).json()
    assert [d["embedding"] for d in r["data"]] == c["vectors"]
    assert r["extra_fields"]["provider"] == "openai"
    assert [q.path for q in upstream.requests] == ["/v2/embed", "/v1/embeddings"]


def test_titan_failure_on_a_later_input_fails_the_attempt(upstream, serve):
    c = load("bedrock_titan.json")
    upstream.add(Reply(json=c["replies"][0]),
                 Reply(status=400, json={"message": "Malformed input request"},
                       headers={"x-amzn-ErrorType": "ValidationException:http://internal.amazon.com/"}))
    gw = gateway_for(serve, upstream, "bedrock")
    r = requests.post(gw + "/v1/embeddings", json={"model": "bedrock/" + c["model"], **c["request"]}, timeout=10)
    assert r.status_code == 400
    assert r.json()["error"]["message"] == "Malformed input request"


def test_virtual_key_governs_embeddings(upstream, serve):
    c = load("openai.json")
    upstream.add(Reply(json=c["replies"][0]))
    gw = serve({"providers": {"openai": provider_config(upstream.url), "cohere": provider_config(upstream.url)},
                "governance": {"virtual_keys": [{"id": "vk1", "value": "sk-bf-embed-1",
                                                 "provider_configs": [{"provider": "openai", "allowed_models": []}]}]},
                "client": {"enforce_governance_header": True}})
    body = {"model": "openai/text-embedding-3-small", "input": ["first", "second"]}
    assert requests.post(gw + "/v1/embeddings", json=body, timeout=10).status_code == 401
    ok = requests.post(gw + "/v1/embeddings", json=body, headers={"x-bf-vk": "sk-bf-embed-1"}, timeout=10)
    assert ok.status_code == 200
    denied = requests.post(gw + "/v1/embeddings", json={**body, "model": "cohere/embed-v4.0"},
                           headers={"x-bf-vk": "sk-bf-embed-1"}, timeout=10)
    assert denied.status_code == 403


# --- the float answer written with the upstream's own vector text (openai_compat.vector_texts) -----------

# OpenAI's answer as compact JSON, data out of index order; FORCE_PLAIN is the same answer with one escaped
# character, which sends it down the path that writes every number itself
ANSWER = (b'{"object":"list","data":[{"object":"embedding","index":1,"embedding":[0.5,-0.25,1.0,1e-05]},'
          b'{"object":"embedding","index":0,"embedding":[0.125,0.0,-1.5,3]}],'
          b'"model":"text-embedding-3-small","usage":{"prompt_tokens":4,"total_tokens":4}}')
FORCE_PLAIN = ANSWER[:-1] + b',"note":"a\\/b"}'


def _post_raw(gw: str) -> bytes:
    r = requests.post(gw + "/v1/embeddings", json={"model": "openai/text-embedding-3-small", "input": ["a", "b"]},
                      timeout=10)
    assert r.status_code == 200
    return re.sub(rb'"latency":\d+', b'"latency":0', r.content)


def test_vector_text_fast_path_writes_what_the_general_path_writes(upstream, serve):
    assert vector_texts(ANSWER, 2) is not None and vector_texts(FORCE_PLAIN, 2) is None
    upstream.add(Reply(body=ANSWER), Reply(body=FORCE_PLAIN))
    gw = gateway_for(serve, upstream, "openai")
    fast, plain = _post_raw(gw), _post_raw(gw)
    assert fast == plain  # byte for byte: the upstream wrote each number as Python does
    assert [d["embedding"] for d in json.loads(fast)["data"]] == [[0.125, 0.0, -1.5, 3], [0.5, -0.25, 1.0, 1e-05]]


def test_vector_text_keeps_the_upstreams_spelling_of_the_same_numbers(upstream, serve):
    odd = (b'{"object":"list","data":[{"object":"embedding","index":0,"embedding": [ 1E-3 , -0.0,2,0.10,\n'
           b'12345678901234567890.0 ]}],"model":"m","usage":{"prompt_tokens":1,"total_tokens":1}}')
    assert vector_texts(odd, 1) == [b"[ 1E-3 , -0.0,2,0.10,\n12345678901234567890.0 ]"]
    upstream.add(Reply(body=odd), Reply(body=odd[:-1] + b',"note":"\\/"}'))
    gw = gateway_for(serve, upstream, "openai")
    fast, plain = _post_raw(gw), _post_raw(gw)
    assert fast != plain and json.loads(fast) == json.loads(plain)
    assert json.loads(fast)["data"][0]["embedding"] == [0.001, -0.0, 2, 0.1, 1.2345678901234567e19]


@pytest.mark.parametrize("answer", [
    # another "embedding" array elsewhere in the answer
    b'{"object":"list","data":[{"object":"embedding","index":0,"embedding":[1,2]}],"model":"m",'
    b'"usage":{"prompt_tokens":1,"total_tokens":1,"embedding":[9]}}',
    # a repeated key: JSON keeps the last one
    b'{"object":"list","data":[{"object":"embedding","index":0,"embedding":[9],"embedding":[1,2]}],"model":"m",'
    b'"usage":{"prompt_tokens":1,"total_tokens":1}}',
    # an escaped key name beside a decoy
    b'{"object":"list","data":[{"object":"embedding","index":0,"embedd\\u0069ng":[1,2],'
    b'"x":{"embedding":[9]}}],"model":"m","usage":{"prompt_tokens":1,"total_tokens":1}}',
])
def test_vector_text_is_not_used_when_the_text_is_ambiguous(answer, upstream, serve):
    assert vector_texts(answer, 1) is None
    upstream.add(Reply(body=answer))
    gw = gateway_for(serve, upstream, "openai")
    assert json.loads(_post_raw(gw))["data"] == [{"object": "embedding", "index": 0, "embedding": [1, 2]}]


def test_malformed_vector_text_is_a_bad_gateway(upstream, serve):
    bad = b'{"object":"list","data":[{"object":"embedding","index":0,"embedding":[1,[2]]}],"model":"m"}'
    upstream.add(Reply(body=bad))
    gw = gateway_for(serve, upstream, "openai")
    r = requests.post(gw + "/v1/embeddings", json={"model": "openai/e", "input": "x"}, timeout=10)
    assert r.status_code == 502
