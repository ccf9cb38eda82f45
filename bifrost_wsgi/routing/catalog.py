"""``GET /v1/models``: the ``provider/model`` ids this gateway can route.

Ids come from the keys' ``models`` lists (and Azure/Bedrock ``deployments``). For an OpenAI-compatible
provider with a key that allows every model, the upstream's own ``/models`` list is fetched (on demand,
cached for five minutes, a failure logged and skipped) so the list stays useful without a model catalogue.
"""

from __future__ import annotations

import json
import logging
import threading
import time

from .. import transport
from ..providers import credentials
from ..config import GatewayConfig, ProviderConfig
from ..errors import GatewayError
from ..providers.base import Key, Target

log = logging.getLogger("bifrost_wsgi.models")
CACHE_SECONDS = 300.0
FAILURE_CACHE_SECONDS = 30.0  # a failing upstream is asked again soon, but not on every listing


class ModelLister:
    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self._cache: dict[str, tuple[float, list[dict]]] = {}  # provider -> (expires at, entries)
        self._lock = threading.Lock()

    def list(self, *, provider: str | None = None) -> list[dict]:
        out: list[dict] = []
        seen: set[str] = set()
        for name, conf in self.config.providers.items():
            if provider is not None and name != provider or not conf.row.chat_supported:
                continue
            for entry in self._for_provider(name, conf):
                if entry["id"] not in seen:
                    seen.add(entry["id"])
                    out.append(entry)
        return out

    def _for_provider(self, name: str, conf: ProviderConfig) -> list[dict]:
        entries = []
        open_key = None
        for key in conf.keys or (Key(),):
            named = [m for m in key.models if m != "*"]
            named.extend(key.deployments)
            if not key.models or "*" in key.models:
                open_key = open_key or key
            entries.extend(_entry(name, m) for m in named)
        if open_key is not None:
            entries.extend(self._upstream(name, conf, open_key))
        return entries

    def _upstream(self, name: str, conf: ProviderConfig, key: Key) -> list[dict]:
        """The provider's own list, for a provider that has one (its adapter says how to ask)."""
        now = time.monotonic()
        cached = self._cache.get(name)
        if cached and now < cached[0]:
            return cached[1]
        target = Target(name, "", conf.base_url, key, conf.row, {})
        listing = conf.row.load_adapter().models_request(target)
        if listing is None:
            return []
        req = credentials.apply(listing, target, time.time())
        entries: list[dict] = []
        ttl = FAILURE_CACHE_SECONDS
        try:
            status, body = transport.get(req.url, headers=req.headers, timeout=min(conf.network.timeout, 10.0),
                                         proxy=conf.proxy)
            if status == 200:
                data = json.loads(body)
                items = data.get("data") if isinstance(data, dict) else data
                for item in items or ():
                    if isinstance(item, dict) and isinstance(item.get("id"), str):
                        entries.append(_entry(name, item["id"], item.get("created"), item.get("owned_by")))
                ttl = CACHE_SECONDS
            else:
                log.warning("listing models of %s: upstream answered %d", name, status)
        except (GatewayError, ValueError, AttributeError) as exc:
            log.warning("listing models of %s failed: %s", name, exc)
        with self._lock:
            self._cache[name] = (now + ttl, entries)
        return entries


def _entry(provider: str, model: str, created=None, owned_by=None) -> dict:
    entry = {"id": f"{provider}/{model}", "object": "model", "owned_by": owned_by if isinstance(owned_by, str) else provider}
    entry["created"] = created if isinstance(created, int) else 0
    return entry
