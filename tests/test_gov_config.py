"""The governance and store sections of config.json: what loads, and every refusal naming its JSON path."""

import pytest

from bifrost_wsgi import config as C
from bifrost_wsgi.governance import durations


@pytest.mark.parametrize("text,seconds", [
    ("30s", 30), ("5m", 300), ("1h", 3600), ("1h30m", 5400), ("1d", 86400), ("1w", 604800),
    ("1M", 30 * 86400), ("1Y", 365 * 86400), ("daily", 86400), ("weekly", 604800), ("monthly", 30 * 86400),
    ("yearly", 365 * 86400), ("500ms", 0.5),
])
def test_durations(text, seconds):
    assert durations.seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "1", "m", "1x", "fortnight", "0s", "-1h", "1h 30m"])
def test_bad_durations(text):
    with pytest.raises(ValueError, match="Invalid reset duration format"):
        durations.seconds(text)


VK = {"id": "vk", "name": "k", "value": "sk-bf-x"}


def load(gov=None, **top):
    return C.from_dict({"governance": gov or {}, **top}, environ={"PGPW": "pw"})


def test_v15_layout_and_older_singular_forms():
    conf = load({
        "virtual_keys": [{**VK, "team_id": "t", "rate_limit_id": "rl", "budget_id": "b-old",
                          "provider_configs": [{"id": 7, "provider": "openai", "weight": 2, "allowed_models": [],
                                                "budget": {"max_limit": 3, "reset_duration": "1d"}}]}],
        "budgets": [{"id": "b-old", "max_limit": 5, "reset_duration": "1M"},
                    {"id": "b-team", "max_limit": 9, "reset_duration": "1w", "team_id": "t"}],
        "rate_limits": [{"id": "rl", "request_max_limit": 10, "request_reset_duration": "1m"}],
        "teams": [{"id": "t", "name": "team", "customer_id": "c"}],
        "customers": [{"id": "c", "name": "acme", "budget": {"max_limit": 50, "reset_duration": "1M"}}],
    })
    g = conf.governance
    owners = {b.id: (b.virtual_key_id, b.team_id, b.customer_id, b.provider_config_id) for b in g.budgets}
    assert owners == {"b-old": ("vk", "", "", ""), "b-team": ("", "t", "", ""), "c-budget": ("", "", "c", ""),
                      "7-budget": ("", "", "", "7")}
    assert g.virtual_keys[0].provider_configs[0].weight == 2.0 and g.virtual_keys[0].rate_limit_id == "rl"
    assert conf.governance.config_store.type == "sqlite" and conf.governance.enable_logging


def test_postgres_store_and_logging_switches():
    conf = load(None, config_store={"type": "postgres", "config": {"host": "db", "port": "5433", "user": "u",
                                                                   "password": "env.PGPW", "db_name": "b"}},
                logs_store={"type": "postgres", "config": {"host": "db"}, "retention_days": 7},
                client={"enable_logging": True, "disable_content_logging": True},
                framework={"pricing": {"pricing_url": "/etc/prices.json"}})
    g = conf.governance
    assert (g.config_store.type, g.config_store.port, g.config_store.password) == ("postgres", 5433, "pw")
    assert "pw" not in repr(g.config_store)
    assert g.retention_days == 7 and g.disable_content_logging and g.pricing_url == "/etc/prices.json"


@pytest.mark.parametrize("gov,top,message", [
    ({"budgets": [{"id": "b", "reset_duration": "1d", "virtual_key_id": "vk"}]}, {},
     "governance.budgets[0].max_limit: is required"),
    ({"budgets": [{"id": "b", "max_limit": -1, "reset_duration": "1d"}]}, {},
     "governance.budgets[0].max_limit: Budget max_limit cannot be negative: -1.00"),
    ({"budgets": [{"id": "b", "max_limit": 1, "reset_duration": "soon"}]}, {},
     "governance.budgets[0].reset_duration: Invalid reset duration format: soon"),
    ({"budgets": [{"id": "b", "max_limit": 1, "reset_duration": "1d", "team_id": "t", "customer_id": "c"}]}, {},
     "governance.budgets[0]: a budget belongs to one of virtual_key_id, team_id, customer_id, provider_config_id, "
     "not several"),
    ({"rate_limits": [{"id": "r", "request_max_limit": 5}]}, {},
     "governance.rate_limits[0].request_reset_duration: is required"),
    ({"rate_limits": [{"id": "r", "token_max_limit": 1.5, "token_reset_duration": "1h"}]}, {},
     "governance.rate_limits[0].token_max_limit: must be a whole number, at least 0"),
    ({"virtual_keys": [{**VK, "rate_limit_id": "nope"}]}, {}, "governance.virtual_keys[0].rate_limit_id: no rate limit nope"),
    ({"virtual_keys": [{**VK, "team_id": "t", "customer_id": "c"}]}, {},
     "governance.virtual_keys[0]: VirtualKey cannot be attached to both Team and Customer"),
    ({"virtual_keys": [{**VK, "team_id": "ghost"}]}, {}, "governance.virtual_keys[0].team_id: no team ghost"),
    ({"virtual_keys": [{**VK, "budget_id": "b-x"}]}, {},
     "governance: virtual_key vk names budget_id b-x, which governance.budgets does not declare"),
    ({"virtual_keys": [{**VK, "provider_configs": [{"provider": "openai", "weight": -1}]}]}, {},
     "governance.virtual_keys[0].provider_configs[0].weight: must be at least 0"),
    ({"virtual_keys": [{**VK, "expires_at": "tomorrow"}]}, {},
     "governance.virtual_keys[0].expires_at: must be an RFC 3339 time"),
    ({"teams": [{"id": "t", "name": "x", "customer_id": "ghost"}]}, {}, "governance.teams[0].customer_id: no customer ghost"),
    ({"auth_config": {"is_enabled": True, "admin_username": "admin"}}, {},
     "governance.auth_config: admin_username and admin_password are required when is_enabled is true"),
    ({"budgets": {}}, {}, "governance.budgets: must be an array"),
    ({"virtual_keys": [{**VK, "colour": 1}]}, {}, "governance.virtual_keys[0].colour: unknown key"),
    ({}, {"config_store": {"type": "mysql"}}, 'config_store.type: must be "sqlite" or "postgres"'),
    ({}, {"logs_store": {"type": "postgres", "config": {"hostname": "x"}}}, "logs_store.config.hostname: unknown key"),
    ({}, {"logs_store": {"retention_days": -1}}, "logs_store.retention_days: must be a whole number, at least 0"),
    ({}, {"client": {"enable_logging": "yes"}}, "client.enable_logging: must be true or false"),
    ({}, {"framework": {"pricing": {"pricing_url": 5}}}, "framework.pricing.pricing_url: must be a string"),
])
def test_refusals_name_the_path(gov, top, message):
    with pytest.raises(C.ConfigError) as err:
        load(gov, **top)
    assert str(err.value) == message
