"""The text-to-speech request (``POST /v1/audio/speech``, OpenAI's body) and its validator.

Order of checks: ``model`` (``provider/model``), ``input``, ``voice``, then every other field in the order
the body gives them. ``voice`` is one provider's vocabulary: a fallback on another provider takes the voice
from that provider's ``voices`` mapping (``with_target``), which the surface resolves before anything is sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..errors import BadRequest
from ..schema import enum, number, obj, split_model, string
from .fields import walk

INPUT_REQUIRED = "input is required for speech"
VOICE_REQUIRED = "voice is required for speech"

FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")
#: the Content-Type of each response_format (OpenAI's)
MEDIA_TYPES = {"mp3": "audio/mpeg", "opus": "audio/opus", "aac": "audio/aac", "flac": "audio/flac",
               "wav": "audio/wav", "pcm": "audio/pcm"}

PARAMS = {
    "response_format": enum(*FORMATS),
    "speed": number(0.25, 4),
    "instructions": string,
    "stream_format": enum("audio", "sse"),
}


def _voice(value, path):
    # a built-in voice name, or OpenAI's custom voice object {"id": "voice_…"}
    if isinstance(value, dict):
        return obj({"id": string}, required=("id",))(value, path)["id"]
    return string(value, path)


@dataclass(slots=True)
class SpeechRequest:
    provider: str
    model: str
    input: str
    voice: str
    params: dict
    fallbacks: list[tuple[str, str]] = field(default_factory=list)
    stream: bool = False  # stream_format "sse": speech.audio.delta events instead of the bytes
    extra: dict = field(default_factory=dict)
    #: the voice each other provider uses for this request (from its ``voices`` mapping), by provider name
    voice_by_provider: dict = field(default_factory=dict)

    @property
    def response_format(self) -> str | None:
        return self.params.get("response_format")

    def map_voices(self, maps) -> None:
        """Apply each provider's ``voices`` mapping (``maps``: provider name -> mapping, for the configured
        providers): the primary's maps the voice when it names it; a fallback on another provider must
        name it (or have a ``"*"`` entry), else the request is refused before anything is sent."""
        asked = self.voice
        own = maps.get(self.provider) or {}
        self.voice = own.get(asked, asked)
        for provider, _ in self.fallbacks:
            if provider == self.provider or provider not in maps:
                continue  # same vocabulary; an unconfigured fallback is skipped by routing anyway
            mapping = maps[provider]
            voice = mapping.get(asked) or mapping.get("*")
            if voice is None:
                raise BadRequest(f"voice {asked} has no mapping for fallback provider {provider}: "
                                 f"add it to providers.{provider}.voices", param="voice")
            self.voice_by_provider[provider] = voice

    def with_target(self, provider: str, model: str) -> "SpeechRequest":
        voice = self.voice_by_provider.get(provider, self.voice)
        return replace(self, provider=provider, model=model, voice=voice)


def parse_speech(body) -> SpeechRequest:
    if not isinstance(body, dict):
        raise BadRequest("invalid request format: request body must be a JSON object")
    provider, model = split_model(body.get("model"))
    if body.get("input") is None or body.get("input") == "":
        raise BadRequest(INPUT_REQUIRED, param="input")
    if body.get("voice") is None or body.get("voice") == "":
        raise BadRequest(VOICE_REQUIRED, param="voice")
    fields = walk(body, params=PARAMS, own={"input": string, "voice": _voice})
    return SpeechRequest(provider, model, fields.own["input"], fields.own["voice"], fields.params, fields.fallbacks,
                         stream=fields.params.get("stream_format") == "sse", extra=fields.extra)
