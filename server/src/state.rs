//! Shared application state handed to every handler.

use ring::rand::SystemRandom;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

use crate::auth::Throttle;
use crate::db::Db;
use crate::metrics::Metrics;
use crate::relay::{CommandRelay, Hub};

/// Tunables; the defaults are production values, tests shorten the waits.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How long a cloud unlock waits for the controller's result.
    pub unlock_timeout: Duration,
    pub session_ttl_secs: i64,
    /// Longest offline credential lifetime.
    pub credential_ttl_secs: i64,
    /// Base for invite links.
    pub public_url: String,
    pub webhook_retry_base_ms: i64,
    pub webhook_max_attempts: i64,
    /// Consecutive failed deliveries after which a webhook is disabled.
    pub webhook_disable_after: i64,
    pub login_failures_per_account: u32,
    pub login_failures_per_ip: u32,
    /// Cloud unlocks per user per 10 s window.
    pub unlocks_per_window: u32,
    /// Authenticated requests per caller (session or API key) per second.
    pub requests_per_second: u32,
    pub max_body_bytes: usize,
    /// Silence after which a controller session is dropped (three missed heartbeats).
    pub controller_silence: Duration,
    /// Encrypts organization signing keys at rest (AES-256-GCM) when set.
    pub key_encryption_key: Option<[u8; 32]>,
    /// Let webhooks reach loopback and private addresses (development and tests only; see
    /// `egress`).
    pub webhook_allow_private: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            unlock_timeout: Duration::from_secs(5),
            session_ttl_secs: 30 * 86_400,
            credential_ttl_secs: 24 * 3600,
            public_url: "http://localhost:8080".into(),
            webhook_retry_base_ms: 2_000,
            webhook_max_attempts: 8,
            webhook_disable_after: 20,
            login_failures_per_account: 5,
            login_failures_per_ip: 50,
            unlocks_per_window: 100,
            requests_per_second: 200,
            max_body_bytes: 64 * 1024,
            controller_silence: Duration::from_secs(keyway_channel::HEARTBEAT_SECS * 3),
            key_encryption_key: None,
            webhook_allow_private: false,
        }
    }
}

#[derive(Debug)]
pub struct Inner {
    pub db: Db,
    pub rng: SystemRandom,
    pub settings: Settings,
    pub hub: Arc<Hub>,
    pub relay: Arc<dyn CommandRelay>,
    pub throttle: Throttle,
    pub metrics: Metrics,
    pub webhook_wake: Notify,
    /// Organizations' active signing keys for cloud commands (`orgkeys::signing_key`).
    pub signing_keys: std::sync::Mutex<
        std::collections::HashMap<String, (std::time::Instant, Arc<keyway_protocol::SigningKey>)>,
    >,
}

#[derive(Debug, Clone)]
pub struct AppState(pub Arc<Inner>);

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    pub fn new(db: Db, settings: Settings) -> Self {
        let hub = Arc::new(Hub::default());
        // On PostgreSQL several instances may share the database: relay through NOTIFY.
        let relay: Arc<dyn CommandRelay> = if db.backend == crate::db::Backend::Postgres {
            let instance = crate::util::new_id(&SystemRandom::new());
            let (relay, tx) = crate::pg_relay::PgRelay::start(
                hub.clone(),
                db.pool.clone(),
                db.url.clone(),
                instance,
            );
            hub.set_broadcast(tx);
            Arc::new(relay)
        } else {
            Arc::new(crate::relay::InProcessRelay::new(hub.clone()))
        };
        Self(Arc::new(Inner {
            db,
            rng: SystemRandom::new(),
            settings,
            hub,
            relay,
            throttle: Throttle::default(),
            metrics: Metrics::default(),
            webhook_wake: Notify::new(),
            signing_keys: Default::default(),
        }))
    }

    pub fn pool(&self) -> &crate::db::Pool {
        &self.db.pool
    }
}
