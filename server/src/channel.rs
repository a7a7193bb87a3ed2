//! The server side of the controller channel (`GET /api/v1/controllers/connect`), exactly as
//! the `keyway-channel` crate doc describes: challenge → hello (signature with the key
//! registered at provisioning) → welcome, config, revocations; then time requests, commands
//! and results, event upload with de-duplication by (controller, seq), heartbeats.

use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use keyway_channel::{
    CHANNEL_VERSION, ControllerConfig, ControllerMessage, DoorEvent, DoorEventKind, LockConfig,
    MAX_FRAME_BYTES, Method, ServerMessage, auth_message,
};
use keyway_protocol::certificate::{ControllerCertificate, MAX_CERT_LOCKS};
use keyway_protocol::door_trust::ConfigSeal;
use keyway_protocol::keys::SIGNATURE_LEN;
use keyway_protocol::time::TimeStatement;
use keyway_protocol::{Id, PublicKey, Signature};
use std::time::Duration;
use tokio::sync::mpsc;

use crate::access::{LOCK_SELECT, lock_from_row};
use crate::error::ApiResult;
use crate::events::{NewEvent, record};
use crate::metrics::Metrics;
use crate::orgkeys;
use crate::relay::SessionMsg;
use crate::state::AppState;
use crate::util::{now_ms, now_s, pid, random_bytes};

const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// Certificates outlive a config push comfortably; controllers get a fresh one on reconnect.
const CERT_VALIDITY_SECS: i64 = 30 * 86_400;

pub async fn connect(
    State(state): State<AppState>,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let Ok(ws) = ws else {
        return crate::error::ApiError::invalid("expected a WebSocket upgrade").into_response();
    };
    // Small buffers: an idle controller connection should cost kilobytes, not the 128 KiB
    // per direction tungstenite defaults to (10,000 controllers per instance).
    ws.max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .on_upgrade(move |socket| async move {
            if let Err(e) = session(state, socket).await {
                tracing::debug!(error = %e, "controller session ended");
            }
        })
}

async fn send(socket: &mut WebSocket, msg: &ServerMessage) -> anyhow::Result<()> {
    let text = serde_json::to_string(msg)?;
    socket.send(Message::Text(text.into())).await?;
    Ok(())
}

async fn send_error(socket: &mut WebSocket, code: &str, message: &str) {
    let _ = send(
        socket,
        &ServerMessage::Error {
            code: code.into(),
            message: message.into(),
        },
    )
    .await;
    let _ = socket.send(Message::Close(None)).await;
}

/// Reads the next text frame, answering pings; `None` on close.
async fn next_text(socket: &mut WebSocket) -> Option<String> {
    loop {
        match socket.recv().await? {
            Ok(Message::Text(t)) => return Some(t.to_string()),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}

async fn session(state: AppState, mut socket: WebSocket) -> anyhow::Result<()> {
    let nonce: [u8; 32] = random_bytes(&state.rng);
    send(
        &mut socket,
        &ServerMessage::Challenge {
            nonce: hex::encode(nonce),
        },
    )
    .await?;
    let Ok(Some(text)) = tokio::time::timeout(HELLO_TIMEOUT, next_text(&mut socket)).await else {
        send_error(&mut socket, "unauthorized", "no hello").await;
        return Ok(());
    };
    let Ok(ControllerMessage::Hello {
        controller,
        version,
        signature,
    }) = serde_json::from_str::<ControllerMessage>(&text)
    else {
        send_error(&mut socket, "invalid_request", "expected hello").await;
        return Ok(());
    };
    if version != CHANNEL_VERSION {
        send_error(
            &mut socket,
            "unsupported_version",
            "unsupported channel version",
        )
        .await;
        return Ok(());
    }
    let controller_id = controller.to_uuid_string();
    let row: Option<(String, Option<String>)> =
        sqlx::query_as("SELECT org_id, public_key FROM controllers WHERE id = $1")
            .bind(&controller_id)
            .fetch_optional(state.pool())
            .await?;
    let authentic = match &row {
        Some((_, Some(key_hex))) => verify_hello(key_hex, &nonce, controller, &signature),
        _ => false,
    };
    let Some((org_id, _)) = row.filter(|_| authentic) else {
        tracing::info!("controller authentication failed");
        send_error(
            &mut socket,
            "unauthorized",
            "controller authentication failed",
        )
        .await;
        return Ok(());
    };

    let (tx, mut rx) = mpsc::unbounded_channel();
    let conn = state.hub.register(&controller_id, &org_id, tx);
    set_online(&state, &controller_id, true).await;
    tracing::info!(controller = %controller_id, "controller connected");
    let result = run(
        &state,
        &mut socket,
        &org_id,
        &controller_id,
        controller,
        &mut rx,
    )
    .await;
    if state.hub.unregister(&controller_id, conn) {
        set_online(&state, &controller_id, false).await;
    }
    tracing::info!(controller = %controller_id, "controller disconnected");
    result
}

fn verify_hello(key_hex: &str, nonce: &[u8; 32], controller: Id, signature: &str) -> bool {
    let Ok(key_raw) = hex::decode(key_hex) else {
        return false;
    };
    let Ok(key) = PublicKey::from_slice(&key_raw) else {
        return false;
    };
    let mut sig = [0u8; SIGNATURE_LEN];
    if hex::decode_to_slice(signature, &mut sig).is_err() {
        return false;
    }
    key.verify(&auth_message(nonce, controller), &Signature(sig))
}

async fn set_online(state: &AppState, controller: &str, online: bool) {
    let _ = sqlx::query("UPDATE controllers SET online = $1, last_seen_at = $2 WHERE id = $3")
        .bind(i64::from(online))
        .bind(now_s())
        .bind(controller)
        .execute(state.pool())
        .await;
}

async fn run(
    state: &AppState,
    socket: &mut WebSocket,
    org_id: &str,
    controller_id: &str,
    controller: Id,
    rx: &mut mpsc::UnboundedReceiver<SessionMsg>,
) -> anyhow::Result<()> {
    send(
        socket,
        &ServerMessage::Welcome {
            controller,
            server_time_ms: now_ms().max(0) as u64,
        },
    )
    .await?;
    push_config(state, socket, org_id, controller_id).await?;
    push_revocations(state, socket, org_id).await?;
    // Three missed heartbeats (any frame counts as a sign of life) end the session.
    let silence = state.settings.controller_silence;
    // Only frames from the controller count as signs of life, not what we send it.
    let mut deadline = tokio::time::Instant::now() + silence;
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => {
                tracing::info!(controller = %controller_id, "controller missed heartbeats");
                return Ok(());
            }
            incoming = socket.recv() => {
                let frame = match incoming {
                    None | Some(Err(_)) => return Ok(()),
                    Some(Ok(f)) => f,
                };
                deadline = tokio::time::Instant::now() + silence;
                let text = match frame {
                    Message::Text(t) => t,
                    Message::Close(_) => return Ok(()),
                    _ => continue,
                };
                let msg = match serde_json::from_str::<ControllerMessage>(&text) {
                    Ok(m) => m,
                    Err(_) => {
                        send(socket, &ServerMessage::Error {
                            code: "invalid_request".into(),
                            message: "malformed message".into(),
                        }).await?;
                        continue;
                    }
                };
                handle(state, socket, org_id, controller_id, controller, msg).await?;
            }
            cmd = rx.recv() => {
                match cmd {
                    Some(SessionMsg::Send(m)) => send(socket, &m).await?,
                    Some(SessionMsg::RefreshConfig) => {
                        push_config(state, socket, org_id, controller_id).await?;
                        push_revocations(state, socket, org_id).await?;
                    }
                    Some(SessionMsg::RefreshRevocations) => {
                        push_revocations(state, socket, org_id).await?
                    }
                    Some(SessionMsg::Replaced) | None => {
                        let _ = socket.send(Message::Close(None)).await;
                        return Ok(());
                    }
                }
            }
        }
    }
}

async fn handle(
    state: &AppState,
    socket: &mut WebSocket,
    org_id: &str,
    controller_id: &str,
    controller: Id,
    msg: ControllerMessage,
) -> anyhow::Result<()> {
    match msg {
        ControllerMessage::Hello { .. } => {
            send(
                socket,
                &ServerMessage::Error {
                    code: "unexpected_message".into(),
                    message: "already authenticated".into(),
                },
            )
            .await?;
        }
        ControllerMessage::TimeRequest { nonce } => {
            let mut n = [0u8; 16];
            if hex::decode_to_slice(&nonce, &mut n).is_err() {
                send(
                    socket,
                    &ServerMessage::Error {
                        code: "invalid_request".into(),
                        message: "time nonce must be 16 bytes hex".into(),
                    },
                )
                .await?;
                return Ok(());
            }
            let key = orgkeys::active_key(state, org_id)
                .await
                .map_err(|e| anyhow::anyhow!("{}", e.message))?;
            let stmt = TimeStatement {
                org: pid(org_id),
                controller,
                nonce: n,
                unix_ms: now_ms().max(0) as u64,
            }
            .sign(&key, &state.rng)?;
            send(
                socket,
                &ServerMessage::Time {
                    statement: STANDARD.encode(stmt),
                },
            )
            .await?;
        }
        ControllerMessage::CommandResult { result } => state.hub.complete(result),
        ControllerMessage::Events { events } => {
            store_events(state, org_id, controller_id, &events)
                .await
                .map_err(|e| anyhow::anyhow!("{}", e.message))?;
            let (max,): (Option<i64>,) =
                sqlx::query_as("SELECT MAX(controller_seq) FROM events WHERE controller_id = $1")
                    .bind(controller_id)
                    .fetch_one(state.pool())
                    .await?;
            send(
                socket,
                &ServerMessage::EventsAck {
                    up_to_seq: max.unwrap_or(0).max(0) as u64,
                },
            )
            .await?;
        }
        ControllerMessage::Heartbeat { .. } => {
            sqlx::query("UPDATE controllers SET online = 1, last_seen_at = $1 WHERE id = $2")
                .bind(now_s())
                .bind(controller_id)
                .execute(state.pool())
                .await?;
        }
    }
    Ok(())
}

fn method_code(m: Method) -> &'static str {
    match m {
        Method::Ble => "ble",
        Method::WalkUp => "walk_up",
        Method::Cloud => "cloud",
    }
}

/// Audit type of an uploaded door event. Every attempt appears once as `unlock.attempt`:
/// BLE and walk-up attempts are decided by the door, so its record is the attempt; a cloud
/// attempt was already recorded by the server when it decided, so the door's record of
/// executing the command is `door.command_executed`.
fn kind_code(ev: &DoorEvent) -> &'static str {
    match ev.kind {
        DoorEventKind::UnlockAttempt if ev.method == Some(Method::Cloud) => "door.command_executed",
        DoorEventKind::UnlockAttempt => "unlock.attempt",
        DoorEventKind::DoorOpened => "door.opened",
        DoorEventKind::DoorClosed => "door.closed",
        DoorEventKind::DoorHeldOpen => "door.held_open",
        DoorEventKind::DoorForced => "door.forced",
    }
}

async fn store_events(
    state: &AppState,
    org_id: &str,
    controller_id: &str,
    events: &[DoorEvent],
) -> ApiResult<()> {
    for ev in events.iter().take(1000) {
        let lock_id = ev.lock.to_uuid_string();
        // Only locks of this organization are recorded against it.
        let place: Option<(String,)> =
            sqlx::query_as("SELECT place_id FROM locks WHERE id = $1 AND org_id = $2")
                .bind(&lock_id)
                .bind(org_id)
                .fetch_optional(state.pool())
                .await?;
        let stored = record(
            state,
            NewEvent {
                org_id: org_id.to_owned(),
                kind: kind_code(ev).into(),
                at_ms: Some(i64::try_from(ev.at_ms).unwrap_or(i64::MAX)),
                actor_id: ev.holder.map(|h| h.id.to_uuid_string()),
                actor_kind: ev.holder.map(|h| {
                    match h.kind {
                        keyway_protocol::credential::HolderKind::User => "user",
                        keyway_protocol::credential::HolderKind::Guest => "guest",
                    }
                    .to_owned()
                }),
                lock_id: place.as_ref().map(|_| lock_id.clone()),
                place_id: place.map(|(p,)| p),
                method: ev.method.map(|m| method_code(m).to_owned()),
                success: ev.granted,
                reason: ev.reason.map(|r| r.code().to_owned()),
                controller_id: Some(controller_id.to_owned()),
                controller_seq: Some(i64::try_from(ev.seq).unwrap_or(i64::MAX)),
                details: Some(serde_json::json!({
                    "credential_id": ev.credential,
                    "command_id": ev.command_id,
                })),
            },
        )
        .await?;
        if stored.is_some() {
            Metrics::inc(&state.metrics.controller_events);
        }
    }
    Ok(())
}

/// Builds the controller's configuration with a fresh org-signed certificate.
pub async fn build_config(
    state: &AppState,
    org_id: &str,
    controller_id: &str,
) -> ApiResult<ControllerConfig> {
    let (version, public_key): (i64, Option<String>) = sqlx::query_as(
        "UPDATE controllers SET config_version = config_version + 1 WHERE id = $1 \
         RETURNING config_version, public_key",
    )
    .bind(controller_id)
    .fetch_one(state.pool())
    .await?;
    let rows = sqlx::query(sql!(
        "{LOCK_SELECT} WHERE l.controller_id = $1 ORDER BY l.id LIMIT $2"
    ))
    .bind(controller_id)
    .bind(MAX_CERT_LOCKS as i64 + 1)
    .fetch_all(state.pool())
    .await?;
    // Binding refuses a lock past the certificate's room; only a race of two bindings gets
    // here, and the door then serves the first ones (said aloud, never silently).
    if rows.len() > MAX_CERT_LOCKS {
        tracing::error!(
            controller = controller_id,
            "more locks are bound to the controller than its certificate holds; the last is left out"
        );
    }
    let rows = &rows[..rows.len().min(MAX_CERT_LOCKS)];
    let mut locks = Vec::new();
    for r in rows {
        let l = lock_from_row(r)?;
        locks.push(LockConfig {
            id: pid(&l.id),
            place: Some(pid(&l.place_id)),
            name: l.name.clone(),
            walk_up: l.walk_up_allowed,
            walk_up_min_rssi: -70,
            lockdown: l.lockdown || l.place_lockdown,
            relay_ms: 3000,
            tx_power: l.tx_power.clamp(-127, 20) as i8,
            proximity_secret: l.proximity_secret.clone(),
            extra: Default::default(),
        });
    }
    let key = orgkeys::active_key(state, org_id).await?;
    let public_key = public_key
        .and_then(|h| hex::decode(h).ok())
        .and_then(|raw| PublicKey::from_slice(&raw).ok())
        .ok_or_else(|| anyhow::anyhow!("controller has no key"))?;
    let now = now_s();
    let cert = ControllerCertificate {
        org: pid(org_id),
        controller: pid(controller_id),
        public_key,
        locks: locks.iter().map(|l| l.id).collect(),
        not_before: (now - 300).max(0) as u64,
        not_after: (now + CERT_VALIDITY_SECS) as u64,
    }
    .sign(&key, &state.rng)?;
    let mut config = ControllerConfig {
        org: pid(org_id),
        controller: pid(controller_id),
        version: version as u64,
        certificate: STANDARD.encode(cert),
        trusted: orgkeys::trusted_keys(state, org_id).await?,
        locks,
        endorsements: orgkeys::endorsements(state, org_id).await?,
        seal: String::new(),
        extra: Default::default(),
    };
    let seal = ConfigSeal {
        org: config.org,
        controller: config.controller,
        version: config.version,
        digest: config.digest(),
    }
    .sign(&key, &state.rng)?;
    config.seal = STANDARD.encode(seal);
    Ok(config)
}

async fn push_config(
    state: &AppState,
    socket: &mut WebSocket,
    org_id: &str,
    controller_id: &str,
) -> anyhow::Result<()> {
    let config = build_config(state, org_id, controller_id)
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    send(socket, &ServerMessage::Config { config }).await
}

async fn push_revocations(
    state: &AppState,
    socket: &mut WebSocket,
    org_id: &str,
) -> anyhow::Result<()> {
    let (list, _) = orgkeys::revocation_list(state, org_id)
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    send(socket, &ServerMessage::Revocations { list }).await
}
