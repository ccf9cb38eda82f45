"""Translators for POST /v1/responses/input_tokens and the drop-in count-tokens routes: one module per provider family.

``TRANSLATORS`` maps a registry row's ``adapter`` (its provider module) to the translator object; a provider
missing here has no such API (``unsupported_operation``)."""

TRANSLATORS: dict = {}
