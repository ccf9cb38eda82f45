"""Profile the gateway's hot path in-process: the WSGI app called directly (no gunicorn, no client socket)
against the mock upstream, for non-streaming and streaming requests, next to the baseline app called the
same way.

    python bench/profile_gateway.py                  # timings + cProfile top entries
    python bench/profile_gateway.py --requests 3000 --top 30 --sort tottime

Prints per-request wall time of the app call for the gateway and the baseline (the difference is what the
gateway's own code costs), then the cProfile top entries for each case.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [ROOT, HERE]

from procs import Procs  # noqa: E402
from run import body  # noqa: E402


def environ_for(payload: bytes) -> dict:
    return {
        "REQUEST_METHOD": "POST", "PATH_INFO": "/v1/chat/completions", "QUERY_STRING": "",
        "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(payload)),
        "HTTP_AUTHORIZATION": "Bearer sk-client", "HTTP_HOST": "127.0.0.1", "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.version": (1, 0), "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(payload), "wsgi.errors": sys.stderr, "wsgi.multithread": True,
        "wsgi.multiprocess": False, "wsgi.run_once": False,
    }


def call(app, payload: bytes) -> int:
    status = []

    def start_response(s, headers, exc_info=None):
        status.append(s)

    it = app(environ_for(payload), start_response)
    n = 0
    try:
        for part in it:
            n += len(part)
    finally:
        close = getattr(it, "close", None)
        if close is not None:
            close()
    if not status or not status[0].startswith("200"):
        raise RuntimeError(f"app answered {status}")
    return n


def timed(app, payload: bytes, n: int) -> float:
    for _ in range(min(50, n)):
        call(app, payload)
    t0 = time.perf_counter()
    for _ in range(n):
        call(app, payload)
    return (time.perf_counter() - t0) / n


def profile(app, payload: bytes, n: int, *, sort: str, top: int) -> str:
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(n):
        call(app, payload)
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).strip_dirs().sort_stats(sort).print_stats(top)
    return out.getvalue()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="profile the gateway hot path in-process")
    p.add_argument("--requests", type=int, default=2000, help="non-streaming requests per measurement")
    p.add_argument("--streams", type=int, default=300, help="streams per measurement")
    p.add_argument("--chunks", type=int, default=20)
    p.add_argument("--gap-ms", type=float, default=0.0,
                   help="gap between stream events; > 0 profiles the one-event-per-read path real streams take")
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--sort", default="tottime", choices=("tottime", "cumulative"))
    p.add_argument("--no-pin", action="store_true")
    args = p.parse_args(argv)

    cpus = sorted(os.sched_getaffinity(0))
    pin = not args.no_pin and len(cpus) >= 2
    procs = Procs()
    try:
        mock, port = procs.start_mock(cpu=cpus[0] if pin else None)
        if pin:
            os.sched_setaffinity(0, {cpus[1]})
        os.environ["BASELINE_UPSTREAM"] = f"http://127.0.0.1:{port}"
        import baseline
        from bifrost_wsgi import make_app

        gateway = make_app({"providers": {"openai": {"keys": [{"value": "sk-bench", "models": []}],
                                                     "network_config": {"base_url": f"http://127.0.0.1:{port}"}}}})
        plain = body(stream=False)
        # gap 0 (default): the whole stream arrives at once, so the wall times are CPU only, not waiting
        stream = body(stream=True, chunks=args.chunks, gap_ms=args.gap_ms)
        long = body(stream=True, chunks=args.chunks * 10, gap_ms=args.gap_ms)
        apps = {"gateway": gateway, "baseline": baseline.application}

        print(f"in-process app call, wall time per request (mock on CPU {cpus[0] if pin else '-'}, "
              f"app on CPU {cpus[1] if pin else '-'}):")
        per = {}
        for name, app in apps.items():
            a = timed(app, plain, args.requests)
            s = timed(app, stream, args.streams)
            lg = timed(app, long, max(args.streams // 5, 10))
            per[name] = (a, s, lg)
            chunk = (lg - s) / (args.chunks * 9)
            print(f"  {name:8s} non-streaming {a * 1e6:7.0f} us   stream({args.chunks}) {s * 1e6:7.0f} us   "
                  f"stream({args.chunks * 10}) {lg * 1e6:7.0f} us   marginal per chunk {chunk * 1e6:5.1f} us")
        g, b = per["gateway"], per["baseline"]
        print(f"  gateway - baseline: non-streaming {(g[0] - b[0]) * 1e6:+.0f} us, "
              f"stream({args.chunks}) {(g[1] - b[1]) * 1e6:+.0f} us, "
              f"per chunk {((g[2] - g[1]) - (b[2] - b[1])) / (args.chunks * 9) * 1e6:+.1f} us")
        print()
        for title, payload, n in (("non-streaming", plain, args.requests),
                                  (f"streaming, {args.chunks * 10} chunks", long, max(args.streams // 5, 10))):
            print(f"=== gateway, {title}: {n} requests, sorted by {args.sort} ===")
            print(profile(gateway, payload, n, sort=args.sort, top=args.top))
        return 0
    finally:
        procs.stop_all()


if __name__ == "__main__":
    sys.exit(main())
