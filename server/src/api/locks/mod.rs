//! Locks (doors): CRUD, controller binding, lockdown. The cloud unlock lives in [`unlock`].

pub mod unlock;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use keyway_protocol::certificate::MAX_CERT_LOCKS;
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::Row;

use crate::access::{LOCK_SELECT, LockInfo, load_lock, lock_from_row};
use crate::auth::{Caller, Role};
use crate::error::{ApiError, ApiResult};
use crate::events::{NewEvent, record};
use crate::extract::{ApiJson, ApiQuery, double_option, list};
use crate::state::AppState;
use crate::util::{new_id, now_s, parse_id, pid, random_bytes};

pub fn lock_json(l: &LockInfo) -> Value {
    json!({
        "id": l.id,
        "org_id": l.org_id,
        "place_id": l.place_id,
        "name": l.name,
        "controller_id": l.controller_id,
        "walk_up_allowed": l.walk_up_allowed,
        "geofence_radius_m": l.geofence_radius_m,
        "reader_restriction": l.reader_restriction,
        "lockdown": l.lockdown || l.place_lockdown,
        "lock_lockdown": l.lockdown,
        "online": l.online,
        "short_id": hex::encode(keyway_protocol::advert::lock_short_id(pid(&l.id))),
        "tx_power": l.tx_power,
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateLock {
    pub place_id: String,
    pub name: String,
    pub controller_id: Option<String>,
    #[serde(default)]
    pub walk_up_allowed: bool,
    pub geofence_radius_m: Option<f64>,
    #[serde(default)]
    pub reader_restriction: bool,
    pub tx_power: Option<i8>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateLock {
    pub name: Option<String>,
    pub place_id: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    pub controller_id: Option<Option<String>>,
    pub walk_up_allowed: Option<bool>,
    #[serde(default, deserialize_with = "double_option")]
    pub geofence_radius_m: Option<Option<f64>>,
    pub reader_restriction: Option<bool>,
    pub tx_power: Option<i8>,
}

#[derive(Debug, Deserialize)]
pub struct LockQuery {
    pub place: Option<String>,
    #[serde(default, deserialize_with = "crate::extract::de_limit")]
    pub limit: Option<i64>,
    #[serde(default, deserialize_with = "crate::extract::de_offset")]
    pub offset: Option<i64>,
}

fn check_radius(r: Option<f64>) -> ApiResult<()> {
    if r.is_some_and(|r| !(1.0..=100_000.0).contains(&r)) {
        return Err(ApiError::invalid("geofence_radius_m must be 1..100000"));
    }
    Ok(())
}

async fn check_place(state: &AppState, org: &str, place: &str) -> ApiResult<String> {
    let place = parse_id(place, "place")?;
    let owner = super::places::place_org(state, &place)
        .await
        .map_err(|_| ApiError::invalid("place_id does not name a place of this organization"))?;
    if owner != org {
        return Err(ApiError::invalid(
            "place_id does not name a place of this organization",
        ));
    }
    Ok(place)
}

/// The controller `lock` (`None`: a new one) may be bound to: of this organization, and
/// with room left in its certificate.
async fn check_controller(
    state: &AppState,
    org: &str,
    controller: &str,
    lock: Option<&str>,
) -> ApiResult<String> {
    let controller = parse_id(controller, "controller")?;
    let row: Option<(String,)> = sqlx::query_as("SELECT org_id FROM controllers WHERE id = $1")
        .bind(&controller)
        .fetch_optional(state.pool())
        .await?;
    if !matches!(row, Some((o,)) if o == org) {
        return Err(ApiError::invalid(
            "controller_id does not name a controller of this organization",
        ));
    }
    let (others,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM locks WHERE controller_id = $1 AND id <> $2")
            .bind(&controller)
            .bind(lock.unwrap_or_default())
            .fetch_one(state.pool())
            .await?;
    if others >= MAX_CERT_LOCKS as i64 {
        return Err(ApiError::invalid(format!(
            "a controller serves at most {MAX_CERT_LOCKS} locks (its certificate names each one)"
        )));
    }
    Ok(controller)
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    ApiJson(req): ApiJson<CreateLock>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let org = parse_id(&org, "organization")?;
    caller.require(&state, &org, Role::Admin).await?;
    let name = super::orgs::check_name(&req.name)?;
    let place = check_place(&state, &org, &req.place_id).await?;
    let controller = match &req.controller_id {
        Some(c) => Some(check_controller(&state, &org, c, None).await?),
        None => None,
    };
    check_radius(req.geofence_radius_m)?;
    let id = new_id(&state.rng);
    sqlx::query(
        "INSERT INTO locks (id, org_id, place_id, name, controller_id, walk_up_allowed, \
         geofence_radius_m, reader_restriction, proximity_secret, tx_power, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, CAST($7 AS DOUBLE PRECISION), $8, $9, $10, $11)",
    )
    .bind(&id)
    .bind(&org)
    .bind(&place)
    .bind(name)
    .bind(&controller)
    .bind(i64::from(req.walk_up_allowed))
    .bind(crate::util::f64_text(req.geofence_radius_m))
    .bind(i64::from(req.reader_restriction))
    .bind(hex::encode(random_bytes::<32>(&state.rng)))
    .bind(i64::from(req.tx_power.unwrap_or(-59)))
    .bind(now_s())
    .execute(state.pool())
    .await?;
    if let Some(c) = &controller {
        state.hub.refresh_config(c);
    }
    let mut ev = NewEvent::admin(&org, "lock.created", &caller, json!({}));
    ev.lock_id = Some(id.clone());
    ev.place_id = Some(place);
    record(&state, ev).await?;
    let lock = load_lock(&state, &id)
        .await?
        .ok_or_else(ApiError::internal)?;
    Ok((StatusCode::CREATED, Json(lock_json(&lock))))
}

pub async fn list_locks(
    State(state): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    ApiQuery(q): ApiQuery<LockQuery>,
) -> ApiResult<Json<Value>> {
    let org = parse_id(&org, "organization")?;
    let role = caller.role_in(&state, &org).await?;
    let place = match &q.place {
        Some(p) => Some(parse_id(p, "place")?),
        None => None,
    };
    let rows = sqlx::query(sql!(
        "{LOCK_SELECT} WHERE l.org_id = $1 ORDER BY l.name, l.id"
    ))
    .bind(&org)
    .fetch_all(state.pool())
    .await?;
    let visible: Option<Vec<String>> = if role >= Role::Manager {
        None
    } else {
        let user = caller.require_user()?;
        let grants = crate::access::openable_locks(&state, &org, user, role, now_s()).await?;
        Some(grants.into_iter().map(|g| g.lock_id).collect())
    };
    let mut items = Vec::new();
    for r in &rows {
        let l = lock_from_row(r)?;
        if place.as_ref().is_some_and(|p| *p != l.place_id) {
            continue;
        }
        if visible.as_ref().is_none_or(|v| v.contains(&l.id)) {
            items.push(lock_json(&l));
        }
    }
    let page = crate::extract::Page {
        limit: q.limit,
        offset: q.offset,
    };
    let total = items.len() as i64;
    let items = items
        .into_iter()
        .skip(page.offset() as usize)
        .take(page.limit() as usize)
        .collect();
    Ok(Json(list(items, total, page)))
}

/// Loads a lock the caller's organization owns, or 404. A user's role comes in the same
/// query as the lock: this runs on every cloud unlock.
pub async fn lock_for(state: &AppState, caller: &Caller, id: &str) -> ApiResult<(LockInfo, Role)> {
    let id = parse_id(id, "lock")?;
    let not_found = || ApiError::not_found("lock");
    let Some(user) = caller.user_id() else {
        let lock = load_lock(state, &id).await?.ok_or_else(not_found)?;
        // An API key's role is its own; another organization's lock reads as missing.
        let role = caller
            .role_in(state, &lock.org_id)
            .await
            .map_err(|_| not_found())?;
        return Ok((lock, role));
    };
    let row = sqlx::query(sql!(
        "SELECT x.*, m.role AS member_role FROM ({LOCK_SELECT} WHERE l.id = $1) x \
         LEFT JOIN memberships m ON m.org_id = x.org_id AND m.user_id = $2"
    ))
    .bind(&id)
    .bind(user)
    .fetch_optional(state.pool())
    .await?
    .ok_or_else(not_found)?;
    let role: Option<String> = row.try_get("member_role")?;
    let role = role
        .as_deref()
        .and_then(Role::parse)
        .ok_or_else(not_found)?;
    Ok((lock_from_row(&row)?, role))
}

pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let (lock, role) = lock_for(&state, &caller, &id).await?;
    if role < Role::Manager {
        let user = caller.require_user()?;
        let grants =
            crate::access::openable_locks(&state, &lock.org_id, user, role, now_s()).await?;
        if !grants.iter().any(|g| g.lock_id == lock.id) {
            return Err(ApiError::not_found("lock"));
        }
    }
    Ok(Json(lock_json(&lock)))
}

pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UpdateLock>,
) -> ApiResult<Json<Value>> {
    let (lock, _) = lock_for(&state, &caller, &id).await?;
    caller.require(&state, &lock.org_id, Role::Admin).await?;
    let org = lock.org_id.clone();
    let name = match &req.name {
        Some(n) => super::orgs::check_name(n)?.to_owned(),
        None => lock.name.clone(),
    };
    let place = match &req.place_id {
        Some(p) => check_place(&state, &org, p).await?,
        None => lock.place_id.clone(),
    };
    let controller = match &req.controller_id {
        Some(Some(c)) => Some(check_controller(&state, &org, c, Some(&lock.id)).await?),
        Some(None) => None,
        None => lock.controller_id.clone(),
    };
    let radius = req.geofence_radius_m.unwrap_or(lock.geofence_radius_m);
    check_radius(radius)?;
    sqlx::query(
        "UPDATE locks SET name = $1, place_id = $2, controller_id = $3, walk_up_allowed = $4, \
         geofence_radius_m = CAST($5 AS DOUBLE PRECISION), reader_restriction = $6, tx_power = $7 WHERE id = $8",
    )
    .bind(&name)
    .bind(&place)
    .bind(&controller)
    .bind(i64::from(
        req.walk_up_allowed.unwrap_or(lock.walk_up_allowed),
    ))
    .bind(crate::util::f64_text(radius))
    .bind(i64::from(
        req.reader_restriction.unwrap_or(lock.reader_restriction),
    ))
    .bind(req.tx_power.map(i64::from).unwrap_or(lock.tx_power))
    .bind(&lock.id)
    .execute(state.pool())
    .await?;
    for c in [&lock.controller_id, &controller].into_iter().flatten() {
        state.hub.refresh_config(c);
    }
    let mut ev = NewEvent::admin(&org, "lock.updated", &caller, json!({}));
    ev.lock_id = Some(lock.id.clone());
    record(&state, ev).await?;
    let lock = load_lock(&state, &lock.id)
        .await?
        .ok_or_else(ApiError::internal)?;
    Ok(Json(lock_json(&lock)))
}

pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let (lock, _) = lock_for(&state, &caller, &id).await?;
    caller.require(&state, &lock.org_id, Role::Admin).await?;
    sqlx::query("DELETE FROM group_locks WHERE lock_id = $1")
        .bind(&lock.id)
        .execute(state.pool())
        .await?;
    sqlx::query("DELETE FROM locks WHERE id = $1")
        .bind(&lock.id)
        .execute(state.pool())
        .await?;
    if let Some(c) = &lock.controller_id {
        state.hub.refresh_config(c);
    }
    let mut ev = NewEvent::admin(&lock.org_id, "lock.deleted", &caller, json!({}));
    ev.lock_id = Some(lock.id.clone());
    record(&state, ev).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn lockdown(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<super::places::Lockdown>,
) -> ApiResult<Json<Value>> {
    let (lock, _) = lock_for(&state, &caller, &id).await?;
    caller.require(&state, &lock.org_id, Role::Manager).await?;
    sqlx::query("UPDATE locks SET lockdown = $1 WHERE id = $2")
        .bind(i64::from(req.lockdown))
        .bind(&lock.id)
        .execute(state.pool())
        .await?;
    if let Some(c) = &lock.controller_id {
        state.hub.refresh_config(c);
    }
    let kind = if req.lockdown {
        "lock.lockdown_started"
    } else {
        "lock.lockdown_ended"
    };
    let mut ev = NewEvent::admin(&lock.org_id, kind, &caller, json!({}));
    ev.lock_id = Some(lock.id.clone());
    ev.place_id = Some(lock.place_id.clone());
    record(&state, ev).await?;
    let lock = load_lock(&state, &lock.id)
        .await?
        .ok_or_else(ApiError::internal)?;
    Ok(Json(lock_json(&lock)))
}
