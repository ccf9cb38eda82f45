"""Gemini TTS models (``gemini-2.5-flash-preview-tts`` …): ``:streamGenerateContent?alt=sse`` with
``responseModalities: ["AUDIO"]`` and the voice as ``speechConfig.voiceConfig.prebuiltVoiceConfig.voiceName``.

Each event carries base64 PCM (``inlineData`` with ``mimeType`` ``audio/L16;codec=pcm;rate=24000``),
relayed as it comes: ``pcm`` as it is, ``wav`` (the default here) with a header first. Gemini produces no
compressed format and the gateway has no encoder, so mp3, opus, aac and flac are refused (400).
``instructions`` (the speaking style) is said to the model before the text, as Gemini's docs prompt it.
"""

from __future__ import annotations

import base64
import re
from urllib.parse import quote

from ...errors import UpstreamProtocolError
from ..base import json_event, json_request
from ..gemini import ADAPTER as GEMINI
from .audio import PCMOut, refuse_format, requested

FORMATS = ("wav", "pcm")
_RATE = re.compile(r"rate=(\d+)")
DEFAULT_RATE = 24000


def model_path(model: str) -> str:
    return quote(model, safe="/-._@") if "/" in model else "models/" + quote(model, safe="-._@")


class GeminiAudio(PCMOut):
    """SSE events of GenerateContentResponse fragments → PCM pieces."""

    __slots__ = ("done", "finished")

    def __init__(self, fmt: str) -> None:
        super().__init__(fmt)
        self.done = False
        self.finished = False

    def feed(self, event) -> list[bytes]:
        data = json_event(event.data)
        if data is None:
            return []
        out = []
        for cand in data.get("candidates") or ():
            for part in (cand.get("content") or {}).get("parts") or ():
                inline = part.get("inlineData")
                if inline:
                    match = _RATE.search(inline.get("mimeType", ""))
                    pcm = base64.b64decode(inline["data"], validate=True)
                    out.append(self.piece(pcm, rate=int(match[1]) if match else DEFAULT_RATE))
            if cand.get("finishReason"):
                self.finished = True
        return out

    def end(self) -> list[bytes]:
        if not self.started:
            raise UpstreamProtocolError("gemini answered without audio")
        return []


class GeminiSpeech:
    framing = "sse"
    parse_error = staticmethod(GEMINI.parse_error)

    def build_request(self, req, target, *, stream: bool, passthrough: bool):
        fmt = requested(req, default="wav")
        if fmt not in FORMATS:
            raise refuse_format(fmt, "gemini")
        text = f"{req.params['instructions']}: {req.input}" if req.params.get("instructions") else req.input
        body = {
            "contents": [{"role": "user", "parts": [{"text": text}]}],
            "generationConfig": {
                "responseModalities": ["AUDIO"],
                "speechConfig": {"voiceConfig": {"prebuiltVoiceConfig": {"voiceName": req.voice}}},
            },
        }
        url = f"{target.base_url}/{model_path(target.model)}:streamGenerateContent?alt=sse"
        return json_request(url, body, stream=True)

    def new_stream(self, req, target) -> GeminiAudio:
        return GeminiAudio(requested(req, default="wav"))


TRANSLATOR = GeminiSpeech()
