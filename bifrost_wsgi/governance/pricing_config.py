"""The ``framework`` section of config.json (``framework.pricing``), checked apart from the price table so
that the config loader can use it without importing the table, its lookup or the transport."""

from __future__ import annotations

from ..config import ConfigError, _num, _obj, _str

DEFAULT_SYNC_INTERVAL = 86400


def parse_framework(raw: dict, path: str = "framework") -> dict:
    """``framework`` of config.json, checked: ``{"pricing": {"pricing_url": str | None,
    "pricing_sync_interval": seconds}}``; a bad value raises ConfigError naming its JSON path."""
    raw = _obj(raw, path)
    for key in raw:
        if key != "pricing":
            raise ConfigError(f"{path}.{key}: unknown key")
    ppath = f"{path}.pricing"
    pricing = _obj(raw.get("pricing", {}), ppath)
    for key in pricing:
        if key not in ("pricing_url", "pricing_sync_interval"):
            raise ConfigError(f"{ppath}.{key}: unknown key")
    url = pricing.get("pricing_url")
    if url is not None:
        url = _str(url, f"{ppath}.pricing_url").strip()
        if not url:
            raise ConfigError(f"{ppath}.pricing_url: must be a file path or an http(s) URL")
        if "://" in url and not url.startswith(("http://", "https://")):
            raise ConfigError(f"{ppath}.pricing_url: only http and https URLs are supported")
    interval = _num(pricing.get("pricing_sync_interval", DEFAULT_SYNC_INTERVAL), f"{ppath}.pricing_sync_interval",
                    lo=1)
    return {"pricing": {"pricing_url": url or None, "pricing_sync_interval": interval}}
