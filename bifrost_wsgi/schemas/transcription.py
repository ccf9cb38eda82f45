"""The speech-to-text request (``POST /v1/audio/transcriptions``, OpenAI's multipart form) and its
validator.

Order of checks: ``model`` (``provider/model``), ``file``, then every other field in the order the form
gives them. Form values are text: ``temperature`` is read as a number, repeated fields
(``timestamp_granularities[]``, ``fallbacks[]``) as lists. Unknown fields go to ``extra`` (a provider's own
parameters: ElevenLabs' ``diarize``, …)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..errors import BadRequest, UnsupportedParameter, ValidationError
from ..schema import _model_ref, enum, number, split_model, string

FILE_REQUIRED = "file is required for transcription"
FORMATS = ("json", "text", "srt", "verbose_json", "vtt")

_temperature = number(0, 1)


def _number(value: str, path: str):
    try:
        parsed = float(value)
    except ValueError:
        raise ValidationError(f"invalid request format: {path}: must be a number", param=path) from None
    return _temperature(parsed, path)


PARAMS = {
    "language": string,
    "prompt": string,
    "response_format": enum(*FORMATS),
    "temperature": _number,
    "chunking_strategy": string,  # "auto" or a JSON object, as the form carries it
}
LISTS = {
    "timestamp_granularities[]": ("timestamp_granularities", enum("word", "segment")),
    "timestamp_granularities": ("timestamp_granularities", enum("word", "segment")),
    "include[]": ("include", enum("logprobs")),
}


@dataclass(slots=True)
class TranscriptionRequest:
    provider: str
    model: str
    file: object  # wire.multipart.SpooledPart
    params: dict
    fallbacks: list[tuple[str, str]] = field(default_factory=list)
    stream: bool = False
    extra: dict = field(default_factory=dict)

    @property
    def response_format(self) -> str:
        return self.params.get("response_format", "json")

    @property
    def granularities(self) -> list[str]:
        return self.params.get("timestamp_granularities", [])

    def with_target(self, provider: str, model: str) -> "TranscriptionRequest":
        return replace(self, provider=provider, model=model)


def parse_transcription(fields: list[tuple[str, str]], files: dict) -> TranscriptionRequest:
    values = dict(fields)
    provider, model = split_model(values.get("model"))
    upload = files.get("file")
    if upload is None:
        raise BadRequest(FILE_REQUIRED, param="file")
    params: dict = {}
    extra: dict = {}
    fallbacks: list[tuple[str, str]] = []
    for key, value in fields:
        if key == "model":
            continue
        rule = PARAMS.get(key)
        if rule is not None:
            params[key] = rule(value, key)
        elif key in LISTS:
            name, item = LISTS[key]
            params.setdefault(name, []).append(item(value, key))
        elif key in ("fallbacks", "fallbacks[]"):
            fallbacks.append(_model_ref(value, key))
        elif key == "stream":
            if value.strip().lower() == "true":
                raise UnsupportedParameter("stream is not supported for transcription", param="stream")
        else:
            extra[key] = value
    return TranscriptionRequest(provider, model, upload, params, fallbacks, extra=extra)
