"""Overload: a worker serves at most threads - 2 inference requests at once; the next one is refused at once
with 503 queue_full and Retry-After (never queued silently), and /health and /metrics keep answering."""

import json
import socket
import time

import pytest
import requests

from bifrost_wsgi.app import Admission, inference_limit
from tests.fakes import FakeUpstream, Reply, openai_chunks, sse
from tests.procs import Gateway

HI = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize("env, limit", [
    ({}, None),
    ({"BIFROST_WORKER_THREADS": "64"}, 62),
    ({"BIFROST_WORKER_THREADS": "2"}, 1),
    ({"BIFROST_WORKER_THREADS": "64", "BIFROST_MAX_INFLIGHT": "10"}, 10),
    ({"BIFROST_WORKER_THREADS": "x"}, None),
])
def test_the_limit_is_the_workers_threads_less_two(env, limit):
    assert inference_limit(env) == limit


def test_admission_refuses_beyond_its_limit_and_frees_its_places():
    gate = Admission(2)
    gate.enter()
    gate.enter()
    with pytest.raises(Exception) as refused:
        gate.enter()
    assert refused.value.status == 503 and refused.value.type == "queue_full" and refused.value.retry_after
    gate.leave()
    gate.enter()


def _open_stream(port: int) -> socket.socket:
    body = json.dumps({"model": "openai/gpt-4o-mini", "messages": HI, "stream": True}).encode()
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    got = b""
    while b"data:" not in got:
        got += sock.recv(65536)
    return sock


@pytest.mark.slow
def test_a_busy_worker_refuses_at_once_and_keeps_health_and_metrics_answering():
    fake = FakeUpstream()
    chunks = sse(*openai_chunks("slow", " answer"))
    fake.handler = lambda rec: Reply(chunks=[*chunks[:2], 4.0, *chunks[2:]])  # holds its thread for 4 s
    gw = Gateway({"providers": {"openai": {"keys": [{"value": "k"}],
                                           "network_config": {"base_url": fake.url}}}}, workers=1, threads=4)
    try:
        held = [_open_stream(gw.port) for _ in range(2)]  # threads - 2 = 2: the worker is full
        t0 = time.monotonic()
        r = requests.post(gw.url + "/v1/chat/completions", json={"model": "openai/gpt-4o-mini", "messages": HI},
                          timeout=10)
        assert time.monotonic() - t0 < 1.0
        assert r.status_code == 503 and r.json()["error"]["type"] == "queue_full"
        assert int(r.headers["Retry-After"]) >= 1
        assert requests.get(gw.url + "/health", timeout=2).status_code == 200
        assert requests.get(gw.url + "/metrics", timeout=2).status_code == 200
        for sock in held:
            sock.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # the places come back once the streams are over
            r = requests.post(gw.url + "/v1/chat/completions", timeout=10,
                              json={"model": "openai/gpt-4o-mini", "messages": HI, "stream": True})
            if r.status_code == 200:
                break
            time.sleep(0.2)
        assert r.status_code == 200
    finally:
        gw.stop()
        fake.close()
