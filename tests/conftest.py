import os

import pytest

from bifrost_wsgi import make_app
from tests.fakes import FakeUpstream
from tests.servers import LiveServer

OPENAI_KEY = "sk-test-openai-SECRET-0001"


@pytest.fixture(autouse=True)
def _no_proxy_env(monkeypatch):
    # the gateway must not depend on the machine's proxy settings
    for name in list(os.environ):
        if name.lower().endswith("_proxy"):
            monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def _data_dir(monkeypatch, tmp_path_factory, request):
    # each test's gateway (in process or a subprocess) keeps its SQLite stores in its own folder, made
    # only by the gateway that needs it (a tmp_path per test would cost every test a directory)
    folder = tmp_path_factory.getbasetemp() / "data" / f"{abs(hash(request.node.nodeid)):x}"
    monkeypatch.setenv("BIFROST_DATA_DIR", str(folder))


@pytest.fixture
def upstream():
    fake = FakeUpstream()
    yield fake
    fake.close()


@pytest.fixture
def serve():
    servers = []

    def start(config, *, validate=True):
        app = make_app(config)
        server = LiveServer(app, validate=validate)
        servers.append(server)
        return server.url

    yield start
    for s in servers:
        s.close()
        s.app.close()


def provider_config(upstream_url, *, key=OPENAI_KEY, **network):
    net = {"base_url": upstream_url, "default_request_timeout_in_seconds": 5}
    net.update(network)
    return {"keys": [{"name": "k1", "value": key, "models": [], "weight": 1.0}], "network_config": net}


@pytest.fixture
def gateway(upstream, serve):
    """A gateway with openai pointed at the fake upstream; returns its base URL."""
    return serve({"providers": {"openai": provider_config(upstream.url)}})
