//! Multi-instance relay over PostgreSQL LISTEN/NOTIFY.
//!
//! Several server instances share one database; a controller holds a WebSocket with exactly
//! one of them. An unlock arriving at another instance is published on `keyway_command`;
//! the instance holding the controller forwards it through its [`Hub`] and publishes the
//! controller's answer on `keyway_result`, which completes the waiting request. Config and
//! revocation refreshes travel on `keyway_refresh` so every instance updates the controllers
//! it holds. Payloads are small JSON (commands carry no secrets).

use futures::future::BoxFuture;
use keyway_channel::{CloudCommand, CommandResult, ServerMessage};
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgListener;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

use crate::relay::{CommandRelay, Hub, RelayError, SessionMsg};

const COMMANDS: &str = "keyway_command";
const RESULTS: &str = "keyway_result";
const REFRESH: &str = "keyway_refresh";

#[derive(Debug, Serialize, Deserialize)]
struct CommandNote {
    controller: String,
    timeout_ms: u64,
    command: CloudCommand,
}

/// A refresh request shared between instances.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefreshNote {
    pub instance: String,
    pub org_id: Option<String>,
    pub controller: Option<String>,
    pub revocations_only: bool,
}

#[derive(Debug)]
pub struct PgRelay {
    hub: Arc<Hub>,
    pool: sqlx::AnyPool,
}

impl PgRelay {
    /// Starts the listener task and returns the relay plus a sender the hub uses to publish
    /// refreshes.
    pub fn start(
        hub: Arc<Hub>,
        pool: sqlx::AnyPool,
        url: String,
        instance: String,
    ) -> (Self, mpsc::UnboundedSender<RefreshNote>) {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(listen(hub.clone(), pool.clone(), url, instance, rx));
        (Self { hub, pool }, tx)
    }
}

async fn notify(pool: &sqlx::AnyPool, channel: &str, payload: &str) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(channel)
        .bind(payload)
        .execute(pool)
        .await
        .map(|_| ())
}

impl CommandRelay for PgRelay {
    fn deliver(
        &self,
        controller: String,
        command: CloudCommand,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<CommandResult, RelayError>> {
        Box::pin(async move {
            if self.hub.is_connected(&controller) {
                return crate::relay::InProcessRelay::new(self.hub.clone())
                    .deliver(controller, command, timeout)
                    .await;
            }
            // Not ours: only worth publishing when some instance says it is online.
            // An instance that died leaves `online` set; the heartbeat time tells.
            let fresh_since = crate::util::now_s() - 3 * keyway_channel::HEARTBEAT_SECS as i64 - 5;
            let online: Option<(i64,)> = sqlx::query_as(
                "SELECT online FROM controllers WHERE id = $1 AND last_seen_at > $2",
            )
            .bind(&controller)
            .bind(fresh_since)
            .fetch_optional(&self.pool)
            .await
            .map_err(|_| RelayError::Offline)?;
            if online.is_none_or(|(o,)| o == 0) {
                return Err(RelayError::Offline);
            }
            let id = command.command_id;
            let note = CommandNote {
                controller,
                timeout_ms: timeout.as_millis() as u64,
                command,
            };
            let payload = serde_json::to_string(&note).map_err(|_| RelayError::Offline)?;
            // `Offline` only while nothing can have been sent: before the NOTIFY statement
            // has a connection. Once it is sent, a failure (the connection broke before the
            // answer) may come after the commit that delivered it, so wait for the result.
            let Ok(mut conn) = self.pool.acquire().await else {
                return Err(RelayError::Offline);
            };
            let rx = self.hub.wait_for(id);
            if let Err(e) = sqlx::query("SELECT pg_notify($1, $2)")
                .bind(COMMANDS)
                .bind(&payload)
                .execute(&mut *conn)
                .await
            {
                tracing::warn!(error = %e, "publishing a command failed; it may have gone out");
            }
            drop(conn);
            match tokio::time::timeout(timeout, rx).await {
                Ok(Ok(result)) => Ok(result),
                _ => {
                    self.hub.forget(id);
                    Err(RelayError::Timeout)
                }
            }
        })
    }
}

async fn listen(
    hub: Arc<Hub>,
    pool: sqlx::AnyPool,
    url: String,
    instance: String,
    mut refreshes: mpsc::UnboundedReceiver<RefreshNote>,
) {
    loop {
        let mut listener = match PgListener::connect(&url).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "relay listener connect failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if let Err(e) = listener.listen_all([COMMANDS, RESULTS, REFRESH]).await {
            tracing::warn!(error = %e, "relay listen failed");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        hub.set_listening(true);
        loop {
            tokio::select! {
                note = listener.recv() => {
                    let Ok(note) = note else { break };
                    handle(&hub, &pool, &instance, note.channel(), note.payload());
                }
                out = refreshes.recv() => {
                    let Some(mut out) = out else { return };
                    out.instance = instance.clone();
                    if let Ok(p) = serde_json::to_string(&out) {
                        let _ = notify(&pool, REFRESH, &p).await;
                    }
                }
            }
        }
        hub.set_listening(false);
    }
}

fn handle(hub: &Arc<Hub>, pool: &sqlx::AnyPool, instance: &str, channel: &str, payload: &str) {
    match channel {
        COMMANDS => {
            let Ok(note) = serde_json::from_str::<CommandNote>(payload) else {
                return;
            };
            if !hub.is_connected(&note.controller) {
                return;
            }
            let rx = hub.wait_for(note.command.command_id);
            let id = note.command.command_id;
            hub.send(
                &note.controller,
                SessionMsg::Send(ServerMessage::Command {
                    command: note.command,
                }),
            );
            let pool = pool.clone();
            let hub = hub.clone();
            tokio::spawn(async move {
                let wait = Duration::from_millis(note.timeout_ms.min(60_000));
                match tokio::time::timeout(wait, rx).await {
                    Ok(Ok(result)) => {
                        if let Ok(p) = serde_json::to_string(&result) {
                            let _ = notify(&pool, RESULTS, &p).await;
                        }
                    }
                    _ => hub.forget(id),
                }
            });
        }
        RESULTS => {
            if let Ok(result) = serde_json::from_str::<CommandResult>(payload) {
                hub.complete(result);
            }
        }
        REFRESH => {
            let Ok(note) = serde_json::from_str::<RefreshNote>(payload) else {
                return;
            };
            if note.instance == instance {
                return;
            }
            if let Some(org) = &note.org_id {
                hub.refresh_org_local(org, note.revocations_only);
            }
            if let Some(c) = &note.controller {
                hub.send(c, SessionMsg::RefreshConfig);
            }
        }
        _ => {}
    }
}
