"""Logging set-up for the console script and the gunicorn target (the library itself never configures
logging: an app that mounts the gateway keeps its own)."""

from __future__ import annotations

import logging
import os
import sys

_FORMAT = "%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s"


def configure(level: str = "info") -> None:
    _configure_access()
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


def _configure_access() -> None:
    """The access log (accesslog.py): bare JSON lines on stdout, at INFO whatever the level of the rest;
    ``BIFROST_ACCESS_LOG=off`` turns it off."""
    logger = logging.getLogger("bifrost_wsgi.access")
    off = os.environ.get("BIFROST_ACCESS_LOG", "").lower() in ("off", "0", "false", "no")
    logger.setLevel(logging.WARNING if off else logging.INFO)
    if any(getattr(h, "_bifrost", False) for h in logger.handlers):
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler._bifrost = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.propagate = False


def configure_from_env() -> None:
    configure(os.environ.get("BIFROST_LOG_LEVEL", "info"))
