"""ElevenLabs speech to text: ``POST /v1/speech-to-text`` (multipart: ``file``, ``model_id``,
``language_code``, ``temperature`` and ElevenLabs' own fields from the form: ``diarize``,
``tag_audio_events``, ``num_speakers``, ``timestamps_granularity`` …). ``prompt`` has no ElevenLabs field
and is dropped.

The answer ``{"language_code", "text", "words": [{"text", "start", "end", "type"}]}`` becomes the
transcript: its words (``type: "word"``), cues made of them as ``segments`` (cut at the end of a sentence
or every ``CUE_WORDS`` words) and the last word's end as ``duration``."""

from __future__ import annotations

from ..base import json_object
from ..elevenlabs import ADAPTER as ELEVENLABS
from .openai_compat import multipart_request

OWN_FIELDS = ("diarize", "num_speakers", "tag_audio_events", "timestamps_granularity", "diarization_threshold",
              "file_format", "use_multi_channel", "seed", "additional_formats", "webhook")
CUE_WORDS = 12
SENTENCE_END = (".", "?", "!", "。", "？", "！")


def fields(req, model: str) -> list[tuple[str, str]]:
    out = [("model_id", model)]
    if "language" in req.params:
        out.append(("language_code", req.params["language"]))
    if "temperature" in req.params:
        out.append(("temperature", str(req.params["temperature"])))
    out.extend((k, req.extra[k]) for k in OWN_FIELDS if k in req.extra)
    return out


def segments(words: list[dict]) -> list[dict]:
    out: list[dict] = []
    cue: list[dict] = []
    for word in words:
        cue.append(word)
        if len(cue) >= CUE_WORDS or word["word"].endswith(SENTENCE_END):
            out.append(_segment(len(out), cue))
            cue = []
    if cue:
        out.append(_segment(len(out), cue))
    return out


def _segment(index: int, cue: list[dict]) -> dict:
    return {"id": index, "start": cue[0]["start"], "end": cue[-1]["end"], "text": " ".join(w["word"] for w in cue)}


def transcript(obj: dict) -> dict:
    words = [{"word": w["text"], "start": float(w["start"]), "end": float(w["end"])}
             for w in obj.get("words") or () if w.get("type", "word") == "word" and "start" in w]
    out: dict = {"task": "transcribe", "text": obj["text"]}
    if obj.get("language_code"):
        out["language"] = obj["language_code"]
    if words:
        out["duration"] = words[-1]["end"]
        out["words"] = words
        out["segments"] = segments(words)
    return out


class ElevenLabsTranscription:
    parse_error = staticmethod(ELEVENLABS.parse_error)

    def build_request(self, req, target, *, stream: bool, passthrough: bool):
        return multipart_request(f"{target.base_url}/v1/speech-to-text", fields(req, target.model), req.file)

    def parse_response(self, data: bytes, target) -> dict:
        return transcript(json_object(data))


TRANSLATOR = ElevenLabsTranscription()
