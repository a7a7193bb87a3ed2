//! Groups of locks, the locks in them, weekly schedules and role assignments (a user holds a
//! group, optionally on a schedule, inside a validity window).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use keyway_protocol::credential::Window;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::{Caller, Role};
use crate::error::{ApiError, ApiResult};
use crate::events::{NewEvent, record};
use crate::extract::{ApiJson, ApiQuery, Page, list};
use crate::state::AppState;
use crate::util::{new_id, now_s, parse_id};

/// The organization owning a row of `table`, or 404 named `what`.
async fn org_of(state: &AppState, table: &str, id: &str, what: &str) -> ApiResult<String> {
    let row: Option<(String,)> = sqlx::query_as(sql!("SELECT org_id FROM {table} WHERE id = $1"))
        .bind(id)
        .fetch_optional(state.pool())
        .await?;
    row.map(|(o,)| o).ok_or_else(|| ApiError::not_found(what))
}

/// Loads an object's org and checks the caller's role there (404 when not a member).
async fn authorize(
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

// ---- groups ----

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
    sqlx::query("DELETE FROM group_locks WHERE group_id = $1")
        .bind(&id)
        .execute(state.pool())
        .await?;
    sqlx::query("DELETE FROM access_groups WHERE id = $1")
        .bind(&id)
        .execute(state.pool())
        .await?;
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
    let n = sqlx::query("DELETE FROM group_locks WHERE group_id = $1 AND lock_id = $2")
        .bind(&id)
        .bind(&lock)
        .execute(state.pool())
        .await?
        .rows_affected();
    if n == 0 {
        return Err(ApiError::not_found("group lock"));
    }
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

// ---- schedules ----

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct WindowSpec {
    /// "mon".."sun".
    pub days: Vec<String>,
    /// "HH:MM", local time of the lock's place.
    pub start: String,
    /// "HH:MM" (up to "24:00"), after `start`.
    pub end: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateSchedule {
    pub name: String,
    pub windows: Vec<WindowSpec>,
}

pub fn parse_minute(s: &str) -> Option<u16> {
    let (h, m) = s.split_once(':')?;
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    if h > 24 || m > 59 || (h == 24 && m != 0) || h.to_string().len() > 2 || m.to_string().len() > 2
    {
        return None;
    }
    Some(h * 60 + m)
}

fn fmt_minute(m: u16) -> String {
    format!("{:02}:{:02}", m / 60, m % 60)
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

pub fn to_window(spec: &WindowSpec) -> ApiResult<Window> {
    let mut mask = 0u8;
    for d in &spec.days {
        let i = DAYS
            .iter()
            .position(|x| x.eq_ignore_ascii_case(d))
            .ok_or_else(|| ApiError::invalid(format!("unknown day {d:?} (use mon..sun)")))?;
        mask |= 1 << i;
    }
    let start =
        parse_minute(&spec.start).ok_or_else(|| ApiError::invalid("start must be HH:MM"))?;
    let end = parse_minute(&spec.end).ok_or_else(|| ApiError::invalid("end must be HH:MM"))?;
    if mask == 0 || start >= end {
        return Err(ApiError::invalid("a window needs days and start < end"));
    }
    Ok(Window {
        weekdays: mask,
        start_minute: start,
        end_minute: end,
    })
}

fn window_spec(w: &Window) -> WindowSpec {
    WindowSpec {
        days: DAYS
            .iter()
            .enumerate()
            .filter(|(i, _)| w.weekdays & (1 << i) != 0)
            .map(|(_, d)| d.to_string())
            .collect(),
        start: fmt_minute(w.start_minute),
        end: fmt_minute(w.end_minute),
    }
}

fn schedule_json(id: &str, org: &str, name: &str, windows: &str) -> Value {
    let w: Vec<WindowSpec> = crate::access::parse_windows(windows)
        .iter()
        .map(window_spec)
        .collect();
    json!({"id": id, "org_id": org, "name": name, "windows": w})
}

pub async fn create_schedule(
    State(state): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    ApiJson(req): ApiJson<CreateSchedule>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let org = parse_id(&org, "organization")?;
    caller.require(&state, &org, Role::Admin).await?;
    let name = super::orgs::check_name(&req.name)?;
    if req.windows.is_empty() || req.windows.len() > keyway_protocol::credential::MAX_WINDOWS {
        return Err(ApiError::invalid("a schedule needs 1..8 windows"));
    }
    let windows = req
        .windows
        .iter()
        .map(to_window)
        .collect::<ApiResult<Vec<_>>>()?;
    let text = serde_json::to_string(&windows).map_err(anyhow::Error::from)?;
    let id = new_id(&state.rng);
    sqlx::query(
        "INSERT INTO schedules (id, org_id, name, windows, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&id)
    .bind(&org)
    .bind(name)
    .bind(&text)
    .bind(now_s())
    .execute(state.pool())
    .await?;
    record(
        &state,
        NewEvent::admin(
            &org,
            "schedule.created",
            &caller,
            json!({"schedule_id": id}),
        ),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(schedule_json(&id, &org, name, &text)),
    ))
}

pub async fn list_schedules(
    State(state): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    ApiQuery(page): ApiQuery<Page>,
) -> ApiResult<Json<Value>> {
    let org = parse_id(&org, "organization")?;
    caller.require(&state, &org, Role::Manager).await?;
    let (total,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM schedules WHERE org_id = $1")
        .bind(&org)
        .fetch_one(state.pool())
        .await?;
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT id, name, windows FROM schedules WHERE org_id = $1 ORDER BY name, id LIMIT $2 OFFSET $3",
    )
    .bind(&org)
    .bind(page.limit())
    .bind(page.offset())
    .fetch_all(state.pool())
    .await?;
    let items = rows
        .iter()
        .map(|(id, name, w)| schedule_json(id, &org, name, w))
        .collect();
    Ok(Json(list(items, total, page)))
}

pub async fn delete_schedule(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let (id, org) = authorize(&state, &caller, "schedules", &id, "schedule", Role::Admin).await?;
    let (n,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM role_assignments WHERE schedule_id = $1")
            .bind(&id)
            .fetch_one(state.pool())
            .await?;
    if n > 0 {
        return Err(ApiError::conflict(
            "the schedule is used by role assignments",
        ));
    }
    sqlx::query("DELETE FROM schedules WHERE id = $1")
        .bind(&id)
        .execute(state.pool())
        .await?;
    record(
        &state,
        NewEvent::admin(
            &org,
            "schedule.deleted",
            &caller,
            json!({"schedule_id": id}),
        ),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- role assignments ----

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

/// Managers may grant groups to members; only admins may grant to managers and admins.
pub async fn create_assignment(
    State(state): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    ApiJson(req): ApiJson<CreateAssignment>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let org = parse_id(&org, "organization")?;
    let my_role = caller.require(&state, &org, Role::Manager).await?;
    let user = parse_id(&req.user_id, "user")?;
    let target: Option<(String,)> =
        sqlx::query_as("SELECT role FROM memberships WHERE org_id = $1 AND user_id = $2")
            .bind(&org)
            .bind(&user)
            .fetch_optional(state.pool())
            .await?;
    let target = target
        .and_then(|(r,)| Role::parse(&r))
        .ok_or_else(|| ApiError::invalid("user_id is not a member of this organization"))?;
    if target >= my_role && my_role < Role::Admin {
        return Err(ApiError::forbidden());
    }
    let group = parse_id(&req.group_id, "group")?;
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
/// (they are re-issued from the remaining access on the next refresh).
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
    let (user,): (String,) = sqlx::query_as("SELECT user_id FROM role_assignments WHERE id = $1")
        .bind(&id)
        .fetch_one(state.pool())
        .await?;
    sqlx::query("DELETE FROM role_assignments WHERE id = $1")
        .bind(&id)
        .execute(state.pool())
        .await?;
    crate::orgkeys::revoke_credentials(&state, &org, "user_id", &user).await?;
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
