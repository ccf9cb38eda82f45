"""The deploy recipe as committed: real nginx (deploy/nginx/bifrost.conf) in front of real gunicorn
(deploy/gunicorn.conf.py) in front of a fake provider. Skipped when nginx is not installed (.ci/run installs it)."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time

import openai
import pytest
import requests

from tests.conftest import OPENAI_KEY, provider_config
from tests.deploy_procs import DEPLOY, Gunicorn, Nginx, nginx_binary, render_nginx_conf
from tests.fakes import FakeUpstream, Reply, chat_completion, openai_chunks, sse

pytestmark = pytest.mark.slow

HI = [{"role": "user", "content": "hi"}]
GAP = 0.3  # seconds between upstream events
LIMIT = 100 * 1024 * 1024  # client.max_request_body_size_mb default = nginx client_max_body_size


def spaced(texts, gap=GAP) -> list:
    """An OpenAI stream whose events leave the fake upstream ``gap`` seconds apart."""
    out = []
    for event in sse(*openai_chunks(*texts)):
        out += [event, gap]
    return out


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    binary = nginx_binary()
    if binary is None:
        pytest.skip("nginx is not installed (.ci/run installs it from Debian packages)")
    fake = FakeUpstream()
    server = proxy = None
    try:
        server = Gunicorn({"providers": {"openai": provider_config(fake.url, default_request_timeout_in_seconds=30)}},
                          tmp_path_factory.mktemp("gunicorn"), workers=2, threads=8)
        proxy = Nginx(binary, tmp_path_factory.mktemp("nginx"), upstream=f"127.0.0.1:{server.port}")
        yield fake, server, proxy
    finally:
        if proxy is not None:
            proxy.close()
        if server is not None:
            server.close()
        fake.close()


def raw_stream_request(port: int, *, headers: str = "") -> socket.socket:
    """Send a streaming chat request on a raw socket and read until its first event arrived."""
    body = json.dumps({"model": "openai/gpt-4o-mini", "stream": True, "messages": HI})
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(f"POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                 f"{headers}Content-Length: {len(body)}\r\n\r\n{body}".encode())
    got = b""
    while b"data:" not in got:
        block = sock.recv(65536)
        assert block, got
        got += block
    return sock


def test_committed_template_has_only_the_two_documented_variables():
    text = (DEPLOY / "nginx" / "bifrost.conf").read_text()
    assert set(re.findall(r"\$\{(\w+)\}", text)) == {"BIFROST_LISTEN", "BIFROST_UPSTREAM"}
    rendered = render_nginx_conf("127.0.0.1:1", "127.0.0.1:2")
    assert "${" not in rendered and "$bifrost_request_id" in rendered and "$proxy_add_x_forwarded_for" in rendered
    envsubst = shutil.which("envsubst")
    if envsubst:  # the documented command gives the same file
        out = subprocess.run([envsubst, "${BIFROST_LISTEN} ${BIFROST_UPSTREAM}"], input=text, capture_output=True,
                             text=True, check=True,
                             env={"BIFROST_LISTEN": "127.0.0.1:1", "BIFROST_UPSTREAM": "127.0.0.1:2"}).stdout
        assert out == rendered


def test_chunks_arrive_as_they_are_produced(stack):
    fake, server, proxy = stack
    fake.handler = lambda rec: Reply(chunks=spaced(["one ", "two ", "three ", "four ", "five"]))
    arrivals, text = [], ""
    with openai.OpenAI(base_url=proxy.url + "/v1", api_key="unused", max_retries=0) as client:
        start = time.monotonic()
        for chunk in client.chat.completions.create(model="openai/gpt-4o-mini", messages=HI, stream=True):
            if chunk.choices and chunk.choices[0].delta.content:
                arrivals.append(time.monotonic() - start)
                text += chunk.choices[0].delta.content
    assert text == "one two three four five"
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:])]
    # buffered anywhere on the way, they would arrive together at the end (gaps near 0); a busy machine may
    # delay one chunk, which shortens the next gap, so the test looks at the spread and the typical gap
    assert len(gaps) == 4, gaps
    assert sorted(gaps)[1] > GAP * 0.5, gaps  # three of the four gaps at least
    assert arrivals[-1] - arrivals[0] > 3 * GAP, arrivals


def _content_length(answer: bytes) -> int:
    head = answer.partition(b"\r\n\r\n")[0].decode().lower()
    found = [line.split(":", 1)[1] for line in head.split("\r\n") if line.startswith("content-length:")]
    return int(found[0]) if found else 1 << 30


def test_oversized_body_is_refused_with_the_envelope(stack):
    _, _, proxy = stack
    with socket.create_connection(("127.0.0.1", proxy.port)) as sock:
        sock.sendall(f"POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                     f"X-Request-ID: too-big-1\r\nContent-Length: {LIMIT + 1}\r\n\r\n".encode() + b"{" * 4096)
        answer = b""
        while b"\r\n\r\n" not in answer or len(answer.partition(b"\r\n\r\n")[2]) < _content_length(answer):
            block = sock.recv(65536)
            assert block, answer
            answer += block
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])}
    assert lines[0].split()[1] == "413"
    assert headers["content-type"] == "application/json"
    assert headers["x-request-id"] == "too-big-1"
    envelope = json.loads(body)
    assert envelope["status_code"] == 413
    assert envelope["error"]["type"] == "request_too_large"
    assert envelope["extra_fields"] == {"provider": "", "model_requested": "", "request_type": ""}


def test_request_id_is_carried_both_ways(stack):
    fake, server, proxy = stack
    fake.handler = lambda rec: Reply(json=chat_completion())
    r = requests.post(proxy.url + "/v1/chat/completions", headers={"X-Request-ID": "rid-e2e-42"},
                      json={"model": "openai/gpt-4o-mini", "messages": HI})
    assert r.status_code == 200
    assert r.headers["X-Request-ID"] == "rid-e2e-42"  # once: two headers would read "a, a"
    # without one, nginx makes one and the gateway logs and echoes that same id
    r = requests.get(proxy.url + "/health")
    rid = r.headers["X-Request-ID"]
    assert len(rid) == 32 and int(rid, 16) >= 0
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        logged = {line["request_id"]: line for line in server.access_lines()}
        if "rid-e2e-42" in logged and rid in logged:
            break
        time.sleep(0.05)
    assert logged["rid-e2e-42"]["status"] == 200 and logged["rid-e2e-42"]["provider"] == "openai"
    assert logged[rid]["route"] == "/health"
    # the client address is the one nginx saw, not nginx's own
    assert logged[rid]["client_ip"] == "127.0.0.1"


def test_client_disconnect_through_nginx_closes_the_upstream(stack):
    fake, server, proxy = stack
    fake.handler = lambda rec: Reply(chunks=spaced(["tok "] * 40))
    before = fake.disconnects
    sock = raw_stream_request(proxy.port)
    sock.close()
    deadline = time.monotonic() + 5
    while fake.disconnects == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fake.disconnects == before + 1
    time.sleep(0.2)
    assert any(line.get("client_disconnected") for line in server.access_lines())


def test_graceful_reload_does_not_cut_a_stream(stack):
    fake, server, proxy = stack
    fake.handler = lambda rec: Reply(chunks=spaced([f"part{i} " for i in range(10)]))
    old_workers = server.worker_pids()
    text, finish = "", None
    with openai.OpenAI(base_url=proxy.url + "/v1", api_key="unused", max_retries=0) as client:
        stream = client.chat.completions.create(model="openai/gpt-4o-mini", messages=HI, stream=True)
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                if not text:
                    os.kill(server.proc.pid, signal.SIGHUP)  # deploy: new workers, old ones finish their work
                text += chunk.choices[0].delta.content
            if chunk.choices and chunk.choices[0].finish_reason:
                finish = chunk.choices[0].finish_reason
    assert text == "".join(f"part{i} " for i in range(10))
    assert finish == "stop"
    # the new workers serve, the old ones are gone once their stream ended
    new_workers = server.wait_workers(2, exclude=old_workers)
    fake.handler = lambda rec: Reply(json=chat_completion("after reload"))
    r = requests.post(proxy.url + "/v1/chat/completions", json={"model": "openai/gpt-4o-mini", "messages": HI})
    assert r.json()["choices"][0]["message"]["content"] == "after reload"
    deadline = time.monotonic() + 10
    while server.worker_pids() & old_workers and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not server.worker_pids() & old_workers and new_workers <= server.worker_pids()


def test_metrics_and_logs_through_nginx_hold_no_secret(stack):
    _, server, proxy = stack
    r = requests.get(proxy.url + "/metrics")
    assert r.status_code == 200 and "bifrost_upstream_requests_total" in r.text
    logs = server.out_path.read_text() + server.err_path.read_text()
    assert OPENAI_KEY not in logs and OPENAI_KEY not in r.text
    for line in server.access_lines():
        assert {"request_id", "route", "status", "latency_ms"} <= line.keys()

