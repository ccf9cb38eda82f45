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
