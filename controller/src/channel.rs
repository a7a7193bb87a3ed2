//! The controller side of the `keyway-channel` WebSocket session, with reconnects.
//!
//! challenge → hello (signed) → welcome; then config / revocations / time / commands in,
//! command results / events / heartbeats out. Reconnects with exponential backoff and full
//! jitter; events are re-sent from the last acknowledged sequence on every connect (the
//! server de-duplicates by sequence).

use crate::core::{Connection, Core};
use futures::{SinkExt, StreamExt};
use keyway_channel::{
    CHANNEL_VERSION, ControllerMessage, HEARTBEAT_SECS, MAX_FRAME_BYTES, ServerMessage,
    auth_message,
};
use ring::rand::SecureRandom;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Largest batch of events in one `events` message.
pub const EVENT_BATCH: usize = 256;

#[derive(Debug, Clone)]
pub struct ChannelOptions {
    /// `ws://` or `wss://host:port/api/v1/controllers/connect`.
    pub url: String,
    /// The TLS client for a `wss://` URL.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    pub heartbeat: Duration,
    /// Ask for a new time statement when the anchor is older than this.
    pub time_refresh: Duration,
}

impl ChannelOptions {
    /// Derives the channel URL from the server base URL: `http://` → `ws://`, `https://` →
    /// `wss://`, trusting the system's CA certificates and those in `ca_file`.
    pub fn for_server(server: &str, ca_file: Option<&Path>) -> Result<Self, String> {
        let base = server.trim_end_matches('/');
        let ws = if let Some(rest) = base.strip_prefix("http://") {
            format!("ws://{rest}")
        } else if let Some(rest) = base.strip_prefix("https://") {
            format!("wss://{rest}")
        } else if base.starts_with("ws://") || base.starts_with("wss://") {
            base.to_string()
        } else {
            return Err(format!(
                "server URL {server:?} must start with http:// or https://"
            ));
        };
        crate::http::split_url(&ws)
            .and_then(|t| t.require_tls_off_host(server))
            .map_err(|e| e.to_string())?;
        let tls = if ws.starts_with("wss://") {
            Some(crate::tls::client_config(ca_file).map_err(|e| e.to_string())?)
        } else {
            None
        };
        Ok(Self {
            url: format!("{ws}/api/v1/controllers/connect"),
            tls,
            backoff_min: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            heartbeat: Duration::from_secs(HEARTBEAT_SECS),
            time_refresh: Duration::from_secs(3600),
        })
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error("websocket: {0}")]
    Ws(#[from] tokio_tungstenite::tungstenite::Error),
    #[error("{0}")]
    Protocol(String),
    #[error("server closed the session")]
    Closed,
}

/// Runs the channel forever: connect, serve, back off, reconnect.
pub async fn run(core: Arc<Core>, opts: ChannelOptions) {
    let mut backoff = opts.backoff_min;
    loop {
        core.set_connection(Connection::Connecting, None);
        let mut online = false;
        let result = session(&core, &opts, &mut online).await;
        let error = match result {
            Ok(()) => "session ended".to_string(),
            Err(e) => e.to_string(),
        };
        tracing::warn!(%error, "server channel down");
        core.set_connection(Connection::Offline, Some(error));
        if online {
            backoff = opts.backoff_min;
        }
        let delay = jitter(&core, backoff).max(opts.backoff_min / 2);
        tokio::time::sleep(delay).await;
        backoff = (backoff * 2).min(opts.backoff_max);
    }
}

/// Full jitter: uniform in `[0, max]`.
fn jitter(core: &Core, max: Duration) -> Duration {
    let mut b = [0u8; 8];
    if core.rng().fill(&mut b).is_err() {
        return max;
    }
    let ms = max.as_millis().max(1) as u64;
    Duration::from_millis(u64::from_le_bytes(b) % (ms + 1))
}

async fn send(ws: &mut Ws, msg: &ControllerMessage) -> Result<(), SessionError> {
    let text = serde_json::to_string(msg).expect("channel messages serialize");
    ws.send(Message::Text(text.into())).await?;
    Ok(())
}

async fn recv(ws: &mut Ws) -> Result<Option<ServerMessage>, SessionError> {
    match ws.next().await {
        None => Err(SessionError::Closed),
        Some(Err(e)) => Err(e.into()),
        Some(Ok(Message::Text(t))) => serde_json::from_str(t.as_str())
            .map(Some)
            .map_err(|e| SessionError::Protocol(format!("unreadable server message: {e}"))),
        Some(Ok(Message::Close(_))) => Err(SessionError::Closed),
        Some(Ok(_)) => Ok(None), // ping/pong/binary
    }
}

async fn expect(ws: &mut Ws) -> Result<ServerMessage, SessionError> {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(m) = recv(ws).await? {
                return Ok(m);
            }
        }
    })
    .await
    .map_err(|_| SessionError::Protocol("server did not answer in time".into()))?
}

async fn session(
    core: &Arc<Core>,
    opts: &ChannelOptions,
    online: &mut bool,
) -> Result<(), SessionError> {
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_FRAME_BYTES))
        .max_frame_size(Some(MAX_FRAME_BYTES));
    let (mut ws, _) = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async_tls_with_config(
            opts.url.as_str(),
            Some(config),
            true,
            opts.tls.clone().map(tokio_tungstenite::Connector::Rustls),
        ),
    )
    .await
    .map_err(|_| SessionError::Protocol("connect timed out".into()))??;

    let nonce = match expect(&mut ws).await? {
        ServerMessage::Challenge { nonce } => nonce,
        ServerMessage::Error { code, message } => {
            return Err(SessionError::Protocol(format!("{code}: {message}")));
        }
        other => {
            return Err(SessionError::Protocol(format!(
                "expected challenge, got {other:?}"
            )));
        }
    };
    let mut n = [0u8; 32];
    hex::decode_to_slice(&nonce, &mut n)
        .map_err(|_| SessionError::Protocol("bad challenge nonce".into()))?;
    let id = core.identity().controller_id;
    let key = core
        .signing_key()
        .map_err(|e| SessionError::Protocol(e.to_string()))?;
    let signature = key
        .sign(core.rng(), &auth_message(&n, id))
        .map_err(|e| SessionError::Protocol(e.to_string()))?;
    send(
        &mut ws,
        &ControllerMessage::Hello {
            controller: id,
            version: CHANNEL_VERSION,
            signature: hex::encode(signature.0),
        },
    )
    .await?;
    match expect(&mut ws).await? {
        ServerMessage::Welcome { server_time_ms, .. } => {
            tracing::info!(
                skew_ms = server_time_ms as i64 - crate::core::rtc_ms() as i64,
                url = %opts.url,
                "server channel online"
            );
        }
        ServerMessage::Error { code, message } => {
            return Err(SessionError::Protocol(format!(
                "refused: {code}: {message}"
            )));
        }
        other => {
            return Err(SessionError::Protocol(format!(
                "expected welcome, got {other:?}"
            )));
        }
    }
    *online = true;
    core.set_connection(Connection::Online, None);

    let mut sent_up_to = core.acked_seq();
    let mut heartbeat = tokio::time::interval(opts.heartbeat);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_rx = Instant::now();
    let mut time_asked: Option<Instant> = None;
    loop {
        // Time: ask when configured and the anchor is missing or old (at most every 10 s).
        if core.has_config()
            && core.clock_needs_refresh(opts.time_refresh)
            && time_asked.is_none_or(|t| t.elapsed() > Duration::from_secs(10))
            && let Some(nonce) = core.time_request()
        {
            time_asked = Some(Instant::now());
            send(&mut ws, &ControllerMessage::TimeRequest { nonce }).await?;
        }
        // Events: everything not yet sent in this session.
        loop {
            let batch = core.pending_events(sent_up_to, EVENT_BATCH);
            let Some(last) = batch.last().map(|e| e.seq) else {
                break;
            };
            send(&mut ws, &ControllerMessage::Events { events: batch }).await?;
            sent_up_to = last;
        }
        tokio::select! {
            msg = recv(&mut ws) => {
                last_rx = Instant::now();
                if let Some(msg) = msg? {
                    handle(core, &mut ws, msg, sent_up_to).await?;
                }
            }
            _ = heartbeat.tick() => {
                if last_rx.elapsed() > opts.heartbeat * 3 {
                    return Err(SessionError::Protocol("server silent for three heartbeats".into()));
                }
                ws.send(Message::Ping(Vec::new().into())).await?;
                send(&mut ws, &ControllerMessage::Heartbeat { status: core.channel_status() }).await?;
            }
            _ = core.events_changed.notified() => {}
        }
    }
}

/// `sent_up_to`: the last event sequence this session has sent (an ack past it is clamped:
/// events the server never saw must not be dropped).
async fn handle(
    core: &Arc<Core>,
    ws: &mut Ws,
    msg: ServerMessage,
    sent_up_to: u64,
) -> Result<(), SessionError> {
    match msg {
        ServerMessage::Config { config } => match core.apply_config(config) {
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "configuration refused"),
        },
        ServerMessage::Revocations { list } => {
            if let Err(reason) = core.apply_revocations(&list) {
                tracing::warn!(%reason, "revocation list refused");
            }
        }
        ServerMessage::Time { statement } => {
            if let Err(reason) = core.apply_time(&statement) {
                tracing::warn!(%reason, "time statement refused");
            }
        }
        ServerMessage::Command { command } => {
            let result = core.execute_command(&command);
            send(ws, &ControllerMessage::CommandResult { result }).await?;
        }
        ServerMessage::EventsAck { up_to_seq } => {
            if up_to_seq > sent_up_to {
                tracing::warn!(
                    up_to_seq,
                    sent_up_to,
                    "server acknowledged events it was not sent; taking what was sent"
                );
            }
            if let Err(e) = core.ack_events(up_to_seq.min(sent_up_to)) {
                tracing::error!(error = %e, "recording the events ack");
            }
        }
        ServerMessage::Error { code, message } => {
            tracing::warn!(%code, %message, "server reported an error");
        }
        ServerMessage::Challenge { .. } | ServerMessage::Welcome { .. } => {
            tracing::warn!("unexpected handshake message mid-session");
        }
    }
    Ok(())
}
