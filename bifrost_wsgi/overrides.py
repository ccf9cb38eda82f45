"""What the admin API puts over ``config.json`` while the gateway runs: providers added, replaced or removed
(``/api/providers``) and client settings (``PUT /api/config``). They live in the config store, so every worker
and host applies the same ones, and a restart finds them again.

The sections are validated by the config file's own parser, so an API change and the same change in
``config.json`` are refused with the same message.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Mapping

from . import config as C
from .redaction import SECRETS

#: client settings the API may change, by their name in the file -> ``ClientConfig`` field
CLIENT_FIELDS = {"max_request_body_size_mb": "max_request_body_bytes", "drop_excess_requests": "drop_excess_requests",
                 "stream_failover": "stream_failover", "request_deadline_in_seconds": "request_deadline",
                 "max_fallbacks": "max_fallbacks", "circuit_breaker": "breaker"}


def client(base: C.ClientConfig, raw: Mapping) -> C.ClientConfig:
    """``base`` with the settings ``raw`` names (file names, file units); ConfigError names ``client.<name>``."""
    parsed = C._client(dict(raw), [])
    return dataclasses.replace(base, **{CLIENT_FIELDS[n]: getattr(parsed, CLIENT_FIELDS[n]) for n in raw})


def provider(name: str, section, *, environ: Mapping[str, str] | None = None) -> C.ProviderConfig:
    """One provider's config section, as ``providers.<name>`` in the file (``env.`` references resolved)."""
    environ = os.environ if environ is None else environ
    missing: list[str] = []
    resolved = C.resolve_env(section, f"providers.{name}", environ, missing=missing)
    if missing:
        raise C.ConfigError("\n".join(missing))
    if any(environ.get(v) for v in C.PROXY_VARIABLES):
        resolved = C._proxy_from_environment(resolved)
    return C._provider(name, resolved, [])


def apply(base: C.GatewayConfig, *, providers: Mapping, client_settings: Mapping, on_error,
          environ: Mapping[str, str] | None = None) -> C.GatewayConfig:
    """``base`` (config.json's) with the stored changes. A stored section that does not load here (an
    ``env.`` variable this host lacks) is reported through ``on_error(message)`` and left out."""
    out = dict(base.providers)
    for name, section in providers.items():
        if section is None:
            out.pop(name, None)
            continue
        try:
            out[name] = provider(name, section, environ=environ)
        except C.ConfigError as exc:
            on_error(f"provider {name} from the config store is not used: {exc}")
    known = {n: v for n, v in client_settings.items() if n in CLIENT_FIELDS}
    try:
        client_config = client(base.client, known)
    except C.ConfigError as exc:
        on_error(f"client settings from the config store are not used: {exc}")
        client_config = base.client
    config = dataclasses.replace(base, providers=out, client=client_config)
    SECRETS.add(*C.secret_values(config))
    return config
