"""What one worker knows of the governance state: keys, teams, customers, budgets and rate limits with their
counters, as read from the store (or, while the store is unreachable, the last picture read).

A ``View`` is replaced whole when the store's version changes (an admin edit anywhere); counters are
refreshed in place every tick. Requests only ever read it, so the request path needs no lock and no query
to authenticate or to check a budget.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Mapping

from . import durations
from .settings import ProviderRule, Settings


def digest(value: str) -> str:
    """The stored form of a virtual key (its SHA-256); the value itself is never kept."""
    return hashlib.sha256(value.encode("latin-1", "replace")).hexdigest()


def hint(value: str) -> str:
    """``sk-…abcd``: enough to recognise a key, never enough to use it."""
    return f"{value[:3]}…{value[-4:]}" if len(value) >= 12 else "…"


@dataclass(frozen=True, slots=True)
class Key:
    id: str
    name: str
    value_hint: str = ""
    is_active: bool = True
    expires_at: float = 0.0
    team_id: str = ""
    customer_id: str = ""
    rate_limit_id: str = ""
    description: str = ""
    provider_configs: tuple[ProviderRule, ...] = ()
    # provider -> allowed models, as virtual_keys.allows() reads it
    providers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def rule(self, provider: str) -> ProviderRule | None:
        for r in self.provider_configs:
            if r.provider == provider:
                return r
        return None


@dataclass(slots=True)
class Budget:
    id: str
    max_limit: float
    reset_duration: str
    window: float
    current_usage: float = 0.0
    last_reset: float = 0.0
    virtual_key_id: str = ""
    team_id: str = ""
    customer_id: str = ""
    provider_config_id: str = ""

    def usage(self, now: float, pending: float = 0.0) -> float:
        base = 0.0 if now - self.last_reset >= self.window else self.current_usage
        return base + pending


@dataclass(slots=True)
class RateLimit:
    id: str
    request_max_limit: int | None
    request_reset_duration: str
    token_max_limit: int | None
    token_reset_duration: str
    request_current_usage: int = 0
    request_last_reset: float = 0.0
    token_current_usage: int = 0
    token_last_reset: float = 0.0

    @property
    def request_window(self) -> float:
        return durations.seconds(self.request_reset_duration) if self.request_reset_duration else 0.0

    @property
    def token_window(self) -> float:
        return durations.seconds(self.token_reset_duration) if self.token_reset_duration else 0.0

    def requests_used(self, now: float) -> int:
        return 0 if now - self.request_last_reset >= self.request_window else self.request_current_usage

    def tokens_used(self, now: float) -> int:
        return 0 if now - self.token_last_reset >= self.token_window else self.token_current_usage


def _rule(d: dict) -> ProviderRule:
    return ProviderRule(id=str(d["id"]), provider=d["provider"], weight=float(d.get("weight", 1.0)),
                        allowed_models=tuple(d.get("allowed_models") or ()), rate_limit_id=d.get("rate_limit_id") or "")


def rule_dict(r: ProviderRule) -> dict:
    return {"id": r.id, "provider": r.provider, "weight": r.weight, "allowed_models": list(r.allowed_models),
            "rate_limit_id": r.rate_limit_id}


class View:
    def __init__(self, entities: dict, version: int = 0) -> None:
        self.version = version
        self.keys_by_hash: dict[str, Key] = {}
        self.keys: dict[str, Key] = {}
        for row in entities.get("gov_virtual_keys", ()):
            rules = tuple(_rule(d) for d in json.loads(row["provider_configs"] or "[]"))
            key = Key(id=row["id"], name=row["name"], value_hint=row["value_hint"], is_active=bool(row["is_active"]),
                      expires_at=float(row["expires_at"] or 0), team_id=row["team_id"], customer_id=row["customer_id"],
                      rate_limit_id=row["rate_limit_id"], description=row["description"], provider_configs=rules,
                      providers={r.provider: r.allowed_models for r in rules})
            self.keys_by_hash[row["value_hash"]] = key
            self.keys[key.id] = key
        # client settings changed through the API (PUT /api/config), over config.json's
        self.overrides = {r["name"]: json.loads(r["value"]) for r in entities.get("gateway_settings", ())}
        # provider name -> its config section from /api/providers (None: removed)
        self.providers = {r["name"]: json.loads(r["config"]) for r in entities.get("gateway_providers", ())}
        self.teams = {r["id"]: dict(r) for r in entities.get("gov_teams", ())}
        self.customers = {r["id"]: dict(r) for r in entities.get("gov_customers", ())}
        self.budgets = {r["id"]: Budget(id=r["id"], max_limit=float(r["max_limit"]), reset_duration=r["reset_duration"],
                                        window=durations.seconds(r["reset_duration"]),
                                        current_usage=float(r["current_usage"]), last_reset=float(r["last_reset"]),
                                        virtual_key_id=r["virtual_key_id"], team_id=r["team_id"],
                                        customer_id=r["customer_id"], provider_config_id=r["provider_config_id"])
                        for r in entities.get("gov_budgets", ())}
        self.rate_limits = {r["id"]: RateLimit(
            id=r["id"], request_max_limit=r["request_max_limit"], request_reset_duration=r["request_reset_duration"],
            token_max_limit=r["token_max_limit"], token_reset_duration=r["token_reset_duration"],
            request_current_usage=int(r["request_current_usage"]), request_last_reset=float(r["request_last_reset"]),
            token_current_usage=int(r["token_current_usage"]), token_last_reset=float(r["token_last_reset"]))
            for r in entities.get("gov_rate_limits", ())}
        self.owned: dict[tuple[str, str], list[Budget]] = {}
        for b in self.budgets.values():
            for owner in ("virtual_key_id", "team_id", "customer_id", "provider_config_id"):
                if getattr(b, owner):
                    self.owned.setdefault((owner, getattr(b, owner)), []).append(b)

    def update_counters(self, counters: dict) -> None:
        for row in counters["gov_budgets"]:
            b = self.budgets.get(row["id"])
            if b is not None:
                b.current_usage, b.last_reset = float(row["current_usage"]), float(row["last_reset"])
        for row in counters["gov_rate_limits"]:
            rl = self.rate_limits.get(row["id"])
            if rl is not None:
                rl.request_current_usage = int(row["request_current_usage"])
                rl.request_last_reset = float(row["request_last_reset"])
                rl.token_current_usage = int(row["token_current_usage"])
                rl.token_last_reset = float(row["token_last_reset"])

    def budget_chain(self, key: Key, rule: ProviderRule | None) -> list[tuple[str, Budget]]:
        """(name in messages, budget) from the narrowest owner out: provider config, key, team, customer."""
        out = []
        if rule is not None:
            out += [(rule.provider, b) for b in self.owned.get(("provider_config_id", rule.id), ())]
        out += [("VK", b) for b in self.owned.get(("virtual_key_id", key.id), ())]
        customer = key.customer_id
        if key.team_id:
            out += [("Team", b) for b in self.owned.get(("team_id", key.team_id), ())]
            customer = customer or (self.teams.get(key.team_id) or {}).get("customer_id", "")
        if customer:
            out += [("Customer", b) for b in self.owned.get(("customer_id", customer), ())]
        return out

    def customer_of(self, key: Key) -> str:
        return key.customer_id or (self.teams.get(key.team_id) or {}).get("customer_id", "")


def seed_changes(settings: Settings, now: float, stored: dict | None = None) -> list:
    """The store rows for what config.json declares: definitions are (re)written at every start, counters
    only when the row is new (a restart keeps spend and usage). Rows an earlier config.json declared and
    this one does not are deleted: removing a key from the file revokes it."""
    changes: list = []
    for c in settings.customers:
        changes.append(("gov_customers", c.id, {"name": c.name, "created_at": now, "updated_at": now}))
    for t in settings.teams:
        changes.append(("gov_teams", t.id, {"name": t.name, "customer_id": t.customer_id, "created_at": now,
                                            "updated_at": now}))
    for rl in settings.rate_limits:
        changes.append(("gov_rate_limits", rl.id, {
            "request_max_limit": rl.request_max_limit, "request_reset_duration": rl.request_reset_duration,
            "token_max_limit": rl.token_max_limit, "token_reset_duration": rl.token_reset_duration,
            "request_current_usage": 0, "request_last_reset": now, "token_current_usage": 0, "token_last_reset": now}))
    for b in settings.budgets:
        changes.append(("gov_budgets", b.id, {
            "max_limit": b.max_limit, "reset_duration": b.reset_duration, "virtual_key_id": b.virtual_key_id,
            "team_id": b.team_id, "customer_id": b.customer_id, "provider_config_id": b.provider_config_id,
            "current_usage": 0.0, "last_reset": now}))
    for vk in settings.virtual_keys:
        changes.append(("gov_virtual_keys", vk.id or vk.name, {
            "name": vk.name, "value_hash": digest(vk.value), "value_hint": hint(vk.value),
            "description": vk.description, "is_active": int(vk.is_active), "team_id": vk.team_id,
            "customer_id": vk.customer_id, "rate_limit_id": vk.rate_limit_id,
            "provider_configs": json.dumps([rule_dict(r) for r in vk.provider_configs]),
            "expires_at": vk.expires_at, "created_at": now, "updated_at": now}))
    for _, _, row in changes:
        row["source"] = "config"
    declared = {(table, row_id) for table, row_id, _ in changes}
    for table, rows in (stored or {}).items():
        if isinstance(rows, list):
            changes += [(table, r["id"], None) for r in rows
                        if r.get("source") == "config" and (table, r["id"]) not in declared]
    return changes


def rows_from_changes(changes: list) -> dict:
    """The same rows as a store would return them (for a gateway whose store is down at start)."""
    out: dict[str, list[dict]] = {}
    for table, row_id, row in changes:
        full = {"id": row_id, "value_hint": "", "description": "", "team_id": "", "customer_id": "",
                "rate_limit_id": "", "provider_configs": "[]", "expires_at": 0, "is_active": 1,
                "virtual_key_id": "", "provider_config_id": "", **row}
        out.setdefault(table, []).append(full)
    return out
