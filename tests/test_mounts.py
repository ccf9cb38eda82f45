"""The framework mounts (/litellm, /langchain, /pydanticai): each serves the /openai, /anthropic and /genai
routes under its own prefix, so LiteLLM-, LangChain- or PydanticAI-configured clients reach the same
gateway; checked with the official SDKs of the three formats."""

from __future__ import annotations

import anthropic
import openai
import pytest
from google import genai
from google.genai import types

from bifrost_wsgi.urls import Route, RouteTable
from tests.conftest import provider_config
from tests.fakes import Reply, chat_completion

MOUNTS = ["/litellm", "/langchain", "/pydanticai"]


def test_mount_copies_routes_and_the_first_source_wins():
    table = RouteTable()
    openai_models, anthropic_models, messages = Route(print), Route(repr), Route(str)
    table.extend({"/openai/v1/models": {"GET": openai_models}, "/anthropic/v1/models": {"GET": anthropic_models},
                  "/anthropic/v1/messages": {"POST": messages}, "/v1/other": {"GET": messages},
                  "/genai/v1beta/models/{model:path}:generateContent": {"POST": messages}})
    table.mount("/litellm", sources=("/openai", "/anthropic", "/genai"))
    assert table.match("/litellm/v1/models")[1] == {"GET": openai_models}
    assert table.match("/litellm/v1/messages")[1] == {"POST": messages}
    assert table.match("/litellm/v1beta/models/openai/gpt-4o:generateContent")[2] == {"model": "openai/gpt-4o"}
    assert table.match("/litellm/other")[1] is None


@pytest.fixture
def url(upstream, serve):
    return serve({"providers": {"openai": provider_config(upstream.url)}})


@pytest.mark.parametrize("mount", MOUNTS)
def test_each_sdk_through_each_mount(url, upstream, mount):
    upstream.handler = lambda rec: Reply(json=chat_completion("hi from openai"))
    with openai.OpenAI(base_url=url + mount + "/v1", api_key="unused", max_retries=0) as c:
        answer = c.chat.completions.create(model="openai/gpt-4o", messages=[{"role": "user", "content": "hi"}])
        assert answer.choices[0].message.content == "hi from openai"
    with anthropic.Anthropic(base_url=url + mount, api_key="unused", max_retries=0) as c:
        msg = c.messages.create(model="openai/gpt-4o", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
        assert msg.content[0].text == "hi from openai"
    client = genai.Client(api_key="unused", http_options=types.HttpOptions(base_url=url + mount, api_version="v1beta"))
    assert client.models.generate_content(model="openai/gpt-4o", contents="hi").text == "hi from openai"
    assert [r.path for r in upstream.requests] == ["/v1/chat/completions"] * 3
