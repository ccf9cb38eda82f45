"""Bifrost's reset durations (``30s``, ``5m``, ``1h``, ``1d``, ``1w``, ``1M``, ``1Y``, ``daily``…) in seconds."""

from __future__ import annotations

import re

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "M": 30 * 86400, "Y": 365 * 86400}
_ALIASES = {"daily": "1d", "weekly": "1w", "monthly": "1M", "yearly": "1Y"}
# Go's time.ParseDuration allows sequences such as 1h30m; the calendar units go at the front
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|M|Y)")


def seconds(text: str) -> float:
    """The length of a reset window; ValueError (``Invalid reset duration format: <d>``) when unparsable."""
    spec = _ALIASES.get(text, text)
    total, pos = 0.0, 0
    for match in _PART.finditer(spec):
        if match.start() != pos:
            break
        amount, unit = float(match.group(1)), match.group(2)
        total += amount / 1000.0 if unit == "ms" else amount * _UNIT_SECONDS[unit]
        pos = match.end()
    if not spec or pos != len(spec) or total <= 0:
        raise ValueError(f"Invalid reset duration format: {text}")
    return total
