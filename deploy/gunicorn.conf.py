"""gunicorn settings for bifrost-wsgi.

    BIFROST_CONFIG=/etc/bifrost-wsgi/config.json \
        gunicorn -c deploy/gunicorn.conf.py bifrost_wsgi.wsgi:application

Every value comes from an environment variable with a production default; the ``bifrost-wsgi`` command
uses the same values. Why these:

- ``gthread`` workers (``bifrost_wsgi.worker.Worker``: gunicorn's own, answering gunicorn's refusals of
  unparseable requests with the JSON error envelope instead of HTML, and refusing new connections at once
  when told to stop instead of letting them hang while streams drain). A stream holds one thread for as
  long as it lasts, so concurrent requests and streams = workers x threads (``BIFROST_THREADS`` is the
  knob; the README's "Sizing workers x threads" says how to pick it). The sync worker is unsupported for
  streaming: it serves one request at a time and, since it only tells the master it is alive between
  requests, kills any stream longer than ``timeout`` ("WORKER TIMEOUT"); the app logs a warning once when
  it streams on a server that is not multithreaded.
- ``timeout`` is only the worker liveness check: a gthread worker's main loop reports every second while its
  threads stream, so no stream is ever killed by it, whatever its length. Upstream waits are bounded by the
  config instead (``default_request_timeout_in_seconds``, ``stream_idle_timeout_in_seconds``,
  ``client.request_deadline_in_seconds``).
- ``graceful_timeout`` is how long a worker that is told to stop (deploy: ``kill -HUP`` the master; stop:
  SIGTERM; ``max_requests`` recycling) may take to finish the requests and streams it has: 300 s by
  default, as long as the default request deadline. New workers take new connections meanwhile. Keep
  systemd's TimeoutStopSec above it.
- ``keepalive`` 75 s is longer than nginx's upstream ``keepalive_timeout`` (60 s in deploy/nginx/bifrost.conf),
  so gunicorn never closes an idle connection nginx is about to reuse. Idle connections cost no thread.
  Without nginx in front, set ``BIFROST_KEEPALIVE=5`` (what bare ``bifrost-wsgi`` uses): gunicorn has no
  deadline for reading a request's headers, so clients must not reach it directly in production (nginx
  waits for whole headers and bodies before it takes a gunicorn thread: no slowloris).
- Request limits of gunicorn's parser: a request line up to 8190 bytes, at most 64 header fields of up to
  8190 bytes each (about 512 KB at worst); beyond that 414 or 431 with the JSON envelope. SDKs send about
  20 headers of a few hundred bytes (a bearer token or a cookie at most a few KB); nginx's own default
  (large_client_header_buffers 4 8k) is stricter still.
- ``max_requests`` (+10 % jitter) recycles workers now and then; metrics survive it (bifrost_wsgi/observe/metrics.py).
- gunicorn's own access log is off: the access log is ours, one JSON line per request on stdout
  (logger ``bifrost_wsgi.access``); gunicorn's and the app's messages go to stderr.
- The app is not preloaded: each worker reads the config itself, so ``kill -HUP`` also reloads config.json
  and a new version of the code. The master checks the config first: a config that does not load is
  logged (every problem, one line each) and the reload does not happen, so the running workers keep
  serving. (A worker recycled by ``max_requests`` reads the file as it is then: edit, check with
  ``bifrost-wsgi --check-config``, then HUP.)

Variables: BIFROST_BIND (default BIFROST_HOST:BIFROST_PORT = 127.0.0.1:8080; "unix:/run/x.sock" works),
BIFROST_WORKERS (default WEB_CONCURRENCY, else the number of cores), BIFROST_THREADS (64),
BIFROST_GRACEFUL_TIMEOUT (300), BIFROST_MAX_REQUESTS (10000; 0 = never recycle), BIFROST_KEEPALIVE (75),
BIFROST_LOG_LEVEL (info),
BIFROST_METRICS_DIR (default: a private temporary directory), FORWARDED_ALLOW_IPS (gunicorn's; also
which peers the access log believes about the client address).
"""

import contextlib
import functools
import os
import sys

# PERF: the master imports the one runtime dependency once, so each forked worker starts with it loaded
# (requests and the urllib3 it brings are most of the start-up import time). Our own package is still imported fresh by every worker,
# so a HUP picks up new code.
import requests  # noqa: F401


def _env_int(name, default):
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


def _default_bind():
    host = os.environ.get("BIFROST_HOST", "127.0.0.1")
    port = os.environ.get("BIFROST_PORT", "8080")
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


bind = [os.environ.get("BIFROST_BIND") or _default_bind()]
worker_class = "bifrost_wsgi.worker.Worker"
workers = _env_int("BIFROST_WORKERS", _env_int("WEB_CONCURRENCY", os.cpu_count() or 1))
threads = _env_int("BIFROST_THREADS", 64)
timeout = 30
graceful_timeout = _env_int("BIFROST_GRACEFUL_TIMEOUT", 300)
keepalive = _env_int("BIFROST_KEEPALIVE", 75)
limit_request_line = 8190
limit_request_fields = 64
limit_request_field_size = 8190
max_requests = _env_int("BIFROST_MAX_REQUESTS", 10000)
max_requests_jitter = max_requests // 10
preload_app = False
accesslog = None
errorlog = "-"
loglevel = os.environ.get("BIFROST_LOG_LEVEL", "info")
proc_name = "bifrost-wsgi"
# gunicorn >= 25.1 opens a control socket under $HOME by default: nothing we need, and one path shared by
# every gunicorn of the user (older versions ignore this setting)
control_socket_disable = True


@contextlib.contextmanager
def _bifrost():
    """Import bifrost_wsgi for a hook, then forget it: the master must not keep the package, or workers
    forked after a HUP would inherit its old modules instead of importing the code now on disk."""
    try:
        import bifrost_wsgi.config
        import bifrost_wsgi.observe.metrics

        yield bifrost_wsgi
    finally:
        for name in [n for n in sys.modules if n == "bifrost_wsgi" or n.startswith("bifrost_wsgi.")]:
            del sys.modules[name]


def _is_local(address):
    if isinstance(address, str):  # unix socket
        return True
    host = address[0]
    return host in ("localhost", "::1") or host.startswith("127.")


def _check_config(server, pkg):
    """The config as the workers will read it: one error line, or warnings."""
    try:
        config = pkg.config.load()
    except pkg.config.ConfigError as exc:
        for line in str(exc).splitlines():
            server.log.error("bifrost-wsgi: config error: %s", line)
        return None
    for warning in config.warnings:
        server.log.warning("bifrost-wsgi: %s", warning)
    if not config.virtual_keys and not all(_is_local(a) for a in server.cfg.address):
        server.log.warning("bifrost-wsgi: LISTENING ON A NON-LOOPBACK ADDRESS WITH NO VIRTUAL KEYS: anyone who "
                           "can reach it can spend your provider keys (configure governance.virtual_keys)")
    return config


def on_starting(server):
    with _bifrost() as pkg:
        if _check_config(server, pkg) is None:
            sys.exit(2)  # exit status 2, one line per problem naming its JSON path: no worker boot loop
        pkg.observe.metrics.prepare_directory()
    # gunicorn has no hook that can call a reload off, and by on_reload new workers are about to replace
    # the running ones: so the master's reload itself is guarded (this master object lives until exit)
    server.reload = functools.partial(_reload_if_valid, server, server.reload)


def _reload_if_valid(server, reload):
    """A HUP: reload only with a config that loads; otherwise new workers could not serve, and the running
    ones would already have been told to stop."""
    with _bifrost() as pkg:
        valid = _check_config(server, pkg) is not None
    if not valid:
        server.log.error("bifrost-wsgi: not reloaded: the running workers keep serving their config")
        return
    reload()


def child_exit(server, worker):
    with _bifrost() as pkg:
        pkg.observe.metrics.worker_exited(worker.pid)


def on_exit(server):
    with _bifrost() as pkg:
        pkg.observe.metrics.remove_directory()
