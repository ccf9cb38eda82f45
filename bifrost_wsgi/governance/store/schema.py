"""The store's tables, as numbered migrations in SQL that SQLite and PostgreSQL both accept.

Types are the portable subset: TEXT, BIGINT, DOUBLE PRECISION (SQLite gives it REAL affinity). Times are
epoch seconds (DOUBLE PRECISION) so that windows and filters are plain arithmetic on both engines. A
migration is applied once, in order, under the store's write lock, and recorded in ``schema_migrations``.
"""

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (  # 1: governance entities and counters, admin sessions, request logs
        "CREATE TABLE gov_meta (id BIGINT PRIMARY KEY, version BIGINT NOT NULL)",
        "INSERT INTO gov_meta (id, version) VALUES (1, 1)",
        "CREATE TABLE gov_customers (id TEXT PRIMARY KEY, name TEXT NOT NULL DEFAULT '', "
        "source TEXT NOT NULL DEFAULT 'api', "
        "created_at DOUBLE PRECISION NOT NULL DEFAULT 0, updated_at DOUBLE PRECISION NOT NULL DEFAULT 0)",
        "CREATE TABLE gov_teams (id TEXT PRIMARY KEY, name TEXT NOT NULL DEFAULT '', customer_id TEXT NOT NULL DEFAULT '', "
        "source TEXT NOT NULL DEFAULT 'api', "
        "created_at DOUBLE PRECISION NOT NULL DEFAULT 0, updated_at DOUBLE PRECISION NOT NULL DEFAULT 0)",
        # source: "config" for rows config.json declares (removed again when it stops declaring them),
        # "api" for rows the management API made
        # value_hash: SHA-256 of the secret; the secret itself is never stored
        "CREATE TABLE gov_virtual_keys (id TEXT PRIMARY KEY, name TEXT NOT NULL DEFAULT '', value_hash TEXT NOT NULL, "
        "source TEXT NOT NULL DEFAULT 'api', "
        "value_hint TEXT NOT NULL DEFAULT '', description TEXT NOT NULL DEFAULT '', is_active BIGINT NOT NULL DEFAULT 1, "
        "team_id TEXT NOT NULL DEFAULT '', customer_id TEXT NOT NULL DEFAULT '', rate_limit_id TEXT NOT NULL DEFAULT '', "
        "provider_configs TEXT NOT NULL DEFAULT '[]', expires_at DOUBLE PRECISION NOT NULL DEFAULT 0, "
        "created_at DOUBLE PRECISION NOT NULL DEFAULT 0, updated_at DOUBLE PRECISION NOT NULL DEFAULT 0)",
        "CREATE UNIQUE INDEX gov_virtual_keys_value ON gov_virtual_keys (value_hash)",
        "CREATE TABLE gov_budgets (id TEXT PRIMARY KEY, max_limit DOUBLE PRECISION NOT NULL, "
        "source TEXT NOT NULL DEFAULT 'api', "
        "reset_duration TEXT NOT NULL, last_reset DOUBLE PRECISION NOT NULL DEFAULT 0, "
        "current_usage DOUBLE PRECISION NOT NULL DEFAULT 0, virtual_key_id TEXT NOT NULL DEFAULT '', "
        "team_id TEXT NOT NULL DEFAULT '', customer_id TEXT NOT NULL DEFAULT '', "
        "provider_config_id TEXT NOT NULL DEFAULT '')",
        "CREATE TABLE gov_rate_limits (id TEXT PRIMARY KEY, request_max_limit BIGINT, "
        "source TEXT NOT NULL DEFAULT 'api', "
        "request_reset_duration TEXT NOT NULL DEFAULT '', request_current_usage BIGINT NOT NULL DEFAULT 0, "
        "request_last_reset DOUBLE PRECISION NOT NULL DEFAULT 0, token_max_limit BIGINT, "
        "token_reset_duration TEXT NOT NULL DEFAULT '', token_current_usage BIGINT NOT NULL DEFAULT 0, "
        "token_last_reset DOUBLE PRECISION NOT NULL DEFAULT 0)",
        "CREATE TABLE admin_sessions (token_hash TEXT PRIMARY KEY, expires_at DOUBLE PRECISION NOT NULL)",
        "CREATE TABLE logs (id TEXT PRIMARY KEY, timestamp DOUBLE PRECISION NOT NULL, object TEXT NOT NULL DEFAULT '', "
        "provider TEXT NOT NULL DEFAULT '', model TEXT NOT NULL DEFAULT '', status TEXT NOT NULL DEFAULT '', "
        "stream BIGINT NOT NULL DEFAULT 0, latency DOUBLE PRECISION, ttft DOUBLE PRECISION, "
        "prompt_tokens BIGINT NOT NULL DEFAULT 0, completion_tokens BIGINT NOT NULL DEFAULT 0, "
        "total_tokens BIGINT NOT NULL DEFAULT 0, cost DOUBLE PRECISION NOT NULL DEFAULT 0, "
        "cost_known BIGINT NOT NULL DEFAULT 0, number_of_retries BIGINT NOT NULL DEFAULT 0, "
        "fallback_index BIGINT NOT NULL DEFAULT 0, selected_key_name TEXT NOT NULL DEFAULT '', "
        "virtual_key_id TEXT NOT NULL DEFAULT '', virtual_key_name TEXT NOT NULL DEFAULT '', "
        "team_id TEXT NOT NULL DEFAULT '', customer_id TEXT NOT NULL DEFAULT '', stop_reason TEXT NOT NULL DEFAULT '', "
        "error_details TEXT, input_history TEXT, output_message TEXT, params TEXT, route TEXT NOT NULL DEFAULT '', "
        "http_status BIGINT NOT NULL DEFAULT 0)",
        "CREATE INDEX logs_timestamp ON logs (timestamp)",
    ),
    (  # 2: client settings changed through PUT /api/config (JSON values), over config.json's
        "CREATE TABLE gateway_settings (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    ),
    (  # 3: providers added, replaced or removed through /api/providers, over config.json's: the provider's
       # config section as JSON, or 'null' for a provider removed
        "CREATE TABLE gateway_providers (name TEXT PRIMARY KEY, config TEXT NOT NULL, "
        "updated_at DOUBLE PRECISION NOT NULL DEFAULT 0)",
    ),
)
