"""Cohere's embed and tokenize routes (/cohere/v2/embed, /cohere/v1/tokenize) end to end: the official cohere SDK (ClientV2) against the gateway,
fake Cohere and OpenAI upstreams behind it."""

from __future__ import annotations

import cohere
import pytest
import requests

from tests.conftest import provider_config
from tests.fakes import Reply, openai_embeddings
from tests.test_cohere_surface import gateway_config, ups, url  # noqa: F401 (fixtures)

VK = "sk-bf-test-virtual-key-0015"
VECTORS = [[0.25, -0.5, 0.125], [1.0, 0.0, -0.75]]


def make_client(url: str, key: str = "unused") -> cohere.ClientV2:
    return cohere.ClientV2(api_key=key, base_url=url + "/cohere", timeout=10)


def cohere_embed_answer(vectors: list, texts: list) -> dict:
    return {"id": "emb-1", "embeddings": {"float": vectors}, "texts": texts, "response_type": "embeddings_by_type",
            "meta": {"api_version": {"version": "2"}, "billed_units": {"input_tokens": 6}}}


def test_sdk_through_cohere(url, ups):
    ups["cohere"].add(Reply(json=cohere_embed_answer(VECTORS, ["first", "second"])))
    with make_client(url) as client:
        resp = client.embed(model="embed-v4.0", texts=["first", "second"], input_type="search_query",
                            embedding_types=["float"], output_dimension=256)
    assert resp.embeddings.float_ == VECTORS
    assert resp.texts == ["first", "second"] and resp.meta.billed_units.input_tokens == 6
    sent = ups["cohere"].requests[0]
    assert (sent.path, sent.json) == ("/v2/embed", {"model": "embed-v4.0", "texts": ["first", "second"],
                                                    "input_type": "search_query", "embedding_types": ["float"],
                                                    "output_dimension": 256})


def test_sdk_through_openai(url, ups):
    ups["openai"].add(Reply(json=openai_embeddings(VECTORS)))
    with make_client(url) as client:
        resp = client.embed(model="openai/text-embedding-3-small", texts=["first", "second"],
                            input_type="search_document", embedding_types=["float"])
    assert resp.embeddings.float_ == VECTORS and resp.meta.billed_units.input_tokens == 4
    assert ups["openai"].requests[0].json == {"model": "text-embedding-3-small", "input": ["first", "second"],
                                              "encoding_format": "float"}


@pytest.mark.parametrize("body, param", [
    ({"texts": ["x"]}, "model"),
    ({"model": "openai/e"}, "texts"),
    ({"model": "openai/e", "texts": []}, "texts"),
    ({"model": "openai/e", "texts": ["x", 3]}, "texts[1]"),
    ({"model": "openai/e", "texts": ["x"], "embedding_types": ["float", "int8"]}, "embedding_types[1]"),
    ({"model": "openai/e", "images": ["data:image/png;base64,AA=="]}, "images"),
    ({"model": "openai/e", "texts": ["x"], "output_dimension": 0}, "output_dimension"),
])
def test_invalid_requests(url, ups, body, param):
    r = requests.post(url + "/cohere/v2/embed", json=body, timeout=10)
    assert r.status_code == 400 and set(r.json()) == {"message"} and param in r.json()["message"]
    assert ups["openai"].requests == []


def test_provider_without_embeddings_is_unsupported(ups, serve):
    url = serve({"providers": {"anthropic": provider_config(ups["openai"].url)}})
    with make_client(url) as client, pytest.raises(cohere.errors.BadRequestError) as info:
        client.embed(model="anthropic/claude-3-5-haiku", texts=["x"], input_type="search_document",
                     embedding_types=["float"])
    assert "embedding is not supported by anthropic provider" in info.value.body["message"]


def test_fallbacks_and_virtual_key(ups, serve):
    url = serve(gateway_config(ups, governance={"virtual_keys": [{"id": "vk15", "name": "team", "value": VK}]}))
    ups["openai"].add(Reply(status=500, json={"error": {"message": "down"}}))
    ups["cohere"].add(Reply(json=cohere_embed_answer(VECTORS[:1], ["x"])))
    with make_client(url, key=VK) as client:
        resp = client.embed(model="openai/text-embedding-3-small", texts=["x"], input_type="search_document",
                            embedding_types=["float"],
                            request_options={"additional_headers": {"x-bf-fallbacks": "cohere/embed-v4.0"}})
    assert resp.embeddings.float_ == VECTORS[:1]
    with make_client(url, key="wrong") as client, pytest.raises(cohere.errors.UnauthorizedError):
        client.embed(model="openai/text-embedding-3-small", texts=["x"], input_type="search_document",
                     embedding_types=["float"])


def test_tokenize_through_cohere(url, ups):
    ups["cohere"].add(Reply(json={"tokens": [8466, 5169], "token_strings": ["tok", "enize"],
                                  "meta": {"api_version": {"version": "1"}}}))
    with make_client(url) as client:
        resp = client.tokenize(text="tokenize", model="command-r", offline=False)
    assert (resp.tokens, resp.token_strings) == ([8466, 5169], ["tok", "enize"])
    sent = ups["cohere"].requests[0]
    assert (sent.path, sent.json) == ("/v1/tokenize", {"text": "tokenize", "model": "command-r"})
    assert sent.headers["authorization"] == "Bearer cohere-SECRET"


def test_tokenize_elsewhere_is_unsupported(url, ups):
    with make_client(url) as client, pytest.raises(cohere.errors.BadRequestError) as info:
        client.tokenize(text="x", model="openai/gpt-4o", offline=False)
    assert info.value.body == {"message": "tokenize is not supported by openai provider"}
    assert ups["openai"].requests == []


@pytest.mark.parametrize("body, param", [({"model": "command-r"}, "text"), ({"text": "x"}, "model"),
                                         ({"text": 1, "model": "command-r"}, "text")])
def test_tokenize_invalid(url, ups, body, param):
    r = requests.post(url + "/cohere/v1/tokenize", json=body, timeout=10)
    assert r.status_code == 400 and param in r.json()["message"]
    assert ups["cohere"].requests == []


@pytest.mark.parametrize("status, error", [(429, cohere.TooManyRequestsError),
                                           (500, cohere.InternalServerError)])
def test_tokenize_upstream_errors(url, ups, status, error):
    ups["cohere"].add(*[Reply(status=status, json={"message": "nope"})] * 5)  # the gateway's retries see it too
    with make_client(url) as client, pytest.raises(error):
        client.tokenize(text="x", model="command-r", offline=False)
