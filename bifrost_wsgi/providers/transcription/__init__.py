"""Translators for POST /v1/audio/transcriptions: one module per provider family.

``TRANSLATORS`` maps a registry row's ``adapter`` (its provider module) to the translator object; a provider
missing here has no such API (``unsupported_operation``)."""

TRANSLATORS: dict = {}
