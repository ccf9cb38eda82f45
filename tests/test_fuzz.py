"""Property: no request body or header a client can send gets a 5xx, an HTML page or anything but the JSON
error envelope for a 4xx, and ``/metrics`` still answers afterwards.

Bodies are chat requests with random types in every field, lone surrogates (as escapes and as raw bytes),
huge numbers, deep nesting, odd keys, cut or garbled bytes; headers are odd ``x-bf-eh-*`` forwards,
passthrough flags and Content-Type variants. They go over real HTTP to the gateway under gunicorn and under
the WSGI reference server (which also checks the WSGI contract), with a fake OpenAI upstream that answers
whatever reaches it.
"""

import json

import pytest
import requests
from hypothesis import HealthCheck, given, settings, strategies as st

from bifrost_wsgi import make_app
from tests.conftest import provider_config
from tests.fakes import FakeUpstream, Reply, chat_completion, openai_chunks, sse
from tests.procs import Gateway
from tests.servers import LiveServer

pytestmark = pytest.mark.slow

ROUTES = ["/v1/chat/completions", "/openai/v1/chat/completions", "/openai/chat/completions"]

# --- values ---------------------------------------------------------------------------------------

numbers = st.one_of(st.integers(), st.integers(min_value=10**20, max_value=10**400),
                    st.floats(allow_nan=False, allow_infinity=False))


def plausible(good, other):
    """Mostly a value of the right shape (so requests get past validation and reach deeper code), sometimes
    any JSON value (so the validator sees everything)."""
    return st.integers(0, 11).flatmap(lambda roll: good if roll else other)


def chat_requests(text) -> st.SearchStrategy:
    """Chat-request-like bodies whose strings are drawn from ``text``."""
    values = st.recursive(st.one_of(st.none(), st.booleans(), numbers, text),
                          lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(text, inner, max_size=3)),
                          max_leaves=6)
    odd_keys = st.one_of(text, st.sampled_from(["", "__proto__", "messages", "model", "stream", "fallbacks", "$ref"]))

    def likely(good):
        return plausible(good, values)

    def choices(*items):
        return likely(st.sampled_from(items))

    def with_odd_keys(strategy, n):
        return strategy.flatmap(lambda d: st.dictionaries(odd_keys, values, max_size=n).map(lambda extra: {**extra, **d}))

    model = likely(st.one_of(st.sampled_from(["openai/gpt-4o-mini"] * 4 + ["nosuch/model", "gpt-4o", "openai/"]),
                             st.builds(lambda m: f"openai/{m or 'x'}", text)))
    part = st.fixed_dictionaries({"type": choices("text", "image_url")},
                                 optional={"text": text, "image_url": st.fixed_dictionaries({"url": text}),
                                           "cache_control": values})
    tool_call = st.fixed_dictionaries({"id": text, "type": st.just("function"),
                                       "function": st.fixed_dictionaries({"name": text, "arguments": text})})
    message = with_odd_keys(st.one_of(
        st.fixed_dictionaries({"role": choices("user", "system", "developer"),
                               "content": likely(st.one_of(text, st.lists(part, max_size=2)))},
                              optional={"name": likely(text)}),
        st.fixed_dictionaries({"role": st.just("assistant")},
                              optional={"content": likely(text), "tool_calls": likely(st.lists(tool_call, max_size=2)),
                                        "reasoning_details": values}),
        st.fixed_dictionaries({"role": st.just("tool"), "tool_call_id": likely(text), "content": likely(text)}),
    ), 1)
    tool = st.fixed_dictionaries({"type": choices("function", "custom"),
                                  "function": st.fixed_dictionaries({"name": likely(text)},
                                                                    optional={"parameters": values})})
    params = {
        "temperature": likely(st.floats(0, 2)), "top_p": likely(st.floats(0, 1)), "n": likely(st.integers(1, 3)),
        "stop": likely(st.one_of(text, st.lists(text, max_size=3))), "user": likely(text),
        "logit_bias": likely(st.dictionaries(text, likely(st.integers(-100, 100)), max_size=2)),
        "tools": likely(st.lists(tool, max_size=2)), "tool_choice": choices("auto", "none", "required"),
        "response_format": likely(st.fixed_dictionaries({"type": choices("text", "json_object")})),
        "max_tokens": likely(st.integers(1, 10**30)), "seed": likely(numbers),
        "reasoning_effort": choices("low", "high", "max"), "metadata": likely(st.dictionaries(text, text)),
        "fallbacks": likely(st.lists(model, max_size=12)), "stream": likely(st.booleans()),
        "my_extra_field": values,
    }
    return with_odd_keys(st.fixed_dictionaries(
        {"model": model, "messages": likely(st.lists(message, min_size=1, max_size=3))}, optional=params), 2)


# two in three requests have clean text, so that they get past decoding; the others have lone surrogates
# anywhere (a few characters in every string)
chat = st.one_of(chat_requests(st.text(max_size=8)), chat_requests(st.text(max_size=8)),
                 chat_requests(st.text(st.one_of(st.characters(), st.characters(categories=["Cs"])), max_size=8)))


def deep(depth: int, opener: str) -> bytes:
    closer = {"[": "]", '{"a":': "}"}[opener]
    return (opener * depth + "1" + closer * depth).encode()


@st.composite
def bodies(draw) -> bytes:
    kind = draw(st.sampled_from(["escaped"] * 5 + ["raw"] * 2 + ["cut", "garbled", "deep", "constant"]))
    payload = draw(chat)
    if kind == "deep":
        return deep(draw(st.integers(1, 5000)), draw(st.sampled_from(["[", '{"a":'])))
    if kind == "constant":  # what json.dumps would not write: non-JSON constants, overflowing numbers
        token = draw(st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999999", "-" + "9" * 5000]))
        return json.dumps({**payload, "temperature": "<n>"}).replace('"<n>"', token).encode()
    if kind == "escaped":
        return json.dumps(payload).encode()
    data = json.dumps(payload, ensure_ascii=False).encode("utf-8", "surrogatepass")
    if kind == "cut":
        return data[:draw(st.integers(0, len(data)))]
    if kind == "garbled":
        at = draw(st.integers(0, len(data)))
        return data[:at] + draw(st.binary(min_size=1, max_size=8)) + data[at:]
    return data


header_token = st.text("abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=20)
header_value = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7e), max_size=40).map(str.strip)
headers = st.fixed_dictionaries({}, optional={
    "Content-Type": st.sampled_from(["application/json", "application/json; charset=utf-8", "text/plain", "",
                                     "application/json; charset=utf-16", "multipart/form-data; boundary=x",
                                     "application/x-www-form-urlencoded"]),
    "x-bf-passthrough-extra-params": st.sampled_from(["true", "false", "1", "yes", ""]),
    "x-request-id": header_value,
    "Authorization": header_value,
    "Accept": st.sampled_from(["text/html", "*/*", "text/event-stream"]),
}).flatmap(lambda h: st.dictionaries(
    st.one_of(header_token, st.sampled_from(["openai-organization", "authorization", "host", "content-length",
                                             "transfer-encoding", "expect", "user-agent", "forwarded", "te",
                                             "trailer", "accept-encoding"])).map(lambda n: f"x-bf-eh-{n}"),
    header_value, max_size=3).map(lambda eh: {**h, **eh}))


# --- servers --------------------------------------------------------------------------------------


def answer(rec) -> Reply:
    """The fake OpenAI upstream answers whatever reaches it, streamed when asked to."""
    try:
        streamed = json.loads(rec.body).get("stream") is True
    except ValueError:
        streamed = False
    return Reply(chunks=sse(*openai_chunks("fuzz"))) if streamed else Reply(json=chat_completion("fuzz"))


@pytest.fixture(scope="module")
def fake():
    upstream = FakeUpstream()
    upstream.handler = answer
    yield upstream
    upstream.close()


@pytest.fixture(scope="module", params=["gunicorn", "wsgiref"])
def server(request, fake):
    config = {"providers": {"openai": provider_config(fake.url)}}
    if request.param == "gunicorn":
        gw = Gateway(config, workers=1, threads=4)
        yield gw.url
        gw.stop()
    else:
        live = LiveServer(make_app(config))
        yield live.url
        live.close()


@pytest.fixture(scope="module")
def session():
    with requests.Session() as s:
        yield s


def check(r: requests.Response) -> None:
    assert r.status_code < 500, r.content[:500]
    ctype = r.headers.get("Content-Type", "")
    assert "html" not in ctype.lower() and not r.content.lstrip().startswith(b"<")
    if r.status_code == 200 and ctype == "text/event-stream":
        assert r.content.endswith(b"data: [DONE]\n\n")
        return
    assert ctype == "application/json", (r.status_code, ctype, r.content[:300])
    doc = r.json()
    if r.status_code >= 400:
        assert doc["status_code"] == r.status_code
        assert isinstance(doc["error"]["message"], str) and doc["error"]["message"]
        assert set(doc["extra_fields"]) == {"provider", "model_requested", "request_type"}


@settings(max_examples=120, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(route=st.sampled_from(ROUTES), data=bodies(), extra=headers)
def test_no_body_or_header_breaks_a_route(server, session, route, data, extra):
    check(session.post(server + route, data=data, headers=extra, timeout=30))


def test_metrics_still_answer_after_the_fuzz(server, session):
    # runs after the property on the same server (module scope, file order)
    r = session.get(server + "/metrics", timeout=30)
    assert r.status_code == 200 and "http_requests_total" in r.text
