"""Secrets, redacted by value: every configured credential (provider keys and their secret settings, virtual
keys, proxy and admin passwords) and every access token the gateway mints is registered here, and every
string that came from an upstream is cleaned before it can reach a response, a log line or a label.

By value, not by pattern: a provider that echoes "Incorrect API key provided: Bearer sk-…" back, or a proxy
that reflects the request's headers, cannot make the gateway repeat a secret, whatever its format. Upstream
errors are cleaned where they are built (``errors.provider_error``) and once more where an error envelope is
written (``GatewayError.to_dict``)."""

from __future__ import annotations

import re
import threading

MASK = "[REDACTED]"
MIN_LENGTH = 6  # shorter values would mask ordinary words; no real credential is that short


class Secrets:
    def __init__(self) -> None:
        self._values: set[str] = set()
        self._pattern: re.Pattern | None = None
        self._lock = threading.Lock()

    def add(self, *values: str) -> None:
        fresh = {v for v in values if isinstance(v, str) and len(v) >= MIN_LENGTH} - self._values
        if not fresh:
            return
        with self._lock:
            self._values |= fresh
            # longest first, so a secret that contains another is masked whole
            ordered = sorted(self._values, key=len, reverse=True)
            self._pattern = re.compile("|".join(map(re.escape, ordered)))

    def redact(self, text):
        """``text`` with every registered secret masked; anything that is not a string is returned as it is."""
        pattern = self._pattern
        if pattern is None or not isinstance(text, str) or not text:
            return text
        return pattern.sub(MASK, text)


SECRETS = Secrets()
redact = SECRETS.redact
