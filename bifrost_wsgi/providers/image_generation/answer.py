"""The one answer shape of image generation, whatever the provider sent: OpenAI's
``{"created", "data": [{"b64_json" | "url", "revised_prompt"}], "usage"}`` (plus OpenAI's own top-level
``background``, ``output_format``, ``quality``, ``size`` when a provider says them)."""

from __future__ import annotations

import time

from ...errors import UpstreamProtocolError

IMAGE_FIELDS = ("b64_json", "url", "revised_prompt")
TOP_FIELDS = ("background", "output_format", "quality", "size")


def image(item: dict) -> dict:
    out = {k: item[k] for k in IMAGE_FIELDS if isinstance(item.get(k), str)}
    if "b64_json" not in out and "url" not in out:
        raise UpstreamProtocolError("image without b64_json or url in the provider's answer")
    return out


def answer(images: list[dict], *, created=None, usage=None, top: dict | None = None) -> dict:
    if not images:
        raise UpstreamProtocolError("the provider answered without any image")
    out = {"created": created if isinstance(created, int) and not isinstance(created, bool) else int(time.time()),
           "data": images}
    for k in TOP_FIELDS:
        if top and isinstance(top.get(k), str):
            out[k] = top[k]
    if isinstance(usage, dict) and usage:
        out["usage"] = usage
    return out
