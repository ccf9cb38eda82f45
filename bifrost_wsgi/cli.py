"""``bifrost-wsgi``: validate the config, say where we listen, and run gunicorn with gthread workers."""

from __future__ import annotations

import argparse
import os
import sys

from . import __version__
from .config import ConfigError, load

LEVELS = ("debug", "info", "warning", "error", "critical")


def parse_args(argv):
    p = argparse.ArgumentParser(prog="bifrost-wsgi", description="Bifrost-compatible LLM gateway (WSGI, gunicorn).")
    p.add_argument("--config", help="config.json path (default: $BIFROST_CONFIG, else environment variables)")
    p.add_argument("--host", default=os.environ.get("BIFROST_HOST", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(os.environ.get("BIFROST_PORT", "8080")))
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: number of cores)")
    p.add_argument("--threads", type=int, default=None,
                   help="threads per worker = concurrent requests/streams per worker (default: 64)")
    p.add_argument("--log-level", default=os.environ.get("BIFROST_LOG_LEVEL", "info"), choices=LEVELS)
    p.add_argument("--check-config", action="store_true",
                   help="validate the config, print its warnings and exit (0 = valid, 2 = not)")
    p.add_argument("--version", action="version", version=f"bifrost-wsgi {__version__}")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    path = args.config or os.environ.get("BIFROST_CONFIG") or None
    try:
        config = load(path)
    except ConfigError as exc:
        print(f"bifrost-wsgi: config error: {exc}", file=sys.stderr)
        return 2
    if args.check_config:
        for warning in config.warnings:
            print(f"bifrost-wsgi: warning: {warning}", file=sys.stderr)
        print(f"bifrost-wsgi: config ok ({config.source})")
        return 0
    try:
        from gunicorn.app.base import BaseApplication
    except ImportError:
        print("bifrost-wsgi: gunicorn is not installed; install the serve extra: pip install 'bifrost-wsgi[serve]'",
              file=sys.stderr)
        return 2

    from .app import Gateway
    from .observe.logsetup import configure

    configure(args.log_level)
    for warning in config.warnings:
        print(f"bifrost-wsgi: warning: {warning}", file=sys.stderr)
    workers = args.workers or _env_int("BIFROST_WORKERS") or _env_int("WEB_CONCURRENCY") or os.cpu_count() or 1
    threads = args.threads or _env_int("BIFROST_THREADS") or 64
    enabled = ", ".join(n for n, p in config.providers.items() if p.row.chat_supported) or "none"
    print(f"bifrost-wsgi {__version__} listening on http://{args.host}:{args.port} "
          f"({workers} workers x {threads} threads, config: {config.source})", flush=True)
    print(f"providers enabled: {enabled}", flush=True)
    if args.host not in ("127.0.0.1", "localhost", "::1") and not config.virtual_keys:
        print("bifrost-wsgi: WARNING: listening on a non-loopback address with no virtual keys configured: "
              "anyone who can reach this port can spend your provider keys", file=sys.stderr, flush=True)

    from .observe import metrics

    metrics.prepare_directory()  # before gunicorn forks: workers sum their metrics through it

    class Server(BaseApplication):
        def load_config(self):
            for k, v in gunicorn_settings(args, workers=workers, threads=threads).items():
                if k in self.cfg.settings:  # control_socket_disable is gunicorn >= 25.1 only
                    self.cfg.set(k, v)

        def load(self):
            return Gateway(config)

    Server().run()
    return 0


def _env_int(name: str) -> int | None:
    value = os.environ.get(name, "").strip()
    return int(value) if value else None


def gunicorn_settings(args, *, workers: int, threads: int) -> dict:
    """The same settings as deploy/gunicorn.conf.py (reasons there), with this command's bind, sizes and
    log level."""
    from .observe import metrics

    max_requests = _env_int("BIFROST_MAX_REQUESTS")
    max_requests = 10000 if max_requests is None else max_requests
    graceful = _env_int("BIFROST_GRACEFUL_TIMEOUT")
    return {
        "bind": f"[{args.host}]:{args.port}" if ":" in args.host else f"{args.host}:{args.port}",
        "workers": workers,
        "threads": threads,
        "worker_class": "gthread",
        "timeout": 30,  # worker liveness only: gthread heartbeats while streams run
        "graceful_timeout": 300 if graceful is None else graceful,
        "keepalive": 75,
        "max_requests": max_requests,
        "max_requests_jitter": max_requests // 10,
        "preload_app": False,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": args.log_level,
        "proc_name": "bifrost-wsgi",
        "control_socket_disable": True,
        "child_exit": lambda server, worker: metrics.worker_exited(worker.pid),
        "on_exit": lambda server: metrics.remove_directory(),
    }


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
