"""OpenAI's ``POST /v1/audio/speech``: the client's body with the provider's model; the answer is the audio."""

from __future__ import annotations

from ...errors import UnsupportedOperation
from ...operations import SPEECH
from ...transport import UpstreamRequest
from ..base import dumps
from ..openai_compat import ADAPTER as CHAT
from .audio import Passthrough, requested

#: the OpenAI-compatible rows that have the speech API, and its path there
PATHS = {"openai": "/v1/audio/speech"}


def body(req, model: str, *, passthrough: bool) -> dict:
    out = {"model": model, "input": req.input, "voice": req.voice, **req.params}
    out.pop("stream_format", None)  # the gateway frames SSE itself, from the bytes
    if passthrough:
        for k, v in req.extra.items():
            out.setdefault(k, v)
    return out


def request(url: str, req, model: str, *, passthrough: bool) -> UpstreamRequest:
    return UpstreamRequest("POST", url, {"Content-Type": "application/json", "Accept": "*/*"},
                           dumps(body(req, model, passthrough=passthrough)).encode())


class OpenAISpeech:
    framing = "bytes"
    parse_error = staticmethod(CHAT.parse_error)

    def build_request(self, req, target, *, stream: bool, passthrough: bool) -> UpstreamRequest:
        path = PATHS.get(target.row.name)
        if path is None:
            raise UnsupportedOperation(f"{SPEECH.request_type} is not supported by {target.provider} provider")
        return request(target.base_url + path, req, target.model, passthrough=passthrough)

    def new_stream(self, req, target) -> Passthrough:
        return Passthrough(requested(req))


TRANSLATOR = OpenAISpeech()
