"""Logging set-up for the console script and the gunicorn target (the library itself never configures
logging: an app that mounts the gateway keeps its own)."""

from __future__ import annotations

import logging
import os
import sys

_FORMAT = "%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s"


def configure(level: str = "info") -> None:
    logger = logging.getLogger("bifrost_wsgi")
    if any(getattr(h, "_bifrost", False) for h in logger.handlers):
        logger.setLevel(level.upper())
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(_FORMAT))
    handler._bifrost = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(level.upper())
    logger.propagate = False


def configure_from_env() -> None:
    configure(os.environ.get("BIFROST_LOG_LEVEL", "info"))
