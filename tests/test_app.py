"""Routing, the error envelope on every route, embedding under a prefix, /health and /v1/models."""

import pytest
import requests

from bifrost_wsgi import make_app
from tests.conftest import provider_config
from tests.fakes import Reply, chat_completion
from tests.servers import LiveServer

HI = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize("method,path,status,allow", [
    ("GET", "/nope", 404, None),
    ("POST", "/v1/fine_tuning/jobs", 404, None),
    ("GET", "/v1/chat/completions", 405, "POST"),
    ("DELETE", "/health", 405, "GET, HEAD"),
    ("POST", "/v1/models", 405, "GET, HEAD"),
])
def test_unknown_routes_and_methods_get_the_envelope(gateway, method, path, status, allow):
    r = requests.request(method, gateway + path)
    assert r.status_code == status
    env = r.json()
    assert env["status_code"] == status
    assert env["extra_fields"] == {"provider": "", "model_requested": "", "request_type": ""}
    assert r.headers.get("Allow") == allow


def test_health(gateway):
    r = requests.get(gateway + "/health")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


def test_openai_prefixed_alias(gateway, upstream):
    upstream.add(Reply(json=chat_completion()))
    r = requests.post(gateway + "/openai/v1/chat/completions", json={"model": "openai/m", "messages": HI})
    assert r.status_code == 200


def test_mounted_under_a_prefix(upstream):
    """An app that mounts the gateway under /llm passes the prefix in SCRIPT_NAME (PEP 3333)."""
    gateway = make_app({"providers": {"openai": provider_config(upstream.url)}})

    def host_app(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith("/llm/"):
            environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + "/llm"
            environ["PATH_INFO"] = path[4:]
            return gateway(environ, start_response)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"host"]

    server = LiveServer(host_app)
    try:
        upstream.add(Reply(json=chat_completion("mounted")))
        r = requests.post(server.url + "/llm/v1/chat/completions", json={"model": "openai/m", "messages": HI})
        assert r.json()["choices"][0]["message"]["content"] == "mounted"
        assert requests.get(server.url + "/llm/health").json() == {"status": "ok"}
        assert requests.get(server.url + "/other").text == "host"
    finally:
        server.close()


def test_internal_error_is_a_generic_500(gateway, upstream, serve, monkeypatch):
    from bifrost_wsgi.routing import router as dispatch

    def explode(self, req, ctx):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(dispatch.Router, "complete", explode)
    r = requests.post(gateway + "/v1/chat/completions", json={"model": "openai/m", "messages": HI})
    assert r.status_code == 500
    env = r.json()
    assert env["is_bifrost_error"] is True
    assert env["error"]["message"] == "internal server error"
    assert "secret" not in r.text and "Traceback" not in r.text


def test_models_lists_configured_ids_and_upstream_list(upstream, serve):
    url = serve({"providers": {
        "openai": provider_config(upstream.url),
        "groq": {"keys": [{"value": "g", "models": ["llama-3.3-70b", "mixtral"]}],
                 "network_config": {"base_url": upstream.url}},
        "azure": {"keys": [{"value": "a", "azure_key_config": {"endpoint": upstream.url,
                                                               "deployments": {"gpt-4o": "prod"}}}]},
    }})
    upstream.add(Reply(json={"object": "list", "data": [
        {"id": "gpt-4o", "object": "model", "created": 1715367049, "owned_by": "system"},
        {"id": "gpt-4o-mini", "object": "model", "created": 1721172741, "owned_by": "system"}]}))
    r = requests.get(url + "/v1/models")
    assert r.status_code == 200
    ids = [m["id"] for m in r.json()["data"]]
    assert ids == ["openai/gpt-4o", "openai/gpt-4o-mini", "groq/llama-3.3-70b", "groq/mixtral", "azure/gpt-4o"]
    assert r.json()["object"] == "list"
    listing = upstream.requests[0]
    assert listing.path == "/v1/models" and listing.headers["authorization"].startswith("Bearer ")
    # cached: a second listing does not call the upstream again
    requests.get(url + "/v1/models")
    assert len(upstream.requests) == 1
    only = requests.get(url + "/v1/models?provider=groq").json()["data"]
    assert [m["id"] for m in only] == ["groq/llama-3.3-70b", "groq/mixtral"]
    assert requests.get(url + "/v1/models?provider=nope").status_code == 400


def test_models_upstream_failure_is_skipped(upstream, serve):
    url = serve({"providers": {"openai": provider_config(upstream.url)}})
    upstream.add(Reply(status=500, json={"error": {"message": "down"}}))
    r = requests.get(url + "/v1/models")
    assert r.status_code == 200 and r.json()["data"] == []


def test_building_the_app_does_not_import_requests(tmp_path):
    """requests (~100 ms to import) is loaded at the first upstream call, or by the gunicorn master before
    it forks; importing the package and building the app from a config must not pay for it."""
    import json
    import subprocess
    import sys

    config = tmp_path / "config.json"
    config.write_text(json.dumps({"providers": {"openai": {"keys": [{"value": "sk-x", "models": []}]}}}))
    code = "import sys, bifrost_wsgi.wsgi; print('requests' in sys.modules, 'urllib3' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], env={"BIFROST_CONFIG": str(config), "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
