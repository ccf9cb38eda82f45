"""The benchmark: the gateway against a bare pass-through, both in front of the same fast mock upstream.

    python bench/run.py            # full run, about 5 minutes
    python bench/run.py --quick    # about 1 minute
    python bench/run.py --smoke    # a few seconds: proves the benchmark still runs (no meaningful numbers)

It starts the mock (``mock_upstream.py``), the baseline (``baseline.py``) and the gateway, both under
gunicorn gthread with the same workers and threads, pins the load generator and the mock to one CPU and
the servers to another when the machine has two, measures the mock's capacity first, then runs rounds in
which the gateway and the baseline alternate. It prints one table of medians over the rounds, with the
gateway/baseline ratio and PASS/FAIL against the performance targets (the README's Performance section), and
stops every process it started.

Latency is "added": per round, the p50/p99 of the server minus the p50/p99 of the mock measured directly, in
turns with it (paired_round). CPU comes from /proc/<pid>/stat of the worker processes (utime + stime) before and after a batch.
"CPU per chunk" is marginal: the extra CPU of a 200-chunk stream over a 20-chunk one, divided by 180, so the
per-request cost does not hide in it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import loadgen  # noqa: E402
from procs import (Procs, children, client_sockets, cpu_seconds, free_port, peak_rss_mib,  # noqa: E402
                   wait_http)

MODEL = "openai/gpt-4o-mini"
MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Hello! Say hi back in one short sentence."},
]

MODES = {
    # rounds, seconds per load run, TTFT streams, CPU streams short/long, warm-up seconds
    "full": dict(rounds=6, seconds=3.0, ttft_streams=30, cpu_short=200, cpu_long=40, warmup=1.5),
    "quick": dict(rounds=2, seconds=1.0, ttft_streams=15, cpu_short=80, cpu_long=16, warmup=0.7),
    "smoke": dict(rounds=1, seconds=0.3, ttft_streams=3, cpu_short=4, cpu_long=2, warmup=0.2),
}
SHORT, LONG = 20, 200  # content chunks per stream for the CPU runs
STREAM_CONCURRENCY = 8

TARGETS = {
    # row key: (label, target text, check(gw, bl, ratio) -> bool)
    "added_p50": ("added latency p50 @c1 (ms)", "ratio <= 1.0", lambda g, b, r: r <= 1.0),
    "added_p99": ("added latency p99 @c1 (ms)", "", None),
    "rps_c1": ("requests/s @c1", "", None),
    "rps_c16": ("requests/s @c16", "ratio >= 1.0", lambda g, b, r: r >= 1.0),
    "rps_c64": ("requests/s @c64", "", None),
    "cpu_req": ("CPU per request (us)", "", None),
    "ttft_added": ("stream first-token added p50 (ms)", "ratio <= 1.0", lambda g, b, r: r <= 1.0),
    "cpu_stream": (f"CPU per stream, {SHORT} chunks (ms)", "", None),
    # the 65 us target was set on a machine where the bare relay's 20-event stream costs 2.7 ms of CPU, and
    # the other targets are ratios to the same run's baseline: the limit is scaled by this run's baseline
    "cpu_chunk": ("CPU per chunk, marginal (us)", "<= 65 us at the reference", None),
    "rss": ("peak RSS per worker (MiB)", "<= 50 MiB", lambda g, b, r: g <= 50.0),
    "import": ("import + app build (ms)", "< 100 ms", lambda g, b, r: g < 100.0),
}


def body(*, stream: bool, chunks: int = SHORT, gap_ms: float = 1.0) -> bytes:
    d = {"model": MODEL, "messages": MESSAGES, "temperature": 0.7, "max_tokens": 64}
    if stream:
        d.update(stream=True, stream_options={"include_usage": True},
                 metadata={"bench_chunks": str(chunks), "bench_gap_ms": str(gap_ms)})
    return json.dumps(d).encode()


class Server:
    """One gunicorn gthread server (gateway or baseline) and what we measure of it."""

    def __init__(self, name: str, app: str, env: dict, port: int, conf: str | None = None) -> None:
        self.name, self.app, self.env, self.port, self.conf = name, app, env, port, conf
        self.proc = None
        self.workers: list[int] = []

    def start(self, procs: Procs, *, workers: int, threads: int, cpu: int | None) -> None:
        # command-line settings override the config file's, so both servers run with the same ones;
        # no worker recycling during a run (it would reset the CPU and RSS counters we read)
        cmd = [sys.executable, "-m", "gunicorn", "-k", "gthread", "-w", str(workers), "--threads", str(threads),
               "-b", f"127.0.0.1:{self.port}", "--keep-alive", "5", "--timeout", "60", "--log-level", "warning",
               "--max-requests", "0", self.app]
        if self.conf:
            cmd[3:3] = ["-c", self.conf]
        if os.path.isdir("/dev/shm"):
            cmd[-1:-1] = ["--worker-tmp-dir", "/dev/shm"]
        if _gunicorn_has("--no-control-socket"):
            cmd[-1:-1] = ["--no-control-socket"]  # gunicorn >= 27: two masters would race for ~/.gunicorn
        self.proc = procs.start(cmd, env=self.env, cpu=cpu, cwd=ROOT)

    def wait_workers(self, n: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}")
            self.workers = children(self.proc.pid)
            if len(self.workers) >= n:
                return
            time.sleep(0.05)
        raise RuntimeError(f"{self.name}: {n} workers did not start")

    def cpu(self) -> float:
        return cpu_seconds(self.workers)


def _gunicorn_has(flag: str) -> bool:
    from gunicorn.config import KNOWN_SETTINGS

    return any(flag in (getattr(k, "cli", None) or ()) for k in KNOWN_SETTINGS)


def median(xs):
    xs = [x for x in xs if x is not None and not (isinstance(x, float) and math.isnan(x))]
    return statistics.median(xs) if xs else float("nan")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def import_times(cases: dict[str, tuple[dict, str]], runs: int) -> dict[str, float]:
    """For each case ``name: (env, code)``, the fastest wall time of ``python -c code`` minus that of a bare
    interpreter, in ms. Runs are interleaved and the fastest kept: the run least disturbed by whatever else
    the machine does. Bytecode caches are warmed first, as an installed package has them."""

    def timed(env: dict, code: str) -> float:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], env=env, check=True, cwd=ROOT)
        return time.perf_counter() - t0

    for env, code in cases.values():
        timed(env, code)
    bare_env = next(iter(cases.values()))[0]
    bare = math.inf
    best = dict.fromkeys(cases, math.inf)
    for _ in range(runs):
        bare = min(bare, timed(bare_env, "pass"))
        for name, (env, code) in cases.items():
            best[name] = min(best[name], timed(env, code))
    return {name: (t - bare) * 1000.0 for name, t in best.items()}


def import_breakdown(env: dict, code: str, top: int = 8) -> list[tuple[int, str]]:
    """What the package pulls in from outside itself: (cumulative us, "module (via importer)"), largest first."""
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", code], env=env, capture_output=True,
                         text=True, cwd=ROOT)
    rows = []  # (depth, name, cumulative us), in the order printed: children before their parent
    for line in out.stderr.splitlines():
        parts = line.split("|")  # "import time: <self us> | <cumulative us> | <indented module name>"
        if len(parts) != 3 or not parts[1].strip().isdigit():
            continue
        name = parts[2].rstrip()
        rows.append(((len(name) - len(name.lstrip(" "))) // 2, name.strip(), int(parts[1])))
    found = []
    for i, (depth, name, cum) in enumerate(rows):
        parent = next((n for d, n, _ in rows[i + 1:] if d == depth - 1), None)
        if parent and parent.startswith("bifrost_wsgi") and not name.startswith("bifrost_wsgi"):
            found.append((cum, f"{name} (via {parent})"))
    found.sort(reverse=True)
    return found[:top]


def measure_mock(mock_port: int, files: dict, bodies: dict, *, seconds: float, use_wrk: bool, cpu) -> dict:
    nonstream = loadgen.run_load(mock_port, bodies["plain"], files["plain"], connections=64, seconds=seconds,
                                 use_wrk=use_wrk, cpu=cpu)
    streams = loadgen.run_load(mock_port, bodies["burst"], files["burst"], connections=16, seconds=seconds,
                               use_wrk=use_wrk, cpu=cpu)
    return {"rps": nonstream.rps, "streams_per_s": streams.rps, "events_per_s": streams.rps * (SHORT + 4),
            "errors": nonstream.errors + streams.errors, "tool": nonstream.tool}


def run_round(server: Server, mock_port: int, files: dict, bodies: dict, m: dict, *, use_wrk: bool, cpu) -> dict:
    def load(port, key, c):
        return loadgen.run_load(port, bodies[key], files[key], connections=c, seconds=m["seconds"],
                                use_wrk=use_wrk, cpu=cpu)

    r: dict = {}
    cpu0 = server.cpu()
    c16 = load(server.port, "plain", 16)
    cpu1 = server.cpu()
    r["rps_c16"] = c16.rps
    r["cpu_req"] = (cpu1 - cpu0) / max(c16.requests, 1) * 1e6
    c64 = load(server.port, "plain", 64)
    r["rps_c64"] = c64.rps
    r["errors"] = c16.errors + c64.errors

    c0 = server.cpu()
    short = loadgen.run_streams(server.port, bodies["stream"], count=m["cpu_short"], concurrency=STREAM_CONCURRENCY)
    c1_ = server.cpu()
    long = loadgen.run_streams(server.port, bodies["long"], count=m["cpu_long"], concurrency=STREAM_CONCURRENCY)
    c2 = server.cpu()
    per_short = (c1_ - c0) / max(len(short.samples), 1)
    per_long = (c2 - c1_) / max(len(long.samples), 1)
    r["cpu_stream"] = per_short * 1000.0
    r["cpu_chunk"] = (per_long - per_short) / (LONG - SHORT) * 1e6
    r["errors"] += short.errors + long.errors
    return r


def paired_round(servers: list[Server], mock_port: int, files: dict, bodies: dict, m: dict, *, use_wrk: bool,
                 cpu, slices: int = 4) -> dict[str, dict]:
    """The concurrency-1 latencies, measured in turns: the mock directly, then each server, in short slices
    that rotate, so a slow spell of the machine (they last seconds here) hits every target alike. Added
    latency is a server's p50/p99 minus the mock's, each the median over its slices; time to first token
    likewise, over streams taken in turn (loadgen.paired_streams)."""
    ports = {"mock": mock_port, **{s.name: s.port for s in servers}}
    names = list(ports)
    loads: dict[str, list] = {name: [] for name in names}
    for i in range(slices):
        k = i % len(names)
        for name in names[k:] + names[:k]:
            loads[name].append(loadgen.run_load(ports[name], bodies["plain"], files["plain"], connections=1,
                                                seconds=m["seconds"] / 2, use_wrk=use_wrk, cpu=cpu))
    streams = loadgen.paired_streams(ports, bodies["stream"], count=m["ttft_streams"])
    mock_p50 = median([x.p50_ms for x in loads["mock"]])
    mock_p99 = median([x.p99_ms for x in loads["mock"]])
    mock_ttft = median([x.ttft for x in streams["mock"].samples])
    out = {}
    for s in servers:
        ls = loads[s.name]
        out[s.name] = {
            "added_p50": median([x.p50_ms for x in ls]) - mock_p50,
            "added_p99": median([x.p99_ms for x in ls]) - mock_p99,
            "rps_c1": sum(x.requests for x in ls) / max(sum(x.seconds for x in ls), 1e-9),
            "ttft_added": (median([x.ttft for x in streams[s.name].samples]) - mock_ttft) * 1000.0,
            "errors": sum(x.errors for x in ls) + streams[s.name].errors,
        }
    return out


def fmt(key: str, v: float) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    if key.startswith("rps") or key == "errors":
        return f"{v:,.0f}"
    if key in ("cpu_req", "cpu_chunk", "rss"):
        return f"{v:.1f}"
    if key == "import":
        return f"{v:.0f}"
    return f"{v:.2f}" if abs(v) < 100 else f"{v:.0f}"


REFERENCE_STREAM_MS = 2.7  # the bare relay's CPU for a 20-event stream on the machine the targets were set on


def chunk_limit(bl: dict) -> float:
    """The 65 us per-chunk target on this machine: scaled by how much CPU this run's bare relay needs for
    the same 20-event stream as on the reference machine (stricter on a faster machine)."""
    stream_ms = bl.get("cpu_stream", float("nan"))
    if math.isnan(stream_ms) or stream_ms <= 0:
        return 65.0
    return 65.0 * stream_ms / REFERENCE_STREAM_MS


def table(gw: dict, bl: dict, extra: dict) -> tuple[str, bool]:
    lines = ["| metric | gateway | baseline | gateway/baseline | target | result |",
             "|---|---:|---:|---:|---|---|"]
    ok = True
    for key, (label, target, check) in TARGETS.items():
        g, b = gw.get(key, float("nan")), bl.get(key, float("nan"))
        ratio = g / b if b and not math.isnan(b) and b > 0 and not math.isnan(g) else float("nan")
        result = ""
        if check is not None:
            passed = not math.isnan(g) and (not math.isnan(ratio) or "ratio" not in target) and check(g, b, ratio)
            result = "PASS" if passed else "FAIL"
            ok &= passed
        if key == "cpu_chunk":
            limit = chunk_limit(bl)
            target = f"<= 65 us at the reference (= {limit:.0f} us here)"
            passed = not math.isnan(g) and g <= limit
            result = "PASS" if passed else "FAIL"
            ok &= passed
        rtext = f"{ratio:.2f}" if not math.isnan(ratio) else "n/a"
        lines.append(f"| {label} | {fmt(key, g)} | {fmt(key, b)} | {rtext} | {target} | {result} |")
    net = extra["network_at_startup"]
    net_ok = not net
    ok &= net_ok
    lines.append(f"| network calls at start-up | {len(net)} | | | none | {'PASS' if net_ok else 'FAIL'} |")
    return "\n".join(lines), ok


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="gateway vs bare pass-through benchmark")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true", help="about a minute")
    g.add_argument("--smoke", action="store_true", help="a few seconds, numbers meaningless")
    p.add_argument("--rounds", type=int)
    p.add_argument("--seconds", type=float, help="length of each load run")
    p.add_argument("--workers", type=int, default=1, help="gunicorn workers for both servers (default 1)")
    p.add_argument("--threads", type=int, default=32, help="gunicorn threads per worker for both (default 32)")
    p.add_argument("--loadgen", choices=("auto", "wrk", "python"), default="auto")
    p.add_argument("--no-pin", action="store_true", help="do not pin processes to CPUs")
    p.add_argument("--gateway-app", default="bifrost_wsgi.wsgi:application",
                   help="WSGI target to measure as the gateway (a patched variant, to try a change)")
    p.add_argument("--gateway-conf", default=os.path.join(ROOT, "deploy", "gunicorn.conf.py"),
                   help="gunicorn config file for the gateway, as deployed (default: deploy/gunicorn.conf.py when "
                        "it exists; 'none' for plain gunicorn); the shared settings above override it")
    p.add_argument("--gateway-env", action="append", default=[], metavar="NAME=VALUE",
                   help="extra environment for the gateway, e.g. BIFROST_ACCESS_LOG=off (repeatable)")
    p.add_argument("--no-request-log", action="store_true",
                   help="run the gateway with client.enable_logging false (no request-log row per request), to "
                        "tell the request log's cost from the request path's")
    p.add_argument("--json", help="also write every round's numbers to this file")
    p.add_argument("--strict", action="store_true", help="exit 1 when a target fails")
    args = p.parse_args(argv)

    mode = dict(MODES["smoke" if args.smoke else "quick" if args.quick else "full"])
    if args.rounds:
        mode["rounds"] = args.rounds
    if args.seconds:
        mode["seconds"] = args.seconds
    use_wrk = args.loadgen == "wrk" or (args.loadgen == "auto" and loadgen.have_wrk())
    if use_wrk and not loadgen.have_wrk():
        p.error("wrk is not installed (apt-get install wrk)")

    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    pin = not args.no_pin and len(cpus) >= 2
    lg_cpu, srv_cpu = (cpus[0], cpus[1]) if pin else (None, None)
    if pin:
        os.sched_setaffinity(0, {lg_cpu})  # the Python load generator and stream clients run in this process
    started = time.monotonic()
    # a TERM (CI timeout, kill) unwinds through the finally below, which stops every process we started
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    load_before = os.getloadavg()
    log(f"bench: mode={'smoke' if args.smoke else 'quick' if args.quick else 'full'} rounds={mode['rounds']} "
        f"load={'wrk' if use_wrk else 'python'} workers={args.workers} threads={args.threads} "
        f"pinning={'load+mock on CPU %d, servers on CPU %d' % (lg_cpu, srv_cpu) if pin else 'off'}")

    procs = Procs()
    tmp = tempfile.TemporaryDirectory(prefix="bifrost-bench-")
    try:
        bodies = {"plain": body(stream=False), "stream": body(stream=True),
                  "long": body(stream=True, chunks=LONG), "burst": body(stream=True, gap_ms=0)}
        files = {}
        for k, v in bodies.items():
            files[k] = os.path.join(tmp.name, f"{k}.json")
            with open(files[k], "wb") as f:
                f.write(v)

        mock, mock_port = procs.start_mock(cpu=lg_cpu)

        cfg = {"providers": {"openai": {"keys": [{"value": "sk-bench", "models": []}],
                                        "network_config": {"base_url": f"http://127.0.0.1:{mock_port}"}}}}
        if args.no_request_log:
            cfg["client"] = {"enable_logging": False}
        cfg_path = os.path.join(tmp.name, "config.json")
        with open(cfg_path, "w") as f:
            json.dump(cfg, f)
        base_env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("BIFROST_", "PYTHONPATH", "PYTHONDONTWRITEBYTECODE"))}
        # bytecode caches in our temp dir: start-up and import times as an installed package has them,
        # without writing into the work tree
        base_env["PYTHONPYCACHEPREFIX"] = os.path.join(tmp.name, "pycache")
        gw_env = dict(base_env, PYTHONPATH=os.pathsep.join([ROOT, HERE]), BIFROST_CONFIG=cfg_path,
                      BIFROST_DATA_DIR=os.path.join(tmp.name, "data"))  # the stores, not in the checkout
        for name, _, value in (kv.partition("=") for kv in args.gateway_env):
            gw_env[name] = value + os.pathsep + gw_env[name] if name == "PYTHONPATH" else value
        bl_env = dict(base_env, PYTHONPATH=HERE, BASELINE_UPSTREAM=f"http://127.0.0.1:{mock_port}")

        m_cap = measure_mock(mock_port, files, bodies, seconds=min(2.0, mode["seconds"]), use_wrk=use_wrk, cpu=lg_cpu)
        log(f"mock capacity ({m_cap['tool']}, sharing its CPU with the load generator): "
            f"{m_cap['rps']:,.0f} req/s non-streaming, {m_cap['streams_per_s']:,.0f} streams/s "
            f"({m_cap['events_per_s']:,.0f} events/s)")

        mock_before = _mock_stats(mock_port)
        conf = args.gateway_conf if args.gateway_conf != "none" and os.path.exists(args.gateway_conf) else None
        gateway = Server("gateway", args.gateway_app, gw_env, free_port(), conf)
        baseline = Server("baseline", "baseline:application", bl_env, free_port())
        servers = [gateway, baseline]
        for s in servers:
            s.start(procs, workers=args.workers, threads=args.threads, cpu=srv_cpu)
        gateway.wait_workers(args.workers)
        wait_http(gateway.port, path="/health", proc=gateway.proc)
        time.sleep(0.3)  # every worker has loaded the app by now (import + config); none has served a chat
        network = client_sockets(gateway.workers, listen_port=gateway.port)
        early = _mock_stats(mock_port)["connections"] - mock_before["connections"] - 1  # -1: this query
        if early:
            network.append(f"the mock upstream saw {early} connection(s) from the gateway at start-up")
        baseline.wait_workers(args.workers)
        for s in servers:
            wait_http(s.port, path=loadgen.CHAT_PATH, method="POST", body=bodies["plain"], headers=loadgen.HEADERS,
                      proc=s.proc)
        for s in servers:  # warm every thread's session and the JIT-less caches alike
            loadgen.run_load(s.port, bodies["plain"], files["plain"], connections=64, seconds=mode["warmup"],
                             use_wrk=use_wrk, cpu=lg_cpu)
            loadgen.run_streams(s.port, bodies["stream"], count=STREAM_CONCURRENCY * 2,
                                concurrency=STREAM_CONCURRENCY)

        rounds: dict[str, list[dict]] = {"gateway": [], "baseline": []}
        for i in range(mode["rounds"]):
            order = servers if i % 2 == 0 else servers[::-1]
            paired = paired_round(order, mock_port, files, bodies, mode, use_wrk=use_wrk, cpu=lg_cpu)
            for s in order:
                r = run_round(s, mock_port, files, bodies, mode, use_wrk=use_wrk, cpu=lg_cpu)
                errors = r.pop("errors") + paired[s.name].pop("errors")
                r = {**paired[s.name], **r, "errors": errors}
                rounds[s.name].append(r)
                log(f"round {i + 1}/{mode['rounds']} {s.name:8s} " + " ".join(
                    f"{k}={fmt(k, v)}" for k, v in r.items()))

        results = {}
        for s in servers:
            rs = rounds[s.name]
            results[s.name] = {k: median([r[k] for r in rs]) for k in rs[0]}
            results[s.name]["rss"] = max(peak_rss_mib(pid) for pid in s.workers)
            results[s.name]["errors"] = sum(r["errors"] for r in rs)
        runs = 1 if args.smoke else 9
        imports = import_times({
            "gateway": (gw_env, "import bifrost_wsgi.wsgi"),
            "baseline": (bl_env, "import baseline"),
            "requests": (bl_env, "import requests"),
            "on_requests": (gw_env, "import requests; import bifrost_wsgi.wsgi"),
        }, runs)
        results["gateway"]["import"] = imports["gateway"]
        results["baseline"]["import"] = imports["baseline"]
        requests_import = imports["requests"]
        own_import = imports["on_requests"] - imports["requests"]
        breakdown = import_breakdown(gw_env, "import bifrost_wsgi.wsgi")
        peak = max(results[s.name][k] for s in servers for k in ("rps_c1", "rps_c16", "rps_c64"))

        text, ok = table(results["gateway"], results["baseline"], {"network_at_startup": network})
        print()
        print(f"bifrost-wsgi benchmark ({'smoke' if args.smoke else 'quick' if args.quick else 'full'}: "
              f"{mode['rounds']} interleaved rounds, medians; load generator: {'wrk' if use_wrk else 'python'}; "
              f"gunicorn gthread {args.workers} worker(s) x {args.threads} threads"
              f"{', gateway with ' + os.path.relpath(conf, ROOT) if conf else ''}; "
              f"{'servers pinned to CPU %d, load + mock to CPU %d' % (srv_cpu, lg_cpu) if pin else 'no CPU pinning'})")
        print()
        print(text)
        print()
        print(f"mock capacity: {m_cap['rps']:,.0f} req/s, {m_cap['events_per_s']:,.0f} stream events/s "
              f"= {m_cap['rps'] / peak if peak else float('nan'):.1f}x the fastest server's req/s"
              + (" (python load generator: its own limit, not the mock's)" if not use_wrk else ""))
        errors = {s.name: results[s.name]["errors"] for s in servers}
        print(f"errors during the runs: gateway {errors['gateway']}, baseline {errors['baseline']}")
        print(f"import of requests alone: {requests_import:.0f} ms, bifrost_wsgi on top of it: {own_import:.0f} ms; "
              f"load average before/after: "
              f"{' '.join(f'{x:.2f}' for x in load_before)} / {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        if args.gateway_app != "bifrost_wsgi.wsgi:application" or args.gateway_env:
            print(f"gateway variant: {args.gateway_app} {' '.join(args.gateway_env)}")
        print("imported from outside the package (cumulative ms): " +
              ", ".join(f"{name} {us / 1000:.1f}" for us, name in breakdown))
        for line in network:
            print(f"start-up network: {line}")
        print(f"overall: {'PASS' if ok else 'FAIL'} ({time.monotonic() - started:.0f} s)")
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"mode": mode, "mock": m_cap, "rounds": rounds, "results": results,
                           "network_at_startup": network, "import_breakdown": breakdown}, f, indent=1)
        if errors["gateway"] or errors["baseline"]:
            return 3
        return 1 if args.strict and not ok else 0
    finally:
        procs.stop_all()
        tmp.cleanup()


def _mock_stats(port: int) -> dict:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/__stats", headers={"Connection": "close"})
        return json.loads(conn.getresponse().read())
    finally:
        conn.close()


if __name__ == "__main__":
    sys.exit(main())
