"""Gemini's embedding routes (/genai/v1beta/models/{model}:embedContent, :batchEmbedContents) end to end: the
official google-genai SDK against the gateway, fake Gemini and OpenAI upstreams behind it."""

from __future__ import annotations

import pytest
import requests
from google import genai
from google.genai import errors as genai_errors, types

from tests.conftest import provider_config
from tests.fakes import Reply, openai_embeddings
from tests.test_genai_surface import gateway_config, make_client, ups, url  # noqa: F401 (fixtures)

VK = "sk-bf-test-virtual-key-0014"
VECTORS = [[0.25, -0.5, 0.125], [1.0, 0.0, -0.75]]


def gemini_embeddings(vectors: list) -> dict:
    return {"embeddings": [{"values": v} for v in vectors]}


def test_sdk_through_gemini(url, ups):
    ups["gemini"].add(Reply(json=gemini_embeddings(VECTORS)))
    client = make_client(url)
    resp = client.models.embed_content(
        model="gemini-embedding-001", contents=["first", "second"],
        config=types.EmbedContentConfig(task_type="RETRIEVAL_DOCUMENT", output_dimensionality=3))
    assert [e.values for e in resp.embeddings] == VECTORS
    sent = ups["gemini"].requests[0]
    assert sent.path == "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    assert sent.json == {"requests": [
        {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": text}]},
         "taskType": "RETRIEVAL_DOCUMENT", "outputDimensionality": 3} for text in ("first", "second")]}
    assert "gemini-key-SECRET" not in str(resp.model_dump())


def test_sdk_through_openai(url, ups):
    ups["openai"].add(Reply(json=openai_embeddings(VECTORS)))
    client = make_client(url)
    resp = client.models.embed_content(model="openai/text-embedding-3-small", contents=["first", "second"])
    assert [e.values for e in resp.embeddings] == VECTORS
    sent = ups["openai"].requests[0]
    assert (sent.path, sent.json) == ("/v1/embeddings", {"model": "text-embedding-3-small",
                                                         "input": ["first", "second"], "encoding_format": "float"})


@pytest.mark.parametrize("version", ["v1beta", "v1"])
def test_embed_content_answers_one_embedding(url, ups, version):
    ups["openai"].add(Reply(json=openai_embeddings(VECTORS[:1])))
    r = requests.post(f"{url}/{version}/models/openai/text-embedding-3-small:embedContent", timeout=10, json={
        "content": {"parts": [{"text": "line one"}, {"text": "line two"}]}, "outputDimensionality": 3})
    assert r.status_code == 200 and r.json() == {"embedding": {"values": VECTORS[0]}}
    assert ups["openai"].requests[0].json == {"model": "text-embedding-3-small", "input": ["line one\nline two"],
                                              "encoding_format": "float", "dimensions": 3}


@pytest.mark.parametrize("action, body, param", [
    ("embedContent", {}, "content"),
    ("embedContent", {"content": {"parts": []}}, "content.parts"),
    ("embedContent", {"content": {"parts": [{"inlineData": {"mimeType": "image/png", "data": "AA=="}}]}},
     "content.parts[0]"),
    ("embedContent", {"content": {"parts": [{"text": "x"}]}, "outputDimensionality": 0}, "outputDimensionality"),
    ("batchEmbedContents", {}, "requests"),
    ("batchEmbedContents", {"requests": [{"content": {"parts": [{"text": 5}]}}]}, "requests[0].content.parts[0]"),
    ("batchEmbedContents", {"requests": [{"content": {"parts": [{"text": "a"}]}},
                                         {"content": {"parts": [{"text": "b"}]}, "taskType": "CLUSTERING"}]},
     "requests[1]"),
])
def test_invalid_requests_in_googles_envelope(url, ups, action, body, param):
    r = requests.post(f"{url}/v1beta/models/openai/text-embedding-3-small:{action}", json=body, timeout=10)
    assert r.status_code == 400 and r.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert param in r.json()["error"]["message"]
    assert ups["openai"].requests == []


def test_provider_without_embeddings_is_unsupported(ups, serve):
    url = serve({"providers": {"anthropic": provider_config(ups["openai"].url)}}) + "/genai"
    client = make_client(url)
    with pytest.raises(genai_errors.APIError) as info:
        client.models.embed_content(model="anthropic/claude-3-5-haiku", contents="x")
    assert info.value.code == 400 and "embedding is not supported by anthropic provider" in info.value.message


@pytest.mark.parametrize("status, google", [(429, "RESOURCE_EXHAUSTED"), (500, "INTERNAL")])
def test_upstream_errors_in_googles_envelope(url, ups, status, google):
    ups["openai"].add(Reply(status=status, json={"error": {"message": "nope"}}))
    client = make_client(url)
    with pytest.raises(genai_errors.APIError) as info:
        client.models.embed_content(model="openai/text-embedding-3-small", contents="x")
    assert info.value.code == status and info.value.status == google


def test_fallbacks_and_virtual_key(ups, serve):
    url = serve(gateway_config(ups, governance={"virtual_keys": [{"id": "vk14", "name": "team", "value": VK}]}))
    ups["openai"].add(Reply(status=500, json={"error": {"message": "down"}}))
    ups["gemini"].add(Reply(json=gemini_embeddings(VECTORS[:1])))
    client = genai.Client(api_key=VK, http_options=types.HttpOptions(
        base_url=url + "/genai", headers={"x-bf-fallbacks": "gemini/gemini-embedding-001"}, retry_options=None))
    resp = client.models.embed_content(model="openai/text-embedding-3-small", contents="x")
    assert [e.values for e in resp.embeddings] == VECTORS[:1]
    wrong = make_client(url + "/genai", key="wrong")
    with pytest.raises(genai_errors.APIError) as info:
        wrong.models.embed_content(model="openai/text-embedding-3-small", contents="x")
    assert info.value.code == 401
