"""The embedded store: one SQLite file (stdlib ``sqlite3``) in WAL mode, shared by every gunicorn worker.

WAL lets readers run beside the one writer; writers queue on the file lock (``busy_timeout``). Each thread
keeps its own connection (sqlite3 connections must not be shared between threads mid-transaction), and
write transactions start with ``BEGIN IMMEDIATE`` so a read-then-write never deadlocks with another process.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import weakref
from contextlib import contextmanager

from .base import SqlStore, StoreUnavailable

_BACKGROUND_BUSY_MS = 5000
# on the request path a locked file is waited for this long, then the request goes on without the store
_QUICK_BUSY_MS = 250


class SqliteStore(SqlStore):
    kind = "sqlite"
    begin_write = "BEGIN IMMEDIATE"
    quick = f"PRAGMA busy_timeout = {_QUICK_BUSY_MS}"
    driver_errors = (sqlite3.Error,)

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path
        directory = os.path.dirname(path)
        try:
            if directory:
                os.makedirs(directory, exist_ok=True)
        except OSError as exc:  # a read-only root (a locked-down container or unit): run without the store
            raise StoreUnavailable(f"sqlite store: cannot create {directory}: {exc.strerror}") from None
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        # a store that is dropped (an app rebuilt) closes the connections of its threads
        self._finalizer = weakref.finalize(self, _close_all, self._all)

    @contextmanager
    def _checkout(self):
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                   timeout=_BACKGROUND_BUSY_MS / 1000)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        else:
            conn.execute(f"PRAGMA busy_timeout = {_BACKGROUND_BUSY_MS}")
        yield conn

    def close(self) -> None:
        self._finalizer()


def _close_all(conns: list) -> None:
    for conn in list(conns):
        try:
            conn.close()
        except sqlite3.Error:
            pass
    conns.clear()
