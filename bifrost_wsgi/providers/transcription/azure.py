"""Azure OpenAI transcription: OpenAI's form at the deployment's ``/audio/transcriptions``."""

from __future__ import annotations

from .. import azure_deployments
from ..azure import ADAPTER as CHAT
from .openai_compat import multipart_request, openai_fields
from .transcript import from_openai


class AzureTranscription:
    parse_error = staticmethod(CHAT.parse_error)

    def build_request(self, req, target, *, stream: bool, passthrough: bool):
        url = azure_deployments.url(target, "/audio/transcriptions")
        return multipart_request(url, openai_fields(req, target.model, passthrough=passthrough), req.file)

    def parse_response(self, data: bytes, target) -> dict:
        return from_openai(data)


TRANSLATOR = AzureTranscription()
