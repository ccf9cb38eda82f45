"""``bifrost-wsgi``: validate the config, say where we listen, and run gunicorn (gthread workers) in this
process, with the settings of ``deploy/gunicorn.conf.py`` (reasons there).

The master holds the config its workers serve: workers forked later (a crash, ``max_requests`` recycling)
get the same one, and ``kill -HUP`` reads the file again; a config that does not load is logged and the
running workers keep serving the one they have.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass

from . import __version__
from .config import ConfigError, load

LEVELS = ("debug", "info", "warning", "error", "critical")

# Request-size limits of gunicorn's HTTP parser: far above what SDKs send (a request line of a few dozen
# bytes; about 20 headers, the largest a bearer token or a cookie of a few KB), far below what exhausts a
# worker: at most 64 headers of 8 KB each, so about 512 KB of headers per request at worst.
LIMIT_REQUEST_LINE = 8190
LIMIT_REQUEST_FIELDS = 64
LIMIT_REQUEST_FIELD_SIZE = 8190
# bare bifrost-wsgi faces clients directly: an idle kept-alive connection costs no thread, but counts
# against the worker's connections and lives this long (behind nginx, deploy/gunicorn.conf.py uses 75 s)
KEEPALIVE = 5
WORKER_CLASS = "bifrost_wsgi.worker.Worker"


@dataclass(frozen=True)
class Option:
    flag: str
    variable: str
    default: str | None
    help: str
    metavar: str
    type: object = str


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


def _log_level(text: str) -> str:
    if text.lower() not in LEVELS:
        raise ValueError(text)
    return text.lower()


# argparse names the type in its error message; it checks a default through ``type`` but not ``choices``
_positive_int.__name__ = "positive integer"
_log_level.__name__ = "log level"

OPTIONS = (
    Option("--config", "BIFROST_CONFIG", None,
           "config.json path (default: none, providers come from environment variables alone)", "PATH"),
    Option("--host", "BIFROST_HOST", "127.0.0.1", "address to listen on", "HOST"),
    Option("--port", "BIFROST_PORT", "8080", "port to listen on", "PORT", int),
    Option("--workers", "BIFROST_WORKERS", None,
           "worker processes (default: $WEB_CONCURRENCY, else the number of cores)", "N", _positive_int),
    Option("--threads", "BIFROST_THREADS", "64",
           "threads per worker; each request or stream holds one for its whole length", "N", _positive_int),
    Option("--log-level", "BIFROST_LOG_LEVEL", "info",
           f"level of gunicorn's and the gateway's messages on stderr: {', '.join(LEVELS)}", "LEVEL", _log_level),
    Option("--data-dir", "BIFROST_DATA_DIR", "./data",
           "directory for the gateway's own files, exported to the app as BIFROST_DATA_DIR (absolute)", "DIR"),
)
# read by the gunicorn settings below and by deploy/gunicorn.conf.py; no command-line flag
OTHER_VARIABLES = (
    ("BIFROST_GRACEFUL_TIMEOUT", "300", "seconds a stopping worker has to finish its streams"),
    ("BIFROST_MAX_REQUESTS", "10000", "recycle a worker after this many requests (+10 % jitter; 0 = never)"),
    ("BIFROST_KEEPALIVE", str(KEEPALIVE), "seconds an idle client connection is kept open"),
    ("BIFROST_ACCESS_LOG", "on", "off: no JSON access log on stdout"),
    ("BIFROST_METRICS_DIR", "a private temporary directory", "where workers keep their metrics"),
)


def parse_args(argv, environ=None):
    env = os.environ if environ is None else environ
    epilog = "other environment variables:\n" + "\n".join(
        f"  {name:<26}{what} (default: {default})" for name, default, what in OTHER_VARIABLES)
    p = argparse.ArgumentParser(prog="bifrost-wsgi", epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter,
                                description="Bifrost-compatible LLM gateway (WSGI app served by gunicorn gthread).")
    for opt in OPTIONS:
        shown = "" if opt.default is None else f"; default: {opt.default}"
        # a string default goes through ``type`` like a command-line value: a bad variable is a usage error
        p.add_argument(opt.flag, default=env.get(opt.variable) or opt.default, type=opt.type, metavar=opt.metavar,
                       help=f"{opt.help} [env {opt.variable}{shown}]")
    p.add_argument("--allow-remote-admin", action="store_true",
                   default=env.get("BIFROST_ALLOW_REMOTE_ADMIN", "").lower() in ("1", "true", "yes"),
                   help="answer the admin API (/api/*) to every address even without governance.auth_config "
                        "[env BIFROST_ALLOW_REMOTE_ADMIN=1]")
    p.add_argument("--check-config", action="store_true",
                   help="validate the config, print its warnings and exit (0 = valid, 2 = not)")
    p.add_argument("--version", action="version", version=f"bifrost-wsgi {__version__}")
    return p.parse_args(argv)


def app_environment(args) -> dict[str, str]:
    """What the command passes to the app (and its workers) through the environment."""
    out = {"BIFROST_DATA_DIR": os.path.abspath(args.data_dir)}
    if args.allow_remote_admin:
        out["BIFROST_ALLOW_REMOTE_ADMIN"] = "1"
    return out


def report_config_error(exc: ConfigError, write) -> None:
    """One line per problem (every missing environment variable is one)."""
    for line in str(exc).splitlines():
        write(f"bifrost-wsgi: config error: {line}")


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    # before the config is read: its stores live in the data directory, and the master's config is the
    # one every worker serves
    os.environ.update(app_environment(args))
    try:
        config = load(args.config or None)
    except ConfigError as exc:
        report_config_error(exc, _stderr)
        return 2
    for warning in config.warnings:
        _stderr(f"bifrost-wsgi: warning: {warning}")
    if args.check_config:
        print(f"bifrost-wsgi: config ok ({config.source})")
        return 0
    try:
        from gunicorn.app.base import BaseApplication
        from gunicorn.arbiter import Arbiter
    except ImportError:
        _stderr("bifrost-wsgi: gunicorn is not installed; install the serve extra: pip install 'bifrost-wsgi[serve]'")
        return 2

    from .app import Gateway
    from .observe import metrics
    from .observe.logsetup import configure

    configure(args.log_level)
    workers = args.workers or _env_int("WEB_CONCURRENCY") or os.cpu_count() or 1
    enabled = ", ".join(n for n, p in config.providers.items() if p.row.chat_supported) or "none"
    print(f"bifrost-wsgi {__version__} listening on http://{args.host}:{args.port} "
          f"({workers} workers x {args.threads} threads, config: {config.source})", flush=True)
    print(f"providers enabled: {enabled}", flush=True)
    if args.host not in ("127.0.0.1", "localhost", "::1") and not config.virtual_keys:
        _stderr("bifrost-wsgi: WARNING: listening on a non-loopback address with no virtual keys configured: "
                "anyone who can reach this port can spend your provider keys")
    metrics.prepare_directory()  # before gunicorn forks: workers sum their metrics through it

    class ReloadingArbiter(Arbiter):
        def reload(self):
            # gunicorn's HUP: new workers, then the old ones stop. Only with a config that loads: with a
            # bad one new workers could not serve, and the old ones would already be told to stop.
            if self.app.read_config(self.log):
                super().reload()

    class Server(BaseApplication):
        def __init__(self):
            self.config = config
            super().__init__()

        def load_config(self):
            for k, v in gunicorn_settings(args, workers=workers, threads=args.threads).items():
                if k in self.cfg.settings:  # control_socket_disable is gunicorn >= 25.1 only
                    self.cfg.set(k, v)

        def load(self):
            return Gateway(self.config)

        def read_config(self, log) -> bool:
            try:
                self.config = load(args.config or None)
            except ConfigError as exc:
                report_config_error(exc, log.error)
                log.error("bifrost-wsgi: not reloaded: the running workers keep serving their config")
                return False
            for warning in self.config.warnings:
                log.warning("bifrost-wsgi: warning: %s", warning)
            log.info("bifrost-wsgi: config reloaded (%s)", self.config.source)
            return True

        def run(self):
            try:
                ReloadingArbiter(self).run()
            except RuntimeError as exc:  # gunicorn's own start-up failures (e.g. the port is taken)
                _stderr(f"bifrost-wsgi: {exc}")
                sys.exit(1)

    Server().run()
    return 0


def _env_int(name: str) -> int | None:
    value = os.environ.get(name, "").strip()
    return int(value) if value else None


def _env_int_or(name: str, default: int) -> int:
    value = _env_int(name)
    return default if value is None else value


def gunicorn_settings(args, *, workers: int, threads: int) -> dict:
    """The settings of deploy/gunicorn.conf.py (reasons there), with this command's bind, sizes, log level
    and keep-alive."""
    from .observe import metrics

    max_requests = _env_int_or("BIFROST_MAX_REQUESTS", 10000)
    return {
        "bind": f"[{args.host}]:{args.port}" if ":" in args.host else f"{args.host}:{args.port}",
        "workers": workers,
        "threads": threads,
        "worker_class": WORKER_CLASS,
        "timeout": 30,  # worker liveness only: gthread heartbeats while streams run
        "graceful_timeout": _env_int_or("BIFROST_GRACEFUL_TIMEOUT", 300),
        "keepalive": _env_int_or("BIFROST_KEEPALIVE", KEEPALIVE),
        "limit_request_line": LIMIT_REQUEST_LINE,
        "limit_request_fields": LIMIT_REQUEST_FIELDS,
        "limit_request_field_size": LIMIT_REQUEST_FIELD_SIZE,
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
