"""The unified routes beyond chat next to chat, in-process: the WSGI app called directly (no gunicorn, no
client socket) against the mock upstream, and each route's added cost as a ratio to chat's (the issue's
target: within 1.1x of chat's).

    python bench/unified.py                 # 25 rounds of 120 requests / 24 streams per route
    python bench/unified.py --smoke         # seconds; proves it runs

Rows: chat and embeddings (openai, passed through; floats, and base64 as the openai SDK asks by default),
Responses translated through an OpenAI-compatible chat API (whole and streamed, 20 chunks), chat streamed
(20 chunks), and an /anthropic stream from the OpenAI upstream (the route Claude Code uses; its target: CPU
per stream within 1.2x of chat's). Each row is compared with the chat row of its kind (whole answer or
stream).

What is measured, per row:

* the gateway's wall time and the CPU of the thread that runs the request (``time.thread_time``: the
  request path's own work, its upstream HTTP client included; the mock runs in its own process). The
  background threads (the request log's writer, the watchdog) do the same work for every route and are
  left out, so they neither blur nor dilute the ratios; bench/governance.py measures the request log;
* the upstream's time for the same call ("direct"): the upstream body the gateway sends, pre-encoded, sent
  on a bare keep-alive socket to the same mock endpoint, the whole answer read (stream included);
* **added wall** = gateway wall − direct wall: the gateway's own time on top of the upstream's.

Each round goes through the rows in turns of a few calls each (10 whole answers or 2 streams, the gateway
then the direct call), the order rotating every turn, so that every row sees the same machine; the request
log's writer catches up between rounds. Figures are medians over rounds, and each ratio is the median of the
per-round ratios to the reference row: the machine is shared and drifts, so only figures measured side by
side are compared.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [ROOT, HERE]

from bifrost_wsgi import make_app  # noqa: E402
from procs import Procs  # noqa: E402
from profile_gateway import environ_for  # noqa: E402

HI = [{"role": "user", "content": "Say hello in one short sentence."}]
STREAM_META = {"bench_chunks": "20", "bench_gap_ms": "0"}
CHAT_UP = {"model": "gpt-4o-mini", "messages": HI, "max_tokens": 64}
STREAM_UP = {"model": "gpt-4o-mini", "messages": HI, "stream": True, "stream_options": {"include_usage": True},
             "metadata": STREAM_META}

# Responses are translated on an OpenAI-compatible row without the Responses API; a model with a price, as
# chat's has (the request's cost is part of the work, and an unpriced model skips it)
TRANSLATED = "groq/openai/gpt-oss-20b"

# (row, gateway path, client body, mock path, the upstream body the gateway sends there)
ROWS = [
    ("chat", "/v1/chat/completions", {"model": "openai/gpt-4o-mini", "messages": HI, "max_tokens": 64},
     "/v1/chat/completions", CHAT_UP),
    ("embeddings", "/v1/embeddings", {"model": "openai/text-embedding-3-small", "input": "Say hello."},
     "/v1/embeddings", {"model": "text-embedding-3-small", "input": ["Say hello."], "encoding_format": "float"}),
    # what the openai SDK asks for unless told otherwise
    ("embeddings (base64)", "/v1/embeddings", {"model": "openai/text-embedding-3-small", "input": "Say hello.",
                                               "encoding_format": "base64"},
     "/v1/embeddings", {"model": "text-embedding-3-small", "input": ["Say hello."], "encoding_format": "float"}),
    ("responses (translated)", "/v1/responses", {"model": TRANSLATED, "input": HI[0]["content"],
                                                 "max_output_tokens": 64},
     "/openai/v1/chat/completions", CHAT_UP),
    ("chat stream(20)", "/v1/chat/completions", {"model": "openai/gpt-4o-mini", "messages": HI, "stream": True,
                                                 "metadata": STREAM_META},
     "/v1/chat/completions", STREAM_UP),
    ("responses stream(20)", "/v1/responses", {"model": TRANSLATED, "input": HI[0]["content"], "stream": True,
                                               "metadata": STREAM_META},
     "/openai/v1/chat/completions", STREAM_UP),
    # Claude Code's route on an OpenAI upstream: Anthropic Messages in, OpenAI chunks translated to events
    ("anthropic stream(20)", "/anthropic/v1/messages", {"model": "openai/gpt-4o-mini", "messages": HI,
                                                        "max_tokens": 64, "stream": True},
     "/v1/chat/completions", STREAM_UP),
]
REFERENCE = {"embeddings": "chat", "embeddings (base64)": "chat", "responses (translated)": "chat",
             "responses stream(20)": "chat stream(20)",
             "anthropic stream(20)": "chat stream(20)"}


def call_env(app, env: dict) -> int:
    status = []
    it = app(env, lambda s, h, exc_info=None: status.append(s))
    n = 0
    try:
        for part in it:
            n += len(part)
    finally:
        if hasattr(it, "close"):
            it.close()
    if not status or not status[0].startswith("200"):
        raise RuntimeError(f"app answered {status}")
    return n


def gateway_call(app, path: str, payload: bytes):
    def one():
        env = environ_for(payload)
        env["PATH_INFO"] = path
        return call_env(app, env)
    return one


def direct_call(port: int, path: str, payload: bytes):
    """One keep-alive socket sending the pre-encoded request and reading the whole answer: the upstream's
    time with as little client work as there can be (a few microseconds of CPU)."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    request = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
               f"Authorization: Bearer sk-bench\r\nContent-Length: {len(payload)}\r\n\r\n").encode() + payload

    def one():
        sock.sendall(request)
        buf = b""
        while (head_end := buf.find(b"\r\n\r\n")) < 0:
            buf += sock.recv(65536)
        head = buf[:head_end].lower()
        if b"transfer-encoding: chunked" in head:
            while not buf.endswith(b"\r\n0\r\n\r\n"):
                buf += sock.recv(65536)
        else:
            length = int(head.split(b"content-length:")[1].split(b"\r\n")[0])
            while len(buf) < head_end + 4 + length:
                buf += sock.recv(65536)
        return len(buf)
    return one


def timed(one, n: int, clock) -> tuple[float, float]:
    """(wall seconds, ``clock`` seconds) over ``n`` calls."""
    w0, c0 = time.perf_counter(), clock()
    for _ in range(n):
        one()
    return time.perf_counter() - w0, clock() - c0


def settle_log(app):
    writer = app.governance.writer

    def settle():
        deadline = time.monotonic() + 5.0
        while not writer.idle() and time.monotonic() < deadline:
            time.sleep(0.002)
    return settle


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="unified routes next to chat, in-process")
    p.add_argument("--rounds", type=int, default=25)
    p.add_argument("--cycles", type=int, default=12, help="turns through the rows per round")
    p.add_argument("--requests", type=int, default=10, help="whole answers per row per turn")
    p.add_argument("--streams", type=int, default=2, help="streams per row per turn")
    p.add_argument("--smoke", action="store_true")
    args = p.parse_args(argv)
    if args.smoke:
        args.rounds, args.cycles = 2, 2
    procs = Procs()
    try:
        mock, port = procs.start_mock()
        base = f"http://127.0.0.1:{port}"
        upstream = {"keys": [{"value": "sk-bench", "models": []}], "network_config": {"base_url": base}}
        app = make_app({"providers": {"openai": upstream, "groq": upstream}})
        settle = settle_log(app)
        calls = {}
        for row, path, body, up_path, up_body in ROWS:
            stream = bool(body.get("stream"))
            n = args.streams if stream else args.requests
            calls[row] = (n, gateway_call(app, path, json.dumps(body).encode()),
                          direct_call(port, up_path, json.dumps(up_body).encode()))
        for _, gw, direct in calls.values():  # warm-up: connections, caches, the log store
            for _ in range(50):
                gw()
                direct()
        settle()
        rounds: list[dict] = []
        names = list(calls)
        for r in range(args.rounds):
            sums = {row: [0.0, 0.0, 0.0] for row in names}
            for turn in range(args.cycles):
                k = (r + turn) % len(names)
                for row in names[k:] + names[:k]:
                    n, gw, direct = calls[row]
                    wall, cpu = timed(gw, n, time.thread_time)
                    dwall, _ = timed(direct, n, time.thread_time)
                    acc = sums[row]
                    acc[0] += wall
                    acc[1] += cpu
                    acc[2] += dwall
            settle()  # the request log's writer catches up between rounds, not inside a measurement
            rounds.append({row: [x / (calls[row][0] * args.cycles) for x in acc] for row, acc in sums.items()})
        report(rounds, names)
        return 0
    finally:
        procs.stop_all()


def report(rounds: list[dict], names: list[str]) -> None:
    """Per row: the medians over rounds of wall, direct wall, added wall and CPU per request, and of the
    per-round ratios of added wall and CPU to the reference row's (index 0 wall, 1 CPU, 2 direct wall)."""
    def med(f) -> float:
        return statistics.median(f(got) for got in rounds)

    print(f"{len(rounds)} rounds, rows interleaved in turns; medians per request; added = wall - direct wall")
    print(f"{'route':24s} {'wall us':>8s} {'direct':>8s} {'added':>8s} {'CPU us':>8s}  ratio to reference: "
          "added wall, CPU")
    for row in names:
        ref = REFERENCE.get(row)
        ratio = ""
        if ref:
            wall = med(lambda g: (g[row][0] - g[row][2]) / (g[ref][0] - g[ref][2]))
            cpu = med(lambda g: g[row][1] / g[ref][1])
            ratio = f"{wall:.2f}x, {cpu:.2f}x of {ref}"
        print(f"{row:24s} {med(lambda g: g[row][0]) * 1e6:8.0f} {med(lambda g: g[row][2]) * 1e6:8.0f} "
              f"{med(lambda g: g[row][0] - g[row][2]) * 1e6:8.0f} {med(lambda g: g[row][1]) * 1e6:8.0f}  {ratio}")


if __name__ == "__main__":
    sys.exit(main())
