"""Per-provider admission: at most ``concurrency`` upstream calls in flight, ``buffer_size`` more waiting,
and an immediate refusal beyond that (the provider's ``concurrency_and_buffer_size``)."""

from __future__ import annotations

import threading

from ..errors import QueueFull


class Slots:
    __slots__ = ("concurrency", "buffer_size", "drop_excess", "in_flight", "waiting", "_cond")

    def __init__(self, *, concurrency: int, buffer_size: int, drop_excess: bool) -> None:
        self.concurrency = concurrency
        self.buffer_size = buffer_size
        self.drop_excess = drop_excess
        self.in_flight = 0
        self.waiting = 0
        self._cond = threading.Condition()

    def acquire(self, timeout: float) -> None:
        """Take a slot or raise QueueFull (no room to wait, or the wait outlived ``timeout``)."""
        with self._cond:
            if self.in_flight < self.concurrency:
                self.in_flight += 1
                return
            if self.drop_excess or self.waiting >= self.buffer_size:
                raise QueueFull()
            self.waiting += 1
            try:
                if not self._cond.wait_for(lambda: self.in_flight < self.concurrency, timeout=max(timeout, 0)):
                    raise QueueFull()
                self.in_flight += 1
            finally:
                self.waiting -= 1

    def release(self) -> None:
        with self._cond:
            self.in_flight -= 1
            self._cond.notify()
