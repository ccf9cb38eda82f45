"""Governance enforcement (virtual keys, rate limits, budgets) and usage accounting, shared by every worker
and host through the store.

- ``authenticate(environ)``: the presented virtual key, from the in-memory view (no query).
- ``route_model(key, body)``: a model without ``provider/`` goes to one of the key's provider configs.
- ``admit(key=, provider=, model=, request_id=)``: the check order of Bifrost: provider and model allowed →
  rate limits (provider config, then key) → budgets (provider config → key → team → customer). A request
  takes its slot in every request limit atomically in the store, so N workers admit N in total.
- as an observer, ``request_finished(ctx)`` prices the request and queues its log row and its usage
  (tokens to rate limits, cost to budgets) for the writer thread.

The request path never waits for the store beyond a short lock timeout, and skips it entirely while the
refresher finds it unreachable: then the last known view decides, and counting is local until it is back.
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
import weakref

from ..errors import Unauthorized
from . import virtual_keys
from .errors import BudgetExceeded, RateLimited
from .logwriter import Item, LogWriter
from .settings import Settings
from .store import SqlStore, StoreUnavailable, open_store
from .view import Key, View, digest, rows_from_changes, seed_changes

try:
    from .pricing import PriceTable
except ImportError:  # the price table ships in its own module; without it every request costs 0
    PriceTable = None


def no_price(*, provider, model, usage, reported_model=None):
    return 0.0, False

log = logging.getLogger("bifrost_wsgi.governance")

REFRESH_S = 0.5  # how often each worker re-reads counters (and the whole view when it changed)
ENVIRON_KEY = virtual_keys.ENVIRON_KEY
# the body fields that are the conversation, not parameters, in a log row
_CONTENT_FIELDS = ("messages", "model", "fallbacks", "stream")
_OBJECTS = {"models": "list_models"}  # the request type of a route outside chat, as Bifrost names it
_LOGGED_PREFIXES = ("/v1/", "/openai/", "/anthropic/", "/genai/", "/bedrock/", "/cohere/")


class Admission:
    __slots__ = ("key", "rule", "rate_limits", "budgets", "team_id", "customer_id")

    def __init__(self, key: Key, rule, rate_limits, budgets, team_id: str, customer_id: str) -> None:
        self.key, self.rule = key, rule
        self.rate_limits, self.budgets = rate_limits, budgets
        self.team_id, self.customer_id = team_id, customer_id


def _open(spec, what: str, *, first: bool) -> SqlStore | None:
    try:
        return open_store(spec)
    except StoreUnavailable as exc:
        if first:  # then once a minute at most: the refresher retries every few seconds
            log.error("%s store %r unavailable: %s; running from config.json until it is back", what, spec, exc)
        return None


class Engine:
    def __init__(self, settings: Settings, *, price=None, clock=time.time) -> None:
        """``price(*, provider, model, usage, reported_model=None) -> (usd, known)``; default: the package's
        price table (with ``framework.pricing.pricing_url`` over it)."""
        self.settings = settings
        if price is None:
            price = PriceTable.from_config(pricing_url=settings.pricing_url or None).cost \
                if PriceTable is not None else no_price
        self.price = price
        self.clock = clock
        self.store: SqlStore | None = None
        self.logs_store: SqlStore | None = None
        self.view = View(rows_from_changes(seed_changes(settings, clock())))
        self.healthy = False
        self._next_connect = 0.0
        self._connect_failures = 0
        # spend this worker queued for the writer that the store (and so the view) does not have yet;
        # the lock orders a usage write against a refresh, so a refresh never sees spend that is also
        # still pending
        self._pending: dict[str, float] = {}
        self._pending_lock = threading.Lock()  # held for dict updates only, never across I/O
        self._store_lock = threading.Lock()  # a usage write or a refresh, one at a time
        self._admitted: dict[str, Admission] = {}
        self._bodies: dict[str, dict] = {}  # request bodies kept for their log row until the request ends
        self.writer = LogWriter(logs=None, usage=self.record_usage, retention_days=lambda: self.retention_days)
        # ``listener(providers, client_settings)``, called when what the API put over config.json changes
        self.listeners: list = []
        self._seen_overrides: tuple[dict, dict] = ({}, {})
        self.connect()
        self._stop = threading.Event()
        self._start_refresher()
        # a gateway built before gunicorn forks (preload) needs its threads again in each worker
        me = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: _restart_threads(me))

    # --- the client settings PUT /api/config may change on every worker ----------------------------

    LIVE_SETTINGS = {"enable_logging": "enable_logging", "disable_content_logging": "disable_content_logging",
                     "log_retention_days": "retention_days"}

    def _setting(self, name: str):
        return self.view.overrides.get(name, getattr(self.settings, self.LIVE_SETTINGS[name]))

    @property
    def logging(self) -> bool:
        return bool(self._setting("enable_logging")) and self.settings.logs_store.enabled

    @property
    def content_logging(self) -> bool:
        return self.logging and not self._setting("disable_content_logging")

    @property
    def retention_days(self) -> int:
        return int(self._setting("log_retention_days"))

    def change_settings(self, values: dict) -> None:
        if self.store is None:
            raise StoreUnavailable("no config store is open")
        self.store.put_settings({name: json.dumps(v) for name, v in values.items()})
        with self._store_lock:  # ordered against the refresher, as in put_provider
            self._reload()
        if self.logging and self.logs_store is None:
            self.connect()

    def _start_refresher(self) -> None:
        # the thread holds the engine weakly: an app that is dropped takes its thread with it
        threading.Thread(target=_refresh_forever, args=(weakref.ref(self), self._stop),
                         name="bifrost-governance-refresh", daemon=True).start()

    # --- keeping the view current ------------------------------------------------------------------

    def _reload(self) -> None:
        entities = self.store.entities()
        self.view = View(entities, entities["version"])
        self._notify()

    def running_overrides(self) -> tuple[dict, dict]:
        """(providers, client settings) the management API put over config.json, as stored."""
        view = self.view
        return view.providers, {k: v for k, v in view.overrides.items() if k not in self.LIVE_SETTINGS}

    def _notify(self) -> None:
        current = self.running_overrides()
        if current == self._seen_overrides:
            return
        self._seen_overrides = current
        for listener in self.listeners:
            try:
                listener(*current)
            except Exception:  # noqa: BLE001 - the refresher must go on; the gateway keeps its config
                log.exception("applying the stored gateway changes failed")

    def put_provider(self, name: str, section: dict | None) -> None:
        """Store a provider's section (None: removed); this worker applies it at once, the others at their
        next refresh."""
        if self.store is None:
            raise StoreUnavailable("no config store is open")
        self.store.put_provider(name, json.dumps(section), self.clock())
        with self._store_lock:  # ordered against the refresher: an older view never lands after this one
            self._reload()

    def refresh(self) -> None:
        with self._store_lock:
            counters = self.store.counters()
            if int(counters["version"][0]["version"]) != self.view.version:
                self._reload()
            else:
                self.view.update_counters(counters)

    def unseen_spend(self, budget_id: str) -> float:
        """Spend of this worker that the view's copy of the budget does not include yet."""
        return self._pending.get(budget_id, 0.0)

    def record_usage(self, tokens: dict, spend: dict) -> None:
        """The writer thread's batch of usage into the store; the view takes the stored budgets at once."""
        with self._store_lock:
            rows: list = []
            try:
                if self.store is not None:
                    rows = self.store.add_usage(tokens=tokens, spend=spend, now=self.clock())
            finally:  # written or lost, it is not pending any more
                with self._pending_lock:
                    self.view.update_counters({"gov_budgets": rows, "gov_rate_limits": []})
                    self._forget(spend)

    def _forget(self, spend: dict) -> None:
        for bid, (usd, _) in spend.items():
            left = self._pending.get(bid, 0.0) - usd
            if left > 1e-12:
                self._pending[bid] = left
            else:
                self._pending.pop(bid, None)

    def connect(self) -> None:
        """Open the stores that are not open yet (at start, then every few seconds while one is down); the
        config store gets what config.json declares."""
        settings, first = self.settings, self._connect_failures % 12 == 0
        if self.store is None and settings.config_store.enabled:
            store = _open(settings.config_store, "config", first=first)
            if store is not None:
                try:
                    changes = seed_changes(settings, self.clock(), store.entities())
                    if changes:
                        store.apply(changes, insert_only=self.COUNTER_COLUMNS)
                    self.store = store
                    self._reload()
                    self.healthy = True
                except StoreUnavailable as exc:
                    log.error("config store: %s; running from config.json until it is back", exc)
                    store.close()
                    self.store = None
        if self.logging and self.logs_store is None:
            same = settings.logs_store == settings.config_store
            self.logs_store = self.store if same else _open(settings.logs_store, "logs", first=first)
            self.writer.logs = self.logs_store
        missing = (self.store is None and settings.config_store.enabled) or (self.logging and self.logs_store is None)
        self._connect_failures = self._connect_failures + 1 if missing else 0
        self._next_connect = time.monotonic() + 5.0

    def tick(self) -> None:
        """One refresh: counters, and the whole view when it changed; notes whether the store answers."""
        if (self._connect_failures or (self.logging and self.logs_store is None)) \
                and time.monotonic() >= self._next_connect:
            self.connect()
        if self.store is not None:
            try:
                self.refresh()
                if not self.healthy:
                    log.warning("config store is reachable again")
                self.healthy = True
            except StoreUnavailable as exc:
                if self.healthy:
                    log.warning("config store unreachable, governance keeps the last known state: %s", exc)
                self.healthy = False
            except Exception:  # noqa: BLE001 - a bad row must not stop the refresher for good
                log.exception("governance refresh failed")

    def close(self) -> None:
        """Stop the background threads and close the stores' connections (queued rows are dropped)."""
        self._stop.set()
        self.writer.close()
        for store in {id(s): s for s in (self.store, self.logs_store) if s is not None}.values():
            store.close()

    # --- changes from the management API ----------------------------------------------------------

    # counters keep their value when a definition is rewritten
    COUNTER_COLUMNS = frozenset({"request_current_usage", "request_last_reset", "token_current_usage",
                                 "token_last_reset", "current_usage", "last_reset", "created_at"})

    def store_apply(self, changes: list) -> None:
        """Write entity changes; this worker sees them at once, the others at their next refresh."""
        if self.store is None:
            raise StoreUnavailable("no config store is open")
        self.store.apply(changes, insert_only=self.COUNTER_COLUMNS)
        self._reload()

    def reset_budget(self, budget_id: str) -> None:
        if self.store is None:
            raise StoreUnavailable("no config store is open")
        self.store.reset_budget(budget_id, self.clock())
        with self._pending_lock:
            self._pending.pop(budget_id, None)
        self.refresh()

    # --- the request path --------------------------------------------------------------------------

    @property
    def enforcing(self) -> bool:
        """Virtual keys are required once any exists (in config.json or created through the API)."""
        return bool(self.view.keys)

    def authenticate(self, environ) -> Key | None:
        """The active key the request presents (401 otherwise); None when no key exists at all."""
        found = environ.get(ENVIRON_KEY)
        if found is not None or not self.enforcing:
            return found
        value = virtual_keys.presented_key(environ)
        if not value:
            raise Unauthorized("virtual key required: send it as x-bf-vk, Authorization: Bearer or x-api-key",
                               code="virtual_key_required")
        # a lookup by SHA-256: the time it takes says nothing usable about any stored key
        key = self.view.keys_by_hash.get(digest(value))
        if key is None:
            raise Unauthorized("Virtual key not found", code="virtual_key_not_found")
        if not key.is_active:
            raise Unauthorized("Virtual key is inactive", code="virtual_key_blocked")
        if key.expires_at and self.clock() >= key.expires_at:
            raise Unauthorized("Virtual key has expired", code="virtual_key_blocked")
        environ[ENVIRON_KEY] = key
        return key

    def route_model(self, key: Key | None, body) -> None:
        """A ``model`` without ``provider/`` goes to one of the key's provider configs that admit it, by
        weight, leaving out configs over a budget or rate limit."""
        if key is None or not key.provider_configs or not isinstance(body, dict):
            return
        model = body.get("model")
        if not isinstance(model, str) or not model or "/" in model:
            return
        now = self.clock()
        fits = [r for r in key.provider_configs if r.allows(model) and r.weight > 0]
        usable = [r for r in fits if not self._rule_exhausted(r, now)] or fits
        if usable:
            rule = random.choices(usable, weights=[r.weight for r in usable])[0]
            body["model"] = f"{rule.provider}/{model}"

    def _rule_exhausted(self, rule, now: float) -> bool:
        rl = self.view.rate_limits.get(rule.rate_limit_id)
        if rl is not None and self._violations(rl, now):
            return True
        return any(b.usage(now, self.unseen_spend(b.id)) >= b.max_limit
                   for b in self.view.owned.get(("provider_config_id", rule.id), ()))

    def check_target(self, key: Key, req) -> None:
        virtual_keys.check_target(key, req)

    def authorize(self, environ, req, *, request_id: str) -> str:
        """The whole pre-call check for a parsed request: the key (cached in ``environ`` by authenticate),
        its provider and model, then rate limits and budgets. Returns the key's label for ``ctx.virtual_key``
        ("" without virtual keys); raises the 401/403/429/402 refusal."""
        key = self.authenticate(environ)
        if key is None:
            return ""
        self.check_target(key, req)
        self.admit(key=key, provider=req.provider, model=req.model, request_id=request_id)
        return virtual_keys.label(key)

    def admit(self, *, key: Key | None, provider: str, model: str, request_id: str) -> Admission | None:
        """Rate limits and budgets for a request the key may make; raises RateLimited (429) or
        BudgetExceeded (402). Call ``check_target`` first (provider and model allowed)."""
        if key is None:
            return None
        view, now = self.view, self.clock()
        rule = key.rule(provider)
        limits = [(rule.provider, view.rate_limits.get(rule.rate_limit_id))] if rule is not None else []
        limits.append(("VK", view.rate_limits.get(key.rate_limit_id)))
        limits = [(name, rl) for name, rl in limits if rl is not None]
        chain = view.budget_chain(key, rule)
        over = next(((name, b) for name, b in chain
                     if b.usage(now, self.unseen_spend(b.id)) >= b.max_limit), None)
        if over is not None:
            self._fresh_counters()
            self._raise_if_limited(limits, now)  # a rate limit is reported before a budget
            name, b = over
            used = b.usage(now, self.unseen_spend(b.id))
            raise BudgetExceeded(f"Budget exceeded: {name} budget exceeded: {used:.4f} > {b.max_limit:.4f} dollars")
        if limits:
            self._take(limits, now)
        admission = Admission(key, rule, [rl for _, rl in limits], [b for _, b in chain], key.team_id,
                              view.customer_of(key))
        self._admitted[request_id] = admission
        return admission

    def _take(self, limits: list, now: float) -> None:
        spec = [(rl.id, rl.request_window, -1 if rl.request_max_limit is None else rl.request_max_limit,
                 rl.token_window, -1 if rl.token_max_limit is None else rl.token_max_limit) for _, rl in limits]
        if self.store is not None and self.healthy:
            try:
                full = self.store.take_requests(spec, now)
            except StoreUnavailable as exc:
                log.warning("rate limits checked from the last known state: %s", exc)
            else:
                if full:
                    self._fresh_counters()
                    self._raise_if_limited([(n, rl) for n, rl in limits if rl.id == full], now, counted=True)
                self._count_locally(limits, now)  # the view's copy follows until the next refresh
                return
        # no store: the last known counters decide, counted here until the store is back
        self._raise_if_limited(limits, now)
        self._count_locally(limits, now)

    def _fresh_counters(self) -> None:
        if self.store is not None and self.healthy:
            try:
                self.refresh()
            except StoreUnavailable:
                pass

    @staticmethod
    def _count_locally(limits: list, now: float) -> None:
        for _, rl in limits:
            if now - rl.request_last_reset >= rl.request_window:
                rl.request_current_usage, rl.request_last_reset = 0, now
            rl.request_current_usage += 1

    def _violations(self, rl, now: float) -> list[tuple[str, str]]:
        out = []
        if rl.request_max_limit is not None and rl.requests_used(now) >= rl.request_max_limit:
            out.append(("request", f"request limit exceeded ({rl.requests_used(now)}/{rl.request_max_limit}, "
                                   f"resets every {rl.request_reset_duration})"))
        if rl.token_max_limit is not None and rl.tokens_used(now) >= rl.token_max_limit:
            out.append(("token", f"token limit exceeded ({rl.tokens_used(now)}/{rl.token_max_limit}, "
                                 f"resets every {rl.token_reset_duration})"))
        return out

    def _raise_if_limited(self, limits: list, now: float, *, counted: bool = False) -> None:
        for name, rl in limits:
            found = self._violations(rl, now)
            if not found and counted:  # the store says full although our copy lags: trust the store
                found = [("request", f"request limit exceeded ({rl.request_max_limit}/{rl.request_max_limit}, "
                                     f"resets every {rl.request_reset_duration})")]
            if not found:
                continue
            kinds = {kind for kind, _ in found}
            decision = "rate_limited" if len(kinds) > 1 else f"{kinds.pop()}_limited"
            waits = []
            for kind, _ in found:
                window = rl.request_window if kind == "request" else rl.token_window
                last = rl.request_last_reset if kind == "request" else rl.token_last_reset
                waits.append(window - (now - last))
            raise RateLimited(f"Rate limit check failed: rate limit violated for {name}: "
                              f"[{', '.join(text for _, text in found)}]",
                              type=decision, code=decision, retry_after=max(1.0, min(waits)))

    # --- accounting (observer) ---------------------------------------------------------------------

    def remember_body(self, request_id: str, body) -> None:
        """Keep the parsed request body for the request's log row (messages and parameters)."""
        if self.content_logging and isinstance(body, dict):
            self._bodies[request_id] = body

    def visible(self, key: Key, models: list[dict]) -> list[dict]:
        """The ``/v1/models`` entries (ids ``provider/model``) that ``key`` may use."""
        return [m for m in models if virtual_keys.allows(key, *m["id"].split("/", 1))]

    def request_started(self, ctx) -> None:
        pass

    def stream_started(self, ctx) -> None:
        pass

    def request_finished(self, ctx) -> None:
        admission = self._admitted.pop(ctx.request_id, None)
        body = self._bodies.pop(ctx.request_id, None)
        route = ctx.route or ""
        if admission is None and not route.startswith(_LOGGED_PREFIXES):
            return
        usage = ctx.usage or {}
        prompt = int(usage.get("prompt_tokens") or 0)
        completion = int(usage.get("completion_tokens") or 0)
        total = int(usage.get("total_tokens") or (prompt + completion))
        cost, known = self.price(provider=ctx.provider, model=ctx.model, usage=usage) if ctx.provider and usage \
            else (0.0, False)
        item = Item()
        if admission is not None:
            if total:
                item.tokens = {rl.id: (total, rl.token_window) for rl in admission.rate_limits
                               if rl.token_max_limit is not None}
            if cost:
                item.spend = {b.id: (cost, b.window) for b in admission.budgets}
                with self._pending_lock:
                    for b in admission.budgets:
                        self._pending[b.id] = self._pending.get(b.id, 0.0) + cost
            if not self.healthy:  # counted here until the store is back
                for rl in admission.rate_limits:
                    if rl.token_max_limit is not None:
                        rl.token_current_usage += total
        if self.logging and ctx.route.startswith(_LOGGED_PREFIXES):
            item.row = self._row(ctx, admission, body, prompt, completion, total, cost, known)
        if item.row is not None or item.tokens or item.spend:
            if not self.writer.put(item):
                with self._pending_lock:
                    self._forget(item.spend)  # dropped: the store will never have it

    def _key_by_label(self, label: str) -> Key | None:
        if not label:
            return None
        return self.view.keys.get(label) or next((k for k in self.view.keys.values() if k.name == label), None)

    def _row(self, ctx, admission, body, prompt, completion, total, cost, known) -> tuple:
        now = self.clock()
        latency = (time.monotonic() - ctx.started) * 1000.0
        content = body is not None
        key = admission.key if admission is not None else self._key_by_label(ctx.virtual_key)
        failed = bool(ctx.error_type) or not ctx.status or ctx.status >= 400 or ctx.client_disconnected
        error = None
        if ctx.error_type:
            error = json.dumps({"type": ctx.error_type, "status": ctx.status})
        elif ctx.client_disconnected:  # a cancelled stream: its row keeps the usage seen so far
            error = json.dumps({"type": "client_disconnected", "status": ctx.status})
        obj = ("chat_completion_stream" if ctx.stream else "chat_completion") if "chat" in ctx.route else \
            _OBJECTS.get(ctx.route.rsplit("/", 1)[-1], ctx.route)
        return (
            ctx.request_id, now - latency / 1000.0, obj, ctx.provider, ctx.model,
            "error" if failed else "success", int(bool(ctx.stream)), latency,
            ctx.ttft * 1000.0 if ctx.ttft is not None else None, prompt, completion, total, cost, int(known),
            ctx.retries, ctx.fallback_index, "", key.id if key else "", key.name if key else "",
            key.team_id if key else "", self.view.customer_of(key) if key else "", "", error,
            json.dumps(body.get("messages")) if content else None, None,
            json.dumps({k: v for k, v in body.items() if k not in _CONTENT_FIELDS}) if content else None,
            ctx.route, ctx.http_status or ctx.status,
        )


def _refresh_forever(ref, stop: threading.Event) -> None:
    while not stop.wait(REFRESH_S):
        engine = ref()
        if engine is None:
            return
        engine.tick()
        del engine  # hold it only while refreshing


def _restart_threads(ref) -> None:
    engine = ref()
    if engine is not None:
        engine._start_refresher()
        engine.writer.start()


def from_config(config, **kw) -> Engine:
    return Engine(config.governance, **kw)
