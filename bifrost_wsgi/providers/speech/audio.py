"""What every speech translator shares: the formats a client may ask for and the converters that turn an
upstream body into the audio bytes the client gets (see routing/byte_relay.py for the interface)."""

from __future__ import annotations

from ...errors import UnsupportedParameter
from ...schemas.speech import MEDIA_TYPES
from ...wire import wav

DEFAULT_FORMAT = "mp3"  # OpenAI's default


def requested(req, *, default: str = DEFAULT_FORMAT) -> str:
    return req.response_format or default


def refuse_format(fmt: str, provider: str) -> UnsupportedParameter:
    return UnsupportedParameter(f"response_format {fmt} is not supported by {provider}", param="response_format")


class Passthrough:
    """The upstream body is the audio, in the format asked for."""

    __slots__ = ("media_type", "done")

    def __init__(self, fmt: str) -> None:
        self.media_type = MEDIA_TYPES[fmt]
        self.done = False

    def feed(self, data: bytes) -> list[bytes]:
        return [data]

    def end(self) -> list[bytes]:
        return []


class PCMOut:
    """16-bit mono PCM pieces as raw ``pcm`` or as a streamed ``wav`` (a header before the first piece)."""

    __slots__ = ("media_type", "wav", "started")

    def __init__(self, fmt: str) -> None:
        self.media_type = MEDIA_TYPES[fmt]
        self.wav = fmt == "wav"
        self.started = False

    def piece(self, pcm: bytes, *, rate: int) -> bytes:
        if not pcm:
            return b""
        if self.wav and not self.started:
            self.started = True
            return wav.header(rate=rate) + pcm
        self.started = True
        return pcm
