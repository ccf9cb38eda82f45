"""Every ``/api/*`` route, as one WSGI application: request logs, the governance management API, the
virtual key's own quota, and admin sessions.

Access: with ``governance.auth_config.is_enabled`` every route except the quota and ``/api/session/*``
needs a session (cookie ``token`` or ``Authorization: Bearer``); without it the routes answer loopback
clients only, unless remote admin is allowed (``BIFROST_ALLOW_REMOTE_ADMIN``). Secrets never leave: keys
are shown as a hint (``sk-…abcd``) except in the answer that creates one.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time

from .. import errors as E, overrides, web
from ..config import ConfigError
from . import logsearch
from .engine import Engine
from .errors import AdminForbidden, AdminUnauthorized, Conflict, LogNotFound
from .sessions import SESSION_S, Sessions, presented_token
from .settings import SettingsError, api_owner, api_virtual_key
from .store import StoreUnavailable
from .view import digest, hint, rule_dict

_BODY_LIMIT = 1024 * 1024
_PUBLIC = ("/api/governance/virtual-keys/quota", "/api/session/")
_LOOPBACK = ("127.", "::1", "::ffff:127.")


class StoreDown(E.GatewayError):
    status = 503
    type = "store_unavailable"


def _route(pattern: str):
    return re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern) + "$")


class AdminApi:
    def __init__(self, engine: Engine, *, config=None) -> None:
        self.engine = engine
        self.config = config
        self.sessions = Sessions(engine.settings.auth, engine.store)
        entity = {"virtual-keys": ("gov_virtual_keys", "virtual_key", "virtual_keys", "Virtual key"),
                  "teams": ("gov_teams", "team", "teams", "Team"),
                  "customers": ("gov_customers", "customer", "customers", "Customer")}
        self.entity = entity
        self.routes = [
            (_route("/api/session/is-auth-enabled"), {"GET": self.is_auth_enabled}),
            (_route("/api/session/login"), {"POST": self.login}),
            (_route("/api/session/logout"), {"POST": self.logout}),
            (_route("/api/config"), {"GET": self.gateway_config, "PUT": self.change_config}),
            (_route("/api/providers"), {"GET": self.providers, "POST": self.add_provider}),
            (_route("/api/providers/{name}"), {"GET": self.provider, "PUT": self.replace_provider,
                                               "DELETE": self.remove_provider}),
            (_route("/api/logs"), {"GET": self.logs}),
            (_route("/api/logs/stats"), {"GET": self.log_stats}),
            (_route("/api/logs/{log_id}"), {"GET": self.log}),
            (_route("/api/governance/virtual-keys/quota"), {"GET": self.quota}),
            (_route("/api/governance/budgets"), {"GET": self.budgets}),
            (_route("/api/governance/rate-limits"), {"GET": self.rate_limits}),
            (_route("/api/governance/budgets/{item_id}/reset"), {"POST": self.reset_budget}),
            (_route("/api/governance/{kind}"), {"GET": self.list_entities, "POST": self.create}),
            (_route("/api/governance/{kind}/{item_id}"), {"GET": self.get, "PUT": self.update, "DELETE": self.delete}),
        ]

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO") or "/"
        for pattern, methods in self.routes:
            match = pattern.match(path)
            if match is None or (match.groupdict().get("kind") not in (None, *self.entity)):
                continue
            handler = methods.get(environ["REQUEST_METHOD"])
            if handler is None:
                raise E.MethodNotAllowed(f"method {environ['REQUEST_METHOD']} is not allowed on {path}",
                                         headers={"Allow": ", ".join(methods)})
            self._authorize(environ, path)
            try:
                status, body, headers = handler(environ, **match.groupdict())
            except StoreUnavailable as exc:
                raise StoreDown(f"the config store is unavailable: {exc}") from None
            return web.json_response(start_response, status, body, headers)
        raise E.NotFound(f"no route for {path}")

    def _authorize(self, environ, path: str) -> None:
        if path.startswith(_PUBLIC):
            return
        if self.sessions.enabled:
            if not self.sessions.valid(presented_token(environ)):
                raise AdminUnauthorized("Unauthorized: log in at /api/session/login", code="unauthorized")
            return
        remote = environ.get("REMOTE_ADDR", "")
        if not (remote.startswith(_LOOPBACK) or self.engine.settings.allow_remote_admin):
            raise AdminForbidden("the admin API answers only on loopback without governance.auth_config "
                                 "(or start with --allow-remote-admin)", code="admin_not_allowed")

    @staticmethod
    def _body(environ) -> dict:
        body = web.parse_json(web.read_body(environ, _BODY_LIMIT))
        if not isinstance(body, dict):
            raise E.BadRequest("Invalid JSON: the body must be an object")
        return body

    # --- sessions -----------------------------------------------------------------------------------

    def is_auth_enabled(self, environ):
        return 200, {"is_auth_enabled": self.sessions.enabled,
                     "has_valid_token": self.sessions.enabled and self.sessions.valid(presented_token(environ)),
                     "auth_type": "password" if self.sessions.enabled else "none",
                     "inference_auth_enforced": self.engine.enforcing}, []

    def login(self, environ):
        if not self.sessions.enabled:
            raise AdminForbidden("Authentication is not enabled")
        body = self._body(environ)
        user, password = body.get("username"), body.get("password")
        if not isinstance(user, str) or not isinstance(password, str):
            raise E.BadRequest("username and password are required", param="username")
        token = self.sessions.login(user, password)
        if token is None:
            raise AdminUnauthorized("Invalid username or password")
        secure = "; Secure" if environ.get("HTTP_X_FORWARDED_PROTO") == "https" else ""
        cookie = f"token={token}; Path=/; Max-Age={SESSION_S}; HttpOnly; SameSite=Lax{secure}"
        return 200, {"message": "Login successful", "token": token}, [("Set-Cookie", cookie)]

    def logout(self, environ):
        self.sessions.logout(presented_token(environ))
        return 200, {"message": "Logout successful"}, [("Set-Cookie", "token=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax")]

    # --- the running gateway: changes are stored, and every worker rebuilds its router from them ----------

    def gateway_config(self, environ):
        client = self.config.client
        return 200, {"client_config": {
            "max_request_body_size_mb": client.max_request_body_bytes / (1024 * 1024),
            "drop_excess_requests": client.drop_excess_requests, "stream_failover": client.stream_failover,
            "request_deadline_in_seconds": client.request_deadline, "max_fallbacks": client.max_fallbacks,
            "circuit_breaker": {"enabled": client.breaker.enabled,
                                "failure_threshold": client.breaker.failure_threshold,
                                "cooldown_seconds": client.breaker.cooldown_seconds},
            "enable_logging": bool(self.engine._setting("enable_logging")),
            "disable_content_logging": bool(self.engine._setting("disable_content_logging")),
            "log_retention_days": self.engine.retention_days,
            "enforce_auth_on_inference": self.engine.enforcing},
            "is_db_connected": self.engine.store is not None and self.engine.healthy,
            "is_logs_connected": self.engine.logs_store is not None,
            "is_cache_connected": False}, []

    def change_config(self, environ):
        """``{"client_config": {...}}``: every worker applies the change within a second; kept in the store
        over config.json."""
        body = self._body(environ)
        client = body.get("client_config")
        if not isinstance(client, dict):
            raise E.BadRequest("client_config: must be an object", param="client_config")
        shown = self.gateway_config(environ)[1]["client_config"]
        changes = {}
        for name, value in client.items():
            path = f"client_config.{name}"
            if name in self.engine.LIVE_SETTINGS:
                kind_ok = isinstance(value, bool) if name != "log_retention_days" else \
                    isinstance(value, int) and not isinstance(value, bool) and value >= 0
                if not kind_ok:
                    want = "a whole number, at least 0" if name == "log_retention_days" else "true or false"
                    raise E.BadRequest(f"{path}: must be {want}", param=path)
                changes[name] = value
            elif name in overrides.CLIENT_FIELDS:
                try:
                    overrides.client(self.config.client, {name: value})
                except ConfigError as exc:
                    message = "client_config." + str(exc).removeprefix("client.")
                    raise E.BadRequest(message, param=message.split(":", 1)[0]) from None
                changes[name] = value
            elif name not in shown or shown[name] != value:
                raise E.BadRequest(f"{path}: cannot be changed while the gateway runs", param=path)
        if changes:
            self.engine.change_settings(changes)
        return 200, self.gateway_config(environ)[1], []

    def _provider_json(self, conf) -> dict:
        net = conf.network
        return {"name": conf.name, "base_provider_type": conf.row.name,
                "keys": [{"name": k.name, "value": hint(k.value) if k.value else "", "models": list(k.models),
                          "weight": k.weight} for k in conf.keys],
                "network_config": {"base_url": conf.base_url, "default_request_timeout_in_seconds": net.timeout,
                                   "max_retries": net.max_retries,
                                   "retry_backoff_initial": int(net.backoff_initial * 1000),
                                   "retry_backoff_max": int(net.backoff_max * 1000)},
                "concurrency_and_buffer_size": {"concurrency": conf.concurrency, "buffer_size": conf.buffer_size}}

    def providers(self, environ):
        items = [self._provider_json(p) for p in self.config.providers.values()]
        return 200, {"providers": items, "total": len(items)}, []

    def provider(self, environ, name):
        conf = self.config.providers.get(name)
        if conf is None:
            raise E.NotFound(f"provider {name} is not configured")
        return 200, self._provider_json(conf), []

    def add_provider(self, environ):
        """``{"provider": name, ...its config section}``."""
        body = self._body(environ)
        name = body.pop("provider", None)
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][\w.-]{0,63}", name):
            raise E.BadRequest("provider: must be the provider's name (letters, digits, '-', '_', '.')",
                               param="provider")
        if name in self.config.providers:
            raise Conflict(f"provider {name} already exists")
        self._store_provider(name, body)
        return 201, self._provider_json(self.config.providers[name]), []

    def replace_provider(self, environ, name):
        """The whole config section (as in config.json); a key whose value is its hint (``sk-…abcd``, as
        GET shows it) keeps the value it has."""
        if name not in self.config.providers:
            raise E.NotFound(f"provider {name} is not configured")
        body = self._body(environ)
        body.pop("provider", None)
        current = {k.name: k.value for k in self.config.providers[name].keys if k.value}
        for key in body.get("keys") if isinstance(body.get("keys"), list) else ():
            if isinstance(key, dict) and key.get("name") in current and key.get("value") == hint(current[key["name"]]):
                key["value"] = current[key["name"]]
        self._store_provider(name, body)
        return 200, self._provider_json(self.config.providers[name]), []

    def remove_provider(self, environ, name):
        if name not in self.config.providers:
            raise E.NotFound(f"provider {name} is not configured")
        self.engine.put_provider(name, None)
        return 200, {"message": f"provider {name} removed"}, []

    def _store_provider(self, name: str, section: dict) -> None:
        """Validated by the config file's parser (400 naming the field's path in the body), then stored:
        this worker serves it before answering, the others within a second."""
        try:
            overrides.provider(name, section, environ=os.environ)
        except ConfigError as exc:
            message = str(exc).removeprefix(f"providers.{name}.").removeprefix(f"providers.{name}")
            message = message if not message.startswith(":") else "$" + message
            raise E.BadRequest(message, param=message.split(":", 1)[0]) from None
        self.engine.put_provider(name, section)

    # --- logs -----------------------------------------------------------------------------------------

    def _logs_store(self):
        if not self.engine.logging:
            raise StoreDown("request logging is off (client.enable_logging or logs_store.enabled)")
        if self.engine.logs_store is None:
            raise StoreDown("the logs store is unavailable")
        return self.engine.logs_store

    def logs(self, environ):
        q = logsearch.parse(environ.get("QUERY_STRING", ""))
        rows, stats = self._logs_store().query_logs(q["where"], q["params"], order=q["order"], limit=q["limit"],
                                                   offset=q["offset"])
        stats = logsearch.stats_json(stats)
        return 200, {"logs": [logsearch.row_json(r) for r in rows],
                     "pagination": {"limit": q["limit"], "offset": q["offset"], "sort_by": q["sort_by"],
                                    "order": q["order_dir"], "total_count": stats["total_requests"]},
                     "stats": stats, "has_logs": stats["total_requests"] > 0}, []

    def log_stats(self, environ):
        q = logsearch.parse(environ.get("QUERY_STRING", ""))
        _, stats = self._logs_store().query_logs(q["where"], q["params"], order=q["order"], limit=1, offset=0)
        return 200, logsearch.stats_json(stats), []

    def log(self, environ, log_id):
        row = self._logs_store().log(log_id)
        if row is None:
            raise LogNotFound("log not found")
        return 200, logsearch.row_json(row), []

    # --- governance: reading --------------------------------------------------------------------------

    def _budget_json(self, b) -> dict:
        now = self.engine.clock()
        return {"id": b.id, "max_limit": b.max_limit, "current_usage": round(b.usage(now, self.engine.unseen_spend(b.id)), 10),
                "reset_duration": b.reset_duration, "last_reset": logsearch.rfc3339(b.last_reset),
                **{k: getattr(b, k) for k in ("virtual_key_id", "team_id", "customer_id", "provider_config_id")
                   if getattr(b, k)}}

    def _rate_limit_json(self, rl) -> dict:
        now = self.engine.clock()
        return {"id": rl.id, "request_max_limit": rl.request_max_limit,
                "request_current_usage": rl.requests_used(now), "request_reset_duration": rl.request_reset_duration,
                "token_max_limit": rl.token_max_limit, "token_current_usage": rl.tokens_used(now),
                "token_reset_duration": rl.token_reset_duration}

    def _key_json(self, key) -> dict:
        view = self.engine.view
        return {"id": key.id, "name": key.name, "value": key.value_hint, "description": key.description,
                "is_active": key.is_active, "team_id": key.team_id, "customer_id": key.customer_id,
                "rate_limit_id": key.rate_limit_id,
                "provider_configs": [rule_dict(r) for r in key.provider_configs],
                "budgets": [self._budget_json(b) for b in view.owned.get(("virtual_key_id", key.id), ())],
                "rate_limit": self._rate_limit_json(view.rate_limits[key.rate_limit_id])
                if key.rate_limit_id in view.rate_limits else None}

    def _owner_json(self, kind: str, row: dict) -> dict:
        out = {k: v for k, v in row.items() if k not in ("created_at", "updated_at")}
        out["budgets"] = [self._budget_json(b) for b in self.engine.view.owned.get((f"{kind}_id", row["id"]), ())]
        return out

    def _json(self, kind: str, item_id: str) -> dict | None:
        view = self.engine.view
        if kind == "virtual-keys":
            key = view.keys.get(item_id)
            return self._key_json(key) if key is not None else None
        rows = view.teams if kind == "teams" else view.customers
        row = rows.get(item_id)
        return self._owner_json(self.entity[kind][1], row) if row is not None else None

    def list_entities(self, environ, kind):
        view = self.engine.view
        ids = view.keys if kind == "virtual-keys" else view.teams if kind == "teams" else view.customers
        items = [self._json(kind, i) for i in sorted(ids)]
        return 200, {self.entity[kind][2]: items, "count": len(items)}, []

    def get(self, environ, kind, item_id):
        found = self._json(kind, item_id)
        if found is None:
            raise E.NotFound(f"{self.entity[kind][3]} not found")
        return 200, {self.entity[kind][1]: found}, []

    def budgets(self, environ):
        items = [self._budget_json(b) for b in self.engine.view.budgets.values()]
        return 200, {"budgets": items, "count": len(items)}, []

    def rate_limits(self, environ):
        items = [self._rate_limit_json(rl) for rl in self.engine.view.rate_limits.values()]
        return 200, {"rate_limits": items, "count": len(items)}, []

    def quota(self, environ):
        key = self.engine.authenticate(environ)
        if key is None:
            raise E.Unauthorized("virtual key required: send it as x-bf-vk, Authorization: Bearer or x-api-key",
                                 code="virtual_key_required")
        view = self.engine.view
        budgets = [b for _, b in view.budget_chain(key, None) if b.virtual_key_id == key.id]
        limit_ids = [key.rate_limit_id, *(r.rate_limit_id for r in key.provider_configs)]
        for rule in key.provider_configs:
            budgets += view.owned.get(("provider_config_id", rule.id), [])
        return 200, {"virtual_key": {"id": key.id, "name": key.name},
                     "budgets": [{k: v for k, v in self._budget_json(b).items()
                                  if k in ("id", "max_limit", "current_usage", "reset_duration", "last_reset")}
                                 for b in budgets],
                     "rate_limits": [self._rate_limit_json(view.rate_limits[i]) for i in limit_ids
                                     if i in view.rate_limits]}, []

    # --- governance: changing -------------------------------------------------------------------------

    def _apply(self, changes: list) -> None:
        self.engine.store_apply(changes)

    def _key_changes(self, body: dict, key_id: str, *, existing=None) -> tuple[list, str]:
        now = time.time()
        value = body.get("value")
        if existing is None and not value:
            value = "sk-bf-" + secrets.token_urlsafe(24)
        if value is not None and not isinstance(value, str):
            raise E.BadRequest("value: must be a string", param="value")
        raw = dict(body)
        raw["value"] = value or "unchanged-value"
        try:
            vk, budgets, rate_limits = api_virtual_key(raw, key_id=key_id)
        except SettingsError as exc:
            raise E.BadRequest(str(exc), param=str(exc).split(":", 1)[0]) from None
        view = self.engine.view
        for field_name, table in (("team_id", view.teams), ("customer_id", view.customers)):
            if getattr(vk, field_name) and getattr(vk, field_name) not in table:
                raise E.BadRequest(f"{field_name}: no such {field_name[:-3]}: {getattr(vk, field_name)}",
                                   param=field_name)
        if value and existing is None or (value and existing is not None):
            if digest(value) in view.keys_by_hash and view.keys_by_hash[digest(value)].id != key_id:
                raise Conflict("a virtual key with this value already exists")
        row = {"name": vk.name, "description": vk.description, "is_active": int(vk.is_active),
               "team_id": vk.team_id, "customer_id": vk.customer_id, "rate_limit_id": vk.rate_limit_id,
               "provider_configs": json.dumps([rule_dict(r) for r in vk.provider_configs]),
               "expires_at": vk.expires_at, "updated_at": now}
        if value:
            row.update(value_hash=digest(value), value_hint=hint(value))
        else:  # the stored hash stays (an upsert still names every required column)
            row["value_hash"] = next(h for h, k in view.keys_by_hash.items() if k.id == key_id)
        if existing is None:
            row["created_at"] = now
        changes = [("gov_virtual_keys", key_id, row)]
        changes += _budget_rows(budgets, now) + _rate_limit_rows(rate_limits, now)
        return changes, value if existing is None else ""

    def create(self, environ, kind):
        body = self._body(environ)
        table, singular, _, label = self.entity[kind]
        item_id = str(body.pop("id", "") or secrets.token_hex(8))
        if self._json(kind, item_id) is not None:
            raise Conflict(f"{label} {item_id} already exists")
        value = ""
        if kind == "virtual-keys":
            changes, value = self._key_changes(body, item_id)
        else:
            changes = self._owner_changes(body, kind, item_id, new=True)
        self._apply(changes)
        out = self._json(kind, item_id)
        if value:
            out["value"] = value  # shown once, in this answer only
        return 201, {"message": f"{label} created successfully", singular: out}, []

    def update(self, environ, kind, item_id):
        body = self._body(environ)
        table, singular, _, label = self.entity[kind]
        current = self._json(kind, item_id)
        if current is None:
            raise E.NotFound(f"{label} not found")
        if kind == "virtual-keys":
            merged = {k: current[k] for k in ("name", "description", "is_active", "team_id", "customer_id",
                                              "rate_limit_id", "provider_configs")}
            merged["provider_configs"] = [{k: v for k, v in pc.items() if v not in ("", None)}
                                          for pc in merged["provider_configs"]]
            merged = {k: v for k, v in merged.items() if v not in ("", None)}
            merged.update(body)
            changes, _ = self._key_changes(merged, item_id, existing=current)
        else:
            merged = {k: current[k] for k in ("name", "customer_id") if current.get(k)}
            merged.update(body)
            changes = self._owner_changes(merged, kind, item_id, new=False)
        self._apply(changes)
        return 200, {"message": f"{label} updated successfully", singular: self._json(kind, item_id)}, []

    def _owner_changes(self, body: dict, kind: str, item_id: str, *, new: bool) -> list:
        now = time.time()
        singular = self.entity[kind][1]
        try:
            fields, budgets = api_owner(body, kind=singular, owner_id=item_id)
        except SettingsError as exc:
            raise E.BadRequest(str(exc), param=str(exc).split(":", 1)[0]) from None
        if fields.get("customer_id") and fields["customer_id"] not in self.engine.view.customers:
            raise E.BadRequest(f"customer_id: no such customer: {fields['customer_id']}", param="customer_id")
        row = {**fields, "updated_at": now, **({"created_at": now} if new else {})}
        return [(self.entity[kind][0], item_id, row)] + _budget_rows(budgets, now)

    def delete(self, environ, kind, item_id):
        table, _, _, label = self.entity[kind]
        if self._json(kind, item_id) is None:
            raise E.NotFound(f"{label} not found")
        owner = {"virtual-keys": "virtual_key_id", "teams": "team_id", "customers": "customer_id"}[kind]
        owned = [("gov_budgets", b.id, None) for b in self.engine.view.owned.get((owner, item_id), ())]
        self._apply([(table, item_id, None), *owned])
        return 200, {"message": f"{label} deleted successfully"}, []

    def reset_budget(self, environ, item_id):
        if item_id not in self.engine.view.budgets:
            raise E.NotFound("Budget not found")
        self.engine.reset_budget(item_id)
        return 200, {"message": "Budget reset successfully",
                     "budget": self._budget_json(self.engine.view.budgets[item_id])}, []


def _budget_rows(budgets, now: float) -> list:
    return [("gov_budgets", b.id, {"max_limit": b.max_limit, "reset_duration": b.reset_duration,
                                   "virtual_key_id": b.virtual_key_id, "team_id": b.team_id,
                                   "customer_id": b.customer_id, "provider_config_id": b.provider_config_id,
                                   "current_usage": 0.0, "last_reset": now}) for b in budgets]


def _rate_limit_rows(rate_limits, now: float) -> list:
    return [("gov_rate_limits", rl.id, {"request_max_limit": rl.request_max_limit,
                                        "request_reset_duration": rl.request_reset_duration,
                                        "token_max_limit": rl.token_max_limit,
                                        "token_reset_duration": rl.token_reset_duration,
                                        "request_current_usage": 0, "request_last_reset": now,
                                        "token_current_usage": 0, "token_last_reset": now}) for rl in rate_limits]
