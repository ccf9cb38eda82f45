"""Azure OpenAI speech: OpenAI's body at the deployment's ``/audio/speech``."""

from __future__ import annotations

from .. import azure_deployments
from ..azure import ADAPTER as CHAT
from .audio import Passthrough, requested
from .openai_compat import request


class AzureSpeech:
    framing = "bytes"
    parse_error = staticmethod(CHAT.parse_error)

    def build_request(self, req, target, *, stream: bool, passthrough: bool):
        # the deployment names the model; Azure ignores the body's
        return request(azure_deployments.url(target, "/audio/speech"), req, target.model, passthrough=passthrough)

    def new_stream(self, req, target) -> Passthrough:
        return Passthrough(requested(req))


TRANSLATOR = AzureSpeech()
