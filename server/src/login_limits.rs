//! Login attempt budgets per account and per client address.
//!
//! Kept in the database, so every instance sharing it enforces one budget (guesses spread
//! over instances behind a load balancer get no further), and counted before the password
//! is checked, so parallel guesses cannot all slip in under the limit while argon2 runs.
//! Keys are hashed: the table holds no email addresses or IPs.

use crate::db::Pool;
use crate::util::sha256_hex;

/// Attempts are counted in fixed windows of this length from the first one.
pub const WINDOW_SECS: i64 = 300;

/// The stored key for `value` of `kind` ("acct", "ip").
pub fn key(kind: &str, value: &str) -> String {
    sha256_hex(&format!("{kind}:{value}"))
}

/// Counts one attempt against `key` and returns the attempts in its current window.
pub async fn count(pool: &Pool, key: &str, now: i64) -> Result<i64, sqlx::Error> {
    let expired = now - WINDOW_SECS;
    // One statement, so two instances counting at once both land.
    let (attempts,): (i64,) = sqlx::query_as(
        "INSERT INTO login_attempts (key, window_start, attempts) VALUES ($1, $2, 1) \
         ON CONFLICT (key) DO UPDATE SET \
           attempts = CASE WHEN login_attempts.window_start <= $3 THEN 1 \
                      ELSE login_attempts.attempts + 1 END, \
           window_start = CASE WHEN login_attempts.window_start <= $3 THEN $2 \
                          ELSE login_attempts.window_start END \
         RETURNING attempts",
    )
    .bind(key)
    .bind(now)
    .bind(expired)
    .fetch_one(pool)
    .await?;
    if attempts == 1 {
        // A new window: a cheap moment to drop the expired ones (indexed by window_start).
        sqlx::query("DELETE FROM login_attempts WHERE window_start <= $1")
            .bind(expired)
            .execute(pool)
            .await?;
    }
    Ok(attempts)
}

/// Takes back one counted attempt (a successful login does not use up its address's budget).
pub async fn forgive(pool: &Pool, key: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE login_attempts SET attempts = attempts - 1 WHERE key = $1 AND attempts > 0",
    )
    .bind(key)
    .execute(pool)
    .await?;
    Ok(())
}

/// Forgets `key`'s attempts (the account signed in).
pub async fn clear(pool: &Pool, key: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM login_attempts WHERE key = $1")
        .bind(key)
        .execute(pool)
        .await?;
    Ok(())
}
