"""ElevenLabs: speech only (text to speech, speech to text). It has no chat API, so it offers no chat
translator and every chat request to it is ``unsupported_operation``."""

from __future__ import annotations

from .base import KeyRules, error_from_body
from .openai_compat import parse_error_body


class ElevenLabsAdapter(KeyRules):
    framing = "sse"

    def translator(self, name: str):
        return None  # no chat API: its speech translators live in providers/speech and providers/transcription

    def parse_error(self, status, headers, body, target):
        return error_from_body(status, body, parse_error_body)


ADAPTER = ElevenLabsAdapter()
