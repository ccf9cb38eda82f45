"""Translators for POST /v1/audio/speech: one module per provider family.

``TRANSLATORS`` maps a registry row's ``adapter`` (its provider module) to the translator object; a provider
missing here has no such API (``unsupported_operation``). They relay bytes: see routing/byte_relay.py."""

from . import azure, elevenlabs, gemini, openai_compat

TRANSLATORS: dict = {
    "openai_compat": openai_compat.TRANSLATOR,
    "azure": azure.TRANSLATOR,
    "elevenlabs": elevenlabs.TRANSLATOR,
    "gemini": gemini.TRANSLATOR,
}
