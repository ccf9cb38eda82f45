"""OpenAI's audio routes on the unified API: ``/v1/audio/speech`` (and under ``/openai``).

Speech answers with the audio bytes as the provider sends them (``Content-Type`` from the format the
answering target produces), or with ``stream_format: "sse"`` as ``speech.audio.delta`` events (base64 audio)
then ``speech.audio.done`` and ``[DONE]``. Either way the bytes are relayed as they arrive."""

from __future__ import annotations

import base64

from .. import web
from ..errors import GatewayError
from ..operations import SPEECH
from ..routing import byte_relay
from ..schemas.speech import parse_speech
from ..urls import Route
from ..wire.sse import DONE, encode
from . import inbound


def named(err: GatewayError, req, ctx) -> None:
    """Every error of these routes names their request type (and the target, once the body said it)."""
    if not err.request_type:
        err.attach(provider=getattr(req, "provider", ""), model=getattr(req, "model", ""),
                   request_type=ctx.request_type)


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
    ctx.request_type = SPEECH.request_type
    req = None
    try:
        inbound.authenticate(gateway, environ)
        req = parse_speech(web.parse_json(web.read_body(environ, gateway.body_limit)))
        inbound.bind(gateway, environ, ctx, req, SPEECH)
        req.map_voices({name: conf.voices for name, conf in gateway.config.providers.items()})
        body = byte_relay.open_bytes(gateway.router, req, ctx, SpeechEvents() if req.stream else RawAudio(), SPEECH)
    except GatewayError as err:
        named(err, req, ctx)
        raise
    gateway.stream_started(ctx)
    headers = web.SSE_HEADERS if req.stream else [("Content-Type", body.media_type)]
    start_response("200 OK", [*headers, ("x-request-id", ctx.request_id)])
    return body


_SPEECH = {"POST": Route(speech, inference=True)}
ROUTES = {"/v1/audio/speech": _SPEECH, "/openai/v1/audio/speech": _SPEECH, "/openai/audio/speech": _SPEECH}
