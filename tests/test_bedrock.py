"""Bedrock Converse / ConverseStream.

Golden fixtures in ``fixtures/bedrock/`` (one case per file group, picked up by glob):

* ``<case>.request.json`` (OpenAI client body) → ``<case>.upstream.json`` (exact Converse body); an optional
  ``<case>.target.json`` gives the key's ``bedrock_key_config``, ``stream``/``passthrough`` and the URL;
* ``<case>.response.json`` (Converse answer, shapes from the API reference) → ``<case>.expected.json``;
* ``<case>.events.json`` (documented ConverseStream events) → ``<case>.stream`` (the binary event stream,
  built from the events by the test encoder) → ``<case>.chunks.json`` (translated chunks, flags, error).

Then tables (URLs, refusals, errors) and end-to-end runs through the gateway with the official openai SDK
against a fake Bedrock, checking the SigV4 signature independently from the request the fake received.
Run ``python -m tests.test_bedrock`` to rewrite the generated files after a deliberate change, then review
the diff.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from pathlib import Path
from urllib.parse import quote

import openai
import pytest

from bifrost_wsgi.providers import credentials as auth
from bifrost_wsgi.wire import eventstream
from bifrost_wsgi.errors import (ContextLengthExceeded, ModelNotFound, ProviderAuthFailed, ProviderError, ProviderOverloaded, ProviderRateLimited, ProviderRejected, ProviderServerError, UnsupportedParameter, UpstreamProtocolError, ValidationError)
from bifrost_wsgi.providers import bedrock
from bifrost_wsgi.providers.base import Key, Target
from bifrost_wsgi.providers.registry import ROWS
from bifrost_wsgi.schema import parse_request
from tests.golden import readers
from tests.fakes import Reply
from tests.test_eventstream import encode_message, event, exception

FIXTURES = Path(__file__).parent / "fixtures" / "bedrock"
ADAPTER = bedrock.ADAPTER
ROW = ROWS["bedrock"]
CLAUDE = "anthropic.claude-3-7-sonnet-20250219-v1:0"
ACCESS_KEY, SECRET_KEY = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"


load, cases = readers(FIXTURES)


def make_target(model: str = CLAUDE, *, key: dict | None = None, value: str = "",
                base_url: str = ROW.base_url) -> Target:
    return Target("bedrock", model, base_url, Key(name="k", value=value, settings=key or {}), ROW)


@pytest.fixture
def fixed_id(monkeypatch):
    monkeypatch.setattr(bedrock, "_new_id", lambda: "chatcmpl-fixture")


def without_created(obj: dict) -> dict:
    assert isinstance(obj.pop("created"), int)
    return obj


# --- golden: requests -----------------------------------------------------------------------------


def built_request(case: str):
    opts = load(f"{case}.target.json") if (FIXTURES / f"{case}.target.json").exists() else {}
    req = parse_request(load(f"{case}.request.json"))
    target = make_target(req.model, key=opts.get("key"))
    return ADAPTER.build_request(req, target, stream=opts.get("stream", False),
                                 passthrough=opts.get("passthrough", False)), opts


@pytest.mark.parametrize("case", cases(".request.json"))
def test_request_golden(case):
    upstream, opts = built_request(case)
    assert json.loads(upstream.body) == load(f"{case}.upstream.json")
    if "url" in opts:
        assert upstream.url == opts["url"]


def test_request_headers_and_body_encoding():
    req = parse_request({"model": f"bedrock/{CLAUDE}", "messages": [{"role": "user", "content": "héllo"}]})
    plain = ADAPTER.build_request(req, make_target(), stream=False)
    streamed = ADAPTER.build_request(req, make_target(), stream=True)
    assert plain.headers == {"Content-Type": "application/json", "Accept": "application/json"}
    assert streamed.headers == {"Content-Type": "application/json", "Accept": "application/vnd.amazon.eventstream"}
    assert plain.method == "POST"
    assert plain.body == '{"messages":[{"role":"user","content":[{"text":"héllo"}]}]}'.encode()


# --- URLs and model ids -------------------------------------------------------------------------------

RUNTIME = "https://bedrock-runtime.{}.amazonaws.com/model/{}/{}"
URL_CASES = [
    # (model, bedrock_key_config, base_url, stream, expected url)
    (CLAUDE, {}, ROW.base_url, False,
     RUNTIME.format("us-east-1", "anthropic.claude-3-7-sonnet-20250219-v1%3A0", "converse")),
    (CLAUDE, {"region": "eu-central-1"}, ROW.base_url, True,
     RUNTIME.format("eu-central-1", "anthropic.claude-3-7-sonnet-20250219-v1%3A0", "converse-stream")),
    ("us.amazon.nova-pro-v1:0", {"region": "us-west-2"}, "http://127.0.0.1:9/proxy", False,
     "http://127.0.0.1:9/proxy/model/us.amazon.nova-pro-v1%3A0/converse"),
    # a deployment maps the model to an inference profile id ...
    ("sonnet", {"deployments": {"sonnet": "us.anthropic.claude-sonnet-4-20250514-v1:0"}}, ROW.base_url, False,
     RUNTIME.format("us-east-1", "us.anthropic.claude-sonnet-4-20250514-v1%3A0", "converse")),
    # ... which the key's arn prefixes, the whole ARN being one escaped path segment
    ("sonnet", {"region": "us-west-2", "arn": "arn:aws:bedrock:us-west-2:111122223333:inference-profile",
                "deployments": {"sonnet": "us.anthropic.claude-sonnet-4-20250514-v1:0"}}, ROW.base_url, False,
     RUNTIME.format("us-west-2", "arn%3Aaws%3Abedrock%3Aus-west-2%3A111122223333%3Ainference-profile%2F"
                                 "us.anthropic.claude-sonnet-4-20250514-v1%3A0", "converse")),
    # a deployment that already is an ARN is not prefixed again
    ("mine", {"arn": "arn:aws:bedrock:us-east-1:1:application-inference-profile",
              "deployments": {"mine": "arn:aws:bedrock:us-east-1:1:application-inference-profile/abc"}}, ROW.base_url,
     False, RUNTIME.format("us-east-1", "arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Aapplication-inference-profile%2Fabc",
                           "converse")),
    # the arn applies to deployments only (Bifrost's getModelPath): other models go as they are
    (CLAUDE, {"arn": "arn:aws:bedrock:us-east-1:1:application-inference-profile", "deployments": {"x": "y"}},
     ROW.base_url, False, RUNTIME.format("us-east-1", "anthropic.claude-3-7-sonnet-20250219-v1%3A0", "converse")),
    # a model given as an ARN by the client is escaped the same way
    ("arn:aws:bedrock:us-east-1:1:application-inference-profile/abc", {}, ROW.base_url, True,
     RUNTIME.format("us-east-1", "arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Aapplication-inference-profile%2Fabc",
                    "converse-stream")),
]


@pytest.mark.parametrize("model, key, base_url, stream, expected", URL_CASES)
def test_url(model, key, base_url, stream, expected):
    assert bedrock.url(make_target(model, key=key, base_url=base_url), stream=stream) == expected


# --- refusals -------------------------------------------------------------------------------------

PNG = "data:image/png;base64,iVBORw0KGgo="


def user_parts(*parts: dict) -> dict:
    return {"messages": [{"role": "user", "content": list(parts)}]}


REFUSED = [
    ({"n": 2}, "n"),
    ({"logprobs": True, "top_logprobs": 2}, "logprobs"),
    ({"modalities": ["text", "audio"]}, "modalities"),
    ({"audio": {"voice": "alloy", "format": "wav"}}, "audio"),
    ({"web_search_options": {}}, "web_search_options"),
    ({"tools": [{"type": "custom", "custom": {"name": "x"}}]}, "tools[0]"),
    ({"tool_choice": {"type": "custom", "custom": {"name": "x"}}}, "tool_choice"),
    (user_parts({"type": "image_url", "image_url": {"url": "https://x.test/a.png"}}),
     "messages[0].content[0].image_url.url"),
    (user_parts({"type": "image_url", "image_url": {"url": "data:image/tiff;base64,AAAA"}}),
     "messages[0].content[0].image_url.url"),
    (user_parts({"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}), "messages[0].content[0]"),
    (user_parts({"type": "file", "file": {"file_id": "file-123"}}), "messages[0].content[0].file.file_id"),
    (user_parts({"type": "file", "file": {"file_data": "AAAA", "filename": "a.zip"}}),
     "messages[0].content[0].file.file_data"),
    ({"messages": [{"role": "system", "content": [{"type": "image_url", "image_url": {"url": PNG}}]},
                   {"role": "user", "content": "hi"}]}, "messages[0].content[0]"),
]


@pytest.mark.parametrize("extra, param", REFUSED, ids=[p for _, p in REFUSED])
def test_refused_parameters_name_the_param(extra, param):
    body = {"model": f"bedrock/{CLAUDE}", "messages": [{"role": "user", "content": "hi"}], **extra}
    with pytest.raises(UnsupportedParameter) as info:
        ADAPTER.build_request(parse_request(body), make_target(), stream=False)
    assert info.value.param == param and info.value.status == 400
    assert "not supported by bedrock" in info.value.message


def test_invalid_tool_call_arguments_are_a_validation_error():
    body = {"model": f"bedrock/{CLAUDE}", "messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant",
         "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{oops"}}]}]}
    with pytest.raises(ValidationError) as info:
        ADAPTER.build_request(parse_request(body), make_target(), stream=False)
    assert info.value.param == "messages[1].tool_calls[0].function.arguments"


# --- golden: responses ----------------------------------------------------------------------------


@pytest.mark.parametrize("case", cases(".response.json"))
def test_response_golden(case, fixed_id):
    body = (FIXTURES / f"{case}.response.json").read_bytes()
    assert without_created(ADAPTER.parse_response(body, make_target())) == load(f"{case}.expected.json")


@pytest.mark.parametrize("body", [b"not json", b"[1]", b'{"output": {}}', b'{"stopReason": "end_turn"}'])
def test_unusable_answers_are_protocol_errors(body):
    with pytest.raises(UpstreamProtocolError):
        ADAPTER.parse_response(body, make_target())


# --- errors ---------------------------------------------------------------------------------------

ERRTYPE = "x-amzn-ErrorType"
ERRORS = [
    # (status, headers, body, class, type, message)
    (400, {ERRTYPE: "ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/"},
     {"message": "Malformed input request: #: extraneous key [foo] is not permitted"}, ProviderRejected,
     "ValidationException", "Malformed input request: #: extraneous key [foo] is not permitted"),
    (400, {ERRTYPE: "ValidationException"}, {"message": "Input is too long for requested model."},
     ContextLengthExceeded, "ValidationException", "Input is too long for requested model."),
    (403, {"X-Amzn-Errortype": "AccessDeniedException:http://internal.amazon.com/coral/com.amazon.coral.service/"},
     {"Message": "User: arn:aws:iam::1:user/x is not authorized to perform: bedrock:InvokeModel"},
     ProviderAuthFailed, "AccessDeniedException",
     "User: arn:aws:iam::1:user/x is not authorized to perform: bedrock:InvokeModel"),
    (403, {}, {"message": "The security token included in the request is invalid.",
               "__type": "com.amazon.coral.service#UnrecognizedClientException"},
     ProviderAuthFailed, "UnrecognizedClientException", "The security token included in the request is invalid."),
    (404, {ERRTYPE: "ResourceNotFoundException"}, {"message": "Model not found."}, ModelNotFound,
     "ResourceNotFoundException", "Model not found."),
    (424, {ERRTYPE: "ModelErrorException"}, {"message": "The model returned an error."}, ProviderRejected,
     "ModelErrorException", "The model returned an error."),
    (429, {ERRTYPE: "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/"},
     {"message": "Too many requests, please wait before trying again."}, ProviderRateLimited,
     "ThrottlingException", "Too many requests, please wait before trying again."),
    (500, {ERRTYPE: "InternalServerException"}, {"message": "Internal error"}, ProviderServerError,
     "InternalServerException", "Internal error"),
    (503, {ERRTYPE: "ServiceUnavailableException"}, {"message": "Service unavailable"}, ProviderOverloaded,
     "ServiceUnavailableException", "Service unavailable"),
    (502, {}, b"<html>Bad gateway</html>", ProviderServerError, "api_error", "<html>Bad gateway</html>"),
    (500, {}, b"", ProviderServerError, "api_error", "upstream returned status 500"),
]


@pytest.mark.parametrize("status, headers, body, cls, etype, message", ERRORS)
def test_parse_error(status, headers, body, cls, etype, message):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    err = ADAPTER.parse_error(status, headers, raw, make_target())
    assert type(err) is cls
    assert (err.status, err.type, err.message) == (status, etype, message)


@pytest.mark.parametrize("exception_type, status", [
    ("throttlingException", 429), ("serviceUnavailableException", 503), ("internalServerException", 500),
    ("modelStreamErrorException", 503), ("modelTimeoutException", 504), ("validationException", 400),
    ("modelNotReadyException", 503), ("somethingNewException", 500),
])
def test_stream_exception_status(exception_type, status):
    [msg] = eventstream.decode([exception(exception_type, {"message": "boom"})])
    with pytest.raises(ProviderError) as info:
        ADAPTER.new_stream(None, make_target()).feed(msg)
    assert (info.value.status, info.value.type, info.value.message) == (status, exception_type, "boom")


def test_stream_error_message_is_a_provider_error():
    frame = encode_message({":message-type": "error", ":error-code": "InternalFailure",
                            ":error-message": "An internal error occurred"})
    [msg] = eventstream.decode([frame])
    with pytest.raises(ProviderServerError, match="An internal error occurred"):
        ADAPTER.new_stream(None, make_target()).feed(msg)


# --- golden: streams ------------------------------------------------------------------------------


def build_stream(events: list[dict]) -> bytes:
    out = b""
    for item in events:
        if "exception" in item:
            out += exception(item["exception"], item["data"])
        elif "raw" in item:
            out += encode_message({":event-type": item["event"], ":content-type": "application/json",
                                   ":message-type": "event"}, item["raw"].encode())
        else:
            out += event(item["event"], item["data"])
    return out


def translate(raw: bytes, *, piece: int = 7) -> dict:
    """Feed the stream in small pieces, as the network would, and record what the translator does."""
    translator = ADAPTER.new_stream(None, make_target())
    chunks, error = [], None
    try:
        for msg in eventstream.decode(raw[i:i + piece] for i in range(0, len(raw), piece)):
            chunks.extend(translator.feed(msg))
    except ProviderError as err:
        error = {"status": err.status, "type": err.type, "message": err.message}
    out = {"chunks": [without_created(c) for c in chunks], "finished": translator.finished, "done": translator.done,
           "malformed": translator.malformed}
    if error:
        out["error"] = error
    return out


@pytest.mark.parametrize("case", cases(".events.json"))
def test_stream_fixture_is_built_from_its_events(case):
    assert (FIXTURES / f"{case}.stream").read_bytes() == build_stream(load(f"{case}.events.json"))


@pytest.mark.parametrize("case", cases(".events.json"))
def test_stream_golden(case, fixed_id):
    assert translate((FIXTURES / f"{case}.stream").read_bytes()) == load(f"{case}.chunks.json")


def test_stream_translation_does_not_depend_on_chunking(fixed_id):
    raw = (FIXTURES / "stream_tool_call.stream").read_bytes()
    assert translate(raw, piece=1) == translate(raw, piece=len(raw)) == load("stream_tool_call.chunks.json")


# --- auth: the signature covers what is sent -------------------------------------------------------


def check_sigv4(method: str, base_url: str, path: str, headers: dict, body: bytes, *, secret: str = SECRET_KEY,
                region: str, access_key: str = ACCESS_KEY) -> str:
    """Recompute a SigV4 signature from a request as received, independently of ``sigv4.py``; return the
    canonical request. ``headers`` are lower-cased as a server sees them."""
    m = re.fullmatch(r"AWS4-HMAC-SHA256 Credential=(?P<ak>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/bedrock/"
                     r"aws4_request, SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<sig>[0-9a-f]{64})",
                     headers["authorization"])
    assert m, headers["authorization"]
    assert (m["ak"], m["region"]) == (access_key, region)
    signed = m["signed"].split(";")
    assert {"host", "x-amz-date", "content-type"} <= set(signed) and signed == sorted(signed)
    amz_date = headers["x-amz-date"]
    assert re.fullmatch(r"\d{8}T\d{6}Z", amz_date) and amz_date.startswith(m["date"])
    assert headers["host"] == base_url.split("://", 1)[1]
    creq = "\n".join([method, quote(path, safe="/~"), "",
                      "".join(f"{h}:{' '.join(headers[h].split())}\n" for h in signed), m["signed"],
                      hashlib.sha256(body).hexdigest()])
    scope = f"{m['date']}/{region}/bedrock/aws4_request"
    sts = f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{hashlib.sha256(creq.encode()).hexdigest()}"
    key = ("AWS4" + secret).encode()
    for part in (m["date"], region, "bedrock", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    assert hmac.new(key, sts.encode(), hashlib.sha256).hexdigest() == m["sig"]
    return creq


def test_auth_signs_the_exact_url_and_body():
    req = parse_request({"model": "bedrock/sonnet", "messages": [{"role": "user", "content": "hi"}]})
    target = make_target("sonnet", key={"access_key": ACCESS_KEY, "secret_key": SECRET_KEY, "region": "us-west-2",
                                        "arn": "arn:aws:bedrock:us-west-2:1:application-inference-profile",
                                        "deployments": {"sonnet": "abc"}})
    built = ADAPTER.build_request(req, target, stream=False)
    signed = auth.apply(built, target, 1440938160.0)
    assert (signed.url, signed.body) == (built.url, built.body)
    headers = {k.lower(): v for k, v in signed.headers.items()}
    assert headers["x-amz-date"] == "20150830T123600Z" and "x-amz-security-token" not in headers
    base, path = signed.url.split(".com", 1)
    creq = check_sigv4("POST", base + ".com", path, headers, signed.body, region="us-west-2")
    assert "\n/model/arn%253Aaws%253Abedrock%253Aus-west-2%253A1%253Aapplication-inference-profile%252Fabc/converse\n" \
        in creq


def test_auth_bearer_when_the_key_has_a_value():
    target = make_target(value="ABSKbedrock-api-key", key={"region": "us-west-2"})
    req = parse_request({"model": f"bedrock/{CLAUDE}", "messages": [{"role": "user", "content": "hi"}]})
    built = ADAPTER.build_request(req, target, stream=False)
    signed = auth.apply(built, target, 1440938160.0)
    assert signed.headers["Authorization"] == "Bearer ABSKbedrock-api-key"
    assert not any(k.lower().startswith("x-amz-") for k in signed.headers)


# --- end to end: the openai SDK → gateway → fake Bedrock ----------------------------------------------


def bedrock_config(upstream_url: str, **key) -> dict:
    key = key or {"value": "", "bedrock_key_config": {"access_key": ACCESS_KEY, "secret_key": SECRET_KEY,
                                                      "region": "us-west-2"}}
    return {"providers": {"bedrock": {"keys": [{"name": "k", "models": [], **key}],
                                      "network_config": {"base_url": upstream_url,
                                                         "default_request_timeout_in_seconds": 5}}}}


def client(gateway_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway_url + "/v1", api_key="unused", max_retries=0)


def eventstream_reply(raw: bytes, *, pieces: int = 3) -> Reply:
    step = -(-len(raw) // pieces)
    chunks: list = []
    for i in range(0, len(raw), step):
        chunks += [raw[i:i + step], 0.01]
    return Reply(chunks=chunks, content_type="application/vnd.amazon.eventstream")


MESSAGES = [{"role": "user", "content": "Weather in Paris?"}]
CONVERSE_PATH = "/model/anthropic.claude-3-7-sonnet-20250219-v1%3A0/converse"


def test_e2e_non_stream_is_signed_with_sigv4(upstream, serve):
    upstream.add(Reply(json=load("tool_use.response.json")))
    with client(serve(bedrock_config(upstream.url))) as c:
        got = c.chat.completions.create(model=f"bedrock/{CLAUDE}", messages=MESSAGES, max_tokens=50)
    assert got.choices[0].finish_reason == "tool_calls"
    assert [t.function.name for t in got.choices[0].message.tool_calls] == ["get_weather", "get_weather"]
    assert got.choices[0].message.content == "Checking both cities."
    assert (got.usage.prompt_tokens, got.usage.completion_tokens, got.usage.total_tokens) == (350, 80, 430)
    assert got.model == CLAUDE
    [rec] = upstream.requests
    assert (rec.method, rec.path) == ("POST", CONVERSE_PATH)
    assert rec.json == {"messages": [{"role": "user", "content": [{"text": "Weather in Paris?"}]}],
                        "inferenceConfig": {"maxTokens": 50}}
    creq = check_sigv4("POST", upstream.url, rec.path, rec.headers, rec.body, region="us-west-2")
    assert "\n/model/anthropic.claude-3-7-sonnet-20250219-v1%253A0/converse\n" in creq


def test_e2e_session_token_is_sent_and_signed(upstream, serve):
    upstream.add(Reply(json=load("text.response.json")))
    key = {"value": "", "bedrock_key_config": {"access_key": ACCESS_KEY, "secret_key": SECRET_KEY,
                                               "session_token": "FwoGZXIvYXdzEXAMPLE", "region": "eu-west-3"}}
    with client(serve(bedrock_config(upstream.url, **key))) as c:
        c.chat.completions.create(model=f"bedrock/{CLAUDE}", messages=MESSAGES)
    [rec] = upstream.requests
    assert rec.headers["x-amz-security-token"] == "FwoGZXIvYXdzEXAMPLE"
    assert "x-amz-security-token" in rec.headers["authorization"]
    check_sigv4("POST", upstream.url, rec.path, rec.headers, rec.body, region="eu-west-3")


def test_e2e_bearer_api_key(upstream, serve):
    upstream.add(Reply(json=load("text.response.json")))
    with client(serve(bedrock_config(upstream.url, value="ABSKbedrock-api-key"))) as c:
        got = c.chat.completions.create(model=f"bedrock/{CLAUDE}", messages=MESSAGES)
    assert got.choices[0].message.content == "Hello! How can I help?"
    [rec] = upstream.requests
    assert rec.headers["authorization"] == "Bearer ABSKbedrock-api-key"
    assert "x-amz-date" not in rec.headers


def test_e2e_deployment_arn_travels_escaped_and_signed(upstream, serve):
    upstream.add(Reply(json=load("text.response.json")))
    key = {"value": "", "bedrock_key_config": {
        "access_key": ACCESS_KEY, "secret_key": SECRET_KEY, "region": "us-east-2",
        "arn": "arn:aws:bedrock:us-east-2:111122223333:application-inference-profile",
        "deployments": {"sonnet": "x1y2"}}}
    with client(serve(bedrock_config(upstream.url, **key))) as c:
        got = c.chat.completions.create(model="bedrock/sonnet", messages=MESSAGES)
    assert got.model == "sonnet"
    [rec] = upstream.requests
    assert rec.path == ("/model/arn%3Aaws%3Abedrock%3Aus-east-2%3A111122223333%3Aapplication-inference-profile%2Fx1y2"
                        "/converse")
    check_sigv4("POST", upstream.url, rec.path, rec.headers, rec.body, region="us-east-2")


def test_e2e_stream_text(upstream, serve):
    upstream.add(eventstream_reply((FIXTURES / "stream_text.stream").read_bytes()))
    with client(serve(bedrock_config(upstream.url))) as c:
        with c.chat.completions.create(model=f"bedrock/{CLAUDE}", messages=MESSAGES, stream=True) as stream:
            chunks = list(stream)
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == "Hello there!"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (8, 3)
    [rec] = upstream.requests
    assert rec.path == CONVERSE_PATH + "-stream"
    assert rec.headers["accept"] == "application/vnd.amazon.eventstream"
    check_sigv4("POST", upstream.url, rec.path, rec.headers, rec.body, region="us-west-2")


def test_e2e_stream_tool_call(upstream, serve):
    upstream.add(eventstream_reply((FIXTURES / "stream_tool_call.stream").read_bytes(), pieces=5))
    with client(serve(bedrock_config(upstream.url))) as c:
        with c.chat.completions.create(model=f"bedrock/{CLAUDE}", messages=MESSAGES, stream=True,
                                       tools=[{"type": "function", "function": {"name": "get_weather"}}]) as stream:
            chunks = list(stream)
    calls: dict[int, dict] = {}
    for ch in chunks:
        for tc in (ch.choices[0].delta.tool_calls or []) if ch.choices else []:
            entry = calls.setdefault(tc.index, {"id": tc.id, "name": tc.function.name, "arguments": ""})
            entry["arguments"] += tc.function.arguments or ""
    assert calls == {0: {"id": "tooluse_abc", "name": "get_weather", "arguments": '{"city": "Paris"}'},
                     1: {"id": "tooluse_def", "name": "get_time", "arguments": '{"tz":"Asia/Tokyo"}'}}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    assert chunks[-1].usage.prompt_tokens_details.cached_tokens == 1000


def test_e2e_exception_mid_stream_is_an_in_band_error(upstream, serve):
    upstream.add(eventstream_reply((FIXTURES / "stream_exception.stream").read_bytes()))
    seen = []
    with client(serve(bedrock_config(upstream.url))) as c:
        with pytest.raises(openai.APIError, match="the model stopped responding"):
            with c.chat.completions.create(model=f"bedrock/{CLAUDE}", messages=MESSAGES, stream=True) as stream:
                for ch in stream:
                    seen.append(ch)
    assert [ch.choices[0].delta.content for ch in seen] == ["Partial"]
    assert all(ch.choices[0].finish_reason is None for ch in seen)


THROTTLED = {
    "http-429": lambda: Reply(
        status=429, json={"message": "Too many requests, please wait before trying again."},
        headers={"x-amzn-ErrorType": "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/"}),
    "exception-as-first-event": lambda: eventstream_reply(
        (FIXTURES / "stream_throttled.stream").read_bytes(), pieces=1),
}


@pytest.mark.parametrize("how", THROTTLED)
def test_e2e_throttling_before_first_byte_is_a_429_json_error(upstream, serve, how):
    upstream.add(THROTTLED[how]())
    with client(serve(bedrock_config(upstream.url))) as c:
        with pytest.raises(openai.RateLimitError) as info:
            c.chat.completions.create(model=f"bedrock/{CLAUDE}", messages=MESSAGES, stream=True)
    assert info.value.status_code == 429
    assert "please wait before trying again" in str(info.value)
    body = info.value.response.json()
    assert body["error"]["type"] in ("ThrottlingException", "throttlingException")
    assert body["extra_fields"] == {"provider": "bedrock", "model_requested": CLAUDE,
                                    "request_type": "chat_completion_stream"}


# --- regenerate the generated fixture files (review the diff afterwards) -------------------------------


def _write(name: str, obj) -> None:
    path = FIXTURES / name
    if isinstance(obj, bytes):
        path.write_bytes(obj)
    else:
        path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def regenerate() -> None:
    bedrock._new_id = lambda: "chatcmpl-fixture"
    for case in cases(".request.json"):
        _write(f"{case}.upstream.json", json.loads(built_request(case)[0].body))
    for case in cases(".response.json"):
        _write(f"{case}.expected.json", without_created(
            ADAPTER.parse_response((FIXTURES / f"{case}.response.json").read_bytes(), make_target())))
    for case in cases(".events.json"):
        raw = build_stream(load(f"{case}.events.json"))
        _write(f"{case}.stream", raw)
        _write(f"{case}.chunks.json", translate(raw))


if __name__ == "__main__":
    regenerate()
