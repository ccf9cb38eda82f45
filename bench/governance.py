"""Governance and the request log next to the same gateway without them, in-process: the WSGI app called
directly against the mock upstream, wall time and CPU per request (the issue's targets: added latency within
1.1x and requests per second within 0.9x of the gateway without them).

    python bench/governance.py              # 2000 requests per configuration, interleaved in 4 turns
    python bench/governance.py --smoke

Configurations: "off" (no virtual key, client.enable_logging false), "logs" (the default: a request-log row
per request in SQLite), "governed" (a virtual key with a request and a token rate limit and a budget, plus
the request log). Each has its own data directory; the log writer is drained before CPU is read, so the
background thread's work is counted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [ROOT, HERE]

from bifrost_wsgi import make_app  # noqa: E402
from procs import Procs  # noqa: E402
from profile_gateway import environ_for  # noqa: E402
from unified import call_env  # noqa: E402

VK = "sk-bf-bench-virtual-key-0001"
BODY = json.dumps({"model": "openai/gpt-4o-mini", "max_tokens": 64,
                   "messages": [{"role": "user", "content": "Say hello in one short sentence."}]}).encode()


def configs(upstream: dict) -> dict:
    governed = {"virtual_keys": [{"id": "vk-bench", "name": "bench", "value": VK, "rate_limit_id": "rl"}],
                "rate_limits": [{"id": "rl", "request_max_limit": 10_000_000, "request_reset_duration": "1h",
                                 "token_max_limit": 10_000_000_000, "token_reset_duration": "1h"}],
                "budgets": [{"id": "b", "max_limit": 1_000_000.0, "reset_duration": "1M", "virtual_key_id": "vk-bench"}]}
    return {
        "off": {"client": {"enable_logging": False}, "providers": {"openai": upstream}},
        "logs": {"providers": {"openai": upstream}},
        "governed": {"providers": {"openai": upstream}, "governance": governed},
    }


def run(app, n: int, headers: dict) -> tuple[float, float]:
    w0, c0 = time.perf_counter(), time.process_time()
    for _ in range(n):
        env = environ_for(BODY)
        env.update(headers)
        call_env(app, env)
    wall = time.perf_counter() - w0  # the clients' time; the log writer's own work is counted in CPU below
    deadline = time.monotonic() + 30
    while not app.governance.writer.idle() and time.monotonic() < deadline:
        time.sleep(0.01)
    return wall, time.process_time() - c0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="governance and request logs next to the gateway without them")
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--smoke", action="store_true")
    args = p.parse_args(argv)
    if args.smoke:
        args.requests = 40
    procs = Procs()
    tmp = tempfile.TemporaryDirectory()
    try:
        mock, port = procs.start_mock()
        upstream = {"keys": [{"value": "sk-bench", "models": []}],
                    "network_config": {"base_url": f"http://127.0.0.1:{port}"}}
        apps = {}
        for name, conf in configs(upstream).items():
            os.environ["BIFROST_DATA_DIR"] = os.path.join(tmp.name, name)
            apps[name] = make_app(conf)
        headers = {"governed": {"HTTP_X_BF_VK": VK}}
        turns, per_turn = 4, max(1, args.requests // 4)
        totals = {name: [0.0, 0.0] for name in apps}
        for name, app in apps.items():  # warm up
            run(app, min(50, per_turn), headers.get(name, {}))
        for _ in range(turns):
            for name, app in apps.items():
                wall, cpu = run(app, per_turn, headers.get(name, {}))
                totals[name][0] += wall
                totals[name][1] += cpu
        n = turns * per_turn
        off_wall, off_cpu = (t / n for t in totals["off"])
        print(f"{'configuration':12s} {'wall/request':>13s} {'CPU/request':>12s} {'req/s':>8s}  vs off")
        for name, (wall, cpu) in totals.items():
            wall, cpu = wall / n, cpu / n
            print(f"{name:12s} {wall * 1e6:10.0f} us {cpu * 1e6:9.0f} us {1 / wall:8.0f}  "
                  f"latency {wall / off_wall:.2f}x, req/s {off_wall / wall:.2f}x, CPU {cpu / off_cpu:.2f}x")
        for app in apps.values():
            app.close()
        return 0
    finally:
        procs.stop_all()
        tmp.cleanup()


if __name__ == "__main__":
    sys.exit(main())
