"""The request path's promises: data flows one way through the package, the transport reads bodies through
public interfaces whatever the read buffer size, our own bugs are 500s that spend nothing, a malformed
upstream answer is the provider's fault, and a stream that breaks after its first byte counts against the
provider's circuit."""

import ast
import io
import json
import pathlib
import socket
import threading
import time

import pytest
import requests

from bifrost_wsgi.providers import openai_compat
from tests.fakes import Reply, chat_completion, openai_chunks, sse
from tests.test_resilience import HI, Script, attempts, chat, make  # noqa: F401 - make is a fixture

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "bifrost_wsgi"


# --- the import graph -----------------------------------------------------------------------------------

def _module(path: pathlib.Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports():
    """module -> (module-level imports of the package, function-level imports of the package)."""
    graph = {}
    for path in PACKAGE.rglob("*.py"):
        name = _module(path)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        tree = ast.parse(path.read_text())
        top, nested = set(), set()
        for node in ast.walk(tree):
            targets = []
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")
                    anchor = anchor[:len(anchor) - node.level + 1]
                    base = ".".join([*anchor, *([base] if base else [])])
                for alias in node.names:
                    targets.append(f"{base}.{alias.name}")
                    targets.append(base)
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            found = {t for t in targets if t.startswith("bifrost_wsgi")}
            (top if node in tree.body or _in_if_or_try(tree, node) else nested).update(found)
        graph[name] = (top, nested)
    modules = set(graph)
    return {m: ({t for t in top if t in modules and t != m}, {t for t in nested if t in modules})
            for m, (top, nested) in graph.items()}


def _in_if_or_try(tree, node) -> bool:
    for stmt in tree.body:
        if isinstance(stmt, (ast.If, ast.Try)) and any(n is node for n in ast.walk(stmt)):
            return True
    return False


def test_the_import_graph_has_no_cycle_not_even_through_function_level_imports():
    # function-level imports are allowed only to defer start-up cost (the command line, make_app), never to
    # hide a cycle: they count as edges here
    graph = {m: top | {n for n in nested if n != m} for m, (top, nested) in _imports().items()}
    graph["bifrost_wsgi"] -= {"bifrost_wsgi.app"}  # the package's lazy make_app: the root imports nothing else
    state: dict[str, int] = {}

    def visit(m, path):
        state[m] = 1
        for t in graph[m]:
            if state.get(t) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*path, m, t]))
            if not state.get(t):
                visit(t, [*path, m])
        state[m] = 2

    for m in graph:
        if not state.get(m):
            visit(m, [])


# each layer may import only what lies below it in the flow (surfaces -> routing -> providers -> wire ->
# transport); the shared vocabulary (errors, schema, answers, config) lies under all of them
FORBIDDEN = [
    ("bifrost_wsgi.transport", ("bifrost_wsgi.routing", "bifrost_wsgi.providers", "bifrost_wsgi.surfaces",
                                "bifrost_wsgi.wire", "bifrost_wsgi.config", "bifrost_wsgi.app")),
    ("bifrost_wsgi.wire", ("bifrost_wsgi.routing", "bifrost_wsgi.providers", "bifrost_wsgi.surfaces",
                           "bifrost_wsgi.app")),
    ("bifrost_wsgi.providers", ("bifrost_wsgi.routing", "bifrost_wsgi.surfaces", "bifrost_wsgi.app")),
    ("bifrost_wsgi.routing", ("bifrost_wsgi.surfaces", "bifrost_wsgi.app")),
    ("bifrost_wsgi.surfaces", ("bifrost_wsgi.providers", "bifrost_wsgi.app")),
]


@pytest.mark.parametrize("layer, below", FORBIDDEN, ids=[f[0].rpartition(".")[2] for f in FORBIDDEN])
def test_data_flows_one_way(layer, below):
    graph = _imports()
    wrong = {m: sorted(t for t in top if t.startswith(below))
             for m, (top, _) in graph.items() if m == layer or m.startswith(layer + ".")}
    assert {m: t for m, t in wrong.items() if t} == {}


# --- the transport, on public interfaces --------------------------------------------------------------------

def _one_write_upstream(body_parts: list):
    """A raw upstream that sends the status line, the headers and the first body part in ONE write, then the
    other parts (floats are pauses); returns (url, thread)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def serve():
        conn, _ = listener.accept()
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            head, _, rest = data.partition(b"\r\n\r\n")
            length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length")), 0)
            while len(rest) < length:
                rest += conn.recv(65536)
            chunks = [p for p in body_parts if isinstance(p, bytes)]
            first = b"%x\r\n%s\r\n" % (len(chunks[0]), chunks[0])
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
                         + first)
            for part in body_parts[1:]:
                if isinstance(part, float):
                    time.sleep(part)
                else:
                    conn.sendall(b"%x\r\n%s\r\n" % (len(part), part))
            conn.sendall(b"0\r\n\r\n")
            conn.recv(1)
        listener.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return f"http://127.0.0.1:{listener.getsockname()[1]}", thread


@pytest.mark.parametrize("pauses", [False, True], ids=["all at once", "with pauses"])
def test_a_big_read_buffer_and_headers_sent_with_the_body_give_the_whole_stream(serve, monkeypatch, pauses):
    # newer CPython releases read 128 KiB at a time: the whole answer can sit in http.client's buffer
    monkeypatch.setattr(io, "DEFAULT_BUFFER_SIZE", 131072)
    events = b"".join(sse(*openai_chunks("one", " two", " three")))
    parts = [events[:40], events[40:]] if not pauses else [events[:40], 0.2, events[40:300], 0.2, events[300:]]
    url, thread = _one_write_upstream(parts)
    gw = serve({"providers": {"openai": {"keys": [{"value": "k"}], "network_config": {"base_url": url}}}})
    r = requests.post(gw + "/v1/chat/completions", timeout=10,
                      json={"model": "openai/gpt-4o-mini", "messages": HI, "stream": True})
    data = [b[6:] for b in r.text.split("\n\n") if b.startswith("data: ")]
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"]) == "one two three"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop" and chunks[-1]["usage"]["total_tokens"] == 12
    thread.join(5)


# --- whose fault a failure is ----------------------------------------------------------------------------------

def _explode(*args, **kwargs):
    raise TypeError("a bug in our translator")


def test_a_bug_in_a_translator_is_a_500_that_spends_nothing_more(make, upstream, monkeypatch):
    url, script = make(client={"circuit_breaker": {"failure_threshold": 2}})
    script.set("primary", Reply(json=chat_completion("hi", model="primary")))
    script.set("backup", Reply(json=chat_completion("hi", model="backup")))
    monkeypatch.setattr(openai_compat.OpenAICompatAdapter, "parse_response", _explode)
    for _ in range(4):
        r = chat(url)
        assert r.status_code == 500
        assert r.json()["error"] == {"message": "internal server error", "type": "internal_error"}
    assert len(attempts(upstream, "primary")) == 4  # once per request: no retry, and the circuit stayed closed
    assert attempts(upstream, "backup") == []  # no fallback


def test_a_bug_in_a_stream_translator_is_an_internal_error_in_band(make, upstream, monkeypatch):
    url, script = make(client={"stream_failover": "resume"})
    script.set("primary", Reply(chunks=sse(*openai_chunks("a", "b", model="primary"))))
    calls = []
    feed = openai_compat.OpenAIStream.feed

    def feed_then_explode(self, event):
        calls.append(1)
        if len(calls) == 3:
            raise AttributeError("a bug in our translator")
        return feed(self, event)

    monkeypatch.setattr(openai_compat.OpenAIStream, "feed", feed_then_explode)
    r = chat(url, stream=True)
    data = [b[6:] for b in r.text.split("\n\n") if b.startswith("data: ")]
    assert data[-1] == "[DONE]"
    assert json.loads(data[-2])["error"]["type"] == "internal_error"
    assert attempts(upstream, "backup") == []  # not resumed elsewhere


@pytest.mark.parametrize("answer", [
    {"id": "x", "object": "chat.completion"},  # no choices
    {"id": "x", "choices": [{"index": 0, "finish_reason": "stop"}]},  # a choice without its message
    {"id": "x", "choices": "none"},
], ids=["no choices", "no message", "choices not a list"])
def test_a_malformed_answer_is_the_providers_fault(make, upstream, answer):
    url, script = make(primary={"max_retries": 1})
    script.set("primary", Reply(json=answer))
    script.set("backup", Reply(json=chat_completion("from backup", model="backup")))
    r = chat(url)
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "from backup"
    assert len(attempts(upstream, "primary")) == 2  # retried, then failed over


def test_failures_after_the_first_byte_count_against_the_circuit(make, upstream):
    url, script = make(client={"circuit_breaker": {"failure_threshold": 2, "cooldown_seconds": 60}})
    cut = Reply(chunks=sse(*openai_chunks("The answer", model="primary")[:2], done=False), fault="truncate")
    script.set("primary", cut)
    script.set("backup", Reply(chunks=sse(*openai_chunks("from backup", model="backup"))))
    for _ in range(2):
        assert "upstream_protocol_error" in chat(url, stream=True).text
    r = chat(url, stream=True)  # the primary's circuit is open now: the backup answers from the start
    assert "from backup" in r.text
    assert len(attempts(upstream, "primary")) == 2


# --- a client that leaves while its request waits ----------------------------------------------------------------

def test_a_client_that_leaves_before_the_first_token_releases_the_upstream():
    from tests.procs import Gateway

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    closed_after = []

    def upstream():
        conn, _ = listener.accept()
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            role = b"".join(sse(openai_chunks()[0], done=False))
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
                         + b"%x\r\n%s\r\n" % (len(role), role))
            t0 = time.monotonic()
            conn.settimeout(20)
            try:
                while conn.recv(65536):
                    pass
            except OSError:
                pass
            closed_after.append(time.monotonic() - t0)

    thread = threading.Thread(target=upstream, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    config = {"providers": {"openai": {"keys": [{"value": "k"}], "network_config": {
        "base_url": url, "default_request_timeout_in_seconds": 30}}}}
    gw = Gateway(config)
    try:
        body = json.dumps({"model": "openai/gpt-4o-mini", "messages": HI, "stream": True}).encode()
        client = socket.create_connection(("127.0.0.1", gw.port))
        client.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                       b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        time.sleep(0.5)  # the gateway is now waiting for the first token
        client.close()
        thread.join(10)
        assert closed_after and closed_after[0] < 3.0
        time.sleep(0.3)
        assert '"client_disconnected":true' in gw.output()
    finally:
        gw.stop()
        listener.close()
