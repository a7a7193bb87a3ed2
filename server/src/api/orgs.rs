//! Organizations, members, API keys, signing keys and the revocation list.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::{Caller, Role, hash_password};
use crate::error::{ApiError, ApiResult};
use crate::events::{NewEvent, record};
use crate::extract::{ApiJson, ApiQuery, Page, list};
use crate::orgkeys;
use crate::state::AppState;
use crate::util::{new_id, new_secret, now_s, parse_id, sha256_hex};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateOrg {
    pub name: String,
}

/// Any signed-in user with an account (not a visitor's guest login) may create an
/// organization and becomes its owner.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateOrg>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let user_id = caller.require_user()?.to_owned();
    let (is_guest,): (i64,) = sqlx::query_as("SELECT is_guest FROM users WHERE id = $1")
        .bind(&user_id)
        .fetch_one(state.pool())
        .await?;
    if is_guest != 0 {
        return Err(ApiError::forbidden());
    }
    let name = check_name(&req.name)?;
    let org = orgkeys::create_org(&state, name, &user_id).await?;
    record(
        &state,
        NewEvent::admin(&org, "org.created", &caller, json!({"name": name})),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(json!({"id": org, "name": name}))))
}

/// The caller's organizations with their role (API keys: their own organization).
pub async fn list_mine(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(page): ApiQuery<Page>,
) -> ApiResult<Json<Value>> {
    let rows: Vec<(String, String, String)> = match &caller.principal {
        crate::auth::Principal::User { user_id, .. } => {
            sqlx::query_as(
                "SELECT o.id, o.name, m.role FROM memberships m JOIN orgs o ON o.id = m.org_id \
                 WHERE m.user_id = $1 ORDER BY o.name, o.id",
            )
            .bind(user_id)
            .fetch_all(state.pool())
            .await?
        }
        crate::auth::Principal::ApiKey { org_id, role, .. } => {
            let rows: Vec<(String, String)> =
                sqlx::query_as("SELECT id, name FROM orgs WHERE id = $1")
                    .bind(org_id)
                    .fetch_all(state.pool())
                    .await?;
            rows.into_iter()
                .map(|(id, name)| (id, name, role.as_str().to_owned()))
                .collect()
        }
    };
    let items: Vec<Value> = rows
        .into_iter()
        .map(|(id, name, role)| json!({"id": id, "name": name, "role": role}))
        .collect();
    let total = items.len() as i64;
    let items = items
        .into_iter()
        .skip(page.offset() as usize)
        .take(page.limit() as usize)
        .collect();
    Ok(Json(list(items, total, page)))
}

pub fn check_name(name: &str) -> ApiResult<&str> {
    // Trim exactly what the OpenAPI document's `\S` pattern calls white space (ECMA-262's
    // set, as JSON Schema reads it): Rust's `trim` also drops U+0085 and keeps U+FEFF, so a
    // name the schema accepts ("\u{85}") was refused.
    let ecma_space = |c: char| (c.is_whitespace() && c != '\u{85}') || c == '\u{feff}';
    let name = name.trim_matches(ecma_space);
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ApiError::invalid("name must be 1..200 characters"));
    }
    Ok(name)
}

pub async fn add_member<'e>(
    db: impl sqlx::Executor<'e, Database = sqlx::Any>,
    org: &str,
    user: &str,
    role: Role,
) -> ApiResult<()> {
    sqlx::query(
        "INSERT INTO memberships (org_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(org)
    .bind(user)
    .bind(role.as_str())
    .bind(now_s())
    .execute(db)
    .await?;
    Ok(())
}

/// Creates a password user (or returns the existing user with that email).
pub async fn ensure_user(
    state: &AppState,
    email: &str,
    name: &str,
    password: Option<&str>,
) -> ApiResult<String> {
    let email = email.trim().to_lowercase();
    if let Some((id,)) = sqlx::query_as::<_, (String,)>("SELECT id FROM users WHERE email = $1")
        .bind(&email)
        .fetch_optional(state.pool())
        .await?
    {
        return Ok(id);
    }
    let hash = match password {
        Some(p) => Some(hash_password(p, &state.rng)?),
        None => None,
    };
    let id = new_id(&state.rng);
    sqlx::query(
        "INSERT INTO users (id, email, name, password_hash, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&id)
    .bind(&email)
    .bind(name)
    .bind(hash)
    .bind(now_s())
    .execute(state.pool())
    .await?;
    Ok(id)
}

pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
) -> ApiResult<Json<Value>> {
    let org = parse_id(&org, "organization")?;
    let role = caller.role_in(&state, &org).await?;
    let (name, created_at): (String, i64) =
        sqlx::query_as("SELECT name, created_at FROM orgs WHERE id = $1")
            .bind(&org)
            .fetch_optional(state.pool())
            .await?
            .ok_or_else(|| ApiError::not_found("organization"))?;
    Ok(Json(
        json!({"id": org, "name": name, "created_at": created_at, "role": role}),
    ))
}

// ---- members ----

pub async fn list_members(
    State(state): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    ApiQuery(page): ApiQuery<Page>,
) -> ApiResult<Json<Value>> {
    let org = parse_id(&org, "organization")?;
    caller.require(&state, &org, Role::Manager).await?;
    let (total,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM memberships WHERE org_id = $1")
        .bind(&org)
        .fetch_one(state.pool())
        .await?;
    let rows: Vec<(String, Option<String>, String, String, i64)> = sqlx::query_as(
        "SELECT u.id, u.email, u.name, m.role, m.created_at FROM memberships m \
         JOIN users u ON u.id = m.user_id WHERE m.org_id = $1 ORDER BY m.created_at, u.id \
         LIMIT $2 OFFSET $3",
    )
    .bind(&org)
    .bind(page.limit())
    .bind(page.offset())
    .fetch_all(state.pool())
    .await?;
    let items = rows
        .into_iter()
        .map(|(id, email, name, role, created_at)| {
            json!({"user_id": id, "email": email, "name": name, "role": role, "created_at": created_at})
        })
        .collect();
    Ok(Json(list(items, total, page)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddMember {
    pub email: String,
    pub name: Option<String>,
    /// Initial password for a new account (otherwise the account needs an existing login).
    pub password: Option<String>,
    pub role: Role,
}

pub async fn create_member(
    State(state): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    ApiJson(req): ApiJson<AddMember>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let org = parse_id(&org, "organization")?;
    let my_role = caller.require(&state, &org, Role::Admin).await?;
    if req.role > my_role || req.role == Role::Guest {
        return Err(ApiError::forbidden());
    }
    if !req.email.contains('@') || req.email.len() > 254 {
        return Err(ApiError::invalid("email is not valid"));
    }
    if req
        .password
        .as_ref()
        .is_some_and(|p| p.len() < 8 || p.len() > 1024)
    {
        return Err(ApiError::invalid("password must be 8..1024 characters"));
    }
    let name = req.name.clone().unwrap_or_else(|| req.email.clone());
    let user = ensure_user(
        &state,
        &req.email,
        check_name(&name)?,
        req.password.as_deref(),
    )
    .await?;
    add_member(state.pool(), &org, &user, req.role).await?;
    record(
        &state,
        NewEvent::admin(
            &org,
            "member.added",
            &caller,
            json!({"user_id": user, "role": req.role}),
        ),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"user_id": user, "email": req.email.trim().to_lowercase(), "role": req.role})),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateMember {
    pub role: Role,
}

pub async fn update_member(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, user)): Path<(String, String)>,
    ApiJson(req): ApiJson<UpdateMember>,
) -> ApiResult<Json<Value>> {
    let org = parse_id(&org, "organization")?;
    let user = parse_id(&user, "user")?;
    caller.require(&state, &org, Role::Admin).await?;
    let mut tx = state.pool().begin().await?;
    crate::db::lock_org(&mut tx, &org).await?;
    let my_role = role_under_lock(&mut tx, &caller, &org, Role::Admin).await?;
    let current = member_role(&mut tx, &org, &user).await?;
    if req.role > my_role || current > my_role || req.role == Role::Guest || current == Role::Guest
    {
        return Err(ApiError::forbidden());
    }
    sqlx::query("UPDATE memberships SET role = $1 WHERE org_id = $2 AND user_id = $3")
        .bind(req.role.as_str())
        .bind(&org)
        .bind(&user)
        .execute(&mut *tx)
        .await?;
    let weaker = req.role < current;
    if weaker {
        ensure_an_owner(&mut tx, &org).await?;
        // A weaker role must not keep offline access, API keys or invites issued under the
        // stronger one.
        orgkeys::revoke_credentials(&mut tx, &org, orgkeys::Holders::User(&user)).await?;
        withdraw_delegations(&mut tx, &org, &user, Some(req.role)).await?;
    }
    tx.commit().await?;
    if weaker {
        orgkeys::revocations_changed(&state, &org);
    }
    record(
        &state,
        NewEvent::admin(
            &org,
            "member.updated",
            &caller,
            json!({"user_id": user, "role": req.role}),
        ),
    )
    .await?;
    Ok(Json(json!({"user_id": user, "role": req.role})))
}

async fn member_role(tx: &mut sqlx::AnyConnection, org: &str, user: &str) -> ApiResult<Role> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT role FROM memberships WHERE org_id = $1 AND user_id = $2")
            .bind(org)
            .bind(user)
            .fetch_optional(&mut *tx)
            .await?;
    row.and_then(|(r,)| Role::parse(&r))
        .ok_or_else(|| ApiError::not_found("member"))
}

/// Checked after the change, on its transaction: the change is rolled back if it left none.
async fn ensure_an_owner(tx: &mut sqlx::AnyConnection, org: &str) -> ApiResult<()> {
    let (n,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM memberships WHERE org_id = $1 AND role = 'owner'")
            .bind(org)
            .fetch_one(&mut *tx)
            .await?;
    if n == 0 {
        return Err(ApiError::conflict(
            "an organization needs at least one owner",
        ));
    }
    Ok(())
}

/// The caller's role read again once the organization is locked: a member removed or
/// demoted by a change that committed first acts no more with the old role.
pub(crate) async fn role_under_lock(
    tx: &mut sqlx::AnyConnection,
    caller: &Caller,
    org: &str,
    min: Role,
) -> ApiResult<Role> {
    let role = match &caller.principal {
        crate::auth::Principal::User { user_id, .. } => {
            member_role(tx, org, user_id).await.map_err(|e| {
                if e.code == "not_found" {
                    ApiError::forbidden()
                } else {
                    e
                }
            })?
        }
        crate::auth::Principal::ApiKey { key_id, .. } => {
            let row: Option<(String,)> = sqlx::query_as(
                "SELECT role FROM api_keys WHERE id = $1 AND org_id = $2 AND revoked_at IS NULL",
            )
            .bind(key_id)
            .bind(org)
            .fetch_optional(&mut *tx)
            .await?;
            row.and_then(|(r,)| Role::parse(&r))
                .ok_or_else(ApiError::unauthorized)?
        }
    };
    if role < min {
        return Err(ApiError::forbidden());
    }
    Ok(role)
}

/// What a member handed on goes with the role they lose (`now_holds`: `None` when removed):
/// their API keys above the role they keep, and every key such a key made (through any
/// number of keys, revoked earlier or now); and once they may no longer invite (below
/// manager), the unexpired invites they or those keys made, with their visitors' credentials.
async fn withdraw_delegations(
    tx: &mut sqlx::AnyConnection,
    org: &str,
    user: &str,
    now_holds: Option<Role>,
) -> ApiResult<()> {
    let own: Vec<(String, String, Option<i64>)> = sqlx::query_as(
        "SELECT id, role, revoked_at FROM api_keys WHERE org_id = $1 AND created_by = $2",
    )
    .bind(org)
    .bind(user)
    .fetch_all(&mut *tx)
    .await?;
    let mut gone = Vec::new();
    for (id, role, revoked_at) in own {
        let stays = revoked_at.is_none()
            && matches!((Role::parse(&role), now_holds), (Some(k), Some(h)) if k <= h);
        if !stays {
            gone.push(id);
        }
    }
    let mut creators = revoke_keys_and_what_they_made(tx, org, gone).await?;
    // An admin invites to any door; a manager only to the doors of groups they hold. Which
    // role made an invite is not recorded, so an admin stepping down to manager loses all
    // of theirs (their visitors with them) rather than keep ones a manager could not make.
    if now_holds.is_some_and(|r| r >= Role::Admin) {
        return Ok(());
    }
    creators.push(user.to_owned());
    withdraw_invites(tx, org, &creators).await
}

/// Revokes the unexpired invites `creators` made, with their visitors' credentials.
pub(crate) async fn withdraw_invites(
    tx: &mut sqlx::AnyConnection,
    org: &str,
    creators: &[String],
) -> ApiResult<()> {
    let now = now_s();
    for creator in creators {
        let invites: Vec<(String,)> = sqlx::query_as(
            "SELECT id FROM invites WHERE org_id = $1 AND created_by = $2 \
             AND revoked_at IS NULL AND valid_until > $3",
        )
        .bind(org)
        .bind(creator)
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
        for (id,) in invites {
            orgkeys::revoke_credentials(&mut *tx, org, orgkeys::Holders::Invite(&id)).await?;
            sqlx::query("UPDATE invites SET revoked_at = $1 WHERE id = $2")
                .bind(now)
                .bind(&id)
                .execute(&mut *tx)
                .await?;
        }
    }
    Ok(())
}

/// Revokes the keys `roots` and every key made from them, directly or through other keys
/// (a key revoked earlier shelters none); returns them all.
async fn revoke_keys_and_what_they_made(
    tx: &mut sqlx::AnyConnection,
    org: &str,
    roots: Vec<String>,
) -> ApiResult<Vec<String>> {
    let now = now_s();
    let mut all = roots;
    let mut next = 0;
    while next < all.len() {
        sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(&all[next])
            .execute(&mut *tx)
            .await?;
        let made: Vec<(String,)> =
            sqlx::query_as("SELECT id FROM api_keys WHERE org_id = $1 AND created_by = $2")
                .bind(org)
                .bind(&all[next])
                .fetch_all(&mut *tx)
                .await?;
        for (id,) in made {
            if !all.contains(&id) {
                all.push(id);
            }
        }
        next += 1;
    }
    Ok(all)
}

pub async fn delete_member(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, user)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let org = parse_id(&org, "organization")?;
    let user = parse_id(&user, "user")?;
    caller.require(&state, &org, Role::Admin).await?;
    let mut tx = state.pool().begin().await?;
    crate::db::lock_org(&mut tx, &org).await?;
    let my_role = role_under_lock(&mut tx, &caller, &org, Role::Admin).await?;
    let current = member_role(&mut tx, &org, &user).await?;
    if current > my_role {
        return Err(ApiError::forbidden());
    }
    sqlx::query("DELETE FROM memberships WHERE org_id = $1 AND user_id = $2")
        .bind(&org)
        .bind(&user)
        .execute(&mut *tx)
        .await?;
    ensure_an_owner(&mut tx, &org).await?;
    orgkeys::revoke_credentials(&mut tx, &org, orgkeys::Holders::User(&user)).await?;
    sqlx::query("DELETE FROM role_assignments WHERE org_id = $1 AND user_id = $2")
        .bind(&org)
        .bind(&user)
        .execute(&mut *tx)
        .await?;
    withdraw_delegations(&mut tx, &org, &user, None).await?;
    tx.commit().await?;
    orgkeys::revocations_changed(&state, &org);
    record(
        &state,
        NewEvent::admin(&org, "member.removed", &caller, json!({"user_id": user})),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- API keys ----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    pub name: String,
    pub role: Role,
}

pub async fn create_api_key(
    State(state): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    ApiJson(req): ApiJson<CreateApiKey>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let org = parse_id(&org, "organization")?;
    caller.require(&state, &org, Role::Admin).await?;
    let name = check_name(&req.name)?;
    // Under the organization's lock: a key must not slip in after its creator's removal
    // has withdrawn their keys.
    let mut tx = state.pool().begin().await?;
    crate::db::lock_org(&mut tx, &org).await?;
    let my_role = role_under_lock(&mut tx, &caller, &org, Role::Admin).await?;
    if req.role > my_role || req.role == Role::Owner || req.role == Role::Guest {
        return Err(ApiError::forbidden());
    }
    let id = new_id(&state.rng);
    let token = new_secret(&state.rng, "kwk_");
    sqlx::query(
        "INSERT INTO api_keys (id, org_id, name, role, token_hash, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&id)
    .bind(&org)
    .bind(name)
    .bind(req.role.as_str())
    .bind(sha256_hex(&token))
    .bind(caller.actor().0)
    .bind(now_s())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    record(
        &state,
        NewEvent::admin(&org, "api_key.created", &caller, json!({"api_key_id": id})),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": id, "name": name, "role": req.role, "token": token})),
    ))
}

pub async fn list_api_keys(
    State(state): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    ApiQuery(page): ApiQuery<Page>,
) -> ApiResult<Json<Value>> {
    let org = parse_id(&org, "organization")?;
    caller.require(&state, &org, Role::Admin).await?;
    let (total,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM api_keys WHERE org_id = $1 AND revoked_at IS NULL")
            .bind(&org)
            .fetch_one(state.pool())
            .await?;
    let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
        "SELECT id, name, role, created_at FROM api_keys WHERE org_id = $1 AND revoked_at IS NULL \
         ORDER BY created_at, id LIMIT $2 OFFSET $3",
    )
    .bind(&org)
    .bind(page.limit())
    .bind(page.offset())
    .fetch_all(state.pool())
    .await?;
    let items = rows
        .into_iter()
        .map(|(id, name, role, created_at)| json!({"id": id, "name": name, "role": role, "created_at": created_at}))
        .collect();
    Ok(Json(list(items, total, page)))
}

pub async fn delete_api_key(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let org = parse_id(&org, "organization")?;
    let id = parse_id(&id, "api key")?;
    caller.require(&state, &org, Role::Admin).await?;
    let mut tx = state.pool().begin().await?;
    crate::db::lock_org(&mut tx, &org).await?;
    role_under_lock(&mut tx, &caller, &org, Role::Admin).await?;
    let live: Option<(String,)> = sqlx::query_as(
        "SELECT id FROM api_keys WHERE id = $1 AND org_id = $2 AND revoked_at IS NULL",
    )
    .bind(&id)
    .bind(&org)
    .fetch_optional(&mut *tx)
    .await?;
    if live.is_none() {
        return Err(ApiError::not_found("api key"));
    }
    // Keys made with this one derive their authority from it.
    revoke_keys_and_what_they_made(&mut tx, &org, vec![id.clone()]).await?;
    tx.commit().await?;
    record(
        &state,
        NewEvent::admin(&org, "api_key.revoked", &caller, json!({"api_key_id": id})),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- signing keys and revocations ----

pub async fn list_keys(
    State(state): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
) -> ApiResult<Json<Value>> {
    let org = parse_id(&org, "organization")?;
    caller.require(&state, &org, Role::Admin).await?;
    let rows: Vec<(String, String, String, i64, Option<i64>)> = sqlx::query_as(
        "SELECT key_id, public_key, status, created_at, retired_at FROM org_keys \
         WHERE org_id = $1 ORDER BY created_at DESC",
    )
    .bind(&org)
    .fetch_all(state.pool())
    .await?;
    let items: Vec<Value> = rows
        .into_iter()
        .map(|(key_id, public_key, status, created_at, retired_at)| {
            json!({"key_id": key_id, "public_key": public_key, "status": status,
                   "created_at": created_at, "retired_at": retired_at})
        })
        .collect();
    let trusted = orgkeys::trusted_keys(&state, &org).await?;
    let total = items.len();
    Ok(Json(
        json!({"items": items, "total": total, "limit": total, "offset": 0, "trusted_keys": trusted}),
    ))
}

pub async fn rotate_key(
    State(state): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
) -> ApiResult<Json<Value>> {
    let org = parse_id(&org, "organization")?;
    caller.require(&state, &org, Role::Owner).await?;
    orgkeys::rotate(&state, &org).await?;
    record(
        &state,
        NewEvent::admin(&org, "org_key.rotated", &caller, json!({})),
    )
    .await?;
    let trusted = orgkeys::trusted_keys(&state, &org).await?;
    Ok(Json(json!({"trusted_keys": trusted})))
}

pub async fn retire_previous_key(
    State(state): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
) -> ApiResult<Json<Value>> {
    let org = parse_id(&org, "organization")?;
    caller.require(&state, &org, Role::Owner).await?;
    orgkeys::retire_previous(&state, &org).await?;
    record(
        &state,
        NewEvent::admin(&org, "org_key.retired", &caller, json!({})),
    )
    .await?;
    let trusted = orgkeys::trusted_keys(&state, &org).await?;
    Ok(Json(json!({"trusted_keys": trusted})))
}

/// Any member may fetch the signed list (phones and integrations verify it themselves).
pub async fn revocations(
    State(state): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
) -> ApiResult<Json<Value>> {
    let org = parse_id(&org, "organization")?;
    caller.role_in(&state, &org).await?;
    let (list, serial) = orgkeys::revocation_list(&state, &org).await?;
    Ok(Json(json!({"serial": serial, "list": list})))
}

#[cfg(test)]
mod tests {
    use super::check_name;

    #[test]
    fn names_are_trimmed_as_the_schema_reads_white_space() {
        assert_eq!(check_name("  Front door \u{3000}").unwrap(), "Front door");
        // Not white space to JSON Schema's `\S`: a valid (if odd) name.
        assert_eq!(check_name("\u{85}").unwrap(), "\u{85}");
        // White space to JSON Schema, so nothing is left.
        for blank in ["", " \t\n", "\u{feff}", "\u{a0}\u{2028}"] {
            assert!(check_name(blank).is_err(), "{blank:?}");
        }
        assert!(check_name(&"x".repeat(201)).is_err());
        assert!(check_name(&"x".repeat(200)).is_ok());
    }
}
