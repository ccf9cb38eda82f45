"""The shared store for several gateway hosts: PostgreSQL through ``psycopg`` (the ``postgres`` extra).

A small pool of connections per worker process (``max_open_conns``, at most 16): a connection is taken for
one transaction and given back. Statements on the request path carry a short ``statement_timeout`` so a slow
database costs a request at most that; a database that is down is noticed by the refresher and the request
path stops asking it (engine.py).
"""

from __future__ import annotations

import queue
import threading
import weakref
from contextlib import contextmanager

from .base import SqlStore, StoreUnavailable

try:
    import psycopg
except ImportError:  # the optional extra is absent: open() says how to install it
    psycopg = None

_CONNECT_TIMEOUT_S = 3


class PostgresStore(SqlStore):
    kind = "postgres"
    begin_write = "BEGIN"
    quick = "SET statement_timeout = 250"
    driver_errors = (psycopg.Error,) if psycopg is not None else ()

    def __init__(self, *, host: str, port: int, user: str, password: str, db_name: str, ssl_mode: str = "disable",
                 max_open_conns: int = 4) -> None:
        if psycopg is None:
            raise StoreUnavailable("postgres store needs psycopg: pip install 'bifrost-wsgi[postgres]'")
        super().__init__()
        self._params = {"host": host, "port": port, "user": user, "password": password, "dbname": db_name,
                        "sslmode": ssl_mode, "connect_timeout": _CONNECT_TIMEOUT_S, "autocommit": True,
                        "application_name": "bifrost-wsgi"}
        self._idle: queue.LifoQueue = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(max_open_conns)
        # a store that is dropped (an app rebuilt) closes its pooled connections
        self._finalizer = weakref.finalize(self, _close_idle, self._idle)

    @staticmethod
    def convert(sql: str) -> str:
        return sql.replace("?", "%s")

    def _migration_lock(self, tx) -> None:
        # two hosts starting at once must not both create the tables
        tx.run("SELECT pg_advisory_xact_lock(727001)")

    @contextmanager
    def _checkout(self):
        if not self._slots.acquire(timeout=_CONNECT_TIMEOUT_S):
            raise StoreUnavailable("postgres store: every pooled connection is busy")
        conn = None
        try:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                conn = psycopg.connect(**self._params)
            conn.execute("SET statement_timeout = 10000")
            yield conn
        except psycopg.Error:
            if conn is not None:  # a broken connection is not given back
                conn.close()
                conn = None
            raise
        finally:
            if conn is not None:
                if self._finalizer.alive:
                    self._idle.put(conn)
                else:  # closed while this transaction ran (a refresh during shutdown): nobody would close it
                    conn.close()
            self._slots.release()

    def close(self) -> None:
        self._finalizer()


def _close_idle(idle: queue.LifoQueue) -> None:
    while True:
        try:
            idle.get_nowait().close()
        except queue.Empty:
            return
