"""Embeddings on Google: Gemini's ``:batchEmbedContents`` (one request per input in one call) and Vertex AI's
``:predict`` (one instance per input). Both take text only. ``task_type`` and ``dimensions`` map to each
API's own field (``taskType``/``outputDimensionality`` on Gemini, ``task_type`` per instance and
``parameters.outputDimensionality`` on Vertex)."""

from __future__ import annotations

from typing import Mapping
from urllib.parse import quote

from .. import gemini, vertex
from ..base import Target, UpstreamRequest, json_request
from .shape import answer, texts_only, vector


def _resource(model: str) -> str:
    # a full resource name (tunedModels/…, models/…) is kept; a bare name goes under models/
    return model if "/" in model else "models/" + model


class GeminiEmbeddings:
    def build_request(self, req, target: Target, *, stream: bool, passthrough: bool = False) -> UpstreamRequest:
        name = _resource(target.model)
        common = {}
        if "task_type" in req.params:
            common["taskType"] = req.params["task_type"].upper()
        if "dimensions" in req.params:
            common["outputDimensionality"] = req.params["dimensions"]
        requests = [{"model": name, "content": {"parts": [{"text": text}]}, **common}
                    for text in texts_only(req, "gemini")]
        url = f"{target.base_url}/{quote(name, safe='/-._@')}:batchEmbedContents"
        return json_request(url, {"requests": requests}, stream=False)

    def parse_response(self, body: bytes, target: Target) -> dict:
        data = gemini.json_object(body)
        # Gemini reports no token usage for embeddings
        return answer([vector(e["values"]) for e in data["embeddings"]], model=target.model)

    def parse_error(self, status: int, headers: Mapping[str, str], body: bytes, target: Target):
        return gemini.parse_error_body(status, body)


class VertexEmbeddings:
    def build_request(self, req, target: Target, *, stream: bool, passthrough: bool = False) -> UpstreamRequest:
        conf = target.key.settings or {}
        task = req.params.get("task_type")
        instances = [{"content": text, **({"task_type": task.upper()} if task else {})}
                     for text in texts_only(req, "vertex")]
        body: dict = {"instances": instances}
        if "dimensions" in req.params:
            body["parameters"] = {"outputDimensionality": req.params["dimensions"]}
        url = (f"{vertex.base_url(target)}/v1/projects/{quote(conf.get('project_id') or '', safe='')}"
               f"/locations/{quote(vertex.region_of(target), safe='')}/publishers/google/models/"
               f"{quote(target.model, safe='-._@')}:predict")
        return json_request(url, body, stream=False)

    def parse_response(self, body: bytes, target: Target) -> dict:
        predictions = gemini.json_object(body)["predictions"]
        vectors = [vector(p["embeddings"]["values"]) for p in predictions]
        tokens = sum(int(p["embeddings"].get("statistics", {}).get("token_count", 0)) for p in predictions)
        return answer(vectors, model=target.model, prompt_tokens=tokens)

    def parse_error(self, status: int, headers: Mapping[str, str], body: bytes, target: Target):
        return gemini.parse_error_body(status, body)


GEMINI = GeminiEmbeddings()
VERTEX = VertexEmbeddings()
