"""Translators for POST /cohere/v1/tokenize: a model's own tokenizer, which only Cohere offers as an API.

``TRANSLATORS`` maps a registry row's ``adapter`` to the translator; a provider missing here has no such API
(``unsupported_operation``)."""

from . import cohere

TRANSLATORS: dict = {"cohere": cohere.COHERE}
