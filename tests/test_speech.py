"""POST /v1/audio/speech end to end: the official openai SDK against the gateway, fake upstreams speaking
each provider's speech API (OpenAI, Azure, ElevenLabs, Gemini TTS), recorded requests asserted."""

from __future__ import annotations

import base64
import io
import json
import wave

import openai
import pytest
import requests

from tests.conftest import OPENAI_KEY, provider_config
from tests.fakes import Reply, sse

XI_KEY = "xi-test-SECRET-eleven"
AZ_KEY = "az-test-SECRET-azure"
GK_KEY = "gk-test-SECRET-gemini"
MP3 = b"ID3\x04" + bytes(range(256)) * 40


def audio(status=200, data=MP3, ctype="audio/mpeg", pieces=4):
    step = max(1, len(data) // pieces)
    return Reply(status=status, chunks=[data[i:i + step] for i in range(0, len(data), step)], content_type=ctype)


def gemini_events(*pcm_pieces, rate=24000):
    events = [{"candidates": [{"content": {"role": "model", "parts": [{"inlineData": {
        "mimeType": f"audio/L16;codec=pcm;rate={rate}", "data": base64.b64encode(p).decode()}}]}}]}
        for p in pcm_pieces]
    events[-1]["candidates"][0]["finishReason"] = "STOP"
    events[-1]["usageMetadata"] = {"promptTokenCount": 5, "candidatesTokenCount": 40, "totalTokenCount": 45}
    return sse(*events, done=False, sep=b"\r\n")


@pytest.fixture
def gw(upstream, serve):
    config = {"providers": {
        "openai": {**provider_config(upstream.url), "voices": {"rachel": "nova"}},
        "elevenlabs": {**provider_config(upstream.url, key=XI_KEY), "voices": {"rachel": "21m00Tcm4TlvDqa8ikWrAM"}},
        "azure": {"keys": [{"name": "az", "value": AZ_KEY, "azure_key_config": {
            "endpoint": upstream.url, "deployments": {"gpt-4o-mini-tts": "tts-dep"}, "api_version": "2025-03-01-preview"}}]},
        "gemini": provider_config(upstream.url, key=GK_KEY),
        "anthropic": provider_config(upstream.url, key="sk-ant-x"),
    }}
    return serve(config)


def client(url, prefix="/v1"):
    return openai.OpenAI(base_url=url + prefix, api_key="unused", max_retries=0)


@pytest.mark.parametrize("prefix", ["/v1", "/openai/v1", "/openai"])
def test_openai_speech_with_the_sdk(gw, upstream, prefix):
    upstream.add(audio())
    with client(gw, prefix) as c:
        got = c.audio.speech.create(model="openai/gpt-4o-mini-tts", voice="alloy", input="Hello there",
                                    response_format="mp3", speed=1.25, instructions="cheerful")
    assert got.content == MP3
    assert got.response.headers["content-type"] == "audio/mpeg"
    rec = upstream.requests[0]
    assert (rec.method, rec.path) == ("POST", "/v1/audio/speech")
    assert rec.headers["authorization"] == f"Bearer {OPENAI_KEY}"
    assert rec.json == {"model": "gpt-4o-mini-tts", "input": "Hello there", "voice": "alloy",
                        "response_format": "mp3", "speed": 1.25, "instructions": "cheerful"}


def test_streaming_response_relays_every_piece(gw, upstream):
    data = bytes(range(256)) * 1000
    upstream.add(audio(data=data, ctype="audio/wav", pieces=16))
    with client(gw) as c:
        with c.audio.speech.with_streaming_response.create(model="openai/tts-1", voice="nova", input="long text",
                                                           response_format="wav") as resp:
            assert resp.headers["content-type"] == "audio/wav"
            assert resp.headers.get("content-length") is None  # relayed, not buffered
            got = b"".join(resp.iter_bytes())
    assert got == data


def test_azure_speech(gw, upstream):
    upstream.add(audio(data=b"OggS-opus-bytes", ctype="audio/opus"))
    with client(gw) as c:
        got = c.audio.speech.create(model="azure/gpt-4o-mini-tts", voice="shimmer", input="hi",
                                    response_format="opus")
    assert got.content == b"OggS-opus-bytes"
    assert got.response.headers["content-type"] == "audio/opus"
    rec = upstream.requests[0]
    assert rec.path == "/openai/deployments/tts-dep/audio/speech"
    assert rec.query == {"api-version": ["2025-03-01-preview"]}
    assert rec.headers["api-key"] == AZ_KEY and "authorization" not in rec.headers


def test_elevenlabs_speech_documented_wire(gw, upstream):
    upstream.add(audio())
    with client(gw) as c:
        got = c.audio.speech.create(model="elevenlabs/eleven_multilingual_v2", voice="JBFqnCBsd6RMkjVDRZzb",
                                    input="Bonjour", speed=1.1,
                                    extra_body={"voice_settings": {"stability": 0.4, "similarity_boost": 0.8},
                                                "language_code": "fr", "seed": 7, "enable_logging": False})
    assert got.content == MP3 and got.response.headers["content-type"] == "audio/mpeg"
    rec = upstream.requests[0]
    assert (rec.method, rec.path) == ("POST", "/v1/text-to-speech/JBFqnCBsd6RMkjVDRZzb")
    assert rec.query == {"output_format": ["mp3_44100_128"], "enable_logging": ["false"]}
    assert rec.headers["xi-api-key"] == XI_KEY and "authorization" not in rec.headers
    assert rec.json == {"text": "Bonjour", "model_id": "eleven_multilingual_v2", "language_code": "fr",
                        "voice_settings": {"stability": 0.4, "similarity_boost": 0.8, "speed": 1.1}, "seed": 7}


@pytest.mark.parametrize("fmt,output_format,ctype", [
    ("mp3", "mp3_44100_128", "audio/mpeg"),
    ("opus", "opus_48000_128", "audio/opus"),
    ("pcm", "pcm_24000", "audio/pcm"),
    ("wav", "pcm_24000", "audio/wav"),
])
def test_elevenlabs_formats(gw, upstream, fmt, output_format, ctype):
    pcm = b"\x01\x02" * 500
    upstream.add(audio(data=pcm, ctype="application/octet-stream"))
    r = requests.post(gw + "/v1/audio/speech", json={"model": "elevenlabs/eleven_flash_v2_5", "voice": "v1",
                                                      "input": "x", "response_format": fmt})
    assert r.status_code == 200 and r.headers["content-type"] == ctype
    assert upstream.requests[0].query["output_format"] == [output_format]
    if fmt == "wav":
        w = wave.open(io.BytesIO(r.content))
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (24000, 1, 2)
        assert w.readframes(10_000) == pcm
    else:
        assert r.content == pcm


def test_elevenlabs_error_detail(gw, upstream):
    upstream.add(Reply(status=401, json={"detail": {"status": "invalid_api_key", "message": "Invalid API key"}}))
    r = requests.post(gw + "/v1/audio/speech", json={"model": "elevenlabs/eleven_v3", "voice": "v", "input": "x"})
    assert r.status_code == 401
    env = r.json()
    assert env["error"]["message"] == "Invalid API key" and env["error"]["code"] == "invalid_api_key"
    assert env["extra_fields"] == {"provider": "elevenlabs", "model_requested": "eleven_v3", "request_type": "speech"}


@pytest.mark.parametrize("fmt", ["wav", None, "pcm"])
def test_gemini_tts_inline_pcm(gw, upstream, fmt):
    pieces = [b"\x10\x00" * 300, b"\x20\x00" * 200]
    upstream.add(Reply(chunks=gemini_events(*pieces)))
    body = {"model": "gemini/gemini-2.5-flash-preview-tts", "voice": "Kore", "input": "Have a nice day",
            "instructions": "Say cheerfully"}
    if fmt:
        body["response_format"] = fmt
    r = requests.post(gw + "/v1/audio/speech", json=body)
    assert r.status_code == 200
    if fmt == "pcm":
        assert r.headers["content-type"] == "audio/pcm" and r.content == b"".join(pieces)
    else:
        assert r.headers["content-type"] == "audio/wav"
        w = wave.open(io.BytesIO(r.content))
        assert w.getframerate() == 24000 and w.readframes(100_000) == b"".join(pieces)
    rec = upstream.requests[0]
    assert rec.path == "/models/gemini-2.5-flash-preview-tts:streamGenerateContent"
    assert rec.query == {"alt": ["sse"]} and rec.headers["x-goog-api-key"] == GK_KEY
    assert rec.json == {"contents": [{"role": "user", "parts": [{"text": "Say cheerfully: Have a nice day"}]}],
                        "generationConfig": {"responseModalities": ["AUDIO"], "speechConfig": {
                            "voiceConfig": {"prebuiltVoiceConfig": {"voiceName": "Kore"}}}}}


@pytest.mark.parametrize("provider,fmt", [("gemini", "mp3"), ("gemini", "flac"), ("elevenlabs", "aac")])
def test_formats_a_provider_cannot_produce(gw, upstream, provider, fmt):
    r = requests.post(gw + "/v1/audio/speech", json={"model": f"{provider}/m", "voice": "v", "input": "x",
                                                      "response_format": fmt})
    assert r.status_code == 400
    assert r.json()["error"]["message"] == f"response_format {fmt} is not supported by {provider}"
    assert r.json()["error"]["param"] == "response_format"
    assert upstream.requests == []


def test_sse_stream_format(gw, upstream):
    upstream.add(audio(data=b"abcdefgh" * 100, pieces=4))
    r = requests.post(gw + "/v1/audio/speech", json={"model": "openai/gpt-4o-mini-tts", "voice": "alloy",
                                                      "input": "x", "stream_format": "sse"}, stream=True)
    assert r.headers["content-type"] == "text/event-stream"
    events = [line[6:] for line in r.iter_lines() if line.startswith(b"data: ")]
    assert events[-1] == b"[DONE]"
    parsed = [json.loads(e) for e in events[:-1]]
    assert [p["type"] for p in parsed][-1] == "speech.audio.done"
    assert {p["type"] for p in parsed[:-1]} == {"speech.audio.delta"}
    assert b"".join(base64.b64decode(p["audio"]) for p in parsed[:-1]) == b"abcdefgh" * 100
    assert "stream_format" not in upstream.requests[0].json


@pytest.mark.parametrize("body,message,param", [
    ({"voice": "a", "input": "x"}, "model should be in provider/model format", "model"),
    ({"model": "openai/tts-1", "voice": "a"}, "input is required for speech", "input"),
    ({"model": "openai/tts-1", "input": "x"}, "voice is required for speech", "voice"),
    ({"model": "openai/tts-1", "input": "x", "voice": "a", "speed": 9},
     "invalid request format: speed: must be between 0.25 and 4", "speed"),
    ({"model": "openai/tts-1", "input": "x", "voice": "a", "response_format": "ogg"},
     "invalid request format: response_format: must be one of mp3, opus, aac, flac, wav, pcm", "response_format"),
    ({"model": "openai/tts-1", "input": 5, "voice": "a"}, "invalid request format: input: must be a string", "input"),
    ({"model": "anthropic/claude", "input": "x", "voice": "a"}, "speech is not supported by anthropic provider", None),
    ({"model": "groq/playai-tts", "input": "x", "voice": "a"}, "provider groq is not configured", "model"),
])
def test_validation(gw, upstream, body, message, param):
    r = requests.post(gw + "/v1/audio/speech", json=body)
    assert r.status_code == 400
    env = r.json()
    assert env["error"]["message"] == message and env["error"].get("param") == param
    assert env["extra_fields"]["request_type"] == "speech"
    assert upstream.requests == []




def test_elevenlabs_outage_falls_back_to_openai_with_its_own_voice(gw, upstream):
    upstream.add(Reply(status=503, json={"detail": {"status": "service_unavailable", "message": "busy"}}), audio())
    with client(gw) as c:
        got = c.audio.speech.create(model="elevenlabs/eleven_v3", voice="rachel", input="Hi",
                                    extra_body={"fallbacks": ["openai/gpt-4o-mini-tts"]})
    assert got.content == MP3
    first, second = upstream.requests
    assert first.path == "/v1/text-to-speech/21m00Tcm4TlvDqa8ikWrAM"  # the primary's own mapping
    assert second.path == "/v1/audio/speech"
    assert second.json["voice"] == "nova" and second.json["model"] == "gpt-4o-mini-tts"
    assert "fallbacks" not in second.json


def test_a_fallback_without_a_voice_mapping_is_refused_up_front(gw, upstream):
    r = requests.post(gw + "/v1/audio/speech", json={"model": "elevenlabs/eleven_v3", "voice": "rachel",
                                                      "input": "x", "fallbacks": ["gemini/gemini-2.5-flash-preview-tts"]})
    assert r.status_code == 400
    assert r.json()["error"] == {"message": "voice rachel has no mapping for fallback provider gemini: add it to "
                                            "providers.gemini.voices", "type": "invalid_request_error", "param": "voice"}
    assert upstream.requests == []


def test_same_provider_fallback_keeps_the_voice(gw, upstream):
    upstream.add(Reply(status=500, json={"error": {"message": "boom"}}), audio())
    r = requests.post(gw + "/v1/audio/speech", json={"model": "openai/gpt-4o-mini-tts", "voice": "alloy",
                                                      "input": "x", "fallbacks": ["openai/tts-1"]})
    assert r.status_code == 200 and r.content == MP3
    assert [q.json["voice"] for q in upstream.requests] == ["alloy", "alloy"]
    assert upstream.requests[1].json["model"] == "tts-1"


VK = "sk-bf-speech-team-0001"


@pytest.fixture
def vk_gw(upstream, serve):
    return serve({"providers": {"openai": provider_config(upstream.url),
                                "elevenlabs": provider_config(upstream.url, key=XI_KEY)},
                  "governance": {"virtual_keys": [{"id": "vk-speech", "name": "speech", "value": VK,
                                                   "provider_configs": [{"provider": "openai",
                                                                         "allowed_models": ["tts-1"]}]}]}})


def test_virtual_keys_govern_every_audio_and_image_route(vk_gw, upstream):
    upstream.add(audio())
    with openai.OpenAI(base_url=vk_gw + "/v1", api_key=VK, max_retries=0) as c:
        assert c.audio.speech.create(model="openai/tts-1", voice="alloy", input="hi").content == MP3
        with pytest.raises(openai.PermissionDeniedError) as info:
            c.audio.speech.create(model="elevenlabs/eleven_v3", voice="v", input="hi")
        assert info.value.body["code"] == "provider_blocked"
    for path, kw in (("/v1/audio/speech", {"json": {"model": "openai/tts-1", "voice": "a", "input": "x"}}),
                     ("/v1/images/generations", {"json": {"model": "openai/dall-e-3", "prompt": "x"}}),
                     ("/v1/audio/transcriptions", {"files": {"file": ("a.mp3", b"x")}, "data": {"model": "openai/whisper-1"}})):
        r = requests.post(vk_gw + path, **kw)
        assert r.status_code == 401 and r.json()["error"]["code"] == "virtual_key_required", path
    assert len(upstream.requests) == 1


def test_a_failure_after_the_first_bytes_is_an_sse_error_event(gw, upstream):
    upstream.add(Reply(chunks=[b"ID3-partial-audio", b"more"], content_type="audio/mpeg", fault="truncate"))
    r = requests.post(gw + "/v1/audio/speech", json={"model": "openai/tts-1", "voice": "a", "input": "x",
                                                      "stream_format": "sse"})
    events = [line[6:] for line in r.iter_lines() if line.startswith(b"data: ")]
    assert events[-1] == b"[DONE]"
    assert json.loads(events[0])["type"] == "speech.audio.delta"
    failure = json.loads(events[-2])
    assert failure["error"]["type"] == "upstream_protocol_error"
    assert failure["extra_fields"]["request_type"] == "speech_stream"


def test_an_upstream_without_audio_fails_over(gw, upstream):
    upstream.add(Reply(chunks=[], content_type="audio/mpeg"), audio())
    r = requests.post(gw + "/v1/audio/speech", json={"model": "openai/tts-1", "voice": "a", "input": "x",
                                                      "fallbacks": ["openai/gpt-4o-mini-tts"]})
    assert r.status_code == 200 and r.content == MP3
    assert [q.json["model"] for q in upstream.requests] == ["tts-1", "gpt-4o-mini-tts"]
