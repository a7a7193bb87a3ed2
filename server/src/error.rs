//! The public error at the API edge: an HTTP status, a stable machine code and a message.
//! Internal failures are logged (without secrets) and surface as `internal` 500s.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use keyway_protocol::Reason;
use serde_json::json;

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or invalid credentials",
        )
    }
    pub fn forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "your role does not allow this",
        )
    }
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }
    pub fn rate_limited() -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            Reason::RateLimited.message(),
        )
    }
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal server error",
        )
    }
    /// An access denial with the shared reason vocabulary.
    pub fn denied(reason: Reason) -> Self {
        let status = match reason {
            Reason::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Reason::DoorOffline | Reason::NotConfigured => StatusCode::CONFLICT,
            // The command reached the door, or may have, and no answer came: not a refusal.
            Reason::Unconfirmed => StatusCode::GATEWAY_TIMEOUT,
            _ => StatusCode::FORBIDDEN,
        };
        Self::new(status, reason.code(), reason.message())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message}});
        (self.status, Json(body)).into_response()
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &e
            && db.is_unique_violation()
        {
            return ApiError::conflict("an object with these values already exists");
        }
        tracing::error!(error = %e, "database error");
        ApiError::internal()
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        tracing::error!(error = %e, "internal error");
        ApiError::internal()
    }
}

impl From<keyway_protocol::CryptoError> for ApiError {
    fn from(e: keyway_protocol::CryptoError) -> Self {
        tracing::error!(error = %e, "crypto error");
        ApiError::internal()
    }
}
