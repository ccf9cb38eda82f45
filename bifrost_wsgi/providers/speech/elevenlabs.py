"""ElevenLabs text to speech: ``POST /v1/text-to-speech/{voice_id}?output_format=…`` with
``{"text", "model_id", "voice_settings", …}``; the answer is the audio.

* ``response_format`` becomes ``output_format``: mp3 ``mp3_44100_128``, opus ``opus_48000_128``, pcm
  ``pcm_24000`` (OpenAI's pcm: 24 kHz 16-bit mono), wav the same PCM with a WAV header added here; aac and
  flac have no ElevenLabs format (400). An ``output_format`` in the body is used as it is instead.
* ``speed`` goes into ``voice_settings.speed``; ``voice_settings`` and ElevenLabs' other documented body
  fields are taken from the body as they are; ``instructions`` has no ElevenLabs field and is dropped.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

from ...transport import UpstreamRequest
from ..base import dumps
from ..elevenlabs import ADAPTER as ELEVENLABS
from .audio import Passthrough, PCMOut, refuse_format, requested

OUTPUT_FORMATS = {"mp3": "mp3_44100_128", "opus": "opus_48000_128", "pcm": "pcm_24000", "wav": "pcm_24000"}
#: the Content-Type of an ``output_format`` a client names itself, by its codec prefix
CODEC_TYPES = {"mp3": "audio/mpeg", "pcm": "audio/pcm", "opus": "audio/opus", "ulaw": "audio/basic",
               "alaw": "audio/x-alaw-basic", "wav": "audio/wav"}
BODY_FIELDS = ("language_code", "voice_settings", "pronunciation_dictionary_locators", "seed", "previous_text",
               "next_text", "previous_request_ids", "next_request_ids", "apply_text_normalization",
               "apply_language_text_normalization", "use_pvc_as_ivc")
QUERY_FIELDS = ("enable_logging", "optimize_streaming_latency")


class CustomFormat:
    """An ``output_format`` the client chose: the bytes as ElevenLabs sends them."""

    __slots__ = ("media_type", "done")

    def __init__(self, output_format: str) -> None:
        self.media_type = CODEC_TYPES.get(output_format.partition("_")[0], "application/octet-stream")
        self.done = False

    def feed(self, data: bytes) -> list[bytes]:
        return [data]

    def end(self) -> list[bytes]:
        return []


class WavFromPCM(PCMOut):
    __slots__ = ("done",)

    def __init__(self) -> None:
        super().__init__("wav")
        self.done = False

    def feed(self, data: bytes) -> list[bytes]:
        return [self.piece(data, rate=24000)]

    def end(self) -> list[bytes]:
        return []


class ElevenLabsSpeech:
    framing = "bytes"
    parse_error = staticmethod(ELEVENLABS.parse_error)

    def build_request(self, req, target, *, stream: bool, passthrough: bool) -> UpstreamRequest:
        extra = req.extra
        output_format = extra.get("output_format")
        if not isinstance(output_format, str):
            fmt = requested(req)
            output_format = OUTPUT_FORMATS.get(fmt)
            if output_format is None:
                raise refuse_format(fmt, "elevenlabs")
        body: dict = {"text": req.input, "model_id": target.model}
        for name in BODY_FIELDS:
            if name in extra:
                body[name] = extra[name]
        if "speed" in req.params:
            settings = body.get("voice_settings")
            body["voice_settings"] = {**(settings if isinstance(settings, dict) else {}), "speed": req.params["speed"]}
        query = {"output_format": output_format}
        for k in QUERY_FIELDS:
            if k in extra:
                value = extra[k]
                query[k] = str(value).lower() if isinstance(value, bool) else value
        url = f"{target.base_url}/v1/text-to-speech/{quote(req.voice, safe='')}?{urlencode(query)}"
        return UpstreamRequest("POST", url, {"Content-Type": "application/json", "Accept": "*/*"},
                               dumps(body).encode())

    def new_stream(self, req, target):
        custom = req.extra.get("output_format")
        if isinstance(custom, str):
            return CustomFormat(custom)
        fmt = requested(req)
        return WavFromPCM() if fmt == "wav" else Passthrough(fmt)


TRANSLATOR = ElevenLabsSpeech()
