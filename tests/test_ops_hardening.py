"""Operating the gateway, through real processes: ``bifrost-wsgi`` and gunicorn with deploy/gunicorn.conf.py
behave the same when they refuse a request they cannot parse (the JSON envelope, never HTML), when they are
told to reload (a HUP reads the config again; a bad config is logged and the running workers keep serving)
and when they are told to stop (new connections are refused at once while streams in flight finish). And the
standard proxy variables are honoured in env-only mode, through a real proxy."""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time

import pytest
import requests

from bifrost_wsgi import config as C
from tests.conftest import OPENAI_KEY, provider_config
from tests.deploy_procs import Gunicorn
from tests.fakes import ForwardProxy, Reply, chat_completion, openai_chunks, sse
from tests.procs import Gateway

pytestmark = pytest.mark.slow

HI = [{"role": "user", "content": "hi"}]
LAUNCHERS = ["bifrost-wsgi", "deploy/gunicorn.conf.py"]


class Server:
    """One interface over the two ways to run the gateway."""

    def __init__(self, launcher: str, config: dict, tmp_path, *, threads: int = 4) -> None:
        if launcher == "bifrost-wsgi":
            self._gateway = Gateway(config, workers=1, threads=threads)
            self.proc, self.port, self.config_path = self._gateway.proc, self._gateway.port, self._gateway.config_path
            self.log = self._gateway.output
            self.close = self._gateway.stop
        else:
            self._gunicorn = Gunicorn(config, tmp_path, workers=1, threads=threads)
            self.proc, self.port = self._gunicorn.proc, self._gunicorn.port
            self.config_path = str(tmp_path / "config.json")
            self.log = self._gunicorn.err_path.read_text
            self.close = self._gunicorn.close

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def workers(self) -> set[int]:
        pids = set()
        for task in os.listdir(f"/proc/{self.proc.pid}/task"):
            with open(f"/proc/{self.proc.pid}/task/{task}/children") as f:
                pids.update(int(p) for p in f.read().split())
        return pids

    def write_config(self, config) -> None:
        with open(self.config_path, "w") as f:
            f.write(config if isinstance(config, str) else json.dumps(config))


def wait_for(predicate, what: str, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


def chat(url: str, model: str = "openai/gpt-4o-mini") -> requests.Response:
    with requests.Session() as client:
        client.trust_env = False  # the proxy variables some tests set are for the gateway, not for us
        return client.post(url + "/v1/chat/completions", json={"model": model, "messages": HI}, timeout=10)


# --- gunicorn's own refusals --------------------------------------------------------------------------


def _headers(count: int, size: int) -> bytes:
    return b"".join(b"X-Filler-%d: %s\r\n" % (i, b"v" * size) for i in range(count))


REFUSALS = [
    ("malformed request line", b"GARBAGE\r\n\r\n", 400),
    ("unknown HTTP version", b"GET /health HTTP/9.9\r\nHost: x\r\n\r\n", 400),
    ("header name with a space", b"GET /health HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n", 400),
    ("request line over 8190 bytes", b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    ("720 KB of headers in 720 fields", b"GET /health HTTP/1.1\r\nHost: x\r\n" + _headers(720, 1000) + b"\r\n", 431),
    ("720 KB of headers in 90 fields of 8 KB", b"GET /health HTTP/1.1\r\nHost: x\r\n" + _headers(90, 8000) + b"\r\n",
     431),
    ("one header field over 8190 bytes", b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"v" * 9000 + b"\r\n\r\n",
     431),
    ("unknown transfer coding", b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: bogus\r\n\r\n",
     501),
    ("an expectation nobody meets",
     b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nExpect: 999-nope\r\nContent-Length: 2\r\n\r\n{}", 417),
]


@pytest.fixture(scope="module", params=LAUNCHERS)
def keyless(request, tmp_path_factory):
    server = Server(request.param, {"providers": {"ollama": {"keys": []}}}, tmp_path_factory.mktemp("keyless"))
    yield server
    server.close()


def exchange(port: int, data: bytes) -> bytes:
    """Send ``data`` (from a thread: the server may answer before it has read it all) and read the answer
    until the server closes."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)

    def send():
        try:
            sock.sendall(data)
        except OSError:
            pass  # the server refused before reading everything: its answer is what matters

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    answer = b""
    try:
        while block := sock.recv(65536):
            answer += block
    except ConnectionResetError:
        pass
    sender.join(10)
    sock.close()
    return answer


@pytest.mark.parametrize("data,status", [c[1:] for c in REFUSALS], ids=[c[0] for c in REFUSALS])
def test_gunicorns_refusals_are_the_json_envelope(keyless, data, status):
    head, _, body = exchange(keyless.port, data).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0].startswith(f"HTTP/1.1 {status} "), lines[0]
    assert "Content-Type: application/json" in lines and "Connection: close" in lines
    envelope = json.loads(body)
    assert envelope == {
        "is_bifrost_error": False, "status_code": status,
        "error": {"message": envelope["error"]["message"], "type": "invalid_request_error"},
        "extra_fields": {"provider": "", "model_requested": "", "request_type": ""},
    }
    assert envelope["error"]["message"]
    assert f"Content-Length: {len(body)}" in lines


def test_what_sdks_send_is_far_below_the_limits(keyless):
    headers = {"Authorization": "Bearer " + "t" * 6000, "Cookie": "c=" + "k" * 4000,
               **{f"X-Stainless-Header-{i}": "v" * 200 for i in range(40)}}
    r = requests.get(keyless.url + "/health?" + "q" * 4000, headers=headers, timeout=10)
    assert r.status_code == 200 and r.json() == {"status": "ok"}


# --- HUP: reload, or keep serving ---------------------------------------------------------------------


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_hup_reloads_the_config_and_a_bad_one_keeps_the_running_workers(launcher, upstream, tmp_path):
    upstream.handler = lambda rec: Reply(json=chat_completion("served"))
    server = Server(launcher, {"providers": {"openai": provider_config(upstream.url)}}, tmp_path)
    try:
        assert chat(server.url).status_code == 200
        assert chat(server.url, "groq/llama-3.3-70b").status_code == 400  # not configured yet
        first = server.workers()

        # a config that does not load: every problem logged, no new workers, the old ones serve on
        server.write_config({"providers": {"openai": {"keys": [{"value": "env.NOT_SET_ONE"}]},
                                           "groq": {"keys": [{"value": "env.NOT_SET_TWO"}]}}})
        os.kill(server.proc.pid, signal.SIGHUP)
        wait_for(lambda: "not reloaded" in server.log(), "the refused reload is logged")
        log = server.log()
        assert "environment variable NOT_SET_ONE is not set" in log
        assert "environment variable NOT_SET_TWO is not set" in log
        assert server.workers() == first
        assert chat(server.url).json()["choices"][0]["message"]["content"] == "served"

        # an edited config that loads: new workers serve it, the old ones leave
        server.write_config({"providers": {"openai": provider_config(upstream.url),
                                           "groq": provider_config(upstream.url, key="gsk-test-groq-SECRET")}})
        os.kill(server.proc.pid, signal.SIGHUP)
        wait_for(lambda: server.workers() and not server.workers() & first, "new workers replaced the old")
        wait_for(lambda: chat(server.url, "groq/llama-3.3-70b").status_code == 200, "the new config is served")
        assert upstream.requests[-1].headers["authorization"] == "Bearer gsk-test-groq-SECRET"
        assert server.proc.poll() is None
        assert "gsk-test-groq-SECRET" not in server.log() and OPENAI_KEY not in server.log()
    finally:
        server.close()


# --- SIGTERM: refuse new connections, finish the streams ------------------------------------------------


def _probe(port: int) -> str:
    """What a new client meets: "refused", "served", or "hung"."""
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    except ConnectionRefusedError:
        return "refused"
    with sock:
        try:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            answer = sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            return "refused"  # it was queued on the listening socket when that closed
        except socket.timeout:
            return "hung"
    return "served" if answer.startswith(b"HTTP/1.1 200") else "refused"


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_sigterm_refuses_new_connections_at_once_and_lets_streams_finish(launcher, upstream, tmp_path):
    parts = [f"part{i} " for i in range(12)]
    events = []
    for event in sse(*openai_chunks(*parts)):
        events += [event, 0.5]  # ~7 s: room for the refusal to be seen under a loaded CI machine
    upstream.handler = lambda rec: Reply(chunks=events)
    server = Server(launcher, {"providers": {"openai": provider_config(upstream.url)}}, tmp_path)
    try:
        started, text, finish = threading.Event(), [], []

        def stream():
            body = {"model": "openai/gpt-4o-mini", "messages": HI, "stream": True}
            with requests.post(server.url + "/v1/chat/completions", json=body, stream=True, timeout=30) as r:
                for line in r.iter_lines():
                    if not line.startswith(b"data: {"):
                        continue
                    chunk = json.loads(line[6:])
                    for choice in chunk["choices"]:
                        text.append(choice["delta"].get("content") or "")
                        finish.append(choice.get("finish_reason"))
                    started.set()

        reader = threading.Thread(target=stream, daemon=True)
        reader.start()
        assert started.wait(15)
        os.kill(server.proc.pid, signal.SIGTERM)
        outcomes = []
        while not outcomes or outcomes[-1] == "served":
            outcomes.append(_probe(server.port))
        assert outcomes[-1] == "refused", outcomes
        assert reader.is_alive()  # the stream is still running: the refusal did not wait for it
        reader.join(30)
        assert "".join(text) == "".join(parts) and finish[-1] == "stop"
        server.proc.wait(15)
    finally:
        server.close()


# --- proxy variables, end to end ------------------------------------------------------------------------


@pytest.fixture
def proxy():
    p = ForwardProxy()
    yield p
    p.close()


def _env_only(upstream, extra):
    return C.from_environ({"OPENAI_API_KEY": OPENAI_KEY, "OPENAI_BASE_URL": upstream.url, **extra})


@pytest.mark.parametrize("case,through_proxy", [
    ("HTTP_PROXY", True),
    ("http_proxy", True),
    ("HTTP_PROXY with NO_PROXY naming the upstream", False),
    ("HTTP_PROXY with proxy_config none in config.json", False),
    ("HTTP_PROXY with a provider without proxy_config in config.json", True),
    ("no proxy variable", False),
])
def test_env_proxy_variables_end_to_end(case, through_proxy, upstream, proxy, serve, monkeypatch):
    variables = {
        "HTTP_PROXY": {"HTTP_PROXY": proxy.url},
        "http_proxy": {"http_proxy": proxy.url},
        "HTTP_PROXY with NO_PROXY naming the upstream": {"HTTP_PROXY": proxy.url, "NO_PROXY": "127.0.0.1"},
        "HTTP_PROXY with proxy_config none in config.json": {"HTTP_PROXY": proxy.url},
        "HTTP_PROXY with a provider without proxy_config in config.json": {"HTTP_PROXY": proxy.url},
        "no proxy variable": {},
    }[case]
    for name, value in variables.items():
        monkeypatch.setenv(name, value)  # the transport asks the environment for the proxy of each URL
    if "config.json" in case:
        section = provider_config(upstream.url)
        if "none" in case:
            section["proxy_config"] = {"type": "none"}
        config = C.from_dict({"providers": {"openai": section}}, environ=dict(os.environ))
    else:
        config = _env_only(upstream, variables)
    upstream.add(Reply(json=chat_completion("via the network")))
    r = chat(serve(config))
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "via the network"
    assert upstream.requests[-1].headers["authorization"] == f"Bearer {OPENAI_KEY}"
    expected = [f"POST {upstream.url}/v1/chat/completions"] if through_proxy else []
    assert proxy.seen == expected


def test_env_only_base_url_reaches_the_upstream(upstream, serve):
    upstream.add(Reply(json=chat_completion("from the base URL")))
    r = chat(serve(_env_only(upstream, {})))
    assert r.json()["choices"][0]["message"]["content"] == "from the base URL"
    assert upstream.requests[-1].path == "/v1/chat/completions"

