"""One store interface over SQL: the queries live here once; ``sqlite.py`` and ``postgres.py`` only provide
connections, the placeholder style and how a write transaction begins.

Every method is a whole transaction. Writers that must see and change a counter together (a request taking
a slot in a rate limit, spend added to a budget) do it in one conditional ``UPDATE``, so that every worker
and every host on the same database counts against the same row.
"""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from typing import Iterable, Iterator

from .schema import MIGRATIONS

log = logging.getLogger("bifrost_wsgi.store")

# the tables the management API edits, and their columns (besides ``id``)
ENTITY_COLUMNS = {
    "gov_customers": ("source", "name", "created_at", "updated_at"),
    "gov_teams": ("source", "name", "customer_id", "created_at", "updated_at"),
    "gov_virtual_keys": ("source", "name", "value_hash", "value_hint", "description", "is_active", "team_id", "customer_id",
                         "rate_limit_id", "provider_configs", "expires_at", "created_at", "updated_at"),
    "gov_budgets": ("source", "max_limit", "reset_duration", "last_reset", "current_usage", "virtual_key_id", "team_id",
                    "customer_id", "provider_config_id"),
    "gov_rate_limits": ("source", "request_max_limit", "request_reset_duration", "request_current_usage", "request_last_reset",
                        "token_max_limit", "token_reset_duration", "token_current_usage", "token_last_reset"),
}
LOG_COLUMNS = ("id", "timestamp", "object", "provider", "model", "status", "stream", "latency", "ttft",
               "prompt_tokens", "completion_tokens", "total_tokens", "cost", "cost_known", "number_of_retries",
               "fallback_index", "selected_key_name", "virtual_key_id", "virtual_key_name", "team_id", "customer_id",
               "stop_reason", "error_details", "input_history", "output_message", "params", "route", "http_status")


class StoreUnavailable(Exception):
    """The database could not be reached or answered too slowly."""


class _Full(Exception):
    def __init__(self, limit_id: str) -> None:
        super().__init__(limit_id)
        self.limit_id = limit_id


class Tx:
    """The statements of one transaction, with ``?`` placeholders whatever the driver's style."""

    def __init__(self, conn, convert) -> None:
        self.conn, self.convert = conn, convert

    def run(self, sql: str, params: Iterable = ()):
        return self.conn.execute(self.convert(sql), tuple(params))

    def rows(self, sql: str, params: Iterable = ()) -> list[dict]:
        cur = self.run(sql, params)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row)) for row in cur.fetchall()]


class SqlStore:
    kind = "sql"
    begin_write = "BEGIN"
    #: run at the start of a request-path transaction: wait for locks only briefly there
    quick = ""

    def __init__(self) -> None:
        self._migrated = threading.Event()

    # --- provided by the backends --------------------------------------------------------------

    @contextmanager
    def _checkout(self) -> Iterator:
        raise NotImplementedError

    @staticmethod
    def convert(sql: str) -> str:
        return sql

    def _migration_lock(self, tx: Tx) -> None:
        """Serialise migrations between processes starting together (the write transaction does it in SQLite)."""

    def close(self) -> None:
        raise NotImplementedError

    # --- transactions ----------------------------------------------------------------------------

    @contextmanager
    def transaction(self, *, write: bool = False, quick: bool = False) -> Iterator[Tx]:
        try:
            with self._checkout() as conn:
                tx = Tx(conn, self.convert)
                if quick and self.quick:
                    tx.run(self.quick)
                tx.run(self.begin_write if write else "BEGIN")
                try:
                    yield tx
                except BaseException:
                    tx.run("ROLLBACK")
                    raise
                tx.run("COMMIT")
        except StoreUnavailable:
            raise
        except self.driver_errors as exc:
            raise StoreUnavailable(f"{self.kind} store: {exc}") from exc

    driver_errors: tuple = ()

    # --- schema ----------------------------------------------------------------------------------

    def migrate(self) -> None:
        with self.transaction(write=True) as tx:
            self._migration_lock(tx)
            tx.run("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY)")
            done = {r["version"] for r in tx.rows("SELECT version FROM schema_migrations")}
            for number, statements in enumerate(MIGRATIONS, start=1):
                if number in done:
                    continue
                for sql in statements:
                    tx.run(sql)
                tx.run("INSERT INTO schema_migrations (version) VALUES (?)", (number,))
                log.info("%s store: applied schema migration %d", self.kind, number)

    # --- governance entities ---------------------------------------------------------------------

    def version(self) -> int:
        with self.transaction() as tx:
            return int(tx.rows("SELECT version FROM gov_meta WHERE id = 1")[0]["version"])

    def entities(self) -> dict[str, list[dict]]:
        """Every governance table, read in one transaction (one consistent picture)."""
        with self.transaction() as tx:
            out = {table: tx.rows(f"SELECT * FROM {table}") for table in ENTITY_COLUMNS}
            out["gateway_settings"] = tx.rows("SELECT name, value FROM gateway_settings")
            out["gateway_providers"] = tx.rows("SELECT name, config FROM gateway_providers")
            out["version"] = int(tx.rows("SELECT version FROM gov_meta WHERE id = 1")[0]["version"])
            return out

    def counters(self) -> dict[str, list[dict]]:
        with self.transaction() as tx:
            return {
                "gov_budgets": tx.rows("SELECT id, current_usage, last_reset FROM gov_budgets"),
                "gov_rate_limits": tx.rows("SELECT id, request_current_usage, request_last_reset, "
                                           "token_current_usage, token_last_reset FROM gov_rate_limits"),
                "version": tx.rows("SELECT version FROM gov_meta WHERE id = 1"),
            }

    def apply(self, changes: list[tuple[str, str, dict | None]], *, insert_only: Iterable[str] = ()) -> None:
        """Upsert (``row``) or delete (``None``) entity rows in one transaction and bump the version every
        worker watches. Columns in ``insert_only`` are written only when the row is new (counters)."""
        keep = set(insert_only)
        with self.transaction(write=True) as tx:
            for table, row_id, row in changes:
                if row is None:
                    tx.run(f"DELETE FROM {table} WHERE id = ?", (row_id,))
                    continue
                cols = [c for c in ENTITY_COLUMNS[table] if c in row]
                updates = [c for c in cols if c not in keep]
                sql = (f"INSERT INTO {table} (id, {', '.join(cols)}) VALUES (?{', ?' * len(cols)}) "
                       f"ON CONFLICT (id) DO ")
                sql += ("UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in updates)) if updates else "NOTHING"
                tx.run(sql, (row_id, *(row[c] for c in cols)))
            tx.run("UPDATE gov_meta SET version = version + 1 WHERE id = 1")

    def put_settings(self, values: dict[str, str]) -> None:
        """Client settings as JSON text, seen by every worker at its next refresh (the version changes)."""
        with self.transaction(write=True) as tx:
            for name, value in values.items():
                tx.run("INSERT INTO gateway_settings (name, value) VALUES (?, ?) "
                       "ON CONFLICT (name) DO UPDATE SET value = excluded.value", (name, value))
            tx.run("UPDATE gov_meta SET version = version + 1 WHERE id = 1")

    def put_provider(self, name: str, config: str, now: float) -> None:
        """A provider's config section as JSON text ('null': removed), seen by every worker at its next
        refresh (the version changes)."""
        with self.transaction(write=True) as tx:
            tx.run("INSERT INTO gateway_providers (name, config, updated_at) VALUES (?, ?, ?) "
                   "ON CONFLICT (name) DO UPDATE SET config = excluded.config, updated_at = excluded.updated_at",
                   (name, config, now))
            tx.run("UPDATE gov_meta SET version = version + 1 WHERE id = 1")

    # --- counters --------------------------------------------------------------------------------

    def take_requests(self, limits: list[tuple], now: float) -> str:
        """Count one request against each rate limit ``(id, request_window, request_max, token_window,
        token_max)``, all or none: returns "" when every limit had room, else the id of the first one full
        (nothing is counted then)."""
        try:
            with self.transaction(write=True, quick=True) as tx:
                self._take(tx, limits, now)
        except _Full as full:
            return full.limit_id
        return ""

    @staticmethod
    def _take(tx: Tx, limits: list[tuple], now: float) -> None:
        for rid, req_window, req_max, tok_window, tok_max in limits:
            cur = tx.run(
                "UPDATE gov_rate_limits SET "
                "request_current_usage = CASE WHEN ? - request_last_reset >= ? THEN 1 "
                "ELSE request_current_usage + 1 END, "
                "request_last_reset = CASE WHEN ? - request_last_reset >= ? THEN ? ELSE request_last_reset END "
                "WHERE id = ? AND (? < 0 OR ? - request_last_reset >= ? OR request_current_usage < ?) "
                "AND (? < 0 OR ? - token_last_reset >= ? OR token_current_usage < ?)",
                (now, req_window, now, req_window, now, rid,
                 req_max, now, req_window, req_max, tok_max, now, tok_window, tok_max))
            if cur.rowcount == 0:
                raise _Full(rid)  # rolls back what the earlier limits counted

    def add_usage(self, *, tokens: dict[str, tuple[int, float]], spend: dict[str, tuple[float, float]],
                  now: float) -> list[dict]:
        """Add ``tokens[rate_limit_id] = (n, window)`` and ``spend[budget_id] = (usd, window)``; a window
        that has run its length starts again from this amount. Returns the budgets' rows as now stored."""
        if not tokens and not spend:
            return []
        with self.transaction(write=True) as tx:
            for rid, (n, window) in tokens.items():
                tx.run("UPDATE gov_rate_limits SET "
                       "token_current_usage = CASE WHEN ? - token_last_reset >= ? THEN ? "
                       "ELSE token_current_usage + ? END, "
                       "token_last_reset = CASE WHEN ? - token_last_reset >= ? THEN ? ELSE token_last_reset END "
                       "WHERE id = ?", (now, window, n, n, now, window, now, rid))
            for bid, (usd, window) in spend.items():
                tx.run("UPDATE gov_budgets SET "
                       "current_usage = CASE WHEN ? - last_reset >= ? THEN ? ELSE current_usage + ? END, "
                       "last_reset = CASE WHEN ? - last_reset >= ? THEN ? ELSE last_reset END "
                       "WHERE id = ?", (now, window, usd, usd, now, window, now, bid))
            if not spend:
                return []
            return tx.rows(f"SELECT id, current_usage, last_reset FROM gov_budgets WHERE id IN "
                           f"({', '.join('?' * len(spend))})", list(spend))

    def reset_budget(self, budget_id: str, now: float) -> bool:
        with self.transaction(write=True) as tx:
            cur = tx.run("UPDATE gov_budgets SET current_usage = 0, last_reset = ? WHERE id = ?", (now, budget_id))
            return cur.rowcount > 0

    # --- admin sessions --------------------------------------------------------------------------

    def add_session(self, token_hash: str, expires_at: float, now: float) -> None:
        with self.transaction(write=True) as tx:
            tx.run("DELETE FROM admin_sessions WHERE expires_at < ?", (now,))
            tx.run("INSERT INTO admin_sessions (token_hash, expires_at) VALUES (?, ?)", (token_hash, expires_at))

    def session_valid(self, token_hash: str, now: float) -> bool:
        with self.transaction() as tx:
            return bool(tx.rows("SELECT 1 AS ok FROM admin_sessions WHERE token_hash = ? AND expires_at > ?",
                                (token_hash, now)))

    def drop_session(self, token_hash: str) -> None:
        with self.transaction(write=True) as tx:
            tx.run("DELETE FROM admin_sessions WHERE token_hash = ?", (token_hash,))

    # --- request logs ----------------------------------------------------------------------------

    def insert_logs(self, rows: list[tuple]) -> None:
        """``rows`` are tuples in LOG_COLUMNS order."""
        sql = self.convert(f"INSERT INTO logs ({', '.join(LOG_COLUMNS)}) VALUES ({', '.join('?' * len(LOG_COLUMNS))}) "
                           "ON CONFLICT (id) DO NOTHING")
        with self.transaction(write=True) as tx:
            tx.conn.cursor().executemany(sql, rows)

    def prune_logs(self, before: float) -> int:
        with self.transaction(write=True) as tx:
            return tx.run("DELETE FROM logs WHERE timestamp < ?", (before,)).rowcount

    def query_logs(self, where: str, params: list, *, order: str, limit: int, offset: int) -> tuple[list[dict], dict]:
        """Rows matching ``where`` (built by logsearch.py from fixed column names and ``?`` parameters)
        with the stats over every match."""
        with self.transaction() as tx:
            stats = tx.rows(
                "SELECT COUNT(*) AS total, "
                "COALESCE(SUM(CASE WHEN status = 'success' THEN 1 ELSE 0 END), 0) AS successes, "
                f"AVG(latency) AS average_latency, COALESCE(SUM(total_tokens), 0) AS total_tokens, "
                f"COALESCE(SUM(cost), 0) AS total_cost FROM logs{where}", params)[0]
            rows = tx.rows(f"SELECT * FROM logs{where} ORDER BY {order} LIMIT ? OFFSET ?", [*params, limit, offset])
            return rows, stats

    def log(self, log_id: str) -> dict | None:
        with self.transaction() as tx:
            rows = tx.rows("SELECT * FROM logs WHERE id = ?", (log_id,))
            return rows[0] if rows else None
