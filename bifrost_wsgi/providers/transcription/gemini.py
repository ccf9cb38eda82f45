"""Gemini transcription: one ``:generateContent`` call with an instruction and the audio as an inline part.

The body is JSON whose ``inline_data.data`` is the upload in base64; it is sent as it is encoded, from the
spool, never built whole in memory (``InlineAudioBody``). Gemini gives text without timestamps, so srt,
vtt, verbose_json and timestamp granularities are refused (400); ``language`` and ``prompt`` join the
instruction."""

from __future__ import annotations

import base64

from ...transport import UpstreamRequest
from ..base import dumps
from ..gemini import ADAPTER as GEMINI, guess_mime, json_object
from ..speech.gemini import model_path
from .transcript import refuse_timestamps

INSTRUCTION = "Transcribe this audio verbatim. Answer with the transcript only, without any comment."
B64_BLOCK = 3 * 64 * 1024  # a multiple of 3: blocks encode without padding in the middle


class InlineAudioBody:
    """``prefix`` + base64(upload) + ``suffix``, with its length known before it is sent."""

    def __init__(self, prefix: bytes, upload, suffix: bytes) -> None:
        self.prefix, self.upload, self.suffix = prefix, upload, suffix

    def __len__(self) -> int:
        return len(self.prefix) + 4 * ((self.upload.size + 2) // 3) + len(self.suffix)

    def __iter__(self):
        yield self.prefix
        for block in self.upload.blocks(B64_BLOCK):
            yield base64.b64encode(block)
        yield self.suffix


def mime_of(upload) -> str:
    if upload.content_type.startswith("audio/"):
        return upload.content_type
    return guess_mime(upload.filename) or "audio/mpeg"


def instruction(req) -> str:
    text = INSTRUCTION
    if req.params.get("language"):
        text += f" The speech is in the language {req.params['language']}."
    if req.params.get("prompt"):
        text += f" Context: {req.params['prompt']}"
    return text


def usage(meta) -> dict | None:
    if not isinstance(meta, dict) or not meta:
        return None
    prompt, output = meta.get("promptTokenCount") or 0, meta.get("candidatesTokenCount") or 0
    return {"type": "tokens", "input_tokens": prompt, "output_tokens": output,
            "total_tokens": meta.get("totalTokenCount") or prompt + output}


class GeminiTranscription:
    parse_error = staticmethod(GEMINI.parse_error)

    def build_request(self, req, target, *, stream: bool, passthrough: bool) -> UpstreamRequest:
        refuse_timestamps(req, target.provider)
        text = dumps({"text": instruction(req)})
        prefix = ('{"contents":[{"role":"user","parts":[' + text + ',{"inline_data":{"mime_type":'
                  + dumps(mime_of(req.file)) + ',"data":"').encode()
        config = {"temperature": req.params["temperature"]} if "temperature" in req.params else {}
        suffix = ('"}}]}]' + (',"generationConfig":' + dumps(config) if config else "") + "}").encode()
        url = f"{target.base_url}/{model_path(target.model)}:generateContent"
        return UpstreamRequest("POST", url, {"Content-Type": "application/json", "Accept": "application/json"},
                               InlineAudioBody(prefix, req.file, suffix))

    def parse_response(self, data: bytes, target) -> dict:
        obj = json_object(data)
        parts = obj["candidates"][0]["content"]["parts"]
        out: dict = {"text": "".join(p["text"] for p in parts if isinstance(p.get("text"), str) and not p.get("thought")).strip()}
        found = usage(obj.get("usageMetadata"))
        if found:
            out["usage"] = found
        return out


TRANSLATOR = GeminiTranscription()
