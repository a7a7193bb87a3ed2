//! The OpenAPI 3 document, checked in as `server/openapi.json` and served at
//! `/api/v1/openapi.json`.

use axum::http::header;
use axum::response::{IntoResponse, Response};

pub const DOCUMENT: &str = include_str!("../openapi.json");

pub async fn serve() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT).into_response()
}
