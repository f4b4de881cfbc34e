"""Versioned schema migrations, applied in order at start (each once, recorded in schema_migrations).

The SQL is portable between SQLite and PostgreSQL: TEXT ids, BIGINT counts, DOUBLE PRECISION epoch
seconds and USD, JSON kept as TEXT. A migration is never edited once released; changes are new ones.
"""

from __future__ import annotations

import time

from gatecore.store.base import Store

# The hourly rollup's columns (migration 16): a ledger row's hour bucket, group and sums.
_HOUR_SQLITE = "CAST(at / 3600 AS INTEGER)"
_HOUR_PG = "FLOOR(at / 3600)::BIGINT"
_ROLLUP_SELECT = (
    "COALESCE(team_id, ''), model, COALESCE(deployment, ''), day, COALESCE(MAX(team_name), ''), COUNT(*), "
    "SUM(CASE WHEN status >= 400 OR error_type IS NOT NULL THEN 1 ELSE 0 END), SUM(input_tokens), "
    "SUM(output_tokens), SUM(cost_usd)"
)
_ERROR_NEW = "CASE WHEN NEW.status >= 400 OR NEW.error_type IS NOT NULL THEN 1 ELSE 0 END"
_ROLLUP_ADD = (
    "requests = usage_hourly.requests + excluded.requests, errors = usage_hourly.errors + excluded.errors, "
    "input_tokens = usage_hourly.input_tokens + excluded.input_tokens, "
    "output_tokens = usage_hourly.output_tokens + excluded.output_tokens, "
    "cost_usd = usage_hourly.cost_usd + excluded.cost_usd, team_name = excluded.team_name"
)

# A statement is portable SQL, or one text per dialect ({"sqlite": ..., "postgresql": ...}) where the
# two engines differ (triggers); a dialect the dict does not name has nothing to run.
Statement = str | dict[str, str]

# (version, name, statements)
MIGRATIONS: list[tuple[int, str, list[Statement]]] = [
    (
        1,
        "identity",
        [
            # Organizations, teams and users share one shape: a tenant level with allowed models and
            # limits, under a parent of the level above (team → org, user → team).
            """CREATE TABLE tenants (
                id TEXT PRIMARY KEY,
                kind TEXT NOT NULL,
                name TEXT NOT NULL,
                parent_id TEXT REFERENCES tenants(id),
                email TEXT,
                models TEXT,
                rpm BIGINT,
                tpm BIGINT,
                max_parallel BIGINT,
                budget_usd DOUBLE PRECISION,
                metadata TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                updated_at DOUBLE PRECISION NOT NULL,
                UNIQUE (kind, name)
            )""",
            """CREATE TABLE api_keys (
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                prefix TEXT NOT NULL,
                hash TEXT NOT NULL UNIQUE,
                previous_hash TEXT,
                previous_valid_until DOUBLE PRECISION,
                team_id TEXT REFERENCES tenants(id),
                user_id TEXT REFERENCES tenants(id),
                role TEXT,
                models TEXT,
                rpm BIGINT,
                tpm BIGINT,
                max_parallel BIGINT,
                budget_usd DOUBLE PRECISION,
                metadata TEXT NOT NULL,
                tags TEXT NOT NULL,
                expires_at DOUBLE PRECISION,
                revoked_at DOUBLE PRECISION,
                created_by TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                updated_at DOUBLE PRECISION NOT NULL
            )""",
            "CREATE INDEX api_keys_team ON api_keys (team_id)",
            """CREATE TABLE audit_log (
                id TEXT PRIMARY KEY,
                at DOUBLE PRECISION NOT NULL,
                actor TEXT NOT NULL,
                action TEXT NOT NULL,
                target_type TEXT NOT NULL,
                target_id TEXT NOT NULL,
                detail TEXT NOT NULL
            )""",
            "CREATE INDEX audit_log_at ON audit_log (at)",
            # One row counting writes to the identity tables: workers poll it and reload on a change.
            "CREATE TABLE change_counter (id BIGINT PRIMARY KEY, version BIGINT NOT NULL)",
            "INSERT INTO change_counter (id, version) VALUES (1, 0)",
        ],
    ),
    (
        2,
        "usage ledger",
        [
            # One row per inference request (ledger/row.py). `id` is `<worker tag>:<sequence>`, so a
            # row replayed from the spool is recognised (INSERT … ON CONFLICT DO NOTHING). `at` is the
            # arrival in epoch seconds, `day` its UTC date (for grouping without date functions).
            """CREATE TABLE usage_ledger (
                id TEXT PRIMARY KEY,
                request_id TEXT NOT NULL,
                at DOUBLE PRECISION NOT NULL,
                day TEXT NOT NULL,
                endpoint TEXT NOT NULL,
                key_id TEXT,
                key_name TEXT,
                user_id TEXT,
                user_name TEXT,
                team_id TEXT,
                team_name TEXT,
                org_id TEXT,
                org_name TEXT,
                model TEXT NOT NULL,
                deployment TEXT,
                input_tokens BIGINT NOT NULL,
                output_tokens BIGINT NOT NULL,
                cached_tokens BIGINT NOT NULL,
                reasoning_tokens BIGINT NOT NULL,
                usage_source TEXT NOT NULL,
                cost_usd DOUBLE PRECISION NOT NULL,
                gpu_seconds DOUBLE PRECISION NOT NULL,
                status BIGINT NOT NULL,
                error_type TEXT,
                latency_ms DOUBLE PRECISION NOT NULL,
                ttft_ms DOUBLE PRECISION,
                streamed BOOLEAN NOT NULL,
                cache_hit BOOLEAN NOT NULL,
                client_gone BOOLEAN NOT NULL,
                run_id TEXT
            )""",
            "CREATE INDEX usage_ledger_at ON usage_ledger (at)",
            # Budgets sum one key's, user's or team's spend since a time.
            "CREATE INDEX usage_ledger_key_at ON usage_ledger (key_id, at)",
            "CREATE INDEX usage_ledger_user_at ON usage_ledger (user_id, at)",
            "CREATE INDEX usage_ledger_team_at ON usage_ledger (team_id, at)",
        ],
    ),
    (
        3,
        "benchmark runs",
        [
            # Per-request timings of the run export (ledger/row.py); null for rows written before.
            "ALTER TABLE usage_ledger ADD COLUMN overhead_ms DOUBLE PRECISION",
            "ALTER TABLE usage_ledger ADD COLUMN chunk_gaps BIGINT",
            "ALTER TABLE usage_ledger ADD COLUMN gap_mean_ms DOUBLE PRECISION",
            "ALTER TABLE usage_ledger ADD COLUMN gap_p50_ms DOUBLE PRECISION",
            "ALTER TABLE usage_ledger ADD COLUMN gap_p99_ms DOUBLE PRECISION",
            "ALTER TABLE usage_ledger ADD COLUMN gap_max_ms DOUBLE PRECISION",
            # A run's rows in arrival order; partial, so the many rows of no run cost no index entry
            # (SQLite and PostgreSQL both have partial indexes).
            "CREATE INDEX usage_ledger_run_at ON usage_ledger (run_id, at, id) WHERE run_id IS NOT NULL",
        ],
    ),
    (
        4,
        "partial user and team ledger indexes",
        [
            # Budgets and reports look rows up by a user or team id, never by its absence: the rows of
            # keys without a user or team (most, where keys are per service) need no index entry, a
            # fifth of a row's insert in SQLite. `user_id = $1` implies NOT NULL, so both databases
            # still use these indexes for those lookups.
            "DROP INDEX usage_ledger_user_at",
            "CREATE INDEX usage_ledger_user_at ON usage_ledger (user_id, at) WHERE user_id IS NOT NULL",
            "DROP INDEX usage_ledger_team_at",
            "CREATE INDEX usage_ledger_team_at ON usage_ledger (team_id, at) WHERE team_id IS NOT NULL",
        ],
    ),
    (
        5,
        "response cache savings",
        [
            # What a cache hit would have cost upstream (its cost_usd is 0); null for other rows.
            "ALTER TABLE usage_ledger ADD COLUMN saved_usd DOUBLE PRECISION",
        ],
    ),
    (
        6,
        "published prompts",
        [
            # A prompt (prompts/): its owner team, whether it is a template or a chain, its newest
            # version. Versions are immutable rows; a label points at one version or splits traffic
            # across several by weight (`versions`: JSON `{"1": 0.5, "2": 0.5}`).
            """CREATE TABLE prompts (
                name TEXT PRIMARY KEY,
                team_id TEXT,
                kind TEXT NOT NULL,
                latest BIGINT NOT NULL,
                created_by TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                updated_at DOUBLE PRECISION NOT NULL
            )""",
            """CREATE TABLE prompt_versions (
                name TEXT NOT NULL REFERENCES prompts(name),
                version BIGINT NOT NULL,
                spec TEXT NOT NULL,
                created_by TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (name, version)
            )""",
            """CREATE TABLE prompt_labels (
                name TEXT NOT NULL REFERENCES prompts(name),
                label TEXT NOT NULL,
                versions TEXT NOT NULL,
                sticky TEXT,
                updated_by TEXT NOT NULL,
                updated_at DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (name, label)
            )""",
            # Which prompt version a request ran, and for a chain's step the pipeline request's id.
            "ALTER TABLE usage_ledger ADD COLUMN prompt_name TEXT",
            "ALTER TABLE usage_ledger ADD COLUMN prompt_version BIGINT",
            "ALTER TABLE usage_ledger ADD COLUMN parent_request_id TEXT",
            "CREATE INDEX usage_ledger_prompt_at ON usage_ledger (prompt_name, at) WHERE prompt_name IS NOT NULL",
        ],
    ),
    (
        7,
        "stored responses",
        [
            # `/v1/responses` with `store: true` (stored_responses/). `owner` is the key's team
            # (`team:<id>`), else the key (`key:<id>`): only that owner reads, continues or deletes
            # it. `history` holds the items replayed before this response (previous_response_id),
            # `input_items` its own input, `response` the response object, all JSON.
            """CREATE TABLE stored_responses (
                id TEXT PRIMARY KEY,
                owner TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                expires_at DOUBLE PRECISION NOT NULL,
                history TEXT NOT NULL,
                input_items TEXT NOT NULL,
                response TEXT NOT NULL
            )""",
            "CREATE INDEX stored_responses_expires ON stored_responses (expires_at)",
        ],
    ),
    (
        8,
        "guardrail actions in the ledger",
        [
            # What the request's guardrails did: `guard:type:action=count,...`, never the matched text.
            "ALTER TABLE usage_ledger ADD COLUMN guardrails TEXT",
        ],
    ),
    (
        9,
        "console sessions",
        [
            # A console sign-in (console/sessions.py): only the SHA-256 of the session id (the cookie)
            # is kept, with who signed in: the keyed hash of the key (the auth table's own key, never
            # a secret; a revoked key ends its sessions at once), or `jwt:` and the identity of a
            # verified OIDC ID token (never the token).
            """CREATE TABLE console_sessions (
                id_hash TEXT PRIMARY KEY,
                principal TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                expires_at DOUBLE PRECISION NOT NULL
            )""",
            "CREATE INDEX console_sessions_expires ON console_sessions (expires_at)",
        ],
    ),
    (
        10,
        "access requests",
        [
            # A developer's request for a key (admin/access_requests.py). `sealed_key` holds the new
            # key's secret, encrypted, from its approval until the requester reads it once.
            """CREATE TABLE access_requests (
                id TEXT PRIMARY KEY,
                requester TEXT NOT NULL,
                requester_name TEXT NOT NULL,
                team_id TEXT,
                models TEXT NOT NULL,
                prompts TEXT NOT NULL,
                reason TEXT NOT NULL,
                status TEXT NOT NULL,
                decided_by TEXT,
                decided_at DOUBLE PRECISION,
                decision_reason TEXT,
                key_id TEXT,
                key_prefix TEXT,
                sealed_key TEXT,
                created_at DOUBLE PRECISION NOT NULL
            )""",
            "CREATE INDEX access_requests_created ON access_requests (created_at)",
            "CREATE INDEX access_requests_team ON access_requests (team_id, created_at)",
            "CREATE INDEX access_requests_requester ON access_requests (requester, created_at)",
        ],
    ),
    (
        11,
        "served-by stamp in the ledger",
        [
            # The engine's name/version and the model revision that answered (x-gatecore-served-by).
            "ALTER TABLE usage_ledger ADD COLUMN served_by TEXT",
        ],
    ),
    (
        13,
        "guardrail definitions held in the store",
        [
            # Guards defined through the admin API (guardrails/stored.py): `spec` is the definition as
            # JSON (config/guardrails.py GuardrailConfig); `team_id` set: attachable to that team only.
            """CREATE TABLE guardrail_defs (
                name TEXT PRIMARY KEY,
                team_id TEXT,
                spec TEXT NOT NULL,
                created_by TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                updated_by TEXT NOT NULL,
                updated_at DOUBLE PRECISION NOT NULL
            )""",
        ],
    ),
    (
        16,
        "hourly usage rollup kept by the store",
        [
            # The ledger added up per hour, team, model, deployment and day, kept by the engine itself (a
            # trigger on every ledger insert), so the console's totals read a few hundred rows whatever
            # the ledger holds. Empty text stands for "none" (a primary key column cannot be NULL). A
            # ledger row skipped by ON CONFLICT (a replayed spool) fires nothing: counted exactly once.
            """CREATE TABLE usage_hourly (
                hour BIGINT NOT NULL,
                team_id TEXT NOT NULL,
                model TEXT NOT NULL,
                deployment TEXT NOT NULL,
                day TEXT NOT NULL,
                team_name TEXT NOT NULL,
                requests BIGINT NOT NULL,
                errors BIGINT NOT NULL,
                input_tokens BIGINT NOT NULL,
                output_tokens BIGINT NOT NULL,
                cost_usd DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (hour, team_id, model, deployment, day)
            )""",
            "CREATE INDEX usage_hourly_team ON usage_hourly (team_id, hour)",
            {
                "sqlite": f"""INSERT INTO usage_hourly
                    SELECT {_HOUR_SQLITE}, {_ROLLUP_SELECT} FROM usage_ledger GROUP BY 1, 2, 3, 4, 5""",
                "postgresql": f"""INSERT INTO usage_hourly
                    SELECT {_HOUR_PG}, {_ROLLUP_SELECT} FROM usage_ledger GROUP BY 1, 2, 3, 4, 5""",
            },
            {
                # Row by row (SQLite has one writer at a time, so no lock order to keep).
                "sqlite": f"""CREATE TRIGGER usage_hourly_add AFTER INSERT ON usage_ledger BEGIN
                    INSERT INTO usage_hourly VALUES (CAST(NEW.at / 3600 AS INTEGER),
                        COALESCE(NEW.team_id, ''), NEW.model, COALESCE(NEW.deployment, ''), NEW.day,
                        COALESCE(NEW.team_name, ''), 1, {_ERROR_NEW}, NEW.input_tokens,
                        NEW.output_tokens, NEW.cost_usd)
                    ON CONFLICT (hour, team_id, model, deployment, day) DO UPDATE SET {_ROLLUP_ADD};
                END""",
                # Once per statement over its inserted rows, grouped and in key order: replicas writing
                # batches at once take the rollup rows' locks in the same order (no deadlock).
                "postgresql": f"""CREATE FUNCTION usage_hourly_add() RETURNS trigger LANGUAGE plpgsql AS $f$
                BEGIN
                    INSERT INTO usage_hourly
                        SELECT {_HOUR_PG}, {_ROLLUP_SELECT} FROM inserted GROUP BY 1, 2, 3, 4, 5
                        ORDER BY 1, 2, 3, 4, 5
                    ON CONFLICT (hour, team_id, model, deployment, day) DO UPDATE SET {_ROLLUP_ADD};
                    RETURN NULL;
                END $f$""",
            },
            {
                "postgresql": """CREATE TRIGGER usage_hourly_add AFTER INSERT ON usage_ledger
                    REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION usage_hourly_add()""",
            },
        ],
    ),
]

_LOCK_ID = 7351902  # any constant; names gatecore's migration lock in pg_advisory_xact_lock


async def migrate(store: Store) -> list[int]:
    """Apply the migrations not yet applied; return their versions. Safe to run from many processes."""
    applied_now: list[int] = []
    async with store.transaction() as tx:
        if store.dialect == "postgresql":
            # Replicas starting together: the first migrates, the others wait here (SQLite's BEGIN
            # IMMEDIATE already serialises writers).
            await tx.execute(f"SELECT pg_advisory_xact_lock({_LOCK_ID})")
        await tx.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            "version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
        )
        done = {row[0] for row in await tx.fetch("SELECT version FROM schema_migrations")}
        for version, name, statements in MIGRATIONS:
            if version in done:
                continue
            for statement in statements:
                sql = statement if isinstance(statement, str) else statement.get(store.dialect)
                if sql is not None:
                    await tx.execute(sql)
            await tx.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
                version,
                name,
                time.time(),
            )
            applied_now.append(version)
    return applied_now
