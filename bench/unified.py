"""The unified routes beyond chat next to chat, in-process: the WSGI app called directly (no gunicorn, no
client socket) against the mock upstream, wall time and CPU per request of each route, and each one's ratio
to chat's (the issue's target: within 1.1x of chat's cost).

    python bench/unified.py                 # 1000 requests, 200 streams per route
    python bench/unified.py --smoke         # seconds; proves it runs

Rows: chat and embeddings (openai, passed through), Responses translated through an OpenAI-compatible chat
API (whole and streamed, 20 chunks), chat streamed (20 chunks), and an /anthropic stream from the OpenAI
upstream (the route Claude Code uses; the issue's target: CPU per stream within 1.2x of chat's). The mock answers at once, so the times are
the gateway's own work plus one loopback round trip, the same for every row.
"""

from __future__ import annotations

import argparse
import json
import os
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

# (row, path, body)
ROWS = [
    ("chat", "/v1/chat/completions", {"model": "openai/gpt-4o-mini", "messages": HI, "max_tokens": 64}),
    ("embeddings", "/v1/embeddings", {"model": "openai/text-embedding-3-small", "input": "Say hello."}),
    ("responses (translated)", "/v1/responses", {"model": "groq/llama", "input": HI[0]["content"],
                                                 "max_output_tokens": 64}),
    ("chat stream(20)", "/v1/chat/completions", {"model": "openai/gpt-4o-mini", "messages": HI, "stream": True,
                                                 "metadata": STREAM_META}),
    ("responses stream(20)", "/v1/responses", {"model": "groq/llama", "input": HI[0]["content"], "stream": True,
                                               "metadata": STREAM_META}),
    # Claude Code's route on an OpenAI upstream: Anthropic Messages in, OpenAI chunks translated to events
    ("anthropic stream(20)", "/anthropic/v1/messages", {"model": "openai/gpt-4o-mini", "messages": HI,
                                                        "max_tokens": 64, "stream": True}),
]
REFERENCE = {"embeddings": "chat", "responses (translated)": "chat", "responses stream(20)": "chat stream(20)",
             "anthropic stream(20)": "chat stream(20)"}


def measure(app, path: str, payload: bytes, n: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) per request."""
    def one():
        env = environ_for(payload)
        env["PATH_INFO"] = path
        return call_env(app, env)

    for _ in range(min(50, n)):
        one()
    w0, c0 = time.perf_counter(), time.process_time()
    for _ in range(n):
        one()
    return (time.perf_counter() - w0) / n, (time.process_time() - c0) / n


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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="unified routes next to chat, in-process")
    p.add_argument("--requests", type=int, default=1000)
    p.add_argument("--streams", type=int, default=200)
    p.add_argument("--smoke", action="store_true")
    args = p.parse_args(argv)
    if args.smoke:
        args.requests, args.streams = 20, 10
    procs = Procs()
    try:
        mock, port = procs.start_mock()
        upstream = {"keys": [{"value": "sk-bench", "models": []}],
                    "network_config": {"base_url": f"http://127.0.0.1:{port}"}}
        app = make_app({"providers": {"openai": upstream, "groq": upstream}})
        got = {}
        for row, path, body in ROWS:
            n = args.streams if body.get("stream") else args.requests
            got[row] = measure(app, path, json.dumps(body).encode(), n)
        print(f"{'route':24s} {'wall/request':>13s} {'CPU/request':>12s}  ratio to")
        for row, (wall, cpu) in got.items():
            ref = REFERENCE.get(row)
            ratio = f"{cpu / got[ref][1]:.2f}x CPU of {ref}" if ref else ""
            print(f"{row:24s} {wall * 1e6:10.0f} us {cpu * 1e6:9.0f} us  {ratio}")
        return 0
    finally:
        procs.stop_all()


if __name__ == "__main__":
    sys.exit(main())
