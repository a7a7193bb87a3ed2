//! Door controllers: creation with a single-use provisioning token, provisioning (the
//! controller registers its public key), listing with online status.

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
use crate::util::{new_id, new_secret, now_s, parse_id, sha256_hex};

const TOKEN_TTL_SECS: i64 = 24 * 3600;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateController {
    pub name: String,
}

/// Creates a controller record and its provisioning token (returned once).
pub async fn create_controller(
    state: &AppState,
    org: &str,
    name: &str,
) -> ApiResult<(String, String)> {
    let id = new_id(&state.rng);
    let token = new_secret(&state.rng, "kwp_");
    let now = now_s();
    sqlx::query(
        "INSERT INTO controllers (id, org_id, name, provisioning_token_hash, \
         provisioning_expires_at, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&id)
    .bind(org)
    .bind(name)
    .bind(sha256_hex(&token))
    .bind(now + TOKEN_TTL_SECS)
    .bind(now)
    .execute(state.pool())
    .await?;
    Ok((id, token))
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    ApiJson(req): ApiJson<CreateController>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let org = parse_id(&org, "organization")?;
    caller.require(&state, &org, Role::Admin).await?;
    let name = super::orgs::check_name(&req.name)?;
    let (id, token) = create_controller(&state, &org, name).await?;
    record(
        &state,
        NewEvent::admin(
            &org,
            "controller.created",
            &caller,
            json!({"controller_id": id}),
        ),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": id, "name": name, "provisioning_token": token,
                    "provisioning_expires_at": now_s() + TOKEN_TTL_SECS})),
    ))
}

const COLS: &str = "id, org_id, name, public_key, online, last_seen_at, config_version, created_at";
type Row = (
    String,
    String,
    String,
    Option<String>,
    i64,
    Option<i64>,
    i64,
    i64,
);

fn controller_json(r: Row) -> Value {
    let (id, org_id, name, public_key, online, last_seen_at, config_version, created_at) = r;
    json!({"id": id, "org_id": org_id, "name": name, "provisioned": public_key.is_some(),
           "public_key": public_key, "online": online != 0, "last_seen_at": last_seen_at,
           "config_version": config_version, "created_at": created_at})
}

pub async fn list_controllers(
    State(state): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    ApiQuery(page): ApiQuery<Page>,
) -> ApiResult<Json<Value>> {
    let org = parse_id(&org, "organization")?;
    caller.require(&state, &org, Role::Manager).await?;
    let (total,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM controllers WHERE org_id = $1")
        .bind(&org)
        .fetch_one(state.pool())
        .await?;
    let rows: Vec<Row> = sqlx::query_as(sql!(
        "SELECT {COLS} FROM controllers WHERE org_id = $1 ORDER BY name, id LIMIT $2 OFFSET $3"
    ))
    .bind(&org)
    .bind(page.limit())
    .bind(page.offset())
    .fetch_all(state.pool())
    .await?;
    Ok(Json(list(
        rows.into_iter().map(controller_json).collect(),
        total,
        page,
    )))
}

async fn load(state: &AppState, caller: &Caller, id: &str, min: Role) -> ApiResult<Row> {
    let id = parse_id(id, "controller")?;
    let row: Row = sqlx::query_as(sql!("SELECT {COLS} FROM controllers WHERE id = $1"))
        .bind(&id)
        .fetch_optional(state.pool())
        .await?
        .ok_or_else(|| ApiError::not_found("controller"))?;
    caller.require(state, &row.1, min).await.map_err(|e| {
        if e.code == "not_found" {
            ApiError::not_found("controller")
        } else {
            e
        }
    })?;
    Ok(row)
}

pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(controller_json(
        load(&state, &caller, &id, Role::Manager).await?,
    )))
}

pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let row = load(&state, &caller, &id, Role::Admin).await?;
    sqlx::query("UPDATE locks SET controller_id = NULL WHERE controller_id = $1")
        .bind(&row.0)
        .execute(state.pool())
        .await?;
    sqlx::query("DELETE FROM controllers WHERE id = $1")
        .bind(&row.0)
        .execute(state.pool())
        .await?;
    state.hub.send(&row.0, crate::relay::SessionMsg::Replaced);
    record(
        &state,
        NewEvent::admin(
            &row.1,
            "controller.deleted",
            &caller,
            json!({"controller_id": row.0}),
        ),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A new provisioning token (re-provisioning replaces the controller key).
pub async fn new_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let row = load(&state, &caller, &id, Role::Admin).await?;
    let token = new_secret(&state.rng, "kwp_");
    sqlx::query(
        "UPDATE controllers SET provisioning_token_hash = $1, provisioning_expires_at = $2 WHERE id = $3",
    )
    .bind(sha256_hex(&token))
    .bind(now_s() + TOKEN_TTL_SECS)
    .bind(&row.0)
    .execute(state.pool())
    .await?;
    Ok(Json(json!({"id": row.0, "provisioning_token": token})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provision {
    pub token: String,
    pub public_key: String,
}

/// The controller redeems its token and registers its key; no bearer auth.
pub async fn provision(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<Provision>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let raw = hex::decode(req.public_key.trim())
        .map_err(|_| ApiError::invalid("public_key must be hex"))?;
    let key = keyway_protocol::PublicKey::from_slice(&raw)
        .map_err(|_| ApiError::invalid("public_key must be a 65-byte uncompressed P-256 point"))?;
    if req.token.len() > 200 {
        return Err(ApiError::unauthorized());
    }
    let row: Option<(String, String)> = sqlx::query_as(
        "SELECT id, org_id FROM controllers WHERE provisioning_token_hash = $1 \
         AND provisioning_expires_at > $2",
    )
    .bind(sha256_hex(&req.token))
    .bind(now_s())
    .fetch_optional(state.pool())
    .await?;
    let (id, org) = row.ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "unknown, used or expired provisioning token",
        )
    })?;
    let n = sqlx::query(
        "UPDATE controllers SET public_key = $1, provisioning_token_hash = NULL, \
         provisioning_expires_at = NULL WHERE id = $2 AND provisioning_token_hash = $3",
    )
    .bind(key.to_hex())
    .bind(&id)
    .bind(sha256_hex(&req.token))
    .execute(state.pool())
    .await?
    .rows_affected();
    if n != 1 {
        return Err(ApiError::unauthorized());
    }
    // A re-provisioned controller must authenticate again with its new key.
    state.hub.send(&id, crate::relay::SessionMsg::Replaced);
    let mut ev = NewEvent {
        org_id: org.clone(),
        kind: "controller.provisioned".into(),
        controller_id: Some(id.clone()),
        details: Some(json!({"key_id": key.key_id().to_string()})),
        ..Default::default()
    };
    ev.actor_kind = Some("controller".into());
    ev.actor_id = Some(id.clone());
    record(&state, ev).await?;
    // The controller pins these: later keys reach it only endorsed by one of them.
    let trusted = crate::orgkeys::trusted_keys(&state, &org).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"controller_id": id, "org_id": org, "trusted_keys": trusted})),
    ))
}
