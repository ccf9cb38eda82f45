"""The drop-in routes' streams through the real server (gunicorn gthread): Gemini SSE, Bedrock's binary
event-stream and Cohere's events, each read by its official SDK."""

from __future__ import annotations

import boto3
import cohere
import pytest
from botocore.config import Config
from google import genai
from google.genai import types

from tests.conftest import provider_config
from tests.fakes import Reply, openai_chunks, sse
from tests.procs import Gateway


@pytest.mark.slow
def test_streams_of_every_drop_in_route_through_gunicorn(upstream):
    upstream.handler = lambda rec: Reply(chunks=sse(*openai_chunks("one", " two")))
    gw = Gateway({"providers": {"openai": provider_config(upstream.url)}}, workers=1, threads=4)
    try:
        client = genai.Client(api_key="unused", http_options=types.HttpOptions(base_url=gw.url + "/genai"))
        chunks = client.models.generate_content_stream(model="openai/gpt-4o", contents="count")
        assert "".join(c.text or "" for c in chunks) == "one two"
        bedrock = boto3.client("bedrock-runtime", endpoint_url=gw.url + "/bedrock", region_name="us-east-1",
                               aws_access_key_id="fake", aws_secret_access_key="fake",
                               config=Config(retries={"total_max_attempts": 1}))
        events = list(bedrock.converse_stream(modelId="openai/gpt-4o",
                                              messages=[{"role": "user", "content": [{"text": "count"}]}])["stream"])
        bedrock.close()
        assert "".join(e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e) == "one two"
        assert events[-2] == {"messageStop": {"stopReason": "end_turn"}}
        with cohere.ClientV2(api_key="unused", base_url=gw.url + "/cohere") as c:
            events = list(c.chat_stream(model="openai/gpt-4o", messages=[{"role": "user", "content": "count"}]))
        assert "".join(e.delta.message.content.text for e in events if e.type == "content-delta") == "one two"
        assert events[-1].delta.finish_reason == "COMPLETE"
    finally:
        gw.stop()
