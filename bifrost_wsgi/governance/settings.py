"""The governance and store sections of ``config.json``: ``governance`` (virtual keys, budgets, rate limits,
teams, customers, auth_config; Bifrost's v1.5 layout and the older singular ``budget_id``/``budget`` forms),
``config_store``, ``logs_store``, ``framework.pricing`` and the logging switches of ``client``.

Errors are ``SettingsError`` whose message starts with the JSON path, as the rest of the config's are.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from typing import Mapping

from . import durations


class SettingsError(ValueError):
    """A bad governance or store section; the message starts with the JSON path."""


@dataclass(frozen=True, slots=True)
class ProviderRule:
    """One ``provider_configs[]`` entry of a virtual key."""

    id: str
    provider: str
    weight: float = 1.0
    allowed_models: tuple[str, ...] = ()  # empty or "*" = every model
    rate_limit_id: str = ""

    def allows(self, model: str) -> bool:
        m = self.allowed_models
        return not m or "*" in m or model in m or f"{self.provider}/{model}" in m


@dataclass(frozen=True, slots=True)
class VirtualKey:
    id: str
    name: str
    value: str
    is_active: bool = True
    # provider -> allowed models (empty = all); an empty mapping = every provider
    providers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    provider_configs: tuple[ProviderRule, ...] = ()
    team_id: str = ""
    customer_id: str = ""
    rate_limit_id: str = ""
    description: str = ""
    expires_at: float = 0.0  # epoch seconds; 0 = never

    def __repr__(self) -> str:
        return f"VirtualKey(id={self.id!r}, name={self.name!r})"


@dataclass(frozen=True, slots=True)
class Budget:
    id: str
    max_limit: float
    reset_duration: str
    # exactly one owner
    virtual_key_id: str = ""
    team_id: str = ""
    customer_id: str = ""
    provider_config_id: str = ""


@dataclass(frozen=True, slots=True)
class RateLimit:
    id: str
    request_max_limit: int | None = None
    request_reset_duration: str = ""
    token_max_limit: int | None = None
    token_reset_duration: str = ""


@dataclass(frozen=True, slots=True)
class Team:
    id: str
    name: str
    customer_id: str = ""


@dataclass(frozen=True, slots=True)
class Customer:
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class AdminAuth:
    is_enabled: bool = False
    admin_username: str = ""
    admin_password: str = ""
    disable_auth_on_inference: bool = False

    def __repr__(self) -> str:
        return f"AdminAuth(is_enabled={self.is_enabled}, admin_username={self.admin_username!r})"


@dataclass(frozen=True, slots=True)
class StoreSpec:
    """Where a store lives: ``sqlite`` (``path``, absolute) or ``postgres`` (connection fields)."""

    type: str = "sqlite"
    enabled: bool = True
    path: str = ""
    host: str = "localhost"
    port: int = 5432
    user: str = ""
    password: str = ""
    db_name: str = ""
    ssl_mode: str = "disable"
    max_open_conns: int = 4

    def __repr__(self) -> str:
        where = self.path if self.type == "sqlite" else f"{self.host}:{self.port}/{self.db_name}"
        return f"StoreSpec({self.type}, {where})"


@dataclass(frozen=True, slots=True)
class Settings:
    virtual_keys: tuple[VirtualKey, ...] = ()
    budgets: tuple[Budget, ...] = ()
    rate_limits: tuple[RateLimit, ...] = ()
    teams: tuple[Team, ...] = ()
    customers: tuple[Customer, ...] = ()
    auth: AdminAuth = field(default_factory=AdminAuth)
    config_store: StoreSpec = field(default_factory=StoreSpec)
    logs_store: StoreSpec = field(default_factory=StoreSpec)
    retention_days: int = 0  # 0 = keep every row
    enable_logging: bool = True
    disable_content_logging: bool = False
    pricing_url: str = ""
    data_dir: str = "data"
    allow_remote_admin: bool = False


# --- typed readers ------------------------------------------------------------------------------------

_KIND_CHECKS = {
    "an object": lambda v: isinstance(v, dict),
    "an array": lambda v: isinstance(v, list),
    "a string": lambda v: isinstance(v, str),
    "true or false": lambda v: isinstance(v, bool),
    "a number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
}


def _as(value, path: str, kind: str):
    if not _KIND_CHECKS[kind](value):
        raise SettingsError(f"{path}: must be {kind}")
    return value


def _opt(obj: dict, name: str, path: str, kind: str, default):
    value = obj.get(name)
    return default if value is None else _as(value, f"{path}.{name}", kind)


def _count(obj: dict, name: str, path: str) -> int | None:
    value = _opt(obj, name, path, "a number", None)
    if value is not None and (value < 0 or not float(value).is_integer()):
        raise SettingsError(f"{path}.{name}: must be a whole number, at least 0")
    return None if value is None else int(value)


def _duration(obj: dict, name: str, path: str, *, required: bool) -> str:
    text = _opt(obj, name, path, "a string", "")
    if not text:
        if required:
            raise SettingsError(f"{path}.{name}: is required")
        return ""
    try:
        durations.seconds(text)
    except ValueError as exc:
        raise SettingsError(f"{path}.{name}: {exc}") from None
    return text


def _ident(value, path: str) -> str:
    """Ids are strings in Bifrost's files, but provider config ids are numbers: both are kept as text."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise SettingsError(f"{path}: must be a string or an integer")
    return str(value)


def _known(obj: dict, path: str, known: frozenset, ignored: frozenset, warnings: list) -> None:
    for k in obj:
        if k in ignored:
            warnings.append(f"{path}.{k} is not implemented yet and is ignored")
        elif k not in known:
            raise SettingsError(f"{path}.{k}: unknown key")


def _items(raw: dict, name: str, path: str):
    seq = _opt(raw, name, path, "an array", [])
    for i, item in enumerate(seq):
        yield f"{path}.{name}[{i}]", _as(item, f"{path}.{name}[{i}]", "an object")


# --- governance --------------------------------------------------------------------------------------

_GOV_KNOWN = frozenset({"virtual_keys", "budgets", "rate_limits", "teams", "customers", "auth_config"})
_GOV_IGNORED = frozenset({"model_configs", "providers", "routing_rules", "pricing_overrides"})
_VK_KNOWN = frozenset({"id", "name", "value", "description", "is_active", "team_id", "customer_id", "rate_limit_id",
                       "rate_limit", "budget_id", "budget", "budgets", "provider_configs", "expires_at",
                       "allow_all_providers", "created_at", "updated_at", "config_hash"})
_VK_IGNORED = frozenset({"mcp_configs", "calendar_aligned", "delete_after_expire", "disable_content_logging",
                         "key_ids", "keys"})
_PC_KNOWN = frozenset({"id", "provider", "weight", "allowed_models", "rate_limit_id", "rate_limit", "budget_id",
                       "budget", "budgets", "virtual_key_id"})
_PC_IGNORED = frozenset({"key_ids", "keys", "blacklisted_models", "allow_all_keys"})
_BUDGET_KNOWN = frozenset({"id", "max_limit", "reset_duration", "current_usage", "last_reset", "virtual_key_id",
                           "team_id", "customer_id", "provider_config_id", "created_at", "updated_at"})
_BUDGET_IGNORED = frozenset({"calendar_aligned", "model_config_id", "override_amount", "override_mode",
                             "override_cycles_remaining", "override_cycles_total", "override_anchor_reset",
                             "reset_config"})
_RL_KNOWN = frozenset({"id", "request_max_limit", "request_reset_duration", "token_max_limit", "token_reset_duration",
                       "request_current_usage", "token_current_usage", "request_last_reset", "token_last_reset",
                       "created_at", "updated_at"})
_OWNER_FIELDS = ("virtual_key_id", "team_id", "customer_id", "provider_config_id")


class _Collector:
    """Gathers budgets and rate limits declared anywhere (top-level arrays, inline, or by singular id)."""

    def __init__(self, warnings: list) -> None:
        self.warnings = warnings
        self.budgets: dict[str, Budget] = {}
        self.rate_limits: dict[str, RateLimit] = {}
        self.owner_of: dict[str, tuple[str, str]] = {}  # budget id -> (owner field, owner id), singular forms

    def budget(self, raw, path: str, *, owner: tuple[str, str] | None, default_id: str) -> Budget:
        raw = _as(raw, path, "an object")
        _known(raw, path, _BUDGET_KNOWN, _BUDGET_IGNORED, self.warnings)
        bid = _ident(raw.get("id", default_id), f"{path}.id")
        limit = _as(raw.get("max_limit"), f"{path}.max_limit", "a number") if "max_limit" in raw else None
        if limit is None:
            raise SettingsError(f"{path}.max_limit: is required")
        if limit < 0:
            raise SettingsError(f"{path}.max_limit: Budget max_limit cannot be negative: {limit:.2f}")
        owners = {f: _ident(raw[f], f"{path}.{f}") for f in _OWNER_FIELDS if raw.get(f) not in (None, "")}
        if owner is not None:
            owners.setdefault(owner[0], owner[1])
        if len(owners) > 1:
            raise SettingsError(f"{path}: a budget belongs to one of {', '.join(_OWNER_FIELDS)}, not several")
        if bid in self.budgets:
            raise SettingsError(f"{path}.id: budget {bid} is declared twice")
        b = Budget(id=bid, max_limit=float(limit),
                   reset_duration=_duration(raw, "reset_duration", path, required=True), **owners)
        self.budgets[bid] = b
        return b

    def rate_limit(self, raw, path: str, *, default_id: str) -> RateLimit:
        raw = _as(raw, path, "an object")
        _known(raw, path, _RL_KNOWN, frozenset(), self.warnings)
        rid = _ident(raw.get("id", default_id), f"{path}.id")
        rl = RateLimit(
            id=rid,
            request_max_limit=_count(raw, "request_max_limit", path),
            request_reset_duration=_duration(raw, "request_reset_duration", path,
                                             required=raw.get("request_max_limit") is not None),
            token_max_limit=_count(raw, "token_max_limit", path),
            token_reset_duration=_duration(raw, "token_reset_duration", path,
                                           required=raw.get("token_max_limit") is not None),
        )
        if rid in self.rate_limits:
            raise SettingsError(f"{path}.id: rate limit {rid} is declared twice")
        self.rate_limits[rid] = rl
        return rl

    def owned(self, raw: dict, path: str, owner: tuple[str, str]) -> None:
        """An owner's inline ``budget``/``budgets`` and its singular ``budget_id`` reference."""
        if raw.get("budget") is not None:
            self.budget(raw["budget"], f"{path}.budget", owner=owner, default_id=f"{owner[1]}-budget")
        for i, b in enumerate(_opt(raw, "budgets", path, "an array", [])):
            self.budget(b, f"{path}.budgets[{i}]", owner=owner, default_id=f"{owner[1]}-budget-{i}")
        if raw.get("budget_id") not in (None, ""):
            self.owner_of[_ident(raw["budget_id"], f"{path}.budget_id")] = owner

    def inline_rate_limit(self, raw: dict, path: str, owner_id: str) -> str:
        if raw.get("rate_limit") is not None:
            return self.rate_limit(raw["rate_limit"], f"{path}.rate_limit", default_id=f"{owner_id}-rate-limit").id
        return _ident(raw.get("rate_limit_id") or "", f"{path}.rate_limit_id")


def _expiry(raw: dict, path: str) -> float:
    text = _opt(raw, "expires_at", path, "a string", "")
    if not text:
        return 0.0
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise SettingsError(f"{path}.expires_at: must be an RFC 3339 time") from None


def _virtual_key(raw: dict, path: str, col: _Collector) -> VirtualKey:
    _known(raw, path, _VK_KNOWN, _VK_IGNORED, col.warnings)
    value = _opt(raw, "value", path, "a string", "")
    if not value:
        raise SettingsError(f"{path}.value: must not be empty")
    vid = _ident(raw.get("id") or "", f"{path}.id")
    name = _opt(raw, "name", path, "a string", "")
    key_id = vid or name
    rules = []
    for pp, pc in _items(raw, "provider_configs", path):
        _known(pc, pp, _PC_KNOWN, _PC_IGNORED, col.warnings)
        provider = _opt(pc, "provider", pp, "a string", "")
        if not provider:
            raise SettingsError(f"{pp}.provider: is required")
        pid = _ident(pc.get("id", f"{key_id}/{provider}"), f"{pp}.id")
        weight = _opt(pc, "weight", pp, "a number", 1.0)
        if weight < 0:
            raise SettingsError(f"{pp}.weight: must be at least 0")
        models = tuple(_as(m, f"{pp}.allowed_models[{i}]", "a string")
                       for i, m in enumerate(_opt(pc, "allowed_models", pp, "an array", [])))
        col.owned(pc, pp, ("provider_config_id", pid))
        rules.append(ProviderRule(id=pid, provider=provider, weight=float(weight), allowed_models=models,
                                  rate_limit_id=col.inline_rate_limit(pc, pp, pid)))
    team_id = _ident(raw.get("team_id") or "", f"{path}.team_id")
    customer_id = _ident(raw.get("customer_id") or "", f"{path}.customer_id")
    if team_id and customer_id:
        raise SettingsError(f"{path}: VirtualKey cannot be attached to both Team and Customer")
    col.owned(raw, path, ("virtual_key_id", key_id))
    return VirtualKey(
        id=vid, name=name, value=value,
        is_active=_opt(raw, "is_active", path, "true or false", True),
        providers={r.provider: r.allowed_models for r in rules},
        provider_configs=tuple(rules), team_id=team_id, customer_id=customer_id,
        rate_limit_id=col.inline_rate_limit(raw, path, key_id),
        description=_opt(raw, "description", path, "a string", ""),
        expires_at=_expiry(raw, path),
    )


def _governance(raw, warnings: list) -> dict:
    path = "governance"
    raw = _as(raw, path, "an object")
    _known(raw, path, _GOV_KNOWN, _GOV_IGNORED, warnings)
    col = _Collector(warnings)
    for rp, rl in _items(raw, "rate_limits", path):
        col.rate_limit(rl, rp, default_id="")
    customers, teams = {}, {}
    for cp, c in _items(raw, "customers", path):
        _known(c, cp, frozenset({"id", "name", "budget_id", "budget", "budgets"}), frozenset(), warnings)
        cid = _ident(c.get("id") or "", f"{cp}.id")
        customers[cid] = Customer(cid, _opt(c, "name", cp, "a string", ""))
        col.owned(c, cp, ("customer_id", cid))
    for tp, t in _items(raw, "teams", path):
        _known(t, tp, frozenset({"id", "name", "customer_id", "budget_id", "budget", "budgets"}), frozenset(), warnings)
        tid = _ident(t.get("id") or "", f"{tp}.id")
        cust = _ident(t.get("customer_id") or "", f"{tp}.customer_id")
        if cust and cust not in customers:
            raise SettingsError(f"{tp}.customer_id: no customer {cust}")
        teams[tid] = Team(tid, _opt(t, "name", tp, "a string", ""), cust)
        col.owned(t, tp, ("team_id", tid))
    keys = [(vp, _virtual_key(vk, vp, col)) for vp, vk in _items(raw, "virtual_keys", path)]
    for bp, b in _items(raw, "budgets", path):
        bid = _ident(b.get("id") or "", f"{bp}.id")
        col.budget(b, bp, owner=col.owner_of.pop(bid, None), default_id=bid)
    for bid, (field_name, _owner) in col.owner_of.items():
        raise SettingsError(f"{path}: {field_name.removesuffix('_id')} {_owner} names budget_id {bid}, "
                            f"which governance.budgets does not declare")
    for vp, vk in keys:
        if vk.team_id and vk.team_id not in teams:
            raise SettingsError(f"{vp}.team_id: no team {vk.team_id}")
        if vk.customer_id and vk.customer_id not in customers:
            raise SettingsError(f"{vp}.customer_id: no customer {vk.customer_id}")
        for rid, where in [(vk.rate_limit_id, vp), *((r.rate_limit_id, f"{vp}.provider_configs") for r in vk.provider_configs)]:
            if rid and rid not in col.rate_limits:
                raise SettingsError(f"{where}.rate_limit_id: no rate limit {rid}")
    auth = AdminAuth()
    if raw.get("auth_config") is not None:
        ap = f"{path}.auth_config"
        a = _as(raw["auth_config"], ap, "an object")
        _known(a, ap, frozenset({"is_enabled", "admin_username", "admin_password", "disable_auth_on_inference"}),
               frozenset(), warnings)
        auth = AdminAuth(is_enabled=_opt(a, "is_enabled", ap, "true or false", False),
                         admin_username=_opt(a, "admin_username", ap, "a string", ""),
                         admin_password=_opt(a, "admin_password", ap, "a string", ""),
                         disable_auth_on_inference=_opt(a, "disable_auth_on_inference", ap, "true or false", False))
        if auth.is_enabled and not (auth.admin_username and auth.admin_password):
            raise SettingsError(f"{ap}: admin_username and admin_password are required when is_enabled is true")
    return {"virtual_keys": tuple(vk for _, vk in keys), "budgets": tuple(col.budgets.values()),
            "rate_limits": tuple(col.rate_limits.values()), "teams": tuple(teams.values()),
            "customers": tuple(customers.values()), "auth": auth}


# --- stores ----------------------------------------------------------------------------------------

_STORE_KNOWN = frozenset({"enabled", "type", "config", "retention_days"})
_STORE_IGNORED = frozenset({"writer", "object_storage"})
_PG_FIELDS = frozenset({"host", "port", "user", "password", "db_name", "ssl_mode", "max_idle_conns", "max_open_conns"})


def _store(raw, path: str, default_file: str, data_dir: str, warnings: list) -> tuple[StoreSpec, int]:
    if raw is None:
        return StoreSpec(path=os.path.join(data_dir, default_file)), 0
    raw = _as(raw, path, "an object")
    _known(raw, path, _STORE_KNOWN, _STORE_IGNORED, warnings)
    kind = _opt(raw, "type", path, "a string", "sqlite")
    conf = _opt(raw, "config", path, "an object", {})
    cp = f"{path}.config"
    retention = _count(raw, "retention_days", path) or 0
    enabled = _opt(raw, "enabled", path, "true or false", True)
    if kind == "sqlite":
        _known(conf, cp, frozenset({"path"}), frozenset(), warnings)
        file = _opt(conf, "path", cp, "a string", default_file) or default_file
        return StoreSpec(enabled=enabled, path=os.path.join(data_dir, file)), retention
    if kind == "postgres":
        _known(conf, cp, _PG_FIELDS, frozenset(), warnings)
        port = conf.get("port", 5432)
        if isinstance(port, str) and port.isdigit():
            port = int(port)  # Bifrost's files write the port as a string
        return StoreSpec(type="postgres", enabled=enabled,
                         host=_opt(conf, "host", cp, "a string", "localhost"),
                         port=int(_as(port, f"{cp}.port", "a number")),
                         user=_opt(conf, "user", cp, "a string", ""),
                         password=_opt(conf, "password", cp, "a string", ""),
                         db_name=_opt(conf, "db_name", cp, "a string", ""),
                         ssl_mode=_opt(conf, "ssl_mode", cp, "a string", "disable"),
                         max_open_conns=max(1, min(16, _count(conf, "max_open_conns", cp) or 4))), retention
    raise SettingsError(f'{path}.type: must be "sqlite" or "postgres"')


def _pricing_url(raw, warnings: list) -> str:
    if raw is None:
        return ""
    raw = _as(raw, "framework", "an object")
    _known(raw, "framework", frozenset({"pricing"}), frozenset(), warnings)
    pricing = _opt(raw, "pricing", "framework", "an object", {})
    _known(pricing, "framework.pricing", frozenset({"pricing_url", "pricing_sync_interval"}), frozenset(), warnings)
    return _opt(pricing, "pricing_url", "framework.pricing", "a string", "")


CLIENT_KEYS = frozenset({"enable_logging", "disable_content_logging", "log_retention_days"})


def parse(data: Mapping, *, environ: Mapping[str, str], warnings: list) -> Settings:
    """``data`` is the whole config (``env.`` strings already replaced)."""
    data_dir = os.path.abspath(environ.get("BIFROST_DATA_DIR") or "data")
    client = data.get("client") or {}
    gov = _governance(data.get("governance") or {}, warnings)
    config_store, _ = _store(data.get("config_store"), "config_store", "config.db", data_dir, warnings)
    logs_store, retention = _store(data.get("logs_store"), "logs_store", "logs.db", data_dir, warnings)
    retention = retention or (_count(client, "log_retention_days", "client") or 0)
    return Settings(
        **gov, config_store=config_store, logs_store=logs_store, retention_days=retention,
        enable_logging=_opt(client, "enable_logging", "client", "true or false", True),
        disable_content_logging=_opt(client, "disable_content_logging", "client", "true or false", False),
        pricing_url=_pricing_url(data.get("framework"), warnings), data_dir=data_dir,
        allow_remote_admin=environ.get("BIFROST_ALLOW_REMOTE_ADMIN", "").lower() in ("1", "true", "yes"),
    )


# --- the management API's bodies: the same rules as the file ------------------------------------------

def api_virtual_key(raw, *, key_id: str) -> tuple[VirtualKey, tuple[Budget, ...], tuple[RateLimit, ...]]:
    """A virtual key from a POST/PUT body (``raw`` already merged with the stored key for a PUT)."""
    raw = _as(raw, "$", "an object")
    if not _opt(raw, "name", "$", "a string", ""):
        raise SettingsError("name: Virtual key name is required")
    col = _Collector([])
    vk = _virtual_key({**raw, "id": key_id}, "virtual_key", col)
    return vk, tuple(col.budgets.values()), tuple(col.rate_limits.values())


def api_owner(raw, *, kind: str, owner_id: str) -> tuple[dict, tuple[Budget, ...]]:
    """A team (``kind="team"``) or customer from a POST/PUT body: its fields and its inline budgets."""
    raw = _as(raw, "$", "an object")
    fields = {"id", "name", "budget", "budgets"} | ({"customer_id"} if kind == "team" else set())
    _known(raw, kind, frozenset(fields), frozenset(), [])
    name = _opt(raw, "name", kind, "a string", "")
    if not name:
        raise SettingsError(f"{kind}.name: is required")
    col = _Collector([])
    col.owned(raw, kind, (f"{kind}_id", owner_id))
    out = {"name": name}
    if kind == "team":
        out["customer_id"] = _ident(raw.get("customer_id") or "", f"{kind}.customer_id")
    return out, tuple(col.budgets.values())
