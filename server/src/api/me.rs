//! `GET /me`: the caller and their memberships.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::auth::{Caller, Principal};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

pub async fn me_body(state: &AppState, user_id: &str) -> ApiResult<Value> {
    let (id, email, name, is_guest): (String, Option<String>, String, i64) =
        sqlx::query_as("SELECT id, email, name, is_guest FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(state.pool())
            .await?
            .ok_or_else(ApiError::unauthorized)?;
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT o.id, o.name, m.role FROM memberships m JOIN orgs o ON o.id = m.org_id \
         WHERE m.user_id = $1 ORDER BY o.name",
    )
    .bind(user_id)
    .fetch_all(state.pool())
    .await?;
    let memberships: Vec<Value> = rows
        .into_iter()
        .map(|(oid, oname, role)| json!({"org": {"id": oid, "name": oname}, "role": role}))
        .collect();
    Ok(json!({
        "user": {"id": id, "email": email, "name": name, "guest": is_guest != 0},
        "memberships": memberships,
    }))
}

pub async fn get(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    match &caller.principal {
        Principal::User { user_id, .. } => Ok(Json(me_body(&state, user_id).await?)),
        Principal::ApiKey {
            key_id,
            org_id,
            role,
        } => Ok(Json(json!({
            "api_key": {"id": key_id, "org_id": org_id, "role": role},
        }))),
    }
}
