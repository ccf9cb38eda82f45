"""``GET /metrics``: Prometheus text, Bifrost's names, and totals that are right across gunicorn workers."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from bifrost_wsgi.observe import metrics
from tests.conftest import provider_config
from tests.deploy_procs import ROOT, Gunicorn
from tests.fakes import FakeUpstream, Reply, chat_completion, openai_chunks, sse

HI = [{"role": "user", "content": "hi"}]
VK = "sk-bf-metrics-SECRET"
_SAMPLE = re.compile(r'^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$')
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse(text: str) -> list[tuple[str, dict, float]]:
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        out.append((m.group(1), dict(_LABEL.findall(m.group(2) or "")), float(m.group(3))))
    return out


def total(samples, name, **labels) -> float:
    return sum(v for n, ls, v in samples if n == name and all(ls.get(k) == str(w) for k, w in labels.items()))


def scrape(url: str):
    r = requests.get(url + "/metrics")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == metrics.CONTENT_TYPE
    return parse(r.text)


@pytest.fixture(autouse=True)
def _no_metrics_dir(monkeypatch):
    for name in metrics.DIR_VARIABLES:
        monkeypatch.delenv(name, raising=False)


# --- the file format and the multiprocess directory ------------------------------------------------------


def test_file_values_roundtrip_growth_and_reopen(tmp_path):
    path = str(tmp_path / "bifrost-counters-1.metrics")
    store = metrics.FileValues(path, keep=True)
    # well past the first 64 KiB, within one batch (the file is remapped as it grows)
    store.add_all((f'["family_{i}",["label value {i}"],null]', 1.0) for i in range(3000))
    store.add_all([('["family_0",["label value 0"],null]', 2.5)])
    store.set("gauge", -3.0)
    assert metrics.read_file(path) == store.snapshot()
    assert metrics.read_file(path)['["family_0",["label value 0"],null]'] == 3.5
    store.close()
    again = metrics.FileValues(path, keep=True)  # a new worker with a recycled pid carries on
    again.add_all([("gauge", 1.0)])
    assert again.snapshot()["gauge"] == -2.0 and len(again.snapshot()) == 3001
    again.close()
    wiped = metrics.FileValues(path, keep=False)  # gauges start from nothing
    assert wiped.snapshot() == {} and metrics.read_file(path) == {}
    wiped.close()


def test_write_file_reads_back(tmp_path):
    values = {"a": 1.0, "bb" * 9: 2.5, "ccc": -0.125}
    metrics.write_file(str(tmp_path / "x"), values)
    assert metrics.read_file(str(tmp_path / "x")) == values


_WRITER = """
import sys
from bifrost_wsgi.observe import metrics
m = metrics.Metrics(paths=["/v1/chat/completions"])
from bifrost_wsgi.routing.context import RequestContext
for i in range(int(sys.argv[1])):
    ctx = RequestContext(request_id=str(i), deadline=0.0, route="/v1/chat/completions", method="POST")
    m.request_started(ctx)
    ctx.provider, ctx.model, ctx.status, ctx.attempts = "openai", "m", 200, 1
    ctx.usage = {"prompt_tokens": 2, "completion_tokens": 1}
    m.request_finished(ctx)
m.request_started(RequestContext(request_id="stuck", deadline=0.0))  # still in flight when it exits
"""


def test_processes_sum_and_dead_workers_keep_counters_but_lose_gauges(tmp_path):
    env = {**os.environ, "BIFROST_METRICS_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    for n in (5, 7):  # two worker processes, one after the other (their pids differ)
        subprocess.run([sys.executable, "-c", _WRITER, str(n)], env=env, capture_output=True, check=True)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert len([f for f in files if f.startswith("bifrost-counters-")]) == 2
    samples = parse(metrics.exposition(metrics.collect(str(tmp_path))).decode())
    assert total(samples, "bifrost_upstream_requests_total") == 12
    assert total(samples, "bifrost_input_tokens_total", provider="openai", model="m") == 24
    assert total(samples, "bifrost_in_flight_requests") == 2
    dead = [int(f.split("-")[2].split(".")[0]) for f in files if f.startswith("bifrost-gauges-")]
    for pid in dead:
        metrics.worker_exited(pid, {"BIFROST_METRICS_DIR": str(tmp_path)})
    remaining = sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".metrics"))
    assert remaining == ["bifrost-counters-archive.metrics"]
    samples = parse(metrics.exposition(metrics.collect(str(tmp_path))).decode())
    assert total(samples, "bifrost_upstream_requests_total") == 12
    assert total(samples, "http_requests_total", path="/v1/chat/completions", status=200) == 12
    assert total(samples, "bifrost_in_flight_requests") == 0


def test_prepare_directory_empties_ours_only_and_owns_what_it_creates(tmp_path):
    named = tmp_path / "m"
    named.mkdir()
    for name in ("bifrost-counters-1.metrics", "bifrost-gauges-1.metrics", "bifrost-counters-archive.metrics",
                 "counter_1.db"):
        (named / name).write_bytes(b"x")
    env = {"PROMETHEUS_MULTIPROC_DIR": str(named)}
    assert metrics.prepare_directory(env) == str(named)
    assert [p.name for p in named.iterdir()] == ["counter_1.db"]  # prometheus_client's file is left alone
    metrics.remove_directory(env)
    assert named.exists()

    env = {}
    created = metrics.prepare_directory(env)
    assert env["BIFROST_METRICS_DIR"] == created and os.path.isdir(created)
    metrics.remove_directory(env)
    assert not os.path.exists(created)


def test_exposition_format():
    fam = metrics.UPSTREAM_LATENCY
    store = metrics.MemoryValues()
    labels = ("openai", 'we"ird\\model\n', "chat_completion", "", "", "true")
    adds = []
    for seconds in (0.01, 0.3, 0.3, 7.0, 1000.0):
        metrics.observe(adds, fam, labels, seconds)
    store.add_all(adds)
    text = metrics.exposition(store.snapshot()).decode()
    lab = 'provider="openai",model="we\\"ird\\\\model\\n",method="chat_completion",virtual_key_id="",' \
          'virtual_key_name="",is_success="true"'
    assert "# TYPE bifrost_upstream_latency_seconds histogram" in text
    assert f'bifrost_upstream_latency_seconds_bucket{{{lab},le="0.05"}} 1\n' in text
    assert f'bifrost_upstream_latency_seconds_bucket{{{lab},le="0.5"}} 3\n' in text
    assert f'bifrost_upstream_latency_seconds_bucket{{{lab},le="10"}} 4\n' in text
    assert f'bifrost_upstream_latency_seconds_bucket{{{lab},le="300"}} 4\n' in text
    assert f'bifrost_upstream_latency_seconds_bucket{{{lab},le="+Inf"}} 5\n' in text
    assert f"bifrost_upstream_latency_seconds_sum{{{lab}}} 1007.61\n" in text
    assert f"bifrost_upstream_latency_seconds_count{{{lab}}} 5\n" in text
    # unlabelled gauges are always there; every family has HELP and TYPE
    assert "\nbifrost_in_flight_streams 0\n" in text
    for fam in metrics.FAMILIES:
        assert f"# HELP {fam.name} " in text and f"# TYPE {fam.name} {fam.kind}\n" in text


def test_client_chosen_labels_are_bounded():
    """Paths and methods come from clients: only the app's routes and the usual methods become labels."""
    from bifrost_wsgi.routing.context import RequestContext

    m = metrics.Metrics(paths=["/health"])
    for route, method in (("/health", "GET"), ("/x/../etc", "BREW"), ("/%00", "GET")):
        ctx = RequestContext(request_id="r", deadline=0.0, route=route, method=method, status=404)
        m.request_finished(ctx)
    s = parse(m.render().decode())
    assert total(s, "http_requests_total", path="/health", method="GET") == 1
    assert total(s, "http_requests_total", path="unmatched", method="other") == 1
    assert total(s, "http_requests_total", path="unmatched", method="GET") == 1


def test_label_sets_are_capped(monkeypatch):
    fam = metrics.Family("t_total", "counter", "t", ("model",))
    monkeypatch.setattr(fam, "_cap", 3)
    keys = {fam.key((f"m{i}",)) for i in range(10)}
    assert len(keys) == 4 and fam.key(("m0",)) != fam.key(("m9",)) and fam.key(("m9",)) == fam.key(("m5",))


# --- one process: the gateway's own numbers -----------------------------------------------------------------


@pytest.fixture
def gw(upstream, serve):
    openai_conf = provider_config(upstream.url, max_retries=1, retry_backoff_initial=1, retry_backoff_max=1)
    return serve({
        "client": {"circuit_breaker": {"failure_threshold": 1, "cooldown_seconds": 60}},
        "providers": {"openai": openai_conf, "groq": provider_config(upstream.url)},
        "governance": {"virtual_keys": [{"id": "vk-m", "name": "metrics-team", "value": VK}]},
    })


def chat(gw, *, model="openai/gpt-4o-mini", **body):
    return requests.post(gw + "/v1/chat/completions", headers={"x-bf-vk": VK},
                         json={"model": model, "messages": HI, **body})


def test_requests_tokens_and_latency(gw, upstream):
    upstream.add(*[Reply(json=chat_completion()) for _ in range(3)], Reply(chunks=sse(*openai_chunks("a", "b"))))
    for _ in range(3):
        assert chat(gw).status_code == 200
    assert b"[DONE]" in chat(gw, stream=True).content
    assert requests.post(gw + "/v1/chat/completions", json={"model": "openai/x", "messages": HI}).status_code == 401
    requests.get(gw + "/nope?x=1")
    time.sleep(0.1)  # the stream's numbers are recorded when the server closes it
    s = scrape(gw)
    base = dict(provider="openai", model="gpt-4o-mini", virtual_key_id="vk-m", virtual_key_name="metrics-team")
    assert total(s, "bifrost_upstream_requests_total", method="chat_completion", **base) == 3
    assert total(s, "bifrost_upstream_requests_total", method="chat_completion_stream", **base) == 1
    assert total(s, "bifrost_success_requests_total", **base) == 4
    assert total(s, "bifrost_error_requests_total") == 0
    assert total(s, "bifrost_input_tokens_total", **base) == 36
    assert total(s, "bifrost_output_tokens_total", **base) == 9 + 2
    assert total(s, "bifrost_upstream_latency_seconds_count", is_success="true", **base) == 4
    assert total(s, "bifrost_stream_first_token_latency_seconds_count", **base) == 1
    assert total(s, "http_requests_total", path="/v1/chat/completions", method="POST", status=200) == 4
    assert total(s, "http_requests_total", path="/v1/chat/completions", status=401) == 1
    assert total(s, "http_requests_total", path="unmatched", method="GET", status=404) == 1
    assert total(s, "http_request_duration_seconds_count", path="/v1/chat/completions") == 5
    assert total(s, "bifrost_in_flight_requests") == 0 and total(s, "bifrost_in_flight_streams") == 0
    assert VK.encode() not in requests.get(gw + "/metrics").content


def test_errors_retries_fallbacks_and_circuits(gw, upstream):
    def handler(rec):
        if rec.json["model"] == "gpt-4o-mini":
            return Reply(status=500, json={"error": {"message": "down", "type": "server_error"}})
        return Reply(json=chat_completion("from groq"))

    upstream.handler = handler
    r = chat(gw, fallbacks=["groq/llama"])
    assert r.status_code == 200
    r = chat(gw)  # no fallback: the open circuit answers
    assert r.status_code == 503
    s = scrape(gw)
    assert total(s, "bifrost_fallbacks_total", provider="groq", model="llama") == 1
    assert total(s, "bifrost_retries_total", provider="groq", model="llama") == 1
    assert total(s, "bifrost_success_requests_total", provider="groq") == 1
    assert total(s, "bifrost_error_requests_total", provider="openai", reason="circuit_open") == 1
    assert total(s, "bifrost_upstream_latency_seconds_count", provider="openai", is_success="false") == 1
    assert total(s, "bifrost_circuit_breaker_state", provider="openai", model="gpt-4o-mini", state="open") == 1
    assert total(s, "bifrost_circuit_breaker_state", provider="openai", model="gpt-4o-mini", state="closed") == 0
    assert total(s, "bifrost_circuit_breaker_state", provider="groq", model="llama", state="closed") == 1


def test_in_flight_streams_and_client_disconnects(gw, upstream):
    events = sse(*openai_chunks("a", *(["b"] * 200)))
    first, rest = events[:2], events[2:]
    upstream.add(Reply(chunks=[*first, 1.0, *[x for c in rest for x in (c, 0.02)]]))
    port = int(gw.rsplit(":", 1)[1])
    body = json.dumps({"model": "openai/gpt-4o-mini", "stream": True, "messages": HI})
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nx-bf-vk: {VK}\r\n"
                     f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n{body}".encode())
        got = b""
        while b"data:" not in got:
            got += sock.recv(65536)
        s = scrape(gw)
        assert total(s, "bifrost_in_flight_requests") == 1
        assert total(s, "bifrost_in_flight_streams") == 1
    deadline = time.monotonic() + 5
    while total(scrape(gw), "bifrost_client_disconnects_total") < 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    s = scrape(gw)
    assert total(s, "bifrost_client_disconnects_total", provider="openai", method="chat_completion_stream") == 1
    assert total(s, "bifrost_in_flight_requests") == 0 and total(s, "bifrost_in_flight_streams") == 0
    assert total(s, "bifrost_success_requests_total") == 0


# --- real gunicorn, two workers ---------------------------------------------------------------------------


@pytest.mark.slow
def test_totals_are_summed_over_gunicorn_workers(tmp_path):
    fake = FakeUpstream()
    fake.handler = lambda rec: Reply(json=chat_completion(), delay=0.05)
    metrics_dir = tmp_path / "metrics"
    # 12 threads: each worker admits threads - 2 = 10 inference requests at once, room for the 8 clients below
    # even when one worker accepts them all
    server = Gunicorn({"providers": {"openai": provider_config(fake.url)}}, tmp_path, workers=2, threads=12,
                      env={"BIFROST_METRICS_DIR": str(metrics_dir)})
    try:
        def one(_):
            with requests.Session() as s:
                return s.post(server.url + "/v1/chat/completions",
                              json={"model": "openai/gpt-4o-mini", "messages": HI}).status_code

        sent = 0
        with ThreadPoolExecutor(8) as pool:
            # until both workers have answered some (the kernel decides who accepts)
            while sent < 400:
                assert set(pool.map(one, range(16))) == {200}
                sent += 16
                if len({line["pid"] for line in server.access_lines() if line["route"] == "/v1/chat/completions"}) == 2:
                    break
        assert len({line["pid"] for line in server.access_lines() if line["route"] == "/v1/chat/completions"}) == 2

        for _ in range(8):  # each worker served only part of them: one worker's numbers could not add up
            s = scrape(server.url)
            assert total(s, "bifrost_upstream_requests_total") == sent
            assert total(s, "bifrost_success_requests_total") == sent
            assert total(s, "http_requests_total", path="/v1/chat/completions", status=200) == sent
            assert total(s, "bifrost_input_tokens_total") == 9 * sent

        # a stream in flight, then every worker killed: counters survive, their gauges do not
        fake.handler = lambda rec: Reply(chunks=sse(*openai_chunks("a"), done=False)[:2] + [30.0])
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            body = json.dumps({"model": "openai/gpt-4o-mini", "stream": True, "messages": HI})
            sock.sendall(f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         f"Content-Length: {len(body)}\r\n\r\n{body}".encode())
            got = b""
            while b"data:" not in got:
                got += sock.recv(65536)
            assert total(scrape(server.url), "bifrost_in_flight_streams") == 1
            old = server.worker_pids()
            for pid in old:
                os.kill(pid, signal.SIGKILL)
            server.wait_workers(2, exclude=old)
        s = scrape(server.url)
        assert total(s, "bifrost_in_flight_streams") == 0 and total(s, "bifrost_in_flight_requests") == 0
        assert total(s, "bifrost_upstream_requests_total") == sent
        names = {p.name for p in metrics_dir.iterdir()}
        assert "bifrost-counters-archive.metrics" in names
        assert not any(f"-{pid}." in name for pid in old for name in names)
    finally:
        server.close()
        fake.close()
