"""Load generators for the benchmark: ``wrk`` when installed, a Python one (threads + ``http.client``
keep-alive) otherwise, and a streaming client that times the first content token.

Every function returns a ``Load`` (or stream samples) so the driver does not care which one ran.
"""

from __future__ import annotations

import http.client
import json
import math
import os
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))
LUA = os.path.join(HERE, "wrk_post.lua")
CHAT_PATH = "/v1/chat/completions"
HEADERS = {"Content-Type": "application/json", "Authorization": "Bearer sk-client"}
#: the first content token of every mock stream; its arrival is "time to first token"
MARKER = b"Hello"


@dataclass
class Load:
    requests: int
    seconds: float
    errors: int = 0
    p50_ms: float = float("nan")
    p99_ms: float = float("nan")
    tool: str = ""

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = min(len(s) - 1, max(0, int(round(p / 100.0 * (len(s) - 1)))))
    return s[k]


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


def run_wrk(port: int, body_file: str, *, connections: int, seconds: float, cpu: int | None = None) -> Load:
    """One wrk run (whole seconds only: wrk takes no fractions)."""
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, math.ceil(seconds))}s", "--timeout", "10s",
           "-s", LUA, f"http://127.0.0.1:{port}{CHAT_PATH}"]
    env = dict(os.environ, BENCH_BODY_FILE=body_file)
    pre = (lambda: os.sched_setaffinity(0, {cpu})) if cpu is not None else None
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=seconds + 30, preexec_fn=pre)
    for line in out.stdout.splitlines():
        if line.startswith("WRK_JSON "):
            d = json.loads(line[9:])
            return Load(d["requests"], d["duration_us"] / 1e6, d["errors"] + d["status_errors"],
                        d["p50_us"] / 1000.0, d["p99_us"] / 1000.0, "wrk")
    raise RuntimeError(f"wrk gave no result (rc={out.returncode}): {out.stdout[-500:]} {out.stderr[-500:]}")


def run_python(port: int, body: bytes, *, connections: int, seconds: float) -> Load:
    """``connections`` threads, each with one keep-alive ``http.client`` connection, for ``seconds``."""
    latencies: list[list[float]] = [[] for _ in range(connections)]
    errors = [0] * connections
    start = threading.Barrier(connections + 1)
    window: dict[str, float] = {}

    def worker(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        lat, perf = latencies[i], time.perf_counter
        try:
            start.wait()
            end = window["end"]
            while True:
                t0 = perf()
                if t0 >= end:
                    break
                try:
                    conn.request("POST", CHAT_PATH, body, HEADERS)
                    resp = conn.getresponse()
                    resp.read()
                    if resp.status >= 400:
                        errors[i] += 1
                except (OSError, http.client.HTTPException):
                    errors[i] += 1
                    conn.close()
                    continue
                lat.append(perf() - t0)
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(connections)]
    for t in threads:
        t.start()
    window["end"] = time.perf_counter() + seconds
    t0 = time.perf_counter()
    start.wait()
    for t in threads:
        t.join(seconds + 30)
    elapsed = time.perf_counter() - t0
    flat = [x for lat in latencies for x in lat]
    return Load(len(flat), elapsed, sum(errors), percentile(flat, 50) * 1000, percentile(flat, 99) * 1000, "python")


def run_load(port: int, body: bytes, body_file: str, *, connections: int, seconds: float, use_wrk: bool,
             cpu: int | None = None) -> Load:
    if use_wrk:
        return run_wrk(port, body_file, connections=connections, seconds=seconds, cpu=cpu)
    return run_python(port, body, connections=connections, seconds=seconds)


@dataclass
class StreamSample:
    ttft: float  # seconds from sending to the first content token
    total: float
    status: int
    size: int


@dataclass
class StreamRun:
    samples: list[StreamSample] = field(default_factory=list)
    errors: int = 0


def stream_once(conn: http.client.HTTPConnection, body: bytes) -> StreamSample:
    perf = time.perf_counter
    t0 = perf()
    conn.request("POST", CHAT_PATH, body, HEADERS)
    resp = conn.getresponse()
    ttft = None
    tail = b""
    size = 0
    while True:
        data = resp.read1(65536)
        if not data:
            break
        size += len(data)
        if ttft is None:
            seen = tail + data
            if MARKER in seen:
                ttft = perf() - t0
            tail = seen[-len(MARKER):]
    total = perf() - t0
    return StreamSample(ttft if ttft is not None else float("nan"), total, resp.status, size)


def run_streams(port: int, body: bytes, *, count: int, concurrency: int) -> StreamRun:
    """``count`` streams over ``concurrency`` keep-alive connections."""
    out = StreamRun()
    lock = threading.Lock()
    left = [count]

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            while True:
                with lock:
                    if left[0] <= 0:
                        return
                    left[0] -= 1
                try:
                    s = stream_once(conn, body)
                except (OSError, http.client.HTTPException):
                    conn.close()
                    with lock:
                        out.errors += 1
                    continue
                with lock:
                    if s.status >= 400 or s.ttft != s.ttft:
                        out.errors += 1
                    else:
                        out.samples.append(s)
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(max(1, min(concurrency, count)))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    return out


def paired_streams(ports: dict[str, int], body: bytes, *, count: int) -> dict[str, StreamRun]:
    """``count`` sequential streams to each of ``ports`` (name: port), taken in turn (a, b, c, b, c, a, ...)
    over one keep-alive connection each, so that whatever the machine does meanwhile hits every target
    alike: the fair way to compare times to first token on a noisy machine."""
    names = list(ports)
    out = {name: StreamRun() for name in names}
    conns = {name: http.client.HTTPConnection("127.0.0.1", port, timeout=30) for name, port in ports.items()}
    try:
        for i in range(count):
            k = i % len(names)
            for name in names[k:] + names[:k]:
                try:
                    s = stream_once(conns[name], body)
                except (OSError, http.client.HTTPException):
                    conns[name].close()
                    out[name].errors += 1
                    continue
                if s.status >= 400 or s.ttft != s.ttft:
                    out[name].errors += 1
                else:
                    out[name].samples.append(s)
    finally:
        for conn in conns.values():
            conn.close()
    return out
