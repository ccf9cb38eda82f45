"""The JSON access log: one line per request, the fields an operator needs, no key and no prompt/completion."""

import json
import logging
import socket
import time

import pytest
import requests

from bifrost_wsgi.observe import accesslog
from bifrost_wsgi.routing.context import RequestContext
from tests.conftest import OPENAI_KEY, provider_config
from tests.fakes import Reply, chat_completion, openai_chunks, sse

VK = "sk-bf-accesslog-SECRET-9"
PROMPT = "PROMPT-TEXT-do-not-log"
ANSWER = "COMPLETION-TEXT-do-not-log"
SECRETS = (OPENAI_KEY, VK, PROMPT, ANSWER)


class Lines(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.records = []

    def emit(self, record):
        self.records.append(record.getMessage())

    def parsed(self):
        return [json.loads(m) for m in self.records]


@pytest.fixture
def lines():
    logger = logging.getLogger("bifrost_wsgi.access")
    handler, level = Lines(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


@pytest.fixture
def gw(upstream, serve):
    return serve({"providers": {"openai": provider_config(upstream.url, max_retries=1, retry_backoff_initial=1,
                                                          retry_backoff_max=1)},
                  "governance": {"virtual_keys": [{"id": "vk-ops", "name": "ops", "value": VK}]}})


def wait_for(handler, n, timeout=5.0):
    """Stream lines are written when the server closes the response, just after the client saw the end."""
    deadline = time.monotonic() + timeout
    while len(handler.records) < n and time.monotonic() < deadline:
        time.sleep(0.01)
    return handler.parsed()


def chat(gw, *, stream=False, headers=None):
    return requests.post(gw + "/v1/chat/completions", headers={"x-bf-vk": VK, **(headers or {})},
                         json={"model": "openai/gpt-4o-mini", "stream": stream,
                               "messages": [{"role": "user", "content": PROMPT}]})


def test_completion_line(gw, upstream, lines):
    upstream.add(Reply(json=chat_completion(ANSWER)))
    r = chat(gw, headers={"X-Request-ID": "req-acc-1"})
    assert r.status_code == 200
    [line] = wait_for(lines, 1)
    assert line.pop("time").endswith("Z")
    assert line.pop("latency_ms") > 0
    assert line.pop("pid") > 0
    assert line == {
        "request_id": "req-acc-1", "method": "POST", "route": "/v1/chat/completions", "status": 200,
        "client_ip": "127.0.0.1", "provider": "openai", "model": "gpt-4o-mini", "stream": False,
        "input_tokens": 9, "output_tokens": 3, "attempts": 1, "retries": 0, "fallback_index": 0,
        "client_disconnected": False, "virtual_key": "vk-ops",
    }


def test_stream_line_has_ttft_and_chunks(gw, upstream, lines):
    upstream.add(Reply(chunks=sse(*openai_chunks(ANSWER[:5], ANSWER[5:]))))
    r = chat(gw, stream=True)
    assert r.status_code == 200 and b"[DONE]" in r.content
    [line] = wait_for(lines, 1)
    assert line["stream"] is True
    assert line["status"] == 200
    assert 0 < line["ttft_ms"] <= line["latency_ms"]
    assert line["chunks"] >= 3
    assert (line["input_tokens"], line["output_tokens"]) == (9, 2)


def test_retry_and_failure_lines(gw, upstream, lines):
    upstream.add(Reply(status=503, json={"error": {"message": "busy"}}), Reply(status=503, json={"error": {"message": "busy"}}))
    r = chat(gw)
    assert r.status_code == 503
    [line] = wait_for(lines, 1)
    assert (line["status"], line["attempts"], line["retries"]) == (503, 2, 1)
    assert line["error_type"]


def test_refused_and_other_routes_are_logged_too(gw, lines):
    assert requests.post(gw + "/v1/chat/completions", json={}).status_code == 401
    assert requests.get(gw + "/health", headers={"X-Request-ID": "hc"}).status_code == 200
    assert requests.get(gw + "/nope").status_code == 404
    refused, health, missing = wait_for(lines, 3)
    assert (refused["status"], refused["error_type"], refused["route"]) == (401, "authentication_error",
                                                                            "/v1/chat/completions")
    assert "provider" not in refused
    assert (health["request_id"], health["method"], health["route"], health["status"]) == ("hc", "GET", "/health", 200)
    assert (missing["route"], missing["status"]) == ("/nope", 404)


def test_client_disconnect_line(gw, upstream, lines):
    slow = [part for event in sse(*openai_chunks(*(["tok"] * 200))) for part in (event, 0.02)]
    upstream.add(Reply(chunks=slow))
    body = json.dumps({"model": "openai/gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "hi"}]})
    port = int(gw.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nx-bf-vk: {VK}\r\nContent-Type: application/json\r\n"
                  f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n{body}".encode())
        got = b""
        while b"data:" not in got:
            got += s.recv(65536)
    [line] = wait_for(lines, 1, timeout=10)
    assert line["client_disconnected"] is True


def test_no_secret_and_no_text_in_any_line(gw, upstream, lines):
    upstream.add(Reply(json=chat_completion(ANSWER)), Reply(chunks=sse(*openai_chunks(ANSWER))),
                 Reply(status=400, json={"error": {"message": f"bad {PROMPT}", "type": "invalid_request_error"}}))
    chat(gw)
    chat(gw, stream=True)
    chat(gw)
    requests.post(gw + "/v1/chat/completions", headers={"Authorization": f"Bearer {VK}x"}, json={})
    requests.get(gw + "/v1/models", headers={"x-api-key": VK})
    wait_for(lines, 5)
    text = "\n".join(lines.records)
    assert len(lines.records) == 5
    for secret in SECRETS:
        assert secret not in text


def _ctx(**fields):
    ctx = RequestContext(request_id="r1", deadline=0.0, route="/v1/chat/completions", method="POST",
                         client_ip="10.1.2.3")
    ctx.started = 100.0
    for k, v in fields.items():
        setattr(ctx, k, v)
    return ctx


@pytest.mark.parametrize("fields,expected", [
    # a route outside chat: no provider fields at all
    ({"route": "/health", "method": "GET", "status": 200, "http_status": 200},
     {"route": "/health", "method": "GET", "status": 200}),
    # a stream that failed after its first byte: the outcome, and the 200 the status line said
    ({"provider": "openai", "model": "m", "stream": True, "status": 502, "http_status": 200,
      "error_type": "upstream_protocol_error", "chunks": 4, "ttft": 0.25, "attempts": 1},
     {"status": 502, "http_status": 200, "error_type": "upstream_protocol_error", "chunks": 4, "ttft_ms": 250.0,
      "stream": True, "attempts": 1, "client_disconnected": False}),
    # answered by the second fallback after a retry, usage without completion tokens
    ({"provider": "groq", "model": "llama", "status": 200, "fallback_index": 2, "retries": 1, "attempts": 3,
      "usage": {"prompt_tokens": 5}},
     {"provider": "groq", "fallback_index": 2, "retries": 1, "input_tokens": 5, "stream": False}),
    ({"provider": "openai", "model": "m", "stream": True, "status": 200, "client_disconnected": True, "chunks": 0},
     {"client_disconnected": True, "chunks": 0}),
])
def test_record_fields(fields, expected):
    rec = accesslog.record(_ctx(**fields), now=100.5)
    assert rec["latency_ms"] == 500.0
    for k, v in expected.items():
        assert rec[k] == v, k
    if "provider" not in fields:
        assert not {"provider", "model", "stream", "retries"} & rec.keys()
    assert "output_tokens" not in rec or rec["output_tokens"] is not None
    assert None not in rec.values() and "" not in rec.values()


@pytest.mark.parametrize("environ,trusted,ip", [
    ({"REMOTE_ADDR": "127.0.0.1", "HTTP_X_REAL_IP": "203.0.113.7"}, None, "203.0.113.7"),
    ({"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "1.1.1.1, 203.0.113.7"}, None, "203.0.113.7"),
    ({"REMOTE_ADDR": "127.0.0.1"}, None, "127.0.0.1"),
    # a peer that is not our proxy cannot claim another address
    ({"REMOTE_ADDR": "198.51.100.2", "HTTP_X_REAL_IP": "203.0.113.7"}, None, "198.51.100.2"),
    ({"REMOTE_ADDR": "10.0.0.5", "HTTP_X_REAL_IP": "203.0.113.7"}, "10.0.0.5", "203.0.113.7"),
    ({"REMOTE_ADDR": "10.0.0.5", "HTTP_X_REAL_IP": "203.0.113.7"}, "*", "203.0.113.7"),
    # unix socket behind nginx
    ({"REMOTE_ADDR": "", "HTTP_X_REAL_IP": "203.0.113.7"}, None, "203.0.113.7"),
])
def test_client_ip(monkeypatch, environ, trusted, ip):
    env = {} if trusted is None else {"FORWARDED_ALLOW_IPS": trusted}
    monkeypatch.setattr(accesslog, "TRUSTED_PROXIES", accesslog._trusted_proxies(env))
    assert accesslog.client_ip(environ) == ip


def test_line_written_straight_through_our_handler_is_what_logging_would_write(monkeypatch):
    import io

    from bifrost_wsgi.observe import logsetup

    logger = logging.getLogger("bifrost_wsgi.access")
    saved = logger.handlers[:], logger.level, logger.propagate
    try:
        logger.handlers[:] = []
        logsetup._configure_access()
        [handler] = logger.handlers
        handler.stream = io.StringIO()
        ctx = _ctx(provider="openai", model='m"\u00e9', status=200, attempts=1)
        accesslog.AccessLog().request_finished(ctx)
        direct = handler.stream.getvalue()
        assert accesslog._own_handler() is handler
        # with another handler too, the line goes through logging: same text
        extra = Lines()
        logger.addHandler(extra)
        assert accesslog._own_handler() is None
        accesslog.AccessLog().request_finished(ctx)
        via_logging = handler.stream.getvalue()[len(direct):]
        def fields(line):
            return {k: v for k, v in json.loads(line).items() if k not in ("time", "latency_ms")}

        assert direct.endswith("\n") and via_logging.endswith("\n")
        assert fields(direct) == fields(via_logging) == fields(extra.records[0])
    finally:
        logger.handlers[:], logger.level, logger.propagate = saved
