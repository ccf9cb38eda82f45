"""Stores: where governance state, counters, admin sessions and request logs live (SQLite or PostgreSQL)."""

from __future__ import annotations

import importlib

from .base import SqlStore, StoreUnavailable
from .sqlite import SqliteStore

__all__ = ["SqlStore", "StoreUnavailable", "open_store"]


def open_store(spec) -> SqlStore:
    """The store a ``settings.StoreSpec`` describes, with its schema migrated."""
    if spec.type == "postgres":
        # psycopg takes ~120 ms to import: only gateways that use PostgreSQL pay it
        postgres = importlib.import_module(f"{__name__}.postgres")
        store: SqlStore = postgres.PostgresStore(host=spec.host, port=spec.port, user=spec.user, password=spec.password,
                                        db_name=spec.db_name, ssl_mode=spec.ssl_mode,
                                        max_open_conns=spec.max_open_conns)
    else:
        store = SqliteStore(spec.path)
    store.migrate()
    return store
