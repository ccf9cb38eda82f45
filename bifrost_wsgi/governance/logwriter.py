"""Writes request logs and usage (tokens, spend) to the stores off the request path.

The request path only puts one item on a bounded queue (``put_nowait``: it never waits). One background
thread per worker takes items in batches and writes each batch in one transaction per store. When the
queue is full or a store fails, the items are dropped and counted (``dropped``, read by the metrics page):
a slow or dead database costs log rows, never a request.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import weakref
from dataclasses import dataclass, field

from .store import SqlStore, StoreUnavailable

log = logging.getLogger("bifrost_wsgi.governance")

_QUEUE_SIZE = 10000
_BATCH = 500
_GATHER_S = 0.1  # how long a busy writer gathers rows before it writes them
_PRUNE_EVERY_S = 3600.0


@dataclass(slots=True)
class Item:
    row: tuple | None = None  # a log row in store.base.LOG_COLUMNS order
    tokens: dict = field(default_factory=dict)  # rate limit id -> (tokens, window seconds)
    spend: dict = field(default_factory=dict)  # budget id -> (usd, window seconds)


class LogWriter:
    def __init__(self, *, logs: SqlStore | None, usage=None, retention_days=lambda: 0) -> None:
        self.logs = logs
        # usage(tokens, spend, batch size): records the batch's token and spend totals (Engine.record_usage)
        self.usage = usage
        self.retention_days = retention_days  # read at each pruning: PUT /api/config may change it
        self.queue: queue.Queue = queue.Queue(maxsize=_QUEUE_SIZE)
        self.dropped = 0  # log rows lost (queue full, store failing); a number /metrics can show
        self.written = 0
        self._next_prune = 0.0
        self._warned_at = 0.0
        self._busy = False  # the last batch held more than one row: rows are arriving faster than writes
        self._closed = threading.Event()
        self.start()

    def start(self) -> None:
        # the thread holds the writer weakly: a writer that is dropped takes its thread with it
        threading.Thread(target=_drain_forever, args=(weakref.ref(self), self.queue, self._closed),
                         name="bifrost-log-writer", daemon=True).start()

    def close(self) -> None:
        self._closed.set()

    def put(self, item: Item) -> bool:
        try:
            self.queue.put_nowait(item)
            return True
        except queue.Full:
            self.dropped += item.row is not None
            return False

    def idle(self) -> bool:
        return self.queue.unfinished_tasks == 0

    def drain(self, first: Item) -> None:
        # PERF: a busy gateway writes a batch per GATHER_S, not a transaction per request (one SQLite commit
        # costs more CPU than the request it logs); an idle one writes at once
        batch = [first]
        until = time.monotonic() + _GATHER_S
        while len(batch) < _BATCH:
            try:
                batch.append(self.queue.get_nowait())
            except queue.Empty:
                left = until - time.monotonic()
                if left <= 0 or len(batch) == 1 and self.queue.qsize() == 0 and not self._busy:
                    break
                try:
                    batch.append(self.queue.get(timeout=left))
                except queue.Empty:
                    break
        self._busy = len(batch) > 1
        try:
            self._write(batch)
        except Exception:  # noqa: BLE001 - the writer thread must outlive any one bad batch
            log.exception("log writer: batch failed")
        finally:
            for _ in batch:
                self.queue.task_done()

    def _write(self, batch: list[Item]) -> None:
        now = time.time()
        rows = [i.row for i in batch if i.row is not None]
        tokens: dict = {}
        spend: dict = {}
        for item in batch:
            for rid, (n, window) in item.tokens.items():
                tokens[rid] = (tokens.get(rid, (0, window))[0] + n, window)
            for bid, (usd, window) in item.spend.items():
                spend[bid] = (spend.get(bid, (0.0, window))[0] + usd, window)
        if (tokens or spend) and self.usage is not None:
            try:
                self.usage(tokens, spend)
            except StoreUnavailable as exc:
                self._warn(f"usage of {len(batch)} requests not recorded: {exc}")
        if rows and self.logs is None:
            self.dropped += len(rows)
            self._warn(f"{len(rows)} request logs dropped: the logs store is not open")
        elif rows:
            try:
                self.logs.insert_logs(rows)
                self.written += len(rows)
            except StoreUnavailable as exc:
                self.dropped += len(rows)
                self._warn(f"{len(rows)} request logs dropped: {exc}")
        days = self.retention_days()
        if days and self.logs is not None and now >= self._next_prune:
            self._next_prune = now + _PRUNE_EVERY_S
            try:
                self.logs.prune_logs(now - days * 86400.0)
            except StoreUnavailable as exc:
                self._warn(f"old request logs not pruned: {exc}")

    def _warn(self, message: str) -> None:
        now = time.monotonic()
        if now - self._warned_at >= 10.0:  # one line per ten seconds, not one per failed batch
            self._warned_at = now
            log.warning("log writer: %s (dropped so far: %d)", message, self.dropped)


def _drain_forever(ref, items: queue.Queue, closed: threading.Event) -> None:
    while not closed.is_set():
        try:
            first = items.get(timeout=1.0)
        except queue.Empty:
            if ref() is None:
                return
            continue
        writer = ref()
        if writer is None:
            return
        writer.drain(first)
        del writer  # hold it only while writing
