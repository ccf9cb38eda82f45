"""Configuration: a Bifrost-compatible ``config.json`` (or the environment alone) into frozen dataclasses.

Sections we implement are validated strictly: an unknown key is an error naming its JSON path. Bifrost
sections and keys we do not implement yet are accepted with one warning each, so a Bifrost user's file
loads unchanged. ``"env.NAME"`` strings are replaced by environment variables; a missing one is an error
that names the variable, never its value.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass, field
from typing import Any, Mapping

from .governance import settings as governance_settings
from .governance.settings import VirtualKey  # noqa: F401 - the key type lives with governance
from .providers.base import Key
from .redaction import SECRETS
from .transport import Proxy
from .providers.registry import ROWS, ProviderRow


class ConfigError(Exception):
    """A bad configuration; the message starts with the JSON path of the problem."""


@dataclass(frozen=True, slots=True)
class Network:
    base_url: str = ""
    extra_headers: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 30.0
    max_retries: int = 0
    backoff_initial: float = 0.5  # seconds (the file says milliseconds)
    backoff_max: float = 5.0
    stream_idle_timeout: float = 30.0
    first_token_timeout: float = 30.0


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    name: str
    row: ProviderRow
    keys: tuple[Key, ...] = ()
    network: Network = field(default_factory=Network)
    concurrency: int = 1000
    buffer_size: int = 5000
    proxy: Proxy = field(default_factory=Proxy)
    send_back_raw_response: bool = False
    keyless: bool = False
    # speech: the voice names clients use -> this provider's voice (README, "Speech")
    voices: Mapping[str, str] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return (self.network.base_url or self.row.base_url).rstrip("/")


@dataclass(frozen=True, slots=True)
class Breaker:
    enabled: bool = True
    failure_threshold: int = 5
    cooldown_seconds: float = 10.0


@dataclass(frozen=True, slots=True)
class ClientConfig:
    max_request_body_bytes: int = 100 * 1024 * 1024
    drop_excess_requests: bool = False
    stream_failover: str = "off"
    request_deadline: float = 300.0
    # each fallback is a full upstream call (with its retries): the cap bounds the work one request can cause
    max_fallbacks: int = 10
    breaker: Breaker = field(default_factory=Breaker)


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    client: ClientConfig = field(default_factory=ClientConfig)
    providers: Mapping[str, ProviderConfig] = field(default_factory=dict)
    virtual_keys: tuple[VirtualKey, ...] = ()
    warnings: tuple[str, ...] = ()
    source: str = "environment"
    # governance, stores and request logs (governance/settings.py)
    governance: governance_settings.Settings = field(default_factory=governance_settings.Settings)


# --- small typed readers (gunicorn's validate_* style) ----------------------------------------------


def _obj(v, path) -> dict:
    if not isinstance(v, dict):
        raise ConfigError(f"{path}: must be an object")
    return v


def _str(v, path) -> str:
    if not isinstance(v, str):
        raise ConfigError(f"{path}: must be a string")
    return v


def _bool(v, path) -> bool:
    if not isinstance(v, bool):
        raise ConfigError(f"{path}: must be true or false")
    return v


def _num(v, path, *, lo=None, integer=False) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ConfigError(f"{path}: must be {'an integer' if integer else 'a number'}")
    if integer and not float(v).is_integer():
        raise ConfigError(f"{path}: must be an integer")
    if lo is not None and v < lo:
        raise ConfigError(f"{path}: must be at least {lo}")
    return int(v) if integer else v


def _str_list(v, path) -> tuple[str, ...]:
    if not isinstance(v, list):
        raise ConfigError(f"{path}: must be an array of strings")
    return tuple(_str(x, f"{path}[{i}]") for i, x in enumerate(v))


def _str_map(v, path) -> dict[str, str]:
    return {k: _str(x, f"{path}.{k}") for k, x in _obj(v, path).items()}


def _check_keys(obj: dict, path: str, known: set, ignored: set, warnings: list) -> None:
    for k in obj:
        if k in known:
            continue
        if k in ignored:
            warnings.append(f"{path}.{k} is not implemented yet and is ignored")
            continue
        raise ConfigError(f"{path}.{k}: unknown key")


def resolve_env(value, path: str, environ: Mapping[str, str], *, missing: list[str]):
    """Replace every ``"env.NAME"`` string with the environment variable's value; each one that is not set
    adds a line to ``missing`` (all of them are reported at once, not one per start-up)."""
    if isinstance(value, str):
        if value.startswith("env."):
            name = value[4:]
            if name not in environ:
                missing.append(f"{path}: environment variable {name} is not set")
                return ""
            return environ[name]
        return value
    if isinstance(value, dict):
        return {k: resolve_env(v, f"{path}.{k}", environ, missing=missing) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_env(v, f"{path}[{i}]", environ, missing=missing) for i, v in enumerate(value)]
    return value


# --- sections ---------------------------------------------------------------------------------------

_TOP_IMPLEMENTED = {"client", "providers", "governance", "config_store", "logs_store", "framework"}
_TOP_IGNORED = {"$schema", "vector_store", "plugins", "mcp", "encryption_key",
                "cluster_config", "saml_config", "load_balancer_config", "guardrails_config", "auth_config",
                "websocket"}

_CLIENT_KNOWN = {"max_request_body_size_mb", "drop_excess_requests", "stream_failover",
                 "request_deadline_in_seconds", "circuit_breaker", "max_fallbacks",
                 *governance_settings.CLIENT_KEYS}
_CLIENT_IGNORED = {"initial_pool_size", "prometheus_labels", "allowed_origins", "enable_governance", "enforce_governance_header",
                   "allow_direct_keys", "enable_litellm_fallbacks", "header_filter_config", "mcp_agent_depth",
                   "mcp_tool_execution_timeout", "allowed_headers", "disable_db_pings_in_health",
                   "enable_otel", "async_job_result_ttl", "required_headers", "logging_headers",
                   "max_mcp_tools_per_request", "hide_deleted_virtual_keys_in_filters"}


def _client(raw, warnings) -> ClientConfig:
    path = "client"
    raw = _obj(raw, path)
    _check_keys(raw, path, _CLIENT_KNOWN, _CLIENT_IGNORED, warnings)
    kw: dict[str, Any] = {}
    if "max_request_body_size_mb" in raw:
        mb = _num(raw["max_request_body_size_mb"], f"{path}.max_request_body_size_mb", lo=0)
        kw["max_request_body_bytes"] = int(mb * 1024 * 1024)
    if "drop_excess_requests" in raw:
        kw["drop_excess_requests"] = _bool(raw["drop_excess_requests"], f"{path}.drop_excess_requests")
    if "stream_failover" in raw:
        mode = _str(raw["stream_failover"], f"{path}.stream_failover")
        if mode not in ("off", "resume"):
            raise ConfigError(f'{path}.stream_failover: must be "off" or "resume"')
        kw["stream_failover"] = mode
    if "request_deadline_in_seconds" in raw:
        kw["request_deadline"] = _num(raw["request_deadline_in_seconds"], f"{path}.request_deadline_in_seconds", lo=1)
    if "max_fallbacks" in raw:
        kw["max_fallbacks"] = _num(raw["max_fallbacks"], f"{path}.max_fallbacks", lo=0, integer=True)
    if "circuit_breaker" in raw:
        bp = f"{path}.circuit_breaker"
        b = _obj(raw["circuit_breaker"], bp)
        _check_keys(b, bp, {"enabled", "failure_threshold", "cooldown_seconds"}, set(), warnings)
        kw["breaker"] = Breaker(
            enabled=_bool(b.get("enabled", True), f"{bp}.enabled"),
            failure_threshold=_num(b.get("failure_threshold", 5), f"{bp}.failure_threshold", lo=1, integer=True),
            cooldown_seconds=_num(b.get("cooldown_seconds", 10), f"{bp}.cooldown_seconds", lo=0),
        )
    return ClientConfig(**kw)


_NETWORK_KNOWN = {"base_url", "extra_headers", "default_request_timeout_in_seconds", "max_retries",
                  "retry_backoff_initial", "retry_backoff_max", "stream_idle_timeout_in_seconds",
                  "first_token_timeout_in_seconds"}
_NETWORK_IGNORED = {"max_conns_per_host", "insecure_skip_verify", "ca_cert_pem", "beta_header_overrides",
                    "enforce_http2"}


def _network(raw, path, warnings) -> Network:
    raw = _obj(raw, path)
    _check_keys(raw, path, _NETWORK_KNOWN, _NETWORK_IGNORED, warnings)
    timeout = _num(raw.get("default_request_timeout_in_seconds", 30), f"{path}.default_request_timeout_in_seconds", lo=0.001)
    base_url = _str(raw.get("base_url", ""), f"{path}.base_url")
    if base_url and not base_url.startswith(("http://", "https://")):
        raise ConfigError(f"{path}.base_url: must start with http:// or https://")
    initial = _num(raw.get("retry_backoff_initial", 500), f"{path}.retry_backoff_initial", lo=0)
    maximum = _num(raw.get("retry_backoff_max", 5000), f"{path}.retry_backoff_max", lo=0)
    return Network(
        base_url=base_url.rstrip("/"),
        extra_headers=_str_map(raw.get("extra_headers", {}), f"{path}.extra_headers"),
        timeout=timeout,
        max_retries=_num(raw.get("max_retries", 0), f"{path}.max_retries", lo=0, integer=True),
        backoff_initial=initial / 1000.0,
        backoff_max=max(maximum, initial) / 1000.0,
        stream_idle_timeout=_num(raw.get("stream_idle_timeout_in_seconds", timeout),
                                 f"{path}.stream_idle_timeout_in_seconds", lo=0.001),
        first_token_timeout=_num(raw.get("first_token_timeout_in_seconds", timeout),
                                 f"{path}.first_token_timeout_in_seconds", lo=0.001),
    )


def _proxy(raw, path, warnings) -> Proxy:
    raw = _obj(raw, path)
    _check_keys(raw, path, {"type", "url", "username", "password"}, {"ca_cert_pem"}, warnings)
    ptype = _str(raw.get("type", "none"), f"{path}.type")
    if ptype not in ("none", "http", "socks5", "environment"):
        raise ConfigError(f"{path}.type: must be one of none, http, socks5, environment")
    url = _str(raw.get("url", ""), f"{path}.url")
    if ptype in ("http", "socks5") and not url:
        raise ConfigError(f"{path}.url: is required for a {ptype} proxy")
    return Proxy(ptype, url, _str(raw.get("username", ""), f"{path}.username"),
                 _str(raw.get("password", ""), f"{path}.password"))


_KEY_KNOWN = {"name", "value", "models", "weight", "id"}
_KEY_IGNORED = {"description", "enabled", "aliases", "openai_key_config", "use_for_batch_api",
                "huggingface_key_config", "config_hash"}
@functools.cache
def _key_members() -> frozenset[str]:
    """Every provider's own key-config member (a key may carry another provider's: Bifrost exports do)."""
    return frozenset(a.key_fields.member for a in (r.load_adapter() for r in ROWS.values()) if a.key_fields)


def _key(raw, path, warnings, adapter) -> Key:
    raw = _obj(raw, path)
    fields = adapter.key_fields
    own = fields.member if fields is not None else None
    members = _key_members()
    _check_keys(raw, path, _KEY_KNOWN | members, _KEY_IGNORED, warnings)
    for member in members - {own}:
        if raw.get(member) is not None:
            warnings.append(f"{path}.{member} is not used by this provider and is ignored")
    weight = _num(raw.get("weight", 1.0), f"{path}.weight", lo=0)
    settings = None
    if own is not None and raw.get(own) is not None:
        sp = f"{path}.{own}"
        conf = _obj(raw[own], sp)
        _check_keys(conf, sp, fields.known, fields.ignored, warnings)
        settings = {}
        for k, v in conf.items():
            if k in fields.ignored or v is None:
                continue
            settings[k] = _str_map(v, f"{sp}.{k}") if k == "deployments" else _str(v, f"{sp}.{k}")
    reach = frozenset((settings or {}).get("deployments") or ()) if fields and fields.deployments_limit_reach else frozenset()
    return Key(
        name=_str(raw.get("name", raw.get("id", "")), f"{path}.name"),
        value=_str(raw.get("value", ""), f"{path}.value"),
        models=_str_list(raw.get("models", []), f"{path}.models"),
        weight=float(weight),
        settings=settings,
        reach=reach,
    )


_PROVIDER_KNOWN = {"keys", "network_config", "concurrency_and_buffer_size", "proxy_config",
                   "send_back_raw_response", "custom_provider_config", "voices"}
_PROVIDER_IGNORED = {"send_back_raw_request", "store_raw_request_response", "openai_config", "pricing_overrides"}


def _provider(name: str, raw, warnings) -> ProviderConfig:
    path = f"providers.{name}"
    raw = _obj(raw, path)
    _check_keys(raw, path, _PROVIDER_KNOWN, _PROVIDER_IGNORED, warnings)
    keyless = False
    row = ROWS.get(name)
    if "custom_provider_config" in raw:
        cp = f"{path}.custom_provider_config"
        custom = _obj(raw["custom_provider_config"], cp)
        _check_keys(custom, cp, {"base_provider_type", "is_key_less"},
                    {"allowed_requests", "request_path_overrides"}, warnings)
        base = _str(custom.get("base_provider_type", ""), f"{cp}.base_provider_type")
        if base not in ROWS or not ROWS[base].chat_supported:
            raise ConfigError(f"{cp}.base_provider_type: must be one of {', '.join(n for n in ROWS if ROWS[n].chat_supported)}")
        keyless = _bool(custom.get("is_key_less", False), f"{cp}.is_key_less")
        if row is not None:
            raise ConfigError(f"{cp}: a built-in provider cannot be a custom provider")
        row = ROWS[base]
    elif row is None:
        raise ConfigError(f"{path}: unknown provider (a custom provider needs custom_provider_config)")
    keys_raw = raw.get("keys", [])
    if not isinstance(keys_raw, list):
        raise ConfigError(f"{path}.keys: must be an array")
    adapter = row.load_adapter()
    keys = tuple(_key(k, f"{path}.keys[{i}]", warnings, adapter) for i, k in enumerate(keys_raw))
    network = _network(raw.get("network_config", {}), f"{path}.network_config", warnings)
    cb = _obj(raw.get("concurrency_and_buffer_size", {}), f"{path}.concurrency_and_buffer_size")
    _check_keys(cb, f"{path}.concurrency_and_buffer_size", {"concurrency", "buffer_size"}, set(), warnings)
    concurrency = _num(cb.get("concurrency", 1000), f"{path}.concurrency_and_buffer_size.concurrency", lo=1, integer=True)
    buffer_size = _num(cb.get("buffer_size", 5000), f"{path}.concurrency_and_buffer_size.buffer_size", lo=0, integer=True)
    conf = ProviderConfig(
        name=name,
        row=row,
        keys=keys,
        network=network,
        concurrency=concurrency,
        buffer_size=buffer_size,
        proxy=_proxy(raw.get("proxy_config", {}), f"{path}.proxy_config", warnings),
        send_back_raw_response=_bool(raw.get("send_back_raw_response", False), f"{path}.send_back_raw_response"),
        keyless=keyless or row.key_optional,
        voices=_str_map(raw.get("voices", {}), f"{path}.voices"),
    )
    _check_provider(conf, path, adapter)
    return conf


def _check_provider(conf: ProviderConfig, path: str, adapter) -> None:
    """Cross-field rules: what a provider cannot work without (each provider's module says what its keys need)."""
    row = conf.row
    if not conf.keys and not conf.keyless:
        raise ConfigError(f"{path}.keys: at least one key is required")
    for i, key in enumerate(conf.keys):
        lack = adapter.check_key(key)
        if lack is not None and not (conf.keyless and lack == (".value", "must not be empty")):
            raise ConfigError(f"{path}.keys[{i}]{lack[0]}: {lack[1]}")
    if not conf.base_url and not adapter.key_has_endpoint and "{" not in row.base_url:
        raise ConfigError(f"{path}.network_config.base_url: is required for {row.name}")


def from_dict(data, *, environ: Mapping[str, str] | None = None, source: str = "dict") -> GatewayConfig:
    """Validate a config mapping with the config-file schema."""
    environ = os.environ if environ is None else environ
    if not isinstance(data, dict):
        raise ConfigError("$: the configuration must be a JSON object")
    warnings: list[str] = []
    for k in data:
        if k in _TOP_IMPLEMENTED:
            continue
        if k in _TOP_IGNORED:
            if k != "$schema":
                warnings.append(f"{k} is not implemented yet and is ignored")
            continue
        raise ConfigError(f"{k}: unknown top-level section")
    missing: list[str] = []
    data = {k: resolve_env(v, k, environ, missing=missing) for k, v in data.items() if k in _TOP_IMPLEMENTED}
    if missing:
        raise ConfigError("\n".join(missing))
    client = _client(data.get("client", {}), warnings)
    providers_raw = _obj(data.get("providers", {}), "providers")
    if any(environ.get(name) for name in PROXY_VARIABLES):
        providers_raw = {name: _proxy_from_environment(p) for name, p in providers_raw.items()}
    providers = {name: _provider(name, p, warnings) for name, p in providers_raw.items()}
    try:
        governance = governance_settings.parse(data, environ=environ, warnings=warnings)
    except governance_settings.SettingsError as exc:
        raise ConfigError(str(exc)) from None
    config = GatewayConfig(client, providers, governance.virtual_keys, tuple(warnings), source, governance)
    SECRETS.add(*secret_values(config))
    return config


def secret_values(config: GatewayConfig) -> list[str]:
    """Every credential in the configuration, for redaction (a service account's private key inside its JSON
    too, as a provider may echo it in pieces)."""
    gov = config.governance
    out = [vk.value for vk in config.virtual_keys]
    out += [gov.auth.admin_password, gov.config_store.password, gov.logs_store.password]
    for conf in config.providers.values():
        out.append(conf.proxy.password)
        fields = conf.row.load_adapter().key_fields
        for key in conf.keys:
            out.append(key.value)
            for name in fields.secrets if fields is not None else ():
                value = (key.settings or {}).get(name)
                out.append(value)
                if isinstance(value, str) and value.lstrip().startswith("{"):
                    try:
                        inner = json.loads(value)
                    except ValueError:
                        continue
                    if isinstance(inner, dict):
                        out.extend(v for k, v in inner.items() if k in ("private_key", "private_key_id", "client_secret", "refresh_token"))
    return [v for v in out if isinstance(v, str) and v]


def from_file(path: str, *, environ: Mapping[str, str] | None = None) -> GatewayConfig:
    try:
        with open(path, "rb") as f:
            data = json.loads(f.read())
    except OSError as exc:
        raise ConfigError(f"$: cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise ConfigError(f"$: {path} is not valid JSON: {exc}") from None
    return from_dict(data, environ=environ, source=path)


# the standard proxy variables (both spellings, as curl and requests read them): when one is set at start,
# providers without a proxy_config go through the proxy they name, so locked-down networks work unconfigured
PROXY_VARIABLES = tuple(v for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY")
                        for v in (name, name.lower()))


def _proxy_from_environment(raw):
    if isinstance(raw, dict) and "proxy_config" not in raw:
        return {**raw, "proxy_config": {"type": "environment"}}
    return raw  # an explicit proxy_config wins; anything malformed is reported by _provider


def base_url_variable(name: str) -> str:
    """Env-only mode: the variable that sets a provider's base URL (``OPENAI_BASE_URL``, ``MY_VLLM_BASE_URL``)."""
    return name.upper().replace("-", "_") + "_BASE_URL"


def _env_key(name: str, env: Mapping[str, str]) -> dict | None:
    """Env-only mode: one provider's config section from its conventional variables, with
    ``network_config.base_url`` from ``<NAME>_BASE_URL`` when that is set."""
    section = _env_credentials(name, env)
    base_url = env.get(base_url_variable(name))
    if base_url:
        if section is None and ROWS[name].key_optional:
            section = {"keys": []}  # a keyless local server (sgl) is enabled by its address alone
        if section is not None:
            section["network_config"] = {"base_url": base_url}
    return section


def _env_credentials(name: str, env: Mapping[str, str]) -> dict | None:
    row = ROWS[name]
    if name == "azure":
        if env.get("AZURE_OPENAI_API_KEY") and env.get("AZURE_OPENAI_ENDPOINT"):
            azure = {"endpoint": env["AZURE_OPENAI_ENDPOINT"]}
            if env.get("AZURE_OPENAI_API_VERSION"):
                azure["api_version"] = env["AZURE_OPENAI_API_VERSION"]
            return {"keys": [{"name": "env", "value": env["AZURE_OPENAI_API_KEY"], "azure_key_config": azure}]}
        return None
    if name == "bedrock":
        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
        if env.get("AWS_BEARER_TOKEN_BEDROCK"):
            return {"keys": [{"name": "env", "value": env["AWS_BEARER_TOKEN_BEDROCK"],
                              "bedrock_key_config": {"region": region}}]}
        if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
            b = {"access_key": env["AWS_ACCESS_KEY_ID"], "secret_key": env["AWS_SECRET_ACCESS_KEY"], "region": region}
            if env.get("AWS_SESSION_TOKEN"):
                b["session_token"] = env["AWS_SESSION_TOKEN"]
            return {"keys": [{"name": "env", "value": "", "bedrock_key_config": b}]}
        return None
    if name == "ollama":
        return {"keys": []}  # always on: keyless, at OLLAMA_BASE_URL or the row's default
    if row.env_keys and env.get(row.env_keys[0]):
        return {"keys": [{"name": "env", "value": env[row.env_keys[0]]}]}
    return None


def from_environ(environ: Mapping[str, str] | None = None) -> GatewayConfig:
    env = os.environ if environ is None else environ
    providers = {}
    for name in ROWS:
        section = _env_key(name, env)
        if section is not None:
            providers[name] = section
    return from_dict({"providers": providers}, environ=env, source="environment")


def load(config=None, *, environ: Mapping[str, str] | None = None) -> GatewayConfig:
    """``config`` is a GatewayConfig, a path, a dict with the file schema, or None (BIFROST_CONFIG, else env)."""
    env = os.environ if environ is None else environ
    if isinstance(config, GatewayConfig):
        return config
    if isinstance(config, dict):
        return from_dict(config, environ=env)
    if isinstance(config, (str, os.PathLike)):
        return from_file(os.fspath(config), environ=env)
    if config is None:
        path = env.get("BIFROST_CONFIG")
        return from_file(path, environ=env) if path else from_environ(env)
    raise TypeError("config must be a path, a dict, a GatewayConfig or None")
