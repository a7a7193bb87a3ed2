//! Webhook delivery per the Standard Webhooks specification: `webhook-id`,
//! `webhook-timestamp` and `webhook-signature: v1,<base64 HMAC-SHA256 over "id.ts.body">`
//! with a `whsec_<base64>` secret. Deliveries live in a durable outbox table, so retries
//! (exponential backoff) survive restarts; a webhook that keeps failing is disabled and says
//! why in the API.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use std::time::Duration;

use crate::error::ApiResult;
use crate::state::AppState;
use crate::util::{new_id, now_ms};

pub fn new_secret(rng: &ring::rand::SystemRandom) -> String {
    format!(
        "whsec_{}",
        STANDARD.encode(crate::util::random_bytes::<24>(rng))
    )
}

/// The `webhook-signature` header value.
pub fn sign(secret: &str, msg_id: &str, timestamp: i64, body: &str) -> Option<String> {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
        .ok()?;
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key);
    let tag = ring::hmac::sign(&key, format!("{msg_id}.{timestamp}.{body}").as_bytes());
    Some(format!("v1,{}", STANDARD.encode(tag.as_ref())))
}

pub fn subscribed(types: &[String], kind: &str) -> bool {
    types
        .iter()
        .any(|t| t == "*" || t == kind || t.strip_suffix(".*").is_some_and(|p| kind.starts_with(p)))
}

/// Puts one delivery per subscribed webhook in the outbox, on the event's transaction;
/// says whether there was any (the caller wakes the worker once it has committed).
pub async fn enqueue(
    state: &AppState,
    tx: &mut sqlx::AnyConnection,
    org_id: &str,
    event_id: &str,
    kind: &str,
    at_ms: i64,
    data: Value,
) -> ApiResult<bool> {
    let hooks: Vec<(String, String)> =
        sqlx::query_as("SELECT id, event_types FROM webhooks WHERE org_id = $1 AND enabled = 1")
            .bind(org_id)
            .fetch_all(&mut *tx)
            .await?;
    let mut any = false;
    for (hook_id, types) in hooks {
        let types: Vec<String> = serde_json::from_str(&types).unwrap_or_default();
        if !subscribed(&types, kind) {
            continue;
        }
        let at = chrono::DateTime::from_timestamp_millis(at_ms)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
        let payload = json!({"type": kind, "timestamp": at, "data": data}).to_string();
        sqlx::query(
            "INSERT INTO webhook_deliveries (id, webhook_id, org_id, event_id, payload, \
             next_attempt_at, status, created_at) VALUES ($1, $2, $3, $4, $5, $6, 'pending', $6)",
        )
        .bind(format!("msg_{}", new_id(&state.rng).replace('-', "")))
        .bind(&hook_id)
        .bind(org_id)
        .bind(event_id)
        .bind(payload)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        any = true;
    }
    Ok(any)
}

/// Runs forever: delivers due outbox rows.
pub async fn worker(state: AppState) {
    // Redirects would lead around the address policy, and receivers should not need them.
    let mut builder = crate::util::http_client()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none());
    if !state.settings.webhook_allow_private {
        builder = builder.dns_resolver(crate::egress::PublicOnlyResolver);
    }
    let client = match builder.build() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "webhook client");
            return;
        }
    };
    let mut last_cleanup = std::time::Instant::now();
    loop {
        if last_cleanup.elapsed() > Duration::from_secs(300) {
            last_cleanup = std::time::Instant::now();
            if let Err(e) = cleanup(&state).await {
                tracing::warn!(error = ?e, "cleanup failed");
            }
        }
        match deliver_due(&state, &client).await {
            Ok(0) => {
                tokio::select! {
                    _ = state.webhook_wake.notified() => {}
                    _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = ?e, "webhook delivery pass failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Whether a connect error came from [`crate::egress::PublicOnlyResolver`] refusing the name.
fn is_refused_by_resolver(e: &reqwest::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if s.is::<crate::egress::NotPublic>() {
            return true;
        }
        source = s.source();
    }
    false
}

/// Drops rows that only grow: old idempotency records, long-expired sessions, old deliveries.
pub async fn cleanup(state: &AppState) -> ApiResult<()> {
    let now_s = crate::util::now_s();
    sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
        .bind(now_s - 86_400)
        .execute(state.pool())
        .await?;
    sqlx::query("DELETE FROM sessions WHERE expires_at < $1 OR revoked_at < $1")
        .bind(now_s - 7 * 86_400)
        .execute(state.pool())
        .await?;
    sqlx::query("DELETE FROM webhook_deliveries WHERE status <> 'pending' AND created_at < $1")
        .bind(now_ms() - 30 * 86_400_000)
        .execute(state.pool())
        .await?;
    Ok(())
}

async fn deliver_due(state: &AppState, client: &reqwest::Client) -> ApiResult<usize> {
    let now = now_ms();
    let due: Vec<(String, String, String, i64)> = sqlx::query_as(
        "SELECT id, webhook_id, payload, attempts FROM webhook_deliveries \
         WHERE status = 'pending' AND next_attempt_at <= $1 AND locked_until <= $1 \
         ORDER BY next_attempt_at LIMIT 16",
    )
    .bind(now)
    .fetch_all(state.pool())
    .await?;
    let mut done = 0;
    for (id, hook_id, payload, attempts) in due {
        // Claim the row so another instance does not send it at the same time.
        let claimed = sqlx::query(
            "UPDATE webhook_deliveries SET locked_until = $1 WHERE id = $2 AND locked_until <= $3",
        )
        .bind(now + 60_000)
        .bind(&id)
        .bind(now)
        .execute(state.pool())
        .await?
        .rows_affected();
        if claimed != 1 {
            continue;
        }
        done += 1;
        let hook: Option<(String, String, i64)> =
            sqlx::query_as("SELECT url, secret, enabled FROM webhooks WHERE id = $1")
                .bind(&hook_id)
                .fetch_optional(state.pool())
                .await?;
        // A disabled or deleted webhook's pending deliveries are cancelled, not sent.
        let Some((url, secret, _)) = hook.filter(|(_, _, enabled)| *enabled != 0) else {
            sqlx::query("UPDATE webhook_deliveries SET status = 'cancelled' WHERE id = $1")
                .bind(&id)
                .execute(state.pool())
                .await?;
            continue;
        };
        let ts = now / 1000;
        let signature = sign(&secret, &id, ts, &payload).unwrap_or_default();
        // Literal addresses skip the resolver: check them here (rows may predate the policy).
        let refused = if state.settings.webhook_allow_private {
            None
        } else {
            reqwest::Url::parse(&url)
                .map_err(|_| "url is not a URL".to_owned())
                .and_then(|u| crate::egress::check_webhook_host(&u))
                .err()
        };
        let outcome = match refused {
            Some(why) => Err(why),
            None => client
                .post(&url)
                .header("content-type", "application/json")
                .header("webhook-id", &id)
                .header("webhook-timestamp", ts.to_string())
                .header("webhook-signature", signature)
                .body(payload)
                .send()
                .await
                .map_err(|e| {
                    if e.is_timeout() {
                        "timed out".to_owned()
                    } else if e.is_connect() && is_refused_by_resolver(&e) {
                        "url must point to a public address (its name resolves to none)".to_owned()
                    } else {
                        "connection failed".to_owned()
                    }
                }),
        };
        let error = match outcome {
            Ok(resp) if resp.status().is_success() => None,
            Ok(resp) => Some(format!("receiver answered {}", resp.status().as_u16())),
            Err(why) => Some(why),
        };
        let now = now_ms();
        match error {
            None => {
                crate::metrics::Metrics::inc(&state.metrics.webhook_delivered);
                sqlx::query(
                    "UPDATE webhook_deliveries SET status = 'delivered', attempts = attempts + 1, \
                     delivered_at = $1, last_error = NULL, locked_until = 0 WHERE id = $2",
                )
                .bind(now)
                .bind(&id)
                .execute(state.pool())
                .await?;
                sqlx::query("UPDATE webhooks SET consecutive_failures = 0 WHERE id = $1")
                    .bind(&hook_id)
                    .execute(state.pool())
                    .await?;
            }
            Some(err) => {
                crate::metrics::Metrics::inc(&state.metrics.webhook_failed);
                let attempts = attempts + 1;
                let s = &state.settings;
                let status = if attempts >= s.webhook_max_attempts {
                    "failed"
                } else {
                    "pending"
                };
                let backoff =
                    (s.webhook_retry_base_ms << (attempts - 1).clamp(0, 20)).min(3_600_000);
                sqlx::query(
                    "UPDATE webhook_deliveries SET status = $1, attempts = $2, last_error = $3, \
                     next_attempt_at = $4, locked_until = 0 WHERE id = $5",
                )
                .bind(status)
                .bind(attempts)
                .bind(&err)
                .bind(now + backoff)
                .bind(&id)
                .execute(state.pool())
                .await?;
                sqlx::query(
                    "UPDATE webhooks SET consecutive_failures = consecutive_failures + 1 WHERE id = $1",
                )
                .bind(&hook_id)
                .execute(state.pool())
                .await?;
                let reason = format!(
                    "disabled after {} consecutive failed deliveries (last: {err})",
                    s.webhook_disable_after
                );
                sqlx::query(
                    "UPDATE webhooks SET enabled = 0, disabled_reason = $1 \
                     WHERE id = $2 AND enabled = 1 AND consecutive_failures >= $3",
                )
                .bind(reason)
                .bind(&hook_id)
                .bind(s.webhook_disable_after)
                .execute(state.pool())
                .await?;
            }
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_standard_webhooks_example() {
        // Example from the Standard Webhooks specification.
        let sig = sign(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
        )
        .unwrap();
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn subscriptions_match_exact_wildcard_and_prefix() {
        let t = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(subscribed(&t(&["*"]), "unlock.attempt"));
        assert!(subscribed(&t(&["unlock.*"]), "unlock.attempt"));
        assert!(!subscribed(&t(&["lock.updated"]), "unlock.attempt"));
    }
}
