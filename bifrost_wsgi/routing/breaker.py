"""Per-target circuit breakers: after N consecutive failed requests a target is skipped for a cooldown,
then a single probe request decides whether it closes again (CONTRACT §9)."""

from __future__ import annotations

import logging
import threading
import time

from ..config import Breaker

log = logging.getLogger("bifrost_wsgi.breaker")

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


class Circuit:
    __slots__ = ("name", "settings", "state", "failures", "opened_at", "probing", "_lock")

    def __init__(self, name: str, settings: Breaker) -> None:
        self.name = name
        self.settings = settings
        self.state = CLOSED
        self.failures = 0
        self.opened_at = 0.0
        self.probing = False
        self._lock = threading.Lock()

    def allow(self) -> bool:
        """May a request go to this target now? In half-open state only one probe at a time may."""
        if self.state == CLOSED or not self.settings.enabled:
            return True
        with self._lock:
            if self.state == OPEN:
                if time.monotonic() - self.opened_at < self.settings.cooldown_seconds:
                    return False
                self._move(HALF_OPEN, "cooldown over, probing")
            if self.probing:
                return False
            self.probing = True
            return True

    def success(self) -> None:
        if self.state == CLOSED and not self.failures:
            return
        with self._lock:
            self.failures = 0
            self.probing = False
            if self.state != CLOSED:
                self._move(CLOSED, "probe succeeded")

    def failure(self) -> None:
        if not self.settings.enabled:
            return
        with self._lock:
            self.probing = False
            self.failures += 1
            if self.state == HALF_OPEN or (self.state == CLOSED and self.failures >= self.settings.failure_threshold):
                self.opened_at = time.monotonic()
                self._move(OPEN, f"{self.failures} consecutive failures")

    def release_probe(self) -> None:
        """A probe that ended without a verdict (client went away, our own refusal) frees the slot."""
        with self._lock:
            self.probing = False

    def _move(self, state: str, why: str) -> None:
        log.info("circuit %s: %s -> %s (%s)", self.name, self.state, state, why)
        self.state = state


class Breakers:
    def __init__(self, settings: Breaker) -> None:
        self.settings = settings
        self._circuits: dict[tuple[str, str], Circuit] = {}
        self._lock = threading.Lock()

    def get(self, provider: str, model: str) -> Circuit:
        key = (provider, model)
        c = self._circuits.get(key)
        if c is None:
            with self._lock:
                c = self._circuits.setdefault(key, Circuit(f"{provider}/{model}", self.settings))
        return c

    def states(self) -> dict[tuple[str, str], str]:
        return {k: c.state for k, c in list(self._circuits.items())}
