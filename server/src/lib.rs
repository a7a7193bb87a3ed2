//! # keyway-server
//!
//! The companion cloud service: the system of record for who may open which door when.
//!
//! Where to start reading:
//! - [`app`]: builds the router and background tasks; [`serve`] runs them on a socket.
//! - [`api`]: one module per resource; [`api::locks::unlock`] is the cloud unlock, the
//!   heart of the service, and [`access`] the one access decision everything shares.
//! - [`channel`]: the controller WebSocket session (`keyway-channel` messages); [`relay`]
//!   the seam that delivers cloud commands to controllers, [`pg_relay`] its multi-instance
//!   form over PostgreSQL LISTEN/NOTIFY.
//! - [`db`]: storage over SQLite or PostgreSQL with one set of portable queries.
//! - [`events`] and [`webhooks`]: the audit log and its signed, durable fan-out.
//! - [`orgkeys`]: organization signing keys, rotation and revocation lists.
//! - [`cli`] and [`seed`]: the `keyway-server` binary (`serve`, `create-org`, `seed-demo`).

// Row tuples read straight from SQL are clearer inline than as aliases.
#![allow(clippy::type_complexity)]

/// `format!` for SQL built only from this crate's constants (never from input).
#[macro_export]
macro_rules! sql {
    ($($t:tt)*) => { sqlx::AssertSqlSafe(format!($($t)*)) };
}

pub mod access;
pub mod api;
pub mod auth;
pub mod channel;
pub mod cli;
pub mod db;
pub mod egress;
pub mod error;
pub mod events;
pub mod extract;
pub mod login_limits;
pub mod metrics;
pub mod openapi;
pub mod orgkeys;
pub mod pg_relay;
pub mod relay;
pub mod seed;
pub mod state;
pub mod tls;
pub mod util;
pub mod webhooks;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::net::SocketAddr;

pub use state::{AppState, Settings};

use crate::error::ApiError;

/// The full HTTP application for `state`.
pub fn app(state: AppState) -> Router {
    let limit = state.settings.max_body_bytes;
    Router::new()
        .nest("/api/v1", api::router())
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ))
        .with_state(state)
}

async fn count_requests(State(state): State<AppState>, req: Request, next: Next) -> Response {
    metrics::Metrics::inc(&state.metrics.http_requests);
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let res = next.run(req).await;
    // Paths carry ids, never secrets; query strings are not logged.
    tracing::debug!(%method, %path, status = res.status().as_u16(), "request");
    res
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "invalid_request",
        "method not allowed on this endpoint",
    )
}

async fn healthz(State(state): State<AppState>) -> Response {
    match sqlx::query("SELECT 1").execute(state.pool()).await {
        Ok(_) => (
            StatusCode::OK,
            axum::Json(serde_json::json!({"status": "ok"})),
        )
            .into_response(),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({"status": "database unavailable"})),
        )
            .into_response(),
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(state.hub.connected_count()),
    )
        .into_response()
}

/// A started server: its address and the task running it.
#[derive(Debug)]
pub struct Running {
    pub addr: SocketAddr,
    pub state: AppState,
    pub handle: tokio::task::JoinHandle<()>,
}

/// Binds `listen`, starts background workers and serves until the task is dropped/aborted.
pub async fn serve(state: AppState, listen: &str) -> anyhow::Result<Running> {
    serve_with(state, listen, None).await
}

/// [`serve`], over TLS when `tls` is given (HTTPS, and WSS for controllers).
pub async fn serve_with(
    state: AppState,
    listen: &str,
    tls: Option<std::sync::Arc<rustls::ServerConfig>>,
) -> anyhow::Result<Running> {
    use axum::serve::ListenerExt;
    use futures::FutureExt;

    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    // A single SQLite instance: controllers marked online by a previous process are not
    // connected any more. (On PostgreSQL other instances may hold them.)
    if state.db.backend == db::Backend::Sqlite {
        sqlx::query("UPDATE controllers SET online = 0 WHERE online = 1")
            .execute(state.pool())
            .await?;
    }
    let endorsed = orgkeys::backfill_endorsements(&state)
        .await
        .map_err(|e| anyhow::anyhow!("endorsing older organization keys: {}", e.message))?;
    if endorsed > 0 {
        tracing::info!(
            endorsed,
            "endorsed organization keys rotated before endorsements"
        );
    }
    let router = app(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    // `tap_io` also gives the TLS listener axum's `ConnectInfo<SocketAddr>`, which the rate
    // limits key on.
    let serving = match tls {
        None => {
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            async move { axum::serve(listener, router).await }.boxed()
        }
        Some(config) => {
            let listener = tls::TlsListener::new(listener, config)?.tap_io(|_| {});
            async move { axum::serve(listener, router).await }.boxed()
        }
    };
    let worker = tokio::spawn(webhooks::worker(state.clone()));
    let handle = tokio::spawn(async move {
        let result = serving.await;
        worker.abort();
        if let Err(e) = result {
            tracing::error!(error = %e, "server stopped");
        }
    });
    tracing::info!(%addr, "keyway-server listening");
    Ok(Running {
        addr,
        state,
        handle,
    })
}
