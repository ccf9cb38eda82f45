"""Fixtures for the governance tests: the same tests run on SQLite files and on a real PostgreSQL server."""

from __future__ import annotations

import time

import pytest
import requests

from tests import pg


@pytest.fixture(scope="session")
def pg_server():
    why = pg.missing()
    if why:
        pytest.skip(why)
    server = pg.PgServer()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def stores(request):
    """The ``config_store``/``logs_store`` sections of a fresh store of each kind (sqlite: the data dir)."""
    if request.param == "sqlite":
        return {}
    conf = request.getfixturevalue("pg_server").new_database()
    section = {"enabled": True, "type": "postgres", "config": conf}
    return {"config_store": section, "logs_store": section}


def eventually(probe, *, timeout: float = 10.0):
    """Poll ``probe()`` until it returns something truthy (the log writer and refreshers are asynchronous)."""
    end = time.monotonic() + timeout
    while True:
        value = probe()
        if value or time.monotonic() > end:
            return value
        time.sleep(0.05)


def logs(base: str, query: str = "", **headers) -> dict:
    r = requests.get(f"{base}/api/logs{query}", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def wait_logs(base: str, count: int, query: str = "") -> dict:
    found = eventually(lambda: (lambda body: body if body["pagination"]["total_count"] >= count else None)(
        logs(base, query)))
    assert found, f"fewer than {count} log rows"
    return found
