"""ElevenLabs: speech only (text to speech, speech to text). It has no chat API, so it offers no chat
translator and every chat request to it is ``unsupported_operation``; its speech translators live in
providers/speech and providers/transcription.

Errors come as ``{"detail": {"status": "<code>", "message": "<text>"}}``, as FastAPI's validation list
``{"detail": [{"loc": [...], "msg": "...", "type": "..."}]}``, or as ``{"detail": "<text>"}``."""

from __future__ import annotations

from ..errors import provider_error
from .base import KeyRules, dumps, error_from_body


def error_from_object(status: int, data: dict):
    detail = data.get("detail")
    if isinstance(detail, dict):
        message = detail.get("message") if isinstance(detail.get("message"), str) else dumps(detail)[:1000]
        code = detail.get("status") if isinstance(detail.get("status"), str) else None
        return provider_error(status, message, code=code)
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        first = detail[0]
        where = ".".join(str(p) for p in first.get("loc") or () if p != "body")
        message = str(first.get("msg") or "invalid request")
        return provider_error(status, f"{where}: {message}" if where else message, param=where or None)
    if isinstance(detail, str):
        return provider_error(status, detail)
    return provider_error(status, dumps(data)[:1000])


class ElevenLabsAdapter(KeyRules):
    framing = "sse"

    def translator(self, name: str):
        return None  # no chat API

    def parse_error(self, status, headers, body, target):
        return error_from_body(status, body, error_from_object)


ADAPTER = ElevenLabsAdapter()
