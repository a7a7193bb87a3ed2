//! Request extractors that turn every rejection into a JSON error with a stable code.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// `axum::Json` with 400 `invalid_request` / 413 `payload_too_large` rejections.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(r: JsonRejection) -> ApiError {
    if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "request body too large",
        );
    }
    match r {
        JsonRejection::MissingJsonContentType(_) => {
            ApiError::invalid("expected Content-Type: application/json")
        }
        other => ApiError::invalid(other.body_text()),
    }
}

/// `axum::extract::Query` with a 400 `invalid_request` rejection.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(ApiQuery(v)),
            Err(r) => Err(query_rejection(r)),
        }
    }
}

fn query_rejection(r: QueryRejection) -> ApiError {
    ApiError::invalid(r.body_text())
}

/// `limit`/`offset` pagination parameters.
#[derive(Debug, Clone, Copy, serde::Deserialize)]
pub struct Page {
    #[serde(default, deserialize_with = "de_limit")]
    pub limit: Option<i64>,
    #[serde(default, deserialize_with = "de_offset")]
    pub offset: Option<i64>,
}

fn ranged<'de, D: serde::Deserializer<'de>>(
    d: D,
    range: std::ops::RangeInclusive<i64>,
    what: &str,
) -> Result<Option<i64>, D::Error> {
    let v = Option::<i64>::deserialize(d)?;
    match v {
        Some(x) if !range.contains(&x) => Err(serde::de::Error::custom(format!(
            "{what} must be {}..{}",
            range.start(),
            range.end()
        ))),
        _ => Ok(v),
    }
}

pub fn de_limit<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    ranged(d, 1..=500, "limit")
}

pub fn de_offset<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    ranged(d, 0..=1_000_000_000, "offset")
}

/// Unix seconds or an event cursor: never negative.
pub fn de_non_negative<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    ranged(d, 0..=i64::MAX, "value")
}

impl Page {
    pub fn limit(&self) -> i64 {
        self.limit.unwrap_or(50).clamp(1, 500)
    }
    pub fn offset(&self) -> i64 {
        self.offset.unwrap_or(0).max(0)
    }
}

/// The list envelope: `{items, total, limit, offset}`.
pub fn list<T: serde::Serialize>(items: Vec<T>, total: i64, page: Page) -> serde_json::Value {
    serde_json::json!({
        "items": items,
        "total": total,
        "limit": page.limit(),
        "offset": page.offset(),
    })
}

/// For PATCH-like bodies: absent → `None`, `null` → `Some(None)`, value → `Some(Some(v))`.
pub fn double_option<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    Ok(Some(Option::<T>::deserialize(d)?))
}

use serde::Deserialize as _;
