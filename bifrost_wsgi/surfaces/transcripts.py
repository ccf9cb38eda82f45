"""A transcript (providers/transcription/transcript.py) in the ``response_format`` the client asked for:
OpenAI's ``json`` and ``verbose_json`` objects, plain ``text``, or SubRip / WebVTT subtitles made of its
segments, each with its Content-Type."""

from __future__ import annotations

from ..errors import UpstreamProtocolError

CONTENT_TYPES = {"json": "application/json", "verbose_json": "application/json",
                 "text": "text/plain; charset=utf-8", "srt": "application/x-subrip; charset=utf-8",
                 "vtt": "text/vtt; charset=utf-8"}
JSON_KEYS = ("text", "usage", "logprobs")
VERBOSE_KEYS = ("task", "language", "duration", "text", "segments", "words", "usage")


def _clock(seconds: float, sep: str) -> str:
    ms = max(0, round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def _cues(result: dict, fmt: str) -> list[dict]:
    segments = result.get("segments")
    if not segments:
        raise UpstreamProtocolError(f"the provider answered without the segments {fmt} is made of")
    return segments


def srt(result: dict) -> str:
    return "".join(f"{i}\n{_clock(c['start'], ',')} --> {_clock(c['end'], ',')}\n{c['text'].strip()}\n\n"
                   for i, c in enumerate(_cues(result, "srt"), 1))


def vtt(result: dict) -> str:
    return "WEBVTT\n\n" + "".join(f"{_clock(c['start'], '.')} --> {_clock(c['end'], '.')}\n{c['text'].strip()}\n\n"
                                  for c in _cues(result, "vtt"))


def render(result: dict, fmt: str) -> str | dict:
    """The body: a dict for the JSON formats, text for the others."""
    if "raw" in result:
        return {"text": result["raw"]} if fmt in ("json", "verbose_json") else result["raw"]
    if fmt == "json":
        return {k: result[k] for k in JSON_KEYS if k in result}
    if fmt == "verbose_json":
        return {"task": "transcribe", **{k: result[k] for k in VERBOSE_KEYS if k in result}}
    return TEXT[fmt](result)


TEXT = {"text": lambda result: result["text"], "srt": srt, "vtt": vtt}
