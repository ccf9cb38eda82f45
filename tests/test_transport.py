"""transport.py over real sockets: what goes on the wire for each URL form, TLS verified against the
configured CA bundle, HTTPS through a CONNECT proxy with credentials, plain HTTP through an absolute-URI
proxy, and connections reused per origin (the rest of transport is tested end to end in the resilience,
streaming and hardening tests)."""

from __future__ import annotations

import base64
import ssl
import subprocess

import pytest
import requests
import urllib3

from bifrost_wsgi import transport
from bifrost_wsgi.errors import UpstreamConnectError
from tests.conftest import provider_config
from tests.fakes import ForwardProxy, Reply, chat_completion, openai_chunks, sse

URLS = [
    "http://127.0.0.1:8080/v1/chat/completions",
    "https://api.openai.com/v1/chat/completions",
    "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse",
    "https://x.openai.azure.com/openai/deployments/d/chat/completions?api-version=2024-10-21",
    "http://[::1]:9000/a/b?c=d&e=%2F",
    "http://user:pa%40ss@host:1/path",
    "http://host:1",
    "http://host:1?x=1",
    "http://host/p#frag",
]


@pytest.mark.parametrize("url", URLS)
def test_request_target_is_what_urllib3_sends_for_the_url(url):
    transport._load()
    parsed = urllib3.util.parse_url(url)
    origin, target = transport._origin_and_target(url)
    assert target == parsed.request_uri
    assert urllib3.util.parse_url(origin).host == parsed.host
    assert urllib3.util.parse_url(origin).port == parsed.port
    assert "@" not in origin and "#" not in origin + target


@pytest.mark.parametrize("given,sent", [
    ({}, {"user-agent": transport.USER_AGENT, "accept-encoding": "gzip, deflate", "connection": "keep-alive"}),
    ({"user-agent": "mine", "ACCEPT-ENCODING": "identity"}, {"user-agent": "mine", "accept-encoding": "identity"}),
], ids=["defaults", "the caller's win whatever their case"])
def test_default_headers_fill_in_what_the_caller_left_out(given, sent):
    out = {k.lower(): v for k, v in transport._headers(given, b"{}").items()}
    assert {k: out[k] for k in sent} == sent
    assert out["content-length"] == "2"
    assert len(out) == len({k.lower() for k in out})  # no header twice under two spellings


# --- TLS ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """A throwaway CA and a certificate it signed for 127.0.0.1 (the openssl command line)."""
    d = tmp_path_factory.mktemp("tls")

    def run(*args):
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "ca.key",
        "-out", "ca.pem", "-days", "2", "-subj", "/CN=bifrost-wsgi test CA",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "leaf.key",
        "-out", "leaf.csr", "-subj", "/CN=127.0.0.1")
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                               "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n")
    run("x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "leaf.pem",
        "-days", "2", "-extfile", "ext.cnf")
    return d


@pytest.fixture
def tls_upstream(upstream, certs):
    """The fake upstream speaking TLS with the test CA's certificate."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certs / "leaf.pem", certs / "leaf.key")
    upstream.server.socket = ctx.wrap_socket(upstream.server.socket, server_side=True)
    upstream.tls_url = upstream.url.replace("http://", "https://")
    return upstream


@pytest.fixture
def trusting(monkeypatch):
    """Fresh pools that trust the given CA bundle (as REQUESTS_CA_BUNDLE does when the process starts)."""
    pools = transport._Pools()

    def use(bundle):
        monkeypatch.setattr(transport, "_CA_BUNDLE", bundle and str(bundle))
        monkeypatch.setattr(transport, "_POOLS", pools)
    yield use
    pools.close()


def _chat(url: str, *, stream: bool = False) -> requests.Response:
    return requests.post(url + "/v1/chat/completions", json={"model": "openai/gpt-4o-mini", "stream": stream,
                                                             "messages": [{"role": "user", "content": "hi"}]})


def test_https_upstream_verified_against_the_ca_bundle(tls_upstream, certs, trusting, serve):
    trusting(certs / "ca.pem")
    url = serve({"providers": {"openai": provider_config(tls_upstream.tls_url)}})
    tls_upstream.add(Reply(json=chat_completion("over TLS")), Reply(chunks=sse(*openai_chunks("str", "eamed"))))
    assert _chat(url).json()["choices"][0]["message"]["content"] == "over TLS"
    r = _chat(url, stream=True)
    assert r.status_code == 200 and '"eamed"' in r.text and r.text.rstrip().endswith("data: [DONE]")


def test_https_upstream_with_an_untrusted_certificate_is_refused(tls_upstream, trusting, serve):
    trusting(None)  # certifi's bundle: it does not know the test CA
    url = serve({"providers": {"openai": provider_config(tls_upstream.tls_url)}})
    r = _chat(url)
    assert r.status_code == 502
    assert r.json()["error"]["message"] == "could not connect to the provider (TLS error)"
    assert tls_upstream.requests == []


# --- proxies ----------------------------------------------------------------------------------------------


@pytest.fixture
def connect_proxy():
    p = ForwardProxy()
    yield p
    p.close()


BASIC = "Basic " + base64.b64encode(b"proxy-user:proxy-p@ss").decode()


@pytest.mark.parametrize("credentials", ["in proxy_config", "in the URL", "none"])
def test_https_through_a_connect_proxy(tls_upstream, certs, trusting, connect_proxy, serve, credentials):
    trusting(certs / "ca.pem")
    proxy_config = {"type": "http", "url": connect_proxy.url}
    if credentials == "in proxy_config":
        proxy_config.update(username="proxy-user", password="proxy-p@ss")
    elif credentials == "in the URL":
        proxy_config["url"] = connect_proxy.url.replace("http://", "http://proxy-user:proxy-p%40ss@")
    section = {**provider_config(tls_upstream.tls_url), "proxy_config": proxy_config}
    url = serve({"providers": {"openai": section}})
    tls_upstream.add(Reply(json=chat_completion("tunnelled")))
    assert _chat(url).json()["choices"][0]["message"]["content"] == "tunnelled"
    port = tls_upstream.server.server_address[1]
    assert connect_proxy.seen == [f"CONNECT 127.0.0.1:{port}"]
    assert connect_proxy.auth == [None if credentials == "none" else BASIC]
    assert "proxy-authorization" not in tls_upstream.requests[0].headers  # the proxy's secret stays with it


def test_http_through_a_proxy_sends_the_absolute_uri_with_credentials(upstream, connect_proxy, serve):
    proxy_config = {"type": "http", "url": connect_proxy.url, "username": "proxy-user", "password": "proxy-p@ss"}
    url = serve({"providers": {"openai": {**provider_config(upstream.url), "proxy_config": proxy_config}}})
    upstream.add(Reply(json=chat_completion("forwarded")))
    assert _chat(url).json()["choices"][0]["message"]["content"] == "forwarded"
    assert connect_proxy.seen == [f"POST {upstream.url}/v1/chat/completions"]
    assert connect_proxy.auth == [BASIC]


def test_socks_proxy_without_pysocks_is_a_clear_error():
    pytest.importorskip("urllib3")
    try:
        import socks  # noqa: F401
        pytest.skip("PySocks is installed here")
    except ImportError:
        pass
    with pytest.raises(UpstreamConnectError, match="socks5 proxies need PySocks"):
        transport.get("http://127.0.0.1:9/", proxy=transport.Proxy(type="socks5", url="127.0.0.1:1080"))


# --- pooling ----------------------------------------------------------------------------------------------


def test_connections_are_reused_per_origin(upstream, serve):
    url = serve({"providers": {"openai": provider_config(upstream.url)}})
    upstream.handler = lambda rec: Reply(json=chat_completion())
    with requests.Session() as client:
        for _ in range(20):
            assert client.post(url + "/v1/chat/completions", json={
                "model": "openai/m", "messages": [{"role": "user", "content": "x"}]}).status_code == 200
    assert len(upstream.requests) == 20
    assert upstream.connections == 1, f"{upstream.connections} connections for 20 sequential calls"


def test_pools_beyond_the_bound_are_closed_oldest_first(monkeypatch):
    transport._load()
    pools = transport._Pools()
    monkeypatch.setattr(pools, "MAX_ORIGINS", 2)
    first, second, third = (pools.for_origin(f"http://127.0.0.1:{port}") for port in (1, 2, 3))
    assert list(pools.origins.values()) == [second, third]
    assert first.pool is None  # urllib3's mark of a closed pool: its connections are closed, not leaked
    assert pools.for_origin("http://127.0.0.1:3") is third
    pools.close()
