"""Translators for the Anthropic Messages route (``/anthropic/v1/messages``) where a provider speaks that format
natively: the body goes as the client sent it and the answer comes back as it came. ``TRANSLATORS`` maps a
registry row's ``adapter`` to the translator; every other provider serves the route through its chat
translator (providers/translators.py, ``VIA_CHAT``). ``COUNT_TOKENS_TRANSLATORS`` serves
``/anthropic/v1/messages/count_tokens`` the same way (no chat fallback: the surface estimates)."""

from . import anthropic

TRANSLATORS: dict = {"anthropic": anthropic.MESSAGES}
COUNT_TOKENS_TRANSLATORS: dict = {"anthropic": anthropic.COUNT_TOKENS}
