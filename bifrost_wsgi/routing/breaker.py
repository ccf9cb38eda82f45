"""Per-target circuit breakers: after N consecutive failed requests a target is skipped for a cooldown,
then a single probe request decides whether it closes again."""

from __future__ import annotations

import hashlib
import logging
import threading
import time

from ..config import Breaker

log = logging.getLogger("bifrost_wsgi.breaker")

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"

# Model names come from clients, so the table of circuits is bounded: when it is full, circuits are dropped
# down to three quarters of this, those whose loss matters least first (see _loss). Dropping beats sharing
# one circuit among unknown models: a client's failing made-up names could then open the circuit that
# other unknown but real models depend on, and most dropped circuits (closed, no failures) lose nothing.
MAX_CIRCUITS = 1024
# A longer model name is keyed by its start and a digest: the table never holds a client's 1 MB name.
_MAX_KEY_CHARS = 256


class Circuit:
    __slots__ = ("name", "settings", "state", "failures", "opened_at", "probing", "_lock", "_on_move")

    def __init__(self, name: str, settings: Breaker, *, on_move=None) -> None:
        self.name = name
        self.settings = settings
        self._on_move = on_move  # called after each change of state (Breakers notes what changed)
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
        if self._on_move is not None:
            self._on_move()


def _loss(circuit: Circuit, now: float) -> int:
    """What dropping a circuit loses: 0 nothing (closed without failures: a new one is the same); 1 little
    (failures short of the threshold, or an open circuit whose cooldown is over: the next request would
    probe anyway); 2 an open circuit still shielding its target, or a probe under way."""
    if circuit.state == CLOSED:
        return 1 if circuit.failures else 0
    if circuit.state == OPEN and now - circuit.opened_at >= circuit.settings.cooldown_seconds:
        return 1
    return 2


def _model_key(model: str) -> str:
    if len(model) <= _MAX_KEY_CHARS:
        return model
    digest = hashlib.sha256(model.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{model[:64]}\u2026{digest}"


class Breakers:
    """The circuits of one process, one per (provider, model), at most ``max_circuits`` of them (a request
    still holding a dropped circuit just reports to it; the next request gets a new one)."""

    def __init__(self, settings: Breaker, *, max_circuits: int | None = None) -> None:
        self.settings = settings
        self.max_circuits = MAX_CIRCUITS if max_circuits is None else max_circuits
        self._circuits: dict[tuple[str, str], Circuit] = {}
        self._lock = threading.Lock()
        # keys added, dropped or moved to another state since changes() last ran, so that a reader of many
        # circuits (metrics, after every request) does work for what changed, not for the whole table;
        # None until the first changes(): with no reader nothing is kept
        self._changed: dict[tuple[str, str], None] | None = None
        self._changed_lock = threading.Lock()

    def get(self, provider: str, model: str) -> Circuit:
        key = (provider, _model_key(model))
        c = self._circuits.get(key)
        if c is None:
            with self._lock:
                c = self._circuits.get(key)
                if c is None:
                    if len(self._circuits) >= self.max_circuits:
                        self._drop()
                    c = self._circuits[key] = Circuit(f"{provider}/{key[1]}", self.settings,
                                                      on_move=lambda: self._note(key))
                    self._note(key)
        return c

    def carried(self, *, settings: Breaker, providers: frozenset[str]) -> "Breakers":
        """The table for a reloaded config: the circuits of ``providers`` (those whose config did not change)
        carry on, state and all, when the breaker settings are the same; every other circuit starts afresh
        (a provider given new keys or a new URL deserves a fresh judgement)."""
        fresh = Breakers(settings, max_circuits=self.max_circuits)
        if settings == self.settings:
            for key, circuit in list(self._circuits.items()):
                if key[0] in providers:
                    circuit._on_move = lambda key=key: fresh._note(key)
                    fresh._circuits[key] = circuit
        return fresh

    def changes(self) -> dict[tuple[str, str], str | None]:
        """``{(provider, model): state now, or None when dropped}`` for every circuit changed since the
        last call (one reader); the first call gives every circuit."""
        if self._changed is not None and not self._changed:
            return {}
        with self._changed_lock:
            changed = self._circuits.copy() if self._changed is None else self._changed
            self._changed = {}
        circuits = self._circuits
        return {key: (c.state if (c := circuits.get(key)) is not None else None) for key in changed}

    def _note(self, key: tuple[str, str]) -> None:
        if self._changed is not None:
            with self._changed_lock:
                self._changed[key] = None

    def __len__(self) -> int:
        return len(self._circuits)

    def _drop(self) -> None:
        """Down to three quarters of the bound (so this runs once per many new circuits): least loss first,
        oldest first within the same loss (the sort is stable and the dict keeps insertion order)."""
        now = time.monotonic()
        ranked = sorted(self._circuits.items(), key=lambda item: _loss(item[1], now))
        for key, _ in ranked[:len(ranked) - self.max_circuits * 3 // 4]:
            del self._circuits[key]
            self._note(key)

    def states(self) -> dict[tuple[str, str], str]:
        return {k: c.state for k, c in list(self._circuits.items())}
