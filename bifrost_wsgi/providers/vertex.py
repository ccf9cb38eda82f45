"""Vertex AI: Google's models through the Gemini wire format, Claude through Anthropic's, chosen per model.

* ``claude*`` models: ``…/publishers/anthropic/models/{model}:rawPredict`` (``:streamRawPredict``) with the
  Anthropic Messages body, minus ``model`` (it is in the URL), plus ``anthropic_version: vertex-2023-10-16``.
* everything else: ``…/publishers/google/models/{model}:generateContent``
  (``:streamGenerateContent?alt=sse``) with the Gemini body.

The host is ``https://{region}-aiplatform.googleapis.com`` (``global``: ``https://aiplatform.googleapis.com``)
unless ``network_config.base_url`` is set, which is then used as it is. The OAuth2 bearer token is added
afterwards by ``credentials.py`` through ``google_auth.access_token``.
"""

from __future__ import annotations

import json
from typing import Mapping
from urllib.parse import quote

from . import anthropic, gemini
from .base import ChatRequest, Key, KeyFields, KeyRules, Target, UpstreamRequest, json_request

ANTHROPIC_VERSION = "vertex-2023-10-16"
DEFAULT_REGION = "us-central1"


def is_claude(model: str) -> bool:
    return model.startswith("claude")


def base_url(target: Target) -> str:
    base = target.base_url
    if "{region}" not in base:
        return base  # the user's own network_config.base_url
    region = region_of(target)
    if region == "global":
        return base.replace("{region}-", "").replace("{region}.", "")
    return base.replace("{region}", region)


def region_of(target: Target) -> str:
    return (target.key.settings or {}).get("region") or DEFAULT_REGION


def url(target: Target, *, stream: bool) -> str:
    vertex = target.key.settings or {}
    project = quote(vertex.get("project_id") or "", safe="")
    region = quote(region_of(target), safe="")
    model = quote(target.model, safe="-._@")
    if is_claude(target.model):
        publisher, method = "anthropic", (":streamRawPredict" if stream else ":rawPredict")
    else:
        publisher, method = "google", (":streamGenerateContent?alt=sse" if stream else ":generateContent")
    return (f"{base_url(target)}/v1/projects/{project}/locations/{region}"
            f"/publishers/{publisher}/models/{model}{method}")


def claude_body(req: ChatRequest, target: Target, *, stream: bool, passthrough: bool) -> dict:
    body = anthropic.build_body(req, target, stream=stream, passthrough=passthrough)
    body.pop("model", None)
    return {"anthropic_version": ANTHROPIC_VERSION, **body}


class VertexAdapter(KeyRules):
    key_fields = KeyFields("vertex_key_config", frozenset({"project_id", "region", "auth_credentials"}),
                           frozenset({"project_number", "deployments"}), secrets=frozenset({"auth_credentials"}))

    def check_key(self, key: Key) -> tuple[str, str] | None:
        if not (key.settings or {}).get("project_id"):
            return ".vertex_key_config.project_id", "is required for vertex"
        return None

    framing = "sse"  # both routes stream server-sent events

    def build_request(self, req: ChatRequest, target: Target, *, stream: bool, passthrough: bool = False) -> UpstreamRequest:
        if is_claude(target.model):
            body = claude_body(req, target, stream=stream, passthrough=passthrough)
        else:
            body = gemini.build_body(req, target, stream=stream, passthrough=passthrough)
        return json_request(url(target, stream=stream), body, stream=stream)

    def parse_response(self, body: bytes, target: Target) -> dict:
        if is_claude(target.model):
            return anthropic.ADAPTER.parse_response(body, target)
        return gemini.parse_body(gemini.json_object(body), model=target.model)

    def parse_error(self, status: int, headers: Mapping[str, str], body: bytes, target: Target):
        # Vertex itself (quota, auth, unknown model) answers in Google's shape on both routes; only errors
        # from Claude itself come in Anthropic's ``{"type": "error", …}``.
        if is_claude(target.model) and _is_anthropic_error(body):
            return anthropic.parse_error_body(status, body)
        return gemini.parse_error_body(status, body)

    def new_stream(self, req: ChatRequest, target: Target):
        if is_claude(target.model):
            return anthropic.ADAPTER.new_stream(req, target)
        return gemini.GeminiStream(model=target.model)


def _is_anthropic_error(body: bytes) -> bool:
    try:
        data = json.loads(body)
    except ValueError:
        return False
    return isinstance(data, dict) and data.get("type") == "error"


ADAPTER = VertexAdapter()
