"""SigV4 against the published AWS Signature Version 4 test suite, plus the Bedrock-specific cases the suite
does not cover (escaped ARNs in the path, session tokens, the Host header that is actually sent)."""

from __future__ import annotations

import calendar
import datetime
import json
from pathlib import Path

import pytest

from bifrost_wsgi.wire import sigv4
from bifrost_wsgi.providers.base import UpstreamRequest

VECTORS = Path(__file__).parent / "fixtures" / "bedrock" / "sigv4"
CREDENTIALS = {"access_key": "AKIDEXAMPLE", "secret_key": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}
SUITE_TIME = calendar.timegm((2015, 8, 30, 12, 36, 0))  # 20150830T123600Z
SUITE = dict(CREDENTIALS, region="us-east-1", service="service", now=SUITE_TIME)


def vectors() -> list[str]:
    return sorted(p.stem for p in VECTORS.glob("*.json"))


def load(name: str) -> dict:
    return json.loads((VECTORS / f"{name}.json").read_text(encoding="utf-8"))


def suite_request(vector: dict) -> UpstreamRequest:
    r = vector["request"]
    # duplicate header names of the suite are stored joined with "," (what a dict of headers can carry)
    return UpstreamRequest(r["method"], r["url"], dict(r["headers"]), r["body"].encode())


@pytest.mark.parametrize("name", vectors())
def test_aws_suite_vector(name):
    vector = load(name)
    req = suite_request(vector)
    token = req.headers.get("X-Amz-Security-Token")
    signed = sigv4.sign(req, session_token=token, **SUITE)
    assert signed.headers["Authorization"] == vector["authz"]
    unsigned = {k: v for k, v in signed.headers.items() if k != "Authorization"}
    creq, _ = sigv4.canonical_request(req.method, req.url, unsigned, req.body)
    assert creq == vector["creq"]
    if "sts" in vector:
        scope = "20150830/us-east-1/service/aws4_request"
        assert sigv4.string_to_sign("20150830T123600Z", scope, creq) == vector["sts"]


def test_suite_has_the_documented_groups():
    names = set(vectors())
    assert {"get-vanilla", "get-vanilla-query", "post-vanilla", "post-x-www-form-urlencoded", "get-header-value-trim",
            "post-sts-header-before", "get-utf8", "get-space", "get-slashes", "get-relative-relative"} <= names


def test_sign_adds_date_host_and_authorization_and_keeps_the_rest():
    req = UpstreamRequest("POST", "https://bedrock-runtime.us-west-2.amazonaws.com/model/m/converse",
                          {"Content-Type": "application/json", "x-amz-date": "stale", "authorization": "old"}, b"{}")
    signed = sigv4.sign(req, region="us-west-2", service="bedrock", now=SUITE_TIME, **CREDENTIALS)
    assert signed.headers == {
        "Content-Type": "application/json",
        "Host": "bedrock-runtime.us-west-2.amazonaws.com",
        "X-Amz-Date": "20150830T123600Z",
        "Authorization": signed.headers["Authorization"],
    }
    assert signed.headers["Authorization"].startswith(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-west-2/bedrock/aws4_request, "
        "SignedHeaders=content-type;host;x-amz-date, Signature=")
    assert (signed.url, signed.body, signed.method) == (req.url, req.body, req.method)
    assert req.headers["authorization"] == "old"  # the input is not modified


def test_session_token_is_sent_and_signed():
    req = UpstreamRequest("POST", "https://bedrock-runtime.us-east-1.amazonaws.com/model/m/converse", {}, b"{}")
    signed = sigv4.sign(req, session_token="TOKEN", region="us-east-1", service="bedrock", now=SUITE_TIME,
                        **CREDENTIALS)
    assert signed.headers["X-Amz-Security-Token"] == "TOKEN"
    assert "SignedHeaders=host;x-amz-date;x-amz-security-token," in signed.headers["Authorization"]


def test_unsignable_headers_stay_out_of_the_signature():
    base = UpstreamRequest("POST", "https://h.example/x", {"Content-Type": "application/json"}, b"{}")
    noisy = UpstreamRequest("POST", "https://h.example/x", {"Content-Type": "application/json", "User-Agent": "u/1",
                                                           "Connection": "keep-alive", "Expect": "100-continue"}, b"{}")
    sign = dict(region="us-east-1", service="bedrock", now=SUITE_TIME, **CREDENTIALS)
    assert sigv4.sign(base, **sign).headers["Authorization"] == sigv4.sign(noisy, **sign).headers["Authorization"]


def test_an_explicit_host_header_is_kept_and_signed():
    req = UpstreamRequest("POST", "https://10.0.0.7/model/m/converse", {"host": "bedrock-runtime.us-east-1.amazonaws.com"},
                          b"{}")
    signed = sigv4.sign(req, region="us-east-1", service="bedrock", now=SUITE_TIME, **CREDENTIALS)
    assert signed.headers["Host"] == "bedrock-runtime.us-east-1.amazonaws.com" and "host" not in signed.headers
    creq, _ = sigv4.canonical_request("POST", req.url, signed.headers, b"{}")
    assert "\nhost:bedrock-runtime.us-east-1.amazonaws.com\n" in creq


@pytest.mark.parametrize("path, canonical", [
    # an escaped model id / ARN is encoded once more: "each path segment is URI-encoded twice" (non-S3)
    ("/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse",
     "/model/anthropic.claude-3-5-sonnet-20240620-v1%253A0/converse"),
    ("/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Aapplication-inference-profile%2Fabc/converse-stream",
     "/model/arn%253Aaws%253Abedrock%253Aus-east-1%253A1%253Aapplication-inference-profile%252Fabc/converse-stream"),
    ("", "/"),
    ("/a/b/../c/./d/", "/a/c/d/"),
    ("/a/b/..", "/a/"),
])
def test_canonical_uri(path, canonical):
    assert sigv4.canonical_uri(path) == canonical


@pytest.mark.parametrize("url, host", [
    ("https://bedrock-runtime.us-east-1.amazonaws.com/model", "bedrock-runtime.us-east-1.amazonaws.com"),
    ("https://Example.COM:443/x", "example.com"),
    ("http://127.0.0.1:8080/x", "127.0.0.1:8080"),
    ("http://127.0.0.1:80/x", "127.0.0.1"),
    ("https://[::1]:8443/x", "[::1]:8443"),
])
def test_host_header_is_what_an_http_client_sends(url, host):
    assert sigv4.host_header(url) == host


def test_botocore_computes_the_same_signature(monkeypatch):
    """An independent implementation (optional: botocore is not a dependency) agrees on a Bedrock request."""
    auth = pytest.importorskip("botocore.auth")
    awsrequest = pytest.importorskip("botocore.awsrequest")
    credentials = pytest.importorskip("botocore.credentials")
    url = ("https://bedrock-runtime.eu-west-1.amazonaws.com/model/"
           "arn%3Aaws%3Abedrock%3Aeu-west-1%3A1%3Ainference-profile%2Feu.anthropic.claude-3-haiku%3A0/converse-stream")
    body = '{"messages":[{"role":"user","content":[{"text":"héllo"}]}]}'.encode()
    headers = {"Content-Type": "application/json", "Accept": "application/vnd.amazon.eventstream"}
    ours = sigv4.sign(UpstreamRequest("POST", url, dict(headers), body), session_token="TOKEN", region="eu-west-1",
                      service="bedrock", now=SUITE_TIME, **CREDENTIALS)
    fixed = datetime.datetime(2015, 8, 30, 12, 36, 0)
    monkeypatch.setattr(auth, "get_current_datetime", lambda *a, **k: fixed)
    theirs = awsrequest.AWSRequest(method="POST", url=url, data=body, headers=dict(headers))
    creds = credentials.Credentials(CREDENTIALS["access_key"], CREDENTIALS["secret_key"], "TOKEN")
    auth.SigV4Auth(creds, "bedrock", "eu-west-1").add_auth(theirs)
    assert ours.headers["Authorization"] == theirs.headers["Authorization"]
