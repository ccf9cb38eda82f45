"""``/metrics`` against hostile input: no client can make a scrape fail, or make the page, the metrics files, the
label sets or the circuit-breaker table grow without bound; HEAD answers without a body on every route."""

import json
import os
import re
import signal
import socket
import threading
import tracemalloc
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from bifrost_wsgi import make_app
from bifrost_wsgi.config import Breaker, load
from bifrost_wsgi.observe import metrics
from bifrost_wsgi.routing import breaker
from bifrost_wsgi.routing.breaker import Breakers
from bifrost_wsgi.routing.router import RequestContext
from tests.conftest import provider_config
from tests.deploy_procs import Gunicorn
from tests.fakes import FakeUpstream, Reply, chat_completion
from tests.servers import LiveServer
from tests.test_metrics import parse, total

HI = [{"role": "user", "content": "hi"}]
CUT = metrics.MAX_LABEL_CHARS


def unescaped(value: str) -> str:
    """A label value as the page spells it → the value."""
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), value)


@pytest.fixture(autouse=True)
def _no_metrics_env(monkeypatch):
    for name in (*metrics.DIR_VARIABLES, metrics.MAX_MODELS_VARIABLE):
        monkeypatch.delenv(name, raising=False)


# --- label values --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value,label", [
    ("gpt-4o-mini", "gpt-4o-mini"),
    ("modèle-ünïcode", "modèle-ünïcode"),
    ("a\ud800b", "a\\ud800b"),  # a lone surrogate (JSON "\ud800"): six ASCII characters, not an error
    ("\udcff", "\\udcff"),
    ("x" * CUT, "x" * CUT),
    ("x" * (CUT + 1), "x" * (CUT - 1) + "…"),
    ("y" * 1_000_000, "y" * (CUT - 1) + "…"),
    ("\ud800" * 100, ("\\ud800" * 22)[:CUT - 1] + "…"),  # escaped, then cut again
    (503, "503"),
])
def test_label_value_is_short_encodable_text(value, label):
    assert metrics.label_value(value) == label
    assert metrics.label_value(label) == label  # idempotent: values read back from files are safe already
    label.encode("utf-8")


@pytest.mark.parametrize("status,label", [
    (200, "200"), (404, "404"), (413, "413"), (429, "429"), (503, "503"), (529, "529"), (599, "599"),
    (100, "100"), (0, "other"), (99, "other"), (600, "other"), (1000, "other"), (-1, "other"), (None, "other"),
    ("200", "other"), (True, "other"),
])
def test_status_label_is_any_3_digit_code(status, label):
    assert metrics.status_label(status) == label


def test_bounded_label_known_values_then_first_n_then_other():
    bounded = metrics.Bounded(("gpt-4o", "x" * 500), limit=3)
    seen = [bounded(f"m{i}") for i in range(10)]
    assert seen == ["m0", "m1", "m2", *["other"] * 7]
    assert bounded("m1") == "m1" and bounded("gpt-4o") == "gpt-4o"  # known values never run out
    assert bounded("x" * 500) == "x" * (CUT - 1) + "…" and bounded("x" * 600) == "x" * (CUT - 1) + "…"
    only_known = metrics.Bounded(("openai",), limit=0)
    assert [only_known(p) for p in ("openai", "groq", "nope\ud800")] == ["openai", "other", "other"]


@pytest.mark.parametrize("environ,expected", [
    ({}, 100), ({"BIFROST_METRICS_MAX_MODELS": "7"}, 7), ({"BIFROST_METRICS_MAX_MODELS": "0"}, 0),
    ({"BIFROST_METRICS_MAX_MODELS": "-3"}, 100), ({"BIFROST_METRICS_MAX_MODELS": "lots"}, 100),
])
def test_max_models_setting(environ, expected):
    assert metrics.max_models_setting(environ) == expected


CONFIG = {
    "providers": {
        "openai": {"keys": [{"value": "sk-a", "models": ["gpt-4o-mini", "*"]}, {"value": "sk-b", "models": []}]},
        "azure": {"keys": [{"value": "az", "azure_key_config": {"endpoint": "https://x.example", "api_version": "1",
                                                                "deployments": {"gpt-4o": "prod-4o"}}}]},
        "bedrock": {"keys": [{"value": "br", "bedrock_key_config": {"region": "us-east-1",
                                                                    "deployments": {"claude": "anthropic.c"}}}]},
    },
    "governance": {"virtual_keys": [{"id": "vk-1", "name": "team", "value": "sk-bf-SECRET",
                                     "provider_configs": [{"provider": "openai", "allowed_models": ["o3"]}]}]},
}


def test_configured_models_are_the_names_the_config_gives():
    assert metrics.configured_models(load(CONFIG)) == {"gpt-4o-mini", "gpt-4o", "claude", "o3"}


def _finish(m, *, provider="openai", model="gpt-4o-mini", status=200, error_type="", vk="", attempts=1):
    ctx = RequestContext(request_id="r", deadline=0.0, route="/v1/chat/completions", method="POST")
    m.request_started(ctx)
    ctx.provider, ctx.model, ctx.status, ctx.error_type, ctx.virtual_key = provider, model, status, error_type, vk
    ctx.attempts = attempts
    m.request_finished(ctx)


def test_with_the_config_only_its_providers_keys_and_models_are_labels_of_their_own():
    m = metrics.Metrics(config=load(CONFIG), paths=["/v1/chat/completions"], max_models=2)
    cases = [  # provider, model, vk sent -> provider, model, vk id labels
        ("openai", "gpt-4o-mini", "vk-1", "openai", "gpt-4o-mini", "vk-1"),
        ("openai", "new-1", "", "openai", "new-1", ""),
        ("openai", "new-2", "vk-forged", "openai", "new-2", ""),
        ("openai", "new-3", "", "openai", "other", ""),
        ("azure", "gpt-4o", "", "azure", "gpt-4o", ""),  # configured names never run out
        ("bedrock", "claude", "", "bedrock", "claude", ""),
        ("groq", "llama", "", "other", "other", ""),  # not configured (an unusable fallback)
        ("nope\ud800", "m\ud800", "", "other", "other", ""),
    ]
    for provider, model, vk, *_ in cases:
        _finish(m, provider=provider, model=model, vk=vk)
    s = parse(m.render().decode())
    for _, _, _, provider, model, vk_id in cases:
        assert total(s, "bifrost_upstream_requests_total", provider=provider, model=model, virtual_key_id=vk_id) >= 1
    providers = {ls["provider"] for n, ls, _ in s if n == "bifrost_upstream_requests_total"}
    assert providers == {"openai", "azure", "bedrock", "other"}
    assert total(s, "bifrost_upstream_requests_total", model="other") == 3


def test_without_the_config_providers_are_bounded_like_models():
    m = metrics.Metrics(max_models=3)
    for i in range(50):
        _finish(m, provider=f"p{i}", model=f"m{i}")
    s = parse(m.render().decode())
    assert {ls["provider"] for n, ls, _ in s if n == "bifrost_upstream_requests_total"} == {"p0", "p1", "p2", "other"}
    assert {ls["model"] for n, ls, _ in s if n == "bifrost_upstream_requests_total"} == {"m0", "m1", "m2", "other"}


def test_error_types_are_bounded_and_refusals_count_with_their_status():
    m = metrics.Metrics(paths=["/v1/chat/completions"])
    for i in range(200):  # an upstream's own error types
        _finish(m, status=500, error_type=f"weird_{i}_\ud800" + "t" * 300)
    _finish(m, status=503, error_type="queue_full", attempts=0)  # turned away before any upstream call
    _finish(m, status=429, error_type="rate_limit_error")
    s = parse(m.render().decode())
    reasons = {ls["reason"] for n, ls, _ in s if n == "bifrost_error_requests_total"}
    assert len(reasons) <= 50 + 1 and "other" in reasons and all(len(unescaped(r)) <= CUT for r in reasons)
    assert total(s, "http_requests_total", path="/v1/chat/completions", status=503) == 1
    assert total(s, "http_requests_total", path="/v1/chat/completions", status=429) == 1
    assert total(s, "http_requests_total", path="/v1/chat/completions", status=500) == 200


def test_two_thousand_model_names_keep_the_page_small():
    m = metrics.Metrics(breakers=Breakers(Breaker()))
    for i in range(2000):
        _finish(m, model=f"client-chosen-{i}-" + "z" * 40)
        m.breakers.get("openai", f"client-chosen-{i}-" + "z" * 40)
    page = m.render()
    s = parse(page.decode())
    models = {ls["model"] for _, ls, _ in s if "model" in ls}
    assert len(models) == 100 + 1
    # per model: requests, successes, 16 latency lines, 3 circuit states; plus the fixed families
    assert len(s) <= len(models) * 21 + 100
    assert len(page) < 600_000  # 2,000 names made 6.9 MB (and counting) before


# --- what was written before: files, the archive, the page --------------------------------------------------


def test_stored_keys_that_cannot_be_encoded_or_parsed_never_break_the_page(tmp_path):
    bad_label = json.dumps(["bifrost_upstream_requests_total", ["openai", "m\ud800", "chat_completion", "", ""], None])
    twin = json.dumps(["bifrost_upstream_requests_total", ["openai", "m\\ud800", "chat_completion", "", ""], None])
    raw_surrogate = '["bifrost_upstream_requests_total",["openai","m\ud800","chat_completion","",""],null]'
    values = {bad_label: 1.0, twin: 2.0, raw_surrogate: 4.0, "not json": 1.0, '["x", 1, null]': 1.0,
              '["bifrost_retries_total", ["a", "b", "c", "", ""], [1]]': 1.0, "[]": 1.0}
    metrics.write_file(str(tmp_path / "bifrost-counters-archive.metrics"), values)
    store = metrics.FileValues(str(tmp_path / "bifrost-counters-1.metrics"), keep=True)
    store.add_all([(raw_surrogate, 8.0)])
    store.close()
    (tmp_path / "bifrost-gauges-2.metrics").write_bytes(b"\x40" + bytes(7) + b"\x05\x00\x00\x00\xff\xfe\xed\xa0\x80" +
                                                        bytes(3) + bytes(8) + b"garbage" * 6)
    page = metrics.exposition(metrics.collect(str(tmp_path)))
    text = page.decode("utf-8")  # strict: the page is valid UTF-8
    s = parse(text)
    # every spelling of the same value is one series, added up (a page must not repeat a series)
    assert [v for n, ls, v in s if n == "bifrost_upstream_requests_total"] == [15.0]
    assert total(s, "bifrost_upstream_requests_total", model="m\\\\ud800") == 15


def test_the_archive_keeps_a_bounded_set_of_names(tmp_path):
    env = {"BIFROST_METRICS_DIR": str(tmp_path), metrics.MAX_MODELS_VARIABLE: "3"}
    for pid, names in ((1, ["a", "b"]), (2, ["c", "d", "e"]), (3, ["a", "f"])):  # worker generations
        m = metrics.Metrics(max_models=3)
        for name in names:
            _finish(m, provider=f"p-{name}", model=name, status=500, error_type=f"e-{name}")
        metrics.write_file(str(tmp_path / f"bifrost-counters-{pid}.metrics"), m._stores()[0].snapshot())
        metrics.worker_exited(pid, env)
    s = parse(metrics.exposition(metrics.collect(str(tmp_path))).decode())
    by_model = {ls["model"]: v for n, ls, v in s if n == "bifrost_upstream_requests_total"}
    assert by_model == {"a": 2, "b": 1, "c": 1, "other": 3}  # nothing lost, the first three kept
    assert {ls["provider"] for n, ls, _ in s if n == "bifrost_upstream_requests_total"} == {
        "p-a", "p-b", "p-c", "other"}
    assert total(s, "bifrost_upstream_latency_seconds_count") == 7


# --- the circuit-breaker table ---------------------------------------------------------------------------------


SETTINGS = Breaker(failure_threshold=2, cooldown_seconds=60)
# how each state is reached: failures in a row, then whether the cooldown passes and a probe goes out
_REACHED_BY = {"idle": (0, False), "failing": (1, False), "open": (2, False), "half_open": (2, True)}


def _circuit_in(state: str, table: Breakers, model: str):
    circuit = table.get("openai", model)
    failures, probe = _REACHED_BY[state]
    for _ in range(failures):
        circuit.failure()
    if probe:
        circuit.opened_at -= SETTINGS.cooldown_seconds
        assert circuit.allow()
    return circuit


def test_ten_thousand_model_names_keep_the_breaker_table_bounded():
    table = Breakers(SETTINGS, max_circuits=200)
    kept = {state: _circuit_in(state, table, f"configured-{state}") for state in ("open", "half_open")}
    tracemalloc.start()
    for i in range(10_000):
        table.get("openai", f"made-up-{i}").success()
        assert len(table) <= 200
    held, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert held < 400_000  # 200 circuits, not 10,000
    # the circuits that still shield a target survive; the same model keeps its circuit while it is there
    for state, circuit in kept.items():
        assert table.get("openai", f"configured-{state}") is circuit and circuit.state == state
    assert table.get("openai", "made-up-9999") is table.get("openai", "made-up-9999")
    assert len(table.states()) == len(table) <= 200


def test_dropping_circuits_loses_the_least_first():
    table = Breakers(SETTINGS, max_circuits=8)
    order = ["idle", "failing", "open", "half_open", "idle", "failing", "open", "half_open"]
    circuits = [_circuit_in(state, table, f"m{i}") for i, state in enumerate(order)]
    table.get("openai", "one-more")  # full: down to 6, then the new one
    left = {model for _, model in table.states()}
    assert left == {"m1", "m2", "m3", "m5", "m6", "m7", "one-more"}  # the two idle circuits went first
    for i in range(7):
        table.get("openai", f"more-{i}")
    left = {model for _, model in table.states()}
    assert {"m2", "m3", "m6", "m7"} <= left  # open and probing circuits outlast every other kind
    assert all(c.state in ("open", "half_open") for c, s in zip(circuits, order) if s in ("open", "half_open"))


def test_changes_name_what_was_added_moved_or_dropped():
    table = Breakers(SETTINGS, max_circuits=4)
    _circuit_in("open", table, "m0")
    _circuit_in("idle", table, "m1")
    assert table.changes() == {("openai", "m0"): "open", ("openai", "m1"): "closed"}  # the first call: all
    assert table.changes() == {}
    table.get("openai", "m1").failure()  # closed with one failure: not a change of state
    table.get("openai", "m0").opened_at -= SETTINGS.cooldown_seconds
    table.get("openai", "m0").allow()
    table.get("openai", "m2")
    assert table.changes() == {("openai", "m0"): "half_open", ("openai", "m2"): "closed"}
    table.get("openai", "m3")
    table.get("openai", "m4")  # full: down to 3 (m2, the oldest that loses nothing, goes), then m4
    assert table.changes() == {("openai", "m2"): None, ("openai", "m3"): "closed", ("openai", "m4"): "closed"}


def test_long_model_names_are_keyed_by_a_digest():
    table = Breakers(Breaker())
    a, b = "a" * 1_000_000, "a" * 999_999 + "b"
    assert table.get("openai", a) is table.get("openai", a)
    assert table.get("openai", a) is not table.get("openai", b)
    assert table.get("openai", "x\ud800") is table.get("openai", "x\ud800")
    assert max(len(model) for _, model in table.states()) < 200


def test_breaker_table_and_its_metrics_stay_bounded_over_http(monkeypatch, upstream):
    monkeypatch.setattr(breaker, "MAX_CIRCUITS", 20)
    upstream.handler = lambda rec: Reply(json=chat_completion(model=rec.json["model"]))
    app = make_app({"providers": {"openai": provider_config(upstream.url)}})
    server = LiveServer(app)
    try:
        with requests.Session() as s:
            for i in range(150):
                r = s.post(server.url + "/v1/chat/completions", json={"model": f"openai/made-up-{i}", "messages": HI})
                assert r.status_code == 200
            samples = parse(s.get(server.url + "/metrics").text)
    finally:
        server.close()
    assert len(app.router.breakers) <= 20
    circuits = [(ls, v) for n, ls, v in samples if n == "bifrost_circuit_breaker_state"]
    assert len({ls["model"] for ls, _ in circuits}) == 100 + 1
    # model="other" holds many circuits; together they are the ones in the table now
    assert sum(v for _, v in circuits) == len(app.router.breakers)


# --- HEAD --------------------------------------------------------------------------------------------------------


def _raw(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        got = b""
        while True:
            data = sock.recv(65536)
            if not data:
                return got
            got += data


HEADS = [  # path, status, Allow
    ("/metrics", 200, None),
    ("/health", 200, None),
    ("/v1/models", 200, None),
    ("/v1/chat/completions", 405, "POST"),
    ("/nope", 404, None),
]


@pytest.mark.parametrize("path,status,allow", HEADS)
def test_head_answers_like_get_without_a_body(gateway, path, status, allow):
    port = int(gateway.rsplit(":", 1)[1])
    got = _raw(port, f"HEAD {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    head, _, body = got.partition(b"\r\n\r\n")
    assert body == b""
    assert head.startswith(f"HTTP/1.1 {status} ".encode()) or head.startswith(f"HTTP/1.0 {status} ".encode())
    headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n")[1:])
    get = requests.get(gateway + path)
    assert get.status_code == status
    if path in ("/health", "/v1/models"):  # the page changes between two requests; errors name the method
        assert int(headers["Content-Length"]) == len(get.content)
    assert int(headers["Content-Length"]) > 0
    assert headers["Content-Type"] == get.headers["Content-Type"]
    assert headers.get("Allow") == allow
    assert "x-request-id" in {k.lower() for k in headers}


# --- real gunicorn, two workers ---------------------------------------------------------------------------------

MAX_MODELS = 10


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    fake = FakeUpstream()

    def answer(rec):
        if rec.json["model"].startswith("fail"):
            return Reply(status=500, json={"error": {"message": "down", "type": "server_error\ud800"}})
        return Reply(json=chat_completion())

    fake.handler = answer
    tmp = tmp_path_factory.mktemp("gunicorn")
    config = {"client": {"circuit_breaker": {"failure_threshold": 1000}},
              "providers": {"openai": provider_config(fake.url), "groq": provider_config(fake.url)}}
    # 12 threads: each worker admits threads - 2 = 10 inference requests at once, room for 8 concurrent clients
    # even when one worker accepts them all
    server = Gunicorn(config, tmp, workers=2, threads=12,
                      env={"BIFROST_METRICS_DIR": str(tmp / "metrics"), metrics.MAX_MODELS_VARIABLE: str(MAX_MODELS)})
    server.metrics_dir = tmp / "metrics"
    yield server
    server.close()
    fake.close()


def scrape(url: str) -> tuple[bytes, list]:
    r = requests.get(url + "/metrics")
    assert r.status_code == 200 and r.headers["Content-Type"] == metrics.CONTENT_TYPE
    return r.content, parse(r.content.decode("utf-8"))  # strict UTF-8, every line a valid sample


SURROGATES = [  # request bodies with a lone surrogate: JSON's escape of one, or its raw bytes
    b'{"model": "%s", "fallbacks": [%s], "messages": [{"role": "user", "content": "hi"}]}' % (model, fallback)
    for lone in (b"\\ud800", b"\xed\xa0\x80")
    for model, fallback in (
        (b"openai/gpt-" + lone, b""),  # in the model
        (b"openai/fail-" + lone, b""),  # in the model, and the upstream's error type (a "reason")
        (b"openai/fail", b'"openai/m-' + lone + b'"'),  # in a fallback's model
        (b"openai/fail", b'"nope' + lone + b'/m"'),  # in a fallback provider that is not configured
    )
]


@pytest.mark.slow
def test_lone_surrogates_never_break_a_scrape_even_after_a_reload(live):
    with requests.Session() as s:
        for _ in range(4):  # both workers see them (the kernel picks who accepts)
            for body in SURROGATES:
                r = s.post(live.url + "/v1/chat/completions", data=body, headers={"Content-Type": "application/json"})
                assert r.status_code < 600
    _, samples = scrape(live.url)
    assert total(samples, "http_requests_total", path="/v1/chat/completions") >= 4 * len(SURROGATES)
    old = live.worker_pids()
    os.kill(live.proc.pid, signal.SIGHUP)  # new workers; the old ones' counters go to the archive
    live.wait_workers(2, exclude=old)
    for _ in range(4):
        _, after = scrape(live.url)
    assert total(after, "http_requests_total", path="/v1/chat/completions") >= 4 * len(SURROGATES)


@pytest.mark.slow
def test_client_chosen_names_keep_page_and_files_small(live):
    mine, opened = threading.local(), []

    def send(model):
        if not hasattr(mine, "session"):  # one connection per thread: the suite stays fast
            mine.session = requests.Session()
            opened.append(mine.session)
        return mine.session.post(live.url + "/v1/chat/completions", json={"model": model, "messages": HI}).status_code

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(send, (f"openai/made-up-{i}" for i in range(2000)))) == {200}
        assert set(pool.map(send, (f"groq/{c}" + "m" * 1_000_000 for c in "abcdefghij"))) == {200}
    for session in opened:
        session.close()
    page, samples = scrape(live.url)
    labelled = [ls for n, ls, _ in samples if n.startswith("bifrost_")]
    # each live worker: MAX_MODELS names of its own, the rest "other"; the archive of the workers the reload
    # replaced: MAX_MODELS more at most
    assert len({ls["model"] for ls in labelled if "model" in ls}) <= 3 * MAX_MODELS + 1
    assert max(len(unescaped(v)) for ls in labelled for v in ls.values()) <= CUT
    circuits = {(ls["provider"], ls["model"]) for n, ls, _ in samples if n == "bifrost_circuit_breaker_state"}
    assert len(circuits) <= 2 * (2 * MAX_MODELS + 1)  # gauges: live workers only
    assert len(samples) < 2500 and len(page) < 500_000
    sizes = {p.name: p.stat().st_size for p in live.metrics_dir.iterdir()}
    assert max(sizes.values()) <= 256 * 1024 and sum(sizes.values()) <= 1024 * 1024, sizes


@pytest.mark.slow
def test_head_metrics_through_gunicorn(live):
    got = _raw(live.port, b"HEAD /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head, _, body = got.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ") and body == b""
    assert f"Content-Type: {metrics.CONTENT_TYPE}".encode() in head and b"Content-Length: " in head
    for path in ("/health", "/v1/models", "/nope", "/v1/chat/completions"):
        got = _raw(live.port, f"HEAD {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        assert got.partition(b"\r\n\r\n")[2] == b""
    assert "body bytes on a no-body response" not in live.err_path.read_text(errors="replace")
