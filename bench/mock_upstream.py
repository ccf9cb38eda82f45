"""A fast mock of OpenAI's ``POST /v1/chat/completions`` for the benchmark (stdlib asyncio, one process).

It must never be the bottleneck, so it parses as little as it can: the request line, the headers it needs,
and the JSON body once (for ``stream``, ``stream_options.include_usage`` and the bench knobs). Answers are
pre-encoded bytes, cached per shape.

* Non-streaming: one ``chat.completion`` with ``usage``, shaped like OpenAI's (nulls included, as OpenAI
  sends them, so the gateway's null stripping is exercised).
* Streaming (``"stream": true``): ``text/event-stream`` sent with ``Transfer-Encoding: chunked``, one HTTP
  chunk per SSE event: a role chunk (``content: ""``, as OpenAI sends first), N content chunks (the first
  one's text is ``Hello``: clients look for it to time the first token), a finish chunk, a usage chunk when
  ``stream_options.include_usage`` is set, then ``data: [DONE]``.
* Knobs travel in the request body's ``metadata`` (the gateway forwards it, the baseline too):
  ``bench_chunks`` (default ``--chunks``), ``bench_gap_ms`` (pause between events, default ``--gap-ms``).
* HTTP/1.1 keep-alive (HTTP/1.0 closes unless asked), pipelined requests answered in order, request bodies
  by Content-Length or chunked.
* ``POST /v1/embeddings``: one 256-dimension embedding (bench/unified.py).
* ``GET /__stats``: counters as JSON (connections accepted, chat requests, streams).

Run: ``python bench/mock_upstream.py --port 0`` prints ``PORT <n>`` once it listens.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys

MAX_HEAD = 64 * 1024


class Stats:
    connections = 0
    requests = 0
    streams = 0
    bad = 0

    @classmethod
    def as_json(cls) -> bytes:
        return json.dumps({"connections": cls.connections, "requests": cls.requests, "streams": cls.streams,
                           "bad": cls.bad}).encode()


def _compact(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


COMPLETION = _compact({
    "id": "chatcmpl-bench0001", "object": "chat.completion", "created": 1700000000,
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello! How can I help you today?",
                                         "refusal": None, "annotations": []},
                 "logprobs": None, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 19, "completion_tokens": 10, "total_tokens": 29,
              "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
              "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                            "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}},
    "service_tier": "default", "system_fingerprint": "fp_bench",
})


def _chunk(delta: dict, finish=None, *, choices=True, usage=None) -> dict:
    out = {"id": "chatcmpl-bench0001", "object": "chat.completion.chunk", "created": 1700000000,
           "model": "gpt-4o-mini-2024-07-18", "service_tier": "default", "system_fingerprint": "fp_bench",
           "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}] if choices else [],
           "usage": usage}
    return out


def _http_chunk(payload: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(payload), payload)


def stream_events(n: int, include_usage: bool) -> list[bytes]:
    """The SSE events of one streamed answer, each already framed as one HTTP chunk."""
    events = [_chunk({"role": "assistant", "content": "", "refusal": None})]
    for i in range(n):
        events.append(_chunk({"content": "Hello" if i == 0 else f" tok{i}"}))
    events.append(_chunk({}, "stop"))
    if include_usage:
        events.append(_chunk({}, choices=False, usage={
            "prompt_tokens": 19, "completion_tokens": n, "total_tokens": 19 + n,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}))
    framed = [_http_chunk(b"data: " + _compact(e) + b"\n\n") for e in events]
    framed.append(_http_chunk(b"data: [DONE]\n\n"))
    return framed


_STREAM_CACHE: dict[tuple[int, bool], list[bytes]] = {}


def cached_events(n: int, include_usage: bool) -> list[bytes]:
    key = (n, include_usage)
    got = _STREAM_CACHE.get(key)
    if got is None:
        got = _STREAM_CACHE[key] = stream_events(n, include_usage)
    return got


def _head(status: str, headers: list[tuple[str, str]], keep_alive: bool) -> bytes:
    lines = [f"HTTP/1.1 {status}"] + [f"{k}: {v}" for k, v in headers]
    if not keep_alive:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _fixed(status: str, ctype: str, body: bytes, keep_alive: bool) -> bytes:
    return _head(status, [("Content-Type", ctype), ("Content-Length", str(len(body)))], keep_alive) + body


# ``POST /v1/embeddings``: one 256-dimension vector per request, shaped like OpenAI's
EMBEDDING = _compact({"object": "list", "data": [{"object": "embedding", "index": 0,
                                                  "embedding": [round(i / 256 - 0.5, 6) for i in range(256)]}],
                      "model": "text-embedding-3-small", "usage": {"prompt_tokens": 8, "total_tokens": 8}})

_COMPLETION_REPLY = {ka: _fixed("200 OK", "application/json", COMPLETION, ka) for ka in (True, False)}
_EMBEDDING_REPLY = {ka: _fixed("200 OK", "application/json", EMBEDDING, ka) for ka in (True, False)}
_STREAM_HEAD = {ka: _head("200 OK", [("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache"),
                                     ("Transfer-Encoding", "chunked")], ka) for ka in (True, False)}
_END = b"0\r\n\r\n"


class Upstream(asyncio.Protocol):
    defaults = {"chunks": 20, "gap_ms": 0.0}

    def __init__(self) -> None:
        self.transport = None
        self.buf = bytearray()
        self.busy = False  # a paced stream is being written: later pipelined requests wait
        self.closed = False

    def connection_made(self, transport) -> None:
        self.transport = transport
        Stats.connections += 1

    def connection_lost(self, exc) -> None:
        self.closed = True

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.busy:
            self.process()

    def process(self) -> None:
        buf = self.buf
        while buf and not self.closed:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEAD:
                    self.fail(b"431 Request Header Fields Too Large")
                return
            lines = bytes(buf[:end]).split(b"\r\n")
            try:
                method, target, version = lines[0].split(b" ", 2)
            except ValueError:
                self.fail(b"400 Bad Request")
                return
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                headers[name.strip().lower()] = value.strip()
            start = end + 4
            if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
                parsed = _read_chunked(buf, start)
                if parsed is None:
                    return
                body, start = parsed
            else:
                n = int(headers.get(b"content-length", b"0") or 0)
                if len(buf) < start + n:
                    return
                body = bytes(buf[start:start + n])
                start += n
            del buf[:start]
            conn = headers.get(b"connection", b"").lower()
            keep_alive = conn != b"close" if version == b"HTTP/1.1" else conn == b"keep-alive"
            if self.handle(method, target, body, keep_alive):
                return  # a paced stream took over; it resumes processing when done

    def fail(self, status: bytes) -> None:
        Stats.bad += 1
        self.transport.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        self.transport.close()
        self.closed = True

    def handle(self, method: bytes, target: bytes, body: bytes, keep_alive: bool) -> bool:
        """Answer one request; True when a paced stream continues asynchronously."""
        t = self.transport
        if method == b"GET":
            if target.startswith(b"/__stats"):
                t.write(_fixed("200 OK", "application/json", Stats.as_json(), keep_alive))
            else:
                t.write(_fixed("200 OK", "application/json", b'{"status":"ok"}', keep_alive))
            return self.finish(keep_alive)
        Stats.requests += 1
        try:
            req = json.loads(body)
        except ValueError:
            Stats.bad += 1
            t.write(_fixed("400 Bad Request", "application/json",
                           b'{"error":{"message":"invalid JSON","type":"invalid_request_error"}}', keep_alive))
            return self.finish(keep_alive)
        if target.startswith(b"/v1/embeddings"):
            t.write(_EMBEDDING_REPLY[keep_alive])
            return self.finish(keep_alive)
        if not req.get("stream"):
            t.write(_COMPLETION_REPLY[keep_alive])
            return self.finish(keep_alive)
        Stats.streams += 1
        meta = req.get("metadata") or {}
        n = int(meta.get("bench_chunks", self.defaults["chunks"]))
        gap = float(meta.get("bench_gap_ms", self.defaults["gap_ms"])) / 1000.0
        usage = bool((req.get("stream_options") or {}).get("include_usage"))
        events = cached_events(n, usage)
        if gap <= 0:
            t.write(_STREAM_HEAD[keep_alive] + b"".join(events) + _END)
            return self.finish(keep_alive)
        self.busy = True
        t.write(_STREAM_HEAD[keep_alive] + events[0])
        loop = asyncio.get_running_loop()
        pending = iter(events[1:])

        def step() -> None:
            if self.closed:
                return
            nxt = next(pending, None)
            if nxt is not None:
                t.write(nxt)
                loop.call_later(gap, step)
                return
            t.write(_END)
            self.busy = False
            if not self.finish(keep_alive):
                self.process()

        loop.call_later(gap, step)
        return True

    def finish(self, keep_alive: bool) -> bool:
        if not keep_alive:
            self.transport.close()
            self.closed = True
        return False


def _read_chunked(buf: bytearray, pos: int):
    """(body, end position) of a chunked request body starting at ``pos``, or None while incomplete."""
    parts = []
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return None
        size = int(bytes(buf[pos:eol]).split(b";")[0], 16)
        pos = eol + 2
        if size == 0:
            trailer_end = buf.find(b"\r\n\r\n", pos - 2)
            if trailer_end < 0:
                return None
            return b"".join(parts), trailer_end + 4
        if len(buf) < pos + size + 2:
            return None
        parts.append(bytes(buf[pos:pos + size]))
        pos += size + 2


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Upstream, host, port, backlog=1024, reuse_address=True)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--chunks", type=int, default=20, help="content chunks per stream unless the body says")
    p.add_argument("--gap-ms", type=float, default=0.0, help="pause between stream events unless the body says")
    p.add_argument("--cpu", type=int, default=None, help="pin this process to one CPU")
    args = p.parse_args(argv)
    if args.cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    Upstream.defaults = {"chunks": args.chunks, "gap_ms": args.gap_ms}
    asyncio.run(serve(args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
