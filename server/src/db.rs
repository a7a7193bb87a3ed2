//! Storage: one `sqlx::AnyPool` over SQLite (default, a file in the data dir, WAL) or
//! PostgreSQL (a `postgres://` URL). Queries are portable SQL: `$n` placeholders (SQLite
//! accepts them too), TEXT ids (UUID text), BIGINT times and 0/1 flags. The only per-backend
//! difference is the auto-increment key spelling in the migrations below.

use anyhow::{Context, bail};
use sqlx::Executor;
use sqlx::any::AnyPoolOptions;
use std::time::Duration;

pub type Pool = sqlx::AnyPool;

/// PostgreSQL connections idle longer than this are pinged before use.
const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone)]
pub struct Db {
    pub pool: Pool,
    pub backend: Backend,
    /// Kept for the PostgreSQL LISTEN connection of the multi-instance relay.
    pub url: String,
}

/// Opens (creating if needed) and migrates the database.
pub async fn connect(url: &str) -> anyhow::Result<Db> {
    sqlx::any::install_default_drivers();
    let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Backend::Postgres
    } else if url.starts_with("sqlite:") {
        Backend::Sqlite
    } else {
        bail!("unsupported database URL (use sqlite:... or postgres://...)");
    };
    let mut opts = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(10));
    if backend == Backend::Sqlite {
        // An embedded database cannot drop a connection, so the ping sqlx sends before
        // every acquire (a round trip to the connection's worker thread) buys nothing.
        opts = opts
            .max_connections(8)
            .test_before_acquire(false)
            .after_connect(|conn, _meta| {
                Box::pin(async move {
                    conn.execute("PRAGMA journal_mode=WAL").await?;
                    conn.execute("PRAGMA busy_timeout=10000").await?;
                    conn.execute("PRAGMA synchronous=NORMAL").await?;
                    Ok(())
                })
            });
    } else {
        // Ping a connection before use only if it sat idle for a second: a busy pool's
        // connections would have failed their queries in flight to a restarted server anyway,
        // and a ping before every query is a network round trip each.
        opts = opts
            .max_connections(16)
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for > PING_AFTER_IDLE {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            });
    }
    let pool = opts
        .connect(url)
        .await
        .context("connecting to the database")?;
    let db = Db {
        pool,
        backend,
        url: url.to_owned(),
    };
    migrate(&db).await?;
    Ok(db)
}

/// Takes the organization's row on the caller's transaction (a row lock on PostgreSQL, the
/// database's write lock on SQLite). Every transaction that changes who holds what in an
/// organization, or its keys, takes it first: they serialize per organization in one lock
/// order, so two owners removing each other at once cannot both find another owner left.
pub async fn lock_org(tx: &mut sqlx::AnyConnection, org: &str) -> sqlx::Result<()> {
    sqlx::query("UPDATE orgs SET name = name WHERE id = $1")
        .bind(org)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// SQLite URL for a data directory (the file is created on first start).
pub fn sqlite_url(data_dir: &std::path::Path) -> String {
    format!("sqlite://{}?mode=rwc", data_dir.join("keyway.db").display())
}

const MIGRATIONS: &[(i64, &str)] = &[
    (1, MIGRATION_1),
    (2, MIGRATION_2),
    (3, MIGRATION_3),
    (4, MIGRATION_4),
    (5, MIGRATION_5),
];

/// Each organization key but the first carries its endorsement by the key it replaced
/// (`keyway_protocol::door_trust`), so controllers follow rotations along the chain.
const MIGRATION_4: &str = r#"
ALTER TABLE org_keys ADD COLUMN endorsement TEXT;
"#;

/// A retried cloud unlock relays the command with its first signing time, so the door's
/// age limit still bounds it (a fresh time let a retry hours later run a command the door
/// had already run and since forgotten).
const MIGRATION_5: &str = r#"
ALTER TABLE idempotency_keys ADD COLUMN issued_at_ms BIGINT;
"#;

/// The per-user credential cap counts, and the revocation list reads, by organization.
const MIGRATION_3: &str = r#"
CREATE INDEX credentials_holder ON credentials(org_id, user_id, not_after);
CREATE INDEX credentials_revoked ON credentials(org_id, revoked_at, not_after);
"#;

/// Login attempt budgets shared by every instance (`login_limits`).
const MIGRATION_2: &str = r#"
CREATE TABLE login_attempts (key TEXT PRIMARY KEY, window_start BIGINT NOT NULL,
  attempts BIGINT NOT NULL);
CREATE INDEX login_attempts_window ON login_attempts(window_start);
"#;

const MIGRATION_1: &str = r#"
CREATE TABLE orgs (id TEXT PRIMARY KEY, name TEXT NOT NULL,
  revocation_serial BIGINT NOT NULL DEFAULT 0, created_at BIGINT NOT NULL);
CREATE TABLE org_keys (id TEXT PRIMARY KEY, org_id TEXT NOT NULL REFERENCES orgs(id),
  key_id TEXT NOT NULL, public_key TEXT NOT NULL, pkcs8 TEXT NOT NULL, status TEXT NOT NULL,
  created_at BIGINT NOT NULL, retired_at BIGINT);
CREATE TABLE users (id TEXT PRIMARY KEY, email TEXT UNIQUE, name TEXT NOT NULL,
  password_hash TEXT, is_guest BIGINT NOT NULL DEFAULT 0, created_at BIGINT NOT NULL);
CREATE TABLE memberships (org_id TEXT NOT NULL REFERENCES orgs(id),
  user_id TEXT NOT NULL REFERENCES users(id), role TEXT NOT NULL, created_at BIGINT NOT NULL,
  PRIMARY KEY (org_id, user_id));
CREATE TABLE sessions (id TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id),
  token_hash TEXT NOT NULL UNIQUE, kind TEXT NOT NULL, device_name TEXT,
  created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, revoked_at BIGINT, last_used_at BIGINT);
CREATE TABLE api_keys (id TEXT PRIMARY KEY, org_id TEXT NOT NULL REFERENCES orgs(id),
  name TEXT NOT NULL, role TEXT NOT NULL, token_hash TEXT NOT NULL UNIQUE, created_by TEXT,
  created_at BIGINT NOT NULL, revoked_at BIGINT);
CREATE TABLE places (id TEXT PRIMARY KEY, org_id TEXT NOT NULL REFERENCES orgs(id),
  name TEXT NOT NULL, time_zone TEXT NOT NULL, latitude DOUBLE PRECISION,
  longitude DOUBLE PRECISION, lockdown BIGINT NOT NULL DEFAULT 0, created_at BIGINT NOT NULL);
CREATE TABLE controllers (id TEXT PRIMARY KEY, org_id TEXT NOT NULL REFERENCES orgs(id),
  name TEXT NOT NULL, public_key TEXT, provisioning_token_hash TEXT UNIQUE,
  provisioning_expires_at BIGINT, online BIGINT NOT NULL DEFAULT 0, last_seen_at BIGINT,
  config_version BIGINT NOT NULL DEFAULT 0, created_at BIGINT NOT NULL);
CREATE TABLE locks (id TEXT PRIMARY KEY, org_id TEXT NOT NULL REFERENCES orgs(id),
  place_id TEXT NOT NULL REFERENCES places(id), name TEXT NOT NULL, controller_id TEXT,
  walk_up_allowed BIGINT NOT NULL DEFAULT 0, geofence_radius_m DOUBLE PRECISION,
  reader_restriction BIGINT NOT NULL DEFAULT 0, lockdown BIGINT NOT NULL DEFAULT 0,
  proximity_secret TEXT NOT NULL, tx_power BIGINT NOT NULL DEFAULT -59,
  created_at BIGINT NOT NULL);
CREATE TABLE access_groups (id TEXT PRIMARY KEY, org_id TEXT NOT NULL REFERENCES orgs(id),
  name TEXT NOT NULL, created_at BIGINT NOT NULL);
CREATE TABLE group_locks (group_id TEXT NOT NULL REFERENCES access_groups(id),
  lock_id TEXT NOT NULL REFERENCES locks(id), org_id TEXT NOT NULL,
  PRIMARY KEY (group_id, lock_id));
CREATE TABLE schedules (id TEXT PRIMARY KEY, org_id TEXT NOT NULL REFERENCES orgs(id),
  name TEXT NOT NULL, windows TEXT NOT NULL, created_at BIGINT NOT NULL);
CREATE TABLE role_assignments (id TEXT PRIMARY KEY, org_id TEXT NOT NULL REFERENCES orgs(id),
  user_id TEXT NOT NULL REFERENCES users(id), group_id TEXT NOT NULL REFERENCES access_groups(id),
  schedule_id TEXT, valid_from BIGINT, valid_until BIGINT, created_at BIGINT NOT NULL);
CREATE TABLE devices (id TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id),
  name TEXT NOT NULL, public_key TEXT NOT NULL, created_at BIGINT NOT NULL, revoked_at BIGINT);
CREATE TABLE invites (id TEXT PRIMARY KEY, org_id TEXT NOT NULL REFERENCES orgs(id),
  name TEXT NOT NULL, email TEXT, phone TEXT, code_hash TEXT NOT NULL UNIQUE, group_id TEXT,
  lock_ids TEXT NOT NULL, valid_from BIGINT NOT NULL, valid_until BIGINT NOT NULL,
  daily_start_minute BIGINT, daily_end_minute BIGINT, max_unlocks BIGINT,
  unlock_count BIGINT NOT NULL DEFAULT 0, redeemed_at BIGINT, guest_user_id TEXT,
  revoked_at BIGINT, created_by TEXT, created_at BIGINT NOT NULL);
CREATE TABLE credentials (id TEXT PRIMARY KEY, org_id TEXT NOT NULL, device_id TEXT NOT NULL,
  user_id TEXT NOT NULL, invite_id TEXT, key_id TEXT NOT NULL, issued_at BIGINT NOT NULL,
  not_after BIGINT NOT NULL, revoked_at BIGINT);
CREATE INDEX credentials_device ON credentials(device_id);
CREATE INDEX credentials_user ON credentials(org_id, user_id);
CREATE TABLE idempotency_keys (user_id TEXT NOT NULL, idem_key TEXT NOT NULL,
  lock_id TEXT NOT NULL, command_id TEXT NOT NULL, status TEXT NOT NULL, http_status BIGINT,
  response TEXT, created_at BIGINT NOT NULL, PRIMARY KEY (user_id, idem_key));
CREATE TABLE events (seq {SERIAL}, id TEXT NOT NULL UNIQUE, org_id TEXT NOT NULL,
  type TEXT NOT NULL, at_ms BIGINT NOT NULL, actor_id TEXT, actor_kind TEXT, lock_id TEXT,
  place_id TEXT, method TEXT, success BIGINT, reason TEXT, controller_id TEXT,
  controller_seq BIGINT, details TEXT);
CREATE UNIQUE INDEX events_controller_seq ON events(controller_id, controller_seq);
CREATE INDEX events_org_seq ON events(org_id, seq);
CREATE TABLE webhooks (id TEXT PRIMARY KEY, org_id TEXT NOT NULL REFERENCES orgs(id),
  url TEXT NOT NULL, secret TEXT NOT NULL, event_types TEXT NOT NULL,
  enabled BIGINT NOT NULL DEFAULT 1, consecutive_failures BIGINT NOT NULL DEFAULT 0,
  disabled_reason TEXT, created_at BIGINT NOT NULL);
CREATE TABLE webhook_deliveries (id TEXT PRIMARY KEY, webhook_id TEXT NOT NULL,
  org_id TEXT NOT NULL, event_id TEXT NOT NULL, payload TEXT NOT NULL,
  attempts BIGINT NOT NULL DEFAULT 0, next_attempt_at BIGINT NOT NULL, status TEXT NOT NULL,
  last_error TEXT, locked_until BIGINT NOT NULL DEFAULT 0, created_at BIGINT NOT NULL,
  delivered_at BIGINT);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries(status, next_attempt_at);
"#;

async fn migrate(db: &Db) -> anyhow::Result<()> {
    let serial = match db.backend {
        Backend::Sqlite => "INTEGER PRIMARY KEY AUTOINCREMENT",
        Backend::Postgres => "BIGSERIAL PRIMARY KEY",
    };
    db.pool
        .execute(
            "CREATE TABLE IF NOT EXISTS keyway_migrations (version BIGINT PRIMARY KEY, \
             applied_at BIGINT NOT NULL)",
        )
        .await?;
    for (version, sql) in MIGRATIONS {
        let mut tx = db.pool.begin().await?;
        let done: Option<(i64,)> =
            sqlx::query_as("SELECT version FROM keyway_migrations WHERE version = $1")
                .bind(*version)
                .fetch_optional(&mut *tx)
                .await?;
        if done.is_some() {
            continue;
        }
        let sql = sql.replace("{SERIAL}", serial);
        for stmt in sql.split(';') {
            if stmt.trim().is_empty() {
                continue;
            }
            (&mut *tx)
                .execute(sqlx::AssertSqlSafe(stmt.to_owned()))
                .await
                .with_context(|| format!("migration {version}"))?;
        }
        sqlx::query("INSERT INTO keyway_migrations (version, applied_at) VALUES ($1, $2)")
            .bind(*version)
            .bind(crate::util::now_s())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(version, "applied migration");
    }
    Ok(())
}
