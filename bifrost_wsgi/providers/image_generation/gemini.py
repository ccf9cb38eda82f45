"""Gemini's two ways of making images, chosen by model:

* Imagen (``imagen-*``): ``:predict`` with ``{"instances": [{"prompt"}], "parameters": {"sampleCount",
  "aspectRatio", "outputOptions"}}``; the answer's ``predictions[].bytesBase64Encoded`` become ``b64_json``
  (an enhanced ``prompt`` becomes ``revised_prompt``).
* image-output Gemini models (``gemini-2.5-flash-image`` …): ``:generateContent`` with
  ``responseModalities: ["TEXT", "IMAGE"]``; ``inlineData`` parts become ``b64_json``, one image per call.

``size`` (``WxH``) becomes the nearest ``aspectRatio`` the model takes; ``output_format`` png/jpeg the
Imagen ``outputOptions.mimeType``. Both answer image bytes only, so ``response_format: "url"`` is refused.
Vertex serves the same bodies (providers/image_generation/vertex.py)."""

from __future__ import annotations

import math

from ...errors import ContentFiltered, UnsupportedParameter
from ..base import json_object, json_request
from ..gemini import ADAPTER as GEMINI
from ..speech.gemini import model_path
from .answer import answer, image

IMAGEN_RATIOS = ("1:1", "3:4", "4:3", "9:16", "16:9")
GEMINI_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
MIME_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "jpg": "image/jpeg"}
#: Imagen's own parameters, taken from the body as they are
IMAGEN_PARAMETERS = ("personGeneration", "safetySetting", "addWatermark", "seed", "enhancePrompt", "imageSize",
                     "negativePrompt", "language")


def is_imagen(model: str) -> bool:
    return model.rpartition("/")[2].startswith("imagen")


def aspect_ratio(size: str | None, ratios: tuple[str, ...]) -> str | None:
    """The listed ratio nearest to a ``WxH`` size; None for ``auto`` or a size that is not ``WxH``."""
    w, sep, h = (size or "").partition("x")
    if not sep or not w.isdigit() or not h.isdigit() or not int(w) or not int(h):
        return None
    want = math.log(int(w) / int(h))

    def distance(ratio: str) -> float:
        a, b = ratio.split(":")
        return abs(math.log(int(a) / int(b)) - want)

    return min(ratios, key=distance)


def refuse_url(req, provider: str) -> None:
    if req.params.get("response_format") == "url":
        raise UnsupportedParameter(f"response_format url is not supported by {provider}: it answers with the "
                                   "image bytes (b64_json)", param="response_format")


def imagen_body(req) -> dict:
    params: dict = {"sampleCount": req.params.get("n", 1)}
    ratio = aspect_ratio(req.params.get("size"), IMAGEN_RATIOS)
    if ratio:
        params["aspectRatio"] = ratio
    mime = MIME_TYPES.get(req.params.get("output_format", ""))
    if mime:
        params["outputOptions"] = {"mimeType": mime}
    for name in IMAGEN_PARAMETERS:
        if name in req.extra:
            params[name] = req.extra[name]
    return {"instances": [{"prompt": req.prompt}], "parameters": params}


def gemini_body(req, provider: str) -> dict:
    if req.params.get("n", 1) > 1:
        raise UnsupportedParameter(f"n > 1 is not supported by {provider} image-output models (one image per call)", param="n")
    config: dict = {"responseModalities": ["TEXT", "IMAGE"]}
    ratio = aspect_ratio(req.params.get("size"), GEMINI_RATIOS)
    if ratio:
        config["imageConfig"] = {"aspectRatio": ratio}
    return {"contents": [{"role": "user", "parts": [{"text": req.prompt}]}], "generationConfig": config}


def body(req, target) -> tuple[str, dict]:
    """(the method, the body) for this model."""
    refuse_url(req, target.provider)
    if is_imagen(target.model):
        return ":predict", imagen_body(req)
    return ":generateContent", gemini_body(req, target.provider)


def parse(data: bytes, model: str) -> dict:
    obj = json_object(data, unwrap_single=True)
    if is_imagen(model):
        images, filtered = [], []
        for pred in obj.get("predictions") or ():
            if pred.get("bytesBase64Encoded"):
                images.append(image({"b64_json": pred["bytesBase64Encoded"], "revised_prompt": pred.get("prompt")}))
            elif pred.get("raiFilteredReason"):
                filtered.append(str(pred["raiFilteredReason"]))
        if not images and filtered:
            raise ContentFiltered(filtered[0], status=400)
        return answer(images)
    images = [image({"b64_json": part["inlineData"]["data"]})
              for cand in obj["candidates"] for part in (cand.get("content") or {}).get("parts") or ()
              if part.get("inlineData")]
    if not images:
        reason = (obj.get("promptFeedback") or {}).get("blockReason") or \
            next((c.get("finishReason") for c in obj["candidates"] if c.get("finishReason") not in (None, "STOP")), None)
        if reason:
            raise ContentFiltered(f"no image: {reason}", status=400)
    return answer(images, usage=usage(obj.get("usageMetadata")))


def usage(meta) -> dict | None:
    """``usageMetadata`` in the images API's terms (input, output and total tokens)."""
    if not isinstance(meta, dict) or not meta:
        return None
    prompt, output = meta.get("promptTokenCount") or 0, meta.get("candidatesTokenCount") or 0
    return {"input_tokens": prompt, "output_tokens": output, "total_tokens": meta.get("totalTokenCount") or prompt + output}


class GeminiImages:
    parse_error = staticmethod(GEMINI.parse_error)

    def build_request(self, req, target, *, stream: bool, passthrough: bool):
        method, payload = body(req, target)
        return json_request(f"{target.base_url}/{model_path(target.model)}{method}", payload, stream=False)

    def parse_response(self, data: bytes, target) -> dict:
        return parse(data, target.model)


TRANSLATOR = GeminiImages()
