"""Cost: the price lookup, the cache-aware formula, the shipped table, pricing_url and the regeneration script."""

from __future__ import annotations

import datetime
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from bifrost_wsgi.config import ConfigError
from bifrost_wsgi.governance import pricing
from bifrost_wsgi.governance.pricing import PriceTable, parse_framework
from tests.fakes import FakeUpstream, Reply

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures" / "pricing"


def _entry(provider, model, mode="chat", **rates):
    tokens = dict.fromkeys(pricing.TOKEN_FIELDS)
    return {"provider": provider, "base_model": model, "mode": mode, **tokens, **rates}


TABLE = PriceTable({
    "openai/gpt-4o": _entry("openai", "gpt-4o", input_cost_per_token=2.5e-6, output_cost_per_token=1e-5,
                            cache_read_input_token_cost=1.25e-6),
    "openai/gpt-4o-2024-05-13": _entry("openai", "gpt-4o-2024-05-13", input_cost_per_token=5e-6,
                                       output_cost_per_token=1.5e-5),
    "azure/gpt-4o": _entry("azure", "gpt-4o", input_cost_per_token=2.75e-6, output_cost_per_token=1.1e-5),
    "openai/o3": _entry("openai", "o3", input_cost_per_token=2e-6, output_cost_per_token=8e-6,
                        cache_read_input_token_cost=5e-7),
    "anthropic/claude-sonnet-4-5": _entry("anthropic", "claude-sonnet-4-5", input_cost_per_token=3e-6,
                                          output_cost_per_token=1.5e-5, cache_read_input_token_cost=3e-7,
                                          cache_creation_input_token_cost=3.75e-6),
    "bedrock/anthropic.claude-sonnet-4-5-20250929-v1:0": _entry(
        "bedrock", "anthropic.claude-sonnet-4-5-20250929-v1:0", input_cost_per_token=3e-6,
        output_cost_per_token=1.5e-5),
    "bedrock/us.anthropic.claude-sonnet-4-5-20250929-v1:0": _entry(
        "bedrock", "us.anthropic.claude-sonnet-4-5-20250929-v1:0", input_cost_per_token=3.3e-6,
        output_cost_per_token=1.65e-5),
    "gemini/gemini-2.5-pro": _entry("gemini", "gemini-2.5-pro", input_cost_per_token=1.25e-6,
                                    output_cost_per_token=1e-5, input_cost_per_token_above_200k_tokens=2.5e-6,
                                    output_cost_per_token_above_200k_tokens=1.5e-5),
    "mistral/mistral-small-latest": _entry("mistral", "mistral-small-latest", input_cost_per_token=1e-7,
                                           output_cost_per_token=3e-7),
    "nebius/meta-llama/Llama-3.3-70B-Instruct": _entry("nebius", "meta-llama/Llama-3.3-70B-Instruct",
                                                       input_cost_per_token=1.3e-7, output_cost_per_token=4e-7),
    "openai/text-embedding-3-small": _entry("openai", "text-embedding-3-small", "embedding",
                                            input_cost_per_token=2e-8, output_cost_per_token=0.0),
    "openai/tts-1": _entry("openai", "tts-1", "audio_speech", input_cost_per_character=1.5e-5),
    "openai/whisper-1": _entry("openai", "whisper-1", "audio_transcription", input_cost_per_second=1e-4),
    "openai/gpt-4o-transcribe": _entry("openai", "gpt-4o-transcribe", "audio_transcription",
                                       input_cost_per_token=2.5e-6, output_cost_per_token=1e-5,
                                       input_cost_per_second=1e-4),
    "openai/gpt-image-1": _entry("openai", "gpt-image-1", "image_generation", input_cost_per_token=5e-6,
                                 output_cost_per_token=4e-5, output_cost_per_image_variants={
                                     "low/1024x1024": 0.011, "medium/1024x1536": 0.063, "1024x1024": 0.042}),
    "gemini/imagen-3.0-generate-001": _entry("gemini", "imagen-3.0-generate-001", "image_generation",
                                             output_cost_per_image=0.04),
    "my-vllm/llama3": _entry("my-vllm", "llama3", input_cost_per_token=1e-8, output_cost_per_token=1e-8),
})

ANTHROPIC_USAGE = {"prompt_tokens": 189307, "completion_tokens": 393, "total_tokens": 189700}
ANTHROPIC_COST = 0.7116405  # 21 × 3e-6 + 1200 × 3e-7 + 188086 × 3.75e-6 + 393 × 1.5e-5

# (case, provider, model, reported model, request type, usage, cost, price known)
COST_CASES = [
    ("plain chat", "openai", "gpt-4o", None, "chat_completion",
     {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500}, 0.0075, True),
    ("cached read at the cache rate", "openai", "gpt-4o", None, "chat_completion",
     {"prompt_tokens": 1000, "completion_tokens": 100, "prompt_tokens_details": {"cached_tokens": 400}},
     0.003, True),
    ("cache write (cache_creation_tokens)", "anthropic", "claude-sonnet-4-5", None, "chat_completion",
     {**ANTHROPIC_USAGE, "prompt_tokens_details": {"cached_tokens": 1200, "cache_creation_tokens": 188086}},
     ANTHROPIC_COST, True),
    ("cache write as the Anthropic translator reports it", "anthropic", "claude-sonnet-4-5", None,
     "chat_completion",
     {**ANTHROPIC_USAGE, "prompt_tokens_details": {"cached_tokens": 1200, "cache_write_tokens": 188086}},
     ANTHROPIC_COST, True),
    ("Anthropic-style cache keys beside prompt_tokens", "anthropic", "claude-sonnet-4-5", None, "chat_completion",
     {**ANTHROPIC_USAGE, "cache_read_input_tokens": 1200, "cache_creation_input_tokens": 188086},
     ANTHROPIC_COST, True),
    ("Anthropic's own shape: input_tokens excludes the cache", "anthropic", "claude-sonnet-4-5", None,
     "chat_completion",
     {"input_tokens": 21, "output_tokens": 393, "cache_read_input_tokens": 1200,
      "cache_creation_input_tokens": 188086}, ANTHROPIC_COST, True),
    ("no cache rate: cached tokens at the input rate", "mistral", "mistral-small-latest", None, "chat_completion",
     {"prompt_tokens": 1000, "completion_tokens": 10, "prompt_tokens_details": {"cached_tokens": 500}},
     0.000103, True),
    ("reasoning tokens are inside completion_tokens", "openai", "o3", None, "chat_completion",
     {"prompt_tokens": 100, "completion_tokens": 1000, "completion_tokens_details": {"reasoning_tokens": 800}},
     0.0082, True),
    ("long prompt: the above-200k tier", "gemini", "gemini-2.5-pro", None, "chat_completion",
     {"prompt_tokens": 250000, "completion_tokens": 1000}, 0.64, True),
    ("200k exactly stays in the base tier", "gemini", "gemini-2.5-pro", None, "chat_completion",
     {"prompt_tokens": 200000, "completion_tokens": 1000}, 0.26, True),
    ("no drift: 3 × 1e-7", "mistral", "mistral-small-latest", None, "chat_completion",
     {"prompt_tokens": 3, "completion_tokens": 0}, 3e-7, True),
    ("embeddings bill input tokens only", "openai", "text-embedding-3-small", None, "embedding",
     {"prompt_tokens": 12345, "total_tokens": 12345, "completion_tokens": 7}, 0.0002469, True),
    ("speech per character", "openai", "tts-1", None, "speech", {"characters": 1000}, 0.015, True),
    ("transcription per second", "openai", "whisper-1", None, "transcription", {"seconds": 61.5}, 0.00615, True),
    ("transcription of half a second", "openai", "whisper-1", None, "transcription", {"seconds": 0.5}, 0.00005,
     True),
    ("transcription by tokens when the model bills tokens", "openai", "gpt-4o-transcribe", None, "transcription",
     {"prompt_tokens": 1000, "completion_tokens": 200}, 0.0045, True),
    ("transcription by seconds when no tokens are reported", "openai", "gpt-4o-transcribe", None,
     "transcription", {"seconds": 30}, 0.003, True),
    ("images by quality and size", "openai", "gpt-image-1", None, "image_generation",
     {"images": 2, "size": "1024x1536", "quality": "medium"}, 0.126, True),
    ("images by size alone", "openai", "gpt-image-1", None, "image_generation",
     {"images": 1, "size": "1024x1024", "quality": "auto"}, 0.042, True),
    ("images by image tokens when reported", "openai", "gpt-image-1", None, "image_generation",
     {"input_tokens": 50, "output_tokens": 4160, "images": 1, "size": "1024x1024"}, 0.16665, True),
    ("images at the flat per-image price", "gemini", "imagen-3.0-generate-001", None, "image_generation",
     {"images": 3}, 0.12, True),
    ("unknown model", "openai", "gpt-nonexistent", None, "chat_completion",
     {"prompt_tokens": 1000, "completion_tokens": 1000}, 0.0, False),
    ("price by the reported model when the asked name is an alias", "azure", "prod-deployment", "gpt-4o",
     "chat_completion", {"prompt_tokens": 1000, "completion_tokens": 0}, 0.00275, True),
    ("dated snapshot falls back to its alias", "openai", "gpt-4o-2024-08-06", None, "chat_completion",
     {"prompt_tokens": 1000, "completion_tokens": 0}, 0.0025, True),
    ("a dated snapshot with its own price keeps it", "openai", "gpt-4o-2024-05-13", None, "chat_completion",
     {"prompt_tokens": 1000, "completion_tokens": 0}, 0.005, True),
    ("reported dated name, asked alias unknown", "openai", "my-alias", "gpt-4o-2024-11-20", "chat_completion",
     {"prompt_tokens": 1000, "completion_tokens": 0}, 0.0025, True),
    ("Bedrock regional profile with its own price", "bedrock", "us.anthropic.claude-sonnet-4-5-20250929-v1:0", None,
     "chat_completion", {"prompt_tokens": 1000, "completion_tokens": 0}, 0.0033, True),
    ("Bedrock regional profile without one: the plain id", "bedrock",
     "eu.anthropic.claude-sonnet-4-5-20250929-v1:0", None, "chat_completion",
     {"prompt_tokens": 1000, "completion_tokens": 0}, 0.003, True),
    ("OpenRouter vendor/model at the vendor's price", "openrouter", "anthropic/claude-sonnet-4.5", None,
     "chat_completion", {"prompt_tokens": 1000, "completion_tokens": 0}, 0.003, True),
    ("Hugging Face router name at another provider's price", "huggingface",
     "meta-llama/Llama-3.3-70B-Instruct:fastest", None, "chat_completion",
     {"prompt_tokens": 1000, "completion_tokens": 1000}, 0.00053, True),
    ("a custom provider is priced by its own entries", "my-vllm", "llama3", None, "chat_completion",
     {"prompt_tokens": 1000, "completion_tokens": 1000}, 0.00002, True),
    ("a custom provider is not billed at a list price", "my-vllm", "gpt-4o", None, "chat_completion",
     {"prompt_tokens": 1000, "completion_tokens": 1000}, 0.0, False),
    ("usage missing", "openai", "gpt-4o", None, "chat_completion", None, 0.0, True),
    ("bad counts are ignored", "openai", "gpt-4o", None, "chat_completion",
     {"prompt_tokens": "many", "completion_tokens": -5, "prompt_tokens_details": None}, 0.0, True),
]


@pytest.mark.parametrize("case,provider,model,reported,request_type,usage,cost,known", COST_CASES,
                         ids=[c[0] for c in COST_CASES])
def test_cost(case, provider, model, reported, request_type, usage, cost, known):
    assert TABLE.cost(provider=provider, model=model, usage=usage, reported_model=reported,
                      request_type=request_type) == (cost, known)


def test_money_is_summed_exactly_then_rounded_to_1e_10():
    # 7 × 1.1e-7 is 7.700000000000001e-07 in float arithmetic; the cost is exactly 7.7e-07
    table = PriceTable({"x/m": _entry("x", "m", input_cost_per_token=1.1e-7, output_cost_per_token=1e-12)})
    assert table.cost(provider="x", model="m", usage={"prompt_tokens": 7, "completion_tokens": 1}) == (7.7e-7, True)


@pytest.mark.parametrize("model,forms", [
    ("gpt-4o-2024-08-06", ["gpt-4o"]),
    ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", ["anthropic.claude-sonnet-4-5-20250929-v1:0",
                                                       "anthropic.claude-sonnet-4-5-20250929",
                                                       "anthropic.claude-sonnet-4-5", "claude-sonnet-4-5"]),
    ("claude-sonnet-4-5@20250929", ["claude-sonnet-4-5"]),
    ("meta-llama/Llama-3.3-70B-Instruct:groq", ["meta-llama/Llama-3.3-70B-Instruct", "Llama-3.3-70B-Instruct"]),
    ("anthropic/claude-sonnet-4.5", ["claude-sonnet-4.5", "claude-sonnet-4-5"]),
    ("grok-4.3-latest", ["grok-4.3"]),
    ("gpt-4o", []),
])
def test_name_forms(model, forms):
    assert pricing.name_forms(model) == forms


# --- the shipped table --------------------------------------------------------------------------------

SHIPPED = json.loads((ROOT / "bifrost_wsgi" / "governance" / "prices.json").read_text())
# OpenRouter and the Hugging Face router bill the serving vendor's price (priced through vendor/model names);
# the public list the table is made from has no Parasail entries
PRICED_THROUGH_OTHERS = {"openrouter", "huggingface", "parasail"}


def test_shipped_table_is_dated_and_names_its_source():
    meta = SHIPPED[pricing.METADATA_KEY]
    datetime.date.fromisoformat(meta["taken_on"])
    assert meta["source"] and meta["entries"] == len(SHIPPED) - 1 <= 500


def test_shipped_table_covers_every_provider():
    providers = {k.split("/", 1)[0] for k in SHIPPED if k != pricing.METADATA_KEY}
    assert providers == set(pricing.PROVIDER_PREFERENCE) - PRICED_THROUGH_OTHERS


def test_shipped_entries_have_the_contract_fields():
    modes = {"chat", "embedding", "completion", "audio_speech", "audio_transcription", "image_generation"}
    for key, entry in SHIPPED.items():
        if key == pricing.METADATA_KEY:
            continue
        assert key == f"{entry['provider']}/{entry['base_model']}" and entry["mode"] in modes, key
        for field in pricing.TOKEN_FIELDS:
            assert entry[field] is None or entry[field] >= 0, (key, field)


@pytest.mark.parametrize("provider,model,request_type,usage", [
    ("openai", "gpt-4o-mini", "chat_completion", {"prompt_tokens": 10, "completion_tokens": 10}),
    ("anthropic", "claude-sonnet-4-5-20250929", "chat_completion", {"prompt_tokens": 10, "completion_tokens": 10}),
    ("bedrock", "global.anthropic.claude-sonnet-4-5-20250929-v1:0", "chat_completion", {"prompt_tokens": 10}),
    ("vertex", "gemini-2.5-flash", "chat_completion", {"prompt_tokens": 10}),
    ("openrouter", "openai/gpt-4o", "chat_completion", {"prompt_tokens": 10}),
    ("openai", "text-embedding-3-large", "embedding", {"prompt_tokens": 10}),
    ("elevenlabs", "eleven_multilingual_v2", "speech", {"characters": 10}),
    ("groq", "whisper-large-v3", "transcription", {"seconds": 10}),
])
def test_shipped_table_prices_common_models(provider, model, request_type, usage):
    cost, known = PriceTable.from_config(pricing_url=None).cost(provider=provider, model=model, usage=usage,
                                                                request_type=request_type)
    assert known and cost > 0


# --- pricing_url --------------------------------------------------------------------------------------

REPLACEMENT = {"openai/gpt-4o": _entry("openai", "gpt-4o", input_cost_per_token=1e-6, output_cost_per_token=2e-6),
               "acme/house-model": _entry("acme", "house-model", input_cost_per_token=1e-9, output_cost_per_token=0)}
TOKENS = {"prompt_tokens": 1000, "completion_tokens": 1000}


def _gpt4o_and_house(table):
    return (table.cost(provider="openai", model="gpt-4o", usage=TOKENS),
            table.cost(provider="acme", model="house-model", usage=TOKENS))


def test_pricing_url_file_replaces_entries(tmp_path):
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(REPLACEMENT))
    table = PriceTable.from_config(pricing_url=str(path))
    assert _gpt4o_and_house(table) == ((0.003, True), (0.000001, True))
    assert table.lookup("anthropic", "claude-sonnet-4-5") is not None  # the rest of the shipped table stays


def test_pricing_url_http_replaces_entries():
    server = FakeUpstream()
    try:
        server.add(Reply(json=REPLACEMENT))
        table = PriceTable.from_config(pricing_url=f"{server.url}/datasheet?sig=SECRET-SIG")
        assert [r.path for r in server.requests] == ["/datasheet"]
    finally:
        server.close()
    assert _gpt4o_and_house(table) == ((0.003, True), (0.000001, True))


SHIPPED_GPT4O = PriceTable.from_config(pricing_url=None).cost(provider="openai", model="gpt-4o", usage=TOKENS)


@pytest.mark.parametrize("reply,why", [
    (Reply(status=503, json={"error": "down"}), "answered HTTP 503"),
    (Reply(body=b"<html>not json</html>", content_type="text/html"), "Expecting value"),
    (Reply(json=["not", "an", "object"]), "must be a JSON object"),
    (Reply(json={"gpt-4o": {"input_cost_per_token": 1}}), "must be a provider/model key"),
    (Reply(json={"openai/gpt-4o": {"input_cost_per_token": "cheap"}}), "must be a number"),
    (Reply(fault="close"), "request failed"),
])
def test_failing_pricing_url_keeps_the_shipped_table(reply, why, caplog):
    server = FakeUpstream()
    try:
        server.add(reply)
        with caplog.at_level(logging.WARNING, logger="bifrost_wsgi.pricing"):
            table = PriceTable.from_config(pricing_url=f"{server.url}/datasheet?sig=SECRET-SIG")
    finally:
        server.close()
    assert _gpt4o_and_house(table) == (SHIPPED_GPT4O, (0.0, False))
    assert "keeping the shipped prices" in caplog.text and why in caplog.text
    assert "SECRET-SIG" not in caplog.text


def test_missing_pricing_file_keeps_the_shipped_table(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="bifrost_wsgi.pricing"):
        table = PriceTable.from_config(pricing_url=str(tmp_path / "absent.json"))
    assert table.cost(provider="openai", model="gpt-4o", usage=TOKENS) == SHIPPED_GPT4O
    assert "keeping the shipped prices" in caplog.text


# --- framework config ---------------------------------------------------------------------------------

DEFAULT = pricing.DEFAULT_SYNC_INTERVAL


@pytest.mark.parametrize("raw,want", [
    ({}, {"pricing": {"pricing_url": None, "pricing_sync_interval": DEFAULT}}),
    ({"pricing": {"pricing_url": "https://example.com/p.json", "pricing_sync_interval": 3600}},
     {"pricing": {"pricing_url": "https://example.com/p.json", "pricing_sync_interval": 3600}}),
    ({"pricing": {"pricing_url": "/etc/bifrost/prices.json"}},
     {"pricing": {"pricing_url": "/etc/bifrost/prices.json", "pricing_sync_interval": DEFAULT}}),
])
def test_parse_framework(raw, want):
    assert parse_framework(raw) == want


@pytest.mark.parametrize("raw,message", [
    ([], "framework: must be an object"),
    ({"pricing": 5}, "framework.pricing: must be an object"),
    ({"pricing": {"pricing_url": 5}}, "framework.pricing.pricing_url: must be a string"),
    ({"pricing": {"pricing_url": " "}}, "framework.pricing.pricing_url: must be a file path or an http(s) URL"),
    ({"pricing": {"pricing_url": "ftp://x/p.json"}}, "framework.pricing.pricing_url: only http and https"),
    ({"pricing": {"pricing_sync_interval": "daily"}}, "framework.pricing.pricing_sync_interval: must be a number"),
    ({"pricing": {"pricing_sync_interval": 0}}, "framework.pricing.pricing_sync_interval: must be at least 1"),
    ({"pricing": {"pricing_urls": "x"}}, "framework.pricing.pricing_urls: unknown key"),
    ({"pricng": {}}, "framework.pricng: unknown key"),
])
def test_parse_framework_errors_name_the_field(raw, message):
    with pytest.raises(ConfigError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        parse_framework(raw)


# --- the regeneration script --------------------------------------------------------------------------


def _run_update(source: str, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bifrost_wsgi.governance.prices_update", source, "--out",
                           str(out), "--date", "2026-01-02", "--source-name", "fixture"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_update_script_from_a_file(tmp_path):
    out = tmp_path / "prices.json"
    done = _run_update(str(FIXTURES / "litellm_source.json"), out)
    assert done.returncode == 0, done.stderr
    assert out.read_text() == (FIXTURES / "litellm_source.expected.json").read_text()


def test_update_script_from_a_url(tmp_path):
    server = FakeUpstream()
    try:
        server.add(Reply(body=(FIXTURES / "litellm_source.json").read_bytes(), content_type="application/json"))
        done = _run_update(f"{server.url}/model_prices.json", tmp_path / "prices.json")
    finally:
        server.close()
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "prices.json").read_text() == (FIXTURES / "litellm_source.expected.json").read_text()


def test_script_output_loads_as_a_price_table():
    table = PriceTable(json.loads((FIXTURES / "litellm_source.expected.json").read_text()))
    assert table.cost(provider="azure", model="dall-e-3", usage={"images": 1, "size": "1024x1792", "quality": "hd"},
                      request_type="image_generation") == (0.132, True)


def test_nothing_regenerates_at_import():
    code = ("import sys, bifrost_wsgi.app, bifrost_wsgi.governance.pricing; "
            "print('bifrost_wsgi.governance.prices_update' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False", done.stderr


def test_update_script_refuses_an_unreadable_source(tmp_path):
    out = tmp_path / "prices.json"
    done = _run_update(str(tmp_path / "absent.json"), out)
    assert done.returncode != 0 and "prices_update:" in done.stderr and "absent.json" in done.stderr
    assert not out.exists()
