"""Providers and client settings changed through the admin API (/api/providers, PUT /api/config): every
worker serves the change within a second, without a restart, and a restart finds it again; on SQLite and
PostgreSQL; bodies are validated by the config file's own parser."""

import concurrent.futures

import pytest
import requests

from tests.conftest import OPENAI_KEY, provider_config
from tests.fakes import Reply, chat_completion
from tests.govfix import eventually, pg_server, stores  # noqa: F401 - fixtures
from tests.procs import Gateway

HI = [{"role": "user", "content": "hi"}]
MINE_KEY = "sk-mine-SECRET-key-7777"


def chat(base, model="mine/gpt-4o-mini"):
    return requests.post(base + "/v1/chat/completions", json={"model": model, "messages": HI})


def mine(upstream_url, *, key=MINE_KEY) -> dict:
    """A custom provider (OpenAI-compatible) at the fake upstream: POST /api/providers' body."""
    return {"provider": "mine", "custom_provider_config": {"base_provider_type": "openai"},
            **provider_config(upstream_url, key=key)}


@pytest.fixture
def conf(upstream, stores):
    upstream.handler = lambda rec: Reply(json=chat_completion("ok"))
    return {"providers": {"openai": provider_config(upstream.url)}, **stores}


def test_a_provider_added_replaced_and_removed_reaches_the_other_worker(serve, conf, upstream):
    base, other = serve(conf), serve(conf)  # two apps on one store: as two gunicorn workers
    assert chat(base).status_code == 400  # not configured yet
    r = requests.post(base + "/api/providers", json=mine(upstream.url))
    assert r.status_code == 201, r.text
    assert r.json()["keys"][0]["value"] == "sk-…7777" and MINE_KEY not in r.text
    assert chat(base).status_code == 200  # this worker: before the answer
    assert eventually(lambda: chat(other).status_code == 200)  # the other: within a second
    assert upstream.requests[-1].headers["authorization"] == f"Bearer {MINE_KEY}"
    assert requests.post(base + "/api/providers", json=mine(upstream.url)).status_code == 409

    # GET shows the key as a hint; sending the hint back keeps the key, the rest is replaced
    shown = requests.get(other + "/api/providers/mine").json()
    shown["network_config"]["max_retries"] = 2
    body = {"custom_provider_config": {"base_provider_type": "openai"}, "keys": shown["keys"],
            "network_config": {"base_url": upstream.url, "max_retries": 2}}
    r = requests.put(other + "/api/providers/mine", json=body)
    assert r.status_code == 200, r.text
    assert eventually(lambda: requests.get(base + "/api/providers/mine").json()["network_config"]["max_retries"] == 2)
    assert chat(base).status_code == 200
    assert upstream.requests[-1].headers["authorization"] == f"Bearer {MINE_KEY}"

    # a config.json provider can be removed too
    assert requests.delete(base + "/api/providers/openai").status_code == 200
    assert eventually(lambda: chat(other, "openai/gpt-4o-mini").status_code == 400)
    names = {p["name"] for p in requests.get(other + "/api/providers").json()["providers"]}
    assert names == {"mine"}
    assert requests.delete(base + "/api/providers/openai").status_code == 404


BAD = [  # (body, status, param)
    ({"provider": "mine", "keys": []}, 400, "$"),  # unknown built-in name without custom_provider_config
    ({"provider": "openai", "keys": [{"value": "x"}]}, 409, None),
    ({"keys": []}, 400, "provider"),
    ({"provider": "mine", "custom_provider_config": {"base_provider_type": "nope"}, "keys": []}, 400,
     "custom_provider_config.base_provider_type"),
    ({"provider": "mine", "custom_provider_config": {"base_provider_type": "openai"},
      "keys": [{"value": 7}], "network_config": {"base_url": "http://x"}}, 400, "keys[0].value"),
    ({"provider": "mine", "custom_provider_config": {"base_provider_type": "openai"},
      "keys": [{"value": "k"}], "network_config": {"base_url": "ftp://x"}}, 400, "network_config.base_url"),
    ({"provider": "mine", "custom_provider_config": {"base_provider_type": "openai"},
      "keys": [{"value": "env.NOT_SET_ANYWHERE"}], "network_config": {"base_url": "http://x"}}, 400, "keys[0].value"),
]


@pytest.mark.parametrize("body, status, param", BAD)
def test_a_bad_provider_is_refused_naming_the_field(gateway, body, status, param):
    r = requests.post(gateway + "/api/providers", json=body)
    assert r.status_code == status, r.text
    if param is not None:
        assert r.json()["error"]["param"] == param, r.text


CLIENT = [  # (client_config, status, param or the value GET then shows)
    ({"max_fallbacks": 2}, 200, 2),
    ({"request_deadline_in_seconds": 0}, 400, "client_config.request_deadline_in_seconds"),
    ({"stream_failover": "sometimes"}, 400, "client_config.stream_failover"),
    ({"enforce_auth_on_inference": True}, 400, "client_config.enforce_auth_on_inference"),
    ({"no_such_setting": 1}, 400, "client_config.no_such_setting"),
]


@pytest.mark.parametrize("client, status, expected", CLIENT)
def test_client_settings_change_on_every_worker(serve, conf, client, status, expected):
    base, other = serve(conf), serve(conf)
    r = requests.put(base + "/api/config", json={"client_config": client})
    assert r.status_code == status, r.text
    if status != 200:
        assert r.json()["error"]["param"] == expected
        return
    name = next(iter(client))
    assert eventually(lambda: requests.get(other + "/api/config").json()["client_config"][name] == expected)


def test_a_provider_added_is_routable_on_both_gunicorn_workers_and_after_a_restart(upstream):
    upstream.handler = lambda rec: Reply(json=chat_completion("ok"))
    conf = {"providers": {"openai": provider_config(upstream.url)}}
    gw = Gateway(conf, workers=2, threads=4)
    try:
        assert requests.post(gw.url + "/api/providers", json=mine(upstream.url)).status_code == 201

        def all_served():  # fresh connections: the kernel spreads them over both workers
            with concurrent.futures.ThreadPoolExecutor(4) as pool:
                return all(code == 200 for code in pool.map(lambda _: chat(gw.url).status_code, range(16)))

        assert eventually(all_served)
        r = requests.put(gw.url + "/api/config", json={"client_config": {"max_fallbacks": 3}})
        assert r.status_code == 200, r.text
    finally:
        gw.stop()
    again = Gateway(conf, workers=2, threads=4)  # the same data directory: the same store
    try:
        assert chat(again.url).status_code == 200
        listed = requests.get(again.url + "/api/providers").json()
        assert {p["name"] for p in listed["providers"]} == {"openai", "mine"}
        assert MINE_KEY not in str(listed) and OPENAI_KEY not in str(listed)
        assert requests.get(again.url + "/api/config").json()["client_config"]["max_fallbacks"] == 3
    finally:
        again.stop()
