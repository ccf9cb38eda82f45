"""Golden fixture files: ``tests/fixtures/<provider>/<case>.<kind>.json`` read as JSON, and the case names
of one kind, so a new regression is a new file and tests pick it up by glob."""

from __future__ import annotations

import json
from pathlib import Path


def readers(folder: Path):
    """``(load, cases)`` for one fixture folder: ``load("x.request.json")``, ``cases(".request.json")``."""

    def load(name: str):
        return json.loads((folder / name).read_text(encoding="utf-8"))

    def cases(suffix: str) -> list[str]:
        return sorted(p.name[: -len(suffix)] for p in folder.glob("*" + suffix))

    return load, cases


def request_outcome_tests(folder: Path, build):
    """The request-fixture tests every translator shares, for a test module to bind at its top level:
    ``test_request_refused, test_every_request_fixture_has_an_outcome = request_outcome_tests(FIXTURES, build)``.
    A ``<case>.refused.json`` names the status, param and message ``build`` must refuse ``<case>.request.json``
    with; every request fixture has an expected upstream body or a refusal."""
    import pytest

    from bifrost_wsgi import errors as E

    load, cases = readers(folder)

    @pytest.mark.parametrize("case", cases(".refused.json"))
    def test_request_refused(case):
        want = load(f"{case}.refused.json")
        with pytest.raises(E.BadRequest) as info:
            build(load(f"{case}.request.json"))
        err = info.value
        assert (err.status, err.param, err.message) == (want["status"], want["param"], want["message"])

    def test_every_request_fixture_has_an_outcome():
        for case in cases(".request.json"):
            assert (folder / f"{case}.upstream.json").exists() or (folder / f"{case}.refused.json").exists(), case

    return test_request_refused, test_every_request_fixture_has_an_outcome
