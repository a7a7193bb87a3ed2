//! Webhook subscriptions: create (the `whsec_` secret is returned once), list with delivery
//! health (`enabled`, `consecutive_failures`, `disabled_reason`), re-enable, delete, and the
//! delivery log.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::{Caller, Role};
use crate::error::{ApiError, ApiResult};
use crate::events::{NewEvent, record};
use crate::extract::{ApiJson, ApiQuery, Page, list};
use crate::state::AppState;
use crate::util::{new_id, now_s, parse_id};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    pub url: String,
    /// Event types ("unlock.attempt"), prefixes ("door.*") or "*".
    pub event_types: Vec<String>,
}

type Row = (
    String,
    String,
    String,
    String,
    i64,
    i64,
    Option<String>,
    i64,
);
const COLS: &str =
    "id, org_id, url, event_types, enabled, consecutive_failures, disabled_reason, created_at";

fn hook_json(r: Row) -> Value {
    let (id, org_id, url, types, enabled, failures, reason, created_at) = r;
    json!({"id": id, "org_id": org_id, "url": url,
           "event_types": serde_json::from_str::<Value>(&types).unwrap_or(json!([])),
           "enabled": enabled != 0, "consecutive_failures": failures,
           "disabled_reason": reason, "created_at": created_at})
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    ApiJson(req): ApiJson<CreateWebhook>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let org = parse_id(&org, "organization")?;
    caller.require(&state, &org, Role::Admin).await?;
    let url = reqwest::Url::parse(&req.url).map_err(|_| ApiError::invalid("url is not a URL"))?;
    if !matches!(url.scheme(), "http" | "https") || req.url.len() > 2000 {
        return Err(ApiError::invalid("url must be http(s)"));
    }
    if !state.settings.webhook_allow_private {
        crate::egress::check_webhook_host(&url).map_err(ApiError::invalid)?;
    }
    if req.event_types.is_empty()
        || req.event_types.len() > 50
        || req
            .event_types
            .iter()
            .any(|t| t.is_empty() || t.len() > 100)
    {
        return Err(ApiError::invalid("event_types needs 1..50 entries"));
    }
    let id = new_id(&state.rng);
    let secret = crate::webhooks::new_secret(&state.rng);
    sqlx::query(
        "INSERT INTO webhooks (id, org_id, url, secret, event_types, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&id)
    .bind(&org)
    .bind(&req.url)
    .bind(&secret)
    .bind(serde_json::to_string(&req.event_types).map_err(anyhow::Error::from)?)
    .bind(now_s())
    .execute(state.pool())
    .await?;
    record(
        &state,
        NewEvent::admin(&org, "webhook.created", &caller, json!({"webhook_id": id})),
    )
    .await?;
    let mut body = hook_json(load(&state, &id).await?);
    body["secret"] = json!(secret);
    Ok((StatusCode::CREATED, Json(body)))
}

async fn load(state: &AppState, id: &str) -> ApiResult<Row> {
    sqlx::query_as(sql!("SELECT {COLS} FROM webhooks WHERE id = $1"))
        .bind(id)
        .fetch_optional(state.pool())
        .await?
        .ok_or_else(|| ApiError::not_found("webhook"))
}

async fn authorize(state: &AppState, caller: &Caller, id: &str) -> ApiResult<Row> {
    let id = parse_id(id, "webhook")?;
    let row = load(state, &id).await?;
    caller
        .require(state, &row.1, Role::Admin)
        .await
        .map_err(|e| {
            if e.code == "not_found" {
                ApiError::not_found("webhook")
            } else {
                e
            }
        })?;
    Ok(row)
}

pub async fn list_hooks(
    State(state): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    ApiQuery(page): ApiQuery<Page>,
) -> ApiResult<Json<Value>> {
    let org = parse_id(&org, "organization")?;
    caller.require(&state, &org, Role::Admin).await?;
    let (total,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM webhooks WHERE org_id = $1")
        .bind(&org)
        .fetch_one(state.pool())
        .await?;
    let rows: Vec<Row> = sqlx::query_as(sql!(
        "SELECT {COLS} FROM webhooks WHERE org_id = $1 ORDER BY created_at, id LIMIT $2 OFFSET $3"
    ))
    .bind(&org)
    .bind(page.limit())
    .bind(page.offset())
    .fetch_all(state.pool())
    .await?;
    Ok(Json(list(
        rows.into_iter().map(hook_json).collect(),
        total,
        page,
    )))
}

pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(hook_json(authorize(&state, &caller, &id).await?)))
}

pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let row = authorize(&state, &caller, &id).await?;
    sqlx::query("DELETE FROM webhook_deliveries WHERE webhook_id = $1")
        .bind(&row.0)
        .execute(state.pool())
        .await?;
    sqlx::query("DELETE FROM webhooks WHERE id = $1")
        .bind(&row.0)
        .execute(state.pool())
        .await?;
    record(
        &state,
        NewEvent::admin(
            &row.1,
            "webhook.deleted",
            &caller,
            json!({"webhook_id": row.0}),
        ),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Re-enables a webhook disabled after failures.
pub async fn enable(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let row = authorize(&state, &caller, &id).await?;
    sqlx::query(
        "UPDATE webhooks SET enabled = 1, consecutive_failures = 0, disabled_reason = NULL WHERE id = $1",
    )
    .bind(&row.0)
    .execute(state.pool())
    .await?;
    Ok(Json(hook_json(load(&state, &row.0).await?)))
}

pub async fn deliveries(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(page): ApiQuery<Page>,
) -> ApiResult<Json<Value>> {
    let row = authorize(&state, &caller, &id).await?;
    let (total,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM webhook_deliveries WHERE webhook_id = $1")
            .bind(&row.0)
            .fetch_one(state.pool())
            .await?;
    let rows: Vec<(String, String, String, i64, Option<String>, i64, i64, Option<i64>)> = sqlx::query_as(
        "SELECT id, event_id, status, attempts, last_error, next_attempt_at, created_at, delivered_at \
         FROM webhook_deliveries WHERE webhook_id = $1 ORDER BY created_at DESC, id LIMIT $2 OFFSET $3",
    )
    .bind(&row.0)
    .bind(page.limit())
    .bind(page.offset())
    .fetch_all(state.pool())
    .await?;
    let items = rows
        .into_iter()
        .map(
            |(id, event_id, status, attempts, last_error, next, created, delivered)| {
                json!({"id": id, "event_id": event_id, "status": status, "attempts": attempts,
                   "last_error": last_error, "next_attempt_at_ms": next,
                   "created_at_ms": created, "delivered_at_ms": delivered})
            },
        )
        .collect();
    Ok(Json(list(items, total, page)))
}
