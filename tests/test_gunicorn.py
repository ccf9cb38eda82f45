"""The real thing: the ``bifrost-wsgi`` console script (gunicorn, gthread workers) as a subprocess."""

import json
import os
import socket
import subprocess
import sys
import time

import openai
import pytest
import requests

from tests.conftest import OPENAI_KEY, provider_config
from tests.fakes import Reply, chat_completion, openai_chunks, sse
from tests.procs import Gateway

pytestmark = pytest.mark.slow


@pytest.fixture
def live(upstream):
    gw = Gateway({"providers": {"openai": provider_config(upstream.url)}}, workers=1, threads=8)
    yield gw
    gw.stop()


def test_startup_prints_address_and_providers(live):
    out = live.output()
    assert f"listening on http://127.0.0.1:{live.port}" in out
    assert "providers enabled: openai" in out
    assert OPENAI_KEY not in out


def test_openai_sdk_through_gunicorn(live, upstream):
    upstream.add(Reply(json=chat_completion("Hi from upstream")),
                 Reply(chunks=sse(*openai_chunks("Hel", "lo", "!"))))
    with openai.OpenAI(base_url=live.url + "/v1", api_key="unused", max_retries=0) as client:
        done = client.chat.completions.create(model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        assert done.choices[0].message.content == "Hi from upstream"
        stream = client.chat.completions.create(model="openai/gpt-4o-mini", stream=True,
                                                messages=[{"role": "user", "content": "hi"}])
        chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello!"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].usage.total_tokens == 12


def test_chunked_body_over_the_limit_is_413(upstream):
    gw = Gateway({"client": {"max_request_body_size_mb": 0.01}, "providers": {"openai": provider_config(upstream.url)}})
    try:
        def gen():
            yield b'{"model":"openai/x","messages":[{"role":"user","content":"'
            for _ in range(50):
                yield b"y" * 1000
            yield b'"}]}'

        r = requests.post(gw.url + "/v1/chat/completions", data=gen())
        assert r.status_code == 413
        assert r.json()["status_code"] == 413
    finally:
        gw.stop()


def _worker_pid(master: int) -> int:
    with open(f"/proc/{master}/task/{master}/children") as f:
        return int(f.read().split()[0])


def _threads_and_fds(pid: int) -> tuple[int, int]:
    return len(os.listdir(f"/proc/{pid}/task")), len(os.listdir(f"/proc/{pid}/fd"))


def test_client_disconnects_close_upstream_without_leaks(live, upstream):
    """Hundreds of clients hang up mid-stream: each upstream connection is dropped within a second, and the
    worker's threads and file descriptors come back to where they were."""
    rounds = 200
    tokens = [x for c in sse(*openai_chunks(*(["tok"] * 100))) for x in (c, 0.02)]
    upstream.handler = lambda rec: Reply(chunks=tokens)
    worker = _worker_pid(live.proc.pid)
    payload = json.dumps({"model": "openai/gpt-4o-mini", "stream": True,
                          "messages": [{"role": "user", "content": "hi"}]}).encode()
    request = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Content-Length: %d\r\n\r\n%s" % (len(payload), payload))
    for i in range(rounds):
        with socket.create_connection(("127.0.0.1", live.port)) as s:
            s.sendall(request)
            assert b"200 OK" in s.recv(4096)
        if i == 9:
            time.sleep(0.5)
            baseline = _threads_and_fds(worker)
    deadline = time.monotonic() + 10
    while upstream.disconnects < rounds and time.monotonic() < deadline:
        time.sleep(0.1)
    assert upstream.disconnects == rounds
    assert upstream.finished_streams == 0
    time.sleep(1.0)
    threads, fds = _threads_and_fds(worker)
    assert threads <= max(baseline[0], 8 + 4)  # the gthread pool never grows past --threads
    assert fds <= baseline[1] + 2
    assert requests.get(live.url + "/health").json() == {"status": "ok"}


@pytest.mark.parametrize("config,expected", [
    ({"providers": {"openai": {"keys": [{"value": "k", "weight": "heavy"}]}}},
     "providers.openai.keys[0].weight: must be a number"),
    ({"providers": {"openai": {"keys": [{"value": "env.NO_SUCH_VAR_XYZ"}]}}},
     "providers.openai.keys[0].value: environment variable NO_SUCH_VAR_XYZ is not set"),
    ({"providers": {"openai": {"keys": [{"value": "k"}], "network_config": {"timeout": 5}}}},
     "providers.openai.network_config.timeout: unknown key"),
])
def test_bad_config_exits_2_with_one_line(tmp_path, config, expected):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    proc = subprocess.run([sys.executable, "-m", "bifrost_wsgi.cli", "--config", str(path), "--port", "1"],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
