"""Resilience against a fault-injecting upstream (CONTRACT §7, §9; issue "Resilience"): retries, waits,
timeouts, fallbacks, circuit breaking, stream failures and mid-stream failover. The fake upstream picks its
behaviour by model name and records every attempt with a timestamp."""

import json
import logging
import threading
import time
from email.utils import formatdate

import pytest
import requests

from tests.fakes import Reply, chat_completion, openai_chunks, sse
from tests.procs import free_port

HI = [{"role": "user", "content": "hi"}]


class Script:
    """Per-model reply scripts: each model pops its replies in order; the last one repeats."""

    def __init__(self, upstream):
        self.by_model: dict[str, list] = {}
        self.lock = threading.Lock()
        upstream.handler = self

    def __call__(self, rec):
        model = (rec.json or {}).get("model")
        with self.lock:
            replies = self.by_model.get(model) or [Reply(status=500, json={"error": {"message": f"unscripted {model}"}})]
            return replies.pop(0) if len(replies) > 1 else replies[0]

    def set(self, model, *replies):
        self.by_model[model] = list(replies)


def ok(model, text="ok"):
    return Reply(json=chat_completion(text, model=model))


def err(status, message="boom", code=None, etype="server_error", headers=None):
    e = {"message": message, "type": etype}
    if code:
        e["code"] = code
    return Reply(status=status, json={"error": e}, headers=headers or {})


def attempts(upstream, model):
    return [r for r in upstream.requests if (r.json or {}).get("model") == model]


@pytest.fixture
def make(upstream, serve):
    """A gateway whose openai (primary) and groq (fallback) both point at the scripted upstream."""

    def build(*, client=None, primary=None, fallback=None):
        net = {"base_url": upstream.url, "default_request_timeout_in_seconds": 2, "max_retries": 2,
               "retry_backoff_initial": 50, "retry_backoff_max": 400}
        p = {**net, **(primary or {})}
        f = {**net, **(fallback or {})}
        config = {"client": client or {}, "providers": {
            "openai": {"keys": [{"value": "k-openai"}], "network_config": p},
            "groq": {"keys": [{"value": "k-groq"}], "network_config": f},
        }}
        return serve(config), Script(upstream)

    return build


def chat(url, model="openai/primary", fallbacks=("groq/backup",), stream=False, **extra):
    body = {"model": model, "messages": HI, "fallbacks": list(fallbacks), "stream": stream, **extra}
    return requests.post(url + "/v1/chat/completions", json=body, timeout=30)


def served_by(resp):
    data = resp.json()
    return data["extra_fields"]["provider"], data["extra_fields"]["model_requested"]


# 1. Retry-After ---------------------------------------------------------------------------------------

def test_retry_after_seconds_is_honoured(make, upstream):
    url, script = make()
    script.set("primary", err(429, "Rate limit", headers={"Retry-After": "1"}), ok("primary"))
    r = chat(url)
    assert r.status_code == 200 and served_by(r) == ("openai", "primary")
    a = attempts(upstream, "primary")
    assert len(a) == 2
    assert a[1].at - a[0].at >= 0.95


def test_retry_after_http_date_is_honoured(make, upstream):
    url, script = make()
    script.set("primary", err(429, "Rate limit", headers={"Retry-After": formatdate(time.time() + 2, usegmt=True)}),
               ok("primary"))
    r = chat(url)
    assert r.status_code == 200
    a = attempts(upstream, "primary")
    assert a[1].at - a[0].at >= 0.9  # an HTTP date has 1 s resolution


def test_retry_after_longer_than_time_left_goes_to_fallback_at_once(make, upstream):
    url, script = make()
    script.set("primary", err(429, "Rate limit", headers={"Retry-After": "120"}))
    script.set("backup", ok("backup"))
    t0 = time.monotonic()
    r = chat(url)
    assert r.status_code == 200 and served_by(r) == ("groq", "backup")
    assert time.monotonic() - t0 < 1.0
    assert len(attempts(upstream, "primary")) == 1


# 2. 429 without the header ------------------------------------------------------------------------------

def test_429_backoff_then_fallback(make, upstream):
    url, script = make()
    script.set("primary", err(429, "Too many requests"))
    script.set("backup", ok("backup"))
    r = chat(url)
    assert r.status_code == 200 and served_by(r) == ("groq", "backup")
    a = attempts(upstream, "primary")
    assert len(a) == 3  # max_retries=2
    gaps = [a[i + 1].at - a[i].at for i in range(2)]
    assert gaps[0] >= 0.05 * 0.8 - 0.01 and gaps[1] >= 0.1 * 0.8 - 0.01


# 3. 5xx ------------------------------------------------------------------------------------------------

def test_single_500_is_retried_on_the_same_target(make, upstream):
    url, script = make()
    script.set("primary", err(500), ok("primary", "second try"))
    r = chat(url)
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "second try"
    assert attempts(upstream, "backup") == []


def test_persistent_503_exhausts_retries_then_falls_back(make, upstream):
    url, script = make()
    script.set("primary", err(503, "overloaded"))
    script.set("backup", ok("backup"))
    r = chat(url)
    assert served_by(r) == ("groq", "backup")
    assert len(attempts(upstream, "primary")) == 3


def test_all_targets_fail_returns_the_primary_error(make, upstream):
    url, script = make()
    script.set("primary", err(503, "primary overloaded"))
    script.set("backup", err(401, "bad key", etype="invalid_request_error"))
    r = chat(url)
    assert r.status_code == 503
    env = r.json()
    assert env["error"]["message"] == "primary overloaded"
    assert env["extra_fields"]["provider"] == "openai"


# 4. connection refused / reset ----------------------------------------------------------------------------

def test_connection_refused_falls_back(make, upstream):
    url, script = make(primary={"base_url": f"http://127.0.0.1:{free_port()}"})
    script.set("backup", ok("backup"))
    r = chat(url)
    assert served_by(r) == ("groq", "backup")


def test_connection_reset_is_retried_then_falls_back(make, upstream):
    url, script = make()
    script.set("primary", Reply(fault="reset"))
    script.set("backup", ok("backup"))
    r = chat(url)
    assert served_by(r) == ("groq", "backup")
    assert len(attempts(upstream, "primary")) == 3


# 5. silent upstream -----------------------------------------------------------------------------------------

def test_silent_upstream_times_out_once_then_falls_back(make, upstream):
    url, script = make(primary={"default_request_timeout_in_seconds": 1})
    script.set("primary", Reply(fault="hang"))
    script.set("backup", ok("backup"))
    t0 = time.monotonic()
    r = chat(url)
    elapsed = time.monotonic() - t0
    assert served_by(r) == ("groq", "backup")
    assert len(attempts(upstream, "primary")) == 1  # a timed-out target is not retried
    assert 0.9 < elapsed < 1.8


def test_silent_upstream_without_fallback_is_504(make, upstream):
    url, script = make(primary={"default_request_timeout_in_seconds": 0.5})
    script.set("primary", Reply(fault="hang"))
    r = chat(url, fallbacks=())
    assert r.status_code == 504
    env = r.json()
    assert env["type"] == "request_timed_out" and env["error"]["type"] == "request_timed_out"


def test_trickling_body_is_bounded_by_the_request_deadline(make, upstream):
    url, script = make(client={"request_deadline_in_seconds": 1}, primary={"max_retries": 0})
    script.set("primary", Reply(chunks=[x for _ in range(40) for x in (b"{", 0.1)], content_type="application/json"))
    t0 = time.monotonic()
    r = chat(url, fallbacks=())
    assert time.monotonic() - t0 < 2.0
    assert r.status_code == 504 and r.json()["error"]["type"] == "request_timed_out"


# 6. slow first token ---------------------------------------------------------------------------------------

def test_slow_first_token_fails_over_before_any_byte(make, upstream):
    url, script = make(primary={"first_token_timeout_in_seconds": 0.5})
    role_only = openai_chunks("late", model="primary")[0]
    script.set("primary", Reply(chunks=[*sse(role_only, done=False), 3.0, *sse(*openai_chunks("late")[1:])]))
    script.set("backup", Reply(chunks=sse(*openai_chunks("fast", " answer", model="backup"))))
    t0 = time.monotonic()
    r = chat(url, stream=True)
    assert r.status_code == 200
    assert time.monotonic() - t0 < 2.5
    evs = [json.loads(b[6:]) for b in r.text.split("\n\n") if b.startswith("data: {")]
    assert "".join(e["choices"][0]["delta"].get("content", "") for e in evs) == "fast answer"
    assert {e["extra_fields"]["provider"] for e in evs} == {"groq"}


def test_keep_alive_comments_do_not_hide_a_missing_first_token(make, upstream):
    """An upstream that only sends SSE comments (": ping") never trips a per-read timeout; the first-token
    deadline still holds."""
    url, script = make(primary={"first_token_timeout_in_seconds": 0.6}, fallback={})
    script.set("primary", Reply(chunks=[x for _ in range(20) for x in (b": ping\n\n", 0.2)]))
    script.set("backup", Reply(chunks=sse(*openai_chunks("from backup", model="backup"))))
    t0 = time.monotonic()
    r = chat(url, stream=True)
    assert time.monotonic() - t0 < 2.0
    evs = [json.loads(b[6:]) for b in r.text.split("\n\n") if b.startswith("data: {")]
    assert "".join(e["choices"][0]["delta"].get("content", "") for e in evs) == "from backup"


# 7. failures after the first byte ------------------------------------------------------------------------------

def stream_events(resp):
    out = []
    for block in resp.text.split("\n\n"):
        if block.startswith("data: "):
            out.append(block[6:] if block[6:] == "[DONE]" else json.loads(block[6:]))
    return out


def text_of(evs):
    return "".join(c["choices"][0]["delta"].get("content", "") for c in evs if isinstance(c, dict) and c.get("choices"))


def cut_stream(model, *texts):
    return Reply(chunks=sse(*openai_chunks(*texts, model=model)[:1 + len(texts)], done=False), fault="truncate")


def test_cut_stream_is_an_in_band_error_not_a_finish(make, upstream):
    url, script = make()
    script.set("primary", cut_stream("primary", "The answer", " is"))
    evs = stream_events(chat(url, stream=True))
    assert evs[-1] == "[DONE]"
    assert evs[-2]["error"]["type"] == "upstream_protocol_error"
    assert not any("finish_reason" in ch for e in evs[:-2] for ch in e["choices"])
    assert attempts(upstream, "backup") == []  # default: no failover after the first byte


def test_stalled_stream_hits_idle_timeout(make, upstream):
    url, script = make(primary={"stream_idle_timeout_in_seconds": 0.5})
    chunks = sse(*openai_chunks("a", "b", model="primary"))
    script.set("primary", Reply(chunks=[*chunks[:2], 5.0, *chunks[2:]]))
    t0 = time.monotonic()
    evs = stream_events(chat(url, stream=True))
    assert time.monotonic() - t0 < 3
    assert evs[-2]["error"]["type"] == "request_timed_out"
    assert evs[-2]["status_code"] == 504


def test_resume_continues_on_the_fallback(make, upstream):
    url, script = make(client={"stream_failover": "resume"})
    script.set("primary", cut_stream("primary", "The answer", " is"))
    script.set("backup", Reply(chunks=sse(*openai_chunks(" forty-two.", model="backup"))))
    evs = stream_events(chat(url, stream=True))
    assert text_of(evs) == "The answer is forty-two."
    assert evs[-2]["choices"][0]["finish_reason"] == "stop"
    assert evs[-2]["extra_fields"]["provider"] == "groq"
    sent = attempts(upstream, "backup")[0].json
    assert sent["messages"][-1] == {"role": "assistant", "content": "The answer is"}
    roles = [e["choices"][0]["delta"].get("role") for e in evs[:-1] if e["choices"][0]["delta"].get("role")]
    assert roles == ["assistant"]  # one answer, one role


def test_resume_without_prefill_streams_only_the_rest(make, upstream):
    url, script = make(client={"stream_failover": "resume"})
    script.set("primary", cut_stream("primary", "The answer", " is"))
    script.set("backup",
               err(400, "This model does not support assistant message prefill", etype="invalid_request_error"),
               Reply(chunks=sse(*openai_chunks("The ans", "wer is forty", "-two.", model="backup"))))
    evs = stream_events(chat(url, stream=True))
    assert text_of(evs) == "The answer is forty-two."
    fresh = attempts(upstream, "backup")[1].json
    assert fresh["messages"] == HI


def test_resume_with_a_different_answer_gives_the_original_error(make, upstream):
    url, script = make(client={"stream_failover": "resume"}, fallback={"max_retries": 0})
    script.set("primary", cut_stream("primary", "The answer", " is"))
    script.set("backup", err(400, "prefill not supported", etype="invalid_request_error"),
               Reply(chunks=sse(*openai_chunks("Something else entirely.", model="backup"))))
    evs = stream_events(chat(url, stream=True))
    assert text_of(evs) == "The answer is"
    assert evs[-2]["error"]["type"] == "upstream_protocol_error"
    assert evs[-2]["extra_fields"]["provider"] == "openai"
    assert "prefill" not in evs[-2]["error"]["message"]


def test_mid_stream_error_event(make, upstream):
    url, script = make()
    chunks = openai_chunks("par", "tial", model="primary")
    script.set("primary", Reply(chunks=sse(chunks[0], chunks[1], {"error": {"message": "server had an error",
                                                                          "type": "server_error"}}, done=False)))
    evs = stream_events(chat(url, stream=True))
    assert evs[-2]["error"]["message"] == "server had an error"


# 10-12. which 4xx fall back ------------------------------------------------------------------------------------

def test_context_length_not_retried_but_falls_back(make, upstream):
    url, script = make()
    script.set("primary", err(400, "This model's maximum context length is 8192 tokens", code="context_length_exceeded",
                              etype="invalid_request_error"))
    script.set("backup", ok("backup"))
    r = chat(url)
    assert served_by(r) == ("groq", "backup")
    assert len(attempts(upstream, "primary")) == 1


def test_content_policy_refusal_is_returned_not_failed_over(make, upstream):
    url, script = make()
    script.set("primary", err(400, "Your request was rejected by our safety system", code="content_policy_violation",
                              etype="invalid_request_error"))
    script.set("backup", ok("backup"))
    r = chat(url)
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "content_policy_violation"
    assert attempts(upstream, "backup") == []
    assert len(attempts(upstream, "primary")) == 1


@pytest.mark.parametrize("status", [401, 403, 404])
def test_auth_and_not_found_fall_back_without_retry(make, upstream, status):
    url, script = make()
    script.set("primary", err(status, "nope", etype="invalid_request_error"))
    script.set("backup", ok("backup"))
    r = chat(url)
    assert served_by(r) == ("groq", "backup")
    assert r.json()["model"] == "backup"
    assert len(attempts(upstream, "primary")) == 1


# 13. circuit breaker ------------------------------------------------------------------------------------------

def test_circuit_breaker_opens_then_probes_and_closes(make, upstream):
    url, script = make(client={"circuit_breaker": {"failure_threshold": 2, "cooldown_seconds": 1}},
                       primary={"max_retries": 0})
    script.set("primary", err(503))
    script.set("backup", ok("backup"))
    for _ in range(2):
        assert served_by(chat(url)) == ("groq", "backup")
    assert len(attempts(upstream, "primary")) == 2
    # open: straight to the fallback
    assert served_by(chat(url)) == ("groq", "backup")
    assert len(attempts(upstream, "primary")) == 2
    # without a fallback the open circuit answers 503
    r = chat(url, fallbacks=())
    assert r.status_code == 503 and "circuit open" in r.json()["error"]["message"]
    time.sleep(1.1)
    script.set("primary", ok("primary"))
    assert served_by(chat(url)) == ("openai", "primary")  # the probe
    assert served_by(chat(url)) == ("openai", "primary")  # closed again
    assert len(attempts(upstream, "primary")) == 4


@pytest.mark.parametrize("changed,stays_open", [("groq", True), ("openai", False)],
                         ids=["another provider changed: the circuit keeps its state",
                              "its own provider changed: a fresh circuit"])
def test_a_provider_change_at_runtime_resets_only_that_providers_circuits(make, upstream, changed, stays_open):
    url, script = make(client={"circuit_breaker": {"failure_threshold": 2, "cooldown_seconds": 60}},
                       primary={"max_retries": 0})
    script.set("primary", err(503))
    script.set("backup", ok("backup"))
    for _ in range(2):
        chat(url)
    assert "circuit open" in chat(url, fallbacks=()).json()["error"]["message"]
    shown = requests.get(url + f"/api/providers/{changed}").json()
    shown["network_config"]["max_retries"] = 1
    body = {"keys": shown["keys"], "network_config": shown["network_config"]}
    assert requests.put(url + f"/api/providers/{changed}", json=body).status_code == 200
    before = len(attempts(upstream, "primary"))
    r = chat(url, fallbacks=())
    assert ("circuit open" in r.json()["error"]["message"]) is stays_open
    assert len(attempts(upstream, "primary")) - before == (0 if stays_open else 2)  # fresh: tried, retried once


# 16. admission -------------------------------------------------------------------------------------------------

def test_queue_full_is_refused_at_once(upstream, serve):
    url = serve({"client": {"drop_excess_requests": True}, "providers": {"openai": {
        "keys": [{"value": "k"}], "network_config": {"base_url": upstream.url},
        "concurrency_and_buffer_size": {"concurrency": 1, "buffer_size": 0}}}})
    upstream.handler = lambda rec: Reply(json=chat_completion(), delay=1.0)
    results = {}

    def slow():
        results["slow"] = requests.post(url + "/v1/chat/completions", json={"model": "openai/m", "messages": HI})

    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.3)
    t0 = time.monotonic()
    r = requests.post(url + "/v1/chat/completions", json={"model": "openai/m", "messages": HI})
    assert time.monotonic() - t0 < 0.5
    t.join()
    assert results["slow"].status_code == 200
    assert r.status_code == 503
    assert r.headers["Retry-After"] == "1"
    assert r.json()["error"]["message"] == "request dropped: queue is full"
    assert r.json()["error"]["type"] == "queue_full"


def test_waiting_requests_get_their_turn(upstream, serve):
    url = serve({"providers": {"openai": {
        "keys": [{"value": "k"}], "network_config": {"base_url": upstream.url},
        "concurrency_and_buffer_size": {"concurrency": 1, "buffer_size": 5}}}})
    upstream.handler = lambda rec: Reply(json=chat_completion(), delay=0.2)
    out = []
    threads = [threading.Thread(target=lambda: out.append(requests.post(
        url + "/v1/chat/completions", json={"model": "openai/m", "messages": HI}).status_code)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert out == [200, 200, 200]


# 17. logging ------------------------------------------------------------------------------------------------------

def test_retries_and_fallbacks_are_logged(make, upstream, caplog):
    url, script = make()
    script.set("primary", err(503, "overloaded"))
    script.set("backup", ok("backup"))
    with caplog.at_level(logging.INFO, logger="bifrost_wsgi"):
        chat(url)
    text = caplog.text
    assert "retry 1 of openai/primary" in text and "status=503" in text
    assert "falling back to groq/backup" in text
    assert "k-openai" not in text


def test_rejected_requests_do_not_open_the_circuit(make, upstream):
    """A content-policy or context-length 400 is about the request, not the provider's health."""
    url, script = make(client={"circuit_breaker": {"failure_threshold": 2, "cooldown_seconds": 30}})
    script.set("primary", err(400, "rejected by our safety system", code="content_policy_violation",
                              etype="invalid_request_error"))
    for _ in range(3):
        assert chat(url, fallbacks=()).status_code == 400
    script.set("primary", ok("primary"))
    assert served_by(chat(url, fallbacks=())) == ("openai", "primary")


def test_fallback_that_refuses_a_parameter_is_skipped(upstream, serve):
    url = serve({"providers": {
        "openai": {"keys": [{"value": "k"}], "network_config": {"base_url": upstream.url}},
        "anthropic": {"keys": [{"value": "k"}], "network_config": {"base_url": upstream.url}},
        "groq": {"keys": [{"value": "k"}], "network_config": {"base_url": upstream.url}},
    }})
    script = Script(upstream)
    script.set("primary", err(503, "primary down"))
    script.set("backup", ok("backup"))
    r = chat(url, fallbacks=("anthropic/claude", "groq/backup"), n=2)
    assert served_by(r) == ("groq", "backup")
    script.set("backup", err(503, "backup down"))
    r = chat(url, fallbacks=("anthropic/claude",), n=2)
    assert r.status_code == 503 and r.json()["error"]["message"] == "primary down"


def test_a_role_chunk_from_a_target_that_then_failed_is_never_sent(make, upstream):
    """Chunks peeked before the first content are stamped as they arrive; when that target then fails before
    any content, the fallback's answer starts afresh: its id, chunk_index from 0, one role."""
    url, script = make()
    script.set("primary", cut_stream("primary"))  # a role chunk, then the connection breaks
    script.set("backup", Reply(chunks=sse(*openai_chunks("Hel", "lo", model="backup"))))
    evs = stream_events(chat(url, stream=True))
    chunks = evs[:-1]
    assert text_of(evs) == "Hello"
    assert [c["extra_fields"]["chunk_index"] for c in chunks] == list(range(len(chunks)))
    assert {c["extra_fields"]["provider"] for c in chunks} == {"groq"}
    roles = [c["choices"][0]["delta"].get("role") for c in chunks if c["choices"] and c["choices"][0]["delta"].get("role")]
    assert roles == ["assistant"]
    assert len(attempts(upstream, "primary")) >= 1
