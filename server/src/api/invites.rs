//! Visitor invites: a single-use high-entropy code for a person, scoped to locks or a group,
//! inside a validity window with optional daily hours and unlock limit. Redeeming it gives a
//! guest login without a password. Revocation is immediate for cloud unlocks (checked on every
//! request) and reaches doors through the revocation list.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use keyway_protocol::Reason;
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::Row;

use crate::auth::{Caller, Role};
use crate::error::{ApiError, ApiResult};
use crate::events::{NewEvent, record};
use crate::extract::{ApiJson, ApiQuery, Page, list};
use crate::state::AppState;
use crate::util::{new_id, new_invite_code, normalize_invite_code, now_s, parse_id, sha256_hex};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateInvite {
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    #[serde(default)]
    pub lock_ids: Vec<String>,
    pub group_id: Option<String>,
    /// Unix seconds; defaults to now.
    pub valid_from: Option<i64>,
    pub valid_until: i64,
    /// "HH:MM" local time of the lock's place.
    pub daily_start: Option<String>,
    pub daily_end: Option<String>,
    pub max_unlocks: Option<i64>,
}

const COLS: &str = "id, org_id, name, email, phone, group_id, lock_ids, valid_from, valid_until, \
    daily_start_minute, daily_end_minute, max_unlocks, unlock_count, redeemed_at, guest_user_id, \
    revoked_at, created_at";

fn invite_json(r: &sqlx::any::AnyRow) -> Result<Value, sqlx::Error> {
    let lock_ids: String = r.try_get("lock_ids")?;
    let minute = |m: Option<i64>| m.map(|m| format!("{:02}:{:02}", m / 60, m % 60));
    let revoked: Option<i64> = r.try_get("revoked_at")?;
    let redeemed: Option<i64> = r.try_get("redeemed_at")?;
    let until: i64 = r.try_get("valid_until")?;
    let status = if revoked.is_some() {
        "revoked"
    } else if until <= now_s() {
        "expired"
    } else if redeemed.is_some() {
        "redeemed"
    } else {
        "pending"
    };
    Ok(json!({
        "id": r.try_get::<String, _>("id")?,
        "org_id": r.try_get::<String, _>("org_id")?,
        "name": r.try_get::<String, _>("name")?,
        "email": r.try_get::<Option<String>, _>("email")?,
        "phone": r.try_get::<Option<String>, _>("phone")?,
        "group_id": r.try_get::<Option<String>, _>("group_id")?,
        "lock_ids": serde_json::from_str::<Value>(&lock_ids).unwrap_or(json!([])),
        "valid_from": r.try_get::<i64, _>("valid_from")?,
        "valid_until": until,
        "daily_start": minute(r.try_get("daily_start_minute")?),
        "daily_end": minute(r.try_get("daily_end_minute")?),
        "max_unlocks": r.try_get::<Option<i64>, _>("max_unlocks")?,
        "unlock_count": r.try_get::<i64, _>("unlock_count")?,
        "redeemed_at": redeemed,
        "guest_user_id": r.try_get::<Option<String>, _>("guest_user_id")?,
        "revoked_at": revoked,
        "created_at": r.try_get::<i64, _>("created_at")?,
        "status": status,
    }))
}

/// Creates an invite (written on `db`); returns its id and the code (shown once).
pub async fn create_invite<'e>(
    state: &AppState,
    db: impl sqlx::Executor<'e, Database = sqlx::Any>,
    org: &str,
    created_by: &str,
    req: &CreateInvite,
) -> ApiResult<(String, String)> {
    let name = super::orgs::check_name(&req.name)?;
    if req
        .email
        .as_ref()
        .is_some_and(|e| !e.contains('@') || e.len() > 254)
        || req.phone.as_ref().is_some_and(|p| p.len() > 32)
    {
        return Err(ApiError::invalid("email or phone is not valid"));
    }
    let mut locks = Vec::new();
    for l in &req.lock_ids {
        let l = parse_id(l, "lock")?;
        let row: Option<(String,)> = sqlx::query_as("SELECT org_id FROM locks WHERE id = $1")
            .bind(&l)
            .fetch_optional(state.pool())
            .await?;
        if row.map(|(o,)| o).as_deref() != Some(org) {
            return Err(ApiError::invalid(
                "lock_ids must name locks of this organization",
            ));
        }
        locks.push(l);
    }
    let group = match &req.group_id {
        Some(g) => {
            let g = parse_id(g, "group")?;
            let row: Option<(String,)> =
                sqlx::query_as("SELECT org_id FROM access_groups WHERE id = $1")
                    .bind(&g)
                    .fetch_optional(state.pool())
                    .await?;
            if row.map(|(o,)| o).as_deref() != Some(org) {
                return Err(ApiError::invalid(
                    "group_id must name a group of this organization",
                ));
            }
            Some(g)
        }
        None => None,
    };
    if locks.is_empty() && group.is_none() {
        return Err(ApiError::invalid("an invite needs lock_ids or group_id"));
    }
    let now = now_s();
    let from = req.valid_from.unwrap_or(now);
    if from >= req.valid_until || req.valid_until <= now {
        return Err(ApiError::invalid(
            "valid_until must be after valid_from and in the future",
        ));
    }
    let (ds, de) = match (&req.daily_start, &req.daily_end) {
        (Some(s), Some(e)) => {
            let s = super::schedules::parse_minute(s)
                .ok_or_else(|| ApiError::invalid("daily_start must be HH:MM"))?;
            let e = super::schedules::parse_minute(e)
                .ok_or_else(|| ApiError::invalid("daily_end must be HH:MM"))?;
            if s >= e {
                return Err(ApiError::invalid("daily_start must be before daily_end"));
            }
            (Some(i64::from(s)), Some(i64::from(e)))
        }
        (None, None) => (None, None),
        _ => {
            return Err(ApiError::invalid(
                "give both daily_start and daily_end or neither",
            ));
        }
    };
    if req.max_unlocks.is_some_and(|m| !(1..=100_000).contains(&m)) {
        return Err(ApiError::invalid("max_unlocks must be 1..100000"));
    }
    let id = new_id(&state.rng);
    let code = new_invite_code(&state.rng);
    sqlx::query(
        "INSERT INTO invites (id, org_id, name, email, phone, code_hash, group_id, lock_ids, \
         valid_from, valid_until, daily_start_minute, daily_end_minute, max_unlocks, created_by, \
         created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
    )
    .bind(&id)
    .bind(org)
    .bind(name)
    .bind(&req.email)
    .bind(&req.phone)
    .bind(sha256_hex(&code))
    .bind(&group)
    .bind(serde_json::to_string(&locks).map_err(anyhow::Error::from)?)
    .bind(from)
    .bind(req.valid_until)
    .bind(ds)
    .bind(de)
    .bind(req.max_unlocks)
    .bind(created_by)
    .bind(now)
    .execute(db)
    .await?;
    Ok((id, code))
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    ApiJson(req): ApiJson<CreateInvite>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let org = parse_id(&org, "organization")?;
    caller.require(&state, &org, Role::Manager).await?;
    // Under the organization's lock: an invite must not slip in after its creator's
    // removal or demotion has withdrawn their invites. (The checks read on the pool; the
    // lock only orders this write against membership changes.)
    let mut tx = state.pool().begin().await?;
    crate::db::lock_org(&mut tx, &org).await?;
    let role = super::orgs::role_under_lock(&mut tx, &caller, &org, Role::Manager).await?;
    if role < Role::Admin {
        only_locks_the_inviter_opens(&state, &org, &caller, &req).await?;
    }
    let (id, code) = create_invite(&state, &mut *tx, &org, &caller.actor().0, &req).await?;
    tx.commit().await?;
    record(
        &state,
        NewEvent::admin(&org, "invite.created", &caller, json!({"invite_id": id})),
    )
    .await?;
    let mut body = load(&state, &id).await?;
    body["code"] = json!(code);
    body["link"] = json!(format!(
        "{}/invite#{code}",
        state.settings.public_url.trim_end_matches('/')
    ));
    Ok((StatusCode::CREATED, Json(body)))
}

/// A manager invites only to what they hold themselves, for no longer than they hold it:
/// otherwise they could invite a "visitor" to any door, or past their own end, and redeem
/// the code themselves. Locks: each in a group of an assignment valid now and until the
/// invite ends. A group: an assignment to that group itself (so locks added to it later are
/// theirs too). A manager's API key delegates its creator's assignments. Hours are not
/// compared: a visitor's daily window is the invite's own.
async fn only_locks_the_inviter_opens(
    state: &AppState,
    org: &str,
    caller: &Caller,
    req: &CreateInvite,
) -> ApiResult<()> {
    let inviter = match &caller.principal {
        crate::auth::Principal::User { user_id, .. } => Some(user_id.clone()),
        crate::auth::Principal::ApiKey { key_id, .. } => {
            let row: Option<(Option<String>,)> =
                sqlx::query_as("SELECT created_by FROM api_keys WHERE id = $1")
                    .bind(key_id)
                    .fetch_optional(state.pool())
                    .await?;
            row.and_then(|(c,)| c)
        }
    };
    let now = now_s();
    let held: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT ra.group_id, gl.lock_id FROM role_assignments ra \
         LEFT JOIN group_locks gl ON gl.group_id = ra.group_id \
         WHERE ra.org_id = $1 AND ra.user_id = $2 \
         AND (ra.valid_from IS NULL OR ra.valid_from <= $3) \
         AND (ra.valid_until IS NULL OR ra.valid_until >= $4)",
    )
    .bind(org)
    .bind(inviter.unwrap_or_default())
    .bind(now)
    .bind(req.valid_until)
    .fetch_all(state.pool())
    .await?;
    let groups: std::collections::HashSet<&str> = held.iter().map(|(g, _)| g.as_str()).collect();
    let locks: std::collections::HashSet<&str> =
        held.iter().filter_map(|(_, l)| l.as_deref()).collect();
    let mut within = true;
    for l in &req.lock_ids {
        within &= locks.contains(parse_id(l, "lock")?.as_str());
    }
    if let Some(g) = &req.group_id {
        within &= groups.contains(parse_id(g, "group")?.as_str());
    }
    if within {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        "a manager may invite visitors only to locks or groups they hold themselves, \
         and not past the end of their own access",
    ))
}

async fn load(state: &AppState, id: &str) -> ApiResult<Value> {
    let row = sqlx::query(sql!("SELECT {COLS} FROM invites WHERE id = $1"))
        .bind(id)
        .fetch_optional(state.pool())
        .await?
        .ok_or_else(|| ApiError::not_found("invite"))?;
    Ok(invite_json(&row)?)
}

pub async fn list_invites(
    State(state): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    ApiQuery(page): ApiQuery<Page>,
) -> ApiResult<Json<Value>> {
    let org = parse_id(&org, "organization")?;
    caller.require(&state, &org, Role::Manager).await?;
    let (total,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM invites WHERE org_id = $1")
        .bind(&org)
        .fetch_one(state.pool())
        .await?;
    let rows = sqlx::query(sql!(
        "SELECT {COLS} FROM invites WHERE org_id = $1 ORDER BY created_at DESC, id LIMIT $2 OFFSET $3"
    ))
    .bind(&org)
    .bind(page.limit())
    .bind(page.offset())
    .fetch_all(state.pool())
    .await?;
    let items = rows
        .iter()
        .map(invite_json)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(list(items, total, page)))
}

async fn authorize(state: &AppState, caller: &Caller, id: &str) -> ApiResult<(String, String)> {
    let id = parse_id(id, "invite")?;
    let row: Option<(String,)> = sqlx::query_as("SELECT org_id FROM invites WHERE id = $1")
        .bind(&id)
        .fetch_optional(state.pool())
        .await?;
    let (org,) = row.ok_or_else(|| ApiError::not_found("invite"))?;
    caller
        .require(state, &org, Role::Manager)
        .await
        .map_err(|e| {
            if e.code == "not_found" {
                ApiError::not_found("invite")
            } else {
                e
            }
        })?;
    Ok((id, org))
}

pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let (id, _) = authorize(&state, &caller, &id).await?;
    Ok(Json(load(&state, &id).await?))
}

pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let (id, org) = authorize(&state, &caller, &id).await?;
    let mut tx = state.pool().begin().await?;
    // Revoking first takes the organization's row first, as every such change does.
    crate::orgkeys::revoke_credentials(&mut tx, &org, crate::orgkeys::Holders::Invite(&id)).await?;
    sqlx::query("UPDATE invites SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
        .bind(now_s())
        .bind(&id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    crate::orgkeys::revocations_changed(&state, &org);
    record(
        &state,
        NewEvent::admin(&org, "invite.revoked", &caller, json!({"invite_id": id})),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Redeem {
    pub code: String,
}

pub async fn redeem(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<Redeem>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    if req.code.is_empty() || req.code.len() > 100 {
        return Err(ApiError::not_found("invite"));
    }
    let row: Option<(String, String, String, i64, Option<i64>, Option<i64>)> = sqlx::query_as(
        "SELECT id, org_id, name, valid_until, redeemed_at, revoked_at FROM invites \
         WHERE code_hash = $1 OR code_hash = $2",
    )
    .bind(sha256_hex(&normalize_invite_code(&req.code)))
    // Codes issued before invite codes were base32 are matched exactly as given.
    .bind(sha256_hex(req.code.trim()))
    .fetch_optional(state.pool())
    .await?;
    let (id, org, name, until, redeemed, revoked) =
        row.ok_or_else(|| ApiError::not_found("invite"))?;
    let now = now_s();
    if revoked.is_some() {
        return Err(ApiError::denied(Reason::Revoked));
    }
    if until <= now {
        return Err(ApiError::denied(Reason::Expired));
    }
    if redeemed.is_some() {
        return Err(ApiError::conflict("this invite was already redeemed"));
    }
    let guest = new_id(&state.rng);
    // One transaction: a redemption that fails half-way must leave the invite unclaimed
    // rather than burnt with no guest to show for it. Claiming first (the conditional
    // update) also stops two concurrent redemptions both succeeding.
    let mut tx = state.pool().begin().await?;
    let n = sqlx::query(
        "UPDATE invites SET redeemed_at = $1, guest_user_id = $2 WHERE id = $3 \
         AND redeemed_at IS NULL AND revoked_at IS NULL AND valid_until > $1",
    )
    .bind(now)
    .bind(&guest)
    .bind(&id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if n != 1 {
        // Redeemed, revoked or expired since it was read.
        return Err(ApiError::conflict(
            "this invite was already redeemed or is no longer valid",
        ));
    }
    sqlx::query(
        "INSERT INTO users (id, email, name, is_guest, created_at) VALUES ($1, NULL, $2, 1, $3)",
    )
    .bind(&guest)
    .bind(&name)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    super::orgs::add_member(&mut *tx, &org, &guest, Role::Guest).await?;
    let (token, _) =
        super::logins::start_session(&state, &mut *tx, &guest, "invite", None, until).await?;
    tx.commit().await?;
    let mut ev = NewEvent {
        org_id: org.clone(),
        kind: "invite.redeemed".into(),
        actor_id: Some(guest.clone()),
        actor_kind: Some("guest".into()),
        details: Some(json!({"invite_id": id})),
        ..Default::default()
    };
    ev.success = Some(true);
    record(&state, ev).await?;
    let body = super::logins::login_body(&state, &guest, &token).await?;
    Ok((StatusCode::CREATED, Json(body)))
}
