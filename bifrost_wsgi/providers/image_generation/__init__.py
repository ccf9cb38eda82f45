"""Translators for POST /v1/images/generations: one module per provider family.

``TRANSLATORS`` maps a registry row's ``adapter`` (its provider module) to the translator object; a provider
missing here has no such API (``unsupported_operation``)."""

from . import azure, gemini, openai_compat, vertex

TRANSLATORS: dict = {
    "openai_compat": openai_compat.TRANSLATOR,
    "azure": azure.TRANSLATOR,
    "gemini": gemini.TRANSLATOR,
    "vertex": vertex.TRANSLATOR,
}
