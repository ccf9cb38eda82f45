"""Bedrock's /invoke (Titan and Cohere embedding bodies, Anthropic Messages bodies) and /count-tokens end to end:
boto3's bedrock-runtime client against the gateway, fake OpenAI and Bedrock upstreams behind it."""

from __future__ import annotations

import base64
import json

import pytest
import requests
from botocore.exceptions import ClientError

from tests.conftest import provider_config
from tests.fakes import Reply, chat_completion, openai_embeddings
from tests.test_bedrock_surface import gateway_config, make_client, ups, url  # noqa: F401 (fixtures)

VECTORS = [[0.25, -0.5, 0.125], [1.0, 0.0, -0.75]]
TITAN = "amazon.titan-embed-text-v2:0"
COHERE = "cohere.embed-english-v3"
CLAUDE = "anthropic.claude-3-5-haiku-20241022-v1:0"


def invoke(client, model_id: str, body: dict) -> dict:
    resp = client.invoke_model(modelId=model_id, body=json.dumps(body), contentType="application/json",
                               accept="application/json")
    return json.loads(resp["body"].read())


def test_titan_body_through_bedrock(url, ups):
    ups["bedrock"].add(Reply(json={"embedding": VECTORS[0], "inputTextTokenCount": 3}))
    out = invoke(make_client(url), TITAN, {"inputText": "hello", "dimensions": 256, "normalize": True})
    assert out == {"embedding": VECTORS[0], "inputTextTokenCount": 3}
    sent = ups["bedrock"].requests[0]
    assert sent.path == f"/model/{TITAN.replace(':', '%3A')}/invoke"
    assert sent.json == {"inputText": "hello", "dimensions": 256}


def test_titan_body_through_openai(url, ups):
    ups["openai"].add(Reply(json=openai_embeddings(VECTORS[:1])))
    out = invoke(make_client(url), "openai/text-embedding-3-small", {"inputText": "hello", "embeddingTypes": ["float"]})
    assert out == {"embedding": VECTORS[0], "inputTextTokenCount": 4, "embeddingsByType": {"float": VECTORS[0]}}
    assert ups["openai"].requests[0].json == {"model": "text-embedding-3-small", "input": ["hello"],
                                              "encoding_format": "float"}


def test_cohere_body_through_bedrock(url, ups):
    ups["bedrock"].add(Reply(json={"id": "e1", "embeddings": VECTORS, "texts": ["a", "b"],
                                   "response_type": "embeddings_floats"}))
    out = invoke(make_client(url), COHERE, {"texts": ["a", "b"], "input_type": "search_query"})
    assert out["embeddings"] == VECTORS and out["texts"] == ["a", "b"]
    assert out["response_type"] == "embeddings_floats" and out["id"]
    sent = ups["bedrock"].requests[0]
    assert sent.json == {"texts": ["a", "b"], "input_type": "search_query", "embedding_types": ["float"]}


def test_cohere_body_through_openai_by_type(url, ups):
    ups["openai"].add(Reply(json=openai_embeddings(VECTORS)))
    out = invoke(make_client(url), "openai/text-embedding-3-small",
                 {"texts": ["a", "b"], "input_type": "search_document", "embedding_types": ["float"]})
    assert out["embeddings"] == {"float": VECTORS} and out["response_type"] == "embeddings_by_type"


def test_anthropic_body_through_openai(url, ups):
    ups["openai"].add(Reply(json=chat_completion("Hi there")))
    out = invoke(make_client(url), "openai/gpt-4o", {
        "anthropic_version": "bedrock-2023-05-31", "max_tokens": 50, "system": "Be brief.",
        "messages": [{"role": "user", "content": "Hello"}]})
    assert out["type"] == "message" and out["content"] == [{"type": "text", "text": "Hi there"}]
    assert out["stop_reason"] == "end_turn" and out["usage"]["output_tokens"] == 3
    sent = ups["openai"].requests[0].json
    assert sent["messages"][0] == {"role": "system", "content": "Be brief."}
    assert sent["max_completion_tokens"] == 50 and "anthropic_version" not in sent


def test_anthropic_body_through_bedrock_converse(url, ups):
    ups["bedrock"].add(Reply(json={"output": {"message": {"role": "assistant", "content": [{"text": "From Claude"}]}},
                                   "stopReason": "end_turn",
                                   "usage": {"inputTokens": 5, "outputTokens": 2, "totalTokens": 7}}))
    out = invoke(make_client(url), CLAUDE, {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 20,
                                            "messages": [{"role": "user", "content": "Hello"}]})
    assert out["content"] == [{"type": "text", "text": "From Claude"}] and out["model"] == CLAUDE
    assert ups["bedrock"].requests[0].path.endswith("/converse")


@pytest.mark.parametrize("body, param", [
    ({"prompt": "x"}, "inputText"),
    ({"inputText": 5}, "inputText"),
    ({"inputText": "x", "dimensions": 0}, "dimensions"),
    ({"inputText": "x", "embeddingTypes": ["binary"]}, "embeddingTypes[0]"),
    ({"texts": []}, "texts"),
    ({"texts": ["a"], "embedding_types": ["int8"]}, "embedding_types[0]"),
    ({"anthropic_version": "bedrock-2023-05-31", "messages": [{"role": "user", "content": "x"}]}, "max_tokens"),
])
def test_invalid_bodies_raise_validation_exception(url, ups, body, param):
    with pytest.raises(ClientError) as info:
        invoke(make_client(url), "openai/gpt-4o", body)
    err = info.value.response
    assert err["Error"]["Code"] == "ValidationException" and param in err["Error"]["Message"]
    assert ups["openai"].requests == []


def test_provider_without_embeddings_is_unsupported(ups, serve):
    gw = serve({"providers": {"anthropic": provider_config(ups["openai"].url)}})
    with pytest.raises(ClientError) as info:
        invoke(make_client(gw), "anthropic/claude-3-5-haiku", {"inputText": "x"})
    err = info.value.response
    assert err["Error"]["Code"] == "ValidationException"
    assert "embedding is not supported by anthropic provider" in err["Error"]["Message"]
    assert ups["openai"].requests == []


def test_fallback_after_an_upstream_failure(url, ups):
    ups["openai"].add(Reply(status=500, json={"error": {"message": "down"}}))
    ups["bedrock"].add(Reply(json={"embedding": VECTORS[0], "inputTextTokenCount": 1}))
    client = make_client(url, headers={"x-bf-fallbacks": f"bedrock/{TITAN}"})
    assert invoke(client, "openai/text-embedding-3-small", {"inputText": "x"})["embedding"] == VECTORS[0]


def test_virtual_key(ups, serve):
    vk = "sk-bf-test-virtual-key-0016"
    gw = serve(gateway_config(ups, governance={"virtual_keys": [{"id": "vk16", "name": "team", "value": vk}]},
                              client={"enforce_governance_header": True}))
    ups["openai"].add(Reply(json=openai_embeddings(VECTORS[:1])))
    with pytest.raises(ClientError) as info:
        invoke(make_client(gw), "openai/text-embedding-3-small", {"inputText": "x"})
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 401
    out = invoke(make_client(gw, headers={"x-bf-vk": vk}), "openai/text-embedding-3-small", {"inputText": "x"})
    assert out["embedding"] == VECTORS[0]


def test_count_tokens_converse_and_invoke_bodies(url, ups):
    client = make_client(url)
    messages = [{"role": "user", "content": [{"text": "x" * 400}]}]
    converse = client.count_tokens(modelId=CLAUDE, input={"converse": {"messages": messages}})
    assert 100 <= converse["inputTokens"] <= 120
    body = json.dumps({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 5,
                       "messages": [{"role": "user", "content": "y" * 400}]})
    invoked = client.count_tokens(modelId="openai/gpt-4o", input={"invokeModel": {"body": body}})
    assert 100 <= invoked["inputTokens"] <= 120
    assert ups["bedrock"].requests == [] and ups["openai"].requests == []


@pytest.mark.parametrize("body, param", [
    ({}, "input"),
    ({"input": {"converse": {}}}, "input.converse.messages"),
    ({"input": {"invokeModel": {"body": "not base64!"}}}, "input.invokeModel.body"),
    ({"input": {"invokeModel": {"body": base64.b64encode(b"{nope").decode()}}}, "input.invokeModel.body"),
])
def test_count_tokens_invalid(url, body, param):
    r = requests.post(url + f"/bedrock/model/{CLAUDE}/count-tokens", json=body, timeout=10)
    assert r.status_code == 400 and r.headers["x-amzn-ErrorType"] == "ValidationException"
    assert param in r.json()["message"]


def test_anthropic_body_to_anthropic_is_the_native_body(upstream, serve):
    answer = {"id": "msg_01", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
              "content": [{"type": "text", "text": "Hi"}], "stop_reason": "end_turn", "stop_sequence": None,
              "usage": {"input_tokens": 5, "output_tokens": 1}}
    upstream.add(Reply(json=answer))
    gw = serve({"providers": {"anthropic": provider_config(upstream.url)}})
    body = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 50, "top_k": 3,
            "messages": [{"role": "user", "content": "hi"}]}
    assert invoke(make_client(gw), "anthropic/claude-sonnet-4-5", body) == answer
    sent = upstream.requests[0]
    assert sent.path == "/v1/messages"
    assert sent.json == {"max_tokens": 50, "top_k": 3, "messages": [{"role": "user", "content": "hi"}],
                         "model": "claude-sonnet-4-5"}
