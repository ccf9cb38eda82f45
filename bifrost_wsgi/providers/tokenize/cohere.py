"""Tokens on Cohere: ``POST /v1/tokenize`` with ``text`` and ``model``; the answer keeps ``tokens`` and
``token_strings``."""

from __future__ import annotations

from typing import Mapping

from .. import cohere
from ..base import Target, UpstreamRequest, error_from_body, json_object, json_request


class CohereTokenize:
    def build_request(self, req, target: Target, *, stream: bool, passthrough: bool = False) -> UpstreamRequest:
        return json_request(target.base_url + "/v1/tokenize", {"text": req.text, "model": target.model},
                            stream=False)

    def parse_response(self, body: bytes, target: Target) -> dict:
        data = json_object(body)
        tokens, strings = data["tokens"], data.get("token_strings") or []
        if not isinstance(tokens, list) or not isinstance(strings, list):
            raise ValueError("tokens or token_strings is not an array")
        return {"tokens": tokens, "token_strings": strings}

    def parse_error(self, status: int, headers: Mapping[str, str], body: bytes, target: Target):
        return error_from_body(status, body, cohere.parse_error_data)


COHERE = CohereTokenize()
