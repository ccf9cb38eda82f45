"""OpenAI's audio routes on the unified API: ``/v1/audio/speech`` and ``/v1/audio/transcriptions`` (and
under ``/openai``).

Speech answers with the audio bytes as the provider sends them (``Content-Type`` from the format the
answering target produces), or with ``stream_format: "sse"`` as ``speech.audio.delta`` events (base64 audio)
then ``speech.audio.done`` and ``[DONE]``. Either way the bytes are relayed as they arrive.

Transcription reads the multipart upload as it arrives, the file into a spool (surfaces/uploads.py), which
the translators send on from there; the transcript is rendered in the requested ``response_format``."""

from __future__ import annotations

import base64

from .. import web
from ..errors import GatewayError
from ..operations import SPEECH, TRANSCRIPTION
from ..routing import byte_relay
from ..schemas.speech import parse_speech
from ..schemas.transcription import parse_transcription
from ..urls import Route
from ..wire.sse import DONE, encode
from . import inbound, transcripts, unified, uploads


class RawAudio:
    """The bytes as they are. A failure after the first byte cannot be told in an audio file: the
    connection is cut (the body ends without its terminating chunk), so no client takes it for whole."""

    def chunk(self, data: bytes) -> bytes:
        return data

    def finish(self) -> bytes:
        return b""

    def failure(self, err: GatewayError) -> bytes:
        raise err


class SpeechEvents:
    """OpenAI's speech stream events."""

    def chunk(self, data: bytes) -> bytes:
        return encode({"type": "speech.audio.delta", "audio": base64.b64encode(data).decode()})

    def finish(self) -> bytes:
        return encode({"type": "speech.audio.done"}) + DONE

    def failure(self, err: GatewayError) -> bytes:
        return encode(err.to_dict()) + DONE


def speech(gateway, environ, start_response, ctx):
    req = unified.accept_json(gateway, environ, ctx, parse_speech, SPEECH)
    with inbound.naming(ctx, req):
        req.map_voices({name: conf.voices for name, conf in gateway.config.providers.items()})
        body = byte_relay.open_bytes(gateway.router, req, ctx, SpeechEvents() if req.stream else RawAudio(), SPEECH)
    gateway.stream_started(ctx)
    headers = web.SSE_HEADERS if req.stream else [("Content-Type", body.media_type)]
    start_response("200 OK", [*headers, ("x-request-id", ctx.request_id)])
    return body


def transcription(gateway, environ, start_response, ctx):
    ctx.request_type = TRANSCRIPTION.request_type
    with inbound.naming(ctx):
        inbound.authenticate(gateway, environ)
        form = uploads.read_form(environ, gateway.body_limit, file_fields=frozenset({"file"}))
    try:
        with inbound.naming(ctx):
            req = parse_transcription(form.fields, form.files)
        with inbound.naming(ctx, req):
            inbound.bind(gateway, environ, ctx, req, TRANSCRIPTION)
            answer = gateway.router.complete(req, ctx, TRANSCRIPTION)
            body = transcripts.render(answer.body, req.response_format)
    finally:
        form.close()
    headers = [("x-request-id", ctx.request_id)]
    if isinstance(body, dict):
        body["extra_fields"] = answer.extra_fields(TRANSCRIPTION.request_type)
        return web.json_response(start_response, 200, body, headers)
    data = body.encode()
    start_response("200 OK", [("Content-Type", transcripts.CONTENT_TYPES[req.response_format]),
                              ("Content-Length", str(len(data))), *headers])
    return [data]


_SPEECH = {"POST": Route(speech, inference=True)}
_TRANSCRIPTION = {"POST": Route(transcription, inference=True)}
ROUTES = {"/v1/audio/speech": _SPEECH, "/openai/v1/audio/speech": _SPEECH, "/openai/audio/speech": _SPEECH,
          "/v1/audio/transcriptions": _TRANSCRIPTION, "/openai/v1/audio/transcriptions": _TRANSCRIPTION,
          "/openai/audio/transcriptions": _TRANSCRIPTION}
