"""The scale-out recipe (deploy/scale-out) as committed: Docker does not run in CI, so its pieces are checked
for what they promise: the compose file parses (it is JSON, a subset of YAML) and wires N gateways, one
PostgreSQL and nginx together; the gateways' config validates with the gateway's own parser and keeps its
secrets in the environment; nginx lists every gateway."""

import json
import os
import re

import pytest

from bifrost_wsgi.config import from_dict

HERE = os.path.join(os.path.dirname(__file__), "..", "deploy", "scale-out")


def read(name: str) -> str:
    with open(os.path.join(HERE, name), encoding="utf-8") as f:
        return f.read()


@pytest.fixture(scope="module")
def compose() -> dict:
    return json.loads(read("docker-compose.yml"))


def gateways(compose: dict) -> dict:
    return {name: s for name, s in compose["services"].items() if name.startswith("gateway-")}


def test_compose_runs_several_gateways_on_one_postgres(compose):
    services = compose["services"]
    assert set(services) == {"postgres", "nginx", *gateways(compose)}
    assert len(gateways(compose)) >= 2
    assert services["postgres"]["image"].startswith("postgres:")
    for name, gateway in gateways(compose).items():
        assert gateway["depends_on"]["postgres"]["condition"] == "service_healthy", name
        assert "./config.json:/etc/bifrost-wsgi/config.json:ro" in gateway["volumes"], name
        assert gateway["environment"]["PGPASSWORD"] == "${PGPASSWORD}", name
        assert os.path.exists(os.path.join(HERE, "..", "..", gateway["build"]["dockerfile"])), name
    assert set(services["nginx"]["depends_on"]) == set(gateways(compose))
    assert "./nginx.conf:/etc/nginx/conf.d/default.conf:ro" in services["nginx"]["volumes"]


def test_the_image_has_the_postgres_driver():
    dockerfile = read("Dockerfile")
    assert "FROM bifrost-wsgi" in dockerfile and "psycopg[binary]" in dockerfile


def test_nginx_spreads_over_every_gateway(compose):
    upstream = re.search(r"upstream bifrost_gateways \{(.*?)\}", read("nginx.conf"), re.S).group(1)
    servers = re.findall(r"^\s*server ([\w.-]+):8080\b", upstream, re.M)
    assert sorted(servers) == sorted(gateways(compose))
    assert "proxy_pass http://bifrost_gateways;" in read("nginx.conf")


CASES = [  # (variables set, what happens)
    ({"PGPASSWORD": "pw", "BIFROST_ADMIN_PASSWORD": "admin-pw", "OPENAI_API_KEY": "sk-test"}, None),
    ({"BIFROST_ADMIN_PASSWORD": "admin-pw", "OPENAI_API_KEY": "sk-test"}, "environment variable PGPASSWORD"),
]


@pytest.mark.parametrize("environ, error", CASES)
def test_the_config_validates_with_postgres_stores(environ, error):
    raw = json.loads(read("config.json"))
    assert raw["config_store"]["config"]["password"] == "env.PGPASSWORD"
    assert raw["logs_store"]["config"]["password"] == "env.PGPASSWORD"
    if error is not None:
        with pytest.raises(Exception, match=error):
            from_dict(raw, environ=environ)
        return
    config = from_dict(raw, environ=environ)
    for spec in (config.governance.config_store, config.governance.logs_store):
        assert (spec.type, spec.host, spec.db_name, spec.password) == ("postgres", "postgres", "bifrost", "pw")
    assert config.governance.auth.admin_password == "admin-pw"
    assert config.warnings == ()
