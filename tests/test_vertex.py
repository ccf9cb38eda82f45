"""Vertex AI: per-model routing (Gemini vs Claude), URLs, bodies, and the three ways to get an access token,
against a fake upstream that plays the model endpoint, the OAuth token endpoint and the GCE metadata server.

Fixtures (tests/fixtures/vertex/): <case>.request.json → <case>.upstream.json (exact body),
claude.response.json → claude.expected.json, claude.stream → claude.chunks.json.
"""

from __future__ import annotations

import base64
import json
import sys
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs

import openai
import pytest

from bifrost_wsgi import errors as E
from bifrost_wsgi.wire import google_auth, sse
from bifrost_wsgi.providers import gemini, vertex
from bifrost_wsgi.providers.base import Key, Target
from bifrost_wsgi.providers.registry import ROWS
from bifrost_wsgi.schema import parse_request
from tests.fakes import Reply

FIXTURES = Path(__file__).parent / "fixtures" / "vertex"
GEMINI_FIXTURES = Path(__file__).parent / "fixtures" / "gemini"
CREATED = 1730000000
PROJECT = "my-proj"
TOKEN = "ya29.test-ACCESS-token"


def load(name: str, folder: Path = FIXTURES):
    return json.loads((folder / name).read_text(encoding="utf-8"))


def target(model: str, *, region: str | None = "us-east5", base_url: str | None = None) -> Target:
    row = ROWS["vertex"]
    conf = {"project_id": PROJECT}
    if region:
        conf["region"] = region
    return Target("vertex", model, base_url or row.base_url, Key(settings=conf), row)


@pytest.fixture(autouse=True)
def _fresh_token_cache():
    google_auth.clear_cache()
    yield
    google_auth.clear_cache()


# --- routing, URLs and bodies ------------------------------------------------------------------------

# (model, region, configured base_url, stream, expected URL)
URLS = [
    ("gemini-2.5-flash", "us-east5", None, False,
     "https://us-east5-aiplatform.googleapis.com/v1/projects/my-proj/locations/us-east5/publishers/google/models/"
     "gemini-2.5-flash:generateContent"),
    ("gemini-2.5-flash", "europe-west4", None, True,
     "https://europe-west4-aiplatform.googleapis.com/v1/projects/my-proj/locations/europe-west4/publishers/google/"
     "models/gemini-2.5-flash:streamGenerateContent?alt=sse"),
    ("gemini-3-pro-preview", "global", None, False,
     "https://aiplatform.googleapis.com/v1/projects/my-proj/locations/global/publishers/google/models/"
     "gemini-3-pro-preview:generateContent"),
    ("gemini-2.0-flash", None, None, False,
     "https://us-central1-aiplatform.googleapis.com/v1/projects/my-proj/locations/us-central1/publishers/google/"
     "models/gemini-2.0-flash:generateContent"),
    ("claude-sonnet-4-5@20250929", "us-east5", None, False,
     "https://us-east5-aiplatform.googleapis.com/v1/projects/my-proj/locations/us-east5/publishers/anthropic/models/"
     "claude-sonnet-4-5@20250929:rawPredict"),
    ("claude-sonnet-4-5@20250929", "global", None, True,
     "https://aiplatform.googleapis.com/v1/projects/my-proj/locations/global/publishers/anthropic/models/"
     "claude-sonnet-4-5@20250929:streamRawPredict"),
    ("claude-3-5-haiku@20241022", "us-east5", "https://vertex-proxy.internal:8443", False,
     "https://vertex-proxy.internal:8443/v1/projects/my-proj/locations/us-east5/publishers/anthropic/models/"
     "claude-3-5-haiku@20241022:rawPredict"),
    ("gemini-2.5-pro", "global", "http://127.0.0.1:9", True,
     "http://127.0.0.1:9/v1/projects/my-proj/locations/global/publishers/google/models/"
     "gemini-2.5-pro:streamGenerateContent?alt=sse"),
]


@pytest.mark.parametrize("model,region,base,stream,url", URLS)
def test_url(model, region, base, stream, url):
    req = parse_request({"model": f"vertex/{model}", "messages": [{"role": "user", "content": "hi"}]})
    up = vertex.ADAPTER.build_request(req, target(model, region=region, base_url=base), stream=stream)
    assert up.url == url
    assert up.headers["Accept"] == ("text/event-stream" if stream else "application/json")
    assert "Authorization" not in up.headers  # credentials.py adds the bearer token


@pytest.mark.parametrize("case", ["claude", "claude_stream", "gemini"])
def test_request_golden(case):
    req = parse_request(load(f"{case}.request.json"))
    up = vertex.ADAPTER.build_request(req, target(req.model), stream=req.stream)
    assert json.loads(up.body) == load(f"{case}.upstream.json")


def test_claude_body_is_the_anthropic_body_without_model():
    body = json.loads(vertex.ADAPTER.build_request(parse_request(load("claude.request.json")),
                                                   target("claude-sonnet-4-5@20250929"), stream=False).body)
    assert body["anthropic_version"] == "vertex-2023-10-16" and "model" not in body


def test_gemini_body_is_the_gemini_body():
    """Every Gemini golden request builds the same body on Vertex."""
    for path in sorted(GEMINI_FIXTURES.glob("*.upstream.json")):
        case = path.name[: -len(".upstream.json")]
        req = parse_request(load(f"{case}.request.json", GEMINI_FIXTURES))
        up = vertex.ADAPTER.build_request(req, target(req.model), stream=False)
        assert json.loads(up.body) == json.loads(path.read_text()), case


def test_claude_response_golden():
    t = target("claude-sonnet-4-5@20250929")
    out = vertex.ADAPTER.parse_response((FIXTURES / "claude.response.json").read_bytes(), t)
    assert {**out, "created": CREATED} == load("claude.expected.json")


def test_gemini_response_uses_the_gemini_translator():
    out = vertex.ADAPTER.parse_response((GEMINI_FIXTURES / "vertex_shape.response.json").read_bytes(),
                                        target("gemini-2.0-flash-001"))
    assert out == load("vertex_shape.expected.json", GEMINI_FIXTURES)


def test_claude_stream_golden():
    t = target("claude-opus-4-1@20250805")
    stream = vertex.ADAPTER.new_stream(None, t)
    chunks = [c for e in sse.decode([(FIXTURES / "claude.stream").read_bytes()]) for c in stream.feed(e)]
    want = load("claude.chunks.json")
    assert [{**c, "created": CREATED} for c in chunks] == want["chunks"]
    assert (stream.finished, stream.done) == (want["finished"], want["done"])


def test_gemini_models_stream_with_the_gemini_translator():
    assert isinstance(vertex.ADAPTER.new_stream(None, target("gemini-2.5-flash")), gemini.GeminiStream)


# (model, status, body, class, type, message)
ERRORS = [
    ("gemini-2.5-flash", 429, b'[{"error": {"code": 429, "message": "Quota exceeded for aiplatform.googleapis.com",'
     b' "status": "RESOURCE_EXHAUSTED"}}]', E.ProviderRateLimited, "RESOURCE_EXHAUSTED",
     "Quota exceeded for aiplatform.googleapis.com"),
    ("claude-sonnet-4-5@20250929", 429, b'{"error": {"code": 429, "message": "Quota exceeded for online_prediction",'
     b' "status": "RESOURCE_EXHAUSTED"}}', E.ProviderRateLimited, "RESOURCE_EXHAUSTED",
     "Quota exceeded for online_prediction"),
    ("claude-sonnet-4-5@20250929", 529, b'{"type": "error", "error": {"type": "overloaded_error",'
     b' "message": "Overloaded"}}', E.ProviderOverloaded, "overloaded_error", "Overloaded"),
    ("claude-sonnet-4-5@20250929", 400, b'{"type": "error", "error": {"type": "invalid_request_error",'
     b' "message": "prompt is too long: 210000 tokens > 200000 maximum"}}', E.ContextLengthExceeded,
     "invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum"),
    ("gemini-2.5-flash", 404, b'{"error": {"code": 404, "message": "Publisher Model `x` was not found.",'
     b' "status": "NOT_FOUND"}}', E.ModelNotFound, "NOT_FOUND", "Publisher Model `x` was not found."),
]


@pytest.mark.parametrize("model,status,body,cls,kind,message", ERRORS)
def test_error_mapping(model, status, body, cls, kind, message):
    err = vertex.ADAPTER.parse_error(status, {}, body, target(model))
    assert (type(err), err.status, err.type, err.message) == (cls, status, kind, message)


# --- access tokens: a fake token endpoint and metadata server ------------------------------------


@pytest.fixture(scope="module")
def rsa_key():
    pytest.importorskip("cryptography")  # installed with google-auth (the test extra)
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return key, pem


def service_account(token_uri: str, pem: str) -> str:
    return json.dumps({"type": "service_account", "project_id": PROJECT, "private_key_id": "kid-123",
                       "private_key": pem, "client_email": "gateway@my-proj.iam.gserviceaccount.com",
                       "client_id": "1", "token_uri": token_uri})


def b64url_json(segment: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


class Google:
    """Routes the fake upstream: token endpoint, metadata server, and the model call."""

    def __init__(self, upstream, *, expires_in=3599, model_reply=None, token_status=200) -> None:
        self.upstream = upstream
        self.expires_in = expires_in
        self.model_reply = model_reply or (lambda: Reply(json=load("text.response.json", GEMINI_FIXTURES)))
        self.token_status = token_status
        self.issued = 0
        upstream.handler = self.handle

    def handle(self, rec):
        if rec.path in ("/token", google_auth.METADATA_TOKEN_PATH):
            if self.token_status != 200:
                return Reply(status=self.token_status, json={"error": "invalid_grant",
                                                             "error_description": "Invalid JWT Signature."})
            self.issued += 1
            return Reply(json={"access_token": f"{TOKEN}-{self.issued}", "expires_in": self.expires_in,
                               "token_type": "Bearer"})
        return self.model_reply()

    def calls(self, path):
        return [r for r in self.upstream.requests if r.path == path]


def vertex_config(upstream, *, value: str = "", credentials: str | None = None, region: str = "us-east5") -> dict:
    conf = {"project_id": PROJECT, "region": region}
    if credentials is not None:
        conf["auth_credentials"] = credentials
    return {"providers": {"vertex": {
        "keys": [{"name": "v", "value": value, "models": [], "vertex_key_config": conf}],
        "network_config": {"base_url": upstream.url, "default_request_timeout_in_seconds": 5}}}}


def ask(gw: str, model: str = "vertex/gemini-2.5-flash", **kw):
    """One chat call with the official SDK; a stream is read to its end before the client closes."""
    with openai.OpenAI(base_url=gw + "/v1", api_key="unused", max_retries=0) as client:
        resp = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}], **kw)
        return list(resp) if kw.get("stream") else resp


def test_service_account_jwt_is_exchanged_and_the_token_used(upstream, serve, rsa_key):
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    key, pem = rsa_key
    google = Google(upstream)
    gw = serve(vertex_config(upstream, credentials=service_account(upstream.url + "/token", pem)))
    before = int(time.time())
    assert ask(gw).choices[0].message.content.startswith("Soft rain")
    ask(gw)  # the second call reuses the cached token

    (exchange,) = google.calls("/token")
    form = {k: v[0] for k, v in parse_qs(exchange.body.decode()).items()}
    assert form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    head, claims, signature = form["assertion"].split(".")
    assert b64url_json(head) == {"alg": "RS256", "typ": "JWT", "kid": "kid-123"}
    body = b64url_json(claims)
    assert {k: body[k] for k in ("iss", "scope", "aud")} == {
        "iss": "gateway@my-proj.iam.gserviceaccount.com",
        "scope": "https://www.googleapis.com/auth/cloud-platform",
        "aud": upstream.url + "/token"}
    assert before <= body["iat"] <= time.time() and body["exp"] - body["iat"] == 3600
    key.public_key().verify(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)),
                            f"{head}.{claims}".encode(), padding.PKCS1v15(), hashes.SHA256())

    model_calls = [r for r in upstream.requests if r.path.endswith(":generateContent")]
    assert [r.path for r in model_calls] == [
        f"/v1/projects/{PROJECT}/locations/us-east5/publishers/google/models/gemini-2.5-flash:generateContent"] * 2
    assert [r.headers["authorization"] for r in model_calls] == [f"Bearer {TOKEN}-1"] * 2


def test_metadata_server_token(upstream, serve, monkeypatch):
    monkeypatch.setenv("GCE_METADATA_HOST", upstream.url.removeprefix("http://"))
    google = Google(upstream)
    gw = serve(vertex_config(upstream))
    ask(gw)
    ask(gw)
    (fetch,) = google.calls(google_auth.METADATA_TOKEN_PATH)
    assert fetch.method == "GET" and fetch.headers["metadata-flavor"] == "Google"
    model_call = upstream.requests[-1]
    assert model_call.headers["authorization"] == f"Bearer {TOKEN}-1"


def test_static_token_from_the_key_value(upstream, serve):
    google = Google(upstream)
    gw = serve(vertex_config(upstream, value="ya29.static-token"))
    ask(gw)
    assert google.issued == 0
    assert upstream.requests[0].headers["authorization"] == "Bearer ya29.static-token"


def test_claude_route_end_to_end(upstream, serve):
    Google(upstream, model_reply=lambda: Reply(json=load("claude.response.json")))
    gw = serve(vertex_config(upstream, value="ya29.static-token", region="global"))
    resp = ask(gw, model="vertex/claude-sonnet-4-5@20250929", max_tokens=100)
    assert resp.choices[0].finish_reason == "tool_calls"
    assert resp.choices[0].message.tool_calls[0].function.arguments == '{"city":"Paris"}'
    rec = upstream.requests[0]
    assert rec.path == (f"/v1/projects/{PROJECT}/locations/global/publishers/anthropic/models/"
                        "claude-sonnet-4-5@20250929:rawPredict")
    assert rec.json == {"anthropic_version": "vertex-2023-10-16", "max_tokens": 100,
                        "messages": [{"role": "user", "content": "hi"}]}
    assert "x-api-key" not in rec.headers and "anthropic-version" not in rec.headers


def test_claude_stream_end_to_end(upstream, serve):
    data = (FIXTURES / "claude.stream").read_bytes()
    Google(upstream, model_reply=lambda: Reply(chunks=[data[:100], data[100:]], content_type="text/event-stream"))
    gw = serve(vertex_config(upstream, value="ya29.static-token"))
    chunks = ask(gw, model="vertex/claude-opus-4-1@20250805", stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello there!"
    assert chunks[-1].choices[0].finish_reason == "stop" and chunks[-1].usage.total_tokens == 14
    assert upstream.requests[0].path.endswith("/claude-opus-4-1@20250805:streamRawPredict")
    assert upstream.requests[0].json["stream"] is True


def test_gemini_stream_end_to_end(upstream, serve):
    data = (GEMINI_FIXTURES / "text.stream").read_bytes()
    Google(upstream, model_reply=lambda: Reply(chunks=[data], content_type="text/event-stream"))
    gw = serve(vertex_config(upstream, value="ya29.static-token"))
    chunks = ask(gw, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "The quick brown fox."
    rec = upstream.requests[0]
    assert rec.path.endswith("/gemini-2.5-flash:streamGenerateContent") and rec.query == {"alt": ["sse"]}


def test_refused_credentials_are_a_401_without_secrets(upstream, serve, rsa_key):
    _, pem = rsa_key
    Google(upstream, token_status=400)
    gw = serve(vertex_config(upstream, credentials=service_account(upstream.url + "/token", pem)))
    with pytest.raises(openai.AuthenticationError) as info:
        ask(gw)
    message = info.value.body["message"]
    assert message == ("vertex token endpoint refused the credentials (status 400): invalid_grant: "
                       "Invalid JWT Signature.")
    assert "PRIVATE KEY" not in json.dumps(info.value.body)


def test_missing_google_auth_names_the_extra(upstream, serve, rsa_key, monkeypatch):
    _, pem = rsa_key
    monkeypatch.setitem(sys.modules, "google.auth", None)  # import fails as if not installed
    Google(upstream)
    gw = serve(vertex_config(upstream, credentials=service_account(upstream.url + "/token", pem)))
    with pytest.raises(openai.APIStatusError) as info:
        ask(gw)
    assert info.value.status_code == 502
    assert info.value.body["message"] == ("vertex service-account credentials need google-auth: "
                                          "pip install 'bifrost-wsgi[vertex]'")
    assert info.value.body["type"] == "upstream_connection_error"
    assert upstream.requests == []


def test_unreachable_metadata_server(upstream, serve, monkeypatch):
    monkeypatch.setenv("GCE_METADATA_HOST", "127.0.0.1:9")  # discard port: nothing listens
    gw = serve(vertex_config(upstream))
    with pytest.raises(openai.APIStatusError) as info:
        ask(gw)
    assert info.value.status_code == 502
    assert info.value.body["message"].startswith(
        "vertex has no auth_credentials and the GCE metadata server is unreachable")


# --- the token cache ---------------------------------------------------------------------------------

# (auth_credentials, message) for credentials that cannot work; no key material in any message
BAD_CREDENTIALS = [
    ("{not json", "vertex auth_credentials is not valid JSON (expected a service-account key file)"),
    ('["a"]', "vertex auth_credentials is not a service-account key file"),
    ('{"client_email": "a@b"}', "vertex auth_credentials lacks private_key, token_uri"),
    (json.dumps({"client_email": "a@b", "token_uri": "http://127.0.0.1:9/token",
                 "private_key": "-----BEGIN PRIVATE KEY-----\nSECRETSTUFF\n-----END PRIVATE KEY-----\n"}),
     "vertex auth_credentials has a private_key that cannot be read"),
]


@pytest.mark.parametrize("credentials,message", BAD_CREDENTIALS)
def test_bad_credentials(credentials, message):
    with pytest.raises(google_auth.CredentialError) as info:
        google_auth.access_token(Key(settings={"project_id": PROJECT, "auth_credentials": credentials}))
    assert info.value.message == message and info.value.status == 502


@pytest.mark.parametrize("expires_in,fetches", [(3599, 1), (360, 1), (299, 2), (100, 2)])
def test_tokens_are_refreshed_five_minutes_before_expiry(upstream, rsa_key, expires_in, fetches):
    _, pem = rsa_key
    google = Google(upstream, expires_in=expires_in)
    key = Key(settings={"project_id": PROJECT, "auth_credentials": service_account(upstream.url + "/token", pem)})
    tokens = [google_auth.access_token(key), google_auth.access_token(key)]
    assert google.issued == fetches
    assert tokens == [f"{TOKEN}-1", f"{TOKEN}-{fetches}"]


def test_concurrent_callers_share_one_fetch(upstream, monkeypatch):
    monkeypatch.setenv("GCE_METADATA_HOST", upstream.url.removeprefix("http://"))
    google = Google(upstream)
    slow = google.handle
    google.upstream.handler = lambda rec: (time.sleep(0.2), slow(rec))[1]
    results = []
    threads = [threading.Thread(target=lambda: results.append(google_auth.access_token(Key(settings={})))) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [f"{TOKEN}-1"] * 6 and google.issued == 1


def test_a_failed_refresh_keeps_a_token_that_is_still_valid(upstream, monkeypatch):
    monkeypatch.setenv("GCE_METADATA_HOST", upstream.url.removeprefix("http://"))
    Google(upstream, expires_in=200)  # inside the refresh margin: every call tries to refresh
    key = Key(settings={})
    assert google_auth.access_token(key) == f"{TOKEN}-1"
    upstream.handler = lambda rec: Reply(status=503, body=b"down")
    assert google_auth.access_token(key) == f"{TOKEN}-1"
