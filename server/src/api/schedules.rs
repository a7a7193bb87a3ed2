//! Weekly schedules: windows of weekdays and local times, evaluated in the time zone of the
//! lock's place.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use keyway_protocol::credential::Window;
use serde::Deserialize;
use serde_json::{Value, json};

use super::groups::authorize;
use crate::auth::{Caller, Role};
use crate::error::{ApiError, ApiResult};
use crate::events::{NewEvent, record};
use crate::extract::{ApiJson, ApiQuery, Page, list};
use crate::state::AppState;
use crate::util::{new_id, now_s, parse_id};

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
