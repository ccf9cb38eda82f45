"""The management API, the quota route and admin sessions (CONTRACT §12–13); on SQLite and PostgreSQL."""

import io
import json
from wsgiref.util import setup_testing_defaults

import pytest
import requests

from bifrost_wsgi import make_app
from tests.conftest import OPENAI_KEY, provider_config
from tests.fakes import Reply, chat_completion
from tests.govfix import eventually, pg_server, stores  # noqa: F401 - fixtures

HI = [{"role": "user", "content": "hi"}]
ADMIN_PASSWORD = "correct horse SECRET"


@pytest.fixture
def conf(upstream, stores):
    upstream.handler = lambda rec: Reply(json=chat_completion("ok"))
    return {"providers": {"openai": provider_config(upstream.url)}, **stores}


def chat(base, key, model="openai/gpt-4o-mini"):
    return requests.post(base + "/v1/chat/completions", headers={"x-bf-vk": key},
                         json={"model": model, "messages": HI})


def test_keys_teams_customers_lifecycle_seen_by_another_worker_and_after_a_restart(serve, conf):
    base, other = serve(conf), serve(conf)  # two apps on one store: as two gunicorn workers
    api = base + "/api/governance"
    assert requests.post(api + "/customers", json={"id": "c-1", "name": "acme",
                                                   "budget": {"max_limit": 50, "reset_duration": "1M"}}).status_code == 201
    r = requests.post(api + "/teams", json={"id": "t-1", "name": "search", "customer_id": "c-1"})
    assert r.status_code == 201 and r.json()["team"]["customer_id"] == "c-1"
    r = requests.post(api + "/virtual-keys", json={
        "name": "ci", "team_id": "t-1",
        "provider_configs": [{"provider": "openai", "allowed_models": ["gpt-4o-mini"]}],
        "budget": {"max_limit": 10, "reset_duration": "1d"},
        "rate_limit": {"request_max_limit": 100, "request_reset_duration": "1m"}})
    assert r.status_code == 201, r.text
    created = r.json()["virtual_key"]
    value, key_id = created["value"], created["id"]
    assert value.startswith("sk-bf-")  # shown once
    listed = requests.get(api + "/virtual-keys").json()
    assert listed["count"] == 1 and value not in json.dumps(listed)
    assert listed["virtual_keys"][0]["value"] == f"sk-…{value[-4:]}"
    assert chat(base, value).status_code == 200
    assert eventually(lambda: chat(other, value).status_code == 200)  # the other worker within a second
    assert chat(base, value, "openai/gpt-4o").json()["error"]["code"] == "model_blocked"

    r = requests.put(f"{api}/virtual-keys/{key_id}", json={"is_active": False})
    assert r.status_code == 200 and r.json()["virtual_key"]["is_active"] is False
    assert r.json()["virtual_key"]["provider_configs"][0]["allowed_models"] == ["gpt-4o-mini"]
    assert eventually(lambda: chat(other, value).status_code == 401)
    assert chat(other, value).json()["error"]["code"] == "virtual_key_blocked"

    budgets = requests.get(api + "/budgets").json()
    assert budgets["count"] == 2 and {b["max_limit"] for b in budgets["budgets"]} == {50, 10}
    assert requests.get(api + "/rate-limits").json()["rate_limits"][0]["request_max_limit"] == 100

    restarted = serve(conf)  # survives a restart
    assert requests.get(f"{restarted}/api/governance/virtual-keys/{key_id}").json()["virtual_key"]["name"] == "ci"
    assert requests.delete(f"{api}/virtual-keys/{key_id}").status_code == 200
    assert requests.get(f"{api}/virtual-keys/{key_id}").status_code == 404
    assert requests.get(api + "/budgets").json()["count"] == 1  # the key's budget went with it
    assert chat(base, value).status_code in (200, 401)  # no key left: the gateway is open again
    assert requests.get(api + "/teams").json()["teams"][0]["id"] == "t-1"


@pytest.mark.parametrize("path,body,message", [
    ("/virtual-keys", {}, "name: Virtual key name is required"),
    ("/virtual-keys", {"name": "x", "team_id": "t", "customer_id": "c"},
     "virtual_key: VirtualKey cannot be attached to both Team and Customer"),
    ("/virtual-keys", {"name": "x", "budget": {"max_limit": -1, "reset_duration": "1d"}},
     "virtual_key.budget.max_limit: Budget max_limit cannot be negative: -1.00"),
    ("/virtual-keys", {"name": "x", "budget": {"max_limit": 1, "reset_duration": "fortnight"}},
     "virtual_key.budget.reset_duration: Invalid reset duration format: fortnight"),
    ("/virtual-keys", {"name": "x", "provider_configs": [{"weight": 1}]},
     "virtual_key.provider_configs[0].provider: is required"),
    ("/virtual-keys", {"name": "x", "team_id": "ghost"}, "team_id: no such team: ghost"),
    ("/teams", {"name": 5}, "team.name: must be a string"),
    ("/customers", {"name": "x", "colour": "red"}, "customer.colour: unknown key"),
])
def test_bad_bodies_are_400_with_the_envelope(serve, conf, path, body, message):
    r = requests.post(serve(conf) + "/api/governance" + path, json=body)
    assert r.status_code == 400
    assert r.json()["error"]["message"] == message and r.json()["status_code"] == 400


def test_budget_reset_and_quota(serve, conf):
    conf["governance"] = {"virtual_keys": [{"id": "vk-q", "name": "q", "value": "sk-bf-quota-SECRET-1",
                                            "rate_limit_id": "rl"}],
                          "budgets": [{"id": "b", "max_limit": 1.0, "reset_duration": "1d", "virtual_key_id": "vk-q"}],
                          "rate_limits": [{"id": "rl", "request_max_limit": 5, "request_reset_duration": "1h",
                                           "token_max_limit": 1000, "token_reset_duration": "1d"}]}
    app = make_app(conf)
    app.governance.price = lambda *, provider, model, usage, reported_model=None: (0.25, True)
    from tests.servers import LiveServer
    server = LiveServer(app)
    try:
        assert chat(server.url, "sk-bf-quota-SECRET-1").status_code == 200
        quota = requests.get(server.url + "/api/governance/virtual-keys/quota",
                             headers={"Authorization": "Bearer sk-bf-quota-SECRET-1"}).json()
        assert quota["virtual_key"] == {"id": "vk-q", "name": "q"}
        assert quota["budgets"][0]["current_usage"] == pytest.approx(0.25)
        assert set(quota["budgets"][0]) == {"id", "max_limit", "current_usage", "reset_duration", "last_reset"}
        assert quota["rate_limits"][0]["request_current_usage"] == 1
        assert set(quota["rate_limits"][0]) == {"id", "request_max_limit", "request_current_usage",
                                                "request_reset_duration", "token_max_limit", "token_current_usage",
                                                "token_reset_duration"}
        assert eventually(lambda: app.governance.writer.idle())
        r = requests.post(server.url + "/api/governance/budgets/b/reset")
        assert r.status_code == 200 and r.json()["budget"]["current_usage"] == 0
        assert requests.get(server.url + "/api/governance/virtual-keys/quota").status_code == 401
    finally:
        server.close()


def _call(app, method, path, *, remote="127.0.0.1", headers=None, body=b""):
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "REMOTE_ADDR": remote,
               "wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body))}
    environ.update({"HTTP_" + k.upper().replace("-", "_"): v for k, v in (headers or {}).items()})
    setup_testing_defaults(environ)
    out = {}
    body = b"".join(app(environ, lambda status, hdrs, *exc: out.update(status=int(status[:3]), headers=dict(hdrs))))
    return out["status"], json.loads(body)


@pytest.mark.parametrize("remote,allowed", [("127.0.0.1", True), ("::1", True), ("10.1.2.3", False),
                                            ("203.0.113.9", False)])
def test_without_auth_the_admin_api_answers_loopback_only(conf, remote, allowed, monkeypatch):
    app = make_app(conf)
    status, body = _call(app, "GET", "/api/governance/virtual-keys", remote=remote)
    assert status == (200 if allowed else 403)
    monkeypatch.setenv("BIFROST_ALLOW_REMOTE_ADMIN", "1")
    assert _call(make_app(conf), "GET", "/api/logs", remote=remote)[0] == 200


def test_admin_sessions(serve, conf, monkeypatch):
    monkeypatch.setenv("ADMIN_PW", ADMIN_PASSWORD)
    conf["governance"] = {"auth_config": {"is_enabled": True, "admin_username": "admin",
                                          "admin_password": "env.ADMIN_PW"}}
    base = serve(conf)
    assert requests.get(base + "/api/session/is-auth-enabled").json() == {
        "is_auth_enabled": True, "has_valid_token": False, "auth_type": "password", "inference_auth_enforced": False}
    r = requests.get(base + "/api/logs")
    assert r.status_code == 401 and r.json()["status_code"] == 401
    bad = requests.post(base + "/api/session/login", json={"username": "admin", "password": "nope"})
    assert bad.status_code == 401 and bad.json()["error"]["message"] == "Invalid username or password"
    with requests.Session() as browser:
        ok = browser.post(base + "/api/session/login", json={"username": "admin", "password": ADMIN_PASSWORD})
        assert ok.status_code == 200 and ok.json()["message"] == "Login successful"
        assert "HttpOnly" in ok.headers["Set-Cookie"] and ADMIN_PASSWORD not in ok.text
        assert browser.get(base + "/api/logs").status_code == 200  # the cookie
        token = ok.json()["token"]
        assert requests.get(base + "/api/logs", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        assert browser.get(base + "/api/session/is-auth-enabled").json()["has_valid_token"] is True
        assert browser.post(base + "/api/session/logout").json() == {"message": "Logout successful"}
    assert requests.get(base + "/api/logs", headers={"Authorization": f"Bearer {token}"}).status_code == 401


@pytest.mark.parametrize("method,path,status", [
    ("GET", "/api/nothing", 404), ("PATCH", "/api/logs", 405), ("DELETE", "/api/logs", 405),
    ("GET", "/api/governance/teams/ghost", 404), ("POST", "/api/governance/budgets/ghost/reset", 404),
])
def test_unknown_routes_and_methods(serve, conf, method, path, status):
    r = requests.request(method, serve(conf) + path)
    assert r.status_code == status and r.json()["status_code"] == status


def test_providers_and_config_are_shown_with_keys_redacted(serve, conf):
    base = serve(conf)
    listed = requests.get(base + "/api/providers").json()
    assert listed["total"] == 1 and listed["providers"][0]["name"] == "openai"
    assert OPENAI_KEY not in json.dumps(listed)
    assert listed["providers"][0]["keys"][0]["value"] == f"sk-…{OPENAI_KEY[-4:]}"
    assert requests.get(base + "/api/providers/openai").json()["name"] == "openai"
    assert requests.get(base + "/api/providers/nope").status_code == 404
    shown = requests.get(base + "/api/config").json()
    assert shown["client_config"]["enable_logging"] is True and shown["is_db_connected"] is True


def test_put_config_switches_logging_on_every_worker(serve, conf, upstream):
    base, other = serve(conf), serve(conf)
    r = requests.put(base + "/api/config", json={"client_config": {"disable_content_logging": True,
                                                                   "log_retention_days": 30}})
    assert r.status_code == 200, r.text
    assert r.json()["client_config"]["disable_content_logging"] is True
    assert eventually(lambda: requests.get(other + "/api/config").json()["client_config"]["log_retention_days"] == 30)
    assert chat(other, "").status_code == 200
    row = eventually(lambda: requests.get(other + "/api/logs").json()["logs"])[0]
    assert row["input_history"] is None
    assert serve(conf) and requests.get(serve(conf) + "/api/config").json()["client_config"]["log_retention_days"] == 30


@pytest.mark.parametrize("body,message", [
    ({"client_config": {"enable_logging": "yes"}}, "client_config.enable_logging: must be true or false"),
    ({"client_config": {"log_retention_days": -2}}, "client_config.log_retention_days: must be a whole number, at least 0"),
    ({"client_config": {"drop_excess_requests": "yes"}}, "client_config.drop_excess_requests: must be true or false"),
    ({"client_config": {"enforce_auth_on_inference": True}},
     "client_config.enforce_auth_on_inference: cannot be changed while the gateway runs"),
    ({"client": {}}, "client_config: must be an object"),
])
def test_put_config_refusals(serve, conf, body, message):
    r = requests.put(serve(conf) + "/api/config", json=body)
    assert r.status_code == 400 and r.json()["error"]["message"] == message
