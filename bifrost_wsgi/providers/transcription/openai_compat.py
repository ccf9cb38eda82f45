"""OpenAI's ``POST /v1/audio/transcriptions`` (multipart) and Mistral's, which takes the same form minus
``prompt`` and ``response_format`` (it answers JSON with segments when asked for
``timestamp_granularities=segment``, which srt, vtt and verbose_json need)."""

from __future__ import annotations

from dataclasses import dataclass

from ...errors import UnsupportedOperation
from ...operations import TRANSCRIPTION
from ...transport import UpstreamRequest
from ...wire.multipart import Body
from ..openai_compat import ADAPTER as CHAT
from .transcript import TIMED, from_openai


@dataclass(frozen=True, slots=True)
class Dialect:
    path: str
    openai_fields: bool = True  # prompt, response_format, timestamp_granularities[] as OpenAI names them


#: the OpenAI-compatible rows that have the transcription API
DIALECTS = {"openai": Dialect("/v1/audio/transcriptions"),
            "mistral": Dialect("/v1/audio/transcriptions", openai_fields=False)}


def openai_fields(req, model: str, *, passthrough: bool) -> list[tuple[str, str]]:
    params = req.params
    out = [("model", model)]
    out.extend((k, str(params[k])) for k in ("language", "prompt", "response_format", "temperature", "chunking_strategy")
               if k in params)
    out.extend(("timestamp_granularities[]", g) for g in req.granularities)
    out.extend(("include[]", item) for item in params.get("include", ()))
    if passthrough:
        out.extend((k, v) for k, v in req.extra.items())
    return out


def mistral_fields(req, model: str, *, passthrough: bool) -> list[tuple[str, str]]:
    params = req.params
    out = [("model", model)]
    out.extend((k, str(params[k])) for k in ("language", "temperature") if k in params)
    if req.granularities or req.response_format in TIMED:
        out.append(("timestamp_granularities", "segment"))
    if passthrough:
        out.extend((k, v) for k, v in req.extra.items())
    return out


def multipart_request(url: str, fields: list[tuple[str, str]], upload) -> UpstreamRequest:
    body = Body(fields, [("file", upload)])
    return UpstreamRequest("POST", url, {"Content-Type": body.content_type, "Accept": "application/json, text/plain"},
                           body)


class OpenAITranscription:
    parse_error = staticmethod(CHAT.parse_error)

    def build_request(self, req, target, *, stream: bool, passthrough: bool) -> UpstreamRequest:
        dialect = DIALECTS.get(target.row.name)
        if dialect is None:
            raise UnsupportedOperation(f"{TRANSCRIPTION.request_type} is not supported by {target.provider} provider")
        build = openai_fields if dialect.openai_fields else mistral_fields
        return multipart_request(target.base_url + dialect.path, build(req, target.model, passthrough=passthrough),
                                 req.file)

    def parse_response(self, data: bytes, target) -> dict:
        return from_openai(data)


TRANSLATOR = OpenAITranscription()
