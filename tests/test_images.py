"""POST /v1/images/generations end to end with the official openai SDK, against fake upstreams speaking
OpenAI's images API (openai, azure, xai, nebius), Gemini's Imagen ``:predict`` and image-output
``:generateContent``, and Vertex's Imagen."""

from __future__ import annotations

import openai
import pytest
import requests

from tests.conftest import OPENAI_KEY, provider_config
from tests.fakes import Reply

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
AZ_KEY = "az-test-SECRET-azure"


def openai_images(*, url=False, n=1):
    item = {"url": "https://img.example/1.png"} if url else {"b64_json": PNG}
    return {"created": 1_750_000_000, "data": [{**item, "revised_prompt": "a red fox, watercolor"}] * n,
            "background": "opaque", "output_format": "png", "quality": "high", "size": "1024x1024",
            "usage": {"input_tokens": 12, "input_tokens_details": {"image_tokens": 0, "text_tokens": 12},
                      "output_tokens": 4160, "total_tokens": 4172}}


@pytest.fixture
def gw(upstream, serve):
    return serve({"providers": {
        "openai": provider_config(upstream.url),
        "xai": provider_config(upstream.url, key="xai-k"),
        "nebius": provider_config(upstream.url, key="neb-k"),
        "groq": provider_config(upstream.url, key="gsk-k"),
        "azure": {"keys": [{"name": "az", "value": AZ_KEY, "azure_key_config": {
            "endpoint": upstream.url, "deployments": {"dall-e-3": "dalle-dep"}}}]},
        "gemini": provider_config(upstream.url, key="gk-k"),
        "vertex": {"keys": [{"name": "v", "value": "ya29.static-token", "vertex_key_config": {
            "project_id": "proj-1", "region": "us-central1"}}],
            "network_config": {"base_url": upstream.url, "default_request_timeout_in_seconds": 5}},
        "elevenlabs": provider_config(upstream.url, key="xi-k"),
    }})


def sdk(url, prefix="/v1"):
    return openai.OpenAI(base_url=url + prefix, api_key="unused", max_retries=0)


@pytest.mark.parametrize("prefix", ["/v1", "/openai/v1", "/openai"])
def test_openai_gpt_image_1(gw, upstream, prefix):
    upstream.add(Reply(json=openai_images()))
    with sdk(gw, prefix) as c:
        got = c.images.generate(model="openai/gpt-image-1", prompt="a red fox", size="1024x1024", quality="high",
                                background="opaque", n=1)
    assert got.data[0].b64_json == PNG and got.data[0].revised_prompt == "a red fox, watercolor"
    assert got.usage.total_tokens == 4172 and got.created == 1_750_000_000
    raw = got.model_extra["extra_fields"]
    assert (raw["provider"], raw["model_requested"], raw["request_type"]) == ("openai", "gpt-image-1", "image_generation")
    rec = upstream.requests[0]
    assert (rec.path, rec.headers["authorization"]) == ("/v1/images/generations", f"Bearer {OPENAI_KEY}")
    assert rec.json == {"model": "gpt-image-1", "prompt": "a red fox", "size": "1024x1024", "quality": "high",
                        "background": "opaque", "n": 1}


@pytest.mark.parametrize("provider,model,key", [("openai", "dall-e-3", OPENAI_KEY), ("xai", "grok-2-image", "xai-k"),
                                                ("nebius", "black-forest-labs/flux-schnell", "neb-k")])
def test_openai_compatible_rows(gw, upstream, provider, model, key):
    upstream.add(Reply(json={"created": 1, "data": [{"url": "https://img.example/1.png", "revised_prompt": None}]}))
    with sdk(gw) as c:
        got = c.images.generate(model=f"{provider}/{model}", prompt="a fox", response_format="url")
    assert got.data[0].url == "https://img.example/1.png" and got.data[0].revised_prompt is None
    assert got.usage is None
    rec = upstream.requests[0]
    assert rec.path == "/v1/images/generations" and rec.headers["authorization"] == f"Bearer {key}"
    assert rec.json == {"model": model, "prompt": "a fox", "response_format": "url"}


def test_azure_deployment(gw, upstream):
    upstream.add(Reply(json=openai_images(url=True)))
    with sdk(gw) as c:
        got = c.images.generate(model="azure/dall-e-3", prompt="a fox", style="vivid")
    assert got.data[0].url == "https://img.example/1.png"
    rec = upstream.requests[0]
    assert rec.path == "/openai/deployments/dalle-dep/images/generations"
    assert rec.query == {"api-version": ["2024-10-21"]} and rec.headers["api-key"] == AZ_KEY


def test_gemini_imagen_predict(gw, upstream):
    upstream.add(Reply(json={"predictions": [
        {"bytesBase64Encoded": PNG, "mimeType": "image/png", "prompt": "an enhanced fox"},
        {"raiFilteredReason": "filtered for safety"},
        {"bytesBase64Encoded": PNG, "mimeType": "image/png"}]}))
    with sdk(gw) as c:
        got = c.images.generate(model="gemini/imagen-4.0-generate-001", prompt="a fox", n=3, size="1792x1024",
                                output_format="jpeg", extra_body={"personGeneration": "dont_allow"})
    assert [d.b64_json for d in got.data] == [PNG, PNG]
    assert got.data[0].revised_prompt == "an enhanced fox"
    rec = upstream.requests[0]
    assert rec.path == "/models/imagen-4.0-generate-001:predict" and rec.headers["x-goog-api-key"] == "gk-k"
    assert rec.json == {"instances": [{"prompt": "a fox"}], "parameters": {
        "sampleCount": 3, "aspectRatio": "16:9", "outputOptions": {"mimeType": "image/jpeg"},
        "personGeneration": "dont_allow"}}


def test_gemini_image_output_model(gw, upstream):
    upstream.add(Reply(json={"candidates": [{"content": {"role": "model", "parts": [
        {"text": "Here is your fox."}, {"inlineData": {"mimeType": "image/png", "data": PNG}}]},
        "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 6, "candidatesTokenCount": 1290, "totalTokenCount": 1296}}))
    with sdk(gw) as c:
        got = c.images.generate(model="gemini/gemini-2.5-flash-image", prompt="a fox", size="1024x1536")
    assert got.data[0].b64_json == PNG
    assert (got.usage.input_tokens, got.usage.output_tokens, got.usage.total_tokens) == (6, 1290, 1296)
    rec = upstream.requests[0]
    assert rec.path == "/models/gemini-2.5-flash-image:generateContent"
    assert rec.json == {"contents": [{"role": "user", "parts": [{"text": "a fox"}]}], "generationConfig": {
        "responseModalities": ["TEXT", "IMAGE"], "imageConfig": {"aspectRatio": "2:3"}}}


def test_vertex_imagen(gw, upstream):
    upstream.add(Reply(json={"predictions": [{"bytesBase64Encoded": PNG, "mimeType": "image/png"}]}))
    with sdk(gw) as c:
        got = c.images.generate(model="vertex/imagen-3.0-generate-002", prompt="a fox")
    assert got.data[0].b64_json == PNG
    rec = upstream.requests[0]
    assert rec.path == ("/v1/projects/proj-1/locations/us-central1/publishers/google/models/"
                        "imagen-3.0-generate-002:predict")
    assert rec.headers["authorization"] == "Bearer ya29.static-token"
    assert rec.json == {"instances": [{"prompt": "a fox"}], "parameters": {"sampleCount": 1}}


def test_imagen_all_filtered_is_a_content_refusal(gw, upstream):
    upstream.add(Reply(json={"predictions": [{"raiFilteredReason": "Unable to show generated images."}]}))
    r = requests.post(gw + "/v1/images/generations", json={"model": "gemini/imagen-4.0-generate-001", "prompt": "x"})
    assert r.status_code == 400
    assert r.json()["error"]["message"] == "Unable to show generated images."
    assert len(upstream.requests) == 1


def test_fallback_across_providers(gw, upstream):
    upstream.add(Reply(status=503, json={"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}}),
                 Reply(json=openai_images()))
    r = requests.post(gw + "/v1/images/generations", json={
        "model": "gemini/imagen-4.0-generate-001", "prompt": "x", "fallbacks": ["openai/gpt-image-1"]})
    assert r.status_code == 200
    assert r.json()["extra_fields"]["provider"] == "openai"
    assert [q.path for q in upstream.requests] == ["/models/imagen-4.0-generate-001:predict", "/v1/images/generations"]


def test_malformed_answer_is_a_502(gw, upstream):
    upstream.add(Reply(json={"created": 1, "data": [{"nothing": True}]}))
    r = requests.post(gw + "/v1/images/generations", json={"model": "openai/dall-e-3", "prompt": "x"})
    assert r.status_code == 502


@pytest.mark.parametrize("body,message,param", [
    ({"prompt": "x"}, "model should be in provider/model format", "model"),
    ({"model": "openai/dall-e-3"}, "prompt is required for image generation", "prompt"),
    ({"model": "openai/dall-e-3", "prompt": "x", "n": 0}, "invalid request format: n: must be between 1 and 10", "n"),
    ({"model": "openai/dall-e-3", "prompt": "x", "response_format": "png"},
     "invalid request format: response_format: must be one of url, b64_json", "response_format"),
    ({"model": "openai/dall-e-3", "prompt": "x", "stream": True}, "stream is not supported for image generation",
     "stream"),
    ({"model": "gemini/imagen-4.0-generate-001", "prompt": "x", "response_format": "url"},
     "response_format url is not supported by gemini: it answers with the image bytes (b64_json)", "response_format"),
    ({"model": "gemini/gemini-2.5-flash-image", "prompt": "x", "n": 2},
     "n > 1 is not supported by gemini image-output models (one image per call)", "n"),
    ({"model": "elevenlabs/x", "prompt": "x"}, "image_generation is not supported by elevenlabs provider", None),
    ({"model": "groq/x", "prompt": "x"}, "image_generation is not supported by groq provider", None),
    ({"model": "anthropic/x", "prompt": "x"}, "image_generation is not supported by anthropic provider", None),
])
def test_validation(gw, upstream, body, message, param):
    r = requests.post(gw + "/v1/images/generations", json=body)
    assert r.status_code == 400
    env = r.json()
    assert env["error"]["message"] == message and env["error"].get("param") == param
    assert env["extra_fields"]["request_type"] == "image_generation"
    if "not supported by" in message and "provider" in message:
        assert env["error"]["type"] == "unsupported_operation"
    assert upstream.requests == []
