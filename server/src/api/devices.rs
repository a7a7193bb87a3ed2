//! Phones: device key registration and offline credentials signed with the organization key.
//!
//! A credential's validity is capped by the holder's access: the role assignment or invite
//! window, the invite's daily hours (as a schedule) and remaining unlocks, and at most
//! `credential_ttl_secs`. When a holder has both scheduled and unscheduled grants, only the
//! unscheduled locks go into the credential (one credential carries one schedule; the others
//! stay reachable by cloud unlock) — never more access than the server would give.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use keyway_protocol::credential::{Credential, Holder, HolderKind, Schedule, ScopeEntry};
use keyway_protocol::{Id, PublicKey};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::access::{LockGrant, guest_invite_on, openable_locks_on};
use crate::auth::{Caller, Role};
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::orgkeys;
use crate::state::AppState;
use crate::util::{new_id, now_s, parse_id, pid};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterDevice {
    pub public_key: String,
    pub name: String,
}

pub async fn register(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<RegisterDevice>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let user = caller.require_user()?.to_owned();
    let raw = hex::decode(req.public_key.trim())
        .map_err(|_| ApiError::invalid("public_key must be hex"))?;
    let key = PublicKey::from_slice(&raw)
        .map_err(|_| ApiError::invalid("public_key must be a 65-byte uncompressed P-256 point"))?;
    let name = super::orgs::check_name(&req.name)?;
    let id = new_id(&state.rng);
    sqlx::query(
        "INSERT INTO devices (id, user_id, name, public_key, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&id)
    .bind(&user)
    .bind(name)
    .bind(key.to_hex())
    .bind(now_s())
    .execute(state.pool())
    .await?;
    Ok((StatusCode::CREATED, Json(json!({"id": id, "name": name}))))
}

pub async fn list_devices(
    State(state): State<AppState>,
    caller: Caller,
    crate::extract::ApiQuery(page): crate::extract::ApiQuery<crate::extract::Page>,
) -> ApiResult<Json<Value>> {
    let user = caller.require_user()?;
    let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
        "SELECT id, name, public_key, created_at FROM devices WHERE user_id = $1 \
         AND revoked_at IS NULL ORDER BY created_at, id",
    )
    .bind(user)
    .fetch_all(state.pool())
    .await?;
    let items: Vec<Value> = rows
        .into_iter()
        .map(|(id, name, pk, created_at)| json!({"id": id, "name": name, "public_key": pk, "created_at": created_at}))
        .collect();
    let total = items.len() as i64;
    let items = items
        .into_iter()
        .skip(page.offset() as usize)
        .take(page.limit() as usize)
        .collect();
    Ok(Json(crate::extract::list(items, total, page)))
}

/// The caller's own device, not deleted: its id, checked.
async fn own_device(state: &AppState, user: &str, id: &str) -> ApiResult<String> {
    let id = parse_id(id, "device")?;
    let row: Option<(String,)> = sqlx::query_as(
        "SELECT id FROM devices WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL",
    )
    .bind(&id)
    .bind(user)
    .fetch_optional(state.pool())
    .await?;
    row.ok_or_else(|| ApiError::not_found("device"))?;
    Ok(id)
}

/// The caller's device key, with the device's row locked for `tx`: a device whose deletion
/// has begun gets no credential, since deletion revokes by the organizations it finds
/// credentials in, and one inserted behind it would not be among them.
async fn lock_own_device(tx: &mut sqlx::AnyConnection, user: &str, id: &str) -> ApiResult<String> {
    // A write first: on SQLite a transaction that reads first cannot take the write lock
    // once another writer has committed (SQLITE_BUSY).
    let locked = sqlx::query(
        "UPDATE devices SET name = name WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL",
    )
    .bind(id)
    .bind(user)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if locked == 0 {
        return Err(ApiError::not_found("device"));
    }
    let (pk,): (String,) = sqlx::query_as("SELECT public_key FROM devices WHERE id = $1")
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
    Ok(pk)
}

pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let user = caller.require_user()?;
    let id = own_device(&state, user, &id).await?;
    // A write first: on SQLite a transaction that reads first cannot take the write lock
    // once another writer has committed (SQLITE_BUSY). Issuance takes the device's row
    // before the organization's too, so the two cannot deadlock.
    let mut tx = state.pool().begin().await?;
    sqlx::query("UPDATE devices SET revoked_at = $1 WHERE id = $2")
        .bind(now_s())
        .bind(&id)
        .execute(&mut *tx)
        .await?;
    let orgs: Vec<(String,)> = sqlx::query_as(
        "SELECT DISTINCT org_id FROM credentials WHERE device_id = $1 ORDER BY org_id",
    )
    .bind(&id)
    .fetch_all(&mut *tx)
    .await?;
    // Organizations' rows in order, as every change that revokes takes them.
    for (org,) in &orgs {
        orgkeys::revoke_credentials(&mut tx, org, orgkeys::Holders::Device(&id)).await?;
    }
    tx.commit().await?;
    for (org,) in &orgs {
        orgkeys::revocations_changed(&state, org);
    }
    Ok(StatusCode::NO_CONTENT)
}

/// A credential is valid from this long before it was issued, for door clocks a little
/// behind. The revocation list's cut is computed from it.
pub const NOT_BEFORE_SLACK_S: i64 = 60;

/// Unexpired credentials (revoked or not) one user may hold in one organization. Phones
/// refresh at half-life, so a handful of devices need a few each; the cap keeps one member
/// from filling the revocation list (by issuing and revoking in a loop) so that it has to
/// cut everyone's credentials.
pub const MAX_LIVE_CREDENTIALS_PER_USER: i64 = 32;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssueRequest {
    pub org: String,
}

/// Picks the locks and schedule one credential can carry without over-granting.
pub fn plan_scope(grants: Vec<LockGrant>) -> (Vec<LockGrant>, Option<Schedule>) {
    let (open, scheduled): (Vec<_>, Vec<_>) = grants.into_iter().partition(|g| g.windows.is_none());
    if !open.is_empty() || scheduled.is_empty() {
        return (open, None);
    }
    // All scheduled: keep the locks whose time zone and windows match the first one's.
    let first = scheduled[0].clone();
    let same: Vec<LockGrant> = scheduled
        .into_iter()
        .filter(|g| g.time_zone == first.time_zone && g.windows == first.windows)
        .collect();
    let mut windows = first.windows.unwrap_or_default();
    windows.truncate(keyway_protocol::credential::MAX_WINDOWS);
    (
        same,
        Some(Schedule {
            time_zone: first.time_zone,
            windows,
        }),
    )
}

pub async fn issue(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<IssueRequest>,
) -> ApiResult<Json<Value>> {
    let user = caller.require_user()?.to_owned();
    let device = parse_id(&id, "device")?;
    let org = parse_id(&req.org, "organization")?;
    // 404 for an organization the caller is not in, before taking any lock.
    caller.role_in(&state, &org).await?;
    // Under the device's row, then the organization's (the order device deletion takes
    // them; every other change that revokes takes the organization's): a revocation either
    // committed before the checks below, which then see it, or waits for this credential and
    // lists it. Without the locks a credential whose check ran just before a revocation and
    // whose insert landed just after was on no list. The checks read on the transaction: a
    // second connection could be long in coming from a pool drained by requests queued on
    // these locks.
    let mut tx = state.pool().begin().await?;
    let pk = lock_own_device(&mut tx, &user, &device).await?;
    crate::db::lock_org(&mut tx, &org).await?;
    // Removed meanwhile: the same answer as for any organization the caller is not in.
    let role = super::orgs::role_under_lock(&mut tx, &caller, &org, Role::Guest)
        .await
        .map_err(|e| match e.code {
            "forbidden" => ApiError::not_found("organization"),
            _ => e,
        })?;
    let now = now_s();
    // Counted under the lock, so parallel requests cannot pass the cap by their number.
    let (live,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM credentials WHERE org_id = $1 AND user_id = $2 AND not_after > $3",
    )
    .bind(&org)
    .bind(&user)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    if live >= MAX_LIVE_CREDENTIALS_PER_USER {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_credentials",
            format!(
                "you hold {live} unexpired credentials in this organization, the most allowed; \
                 use the ones you have (or the cloud) until the oldest expire"
            ),
        ));
    }
    let grants = openable_locks_on(&mut tx, &org, &user, role, now).await?;
    let (grants, schedule) = plan_scope(grants);
    if grants.is_empty() {
        return Err(ApiError::denied(keyway_protocol::Reason::NoAccess));
    }
    let scope: Vec<ScopeEntry> = if role.opens_everything() {
        let mut places: Vec<String> = grants.iter().map(|g| g.place_id.clone()).collect();
        places.sort();
        places.dedup();
        places
            .iter()
            .take(32)
            .map(|p| ScopeEntry::Place(pid(p)))
            .collect()
    } else {
        grants
            .iter()
            .take(32)
            .map(|g| ScopeEntry::Lock(pid(&g.lock_id)))
            .collect()
    };
    let mut not_after = now + state.settings.credential_ttl_secs;
    for g in grants.iter().take(32) {
        if let Some(u) = g.valid_until {
            not_after = not_after.min(u);
        }
    }
    let (invite_id, max_uses) = if role == Role::Guest {
        match guest_invite_on(&mut tx, &user).await? {
            Some(inv) => {
                let remaining = inv
                    .max_unlocks
                    .map(|m| (m - inv.unlock_count).max(1) as u32);
                (Some(inv.id), remaining)
            }
            None => (None, None),
        }
    } else {
        (None, None)
    };
    let raw = hex::decode(&pk).map_err(anyhow::Error::from)?;
    let device_key = PublicKey::from_slice(&raw)?;
    let cred_id = new_id(&state.rng);
    let key = orgkeys::active_key_on(&state, &mut *tx, &org).await?;
    let not_before = now - NOT_BEFORE_SLACK_S;
    let credential = Credential {
        id: Id::parse(&cred_id).unwrap_or_default(),
        org: pid(&org),
        holder: Holder {
            kind: if role == Role::Guest {
                HolderKind::Guest
            } else {
                HolderKind::User
            },
            id: pid(&user),
        },
        device_key,
        scope,
        not_before: not_before as u64,
        not_after: not_after as u64,
        max_uses,
        schedule,
    };
    let bytes = credential.sign(&key, &state.rng)?;
    sqlx::query(
        "INSERT INTO credentials (id, org_id, device_id, user_id, invite_id, key_id, issued_at, not_after) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&cred_id)
    .bind(&org)
    .bind(&device)
    .bind(&user)
    .bind(&invite_id)
    .bind(key.key_id().to_string())
    .bind(now)
    .bind(not_after)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    let trusted = orgkeys::trusted_keys(&state, &org).await?;
    Ok(Json(json!({
        "id": cred_id,
        "credential": STANDARD.encode(bytes),
        "not_after": not_after,
        "refresh_after": now + (not_after - now) / 2,
        // The server's clock: phones time the refresh from it, not from their own.
        "issued_at": now,
        "trusted_keys": trusted,
        "scope": credential.scope,
        "schedule": credential.schedule,
        "max_uses": credential.max_uses,
    })))
}
