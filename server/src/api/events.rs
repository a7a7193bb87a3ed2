//! `GET /orgs/{org}/events` (filters, cursor pagination, newest first) and the CSV export.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::{Caller, Role};
use crate::error::{ApiError, ApiResult};
use crate::events::{EVENT_COLUMNS, event_json};
use crate::extract::ApiQuery;
use crate::state::AppState;
use crate::util::parse_id;

#[derive(Debug, Deserialize)]
pub struct EventQuery {
    /// Unix seconds, inclusive.
    #[serde(default, deserialize_with = "crate::extract::de_non_negative")]
    pub since: Option<i64>,
    /// Unix seconds, exclusive.
    #[serde(default, deserialize_with = "crate::extract::de_non_negative")]
    pub until: Option<i64>,
    pub lock: Option<String>,
    pub place: Option<String>,
    pub actor: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub success: Option<bool>,
    /// `next_cursor` of the previous page.
    #[serde(default, deserialize_with = "crate::extract::de_non_negative")]
    pub cursor: Option<i64>,
    #[serde(default, deserialize_with = "crate::extract::de_limit")]
    pub limit: Option<i64>,
}

enum Bind {
    Text(String),
    Int(i64),
}

fn filters(org: &str, q: &EventQuery, with_cursor: bool) -> ApiResult<(String, Vec<Bind>)> {
    let mut sql = String::from("WHERE org_id = $1");
    let mut binds = vec![Bind::Text(org.to_owned())];
    let push = |cond: &str, b: Bind, binds: &mut Vec<Bind>, sql: &mut String| {
        binds.push(b);
        sql.push_str(&format!(" AND {cond} ${}", binds.len()));
    };
    if let Some(s) = q.since {
        push(
            "at_ms >=",
            Bind::Int(s.saturating_mul(1000)),
            &mut binds,
            &mut sql,
        );
    }
    if let Some(u) = q.until {
        push(
            "at_ms <",
            Bind::Int(u.saturating_mul(1000)),
            &mut binds,
            &mut sql,
        );
    }
    if let Some(l) = &q.lock {
        push(
            "lock_id =",
            Bind::Text(parse_id(l, "lock")?),
            &mut binds,
            &mut sql,
        );
    }
    if let Some(p) = &q.place {
        push(
            "place_id =",
            Bind::Text(parse_id(p, "place")?),
            &mut binds,
            &mut sql,
        );
    }
    if let Some(a) = &q.actor {
        push(
            "actor_id =",
            Bind::Text(parse_id(a, "actor")?),
            &mut binds,
            &mut sql,
        );
    }
    if let Some(t) = &q.kind {
        if t.len() > 100 {
            return Err(ApiError::invalid("type too long"));
        }
        push("type =", Bind::Text(t.clone()), &mut binds, &mut sql);
    }
    if let Some(s) = q.success {
        push("success =", Bind::Int(i64::from(s)), &mut binds, &mut sql);
    }
    if with_cursor && let Some(c) = q.cursor {
        push("seq <", Bind::Int(c), &mut binds, &mut sql);
    }
    Ok((sql, binds))
}

async fn fetch(state: &AppState, org: &str, q: &EventQuery, limit: i64) -> ApiResult<Vec<Value>> {
    let (filter, binds) = filters(org, q, true)?;
    let sql =
        format!("SELECT {EVENT_COLUMNS} FROM events {filter} ORDER BY seq DESC LIMIT {limit}");
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for b in binds {
        query = match b {
            Bind::Text(s) => query.bind(s),
            Bind::Int(i) => query.bind(i),
        };
    }
    let rows = query.fetch_all(state.pool()).await?;
    Ok(rows.iter().map(event_json).collect::<Result<Vec<_>, _>>()?)
}

pub async fn list_events(
    State(state): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    ApiQuery(q): ApiQuery<EventQuery>,
) -> ApiResult<Json<Value>> {
    let org = parse_id(&org, "organization")?;
    caller.require(&state, &org, Role::Manager).await?;
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    let items = fetch(&state, &org, &q, limit).await?;
    let (filter, binds) = filters(&org, &q, false)?;
    let count_sql = format!("SELECT COUNT(*) FROM events {filter}");
    let mut count = sqlx::query_as::<_, (i64,)>(sqlx::AssertSqlSafe(count_sql));
    for b in binds {
        count = match b {
            Bind::Text(s) => count.bind(s),
            Bind::Int(i) => count.bind(i),
        };
    }
    let (total,) = count.fetch_one(state.pool()).await?;
    let next_cursor = if items.len() as i64 == limit {
        items.last().and_then(|e| e["seq"].as_i64())
    } else {
        None
    };
    Ok(Json(
        json!({"items": items, "total": total, "limit": limit, "next_cursor": next_cursor}),
    ))
}

fn csv_field(v: &Value) -> String {
    let s = match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    // Quote, and defuse spreadsheet formulas.
    let s = if s.starts_with(['=', '+', '-', '@']) && s.parse::<f64>().is_err() {
        format!("'{s}")
    } else {
        s
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

pub async fn export_csv(
    State(state): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    ApiQuery(q): ApiQuery<EventQuery>,
) -> ApiResult<Response> {
    let org = parse_id(&org, "organization")?;
    caller.require(&state, &org, Role::Manager).await?;
    let limit = q.limit.unwrap_or(10_000).clamp(1, 100_000);
    let items = fetch(&state, &org, &q, limit).await?;
    let cols = [
        "seq",
        "id",
        "at",
        "type",
        "actor_kind",
        "actor_id",
        "lock_id",
        "place_id",
        "method",
        "success",
        "reason",
        "controller_id",
        "controller_seq",
    ];
    let mut out = cols.join(",");
    out.push('\n');
    for e in &items {
        let line: Vec<String> = cols.iter().map(|c| csv_field(&e[*c])).collect();
        out.push_str(&line.join(","));
        out.push('\n');
    }
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"events.csv\"",
            ),
        ],
        out,
    )
        .into_response())
}
