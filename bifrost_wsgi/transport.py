"""The only module that talks HTTP (with urllib3, which ``requests`` brings): pooled connections, read
deadlines, exception mapping. Everything here goes through documented interfaces of urllib3.

* One urllib3 connection pool per upstream origin, shared by the worker's threads (pools are thread-safe),
  created at the first call, so nothing socket-bearing exists before gunicorn forks. Proxied calls go through
  a urllib3 ``ProxyManager`` (``SOCKSProxyManager`` for socks5) per proxy setting.
* PERF: requests' ``Session`` and ``HTTPAdapter`` are not on the path: they rebuild settings, header maps,
  cookies and a ``Response`` on every call (about 140 us of CPU per call in profiles, a sixth of what the
  whole gateway spends on a request) for features a gateway never wants. Consequences, all deliberate:
  proxies come from ``proxy_config`` (type ``environment``, the default when ``*_PROXY`` variables are set,
  asks them for each URL, honouring ``NO_PROXY``), no cookies are kept between calls, no redirects are
  followed, and the CA bundle is ``REQUESTS_CA_BUNDLE``/``SSL_CERT_FILE`` when set (read once), else certifi's,
  as with requests.
* Bodies are read with urllib3's ``HTTPResponse.read_chunked`` (one chunk of a chunked body per read) or
  ``read1`` (whatever has arrived), whatever ``io.DEFAULT_BUFFER_SIZE`` is.
* Read deadlines (first token, idle silence, the request's own deadline) are kept by one watchdog thread per
  process, which stops a read that overran with urllib3's ``HTTPResponse.shutdown()``: a socket timeout
  cannot change in the middle of a body through public means, and one that fires kills the stream anyway.
  The same watchdog notices a client that went away while its request waits for the upstream.
* urllib3 exceptions become gateway errors here, and nowhere else.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import select
import socket
import threading
import time
from dataclasses import dataclass
from typing import Iterator
from urllib.parse import unquote, urlencode

from . import __version__
from .errors import ClientGone, UpstreamConnectError, UpstreamProtocolError, UpstreamTimeout


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    method: str
    url: str
    headers: dict[str, str]
    # bytes, or an upload streamed from its spool: an object with len() (the Content-Length) that yields
    # bytes again for each attempt, which urllib3 sends as it is iterated
    body: bytes


@dataclass(frozen=True, slots=True)
class Proxy:
    type: str = "none"  # none | http | socks5 | environment
    url: str = ""
    username: str = ""
    password: str = ""

    def __repr__(self) -> str:
        return f"Proxy(type={self.type!r})"


USER_AGENT = f"bifrost-wsgi/{__version__}"
CONNECT_TIMEOUT = 10.0
MAX_BODY_BYTES = 64 * 1024 * 1024  # a non-streamed answer (or error body) larger than this is refused
_DEFAULT_HEADERS = {"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate", "Connection": "keep-alive"}
_DEFAULT_NAMES = {name.lower(): name for name in _DEFAULT_HEADERS}
READ_SIZE = 64 * 1024
_IDLE = "upstream stopped sending data (idle timeout)"
_BROKE = "upstream connection broke while reading the response"
# read once: locked-down hosts with a TLS-inspecting proxy point these at their CA bundle
_CA_BUNDLE = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("SSL_CERT_FILE") or None


# urllib3 is imported at the first upstream call, not with the package: importing it takes ~40 ms, which
# building the app, checking a config and starting a worker need not pay. The gunicorn master
# (deploy/gunicorn.conf.py) imports it once before forking, so workers start with it loaded.
urllib3 = None


def _load() -> None:
    global urllib3
    import urllib3 as _urllib3
    import urllib3.exceptions  # noqa: F401 - the names mapped below

    urllib3 = _urllib3  # last: it is the "loaded" flag


def _ca_bundle() -> str | None:
    if _CA_BUNDLE:
        return _CA_BUNDLE
    try:
        import certifi  # requests' own dependency: the same trust store requests uses
    except ImportError:
        return None  # urllib3 then loads the system's default certificates
    return certifi.where()


class _Pools:
    """Connection pools by origin, and proxy managers by proxy, for this process."""

    MAX_ORIGINS = 256  # origins come from the config: a handful

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.origins: dict[str, object] = {}
        self.proxies: dict[tuple, object] = {}
        self.kw: dict | None = None

    def settings(self) -> dict:
        if self.kw is None:
            threads = int(os.environ.get("BIFROST_WORKER_THREADS") or 0)
            # every thread may hold one connection to an origin; block=False: one more is made when all are busy
            self.kw = {"maxsize": max(threads, 10), "block": False, "retries": False,
                       "cert_reqs": "CERT_REQUIRED", "ca_certs": _ca_bundle()}
        return self.kw

    def for_origin(self, origin: str):
        pool = self.origins.get(origin)
        if pool is None:
            with self.lock:
                pool = self.origins.get(origin)
                if pool is None:
                    kw = self.settings()
                    if not origin.startswith("https:"):
                        kw = {k: v for k, v in kw.items() if k not in ("cert_reqs", "ca_certs")}
                    pool = self.origins[origin] = urllib3.connection_from_url(origin, **kw)
                    _evict(self.origins, keep=self.MAX_ORIGINS, close=lambda p: p.close())
        return pool

    def for_proxy(self, url: str, kind: str, username: str, password: str):
        key = (url, kind, username, password)
        manager = self.proxies.get(key)
        if manager is None:
            with self.lock:
                manager = self.proxies.get(key)
                if manager is None:
                    manager = self.proxies[key] = _proxy_manager(url, kind, username, password, self.settings())
                    _evict(self.proxies, keep=self.MAX_ORIGINS, close=lambda m: m.clear())
        return manager

    def close(self) -> None:
        """Close every pooled connection (for an embedding app that is shutting down, and tests)."""
        with self.lock:
            for pool in self.origins.values():
                pool.close()
            for manager in self.proxies.values():
                manager.clear()
            self.origins, self.proxies = {}, {}

    def after_fork(self) -> None:
        # the parent's sockets stay the parent's: the child starts with no pool
        self.lock = threading.Lock()
        self.origins, self.proxies = {}, {}


def _evict(table: dict, *, keep: int, close) -> None:
    """Close and forget the oldest entries beyond ``keep`` (a pool dropped without closing leaks its sockets
    until the garbage collector finds them)."""
    while len(table) > keep:
        close(table.pop(next(iter(table))))


_POOLS = _Pools()
os.register_at_fork(after_in_child=_POOLS.after_fork)


def _proxy_manager(url: str, kind: str, username: str, password: str, kw: dict):
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = ("socks5h" if kind == "socks5" else "http"), url
    elif kind == "socks5" and scheme == "socks5":
        scheme = "socks5h"  # resolve names through the proxy, as locked-down networks require
    auth, at, hostport = rest.rpartition("@")
    if at and not username:  # credentials written into the URL (the *_PROXY variables' way)
        user, _, pw = auth.partition(":")
        username, password = unquote(user), unquote(pw)
    proxy_url = f"{scheme}://{hostport}"
    if scheme.startswith("socks"):
        # asked first: urllib3's socks module warns before it fails when PySocks is missing
        if importlib.util.find_spec("socks") is None:
            raise UpstreamConnectError("socks5 proxies need PySocks: pip install 'requests[socks]'")
        from urllib3.contrib.socks import SOCKSProxyManager
        return SOCKSProxyManager(proxy_url, username=username or None, password=password or None, **kw)
    headers = urllib3.make_headers(proxy_basic_auth=f"{username}:{password}") if username else None
    return urllib3.ProxyManager(proxy_url, proxy_headers=headers, **kw)


def _environment_proxy(url: str) -> str | None:
    """The proxy the ``*_PROXY`` variables name for this URL now (None: ``NO_PROXY`` covers it, or none is
    set), as requests would pick it."""
    from requests.utils import get_environ_proxies, select_proxy

    return select_proxy(url, get_environ_proxies(url))


def _origin_and_target(url: str) -> tuple[str, str]:
    """The origin (scheme://host:port) and the request target (path and query) of an absolute URL."""
    cut = url.find("/", url.find("://") + 3)
    if cut < 0 or "#" in url or "@" in url[:cut]:
        parsed = urllib3.util.parse_url(url)
        origin = f"{parsed.scheme}://{parsed.netloc.rpartition('@')[2]}"
        return origin, parsed.request_uri
    return url[:cut], url[cut:]


def _headers(headers: dict, body) -> dict:
    out = dict(headers)
    names = {name.lower() for name in out}
    for lower, name in _DEFAULT_NAMES.items():
        if lower not in names:
            out[name] = _DEFAULT_HEADERS[name]
    if body is not None and "content-length" not in names:
        out["Content-Length"] = str(len(body))
    return out


def _open(method: str, url: str, headers: dict, body, *, timeout: tuple[float, float], proxy: Proxy):
    """The urllib3 response once its headers are in (the body not read): urllib3 errors propagate."""
    if urllib3 is None:
        _load()
    headers = _headers(headers, body)
    limits = urllib3.Timeout(connect=timeout[0], read=timeout[1])
    kind = proxy.type
    proxy_url = proxy.url
    if kind == "environment":
        proxy_url = _environment_proxy(url) or ""
        kind = ("socks5" if proxy_url.startswith("socks") else "http") if proxy_url else "none"
    if kind == "none":
        origin, target = _origin_and_target(url)
        return _POOLS.for_origin(origin).urlopen(method, target, body=body, headers=headers, timeout=limits,
                                                   preload_content=False, decode_content=True, redirect=False,
                                                   retries=False, assert_same_host=False)
    manager = _POOLS.for_proxy(proxy_url, kind, proxy.username, proxy.password)
    return manager.urlopen(method, url, body=body, headers=headers, timeout=limits, preload_content=False,
                           decode_content=True, redirect=False, retries=False)


class Watch:
    """One response under the watchdog: the read in progress must be over by ``expires`` (a monotonic time;
    None = no limit), and ``client`` (the client's socket, when the server exposes it) must still be there."""

    __slots__ = ("raw", "expires", "client", "reason")

    def __init__(self, raw, client) -> None:
        self.raw = raw
        self.expires: float | None = None
        self.client = client
        self.reason = ""  # why the watchdog stopped the read: "deadline" or "client"

    def stop(self, reason: str) -> None:
        self.reason = reason
        shutdown = getattr(self.raw, "shutdown", None)  # urllib3 >= 2.3
        try:
            if shutdown is not None:
                shutdown()
        except Exception:  # noqa: BLE001 - already released or closed: nothing is being read
            pass


class Watchdog:
    """One thread per process that stops overrunning reads and reads whose client has gone.

    PERF: a read costs the reader one clock reading and one attribute store, and adding a watch wakes no
    one: the thread (started at the first watch) looks every TICK, so deadlines hold to within TICK. Waking it
    per request through a condition cost each request two thread switches and a GIL hand-off (measured in
    profiles as the largest single cost after the upstream's own wait); TICK-spaced wake-ups of an idle
    thread cost nothing a profile can see."""

    TICK = 0.05

    def __init__(self) -> None:
        self._watched: set[Watch] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def add(self, watch: Watch) -> None:
        self._watched.add(watch)
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="bifrost-watchdog", daemon=True)
                    self._thread.start()

    def remove(self, watch: Watch) -> None:
        self._watched.discard(watch)

    def _run(self) -> None:
        while True:
            time.sleep(self.TICK)
            if not self._watched:
                continue
            now = time.monotonic()
            clients = {}
            for watch in list(self._watched):
                if watch.reason:
                    continue
                if watch.expires is not None and watch.expires <= now:
                    watch.stop("deadline")
                elif watch.client is not None:
                    clients[watch.client] = watch
            for sock in _gone(clients):
                clients[sock].stop("client")

    def after_fork(self) -> None:
        self._watched = set()
        self._lock = threading.Lock()
        self._thread = None


def _gone(clients: dict) -> list:
    """The client sockets whose peer has closed: readable, and a peek reads nothing."""
    if not clients:
        return []
    poller = select.poll()
    by_fd = {}
    for sock in clients:
        try:
            fd = sock.fileno()
        except (OSError, ValueError):
            continue
        if fd >= 0:
            by_fd[fd] = sock
            poller.register(fd, select.POLLIN | select.POLLRDHUP if hasattr(select, "POLLRDHUP") else select.POLLIN)
    out = []
    for fd, events in poller.poll(0):
        sock = by_fd[fd]
        if events & (select.POLLHUP | select.POLLERR | getattr(select, "POLLRDHUP", 0)):
            out.append(sock)
            continue
        try:
            if sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b"":
                out.append(sock)
        except BlockingIOError:
            pass
        except OSError:
            out.append(sock)
    return out


WATCHDOG = Watchdog()
os.register_at_fork(after_in_child=WATCHDOG.after_fork)


class UpstreamResponse:
    """An upstream answer whose body has not been read yet.

    ``deadline`` (a monotonic time) bounds all reading still to come; ``set_read_timeout`` bounds each
    silence from the next read on. Both are kept by the watchdog, which also stops reading when
    ``client`` (the client's socket) closes."""

    __slots__ = ("status", "headers", "deadline", "_resp", "_closed", "_timeout", "_watch", "_timeout_message")

    def __init__(self, resp, *, client=None) -> None:
        self.status = resp.status
        self.headers = resp.headers
        self.deadline: float | None = None
        self._resp = resp
        self._closed = False
        self._timeout: float | None = None
        self._timeout_message = _IDLE
        self._watch = Watch(resp, client)
        WATCHDOG.add(self._watch)

    @property
    def client_gone(self) -> bool:
        return self._watch.reason == "client"

    def read(self) -> bytes:
        """The whole body, within ``deadline`` and MAX_BODY_BYTES (a runaway upstream must not hold a thread
        forever or exhaust memory)."""
        try:
            parts, size = [], 0
            for chunk in self.iter_bytes():
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    raise UpstreamProtocolError("upstream answer is larger than the limit")
                parts.append(chunk)
            return b"".join(parts)
        finally:
            self.close()

    def iter_bytes(self) -> Iterator[bytes]:
        """Body bytes as they arrive (one chunk of a chunked body per read at most), errors mapped.

        PERF: a chunked body is read with urllib3's ``read_chunked`` (one generator step per chunk, the path
        requests' own ``iter_content`` takes); anything else with ``read1``, which returns what has arrived."""
        raw = self._resp
        if raw.chunked and raw.supports_chunked_reads():
            read = raw.read_chunked(decode_content=True).__next__
        else:
            read = functools.partial(raw.read1, READ_SIZE)
        watch = self._watch
        while True:
            timeout, deadline = self._timeout, self.deadline
            if deadline is None:
                watch.expires = None if timeout is None else time.monotonic() + timeout
            else:
                now = time.monotonic()
                if deadline <= now:
                    raise UpstreamTimeout(self._timeout_message if timeout is not None else
                                          "upstream sent no content before the deadline")
                watch.expires = deadline if timeout is None else min(deadline, now + timeout)
            try:
                data = read()
            except StopIteration:
                data = b""
            except Exception as exc:  # noqa: BLE001 - mapped below; nothing from urllib3 may escape
                self._check_stopped()
                if self._closed:
                    return
                raise _body_error(exc) from None
            if not data:
                self._check_stopped()
                watch.expires = None
                raw.release_conn()  # read to its end: the connection goes back to the pool
                return
            yield data

    def _check_stopped(self) -> None:
        reason = self._watch.reason
        if reason == "deadline":
            raise UpstreamTimeout(self._timeout_message if self.deadline is None else
                                  "upstream sent no content before the deadline")
        if reason == "client":
            raise ClientGone("the client went away while waiting for the provider")

    def set_read_timeout(self, seconds: float | None, *, message: str = _IDLE) -> None:
        """Bound each silence between upstream bytes (first token vs idle), from the next read on."""
        self._timeout = seconds
        self._timeout_message = message

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        WATCHDOG.remove(self._watch)
        try:
            # a response not read to its end takes its connection down with it; the pool gets its place back
            self._resp.close()
            self._resp.release_conn()
        except Exception:  # noqa: BLE001 - closing must never raise into the server
            pass


def _body_error(exc: Exception):
    cause = exc
    while cause is not None:
        if isinstance(cause, (urllib3.exceptions.ReadTimeoutError, socket.timeout)):
            return UpstreamTimeout(_IDLE)
        cause = cause.__context__ or (cause.args[0] if cause.args and isinstance(cause.args[0], Exception) else None)
    return UpstreamProtocolError(_BROKE)


def send(req: UpstreamRequest, *, timeout: float, proxy: Proxy, stream: bool, read_timeout: float | None = None,
         client=None) -> UpstreamResponse:
    """Send one upstream request and return once the response headers are in.

    ``timeout`` bounds the connection and the wait for the headers. ``read_timeout`` (default ``timeout``)
    is the socket's own limit for any later silence: a backstop only, set at least as long as every
    deadline the watchdog keeps, because a socket timeout that fires ends the body for good. ``client``
    is the client's socket, watched while the body is read.
    """
    headers = req.headers
    if stream:
        headers.setdefault("Accept-Encoding", "identity")  # compressed SSE can arrive in bursts
    backstop = max(timeout, read_timeout or 0.0)
    return UpstreamResponse(_opened(req.method, req.url, headers, req.body, connect=min(CONNECT_TIMEOUT, timeout),
                                    read=backstop, proxy=proxy), client=client)


def _opened(method: str, url: str, headers: dict, body, *, connect: float, read: float, proxy: Proxy,
            failed: str = "could not connect to the provider"):
    """``_open`` with urllib3's errors turned into gateway errors; ``failed`` begins the message of those that
    are not timeouts."""
    if urllib3 is None:
        _load()
    errors = urllib3.exceptions
    try:
        return _open(method, url, headers, body, timeout=(connect, read), proxy=proxy)
    except errors.ProxyError:
        reason = "through the configured proxy"
    except errors.NewConnectionError as exc:  # before ConnectTimeoutError: urllib3 derives it from that
        reason = _reason(exc)
    except errors.ConnectTimeoutError:
        raise UpstreamTimeout("timed out connecting to the provider") from None
    except (errors.ReadTimeoutError, socket.timeout):
        raise UpstreamTimeout(f"request timed out after {read:g} seconds waiting for the provider") from None
    except errors.URLSchemeUnknown:
        reason = "invalid URL scheme"
    except (errors.HTTPError, OSError, ValueError) as exc:
        reason = _reason(exc)
    raise UpstreamConnectError(f"{failed} ({reason})")


def _reason(exc: Exception) -> str:
    text = str(exc).lower()
    for needle, label in (("refused", "connection refused"), ("reset", "connection reset"),
                          ("name or service", "name resolution failed"), ("nodename", "name resolution failed"),
                          ("remote end closed", "connection closed without response"),
                          ("aborted", "connection aborted"), ("ssl", "TLS error")):
        if needle in text:
            return label
    return exc.__class__.__name__


def post_form(url: str, data: dict, *, timeout: float = 10.0) -> tuple[int, bytes]:
    """A small form POST for credential exchanges (OAuth2 token endpoints)."""
    try:
        resp = _opened("POST", url, {"Content-Type": "application/x-www-form-urlencoded"}, urlencode(data).encode(),
                       connect=min(CONNECT_TIMEOUT, timeout), read=timeout, proxy=Proxy(),
                       failed="credential exchange failed")
        return resp.status, _read_all(resp)
    except (UpstreamTimeout, UpstreamProtocolError) as exc:
        raise UpstreamConnectError(f"credential exchange failed ({exc.message})") from None


def get(url: str, *, headers: dict | None = None, timeout: float = 5.0, proxy: Proxy | None = None) -> tuple[int, bytes]:
    """A small GET (metadata server, model lists, a price list)."""
    try:
        resp = _opened("GET", url, dict(headers or {}), None, connect=min(CONNECT_TIMEOUT, timeout), read=timeout,
                       proxy=proxy or Proxy(), failed="request failed")
    except UpstreamTimeout:
        raise UpstreamTimeout("timed out") from None
    return resp.status, _read_all(resp)


def _read_all(resp) -> bytes:
    """A small answer's whole body (within MAX_BODY_BYTES); the connection goes back to its pool only when the
    body was read to its end (one with bytes left unread would hand them to the next request)."""
    complete = False
    try:
        data = resp.read(MAX_BODY_BYTES + 1)
        if len(data) > MAX_BODY_BYTES:
            raise UpstreamProtocolError("upstream answer is larger than the limit")
        complete = True
        return data
    except (urllib3.exceptions.ReadTimeoutError, socket.timeout):
        raise UpstreamTimeout("timed out") from None
    except (urllib3.exceptions.HTTPError, OSError):
        raise UpstreamProtocolError(_BROKE) from None
    finally:
        if not complete:
            resp.close()
        resp.release_conn()
