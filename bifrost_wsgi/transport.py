"""The only module that talks HTTP (with ``requests``): pooled per-thread connections, read deadlines,
exception mapping. Everything here goes through documented interfaces of requests and urllib3.

* One ``requests`` HTTPAdapter (a urllib3 pool) per thread and proxy setting, created lazily, so nothing
  socket-bearing exists before gunicorn forks and no pool is shared between threads.
* Requests go straight to the adapter: ``Session.request`` re-merges settings, cookies, hooks and
  environment variables on every call (a third of the client-side cost in profiles), none of which we want.
  Consequences, all deliberate: proxies come from ``proxy_config`` (type ``environment`` reads the
  ``*_PROXY`` variables), no cookies are kept between calls, no redirects are followed, and the CA bundle is
  ``REQUESTS_CA_BUNDLE``/``SSL_CERT_FILE`` when set (read once), else certifi's.
* Bodies are read with urllib3's ``HTTPResponse.read1``: whatever has arrived, one chunk of a chunked body
  at a time, whatever ``io.DEFAULT_BUFFER_SIZE`` is.
* Read deadlines (first token, idle silence, the request's own deadline) are kept by one watchdog thread per
  process, which stops a read that overran with urllib3's ``HTTPResponse.shutdown()``: a socket timeout
  cannot change in the middle of a body through public means, and one that fires kills the stream anyway.
  The same watchdog notices a client that went away while its request waits for the upstream.
* ``requests``/urllib3 exceptions become gateway errors here, and nowhere else.
"""

from __future__ import annotations

import functools
import os
import select
import socket
import threading
import time
from dataclasses import dataclass
from typing import Iterator
from urllib.parse import quote

from . import __version__
from .errors import ClientGone, UpstreamConnectError, UpstreamProtocolError, UpstreamTimeout


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    method: str
    url: str
    headers: dict[str, str]
    # bytes, or an upload streamed from its spool: an object with len() (the Content-Length) that yields
    # bytes again for each attempt, which requests sends as it is iterated
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
READ_SIZE = 64 * 1024
_IDLE = "upstream stopped sending data (idle timeout)"
_BROKE = "upstream connection broke while reading the response"
# read once: locked-down hosts with a TLS-inspecting proxy point these at their CA bundle
_VERIFY = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("SSL_CERT_FILE") or True


# ``requests`` is imported at the first upstream call, not with the package: importing it takes ~100 ms,
# which building the app, checking a config and starting a worker need not pay. The gunicorn master
# (deploy/gunicorn.conf.py) imports it once before forking, so workers start with it loaded.
requests = HTTPAdapter = CaseInsensitiveDict = get_environ_proxies = ReadTimeoutError = ProtocolError = None


def _load() -> None:
    global requests, HTTPAdapter, CaseInsensitiveDict, get_environ_proxies, ReadTimeoutError, ProtocolError
    import requests as _requests
    from requests.adapters import HTTPAdapter as _Adapter
    from requests.structures import CaseInsensitiveDict as _Headers
    from requests.utils import get_environ_proxies as _environ_proxies
    from urllib3.exceptions import HTTPError as _UrllibError, ReadTimeoutError as _ReadTimeout

    HTTPAdapter, CaseInsensitiveDict, get_environ_proxies, ReadTimeoutError, ProtocolError = (
        _adapter_class(_Adapter, _requests.Response, _Headers), _Headers, _environ_proxies, _ReadTimeout,
        _UrllibError)
    requests = _requests  # last: it is the "loaded" flag


def _adapter_class(base, response_class, headers_class):
    """requests' HTTPAdapter without the per-call work a gateway never needs repeated, through the hooks it
    offers for subclassing. PERF: together ~30 us of every upstream call in profiles.

    * the pool's key attributes are worked out once per origin (scheme, host, port) and TLS setting
      instead of re-parsing the URL on every call (the pool itself is still looked up each time: the pool
      manager may have evicted it);
    * without a proxy the request target is the URL's path and query, cut from the URL as it is;
    * the response is built without cookie extraction (cookies are never kept) or encoding sniffing (bodies
      are read as bytes)."""

    class Adapter(base):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self._origins: dict[tuple, tuple[dict, dict]] = {}

        def get_connection_with_tls_context(self, request, verify, proxies=None, cert=None):
            if proxies or cert is not None:
                return super().get_connection_with_tls_context(request, verify, proxies=proxies, cert=cert)
            url = request.url
            cut = _path_start(url)
            key = (url[:cut] if cut > 0 else url, verify)
            attrs = self._origins.get(key)
            if attrs is None:
                attrs = self.build_connection_pool_key_attributes(request, verify, cert)
                if len(self._origins) < 256:  # origins come from the config: a handful
                    self._origins[key] = attrs
            host_params, pool_kwargs = attrs
            return self.poolmanager.connection_from_host(**host_params, pool_kwargs=pool_kwargs)

        def request_url(self, request, proxies):
            url = request.url
            cut = _path_start(url)
            if proxies or cut < 0 or "#" in url:
                return super().request_url(request, proxies)
            return url[cut:]

        def build_response(self, req, resp):
            response = response_class()
            response.status_code = resp.status
            response.headers = headers_class(resp.headers)
            response.raw = resp
            response.reason = resp.reason
            response.url = req.url
            response.request = req
            response.connection = self
            return response

    return Adapter


def _path_start(url: str) -> int:
    """Where the path begins in an absolute URL (-1 when it has none): what precedes is the origin."""
    return url.find("/", url.find("://") + 3)


def _proxy_dict(proxy: Proxy) -> dict | None:
    if proxy.type in ("none", "environment"):
        return None
    url = proxy.url
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = ("socks5h" if proxy.type == "socks5" else "http"), url
    elif proxy.type == "socks5" and scheme == "socks5":
        scheme = "socks5h"  # resolve names through the proxy, as locked-down networks require
    if proxy.username:
        rest = f"{quote(proxy.username, safe='')}:{quote(proxy.password, safe='')}@{rest}"
    full = f"{scheme}://{rest}"
    return {"http": full, "https": full}


class _Pools(threading.local):
    def __init__(self) -> None:
        self.by_proxy: dict[Proxy, tuple[HTTPAdapter, dict | None]] = {}


_local = _Pools()


def _adapter_for(proxy: Proxy) -> tuple[HTTPAdapter, dict | None]:
    entry = _local.by_proxy.get(proxy)
    if entry is None:
        # one request at a time per thread: a few connections per host cover keep-alive reuse
        entry = (HTTPAdapter(pool_connections=16, pool_maxsize=4, max_retries=0), _proxy_dict(proxy))
        _local.by_proxy[proxy] = entry
    return entry


def _prepared(method: str, url: str, headers: dict, body: bytes | None) -> requests.PreparedRequest:
    p = requests.PreparedRequest()
    p.method = method
    p.url = url
    h = CaseInsensitiveDict(_DEFAULT_HEADERS)
    h.update(headers)
    if body is not None:
        h["Content-Length"] = str(len(body))
    p.headers = h
    p.body = body
    p.hooks = {"response": []}
    p._cookies = None
    return p


def _send(method: str, url: str, headers: dict, body: bytes | None, *, timeout, proxy: Proxy,
          stream: bool) -> requests.Response:
    if requests is None:
        _load()
    adapter, proxies = _adapter_for(proxy)
    if proxy.type == "environment":
        proxies = get_environ_proxies(url)
    # a CA bundle path makes requests stat() it on every call: only TLS needs it
    verify = _VERIFY if url[:6].lower() == "https:" else True
    return adapter.send(_prepared(method, url, headers, body), stream=stream, timeout=timeout, verify=verify,
                        cert=None, proxies=proxies or {})


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

    PERF: a read costs the reader one clock reading and one attribute store; the thread wakes every TICK
    while something is watched (deadlines hold to within TICK) and sleeps otherwise."""

    TICK = 0.05

    def __init__(self) -> None:
        self._watched: set[Watch] = set()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def add(self, watch: Watch) -> None:
        with self._cond:
            idle = not self._watched
            self._watched.add(watch)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="bifrost-watchdog", daemon=True)
                self._thread.start()
            elif idle:
                self._cond.notify()  # it sleeps only while nothing is watched

    def remove(self, watch: Watch) -> None:
        self._watched.discard(watch)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._watched:
                    self._cond.wait()
            time.sleep(self.TICK)
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
        self._cond = threading.Condition()
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

    def __init__(self, resp: requests.Response, *, client=None) -> None:
        self.status = resp.status_code
        self.headers = resp.headers
        self.deadline: float | None = None
        self._resp = resp
        self._closed = False
        self._timeout: float | None = None
        self._timeout_message = _IDLE
        self._watch = Watch(resp.raw, client)
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
        raw = self._resp.raw
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
            # close() on a streamed response that was not read to its end discards the connection
            self._resp.close()
        except Exception:  # noqa: BLE001 - closing must never raise into the server
            pass


def _body_error(exc: Exception):
    cause = exc
    while cause is not None:
        if isinstance(cause, (ReadTimeoutError, socket.timeout, requests.exceptions.ReadTimeout)):
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
    try:
        resp = _send(req.method, req.url, headers, req.body, timeout=(min(CONNECT_TIMEOUT, timeout), backstop),
                     proxy=proxy, stream=True)
    except requests.exceptions.ConnectTimeout:
        raise UpstreamTimeout("timed out connecting to the provider") from None
    except requests.exceptions.ReadTimeout:
        raise UpstreamTimeout(f"request timed out after {backstop:g} seconds waiting for the provider") from None
    except requests.exceptions.ProxyError:
        raise UpstreamConnectError("could not connect through the configured proxy") from None
    except requests.exceptions.InvalidSchema as exc:
        if "SOCKS" in str(exc):
            raise UpstreamConnectError("socks5 proxies need PySocks: pip install 'requests[socks]'") from None
        raise UpstreamConnectError("invalid provider URL scheme") from None
    except requests.exceptions.ConnectionError as exc:
        raise UpstreamConnectError(f"could not connect to the provider ({_reason(exc)})") from None
    except (requests.exceptions.RequestException, ValueError) as exc:
        raise UpstreamConnectError(f"request to the provider failed ({exc.__class__.__name__})") from None
    return UpstreamResponse(resp, client=client)


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
    from urllib.parse import urlencode

    body = urlencode(data).encode()
    try:
        resp = _send("POST", url, {"Content-Type": "application/x-www-form-urlencoded"}, body,
                     timeout=(min(CONNECT_TIMEOUT, timeout), timeout), proxy=Proxy(), stream=False)
        return resp.status_code, resp.content
    except (requests.exceptions.RequestException, ValueError) as exc:
        raise UpstreamConnectError(f"credential exchange failed ({exc.__class__.__name__})") from None


def get(url: str, *, headers: dict | None = None, timeout: float = 5.0, proxy: Proxy | None = None) -> tuple[int, bytes]:
    """A small GET (metadata server, model lists)."""
    try:
        resp = _send("GET", url, headers or {}, None, timeout=(min(CONNECT_TIMEOUT, timeout), timeout),
                     proxy=proxy or Proxy(), stream=False)
        return resp.status_code, resp.content
    except requests.exceptions.Timeout:
        raise UpstreamTimeout("timed out") from None
    except (requests.exceptions.RequestException, ValueError) as exc:
        raise UpstreamConnectError(f"request failed ({exc.__class__.__name__})") from None
