//! Role assignments: a user holds a group's locks, optionally on a schedule, inside a
//! validity window.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::groups::{authorize, org_of};
use crate::auth::{Caller, Role};
use crate::error::{ApiError, ApiResult};
use crate::events::{NewEvent, record};
use crate::extract::{ApiJson, ApiQuery, Page, list};
use crate::state::AppState;
use crate::util::{new_id, now_s, parse_id};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateAssignment {
    pub user_id: String,
    pub group_id: String,
    pub schedule_id: Option<String>,
    /// Unix seconds.
    pub valid_from: Option<i64>,
    pub valid_until: Option<i64>,
}

#[derive(Debug, Deserialize)]
pub struct AssignmentQuery {
    pub user: Option<String>,
    #[serde(default, deserialize_with = "crate::extract::de_limit")]
    pub limit: Option<i64>,
    #[serde(default, deserialize_with = "crate::extract::de_offset")]
    pub offset: Option<i64>,
}

type AssignmentRow = (
    String,
    String,
    String,
    Option<String>,
    Option<i64>,
    Option<i64>,
    i64,
);

fn assignment_json(r: AssignmentRow) -> Value {
    let (id, user_id, group_id, schedule_id, valid_from, valid_until, created_at) = r;
    json!({"id": id, "user_id": user_id, "group_id": group_id, "schedule_id": schedule_id,
           "valid_from": valid_from, "valid_until": valid_until, "created_at": created_at})
}

/// Managers may grant groups they hold to members; only admins may grant to managers and
/// admins, and any group.
pub async fn create_assignment(
    State(state): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    ApiJson(req): ApiJson<CreateAssignment>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let org = parse_id(&org, "organization")?;
    let my_role = caller.require(&state, &org, Role::Manager).await?;
    let user = parse_id(&req.user_id, "user")?;
    let target = member_role(&state, &org, &user)
        .await?
        .ok_or_else(|| ApiError::invalid("user_id is not a member of this organization"))?;
    if target >= my_role && my_role < Role::Admin {
        return Err(ApiError::forbidden());
    }
    let group = parse_id(&req.group_id, "group")?;
    if my_role < Role::Admin && !holds_group(&state, &org, &caller, &group).await? {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "a manager may grant only groups they hold themselves",
        ));
    }
    if org_of(&state, "access_groups", &group, "group")
        .await
        .ok()
        .as_deref()
        != Some(org.as_str())
    {
        return Err(ApiError::invalid(
            "group_id does not name a group of this organization",
        ));
    }
    let schedule = match &req.schedule_id {
        Some(s) => {
            let s = parse_id(s, "schedule")?;
            if org_of(&state, "schedules", &s, "schedule")
                .await
                .ok()
                .as_deref()
                != Some(org.as_str())
            {
                return Err(ApiError::invalid(
                    "schedule_id does not name a schedule of this organization",
                ));
            }
            Some(s)
        }
        None => None,
    };
    if let (Some(f), Some(u)) = (req.valid_from, req.valid_until)
        && f >= u
    {
        return Err(ApiError::invalid("valid_from must be before valid_until"));
    }
    let id = new_id(&state.rng);
    let now = now_s();
    sqlx::query(
        "INSERT INTO role_assignments (id, org_id, user_id, group_id, schedule_id, valid_from, \
         valid_until, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&id)
    .bind(&org)
    .bind(&user)
    .bind(&group)
    .bind(&schedule)
    .bind(req.valid_from)
    .bind(req.valid_until)
    .bind(now)
    .execute(state.pool())
    .await?;
    record(
        &state,
        NewEvent::admin(
            &org,
            "role_assignment.created",
            &caller,
            json!({"role_assignment_id": id, "user_id": user, "group_id": group}),
        ),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(assignment_json((
            id,
            user,
            group,
            schedule,
            req.valid_from,
            req.valid_until,
            now,
        ))),
    ))
}

pub async fn list_assignments(
    State(state): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    ApiQuery(q): ApiQuery<AssignmentQuery>,
) -> ApiResult<Json<Value>> {
    let org = parse_id(&org, "organization")?;
    caller.require(&state, &org, Role::Manager).await?;
    let page = Page {
        limit: q.limit,
        offset: q.offset,
    };
    let user = match &q.user {
        Some(u) => Some(parse_id(u, "user")?),
        None => None,
    };
    let filter = "WHERE org_id = $1 AND ($2 = '' OR user_id = $2)";
    let u = user.unwrap_or_default();
    let (total,): (i64,) = sqlx::query_as(sql!("SELECT COUNT(*) FROM role_assignments {filter}"))
        .bind(&org)
        .bind(&u)
        .fetch_one(state.pool())
        .await?;
    let rows: Vec<AssignmentRow> = sqlx::query_as(sql!(
        "SELECT id, user_id, group_id, schedule_id, valid_from, valid_until, created_at \
         FROM role_assignments {filter} ORDER BY created_at, id LIMIT $3 OFFSET $4"
    ))
    .bind(&org)
    .bind(&u)
    .bind(page.limit())
    .bind(page.offset())
    .fetch_all(state.pool())
    .await?;
    Ok(Json(list(
        rows.into_iter().map(assignment_json).collect(),
        total,
        page,
    )))
}

/// Removing an assignment revokes the user's offline credentials in this organization
/// (they are re-issued from the remaining access on the next refresh). As for granting,
/// a manager may only remove members' assignments.
pub async fn delete_assignment(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let (id, org) = authorize(
        &state,
        &caller,
        "role_assignments",
        &id,
        "role assignment",
        Role::Manager,
    )
    .await?;
    let my_role = caller.require(&state, &org, Role::Manager).await?;
    let (user,): (String,) = sqlx::query_as("SELECT user_id FROM role_assignments WHERE id = $1")
        .bind(&id)
        .fetch_one(state.pool())
        .await?;
    let target = member_role(&state, &org, &user).await?;
    if my_role < Role::Admin && target >= Some(my_role) {
        return Err(ApiError::forbidden());
    }
    let mut tx = state.pool().begin().await?;
    // Revoking first takes the organization's row first, as every such change does.
    crate::orgkeys::revoke_credentials(&mut tx, &org, crate::orgkeys::Holders::User(&user)).await?;
    // A manager's invites were allowed by their assignments: with one gone, they go too
    // (the manager may invite again within what is left).
    if target == Some(Role::Manager) {
        super::orgs::withdraw_invites(&mut tx, &org, std::slice::from_ref(&user)).await?;
    }
    let n = sqlx::query("DELETE FROM role_assignments WHERE id = $1")
        .bind(&id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if n == 0 {
        return Err(ApiError::not_found("role assignment"));
    }
    tx.commit().await?;
    crate::orgkeys::revocations_changed(&state, &org);
    record(
        &state,
        NewEvent::admin(
            &org,
            "role_assignment.deleted",
            &caller,
            json!({"role_assignment_id": id, "user_id": user}),
        ),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Whether the calling user holds `group` by an assignment valid now.
async fn holds_group(state: &AppState, org: &str, caller: &Caller, group: &str) -> ApiResult<bool> {
    let Ok(user) = caller.require_user() else {
        return Ok(false);
    };
    let now = now_s();
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM role_assignments WHERE org_id = $1 AND user_id = $2 \
         AND group_id = $3 AND (valid_from IS NULL OR valid_from <= $4) \
         AND (valid_until IS NULL OR valid_until > $4)",
    )
    .bind(org)
    .bind(user)
    .bind(group)
    .bind(now)
    .fetch_one(state.pool())
    .await?;
    Ok(n > 0)
}

/// The user's role in `org`; `None` once they left it (their assignments went with them).
async fn member_role(state: &AppState, org: &str, user: &str) -> ApiResult<Option<Role>> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT role FROM memberships WHERE org_id = $1 AND user_id = $2")
            .bind(org)
            .bind(user)
            .fetch_optional(state.pool())
            .await?;
    Ok(row.and_then(|(r,)| Role::parse(&r)))
}
