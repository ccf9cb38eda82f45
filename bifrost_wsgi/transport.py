"""The only module that talks HTTP (with ``requests``): pooled per-thread sessions, exception mapping.

* One ``requests.Session`` per thread and proxy setting, created lazily, so nothing socket-bearing exists
  before gunicorn forks and no session is shared between threads.
* ``trust_env`` is off: proxies come from ``proxy_config`` only (type ``environment`` opts back in), and
  requests stops reading proxy variables and netrc on every call.
* Cookies set by upstreams are refused, so nothing leaks from one caller to the next.
* ``requests`` exceptions become gateway errors here, and nowhere else. A read timeout inside a body
  arrives as ``ConnectionError`` (the socket is dead afterwards), so it is mapped by its cause.
"""

from __future__ import annotations

import socket
import threading
from http.cookiejar import DefaultCookiePolicy
from typing import Iterator

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ReadTimeoutError

from . import __version__
from .config import Proxy
from .errors import UpstreamConnectError, UpstreamProtocolError, UpstreamTimeout
from .providers.base import UpstreamRequest

USER_AGENT = f"bifrost-wsgi/{__version__}"
CONNECT_TIMEOUT = 10.0


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
        from urllib.parse import quote

        rest = f"{quote(proxy.username, safe='')}:{quote(proxy.password, safe='')}@{rest}"
    full = f"{scheme}://{rest}"
    return {"http": full, "https": full}


class _Sessions(threading.local):
    def __init__(self) -> None:
        self.by_proxy: dict[Proxy, requests.Session] = {}


_local = _Sessions()


def session_for(proxy: Proxy) -> requests.Session:
    s = _local.by_proxy.get(proxy)
    if s is None:
        s = requests.Session()
        s.trust_env = proxy.type == "environment"
        s.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
        adapter = HTTPAdapter(pool_connections=16, pool_maxsize=4, max_retries=0)
        s.mount("http://", adapter)
        s.mount("https://", adapter)
        s.headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate", "Connection": "keep-alive"}
        proxies = _proxy_dict(proxy)
        if proxies:
            s.proxies = proxies
        _local.by_proxy[proxy] = s
    return s


class UpstreamResponse:
    """An upstream answer whose body has not been read yet (streams) or has (``body``)."""

    __slots__ = ("status", "headers", "_resp", "_closed")

    def __init__(self, resp: requests.Response) -> None:
        self.status = resp.status_code
        self.headers = resp.headers
        self._resp = resp
        self._closed = False

    def read(self) -> bytes:
        try:
            return self._resp.content
        except requests.exceptions.RequestException as exc:
            raise _body_error(exc) from None
        finally:
            self.close()

    def iter_bytes(self) -> Iterator[bytes]:
        """Body chunks as they arrive (``iter_content(chunk_size=None)``), errors mapped."""
        it = self._resp.iter_content(chunk_size=None)
        while True:
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

    def set_read_timeout(self, seconds: float) -> None:
        """Change the silence allowed between upstream bytes from now on (first token vs idle)."""
        sock = _socket_of(self._resp)
        if sock is not None:
            try:
                sock.settimeout(seconds)
            except OSError:
                pass

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
            return UpstreamTimeout("upstream stopped sending data (idle timeout)")
        cause = cause.__context__ or (cause.args[0] if cause.args and isinstance(cause.args[0], Exception) else None)
    return UpstreamProtocolError("upstream connection broke while reading the response")


def send(req: UpstreamRequest, *, timeout: float, proxy: Proxy, stream: bool) -> UpstreamResponse:
    """Send one upstream request and return once the response headers are in.

    ``timeout`` bounds the wait for the headers (and, later, each silence in the body).
    """
    session = session_for(proxy)
    headers = req.headers
    if stream:
        headers.setdefault("Accept-Encoding", "identity")  # compressed SSE can arrive in bursts
    try:
        resp = session.request(req.method, req.url, data=req.body, headers=headers,
                               timeout=(min(CONNECT_TIMEOUT, timeout), timeout), stream=True,
                               allow_redirects=False)
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
    except requests.exceptions.RequestException as exc:
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
    try:
        resp = session_for(Proxy()).post(url, data=data, timeout=(min(CONNECT_TIMEOUT, timeout), timeout))
        return resp.status_code, resp.content
    except requests.exceptions.RequestException as exc:
        raise UpstreamConnectError(f"credential exchange failed ({exc.__class__.__name__})") from None


def get(url: str, *, headers: dict | None = None, timeout: float = 5.0, proxy: Proxy | None = None) -> tuple[int, bytes]:
    """A small GET (metadata server, model lists)."""
    try:
        resp = session_for(proxy or Proxy()).get(url, headers=headers or {}, timeout=(min(CONNECT_TIMEOUT, timeout), timeout),
                                                 allow_redirects=False)
        return resp.status_code, resp.content
    except requests.exceptions.Timeout:
        raise UpstreamTimeout("timed out") from None
    except requests.exceptions.RequestException as exc:
        raise UpstreamConnectError(f"request failed ({exc.__class__.__name__})") from None
