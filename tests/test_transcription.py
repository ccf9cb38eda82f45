"""POST /v1/audio/transcriptions end to end: the official openai SDK uploads a file (multipart), fake
upstreams speak OpenAI's, Azure's, Mistral's and ElevenLabs' multipart APIs and Gemini's generateContent with
inline audio; what they received is read back with the standard library's MIME parser."""

from __future__ import annotations

import base64
import email.parser
import email.policy

import openai
import pytest
import requests

from tests.conftest import OPENAI_KEY, provider_config
from tests.fakes import Reply

AUDIO = b"ID3\x03" + bytes(range(256)) * 64
AZ_KEY = "az-test-SECRET-azure"

VERBOSE = {"task": "transcribe", "language": "english", "duration": 2.5, "text": "Hello there. General Kenobi.",
           "segments": [{"id": 0, "seek": 0, "start": 0.0, "end": 1.2, "text": " Hello there.", "tokens": [1],
                         "temperature": 0.0, "avg_logprob": -0.2, "compression_ratio": 1.0, "no_speech_prob": 0.01},
                        {"id": 1, "seek": 0, "start": 1.2, "end": 2.5, "text": " General Kenobi.", "tokens": [2],
                         "temperature": 0.0, "avg_logprob": -0.2, "compression_ratio": 1.0, "no_speech_prob": 0.01}],
           "words": [{"word": "Hello", "start": 0.0, "end": 0.5}],
           "usage": {"type": "duration", "seconds": 3}}
SCRIBE = {"language_code": "eng", "language_probability": 0.98, "text": "Hello there. General Kenobi.",
          "words": [{"text": "Hello", "start": 0.0, "end": 0.4, "type": "word", "speaker_id": "speaker_0"},
                    {"text": " ", "start": 0.4, "end": 0.45, "type": "spacing"},
                    {"text": "there.", "start": 0.45, "end": 1.1, "type": "word"},
                    {"text": "General", "start": 1.3, "end": 1.8, "type": "word"},
                    {"text": "Kenobi.", "start": 1.8, "end": 2.5, "type": "word"}]}


def form_of(rec) -> tuple[dict, dict]:
    """(text fields: name -> list of values, files: name -> (filename, content type, bytes))."""
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {rec.headers['content-type']}\r\n\r\n".encode() + rec.body)
    assert msg.is_multipart()
    fields, files = {}, {}
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if part.get_filename() is not None:
            files[name] = (part.get_filename(), part.get_content_type(), part.get_payload(decode=True))
        else:
            fields.setdefault(name, []).append(part.get_payload(decode=True).decode())
    return fields, files


@pytest.fixture
def gw(upstream, serve):
    return serve({"client": {"max_request_body_size_mb": 1}, "providers": {
        "openai": provider_config(upstream.url),
        "mistral": provider_config(upstream.url, key="mis-k"),
        "elevenlabs": provider_config(upstream.url, key="xi-k"),
        "gemini": provider_config(upstream.url, key="gk-k"),
        "azure": {"keys": [{"name": "az", "value": AZ_KEY, "azure_key_config": {
            "endpoint": upstream.url, "deployments": {"whisper-1": "whisper-dep"}}}]},
    }})


def sdk(url, prefix="/v1"):
    return openai.OpenAI(base_url=url + prefix, api_key="unused", max_retries=0)


@pytest.mark.parametrize("prefix", ["/v1", "/openai/v1", "/openai"])
def test_openai_verbose_json_with_the_sdk(gw, upstream, prefix):
    upstream.add(Reply(json=VERBOSE))
    with sdk(gw, prefix) as c:
        got = c.audio.transcriptions.create(model="openai/whisper-1", file=("clip.mp3", AUDIO, "audio/mpeg"),
                                            language="en", prompt="Star Wars", temperature=0.2,
                                            response_format="verbose_json", timestamp_granularities=["word", "segment"])
    assert got.text == VERBOSE["text"] and got.duration == 2.5 and got.segments[1].end == 2.5
    assert got.words[0].word == "Hello"
    rec = upstream.requests[0]
    assert (rec.path, rec.headers["authorization"]) == ("/v1/audio/transcriptions", f"Bearer {OPENAI_KEY}")
    fields, files = form_of(rec)
    assert fields == {"model": ["whisper-1"], "language": ["en"], "prompt": ["Star Wars"],
                      "response_format": ["verbose_json"], "temperature": ["0.2"],
                      "timestamp_granularities[]": ["word", "segment"]}
    assert files == {"file": ("clip.mp3", "audio/mpeg", AUDIO)}
    assert rec.headers["content-length"] == str(len(rec.body))


def test_openai_json_default(gw, upstream):
    upstream.add(Reply(json={"text": "Hello.", "usage": {"type": "tokens", "input_tokens": 14, "output_tokens": 3,
                                                         "total_tokens": 17}}))
    with sdk(gw) as c:
        got = c.audio.transcriptions.create(model="openai/gpt-4o-transcribe", file=("a.wav", AUDIO),
                                            include=["logprobs"], chunking_strategy="auto")
    assert got.text == "Hello." and got.usage.total_tokens == 17
    assert got.model_extra["extra_fields"]["provider"] == "openai"
    assert form_of(upstream.requests[0])[0] == {"model": ["gpt-4o-transcribe"], "include[]": ["logprobs"],
                                                "chunking_strategy": ["auto"]}


@pytest.mark.parametrize("fmt,body,ctype", [
    ("text", "Hello there.\n", "text/plain; charset=utf-8"),
    ("srt", "1\n00:00:00,000 --> 00:00:01,200\nHello there.\n\n", "application/x-subrip; charset=utf-8"),
    ("vtt", "WEBVTT\n\n00:00:00.000 --> 00:00:01.200\nHello there.\n\n", "text/vtt; charset=utf-8"),
])
def test_openai_text_formats_pass_through(gw, upstream, fmt, body, ctype):
    upstream.add(Reply(body=body.encode(), content_type="text/plain; charset=utf-8"))
    with sdk(gw) as c:
        got = c.audio.transcriptions.with_raw_response.create(model="openai/whisper-1", file=("a.mp3", AUDIO),
                                                              response_format=fmt)
    assert got.headers["content-type"] == ctype
    assert got.text == body


def test_azure_deployment(gw, upstream):
    upstream.add(Reply(json={"text": "hi"}))
    r = requests.post(gw + "/v1/audio/transcriptions", data={"model": "azure/whisper-1"},
                      files={"file": ("a.mp3", AUDIO, "audio/mpeg")})
    assert r.status_code == 200 and r.json()["text"] == "hi"
    rec = upstream.requests[0]
    assert rec.path == "/openai/deployments/whisper-dep/audio/transcriptions" and rec.headers["api-key"] == AZ_KEY
    assert form_of(rec) == ({"model": ["whisper-1"]}, {"file": ("a.mp3", "audio/mpeg", AUDIO)})


def test_mistral_segments_become_srt(gw, upstream):
    upstream.add(Reply(json={"model": "voxtral-mini-2507", "text": "Hello there. General Kenobi.", "language": "en",
                             "segments": [{"text": "Hello there.", "start": 0.0, "end": 1.2},
                                          {"text": "General Kenobi.", "start": 1.2, "end": 3661.5}],
                             "usage": {"prompt_audio_seconds": 4, "prompt_tokens": 4, "total_tokens": 100,
                                       "completion_tokens": 10}}))
    r = requests.post(gw + "/v1/audio/transcriptions", files={"file": ("a.mp3", AUDIO)},
                      data={"model": "mistral/voxtral-mini-latest", "response_format": "srt", "prompt": "x",
                            "language": "en"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/x-subrip; charset=utf-8"
    assert r.text == ("1\n00:00:00,000 --> 00:00:01,200\nHello there.\n\n"
                      "2\n00:00:01,200 --> 01:01:01,500\nGeneral Kenobi.\n\n")
    rec = upstream.requests[0]
    assert rec.path == "/v1/audio/transcriptions" and rec.headers["authorization"] == "Bearer mis-k"
    assert form_of(rec)[0] == {"model": ["voxtral-mini-latest"], "language": ["en"],
                               "timestamp_granularities": ["segment"]}


@pytest.mark.parametrize("fmt", ["json", "verbose_json", "text", "vtt"])
def test_elevenlabs_scribe(gw, upstream, fmt):
    upstream.add(Reply(json=SCRIBE))
    r = requests.post(gw + "/v1/audio/transcriptions", files={"file": ("a.ogg", AUDIO, "audio/ogg")},
                      data={"model": "elevenlabs/scribe_v1", "language": "en", "temperature": "0",
                            "response_format": fmt, "diarize": "true", "include[]": "logprobs"})
    assert r.status_code == 200, r.text
    rec = upstream.requests[0]
    assert rec.path == "/v1/speech-to-text" and rec.headers["xi-api-key"] == "xi-k"
    assert form_of(rec) == ({"model_id": ["scribe_v1"], "language_code": ["en"], "temperature": ["0.0"],
                             "diarize": ["true"]}, {"file": ("a.ogg", "audio/ogg", AUDIO)})
    expected = {
        "json": lambda: r.json()["text"] == SCRIBE["text"],
        "verbose_json": lambda: (r.json()["language"], r.json()["duration"], [w["word"] for w in r.json()["words"]],
                                 [s["text"] for s in r.json()["segments"]]) == (
            "eng", 2.5, ["Hello", "there.", "General", "Kenobi."], ["Hello there.", "General Kenobi."]),
        "text": lambda: r.text == SCRIBE["text"],
        "vtt": lambda: r.text == ("WEBVTT\n\n00:00:00.000 --> 00:00:01.100\nHello there.\n\n"
                                  "00:00:01.300 --> 00:00:02.500\nGeneral Kenobi.\n\n"),
    }
    assert expected[fmt]()


def test_gemini_inline_audio(gw, upstream):
    upstream.add(Reply(json={"candidates": [{"content": {"role": "model", "parts": [{"text": "Hello there.\n"}]},
                                             "finishReason": "STOP"}],
                             "usageMetadata": {"promptTokenCount": 90, "candidatesTokenCount": 4, "totalTokenCount": 94}}))
    with sdk(gw) as c:
        got = c.audio.transcriptions.create(model="gemini/gemini-2.5-flash", file=("talk.wav", AUDIO, "audio/wav"),
                                            language="en", prompt="a greeting", temperature=0)
    assert got.text == "Hello there." and got.usage.total_tokens == 94
    rec = upstream.requests[0]
    assert rec.path == "/models/gemini-2.5-flash:generateContent" and rec.headers["x-goog-api-key"] == "gk-k"
    assert rec.headers["content-length"] == str(len(rec.body))
    sent = rec.json
    text, inline = sent["contents"][0]["parts"]
    assert text["text"].startswith("Transcribe this audio verbatim.") and "Context: a greeting" in text["text"]
    assert inline["inline_data"]["mime_type"] == "audio/wav"
    assert base64.b64decode(inline["inline_data"]["data"]) == AUDIO
    assert sent["generationConfig"] == {"temperature": 0.0}


def test_elevenlabs_outage_falls_back_to_openai(gw, upstream):
    upstream.add(Reply(status=503, json={"detail": {"status": "overloaded", "message": "busy"}}),
                 Reply(json={"text": "Hello."}))
    r = requests.post(gw + "/v1/audio/transcriptions", files={"file": ("a.mp3", AUDIO)},
                      data={"model": "elevenlabs/scribe_v1", "fallbacks[]": "openai/whisper-1"})
    assert r.status_code == 200 and r.json()["text"] == "Hello."
    assert r.json()["extra_fields"]["provider"] == "openai"
    assert [q.path for q in upstream.requests] == ["/v1/speech-to-text", "/v1/audio/transcriptions"]
    assert form_of(upstream.requests[1])[1]["file"][2] == AUDIO  # the spool is sent again, whole


@pytest.mark.parametrize("data,files,status,message,param", [
    ({"model": "whisper-1"}, True, 400, "model should be in provider/model format", "model"),
    ({"model": "openai/whisper-1"}, False, 400, "file is required for transcription", "file"),
    ({"model": "openai/whisper-1", "response_format": "docx"}, True, 400,
     "invalid request format: response_format: must be one of json, text, srt, verbose_json, vtt", "response_format"),
    ({"model": "openai/whisper-1", "temperature": "warm"}, True, 400,
     "invalid request format: temperature: must be a number", "temperature"),
    ({"model": "openai/whisper-1", "timestamp_granularities[]": "sentence"}, True, 400,
     "invalid request format: timestamp_granularities[]: must be one of word, segment", "timestamp_granularities[]"),
    ({"model": "openai/whisper-1", "stream": "true"}, True, 400, "stream is not supported for transcription", "stream"),
    ({"model": "gemini/gemini-2.5-flash", "response_format": "srt"}, True, 400,
     "response_format srt is not supported by gemini: it gives no timestamps", "response_format"),
    ({"model": "anthropic/claude-x"}, True, 400, "transcription is not supported by anthropic provider", None),
    ({"model": "openai/whisper-1", "fallbacks[]": "nope"}, True, 400,
     "invalid request format: fallbacks[]: must be in provider/model format", "fallbacks[]"),
])
def test_validation(gw, upstream, data, files, status, message, param):
    r = requests.post(gw + "/v1/audio/transcriptions", data=data, files={"file": ("a.mp3", AUDIO)} if files else
                      {"other": ("x.txt", b"x")})
    assert r.status_code == status
    env = r.json()
    assert env["error"]["message"] == message and env["error"].get("param") == param
    assert env["extra_fields"]["request_type"] == "transcription"
    assert upstream.requests == []


def test_json_body_is_415(gw, upstream):
    r = requests.post(gw + "/v1/audio/transcriptions", json={"model": "openai/whisper-1"})
    assert r.status_code == 415
    assert r.json()["error"]["message"] == "invalid request format: the body must be multipart/form-data"


@pytest.mark.parametrize("chunked", [False, True])
def test_body_limit_is_413(gw, upstream, chunked):
    big = b"x" * (2 * 1024 * 1024)
    boundary = "lim"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nopenai/whisper-1\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.mp3\"\r\n\r\n").encode() + big
    data = (body[i:i + 65536] for i in range(0, len(body), 65536)) if chunked else body
    r = requests.post(gw + "/v1/audio/transcriptions", data=data,
                      headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert r.status_code == 413
    assert r.json()["error"]["type"] == "request_too_large"
    assert upstream.requests == []
