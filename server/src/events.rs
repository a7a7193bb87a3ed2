//! The append-only audit log. Every unlock attempt (cloud and door-reported) and every admin
//! change becomes one event; each event fans out to the organization's webhooks through the
//! durable outbox in [`crate::webhooks`].

use serde_json::{Value, json};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::error::ApiResult;
use crate::state::AppState;
use crate::util::{new_id, now_ms};

#[derive(Debug, Default, Clone)]
pub struct NewEvent {
    pub org_id: String,
    pub kind: String,
    pub at_ms: Option<i64>,
    pub actor_id: Option<String>,
    pub actor_kind: Option<String>,
    pub lock_id: Option<String>,
    pub place_id: Option<String>,
    pub method: Option<String>,
    pub success: Option<bool>,
    pub reason: Option<String>,
    pub controller_id: Option<String>,
    pub controller_seq: Option<i64>,
    pub details: Option<Value>,
}

impl NewEvent {
    /// An admin change by `caller` on an object.
    pub fn admin(org_id: &str, kind: &str, caller: &crate::auth::Caller, details: Value) -> Self {
        let (actor, actor_kind) = caller.actor();
        Self {
            org_id: org_id.to_owned(),
            kind: kind.to_owned(),
            actor_id: Some(actor),
            actor_kind: Some(actor_kind.to_owned()),
            details: Some(details),
            ..Default::default()
        }
    }
}

/// Appends an event and its webhook deliveries (one transaction: a server killed in between
/// must not keep the event and lose its deliveries, since a controller's retry of the event
/// is a duplicate and enqueues nothing); `None` when it duplicates a stored (controller, seq).
pub async fn record(state: &AppState, ev: NewEvent) -> ApiResult<Option<String>> {
    let mut tx = state.pool().begin().await?;
    let recorded = record_on(state, &mut tx, ev).await?;
    tx.commit().await?;
    if recorded.as_ref().is_some_and(|(_, deliveries)| *deliveries) {
        state.webhook_wake.notify_one();
    }
    Ok(recorded.map(|(id, _)| id))
}

/// [`record`] on the caller's transaction; also says whether any delivery was enqueued.
async fn record_on(
    state: &AppState,
    tx: &mut sqlx::AnyConnection,
    ev: NewEvent,
) -> ApiResult<Option<(String, bool)>> {
    let id = new_id(&state.rng);
    let at_ms = ev.at_ms.unwrap_or_else(now_ms);
    let details = ev.details.as_ref().map(|d| d.to_string());
    let row: Option<(i64,)> = sqlx::query_as(
        "INSERT INTO events (id, org_id, type, at_ms, actor_id, actor_kind, lock_id, place_id, \
         method, success, reason, controller_id, controller_seq, details) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
         ON CONFLICT (controller_id, controller_seq) DO NOTHING RETURNING seq",
    )
    .bind(&id)
    .bind(&ev.org_id)
    .bind(&ev.kind)
    .bind(at_ms)
    .bind(&ev.actor_id)
    .bind(&ev.actor_kind)
    .bind(&ev.lock_id)
    .bind(&ev.place_id)
    .bind(&ev.method)
    .bind(ev.success.map(i64::from))
    .bind(&ev.reason)
    .bind(&ev.controller_id)
    .bind(ev.controller_seq)
    .bind(&details)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((seq,)) = row else {
        return Ok(None);
    };
    let payload = event_json_parts(
        &id,
        seq,
        &ev.kind,
        at_ms,
        &ev.actor_id,
        &ev.actor_kind,
        &ev.lock_id,
        &ev.place_id,
        &ev.method,
        ev.success,
        &ev.reason,
        &ev.controller_id,
        ev.controller_seq,
        ev.details.clone(),
    );
    let deliveries =
        crate::webhooks::enqueue(state, tx, &ev.org_id, &id, &ev.kind, at_ms, payload).await?;
    Ok(Some((id, deliveries)))
}

#[allow(clippy::too_many_arguments)]
fn event_json_parts(
    id: &str,
    seq: i64,
    kind: &str,
    at_ms: i64,
    actor_id: &Option<String>,
    actor_kind: &Option<String>,
    lock_id: &Option<String>,
    place_id: &Option<String>,
    method: &Option<String>,
    success: Option<bool>,
    reason: &Option<String>,
    controller_id: &Option<String>,
    controller_seq: Option<i64>,
    details: Option<Value>,
) -> Value {
    let at = chrono::DateTime::from_timestamp_millis(at_ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    json!({
        "id": id,
        "seq": seq,
        "type": kind,
        "at": at,
        "at_ms": at_ms,
        "actor_id": actor_id,
        "actor_kind": actor_kind,
        "lock_id": lock_id,
        "place_id": place_id,
        "method": method,
        "success": success,
        "reason": reason,
        "controller_id": controller_id,
        "controller_seq": controller_seq,
        "details": details,
    })
}

pub const EVENT_COLUMNS: &str = "seq, id, type, at_ms, actor_id, actor_kind, lock_id, place_id, \
     method, success, reason, controller_id, controller_seq, details";

pub fn event_json(row: &AnyRow) -> Result<Value, sqlx::Error> {
    let details: Option<String> = row.try_get("details")?;
    let success: Option<i64> = row.try_get("success")?;
    Ok(event_json_parts(
        &row.try_get::<String, _>("id")?,
        row.try_get("seq")?,
        &row.try_get::<String, _>("type")?,
        row.try_get("at_ms")?,
        &row.try_get("actor_id")?,
        &row.try_get("actor_kind")?,
        &row.try_get("lock_id")?,
        &row.try_get("place_id")?,
        &row.try_get("method")?,
        success.map(|s| s != 0),
        &row.try_get("reason")?,
        &row.try_get("controller_id")?,
        row.try_get("controller_seq")?,
        details.and_then(|d| serde_json::from_str(&d).ok()),
    ))
}
