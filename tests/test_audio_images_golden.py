"""Golden fixtures for the pure speech, transcription and image translators (tests/fixtures/audio_images/):

* ``<case>.request.json`` {"operation", "provider", "model", "body", "key_settings"?} → ``<case>.upstream.json``
  {"method", "url", "body"}: the request the translator builds (credentials come later, so none appear);
* ``<case>.answer.json`` {"operation", "provider", "model", "upstream"} → ``<case>.parsed.json``: what the
  translator makes of the provider's answer.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bifrost_wsgi.providers.base import Key, Target
from bifrost_wsgi.providers.registry import ROWS
from bifrost_wsgi.providers.translators import translator
from bifrost_wsgi.schemas.image_generation import parse_image_request
from bifrost_wsgi.schemas.speech import parse_speech
from tests.golden import readers

FIXTURES = Path(__file__).parent / "fixtures" / "audio_images"
load, cases = readers(FIXTURES)
PARSERS = {"speech": parse_speech, "image_generation": parse_image_request}


def target(case: dict) -> tuple[Target, object]:
    row = ROWS[case["provider"]]
    settings = case.get("key_settings")
    base = "" if row.name == "azure" else row.base_url
    return (Target(case["provider"], case["model"], base, Key(value="k", settings=settings), row),
            translator(row, row.load_adapter(), case["operation"]))


@pytest.mark.parametrize("case", cases(".request.json"))
def test_request(case):
    given = load(f"{case}.request.json")
    tgt, tr = target(given)
    req = PARSERS[given["operation"]](given["body"]).with_target(tgt.provider, tgt.model)
    up = tr.build_request(req, tgt, stream=False, passthrough=False)
    assert {"method": up.method, "url": up.url, "body": json.loads(up.body)} == load(f"{case}.upstream.json")


@pytest.mark.parametrize("case", cases(".answer.json"))
def test_answer(case):
    given = load(f"{case}.answer.json")
    tgt, tr = target(given)
    parsed = tr.parse_response(json.dumps(given["upstream"]).encode(), tgt)
    if given["operation"] == "image_generation" and "created" not in given["upstream"]:
        parsed.pop("created")  # the time of the call when the provider does not say it
    assert parsed == load(f"{case}.parsed.json")


def test_every_fixture_has_its_expectation():
    for case in cases(".request.json"):
        assert (FIXTURES / f"{case}.upstream.json").exists(), case
    for case in cases(".answer.json"):
        assert (FIXTURES / f"{case}.parsed.json").exists(), case
