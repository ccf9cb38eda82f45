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
    try:
        from gunicorn.app.base import BaseApplication
    except ImportError:
        print("bifrost-wsgi: gunicorn is not installed; install the serve extra: pip install 'bifrost-wsgi[serve]'",
              file=sys.stderr)
        return 2

    from .app import Gateway
    from .logsetup import configure

    configure(args.log_level)
    for warning in config.warnings:
        print(f"bifrost-wsgi: warning: {warning}", file=sys.stderr)
    workers = args.workers or os.cpu_count() or 1
    threads = args.threads or 64
    enabled = ", ".join(n for n, p in config.providers.items() if p.row.chat_supported) or "none"
    print(f"bifrost-wsgi {__version__} listening on http://{args.host}:{args.port} "
          f"({workers} workers x {threads} threads, config: {config.source})", flush=True)
    print(f"providers enabled: {enabled}", flush=True)
    if args.host not in ("127.0.0.1", "localhost", "::1") and not config.virtual_keys:
        print("bifrost-wsgi: WARNING: listening on a non-loopback address with no virtual keys configured: "
              "anyone who can reach this port can spend your provider keys", file=sys.stderr, flush=True)

    class Server(BaseApplication):
        def load_config(self):
            settings = {
                "bind": f"[{args.host}]:{args.port}" if ":" in args.host else f"{args.host}:{args.port}",
                "workers": workers,
                "threads": threads,
                "worker_class": "gthread",
                "timeout": 30,  # worker liveness only: gthread heartbeats while streams run
                "graceful_timeout": 30,
                "keepalive": 5,
                "loglevel": args.log_level,
                "errorlog": "-",
                "max_requests": 0,
            }
            for k, v in settings.items():
                self.cfg.set(k, v)

        def load(self):
            return Gateway(config)

    Server().run()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
