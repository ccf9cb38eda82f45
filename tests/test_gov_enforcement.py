"""Governance as CONTRACT §12 states it: rate limits, budgets, their check order, errors and messages, model
routing by provider config; on SQLite and PostgreSQL alike."""

import json

import pytest
import requests

from tests.conftest import provider_config
from tests.fakes import Reply, chat_completion, openai_chunks, sse
from tests.govfix import eventually, pg_server, stores, wait_logs  # noqa: F401 - fixtures

VK = "sk-bf-enforce-SECRET-0001"
HI = [{"role": "user", "content": "hi"}]


def config(upstream_url, stores, **governance):
    gov = {"virtual_keys": [{"id": "vk-a", "name": "team-a", "value": VK, "team_id": "t-1",
                             "provider_configs": [{"id": 1, "provider": "openai", "allowed_models": []}]}],
           "teams": [{"id": "t-1", "name": "search", "customer_id": "c-1"}],
           "customers": [{"id": "c-1", "name": "acme"}]}
    for name, value in governance.items():
        if name == "virtual_key":
            gov["virtual_keys"][0].update(value)
        else:
            gov[name] = value
    return {"providers": {"openai": provider_config(upstream_url), "groq": provider_config(upstream_url)},
            "governance": gov, **stores}


def post(base, *, model="openai/gpt-4o-mini", **body):
    return requests.post(base + "/v1/chat/completions", headers={"x-bf-vk": VK},
                         json={"model": model, "messages": HI, **body})


@pytest.fixture
def start(serve, upstream, stores):
    """Start a gateway with governance sections merged in; ``price`` fixes every request's cost."""
    from bifrost_wsgi import make_app
    from tests.servers import LiveServer

    servers = []

    def run(*, price=0.0, **governance):
        app = make_app(config(upstream.url, stores, **governance))
        app.governance.price = lambda *, provider, model, usage, reported_model=None: (price, True)
        server = LiveServer(app)
        servers.append((server, app))
        upstream.handler = lambda rec: Reply(chunks=sse(*openai_chunks("a", "b"))) if rec.json.get("stream") \
            else Reply(json=chat_completion("ok"))
        return server.url, app

    yield run
    for server, app in servers:
        server.close()
        app.governance.close()


RL_ONE_MIN = {"id": "rl-1", "request_max_limit": 3, "request_reset_duration": "1m"}


def test_request_limit_admits_exactly_n_then_429_with_retry_after(start, upstream):
    base, _ = start(rate_limits=[RL_ONE_MIN], virtual_key={"rate_limit_id": "rl-1"})
    assert [post(base).status_code for _ in range(3)] == [200, 200, 200]
    r = post(base)
    assert r.status_code == 429
    body = r.json()
    assert body["type"] == body["error"]["type"] == "request_limited"
    assert body["error"]["message"] == ("Rate limit check failed: rate limit violated for VK: "
                                        "[request limit exceeded (3/3, resets every 1m)]")
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    assert body["extra_fields"]["provider"] == "openai"
    assert len(upstream.requests) == 3


def test_provider_config_limit_is_checked_first_and_named_by_provider(start):
    base, _ = start(rate_limits=[RL_ONE_MIN, {"id": "rl-pc", "request_max_limit": 1, "request_reset_duration": "1h"}],
                    virtual_key={"rate_limit_id": "rl-1", "provider_configs": [
                        {"id": 1, "provider": "openai", "allowed_models": [], "rate_limit_id": "rl-pc"}]})
    assert post(base).status_code == 200
    r = post(base)
    assert r.status_code == 429
    assert "rate limit violated for openai: [request limit exceeded (1/1, resets every 1h)]" in r.json()["error"]["message"]


def test_token_limit_counts_streamed_tokens_when_the_stream_ends(start):
    base, app = start(rate_limits=[{"id": "rl-t", "token_max_limit": 20, "token_reset_duration": "1h"}],
                      virtual_key={"rate_limit_id": "rl-t"})
    r = post(base, stream=True)  # 9 prompt + 2 completion tokens
    assert r.status_code == 200 and r.text.endswith("data: [DONE]\n\n")
    assert post(base).status_code == 200  # 11 < 20: admitted, then 12 more
    quota = lambda: requests.get(base + "/api/governance/virtual-keys/quota", headers={"x-bf-vk": VK}).json()
    assert eventually(lambda: quota()["rate_limits"][0]["token_current_usage"] == 23)
    r = post(base)
    assert r.status_code == 429 and r.json()["type"] == "token_limited"
    assert "token limit exceeded (23/20, resets every 1h)" in r.json()["error"]["message"]


@pytest.mark.parametrize("owner,name", [("virtual_key_id", "VK"), ("team_id", "Team"), ("customer_id", "Customer"),
                                        ("provider_config_id", "openai")])
def test_budget_lets_the_crossing_request_through_and_refuses_the_next(start, owner, name):
    owner_id = {"virtual_key_id": "vk-a", "team_id": "t-1", "customer_id": "c-1", "provider_config_id": "1"}[owner]
    base, _ = start(price=0.6, budgets=[{"id": "b-1", "max_limit": 1.0, "reset_duration": "1M", owner: owner_id}])
    assert [post(base).status_code for _ in range(2)] == [200, 200]
    r = post(base)
    assert r.status_code == 402
    body = r.json()
    assert body["type"] == body["error"]["type"] == "budget_exceeded"
    assert body["error"]["message"] == f"Budget exceeded: {name} budget exceeded: 1.2000 > 1.0000 dollars"


def test_a_rate_limit_is_reported_before_a_budget(start):
    base, _ = start(price=5.0, budgets=[{"id": "b-1", "max_limit": 1.0, "reset_duration": "1d",
                                         "virtual_key_id": "vk-a"}],
                    rate_limits=[{"id": "rl-1", "request_max_limit": 1, "request_reset_duration": "1m"}],
                    virtual_key={"rate_limit_id": "rl-1"})
    assert post(base).status_code == 200
    assert post(base).status_code == 429


def test_older_singular_budget_forms_load(start):
    base, _ = start(price=2.0, budgets=[{"id": "b-old", "max_limit": 1.0, "reset_duration": "monthly"}],
                    virtual_key={"budget_id": "b-old"})
    assert post(base).status_code == 200
    assert post(base).json()["error"]["message"] == "Budget exceeded: VK budget exceeded: 2.0000 > 1.0000 dollars"


def test_a_model_without_provider_goes_to_a_provider_config_by_weight(start, upstream):
    base, _ = start(virtual_key={"provider_configs": [
        {"id": 1, "provider": "openai", "allowed_models": ["gpt-4o-mini"], "weight": 0},
        {"id": 2, "provider": "groq", "allowed_models": ["gpt-4o-mini"], "weight": 1}]})
    r = post(base, model="gpt-4o-mini")
    assert r.status_code == 200, r.text
    assert r.json()["extra_fields"]["provider"] == "groq"


def test_a_provider_config_over_its_budget_is_left_out_of_the_choice(start):
    base, _ = start(price=1.0, budgets=[{"id": "b-pc", "max_limit": 0.5, "reset_duration": "1d",
                                         "provider_config_id": "2"}],
                    virtual_key={"provider_configs": [
                        {"id": 1, "provider": "openai", "allowed_models": [], "weight": 1},
                        {"id": 2, "provider": "groq", "allowed_models": [], "weight": 1000}]})
    first = post(base, model="gpt-4o-mini").json()["extra_fields"]["provider"]
    assert first in ("groq", "openai")
    if first == "groq":  # groq's budget is spent now: everything goes to openai
        assert {post(base, model="gpt-4o-mini").json()["extra_fields"]["provider"] for _ in range(3)} == {"openai"}


def test_an_expired_key_is_blocked(start):
    base, _ = start(virtual_key={"expires_at": "2020-01-01T00:00:00Z"})
    r = post(base)
    assert r.status_code == 401 and r.json()["error"]["code"] == "virtual_key_blocked"
    assert r.json()["error"]["message"] == "Virtual key has expired"


def test_spend_and_counters_survive_a_restart(start):
    gov = {"price": 0.6, "budgets": [{"id": "b-1", "max_limit": 1.0, "reset_duration": "1M", "virtual_key_id": "vk-a"}],
           "rate_limits": [{"id": "rl-1", "request_max_limit": 3, "request_reset_duration": "1h"}],
           "virtual_key": {"rate_limit_id": "rl-1"}}
    base, app = start(**gov)
    assert post(base).status_code == 200
    assert eventually(lambda: app.governance.writer.idle())
    base2, _ = start(**gov)
    quota = requests.get(base2 + "/api/governance/virtual-keys/quota", headers={"x-bf-vk": VK}).json()
    assert quota["budgets"][0]["current_usage"] == pytest.approx(0.6)
    assert quota["rate_limits"][0]["request_current_usage"] == 1
    assert json.dumps(quota).count(VK) == 0


def test_refused_requests_are_logged_under_their_key(start):
    base, _ = start(rate_limits=[{"id": "rl-1", "request_max_limit": 1, "request_reset_duration": "1m"}],
                    virtual_key={"rate_limit_id": "rl-1"})
    assert [post(base).status_code for _ in range(2)] == [200, 429]
    wait_logs(base, 2)
    row = requests.get(base + "/api/logs?status=error").json()["logs"][0]
    assert (row["virtual_key_id"], row["team_id"], row["customer_id"]) == ("vk-a", "t-1", "c-1")
    assert row["error_details"]["type"] == "request_limited"
