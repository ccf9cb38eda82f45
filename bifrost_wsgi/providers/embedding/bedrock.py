"""Embeddings on Bedrock through ``POST /model/{id}/invoke`` with each model family's native body.

Titan takes one ``inputText`` per call, so a request with several inputs is several upstream calls in one
attempt (``build_requests``/``parse_responses``: the router sends them in order and fails the attempt on the
first error); Cohere's models take every input as ``texts`` in one call. Both take text only."""

from __future__ import annotations

from typing import Mapping
from urllib.parse import quote

from .. import bedrock
from ..base import Target, UpstreamRequest, json_object, json_request
from .cohere import body_for, vectors_of
from .shape import answer, texts_only, vector


def _url(target: Target) -> str:
    base = target.base_url.replace("{region}", bedrock.region(target))
    return f"{base}/model/{quote(bedrock.model_id(target), safe='')}/invoke"


def _is_cohere(target: Target) -> bool:
    return "cohere" in f"{target.model} {bedrock.model_id(target)}".lower()


class BedrockEmbeddings:
    def build_requests(self, req, target: Target, *, passthrough: bool = False) -> list[UpstreamRequest]:
        url = _url(target)
        if _is_cohere(target):
            return [json_request(url, body_for(req, "bedrock"), stream=False)]
        extra = {"dimensions": req.params["dimensions"]} if "dimensions" in req.params else {}
        return [json_request(url, {"inputText": text, **extra}, stream=False) for text in texts_only(req, "bedrock")]

    def parse_responses(self, bodies: list[bytes], target: Target) -> dict:
        if _is_cohere(target):
            # Bedrock reports Cohere's token count only in a response header
            return answer(vectors_of(json_object(bodies[0])), model=target.model)
        answers = [json_object(body) for body in bodies]
        tokens = sum(int(a.get("inputTextTokenCount") or 0) for a in answers)
        return answer([vector(a["embedding"]) for a in answers], model=target.model, prompt_tokens=tokens)

    def parse_error(self, status: int, headers: Mapping[str, str], body: bytes, target: Target):
        return bedrock.parse_error(status, headers, body)


BEDROCK = BedrockEmbeddings()
