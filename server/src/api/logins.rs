//! Sessions: password login, logout, listing and revoking one's own sessions.

use axum::Json;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Value, json};
use std::net::SocketAddr;

use crate::auth::{Caller, Principal, verify_password};
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::login_limits;
use crate::metrics::Metrics;
use crate::state::AppState;
use crate::util::{new_id, new_secret, now_s, parse_id, sha256_hex};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
    pub device_name: Option<String>,
}

// A real hash so unknown accounts cost the same argon2 work as known ones.
fn dummy_hash(rng: &ring::rand::SystemRandom) -> String {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY
        .get_or_init(|| crate::auth::hash_password("not a password", rng).unwrap_or_default())
        .clone()
}

pub async fn create(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    ApiJson(req): ApiJson<LoginRequest>,
) -> ApiResult<impl IntoResponse> {
    let email = req.email.trim().to_lowercase();
    if email.len() > 254 || req.password.len() > 1024 {
        return Err(ApiError::invalid("email or password too long"));
    }
    let account_key = login_limits::key("acct", &email);
    let ip_key = login_limits::key("ip", &addr.ip().to_string());
    let s = &state.settings;
    let now = now_s();
    let account_attempts = login_limits::count(state.pool(), &account_key, now).await?;
    let ip_attempts = login_limits::count(state.pool(), &ip_key, now).await?;
    if account_attempts > i64::from(s.login_failures_per_account)
        || ip_attempts > i64::from(s.login_failures_per_ip)
    {
        return Err(ApiError::rate_limited());
    }
    let row: Option<(String, Option<String>)> =
        sqlx::query_as("SELECT id, password_hash FROM users WHERE email = $1")
            .bind(&email)
            .fetch_optional(state.pool())
            .await?;
    let password = req.password.clone();
    let stored = row
        .as_ref()
        .and_then(|(_, h)| h.clone())
        .unwrap_or_else(|| dummy_hash(&state.rng));
    let ok = tokio::task::spawn_blocking(move || verify_password(&password, &stored))
        .await
        .unwrap_or(false);
    let user_id = match (row, ok) {
        (Some((id, Some(_))), true) => id,
        _ => {
            // The attempt was counted above.
            Metrics::inc(&state.metrics.logins_failed);
            tracing::info!("login failed");
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "wrong email or password",
            ));
        }
    };
    login_limits::clear(state.pool(), &account_key).await?;
    login_limits::forgive(state.pool(), &ip_key).await?;
    let (token, _) = start_session(
        &state,
        state.pool(),
        &user_id,
        "password",
        req.device_name.as_deref(),
        now_s() + s.session_ttl_secs,
    )
    .await?;
    let body = login_body(&state, &user_id, &token).await?;
    Ok((StatusCode::CREATED, Json(body)))
}

/// Creates a session and returns (secret, session id); only the hash is stored.
pub async fn start_session<'e>(
    state: &AppState,
    db: impl sqlx::Executor<'e, Database = sqlx::Any>,
    user_id: &str,
    kind: &str,
    device_name: Option<&str>,
    expires_at: i64,
) -> ApiResult<(String, String)> {
    let token = new_secret(&state.rng, "kws_");
    let id = new_id(&state.rng);
    sqlx::query(
        "INSERT INTO sessions (id, user_id, token_hash, kind, device_name, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&id)
    .bind(user_id)
    .bind(sha256_hex(&token))
    .bind(kind)
    .bind(device_name.map(|d| d.chars().take(100).collect::<String>()))
    .bind(now_s())
    .bind(expires_at)
    .execute(db)
    .await?;
    Ok((token, id))
}

pub async fn login_body(state: &AppState, user_id: &str, token: &str) -> ApiResult<Value> {
    let mut me = crate::api::me::me_body(state, user_id).await?;
    me["token"] = json!(token);
    Ok(me)
}

pub async fn delete_current(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<StatusCode> {
    let Principal::User { session_id, .. } = &caller.principal else {
        return Err(ApiError::forbidden());
    };
    sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE id = $2")
        .bind(now_s())
        .bind(session_id)
        .execute(state.pool())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    crate::extract::ApiQuery(page): crate::extract::ApiQuery<crate::extract::Page>,
) -> ApiResult<Json<Value>> {
    let Principal::User {
        user_id,
        session_id,
    } = &caller.principal
    else {
        return Err(ApiError::forbidden());
    };
    let rows: Vec<(String, String, Option<String>, i64, i64)> = sqlx::query_as(
        "SELECT id, kind, device_name, created_at, expires_at FROM sessions \
         WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 ORDER BY created_at DESC",
    )
    .bind(user_id)
    .bind(now_s())
    .fetch_all(state.pool())
    .await?;
    let items: Vec<Value> = rows
        .into_iter()
        .map(|(id, kind, device_name, created_at, expires_at)| {
            json!({"id": id, "kind": kind, "device_name": device_name, "created_at": created_at,
                   "expires_at": expires_at, "current": &id == session_id})
        })
        .collect();
    let total = items.len() as i64;
    let items = items
        .into_iter()
        .skip(page.offset() as usize)
        .take(page.limit() as usize)
        .collect();
    Ok(Json(crate::extract::list(items, total, page)))
}

pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = parse_id(&id, "login")?;
    let user_id = caller.require_user()?;
    let n = sqlx::query(
        "UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL",
    )
    .bind(now_s())
    .bind(&id)
    .bind(user_id)
    .execute(state.pool())
    .await?
    .rows_affected();
    if n == 0 {
        return Err(ApiError::not_found("login"));
    }
    Ok(StatusCode::NO_CONTENT)
}
