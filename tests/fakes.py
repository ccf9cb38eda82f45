"""A scriptable fake upstream: a stdlib HTTP server on 127.0.0.1, port 0, that answers with whatever the
test scripts (JSON, SSE bytes in chunks with delays, raw faults) and records every request it receives."""

from __future__ import annotations

import json
from contextlib import contextmanager
import select
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from http.client import HTTPConnection
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable
from urllib.parse import parse_qs, urlsplit


@dataclass
class Reply:
    status: int = 200
    json: object = None
    body: bytes | None = None
    headers: dict = field(default_factory=dict)
    # streaming: each item is bytes, or a float meaning "sleep this many seconds"
    chunks: list | None = None
    content_type: str | None = None
    chunked: bool = True  # False: a body without chunked encoding that ends when the connection closes
    delay: float = 0.0  # before the status line
    # faults: "reset" (RST before answering), "hang" (accept, never answer), "close" (close without answer),
    # "truncate" (end a chunked body without its terminating chunk)
    fault: str | None = None


@dataclass
class Recorded:
    method: str
    path: str
    query: dict
    headers: dict
    body: bytes
    at: float

    @property
    def json(self):
        return json.loads(self.body) if self.body else None


def sse(*events, done: bool = True, sep: bytes = b"\n") -> list[bytes]:
    """SSE byte chunks: dicts become ``data: <json>``; bytes pass as they are."""
    out = []
    for ev in events:
        if isinstance(ev, (bytes, float, int)) and not isinstance(ev, bool):
            out.append(ev if isinstance(ev, bytes) else float(ev))
        else:
            out.append(b"data: " + json.dumps(ev, separators=(",", ":")).encode() + sep + sep)  # as OpenAI sends it
    if done:
        out.append(b"data: [DONE]" + sep + sep)
    return out


class FakeUpstream:
    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.replies: list[Reply] = []
        self.handler: Callable[[Recorded], Reply] | None = None
        self.default = Reply(status=500, json={"error": {"message": "fake upstream: nothing scripted"}})
        self.disconnects = 0  # times a client went away while we were still writing
        self.finished_streams = 0
        self.connections = 0  # TCP connections accepted (keep-alive reuse shows as fewer than requests)
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def add(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _next(self, rec: Recorded) -> Reply:
        with self._lock:
            self.requests.append(rec)
            if self.handler is not None:
                return self.handler(rec)
            if self.replies:
                return self.replies.pop(0)
            return self.default

    def _handler_class(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                # headers and body go out as separate writes: without this, Nagle + delayed ACK add 40 ms
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                with fake._lock:
                    fake.connections += 1

            def log_message(self, *args):  # keep test output clean
                pass

            def _serve(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                rec = Recorded(self.command, parts.path, parse_qs(parts.query),
                               {k.lower(): v for k, v in self.headers.items()}, body, time.monotonic())
                reply = fake._next(rec)
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.fault == "reset":
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()
                    self.close_connection = True
                    return
                if reply.fault == "close":
                    self.close_connection = True
                    return
                if reply.fault == "hang":
                    time.sleep(60)
                    self.close_connection = True
                    return
                try:
                    self._reply(reply)
                except (BrokenPipeError, ConnectionResetError):
                    with fake._lock:
                        fake.disconnects += 1
                    self.close_connection = True

            do_POST = do_GET = _serve

            def _reply(self, reply: Reply):
                self.send_response(reply.status)
                if reply.chunks is not None and not reply.chunked:
                    self.send_header("Content-Type", reply.content_type or "text/event-stream")
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.flush()
                    for item in reply.chunks:
                        if isinstance(item, float):
                            time.sleep(item)
                        elif item:
                            self.wfile.write(item)
                            self.wfile.flush()
                    self.close_connection = True
                    with fake._lock:
                        fake.finished_streams += 1
                    return
                if reply.chunks is not None:
                    self.send_header("Content-Type", reply.content_type or "text/event-stream")
                    self.send_header("Transfer-Encoding", "chunked")
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.flush()
                    for item in reply.chunks:
                        if isinstance(item, float):
                            time.sleep(item)
                            continue
                        if not item:
                            continue
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(item), item))
                        self.wfile.flush()
                    if reply.fault == "truncate":
                        self.close_connection = True
                        return
                    self.wfile.write(b"0\r\n\r\n")
                    self.wfile.flush()
                    with fake._lock:
                        fake.finished_streams += 1
                    return
                if reply.json is not None:
                    data = json.dumps(reply.json).encode()
                    ctype = "application/json"
                else:
                    data = reply.body or b""
                    ctype = reply.content_type or "application/json"
                self.send_header("Content-Type", reply.content_type or ctype)
                self.send_header("Content-Length", str(len(data)))
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)
                self.wfile.flush()

        return Handler


def chat_completion(content: str = "Hello!", *, model: str = "gpt-4o-mini", finish_reason: str = "stop",
                    usage: dict | None = None, tool_calls: list | None = None) -> dict:
    """An OpenAI chat.completion body as api.openai.com sends it (nulls included)."""
    message = {"role": "assistant", "content": content, "refusal": None, "annotations": []}
    if tool_calls:
        message["tool_calls"] = tool_calls
        message["content"] = None
    return {
        "id": "chatcmpl-abc123",
        "object": "chat.completion",
        "created": 1730000000,
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}],
        "usage": usage or {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12,
                           "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                           "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                                         "accepted_prediction_tokens": 0,
                                                         "rejected_prediction_tokens": 0}},
        "service_tier": "default",
        "system_fingerprint": "fp_test",
    }


def openai_chunks(*texts: str, model: str = "gpt-4o-mini", finish_reason: str = "stop", usage: bool = True) -> list[dict]:
    """OpenAI streaming chunks for the given text pieces, as the API sends them with include_usage."""
    base = {"id": "chatcmpl-str1", "object": "chat.completion.chunk", "created": 1730000000, "model": model,
            "system_fingerprint": "fp_test"}
    out = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "", "refusal": None},
                                 "logprobs": None, "finish_reason": None}], "usage": None}]
    for t in texts:
        out.append({**base, "choices": [{"index": 0, "delta": {"content": t}, "logprobs": None,
                                         "finish_reason": None}], "usage": None})
    out.append({**base, "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": finish_reason}],
                "usage": None})
    if usage:
        out.append({**base, "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": len(texts),
                                                     "total_tokens": 9 + len(texts)}})
    return out


def openai_embeddings(vectors: list) -> dict:
    """An OpenAI embeddings answer (float vectors in input order, 4 prompt tokens)."""
    return {"object": "list", "model": "text-embedding-3-small",
            "data": [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)],
            "usage": {"prompt_tokens": 4, "total_tokens": 4}}


@contextmanager
def fake_upstreams(*names: str):
    """One FakeUpstream per name (a gateway with several providers), all closed at the end."""
    fakes = {name: FakeUpstream() for name in names}
    try:
        yield fakes
    finally:
        for fake in fakes.values():
            fake.close()


def openai_text_then_tool_call() -> list[dict]:
    """OpenAI streaming chunks of a short text, then one tool call (get_weather for Rome) in two argument
    pieces, finish reason tool_calls and the usage (20 in, 8 out)."""
    base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o"}
    return [
        {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Checking."}}]},
        {**base, "choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\""}}]}}]},
        {**base, "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": ":\"Rome\"}"}}]}}]},
        {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}],
         "usage": {"prompt_tokens": 20, "completion_tokens": 8, "total_tokens": 28}},
    ]


class ForwardProxy:
    """A forward proxy on loopback: absolute-URI requests (plain HTTP) and CONNECT tunnels (HTTPS), recording
    each request line in ``seen`` and its Proxy-Authorization header (or None) in ``auth``."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.auth: list[str | None] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _forward(self):
                proxy.seen.append(f"{self.command} {self.path}")
                proxy.auth.append(self.headers.get("Proxy-Authorization"))
                target = urlsplit(self.path)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("proxy-connection", "connection", "proxy-authorization")}
                upstream = HTTPConnection(target.hostname, target.port, timeout=10)
                upstream.request(self.command, target.path + (f"?{target.query}" if target.query else ""), body, headers)
                answer = upstream.getresponse()
                data = answer.read()
                upstream.close()
                self.send_response(answer.status)
                for k, v in answer.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _forward

            def do_CONNECT(self):
                proxy.seen.append(f"CONNECT {self.path}")
                proxy.auth.append(self.headers.get("Proxy-Authorization"))
                host, _, port = self.path.rpartition(":")
                far = socket.create_connection((host, int(port)), timeout=10)
                try:
                    self.send_response(200, "Connection established")
                    self.end_headers()
                    self.wfile.flush()
                    pair = {self.connection: far, far: self.connection}
                    while True:
                        ready, _, _ = select.select(list(pair), [], [], 10)
                        chunks = [(sock, sock.recv(65536)) for sock in ready]
                        if not ready or any(not data for _, data in chunks):
                            break
                        for sock, data in chunks:
                            pair[sock].sendall(data)
                finally:
                    far.close()
                self.close_connection = True

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
