"""deploy/nginx/bifrost.conf keeps the admin API to loopback: nginx itself connects to the gateway from
loopback, so without this rule anyone who reaches nginx would be an admin."""

import socket

import pytest
import requests

import tests.deploy_procs as deploy
from tests.conftest import provider_config
from tests.fakes import FakeUpstream

pytestmark = pytest.mark.slow


def outside_address() -> str | None:
    """This machine's address on a non-loopback interface (nothing is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))
        except OSError:
            return None
        address = s.getsockname()[0]
    return None if address.startswith("127.") or address == "0.0.0.0" else address


@pytest.fixture
def proxy(tmp_path, monkeypatch):
    binary, address = deploy.nginx_binary(), outside_address()
    if binary is None or address is None:
        pytest.skip("needs nginx and a non-loopback interface")
    render = deploy.render_nginx_conf
    # the deploy file as shipped, listening on every interface instead of loopback only
    monkeypatch.setattr(deploy, "render_nginx_conf",
                        lambda listen, upstream: render(listen.replace("127.0.0.1:", "0.0.0.0:"), upstream))
    fake = FakeUpstream()
    (tmp_path / "nginx").mkdir()
    server = deploy.Gunicorn({"providers": {"openai": provider_config(fake.url)}}, tmp_path, workers=1)
    nginx = None
    try:
        nginx = deploy.Nginx(binary, tmp_path / "nginx", upstream=f"127.0.0.1:{server.port}")
        yield nginx.port, address
    finally:
        if nginx is not None:
            nginx.close()
        server.close()
        fake.close()


def test_admin_api_only_from_loopback_but_the_quota_from_anywhere(proxy, tmp_path):
    port, address = proxy
    inside, outside = f"http://127.0.0.1:{port}", f"http://{address}:{port}"
    assert requests.get(inside + "/api/logs").status_code == 200
    for path in ("/api/logs", "/api/governance/virtual-keys", "/api/session/is-auth-enabled"):
        r = requests.get(outside + path)
        assert r.status_code == 403 and r.json()["status_code"] == 403, path
    # the quota route reaches the gateway (which wants a virtual key; none is configured here)
    r = requests.get(outside + "/api/governance/virtual-keys/quota")
    assert r.status_code == 401 and r.json()["error"]["code"] == "virtual_key_required"
    assert requests.get(outside + "/health").status_code == 200
