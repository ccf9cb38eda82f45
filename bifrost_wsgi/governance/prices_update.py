"""Regenerate the shipped price table from a LiteLLM-format price list.

    python -m bifrost_wsgi.governance.prices_update SOURCE [--out PATH] [--date YYYY-MM-DD]

SOURCE is a path or an http(s) URL to a list in LiteLLM's ``model_prices_and_context_window.json`` format (the
PyPI ``litellm`` wheel ships one as ``litellm/model_prices_and_context_window_backup.json``). Only the common
models are kept, chosen by ``RULES`` below; the output is written with sorted keys, so the same source and date
give the same bytes. This module runs only when invoked: nothing imports it at start.
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from ..errors import GatewayError
from .pricing import METADATA_KEY, TOKEN_FIELDS, name_forms, read_json

DEFAULT_OUT = Path(__file__).with_name("prices.json")
MODES = ("chat", "embedding", "completion", "audio_speech", "audio_transcription", "image_generation")


@dataclass(frozen=True)
class Rule:
    """One of our providers: the LiteLLM provider names that feed it, and the model names kept (a full match
    of the name with the LiteLLM key's provider prefix removed)."""

    provider: str
    sources: tuple[str, ...]
    models: str


_GEO = r"(?:(?:us|eu|apac|au|jp|global)\.)?"
_CLAUDE = r"claude-(?:haiku|sonnet|opus)-\d+(?:-\d+)?(?:-\d{8})?"
_OPENAI = (r"gpt-4o(?:-mini)?|gpt-4\.1(?:-mini|-nano)?|gpt-4-turbo|gpt-4|gpt-3\.5-turbo(?:-instruct)?"
           r"|gpt-5(?:\.\d)?(?:-mini|-nano|-chat|-chat-latest)?|gpt-6(?:\.\d)?-(?:sol|terra|luna|astra)"
           r"|o1|o3|o3-mini|o4-mini|text-embedding-3-(?:small|large)|text-embedding-ada-002"
           r"|tts-1(?:-hd)?|gpt-4o-mini-tts|whisper-1|gpt-4o(?:-mini)?-transcribe|gpt-image-1(?:\.5|-mini)?"
           r"|gpt-image-2|dall-e-[23]")
_DATED = r"(?:-\d{4}-\d{2}-\d{2})?"

RULES = (
    Rule("openai", ("openai", "text-completion-openai"), rf"(?:{_OPENAI}){_DATED}"),
    Rule("azure", ("azure", "azure_text"), rf"(?:{_OPENAI}|gpt-35-turbo){_DATED}"),
    Rule("anthropic", ("anthropic",), _CLAUDE),
    Rule("bedrock", ("bedrock", "bedrock_converse"),
         rf"{_GEO}anthropic\.{_CLAUDE}(?:-v\d+(?::\d+)?)?|{_GEO}amazon\.nova-(?:micro|lite|pro|premier|2-lite)-v\d+:\d+"
         rf"|{_GEO}meta\.llama(?:3-3-70b|4-maverick-17b|4-scout-17b)-instruct-v\d+:\d+"
         r"|amazon\.titan-embed-text-v2:0|cohere\.embed-(?:english|multilingual)-v3|openai\.gpt-oss-(?:20|120)b-1:0"
         r"|mistral\.mistral-large-3-675b-instruct|deepseek\.v3\.2"),
    Rule("cohere", ("cohere", "cohere_chat"),
         r"command-a-03-2025|command-r(?:-plus)?-08-2024|command-r7b-12-2024|embed-(?:english|multilingual)"
         r"(?:-light)?-v3\.0|embed-v4\.0"),
    Rule("gemini", ("gemini",),
         r"gemini-(?:2\.0|2\.5|3|3\.\d)-(?:pro|flash|flash-lite)(?:-preview)?|gemini-embedding-001"
         r"|gemini-2\.5-flash-image|gemini-2\.5-(?:flash|pro)-preview-tts|imagen-3\.0-(?:fast-)?generate-001"),
    Rule("vertex", ("vertex_ai", "vertex_ai-language-models", "vertex_ai-anthropic_models",
                    "vertex_ai-embedding-models", "vertex_ai-mistral_models", "vertex_ai-llama_models"),
         rf"gemini-(?:2\.0|2\.5|3|3\.\d)-(?:pro|flash|flash-lite)(?:-preview)?|gemini-embedding-001"
         rf"|gemini-2\.5-flash-image|text-embedding-00[45]|text-multilingual-embedding-002"
         rf"|{_CLAUDE}(?:@\d{{8}})?|mistral-(?:large|small)-\d{{4}}|codestral-2501"
         r"|meta/llama-(?:3\.3-70b|4-maverick-17b-128e|4-scout-17b-16e)-instruct-maas"),
    Rule("mistral", ("mistral",),
         r"mistral-(?:large|medium|small)(?:-latest|-\d{4})?|ministral-(?:3b|8b|14b)-latest|magistral-"
         r"(?:medium|small)-latest|codestral-latest|devstral-(?:small|medium)-latest|pixtral-large-latest"
         r"|open-mistral-nemo|mistral-embed|codestral-embed|voxtral-(?:small|mini)-latest|voxtral-mini-tts-latest"),
    Rule("groq", ("groq",), r"openai/gpt-oss-(?:20|120)b|whisper-large-v3(?:-turbo)?|llama-3\.[13]-\d+b-\w+"
                            r"|meta-llama/llama-4-\w+-17b-\w+|qwen/qwen3-32b|moonshotai/kimi-k2-instruct\S*"),
    Rule("cerebras", ("cerebras",), r"[a-z0-9.-]+"),
    Rule("xai", ("xai",), r"grok-(?:3|3-mini|4|4-\d{4}|4\.\d+|4-fast-(?:non-)?reasoning|4-1-fast-(?:non-)?reasoning"
                          r"|4\.20-(?:non-)?reasoning|code-fast-1|2-image-\d{4})"),
    Rule("nebius", ("nebius",),
         r"(?:meta-llama/(?:Llama-3\.3-70B|Meta-Llama-3\.1-(?:8|70|405)B)-Instruct|deepseek-ai/DeepSeek-(?:R1|V3)"
         r"(?:-0528|-0324)?|Qwen/Qwen3-(?:235B-A22B|32B|30B-A3B|14B)(?:-Instruct-2507)?|openai/gpt-oss-120b"
         r"|google/gemma-3-27b-it|BAAI/bge-en-icl|Qwen/Qwen3-Embedding-8B)"),
    Rule("perplexity", ("perplexity",), r"sonar(?:-pro|-reasoning|-reasoning-pro|-deep-research)?"),
    Rule("elevenlabs", ("elevenlabs",), r"eleven_[a-z0-9_]+|scribe_v\d+"),
    # OpenRouter and the Hugging Face router bill the serving provider's price, so their models are priced
    # through their vendor/model names; Parasail has no entries in the public list this script reads.
)

# LiteLLM key prefixes that name a provider (removed from the model name); the rest of a key is the model
_PREFIXES = ("vertex_ai/", "bedrock/converse/", "cohere/", "azure/", "gemini/", "mistral/", "groq/", "cerebras/",
             "xai/", "nebius/", "perplexity/", "elevenlabs/", "openai/")
_IMAGE_VARIANT = re.compile(r"(?:(?P<quality>[a-z]+)/)?(?P<w>\d+)-x-(?P<h>\d+)/(?P<model>.+)")
# LiteLLM field → ours, where the names differ by mode (an image model's output tokens are image tokens)
_RENAMED = {"image_generation": {"output_cost_per_image_token": "output_cost_per_token"}}
_UNIT_FIELDS = ("input_cost_per_character", "input_cost_per_second", "output_cost_per_second",
                "output_cost_per_image", "input_cost_per_token_above_200k_tokens",
                "output_cost_per_token_above_200k_tokens", "cache_read_input_token_cost_above_200k_tokens",
                "cache_creation_input_token_cost_above_200k_tokens")


def _model_name(key: str) -> str:
    for prefix in _PREFIXES:
        if key.startswith(prefix):
            return key[len(prefix):]
    return key


def _entry(provider: str, model: str, src: dict) -> dict:
    mode = src["mode"]
    renamed = _RENAMED.get(mode, {})
    fields = {renamed.get(k, k): v for k, v in src.items()}
    entry = {"provider": provider, "base_model": model, "mode": mode}
    entry.update({f: fields.get(f) for f in TOKEN_FIELDS})
    entry.update({f: fields[f] for f in _UNIT_FIELDS if fields.get(f)})
    return entry


def _image_price(src: dict, w: int, h: int) -> float | None:
    """A size/quality variant's price for one image: LiteLLM gives it per image or per pixel."""
    per_image = src.get("output_cost_per_image") or src.get("input_cost_per_image")
    if per_image:
        return per_image
    per_pixel = src.get("input_cost_per_pixel") or src.get("output_cost_per_pixel")
    # per-pixel rates are a per-image list price divided by the pixel count: undo it to the tenth of a cent
    return round(per_pixel * w * h, 3) if per_pixel else None


def select(source: dict) -> dict[str, dict]:
    """The kept entries, keyed ``provider/model``."""
    by_litellm = {s: rule for rule in RULES for s in rule.sources}
    patterns = {rule.provider: re.compile(rule.models) for rule in RULES}
    table: dict[str, dict] = {}
    variants: list[tuple[str, str, str, float]] = []
    # a key with a provider prefix is the more specific one for the same model: it goes last and wins
    for key in sorted(source, key=lambda k: (_model_name(k) != k, k)):
        src = source[key]
        rule = by_litellm.get(src.get("litellm_provider")) if isinstance(src, dict) else None
        if rule is None or src.get("mode") not in MODES:
            continue
        name = _model_name(key)
        image = _IMAGE_VARIANT.fullmatch(name) if src["mode"] == "image_generation" else None
        if image:
            price = _image_price(src, int(image["w"]), int(image["h"]))
            if price and patterns[rule.provider].fullmatch(image["model"]):
                size = f"{image['w']}x{image['h']}"
                variants.append((f"{rule.provider}/{image['model']}",
                                 f"{image['quality']}/{size}" if image["quality"] else size, src, price))
            continue
        if patterns[rule.provider].fullmatch(name):
            table[f"{rule.provider}/{name}"] = _entry(rule.provider, name, src)
    for key, variant, src, price in sorted(variants, key=lambda v: v[:2]):
        provider, model = key.split("/", 1)
        # a model sold only in sizes gets a base entry without a default per-image price
        base = {k: v for k, v in src.items() if k != "output_cost_per_image"}
        entry = table.setdefault(key, _entry(provider, model, base))
        entry.setdefault("output_cost_per_image_variants", {})[variant] = price
    return _without_aliases(table)


def _without_aliases(table: dict[str, dict]) -> dict[str, dict]:
    """Drop a dated or regional name priced exactly like the shorter name a lookup falls back to: the
    lookup finds the same price without it, and the table stays small."""
    kept = {}
    for key, entry in table.items():
        provider, model = key.split("/", 1)
        fallback = next((table[f"{provider}/{f}"] for f in name_forms(model) if f"{provider}/{f}" in table), None)
        if fallback is None or _prices(fallback) != _prices(entry):
            kept[key] = entry
    return kept


def _prices(entry: dict) -> dict:
    return {k: v for k, v in entry.items() if k != "base_model"}


def read_source(source: str) -> dict:
    try:
        table = read_json(source, timeout=60.0)
    except (OSError, ValueError, GatewayError) as exc:
        raise SystemExit(f"prices_update: {source}: {exc}") from None
    if not isinstance(table, dict):
        raise SystemExit(f"prices_update: {source}: not a JSON object")
    return table


def build(source: dict, *, source_name: str, taken_on: str) -> dict:
    table = select(source)
    table[METADATA_KEY] = {
        "taken_on": taken_on,
        "source": source_name,
        "units": "USD per token, per character, per second or per image",
        "entries": len(table),
    }
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bifrost_wsgi.governance.prices_update",
                                     description="Regenerate the price table from a LiteLLM-format price list.")
    parser.add_argument("source", help="path or http(s) URL of a LiteLLM-format price list")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="where to write (default: the shipped table)")
    parser.add_argument("--date", default=datetime.datetime.now(datetime.timezone.utc).date().isoformat(),
                        help="the date the prices were taken (default: today, UTC)")
    parser.add_argument("--source-name", help="how the metadata names the source (default: SOURCE)")
    args = parser.parse_args(argv)
    table = build(read_source(args.source), source_name=args.source_name or args.source, taken_on=args.date)
    Path(args.out).write_text(json.dumps(table, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {len(table) - 1} prices to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
