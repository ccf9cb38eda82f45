"""ElevenLabs is a speech provider: every other kind of request to it is ``unsupported_operation``, through
the router (whatever route asks) and over HTTP for the routes that exist."""

from __future__ import annotations

import pytest
import requests

from bifrost_wsgi import errors as E
from bifrost_wsgi.config import load
from bifrost_wsgi.operations import (CHAT, COUNT_TOKENS, EMBEDDING, IMAGE_GENERATION, LIST_MODELS, RESPONSES,
                                     TEXT_COMPLETION)
from bifrost_wsgi.routing.router import Router
from tests.conftest import provider_config

NOT_SPEECH = [CHAT, TEXT_COMPLETION, EMBEDDING, RESPONSES, COUNT_TOKENS, IMAGE_GENERATION, LIST_MODELS]


@pytest.mark.parametrize("configured", [True, False], ids=["configured", "not-configured"])
@pytest.mark.parametrize("operation", NOT_SPEECH, ids=[o.name for o in NOT_SPEECH])
def test_router_refuses_every_other_operation(operation, configured):
    providers = {"openai": provider_config("http://127.0.0.1:9")}
    if configured:
        providers["elevenlabs"] = provider_config("http://127.0.0.1:9", key="xi-k")
    router = Router(load({"providers": providers}))
    with pytest.raises(E.UnsupportedOperation) as info:
        router.resolve("elevenlabs", "eleven_v3", operation)
    err = info.value
    assert err.message == f"{operation.request_type} is not supported by elevenlabs provider"
    assert (err.status, err.type) == (400, "unsupported_operation")


def test_chat_to_elevenlabs_over_http(serve, upstream):
    url = serve({"providers": {"elevenlabs": provider_config(upstream.url, key="xi-k")}})
    r = requests.post(url + "/v1/chat/completions",
                      json={"model": "elevenlabs/eleven_v3", "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 400
    env = r.json()
    assert env["error"]["type"] == "unsupported_operation"
    assert env["error"]["message"] == "chat_completion is not supported by elevenlabs provider"
    assert env["extra_fields"]["request_type"] == "chat_completion"
    assert upstream.requests == []
