"""The one transcript every transcription translator answers with, the shape of OpenAI's ``verbose_json``
(``text`` and, when the provider gave them, ``language``, ``duration``, ``segments``, ``words``, ``usage``),
or ``{"raw": text}`` for an answer a provider already rendered in the requested text format (OpenAI's
``text``, ``srt``, ``vtt``). The surface renders it in the format the client asked for."""

from __future__ import annotations

import json

from ...errors import UnsupportedParameter, UpstreamProtocolError

KEPT = ("task", "language", "duration", "text", "segments", "words", "usage", "logprobs")
TIMED = ("srt", "vtt", "verbose_json")


def from_openai(data: bytes) -> dict:
    """OpenAI's answer: a JSON object (json, verbose_json) or the rendered text (text, srt, vtt)."""
    try:
        obj = json.loads(data)
    except ValueError:
        obj = None
    if not isinstance(obj, dict):
        return {"raw": data.decode("utf-8")}
    if not isinstance(obj.get("text"), str):
        raise UpstreamProtocolError("transcript without text in the provider's answer")
    return {k: obj[k] for k in KEPT if obj.get(k) is not None}


def refuse_timestamps(req, provider: str) -> None:
    """For providers that give no timestamps: what needs them is refused before the call."""
    if req.response_format in TIMED:
        raise UnsupportedParameter(f"response_format {req.response_format} is not supported by {provider}: "
                                   "it gives no timestamps", param="response_format")
    if req.granularities:
        raise UnsupportedParameter(f"timestamp_granularities are not supported by {provider}",
                                   param="timestamp_granularities[]")
