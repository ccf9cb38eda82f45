"""The unified routes beyond chat next to chat, in-process: the WSGI app called directly (no gunicorn, no
client socket) against the mock upstream, and each route's added cost as a ratio to chat's (the issue's
target: within 1.1x of chat's).

    python bench/unified.py                 # 31 rounds of 120 requests / 25 streams per route
    python bench/unified.py --smoke         # seconds; proves it runs

Rows: chat and embeddings (openai, passed through; floats, and base64 as the openai SDK asks by default),
Responses translated through an OpenAI-compatible chat API (whole and streamed, 20 chunks), chat streamed
(20 chunks), and an /anthropic stream from the OpenAI upstream (the route Claude Code uses; its target: CPU per stream within 1.2x of chat's). Each row is
compared with the chat row of its kind (whole answer or stream).

What is measured, per row:

* the gateway's wall time and this process's CPU per request (the mock runs in its own process, so the CPU
  is the gateway's alone, its upstream HTTP client included; the request log's background writer is
  drained at the end of each block, inside the block's CPU window, so every block pays for its own rows);
* the upstream's time for the same call ("direct"): the upstream body the gateway sends, pre-encoded, sent
  on a bare keep-alive socket to the same mock endpoint, the whole answer read (stream included);
* **added** = gateway − direct: the gateway's own time on top of the upstream's (wall; its HTTP client is
  part of the gateway) and its CPU (less the bare socket's own few microseconds). The ratios compare each
  row's added figures with its reference row's, measured in the same round.

Rounds interleave the rows (the order rotates each round) and every figure is the median over rounds of
the per-round value, ratios included: the machine is shared and drifts, so only figures measured side by
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
REFERENCE = {"embeddings": "chat", "embeddings (base64)": "chat", "responses (translated)": "chat", "responses stream(20)": "chat stream(20)",
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


def block(one, n: int, settle) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) per call over ``n`` calls; ``settle`` runs inside the CPU
    window (the log writer's catching up belongs to the calls that queued the rows)."""
    w0, c0 = time.perf_counter(), time.process_time()
    for _ in range(n):
        one()
    wall = time.perf_counter() - w0
    settle()
    return wall / n, (time.process_time() - c0) / n


def settle_log(app):
    writer = app.governance.writer

    def settle():
        deadline = time.monotonic() + 5.0
        while not writer.idle() and time.monotonic() < deadline:
            time.sleep(0.002)
    return settle


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="unified routes next to chat, in-process")
    p.add_argument("--rounds", type=int, default=31)
    p.add_argument("--requests", type=int, default=120, help="whole answers per row per round")
    p.add_argument("--streams", type=int, default=25, help="streams per row per round")
    p.add_argument("--smoke", action="store_true")
    args = p.parse_args(argv)
    if args.smoke:
        args.rounds, args.requests, args.streams = 2, 10, 5
    procs = Procs()
    try:
        mock, port = procs.start_mock()
        base = f"http://127.0.0.1:{port}"
        upstream = {"keys": [{"value": "sk-bench", "models": []}], "network_config": {"base_url": base}}
        app = make_app({"providers": {"openai": upstream, "groq": upstream}})
        settle, no_settle = settle_log(app), lambda: None
        calls = {}
        for row, path, body, up_path, up_body in ROWS:
            stream = bool(body.get("stream"))
            n = args.streams if stream else args.requests
            calls[row] = (n, gateway_call(app, path, json.dumps(body).encode()),
                          direct_call(port, up_path, json.dumps(up_body).encode()))
        for n, gw, direct in calls.values():  # warm-up: connections, caches, the log store
            for _ in range(min(50, n)):
                gw()
                direct()
        settle()
        rounds: list[dict] = []
        names = list(calls)
        for r in range(args.rounds):
            got = {}
            for row in names[r % len(names):] + names[:r % len(names)]:
                n, gw, direct = calls[row]
                got[row] = block(gw, n, settle) + block(direct, n, no_settle)
            rounds.append(got)
        report(rounds, names)
        return 0
    finally:
        procs.stop_all()


def report(rounds: list[dict], names: list[str]) -> None:
    def med(f) -> float:
        return statistics.median(f(got) for got in rounds)

    print(f"{len(rounds)} interleaved rounds, medians per request; added wall = gateway wall - direct wall")
    print(f"{'route':24s} {'wall us':>8s} {'direct':>8s} {'added':>8s} {'CPU us':>8s}  ratio to reference: "
          "added wall, CPU")
    for row in names:
        ref = REFERENCE.get(row)
        ratio = ""
        if ref:
            wall = med(lambda g: (g[row][0] - g[row][2]) / (g[ref][0] - g[ref][2]))
            cpu = med(lambda g: (g[row][1] - g[row][3]) / (g[ref][1] - g[ref][3]))
            ratio = f"{wall:.2f}x, {cpu:.2f}x of {ref}"
        print(f"{row:24s} {med(lambda g: g[row][0]) * 1e6:8.0f} {med(lambda g: g[row][2]) * 1e6:8.0f} "
              f"{med(lambda g: g[row][0] - g[row][2]) * 1e6:8.0f} {med(lambda g: g[row][1] - g[row][3]) * 1e6:8.0f}"
              f"  {ratio}")


if __name__ == "__main__":
    sys.exit(main())
