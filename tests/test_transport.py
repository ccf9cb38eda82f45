"""transport.py's adapter shortcuts give what requests' own HTTPAdapter gives (the rest of transport is
tested end to end, over real HTTP, in the resilience and streaming tests)."""

import pytest
import requests
from requests.adapters import HTTPAdapter

from bifrost_wsgi import transport

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


@pytest.fixture(scope="module")
def adapters():
    transport._load()
    ours, theirs = transport.HTTPAdapter(), HTTPAdapter()
    yield ours, theirs
    ours.close()
    theirs.close()


def _prepared(url):
    p = requests.PreparedRequest()
    p.method, p.url, p.headers, p.body = "POST", url, {}, None
    return p


@pytest.mark.parametrize("url", URLS)
@pytest.mark.parametrize("proxies", [{}, {"http": "http://proxy:3128", "https": "http://proxy:3128"}],
                         ids=["direct", "proxied"])
def test_request_target_is_what_requests_sends(adapters, url, proxies):
    ours, theirs = adapters
    assert ours.request_url(_prepared(url), proxies) == theirs.request_url(_prepared(url), proxies)


@pytest.mark.parametrize("url", URLS[:6])
def test_connection_pool_is_the_one_requests_would_use(adapters, url):
    ours, _ = adapters
    first = ours.get_connection_with_tls_context(_prepared(url), True)
    again = ours.get_connection_with_tls_context(_prepared(url + "x"), True)
    fresh = HTTPAdapter.get_connection_with_tls_context(ours, _prepared(url), True)
    assert first is again is fresh
    bundle = "/etc/ssl/certs/ca-certificates.crt"
    other_tls = ours.get_connection_with_tls_context(_prepared(url), bundle)
    assert other_tls is HTTPAdapter.get_connection_with_tls_context(ours, _prepared(url), bundle)
