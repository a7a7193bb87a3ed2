//! Groups of locks and the locks in them. Users reach a group's locks through role
//! assignments ([`super::role_assignments`]), optionally on a weekly schedule
//! ([`super::schedules`]).

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

/// The organization owning a row of `table`, or 404 named `what`.
pub(crate) async fn org_of(
    state: &AppState,
    table: &str,
    id: &str,
    what: &str,
) -> ApiResult<String> {
    let row: Option<(String,)> = sqlx::query_as(sql!("SELECT org_id FROM {table} WHERE id = $1"))
        .bind(id)
        .fetch_optional(state.pool())
        .await?;
    row.map(|(o,)| o).ok_or_else(|| ApiError::not_found(what))
}

/// Loads an object's org and checks the caller's role there (404 when not a member).
pub(crate) async fn authorize(
    state: &AppState,
    caller: &Caller,
    table: &str,
    id: &str,
    what: &str,
    min: Role,
) -> ApiResult<(String, String)> {
    let id = parse_id(id, what)?;
    let org = org_of(state, table, &id, what).await?;
    caller.require(state, &org, min).await.map_err(|e| {
        if e.code == "not_found" {
            ApiError::not_found(what)
        } else {
            e
        }
    })?;
    Ok((id, org))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateGroup {
    pub name: String,
    #[serde(default)]
    pub lock_ids: Vec<String>,
}

pub async fn create_group(
    State(state): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    ApiJson(req): ApiJson<CreateGroup>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let org = parse_id(&org, "organization")?;
    caller.require(&state, &org, Role::Admin).await?;
    let name = super::orgs::check_name(&req.name)?;
    let mut locks = Vec::new();
    for l in &req.lock_ids {
        locks.push(org_lock(&state, &org, l).await?);
    }
    let id = new_id(&state.rng);
    sqlx::query("INSERT INTO access_groups (id, org_id, name, created_at) VALUES ($1, $2, $3, $4)")
        .bind(&id)
        .bind(&org)
        .bind(name)
        .bind(now_s())
        .execute(state.pool())
        .await?;
    for l in &locks {
        add_lock(&state, &org, &id, l).await?;
    }
    record(
        &state,
        NewEvent::admin(&org, "group.created", &caller, json!({"group_id": id})),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(group_json(&state, &id).await?)))
}

async fn org_lock(state: &AppState, org: &str, lock: &str) -> ApiResult<String> {
    let lock = parse_id(lock, "lock")?;
    match org_of(state, "locks", &lock, "lock").await {
        Ok(o) if o == org => Ok(lock),
        _ => Err(ApiError::invalid(
            "lock id does not name a lock of this organization",
        )),
    }
}

async fn add_lock(state: &AppState, org: &str, group: &str, lock: &str) -> ApiResult<()> {
    let exists: Option<(String,)> =
        sqlx::query_as("SELECT lock_id FROM group_locks WHERE group_id = $1 AND lock_id = $2")
            .bind(group)
            .bind(lock)
            .fetch_optional(state.pool())
            .await?;
    if exists.is_none() {
        sqlx::query("INSERT INTO group_locks (group_id, lock_id, org_id) VALUES ($1, $2, $3)")
            .bind(group)
            .bind(lock)
            .bind(org)
            .execute(state.pool())
            .await?;
    }
    Ok(())
}

async fn group_json(state: &AppState, id: &str) -> ApiResult<Value> {
    let (org, name, created_at): (String, String, i64) =
        sqlx::query_as("SELECT org_id, name, created_at FROM access_groups WHERE id = $1")
            .bind(id)
            .fetch_optional(state.pool())
            .await?
            .ok_or_else(|| ApiError::not_found("group"))?;
    let locks: Vec<(String,)> =
        sqlx::query_as("SELECT lock_id FROM group_locks WHERE group_id = $1 ORDER BY lock_id")
            .bind(id)
            .fetch_all(state.pool())
            .await?;
    Ok(
        json!({"id": id, "org_id": org, "name": name, "created_at": created_at,
              "lock_ids": locks.into_iter().map(|(l,)| l).collect::<Vec<_>>()}),
    )
}

pub async fn list_groups(
    State(state): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    ApiQuery(page): ApiQuery<Page>,
) -> ApiResult<Json<Value>> {
    let org = parse_id(&org, "organization")?;
    caller.require(&state, &org, Role::Manager).await?;
    let (total,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM access_groups WHERE org_id = $1")
        .bind(&org)
        .fetch_one(state.pool())
        .await?;
    let ids: Vec<(String,)> = sqlx::query_as(
        "SELECT id FROM access_groups WHERE org_id = $1 ORDER BY name, id LIMIT $2 OFFSET $3",
    )
    .bind(&org)
    .bind(page.limit())
    .bind(page.offset())
    .fetch_all(state.pool())
    .await?;
    let mut items = Vec::new();
    for (id,) in ids {
        items.push(group_json(&state, &id).await?);
    }
    Ok(Json(list(items, total, page)))
}

pub async fn get_group(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let (id, _) = authorize(
        &state,
        &caller,
        "access_groups",
        &id,
        "group",
        Role::Manager,
    )
    .await?;
    Ok(Json(group_json(&state, &id).await?))
}

pub async fn delete_group(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let (id, org) = authorize(&state, &caller, "access_groups", &id, "group", Role::Admin).await?;
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM role_assignments WHERE group_id = $1")
        .bind(&id)
        .fetch_one(state.pool())
        .await?;
    if n > 0 {
        return Err(ApiError::conflict(
            "remove the group's role assignments first",
        ));
    }
    // Invites to the group lose its locks: their guests' offline credentials go too.
    let mut tx = state.pool().begin().await?;
    crate::orgkeys::revoke_credentials(&mut tx, &org, crate::orgkeys::Holders::Group(&id)).await?;
    sqlx::query("DELETE FROM group_locks WHERE group_id = $1")
        .bind(&id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM access_groups WHERE id = $1")
        .bind(&id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    crate::orgkeys::revocations_changed(&state, &org);
    record(
        &state,
        NewEvent::admin(&org, "group.deleted", &caller, json!({"group_id": id})),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupLock {
    pub lock_id: String,
}

pub async fn add_group_lock(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<GroupLock>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let (id, org) = authorize(&state, &caller, "access_groups", &id, "group", Role::Admin).await?;
    let lock = org_lock(&state, &org, &req.lock_id).await?;
    add_lock(&state, &org, &id, &lock).await?;
    record(
        &state,
        NewEvent::admin(
            &org,
            "group.lock_added",
            &caller,
            json!({"group_id": id, "lock_id": lock}),
        ),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(group_json(&state, &id).await?)))
}

pub async fn remove_group_lock(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, lock)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let (id, org) = authorize(&state, &caller, "access_groups", &id, "group", Role::Admin).await?;
    let lock = parse_id(&lock, "lock")?;
    let mut tx = state.pool().begin().await?;
    // Credentials name the lock: the group's holders get new ones from what they keep.
    // Revoking first takes the organization's row first, as every such change does.
    crate::orgkeys::revoke_credentials(&mut tx, &org, crate::orgkeys::Holders::Group(&id)).await?;
    let n = sqlx::query("DELETE FROM group_locks WHERE group_id = $1 AND lock_id = $2")
        .bind(&id)
        .bind(&lock)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if n == 0 {
        return Err(ApiError::not_found("group lock"));
    }
    tx.commit().await?;
    crate::orgkeys::revocations_changed(&state, &org);
    record(
        &state,
        NewEvent::admin(
            &org,
            "group.lock_removed",
            &caller,
            json!({"group_id": id, "lock_id": lock}),
        ),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
