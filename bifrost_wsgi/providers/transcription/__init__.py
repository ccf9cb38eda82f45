"""Translators for POST /v1/audio/transcriptions: one module per provider family.

``TRANSLATORS`` maps a registry row's ``adapter`` (its provider module) to the translator object; a provider
missing here has no such API (``unsupported_operation``). Each answers with a transcript (transcript.py)."""

from . import azure, elevenlabs, gemini, openai_compat

TRANSLATORS: dict = {
    "openai_compat": openai_compat.TRANSLATOR,
    "azure": azure.TRANSLATOR,
    "elevenlabs": elevenlabs.TRANSLATOR,
    "gemini": gemini.TRANSLATOR,
}
