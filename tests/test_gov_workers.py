"""Shared state across processes: real gunicorn workers and separate gateways on one store; a store that is
down never stops inference."""

import concurrent.futures
import os
import socket

import pytest
import requests

from tests.conftest import provider_config
from tests.fakes import Reply, chat_completion
from tests.govfix import eventually, pg_server, wait_logs  # noqa: F401 - fixtures
from tests.procs import Gateway, free_port

pytestmark = pytest.mark.slow

VK = "sk-bf-workers-SECRET-0001"
HI = [{"role": "user", "content": "hi"}]


def config(upstream_url, **extra):
    return {"providers": {"openai": provider_config(upstream_url)},
            "governance": {"virtual_keys": [{"id": "vk-w", "name": "w", "value": VK, "rate_limit_id": "rl-10"}],
                           "rate_limits": [{"id": "rl-10", "request_max_limit": 10, "request_reset_duration": "1m"}]},
            **extra}


def burst(base: str, n: int) -> list[int]:
    def one(_):
        return requests.post(base + "/v1/chat/completions", headers={"x-bf-vk": VK},
                             json={"model": "openai/gpt-4o-mini", "messages": HI}).status_code

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        return sorted(pool.map(one, range(n)))


def test_ten_per_minute_admits_exactly_ten_across_two_gunicorn_workers(upstream):
    upstream.handler = lambda rec: Reply(json=chat_completion("ok"))
    # 12 threads: each worker admits threads - 2 = 10 at once, room for the 8 concurrent clients on one worker
    gw = Gateway(config(upstream.url), workers=2, threads=12)
    try:
        codes = burst(gw.url, 16)
        assert codes == [200] * 10 + [429] * 6
        assert len(upstream.requests) == 10
        found = wait_logs(gw.url, 16)  # every request has its log row, refused ones too
        assert {row["status"] for row in found["logs"]} == {"success", "error"}
    finally:
        gw.stop()


def test_two_gateways_on_one_postgres_share_counters_and_logs(upstream, pg_server):
    upstream.handler = lambda rec: Reply(json=chat_completion("ok"))
    store = {"enabled": True, "type": "postgres", "config": pg_server.new_database()}
    conf = config(upstream.url, config_store=store, logs_store=store)
    first, second = Gateway(conf), Gateway(conf)
    try:
        codes = sorted(burst(first.url, 6) + burst(second.url, 6))
        assert codes == [200] * 10 + [429] * 2
        assert wait_logs(first.url, 12)["pagination"]["total_count"] == 12
    finally:
        first.stop()
        second.stop()


def test_a_store_that_is_down_never_fails_inference(upstream, serve):
    with socket.socket() as s:  # a port where nothing listens: connection refused
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    store = {"enabled": True, "type": "postgres",
             "config": {"host": "127.0.0.1", "port": dead_port, "user": "x", "password": "x", "db_name": "x"}}
    upstream.handler = lambda rec: Reply(json=chat_completion("ok"))
    base = serve(config(upstream.url, config_store=store, logs_store=store))
    codes = [requests.post(base + "/v1/chat/completions", headers={"x-bf-vk": VK},
                           json={"model": "openai/gpt-4o-mini", "messages": HI}).status_code for _ in range(12)]
    # governance keeps working from config.json, counting in this process
    assert codes == [200] * 10 + [429] * 2
    r = requests.post(base + "/v1/chat/completions", headers={"x-bf-vk": "sk-bf-unknown"},
                      json={"model": "openai/gpt-4o-mini", "messages": HI})
    assert r.status_code == 401
    r = requests.get(base + "/api/logs")
    assert r.status_code == 503 and r.json()["status_code"] == 503
    # every row was lost, and /metrics says how many (13: the refused key's request has its row too)
    assert eventually(lambda: dropped_rows(base) == 13), dropped_rows(base)


def dropped_rows(base: str) -> float:
    page = requests.get(base + "/metrics").text
    return float(next(line.split()[1] for line in page.splitlines()
                      if line.startswith("bifrost_log_rows_dropped_total ")))


def test_a_locked_sqlite_store_does_not_stop_inference(upstream, serve):
    import sqlite3

    upstream.handler = lambda rec: Reply(json=chat_completion("ok"))
    base = serve(config(upstream.url))
    assert burst(base, 1) == [200]
    blocker = sqlite3.connect(os.path.join(os.environ["BIFROST_DATA_DIR"], "config.db"), isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # every other writer and reader now waits
    try:
        assert burst(base, 3) == [200, 200, 200]
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()


def test_a_store_that_comes_up_after_the_gateway_is_connected_to(upstream, serve, pg_server):
    import psycopg

    conf = pg_server.new_database()
    later = dict(conf, db_name=conf["db_name"] + "_later")  # not created yet: the store is unreachable
    store = {"enabled": True, "type": "postgres", "config": later}
    upstream.handler = lambda rec: Reply(json=chat_completion("ok"))
    base = serve(config(upstream.url, config_store=store, logs_store=store))
    assert burst(base, 2) == [200, 200]
    assert requests.get(base + "/api/logs").status_code == 503
    with psycopg.connect(host="127.0.0.1", port=pg_server.port, user="postgres", dbname="postgres",
                         autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {later['db_name']}")
    assert eventually(lambda: requests.get(base + "/api/logs").status_code == 200, timeout=20)
    assert burst(base, 1) == [200]
    assert wait_logs(base, 1)["logs"][0]["status"] == "success"
    # what the store never saw: the two rows from before, and the counters start from what config.json says
    quota = requests.get(base + "/api/governance/virtual-keys/quota", headers={"x-bf-vk": VK}).json()
    assert quota["rate_limits"][0]["request_max_limit"] == 10


def test_a_postgres_store_holding_locks_does_not_stop_inference(upstream, serve, pg_server):
    import psycopg

    conf = pg_server.new_database()
    store = {"enabled": True, "type": "postgres", "config": conf}
    upstream.handler = lambda rec: Reply(json=chat_completion("ok"))
    base = serve(config(upstream.url, config_store=store, logs_store=store))
    assert burst(base, 1) == [200]
    with psycopg.connect(host="127.0.0.1", port=pg_server.port, user="postgres", dbname=conf["db_name"]) as locker:
        # every statement on these tables now waits: reads, the rate limit's update, log inserts
        locker.execute("LOCK TABLE gov_rate_limits, gov_budgets, logs IN ACCESS EXCLUSIVE MODE")
        assert burst(base, 3) == [200, 200, 200]
        locker.rollback()
    assert wait_logs(base, 1)
