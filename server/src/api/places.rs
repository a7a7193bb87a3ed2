//! Places: a site with a time zone (schedules are evaluated in it) and a location.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::Row;

use crate::auth::{Caller, Role};
use crate::error::{ApiError, ApiResult};
use crate::events::{NewEvent, record};
use crate::extract::{ApiJson, ApiQuery, Page, double_option, list};
use crate::state::AppState;
use crate::util::{new_id, now_s, parse_id};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreatePlace {
    pub name: String,
    pub time_zone: String,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdatePlace {
    pub name: Option<String>,
    pub time_zone: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    pub latitude: Option<Option<f64>>,
    #[serde(default, deserialize_with = "double_option")]
    pub longitude: Option<Option<f64>>,
}

fn check_tz(tz: &str) -> ApiResult<()> {
    tz.parse::<chrono_tz::Tz>()
        .map(|_| ())
        .map_err(|_| ApiError::invalid("time_zone must be an IANA time zone name"))
}

fn check_location(lat: Option<f64>, lon: Option<f64>) -> ApiResult<()> {
    if lat.is_some() != lon.is_some() {
        return Err(ApiError::invalid(
            "give both latitude and longitude or neither",
        ));
    }
    if lat.is_some_and(|v| !(-90.0..=90.0).contains(&v))
        || lon.is_some_and(|v| !(-180.0..=180.0).contains(&v))
    {
        return Err(ApiError::invalid("latitude/longitude out of range"));
    }
    Ok(())
}

const PLACE_COLS: &str = "id, org_id, name, time_zone, latitude, longitude, lockdown, created_at";

fn place_json(r: &sqlx::any::AnyRow) -> Result<Value, sqlx::Error> {
    Ok(json!({
        "id": r.try_get::<String, _>("id")?,
        "org_id": r.try_get::<String, _>("org_id")?,
        "name": r.try_get::<String, _>("name")?,
        "time_zone": r.try_get::<String, _>("time_zone")?,
        "latitude": r.try_get::<Option<f64>, _>("latitude")?,
        "longitude": r.try_get::<Option<f64>, _>("longitude")?,
        "lockdown": r.try_get::<i64, _>("lockdown")? != 0,
        "created_at": r.try_get::<i64, _>("created_at")?,
    }))
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    ApiJson(req): ApiJson<CreatePlace>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let org = parse_id(&org, "organization")?;
    caller.require(&state, &org, Role::Admin).await?;
    let name = super::orgs::check_name(&req.name)?;
    check_tz(&req.time_zone)?;
    check_location(req.latitude, req.longitude)?;
    let id = new_id(&state.rng);
    sqlx::query(
        "INSERT INTO places (id, org_id, name, time_zone, latitude, longitude, created_at) \
         VALUES ($1, $2, $3, $4, CAST($5 AS DOUBLE PRECISION), CAST($6 AS DOUBLE PRECISION), $7)",
    )
    .bind(&id)
    .bind(&org)
    .bind(name)
    .bind(&req.time_zone)
    .bind(crate::util::f64_text(req.latitude))
    .bind(crate::util::f64_text(req.longitude))
    .bind(now_s())
    .execute(state.pool())
    .await?;
    record(
        &state,
        NewEvent::admin(&org, "place.created", &caller, json!({"place_id": id})),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(load(&state, &id).await?)))
}

async fn load(state: &AppState, id: &str) -> ApiResult<Value> {
    let row = sqlx::query(sql!("SELECT {PLACE_COLS} FROM places WHERE id = $1"))
        .bind(id)
        .fetch_optional(state.pool())
        .await?
        .ok_or_else(|| ApiError::not_found("place"))?;
    Ok(place_json(&row)?)
}

/// The org of a place, or 404.
pub async fn place_org(state: &AppState, id: &str) -> ApiResult<String> {
    let row: Option<(String,)> = sqlx::query_as("SELECT org_id FROM places WHERE id = $1")
        .bind(id)
        .fetch_optional(state.pool())
        .await?;
    row.map(|(o,)| o)
        .ok_or_else(|| ApiError::not_found("place"))
}

pub async fn list_places(
    State(state): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    ApiQuery(page): ApiQuery<Page>,
) -> ApiResult<Json<Value>> {
    let org = parse_id(&org, "organization")?;
    let role = caller.role_in(&state, &org).await?;
    let rows = sqlx::query(sql!(
        "SELECT {PLACE_COLS} FROM places WHERE org_id = $1 ORDER BY name, id"
    ))
    .bind(&org)
    .fetch_all(state.pool())
    .await?;
    // Members and guests see the places of the locks they may open.
    let visible: Option<Vec<String>> = if role >= Role::Manager {
        None
    } else {
        let user = caller.require_user()?;
        let grants = crate::access::openable_locks(&state, &org, user, role, now_s()).await?;
        Some(grants.into_iter().map(|g| g.place_id).collect())
    };
    let mut items = Vec::new();
    for r in &rows {
        let id: String = r.try_get("id")?;
        if visible.as_ref().is_none_or(|v| v.contains(&id)) {
            items.push(place_json(r)?);
        }
    }
    let total = items.len() as i64;
    let items = items
        .into_iter()
        .skip(page.offset() as usize)
        .take(page.limit() as usize)
        .collect();
    Ok(Json(list(items, total, page)))
}

pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let id = parse_id(&id, "place")?;
    let org = place_org(&state, &id).await?;
    caller.require(&state, &org, Role::Member).await?;
    Ok(Json(load(&state, &id).await?))
}

pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UpdatePlace>,
) -> ApiResult<Json<Value>> {
    let id = parse_id(&id, "place")?;
    let org = place_org(&state, &id).await?;
    caller.require(&state, &org, Role::Admin).await?;
    let current = load(&state, &id).await?;
    let name = match &req.name {
        Some(n) => super::orgs::check_name(n)?.to_owned(),
        None => current["name"].as_str().unwrap_or_default().to_owned(),
    };
    let tz = match &req.time_zone {
        Some(tz) => {
            check_tz(tz)?;
            tz.clone()
        }
        None => current["time_zone"].as_str().unwrap_or_default().to_owned(),
    };
    let lat = req.latitude.unwrap_or(current["latitude"].as_f64());
    let lon = req.longitude.unwrap_or(current["longitude"].as_f64());
    check_location(lat, lon)?;
    sqlx::query(
        "UPDATE places SET name = $1, time_zone = $2, latitude = CAST($3 AS DOUBLE PRECISION), \
         longitude = CAST($4 AS DOUBLE PRECISION) WHERE id = $5",
    )
    .bind(&name)
    .bind(&tz)
    .bind(crate::util::f64_text(lat))
    .bind(crate::util::f64_text(lon))
    .bind(&id)
    .execute(state.pool())
    .await?;
    record(
        &state,
        NewEvent::admin(&org, "place.updated", &caller, json!({"place_id": id})),
    )
    .await?;
    state.hub.refresh_org(&org, false);
    Ok(Json(load(&state, &id).await?))
}

pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = parse_id(&id, "place")?;
    let org = place_org(&state, &id).await?;
    caller.require(&state, &org, Role::Admin).await?;
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM locks WHERE place_id = $1")
        .bind(&id)
        .fetch_one(state.pool())
        .await?;
    if n > 0 {
        return Err(ApiError::conflict("delete the place's locks first"));
    }
    sqlx::query("DELETE FROM places WHERE id = $1")
        .bind(&id)
        .execute(state.pool())
        .await?;
    record(
        &state,
        NewEvent::admin(&org, "place.deleted", &caller, json!({"place_id": id})),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lockdown {
    pub lockdown: bool,
}

/// Managers and up may put a whole place in lockdown (and lift it).
pub async fn lockdown(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<Lockdown>,
) -> ApiResult<Json<Value>> {
    let id = parse_id(&id, "place")?;
    let org = place_org(&state, &id).await?;
    caller.require(&state, &org, Role::Manager).await?;
    sqlx::query("UPDATE places SET lockdown = $1 WHERE id = $2")
        .bind(i64::from(req.lockdown))
        .bind(&id)
        .execute(state.pool())
        .await?;
    let kind = if req.lockdown {
        "place.lockdown_started"
    } else {
        "place.lockdown_ended"
    };
    let mut ev = NewEvent::admin(&org, kind, &caller, json!({}));
    ev.place_id = Some(id.clone());
    record(&state, ev).await?;
    state.hub.refresh_org(&org, false);
    Ok(Json(load(&state, &id).await?))
}
