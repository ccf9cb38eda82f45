"""What a request cost: the price table, the lookup of a served model's price, and the cost of its usage.

* The table ships inside the package (``prices.json``, USD per token / character / second / image, with the
  date the prices were taken under ``_metadata``) and is read once. ``framework.pricing.pricing_url`` (a file
  path or an http(s) URL, same format) replaces entries of it; it is read only when set, and a failure is
  logged and leaves the shipped table in use.
* A price is looked up by ``provider/model`` as the request asked for it, then by the model name the upstream
  reported; then by shorter forms of those names (a dated snapshot falls back to its undated alias, a
  regional Bedrock id to the plain one, ``vendor/model`` to ``model``); then by the same names at any
  provider we know, first-party vendors first. A provider we do not know (a custom or self-hosted one) is
  priced only by its own entries: it is not billed at someone else's list price.
* Money is summed exactly in ``Decimal`` (each rate taken from its decimal text, counts as integers) and
  rounded once, to 1e-10 USD, at the end; the result is returned as a float.
"""

from __future__ import annotations

import json
import logging
import re
from decimal import ROUND_HALF_EVEN, Decimal
from importlib import resources
from pathlib import Path
from typing import Mapping
from urllib.parse import urlsplit

from .. import transport
from ..errors import GatewayError
from .pricing_config import DEFAULT_SYNC_INTERVAL, parse_framework  # noqa: F401 (the pricing API)

log = logging.getLogger("bifrost_wsgi.pricing")

METADATA_KEY = "_metadata"
TOKEN_FIELDS = ("input_cost_per_token", "output_cost_per_token", "cache_read_input_token_cost",
                "cache_creation_input_token_cost")
# providers whose models may be priced by another provider's entry for the same name, in preference order:
# the model's own vendor first, resellers and clouds after
PROVIDER_PREFERENCE = ("openai", "anthropic", "gemini", "vertex", "mistral", "cohere", "xai", "groq", "cerebras",
                       "perplexity", "nebius", "parasail", "openrouter", "huggingface", "elevenlabs", "azure",
                       "bedrock")
USD_STEP = Decimal("1e-10")
_MEMO_LIMIT = 4096

# Shorter forms of a model name, tried in this order when the exact name has no price; each step applies
# the first rule that changes the name, so a name's forms are that one step plus the next name's forms.
_REWRITES = (
    (re.compile(r"^(?:us|eu|apac|au|jp|global|us-gov|in|ca)\.(?=[a-z0-9-]+\.)"), ""),  # Bedrock geo profile
    (re.compile(r":(?!\d+$)[\w.-]+$"), ""),  # Hugging Face router ":provider" / ":fastest"
    (re.compile(r"-v\d+(?::\d+)?$"), ""),  # Bedrock "-v1:0"
    (re.compile(r"@[\w.-]+$"), ""),  # Vertex "@20250929", "@default"
    (re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{8}|\d{2}-\d{4}|\d{4}|latest)$"), ""),  # snapshot dates, "-latest"
    (re.compile(r"^[\w.-]+/"), ""),  # vendor prefix ("openai/gpt-4o" on OpenRouter)
    (re.compile(r"^(?:anthropic|amazon|meta|mistral|cohere|openai|deepseek|qwen|google|moonshotai|xai)\."), ""),
    (re.compile(r"(claude-[a-z]+-\d+)\.(\d+)"), r"\1-\2"),  # OpenRouter's dotted Claude versions
)
_TIER = re.compile(r"input_cost_per_token_above_(\d+)k_tokens")


def name_forms(model: str) -> list[str]:
    """The shorter names a lookup falls back to, most specific first."""
    forms: list[str] = []
    name = model
    while True:
        for pattern, repl in _REWRITES:
            shorter = pattern.sub(repl, name, count=1)
            if shorter != name:
                break
        else:
            return forms
        if not shorter or shorter in forms:
            return forms
        forms.append(shorter)
        name = shorter


# --- the table ----------------------------------------------------------------------------------------


def _shipped() -> dict:
    global _SHIPPED
    if _SHIPPED is None:
        _SHIPPED = json.loads(resources.files(__package__).joinpath("prices.json").read_text(encoding="utf-8"))
    return _SHIPPED


_SHIPPED: dict | None = None


def _checked(table, where: str) -> dict:
    """A price list's entries, or ValueError naming the first bad one."""
    if not isinstance(table, dict):
        raise ValueError(f"{where}: must be a JSON object keyed provider/model")
    entries = {}
    for key, entry in table.items():
        if key == METADATA_KEY:
            continue
        if "/" not in key or not isinstance(entry, dict):
            raise ValueError(f"{where}: {key!r} must be a provider/model key holding an object")
        for field, value in entry.items():
            if "cost" in field and value is not None and not isinstance(value, (int, float, dict)):
                raise ValueError(f"{where}: {key}.{field} must be a number")
        entries[key] = entry
    return entries


def read_json(location: str, *, timeout: float = 30.0) -> object:
    """A JSON document from a file path or an http(s) URL (ValueError, OSError or a transport error if not)."""
    if location.startswith(("http://", "https://")):
        status, body = transport.get(location, timeout=timeout)
        if status != 200:
            raise ValueError(f"answered HTTP {status}")
        return json.loads(body)
    return json.loads(Path(location).read_text(encoding="utf-8"))


def _shown(url: str) -> str:
    # a signed URL carries its credential in the query: never log it
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{parts.path}" if parts.scheme in ("http", "https") else url


class PriceTable:
    def __init__(self, entries: Mapping[str, dict], *, metadata: dict | None = None) -> None:
        self.entries = {k: v for k, v in entries.items() if k != METADATA_KEY}
        self.metadata = metadata or entries.get(METADATA_KEY) or {}
        self._by_key = {k.lower(): v for k, v in self.entries.items()}
        rank = {p: i for i, p in enumerate(PROVIDER_PREFERENCE)}
        self._by_name: dict[str, dict] = {}
        for key in sorted(self.entries, key=lambda k: (rank.get(k.split("/", 1)[0], len(rank)), k)):
            self._by_name.setdefault(key.split("/", 1)[1].lower(), self.entries[key])
        self._memo: dict[tuple, dict | None] = {}

    @classmethod
    def from_config(cls, *, pricing_url: str | None) -> PriceTable:
        shipped = _shipped()
        entries = _checked(shipped, "prices.json")
        if pricing_url:
            try:
                entries.update(_checked(read_json(pricing_url), "pricing_url"))
            except (OSError, ValueError, GatewayError) as exc:
                log.warning("pricing_url %s could not be used (%s); keeping the shipped prices",
                            _shown(pricing_url), exc)
            else:
                log.info("prices from %s replace the shipped ones where they overlap", _shown(pricing_url))
        return cls(entries, metadata=shipped.get(METADATA_KEY))

    def lookup(self, provider: str, model: str, reported_model: str | None = None) -> dict | None:
        key = (provider, model, reported_model)
        try:
            return self._memo[key]
        except KeyError:
            pass
        found = self._find(provider.lower(), model, reported_model)
        if len(self._memo) >= _MEMO_LIMIT:
            self._memo.clear()
        self._memo[key] = found
        return found

    def _find(self, provider: str, model: str, reported: str | None) -> dict | None:
        asked = [n for n in (model, reported) if n]
        names = list(dict.fromkeys(n.lower() for n in asked + [f for n in asked for f in name_forms(n)]))
        for name in names:
            if (entry := self._by_key.get(f"{provider}/{name}")) is not None:
                return entry
        if provider not in PROVIDER_PREFERENCE:
            return None
        for name in names:
            if (entry := self._by_key.get(name) or self._by_name.get(name)) is not None:
                return entry
        return None

    def cost(self, *, provider: str, model: str, usage: dict | None, reported_model: str | None = None,
             request_type: str = "chat_completion") -> tuple[float, bool]:
        """``(USD, price known)``; an unknown model costs 0.0 and says so."""
        entry = self.lookup(provider, model, reported_model)
        if entry is None:
            return 0.0, False
        meter = _METERS.get(request_type, _chat)
        total = meter(entry, usage if isinstance(usage, dict) else {})
        return float(total.quantize(USD_STEP, rounding=ROUND_HALF_EVEN)), True


# --- meters: usage × rates, one per kind of request ---------------------------------------------------


def _decimal(value) -> Decimal | None:
    # from the number's shortest decimal text: 2.5e-06 is exactly 0.0000025, not the binary float's expansion
    return Decimal(repr(value)) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _rate(entry: dict, field: str) -> Decimal | None:
    return _decimal(entry.get(field))


def _count(value) -> int:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 else 0


def _first(*values) -> int:
    return next((_count(v) for v in values if v is not None), 0)


def _tier_rates(entry: dict, prompt_total: int) -> dict[str, Decimal | None]:
    """The four token rates, from the highest ``_above_<N>k_tokens`` tier the prompt exceeds (if any)."""
    above = max((int(m[1]) for f in entry if (m := _TIER.fullmatch(f)) and prompt_total > int(m[1]) * 1000),
                default=None)
    rates = {}
    for field in TOKEN_FIELDS:
        tiered = _rate(entry, f"{field}_above_{above}k_tokens") if above is not None else None
        rates[field] = tiered if tiered is not None else _rate(entry, field)
    return rates


def _tokens(entry: dict, usage: dict, *, output: bool = True) -> Decimal:
    details = usage.get("prompt_tokens_details")
    details = details if isinstance(details, dict) else {}
    read = _first(details.get("cached_tokens"), details.get("cached_read_tokens"),
                  details.get("cache_read_input_tokens"), usage.get("cache_read_input_tokens"))
    write = _first(details.get("cache_creation_tokens"), details.get("cache_write_tokens"),
                   details.get("cached_write_tokens"), details.get("cache_creation_input_tokens"),
                   usage.get("cache_creation_input_tokens"))
    if "prompt_tokens" in usage:  # OpenAI's prompt_tokens holds the cached reads and writes
        uncached = max(_count(usage["prompt_tokens"]) - read - write, 0)
    else:  # Anthropic's own input_tokens does not
        uncached = _count(usage.get("input_tokens"))
    completion = _first(usage.get("completion_tokens"), usage.get("output_tokens")) if output else 0
    rates = _tier_rates(entry, uncached + read + write)
    zero = Decimal(0)
    input_rate = rates["input_cost_per_token"] or zero
    read_rate = rates["cache_read_input_token_cost"]
    write_rate = rates["cache_creation_input_token_cost"]
    return (uncached * input_rate
            + read * (input_rate if read_rate is None else read_rate)
            + write * (input_rate if write_rate is None else write_rate)
            + completion * (rates["output_cost_per_token"] or zero))


def _has_tokens(usage: dict) -> bool:
    return any(_count(usage.get(k)) for k in ("prompt_tokens", "completion_tokens", "input_tokens", "output_tokens"))


def _chat(entry: dict, usage: dict) -> Decimal:
    return _tokens(entry, usage)


def _embedding(entry: dict, usage: dict) -> Decimal:
    return _tokens(entry, usage, output=False)


def _per_unit(rate: Decimal | None, amount) -> Decimal:
    """``rate × amount`` for a positive amount (characters, seconds, images) and a known rate, else 0."""
    amount = _decimal(amount)
    return rate * amount if rate is not None and amount is not None and amount > 0 else Decimal(0)


def _speech(entry: dict, usage: dict) -> Decimal:
    characters = usage.get("characters", usage.get("input_chars"))
    per_character = _rate(entry, "input_cost_per_character")
    if per_character is not None and _count(characters):
        return _per_unit(per_character, characters)
    if _has_tokens(usage):
        return _tokens(entry, usage)
    return _per_unit(_rate(entry, "output_cost_per_second"), usage.get("seconds"))


def _transcription(entry: dict, usage: dict) -> Decimal:
    if _has_tokens(usage) and _rate(entry, "input_cost_per_token") is not None:
        return _tokens(entry, usage)
    return _per_unit(_rate(entry, "input_cost_per_second"), usage.get("seconds"))


def _image(entry: dict, usage: dict) -> Decimal:
    if _has_tokens(usage) and _rate(entry, "output_cost_per_token") is not None:
        return _tokens(entry, usage)
    variants = entry.get("output_cost_per_image_variants")
    variants = variants if isinstance(variants, dict) else {}
    size, quality = usage.get("size"), usage.get("quality")
    per_image = variants.get(f"{quality}/{size}", variants.get(size, entry.get("output_cost_per_image")))
    return _per_unit(_decimal(per_image), _count(usage.get("images")))


_METERS = {
    "chat_completion": _chat, "text_completion": _chat, "responses": _chat,
    "embedding": _embedding, "embeddings": _embedding,
    "speech": _speech, "audio_speech": _speech,
    "transcription": _transcription, "audio_transcription": _transcription,
    "image_generation": _image, "images": _image,
}
