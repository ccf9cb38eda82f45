"""The only module that talks HTTP (with ``requests``): pooled per-thread connections, exception mapping.

* One ``requests`` HTTPAdapter (a urllib3 pool) per thread and proxy setting, created lazily, so nothing
  socket-bearing exists before gunicorn forks and no pool is shared between threads.
* Requests go straight to the adapter: ``Session.request`` re-merges settings, cookies, hooks and
  environment variables on every call (a third of the client-side cost in profiles), none of which we want.
  Consequences, all deliberate: proxies come from ``proxy_config`` only (type ``environment`` reads the
  ``*_PROXY`` variables), no cookies are kept between calls, no redirects are followed, and the CA bundle is
  ``REQUESTS_CA_BUNDLE``/``SSL_CERT_FILE`` when set (read once), else certifi's.
* ``requests`` exceptions become gateway errors here, and nowhere else. A read timeout inside a body
  arrives as ``ConnectionError`` (the socket is dead afterwards), so it is mapped by its cause.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from typing import Iterator
from urllib.parse import quote

from . import __version__
from .chunked import ChunkedDecoder
from .config import Proxy
from .errors import UpstreamConnectError, UpstreamProtocolError, UpstreamTimeout
from .providers.base import UpstreamRequest

USER_AGENT = f"bifrost-wsgi/{__version__}"
CONNECT_TIMEOUT = 10.0
MAX_BODY_BYTES = 64 * 1024 * 1024  # a non-streamed answer (or error body) larger than this is refused
_DEFAULT_HEADERS = {"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate", "Connection": "keep-alive"}
READ_SIZE = 16 * 1024
_IDLE = "upstream stopped sending data (idle timeout)"
_BROKE = "upstream connection broke while reading the response"
# read once: locked-down hosts with a TLS-inspecting proxy point these at their CA bundle
_VERIFY = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("SSL_CERT_FILE") or True


# ``requests`` is imported at the first upstream call, not with the package: importing it takes ~100 ms,
# which building the app, checking a config and starting a worker need not pay. The gunicorn master
# (deploy/gunicorn.conf.py) imports it once before forking, so workers start with it loaded.
requests = HTTPAdapter = CaseInsensitiveDict = get_environ_proxies = ReadTimeoutError = None


def _load() -> None:
    global requests, HTTPAdapter, CaseInsensitiveDict, get_environ_proxies, ReadTimeoutError
    import requests as _requests
    from requests.adapters import HTTPAdapter as _Adapter
    from requests.structures import CaseInsensitiveDict as _Headers
    from requests.utils import get_environ_proxies as _environ_proxies
    from urllib3.exceptions import ReadTimeoutError as _ReadTimeout

    HTTPAdapter, CaseInsensitiveDict, get_environ_proxies, ReadTimeoutError = (
        _adapter_class(_Adapter, _requests.Response, _Headers), _Headers, _environ_proxies, _ReadTimeout)
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


class UpstreamResponse:
    """An upstream answer whose body has not been read yet (streams) or has (``body``)."""

    __slots__ = ("status", "headers", "deadline", "_resp", "_closed", "_timeout")

    def __init__(self, resp: requests.Response) -> None:
        self.status = resp.status_code
        self.headers = resp.headers
        # time.monotonic() by which reading must be over (the first token's); checked before every read,
        # because an upstream that sends only keep-alive comments never lets a per-read timeout fire
        self.deadline: float | None = None
        self._resp = resp
        self._closed = False
        self._timeout: float | None = None  # a read timeout to apply before the next read

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
        """Body chunks as they arrive, errors mapped. A chunked identity body is read below urllib3 (see
        chunked.py), anything else through ``iter_content``."""
        fp = _chunked_reader(self._resp)
        if fp is None:
            yield from self._iter_content()
            return
        decoder = ChunkedDecoder()
        feed = decoder.feed
        # PERF: the first read1 empties the reader's buffer (what came with the headers) or reads past it;
        # from then on the socket is read directly, without two Python layers of file objects per read
        read = fp.read1
        sock = _socket_of(self._resp)
        while not decoder.done:
            if self.deadline is not None or self._timeout is not None:
                self._before_read()
            try:
                data = read(READ_SIZE)
                if sock is not None:
                    read, sock = sock.recv, None
            except TimeoutError:
                if self._closed:
                    return
                raise UpstreamTimeout(_IDLE) from None
            except (OSError, ValueError, AttributeError) as exc:  # reset, or closed under us
                if self._closed:
                    return
                raise UpstreamProtocolError(f"upstream stream failed: {exc.__class__.__name__}") from None
            if not data:
                if self._closed:
                    return
                raise UpstreamProtocolError(_BROKE)
            body = feed(data)
            if body:
                yield body
        self._release()

    def _iter_content(self) -> Iterator[bytes]:
        it = self._resp.iter_content(chunk_size=None)
        while True:
            if self.deadline is not None or self._timeout is not None:
                self._before_read()
            try:
                chunk = next(it)
            except StopIteration:
                return
            except requests.exceptions.RequestException as exc:
                raise _body_error(exc) from None
            except (OSError, ValueError) as exc:  # a closed/shut-down socket under us
                if self._closed:
                    return
                raise UpstreamProtocolError(f"upstream stream failed: {exc.__class__.__name__}") from None
            if chunk:
                yield chunk

    def _before_read(self) -> None:
        """Apply a changed read timeout, and the deadline (what is left of it bounds the next read)."""
        seconds, self._timeout = self._timeout, None
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise UpstreamTimeout("upstream sent no content before the deadline")
            seconds = left if seconds is None else min(seconds, left)
        sock = _socket_of(self._resp)
        if sock is not None:
            try:
                sock.settimeout(seconds)
            except OSError:
                pass

    def _release(self) -> None:
        """The body was read to its end by hand: hand the connection back to the pool as urllib3 would."""
        raw = self._resp.raw
        try:
            raw._original_response.close()
            raw.release_conn()
        except Exception:  # noqa: BLE001 - then close() discards the connection instead
            pass

    def set_read_timeout(self, seconds: float) -> None:
        """Change the silence allowed between upstream bytes (first token vs idle), from the next read on.
        PERF: applied just before that read, not now: a stream's first bytes go out without waiting for
        the system call."""
        self._timeout = seconds

    def abort(self) -> None:
        """Wake a reader blocked in recv from another thread and drop the connection."""
        sock = _socket_of(self._resp)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            # close() on a streamed response releases (here: discards) the pooled connection
            self._resp.raw.close() if self._resp.raw is not None else None
            self._resp.close()
        except Exception:  # noqa: BLE001 - closing must never raise into the server
            pass


def _chunked_reader(resp: requests.Response):
    """The buffered socket reader of a chunked body without content coding, or None (then urllib3 reads)."""
    raw = resp.raw
    if not getattr(raw, "chunked", False) or resp.status_code in (204, 304):
        return None
    coding = resp.headers.get("Content-Encoding")
    if coding and coding.strip().lower() != "identity":
        return None
    fp = getattr(getattr(raw, "_fp", None), "fp", None)
    return fp if hasattr(fp, "read1") else None


def _socket_of(resp: requests.Response):
    # urllib3 2.x: HTTPResponse._fp is http.client.HTTPResponse whose fp wraps the socket
    try:
        fp = resp.raw._fp.fp  # type: ignore[union-attr]
        return fp.raw._sock
    except AttributeError:
        return None


def _body_error(exc: Exception):
    cause = exc
    while cause is not None:
        if isinstance(cause, (ReadTimeoutError, socket.timeout, requests.exceptions.ReadTimeout)):
            return UpstreamTimeout(_IDLE)
        cause = cause.__context__ or (cause.args[0] if cause.args and isinstance(cause.args[0], Exception) else None)
    return UpstreamProtocolError(_BROKE)


def send(req: UpstreamRequest, *, timeout: float, proxy: Proxy, stream: bool) -> UpstreamResponse:
    """Send one upstream request and return once the response headers are in.

    ``timeout`` bounds the wait for the headers (and, later, each silence in the body).
    """
    headers = req.headers
    if stream:
        headers.setdefault("Accept-Encoding", "identity")  # compressed SSE can arrive in bursts
    try:
        resp = _send(req.method, req.url, headers, req.body, timeout=(min(CONNECT_TIMEOUT, timeout), timeout),
                     proxy=proxy, stream=True)
    except requests.exceptions.ConnectTimeout:
        raise UpstreamTimeout("timed out connecting to the provider") from None
    except requests.exceptions.ReadTimeout:
        raise UpstreamTimeout(f"request timed out after {timeout:g} seconds waiting for the provider") from None
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
    return UpstreamResponse(resp)


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
