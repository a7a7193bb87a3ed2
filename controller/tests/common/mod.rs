//! A small world for controller tests: a test server (axum) speaking `keyway-channel` and the
//! provisioning endpoint with a test organization key, a radio hub, and phones that run the
//! real `Initiator` through `SimPhone`.
#![allow(dead_code)]

use axum::Json;
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use keyway_channel::{
    CloudCommand, CommandResult, ControllerConfig, ControllerMessage, DoorEvent, LockConfig,
    ServerMessage, auth_message,
};
use keyway_controller::channel::ChannelOptions;
use keyway_controller::run::{Controller, Radio, RunOptions};
use keyway_controller::{CoreOptions, identity};
use keyway_protocol::certificate::ControllerCertificate;
use keyway_protocol::command::CommandOrder;
use keyway_protocol::credential::{Credential, Holder, HolderKind, Schedule, ScopeEntry};
use keyway_protocol::handshake::{Action, ResultBody};
use keyway_protocol::keys::DeviceSigner;
use keyway_protocol::revocation::RevocationList;
use keyway_protocol::time::TimeStatement;
use keyway_protocol::{CryptoError, Id, PublicKey, Signature, SigningKey, TrustedKeys};
use keyway_sim_radio::exchange::{self, ExchangeError, UnlockRequest};
use keyway_sim_radio::{HubConfig, Position, RadioHub, SimPhone};
use ring::rand::{SecureRandom, SystemRandom};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{broadcast, watch};

pub const ORG: Id = Id([0x30; 16]);
pub const CONTROLLER: Id = Id([0x40; 16]);
pub const PLACE: Id = Id([0x20; 16]);
/// Walk-up enabled, at (0, 0).
pub const LOCK_A: Id = Id([0x10; 16]);
/// In lockdown, at (30, 0).
pub const LOCK_B: Id = Id([0x11; 16]);
/// Walk-up disabled, at (60, 0).
pub const LOCK_C: Id = Id([0x12; 16]);
pub const TOKEN: &str = "test-provisioning-token";

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

pub fn random_id() -> Id {
    Id::random(&SystemRandom::new()).unwrap()
}

/// Polls `f` until it holds or `secs` pass.
pub async fn eventually(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// What the test server knows and records.
pub struct ServerState {
    pub org_key: SigningKey,
    rng: SystemRandom,
    pub controller_key: Mutex<Option<PublicKey>>,
    pub locks: Mutex<Vec<LockConfig>>,
    pub config_version: Mutex<u64>,
    pub revocations: Mutex<Option<String>>,
    /// Stored events by sequence (the server de-duplicates by sequence).
    pub events: Mutex<BTreeMap<u64, DoorEvent>>,
    /// Events the controller sent again although they were already acknowledged.
    pub resent_after_ack: Mutex<Vec<u64>>,
    pub acked: Mutex<u64>,
    pub results: Mutex<Vec<CommandResult>>,
    pub sessions: Mutex<u64>,
    /// When false the server ignores `time_request` (a door without trusted time).
    pub answer_time: std::sync::atomic::AtomicBool,
    push: broadcast::Sender<ServerMessage>,
}

impl ServerState {
    /// The configuration this server sends, sealed with the organization key.
    pub fn config(&self) -> Option<ControllerConfig> {
        let key = (*self.controller_key.lock().unwrap())?;
        let locks = self.locks.lock().unwrap().clone();
        let certificate = ControllerCertificate {
            org: ORG,
            controller: CONTROLLER,
            public_key: key,
            locks: locks.iter().map(|l| l.id).collect(),
            not_before: now_secs() - 3600,
            not_after: now_secs() + 86_400,
        }
        .sign(&self.org_key, &self.rng)
        .unwrap();
        use base64::Engine;
        Some(ControllerConfig {
            org: ORG,
            controller: CONTROLLER,
            version: *self.config_version.lock().unwrap(),
            certificate: base64::engine::general_purpose::STANDARD.encode(certificate),
            trusted: TrustedKeys::single(ORG, self.org_key.public_key()),
            locks,
            endorsements: vec![],
            seal: String::new(),
            extra: Default::default(),
        })
        .map(|c| seal_config(c, &self.org_key))
    }

    pub fn event_count(&self) -> usize {
        self.events.lock().unwrap().len()
    }

    pub fn events(&self) -> Vec<DoorEvent> {
        self.events.lock().unwrap().values().cloned().collect()
    }
}

pub fn lock_config(id: Id, name: &str) -> LockConfig {
    LockConfig {
        id,
        place: Some(PLACE),
        name: name.into(),
        walk_up: true,
        walk_up_min_rssi: -70,
        lockdown: false,
        relay_ms: 1000,
        tx_power: -59,
        proximity_secret: hex::encode([7u8; 32]),
        extra: Default::default(),
    }
}

/// An axum server speaking the controller channel; can be stopped and restarted on its port.
pub struct TestServer {
    pub state: Arc<ServerState>,
    pub addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    pub async fn start() -> Self {
        let rng = SystemRandom::new();
        let (org_key, _) = SigningKey::generate(&rng).unwrap();
        let mut b = lock_config(LOCK_B, "Back door");
        b.lockdown = true;
        let mut c = lock_config(LOCK_C, "Store room");
        c.walk_up = false;
        let (push, _) = broadcast::channel(64);
        let state = Arc::new(ServerState {
            org_key,
            rng,
            controller_key: Mutex::new(None),
            locks: Mutex::new(vec![lock_config(LOCK_A, "Front door"), b, c]),
            config_version: Mutex::new(1),
            revocations: Mutex::new(None),
            events: Mutex::new(BTreeMap::new()),
            resent_after_ack: Mutex::new(Vec::new()),
            acked: Mutex::new(0),
            results: Mutex::new(Vec::new()),
            sessions: Mutex::new(0),
            answer_time: std::sync::atomic::AtomicBool::new(true),
            push,
        });
        let (shutdown, _) = watch::channel(false);
        let mut s = Self {
            state,
            addr: "127.0.0.1:0".parse().unwrap(),
            shutdown,
            task: None,
        };
        s.serve().await;
        s
    }

    async fn serve(&mut self) {
        let listener = tokio::net::TcpListener::bind(self.addr).await.unwrap();
        self.addr = listener.local_addr().unwrap();
        self.shutdown.send_replace(false);
        let app = axum::Router::new()
            .route("/api/v1/controllers/provision", post(provision))
            .route("/api/v1/controllers/connect", get(connect))
            .with_state((self.state.clone(), self.shutdown.subscribe()));
        self.task = Some(tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        }));
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Closes every session and the listener (the server is down).
    pub async fn stop(&mut self) {
        self.shutdown.send_replace(true);
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
    }

    /// Comes back on the same address.
    pub async fn restart(&mut self) {
        self.serve().await;
    }

    pub fn push(&self, msg: ServerMessage) {
        let _ = self.state.push.send(msg);
    }

    pub fn command(&self, command_id: Id, lock: Id) {
        self.push(ServerMessage::Command {
            command: self.signed_command(command_id, lock, &self.state.org_key),
        });
    }

    /// A cloud command whose order is signed with `key` for this rig's controller.
    pub fn signed_command(&self, command_id: Id, lock: Id, key: &SigningKey) -> CloudCommand {
        self.signed_command_at(command_id, lock, key, now_ms())
    }

    /// [`Self::signed_command`] dated `issued_at_ms`.
    pub fn signed_command_at(
        &self,
        command_id: Id,
        lock: Id,
        key: &SigningKey,
        issued_at_ms: u64,
    ) -> CloudCommand {
        use base64::Engine;
        let actor = Some(Holder {
            kind: HolderKind::User,
            id: Id([0x60; 16]),
        });
        let order = CommandOrder {
            org: ORG,
            controller: CONTROLLER,
            command: command_id,
            lock,
            issued_at_ms,
            actor,
        }
        .sign(key, &self.state.rng)
        .unwrap();
        CloudCommand {
            command_id,
            lock,
            actor,
            issued_at_ms,
            order: base64::engine::general_purpose::STANDARD.encode(order),
        }
    }

    /// Signs and pushes a revocation list (also sent to later sessions).
    pub fn revoke(&self, serial: u64, ids: Vec<Id>) {
        use base64::Engine;
        let list = RevocationList {
            org: ORG,
            serial,
            issued_at: now_secs(),
            revoked_before: 0,
            revoked: ids,
        }
        .sign(&self.state.org_key, &self.state.rng)
        .unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(list);
        *self.state.revocations.lock().unwrap() = Some(b64.clone());
        self.push(ServerMessage::Revocations { list: b64 });
    }
}

type AppState = (Arc<ServerState>, watch::Receiver<bool>);

/// Seals `config` as it now reads with `key` (`keyway_protocol::door_trust`).
pub fn seal_config(mut config: ControllerConfig, key: &SigningKey) -> ControllerConfig {
    use base64::Engine;
    let seal = keyway_protocol::door_trust::ConfigSeal {
        org: config.org,
        controller: config.controller,
        version: config.version,
        digest: config.digest(),
    }
    .sign(key, &SystemRandom::new())
    .unwrap();
    config.seal = base64::engine::general_purpose::STANDARD.encode(seal);
    config
}

#[derive(serde::Deserialize)]
struct ProvisionBody {
    token: String,
    public_key: String,
}

async fn provision(
    State((state, _)): State<AppState>,
    Json(body): Json<ProvisionBody>,
) -> impl IntoResponse {
    if body.token != TOKEN {
        return (
            StatusCode::UNAUTHORIZED,
            Json(serde_json::json!({"error": {"code": "unauthorized", "message": "bad token"}})),
        );
    }
    let raw = hex::decode(&body.public_key).unwrap();
    *state.controller_key.lock().unwrap() = Some(PublicKey::from_slice(&raw).unwrap());
    (
        StatusCode::CREATED,
        Json(
            serde_json::json!({"controller_id": CONTROLLER, "org_id": ORG,
            "trusted_keys": TrustedKeys::single(ORG, state.org_key.public_key())}),
        ),
    )
}

async fn connect(
    State((state, shutdown)): State<AppState>,
    ws: WebSocketUpgrade,
) -> impl IntoResponse {
    ws.on_upgrade(move |socket| session(state, shutdown, socket))
}

async fn send(ws: &mut WebSocket, m: &ServerMessage) -> bool {
    ws.send(Message::Text(serde_json::to_string(m).unwrap().into()))
        .await
        .is_ok()
}

async fn next_message(ws: &mut WebSocket) -> Option<ControllerMessage> {
    loop {
        match ws.recv().await? {
            Ok(Message::Text(t)) => return Some(serde_json::from_str(t.as_str()).unwrap()),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}

async fn session(state: Arc<ServerState>, mut shutdown: watch::Receiver<bool>, mut ws: WebSocket) {
    let mut nonce = [0u8; 32];
    state.rng.fill(&mut nonce).unwrap();
    let mut push = state.push.subscribe();
    if !send(
        &mut ws,
        &ServerMessage::Challenge {
            nonce: hex::encode(nonce),
        },
    )
    .await
    {
        return;
    }
    let Some(ControllerMessage::Hello {
        controller,
        signature,
        ..
    }) = next_message(&mut ws).await
    else {
        return;
    };
    let key = (*state.controller_key.lock().unwrap()).unwrap();
    let mut sig = [0u8; 64];
    hex::decode_to_slice(&signature, &mut sig).unwrap();
    if controller != CONTROLLER || !key.verify(&auth_message(&nonce, controller), &Signature(sig)) {
        send(
            &mut ws,
            &ServerMessage::Error {
                code: "unauthorized".into(),
                message: "bad controller signature".into(),
            },
        )
        .await;
        return;
    }
    *state.sessions.lock().unwrap() += 1;
    send(
        &mut ws,
        &ServerMessage::Welcome {
            controller,
            server_time_ms: now_ms(),
        },
    )
    .await;
    send(
        &mut ws,
        &ServerMessage::Config {
            config: state.config().unwrap(),
        },
    )
    .await;
    let revocations = state.revocations.lock().unwrap().clone();
    if let Some(list) = revocations {
        send(&mut ws, &ServerMessage::Revocations { list }).await;
    }
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            m = push.recv() => {
                let Ok(m) = m else { continue };
                if !send(&mut ws, &m).await { break; }
            }
            m = next_message(&mut ws) => {
                let Some(m) = m else { break };
                let reply = handle(&state, m);
                if let Some(r) = reply && !send(&mut ws, &r).await {
                    break;
                }
            }
        }
    }
    let _ = ws.send(Message::Close(None)).await;
}

fn handle(state: &ServerState, m: ControllerMessage) -> Option<ServerMessage> {
    match m {
        ControllerMessage::TimeRequest { .. }
            if !state.answer_time.load(std::sync::atomic::Ordering::SeqCst) =>
        {
            None
        }
        ControllerMessage::TimeRequest { nonce } => {
            let mut n = [0u8; 16];
            hex::decode_to_slice(&nonce, &mut n).unwrap();
            let stmt = TimeStatement {
                org: ORG,
                controller: CONTROLLER,
                nonce: n,
                unix_ms: now_ms(),
            }
            .sign(&state.org_key, &state.rng)
            .unwrap();
            use base64::Engine;
            Some(ServerMessage::Time {
                statement: base64::engine::general_purpose::STANDARD.encode(stmt),
            })
        }
        ControllerMessage::CommandResult { result } => {
            state.results.lock().unwrap().push(result);
            None
        }
        ControllerMessage::Events { events } => {
            let mut stored = state.events.lock().unwrap();
            let mut acked = state.acked.lock().unwrap();
            for e in events {
                if e.seq <= *acked {
                    state.resent_after_ack.lock().unwrap().push(e.seq);
                }
                stored.entry(e.seq).or_insert(e);
            }
            while stored.contains_key(&(*acked + 1)) {
                *acked += 1;
            }
            Some(ServerMessage::EventsAck { up_to_seq: *acked })
        }
        ControllerMessage::Heartbeat { .. } | ControllerMessage::Hello { .. } => None,
    }
}

/// A phone's device key.
pub struct Device(pub SigningKey, SystemRandom);

impl Device {
    pub fn new() -> Self {
        let rng = SystemRandom::new();
        Self(SigningKey::generate(&rng).unwrap().0, rng)
    }
}

impl DeviceSigner for Device {
    fn public_key(&self) -> PublicKey {
        self.0.public_key()
    }
    fn sign(&self, msg: &[u8]) -> Result<Signature, CryptoError> {
        self.0.sign(&self.1, msg)
    }
}

/// A provisioned controller running in-process against a test server and a radio hub.
pub struct Rig {
    pub server: TestServer,
    pub hub: Arc<RadioHub>,
    pub dir: tempfile::TempDir,
    pub controller: Option<Controller>,
    pub device: Device,
    pub core_options: CoreOptions,
}

impl Rig {
    pub async fn new() -> Self {
        Self::with_options(CoreOptions::default()).await
    }

    pub async fn with_options(core_options: CoreOptions) -> Self {
        Self::build(core_options, true, HubConfig::default()).await
    }

    /// A rig whose simulated air is `hub` (ranging doors, link timing).
    pub async fn with_hub(hub: HubConfig) -> Self {
        Self::build(CoreOptions::default(), true, hub).await
    }

    /// A rig whose server never answers time requests.
    pub async fn without_trusted_time() -> Self {
        Self::build(CoreOptions::default(), false, HubConfig::default()).await
    }

    async fn build(core_options: CoreOptions, answer_time: bool, hub: HubConfig) -> Self {
        let server = TestServer::start().await;
        server
            .state
            .answer_time
            .store(answer_time, std::sync::atomic::Ordering::SeqCst);
        let hub = Arc::new(RadioHub::bind("127.0.0.1:0", hub).await.unwrap());
        let dir = tempfile::tempdir().unwrap();
        identity::provision(&server.url(), TOKEN, dir.path(), None)
            .await
            .unwrap();
        let mut rig = Self {
            server,
            hub,
            dir,
            controller: None,
            device: Device::new(),
            core_options,
        };
        rig.start_controller().await;
        rig
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    pub async fn start_controller(&mut self) {
        let mut opts = RunOptions::new(self.dir.path(), Radio::SimHub(self.hub.clone()));
        opts.positions = HashMap::from([
            (LOCK_A, Position { x: 0.0, y: 0.0 }),
            (LOCK_B, Position { x: 30.0, y: 0.0 }),
            (LOCK_C, Position { x: 60.0, y: 0.0 }),
        ]);
        let mut ch = ChannelOptions::for_server(&self.server.url(), None).unwrap();
        ch.backoff_min = Duration::from_millis(50);
        ch.backoff_max = Duration::from_millis(400);
        ch.heartbeat = Duration::from_millis(500);
        opts.channel = Some(ch);
        opts.core = self.core_options.clone();
        self.controller = Some(Controller::start(opts).await.unwrap());
    }

    pub async fn stop_controller(&mut self) {
        if let Some(c) = self.controller.take() {
            c.shutdown().await;
        }
    }

    pub fn controller(&self) -> &Controller {
        self.controller.as_ref().unwrap()
    }

    /// Waits until the controller is online with configuration and trusted time.
    pub async fn ready(&self) {
        let core = self.controller().core().clone();
        eventually("config and trusted time", 10, || {
            let s = core.status();
            s.config_version.is_some()
                && s.trusted_time
                && s.connection == keyway_controller::core::Connection::Online
        })
        .await;
    }

    pub async fn phone(&self, x: f64, y: f64) -> SimPhone {
        let phone = SimPhone::connect(self.hub.local_addr(), "test-phone")
            .await
            .unwrap();
        phone.set_position(x, y).await.unwrap();
        phone
    }

    pub fn credential(&self, f: impl FnOnce(&mut Credential)) -> (Id, Vec<u8>) {
        self.credential_signed_by(&self.server.state.org_key, f)
    }

    pub fn credential_signed_by(
        &self,
        key: &SigningKey,
        f: impl FnOnce(&mut Credential),
    ) -> (Id, Vec<u8>) {
        let mut c = Credential {
            id: random_id(),
            org: ORG,
            holder: Holder {
                kind: HolderKind::User,
                id: Id([0x60; 16]),
            },
            device_key: self.device.public_key(),
            scope: vec![ScopeEntry::Place(PLACE)],
            not_before: now_secs() - 3600,
            not_after: now_secs() + 3600,
            max_uses: None,
            schedule: None,
        };
        f(&mut c);
        (c.id, c.sign(key, &SystemRandom::new()).unwrap())
    }

    pub fn trusted(&self) -> TrustedKeys {
        TrustedKeys::single(ORG, self.server.state.org_key.public_key())
    }
}

/// A schedule that excludes the current minute (UTC).
pub fn schedule_excluding_now() -> Schedule {
    let minute = ((now_secs() % 86_400) / 60) as u16;
    let start = (minute + 60) % 1380;
    Schedule {
        time_zone: "UTC".into(),
        windows: vec![keyway_protocol::credential::Window {
            weekdays: 0x7F,
            start_minute: start,
            end_minute: start + 30,
        }],
    }
}

/// Connects (retrying a few times on a bad radio sample) and runs one unlock.
pub async fn unlock_with(
    phone: &SimPhone,
    lock: Id,
    action: Action,
    trusted: &TrustedKeys,
    credential: &[u8],
    signer: &Device,
    command_id: Id,
) -> Result<ResultBody, ExchangeError> {
    let mut link = None;
    for _ in 0..20 {
        match phone.connect_door(&lock.to_string()).await {
            Ok(l) => {
                link = Some(l);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    let mut link = link.expect("could not connect to the door");
    let rng = SystemRandom::new();
    let r = exchange::unlock(
        &mut link,
        &rng,
        UnlockRequest {
            lock,
            action,
            trusted,
            now_unix: now_secs(),
            command_id,
            credential,
            signer,
            timeout: Duration::from_secs(5),
        },
    )
    .await;
    link.close().await;
    r
}

impl Rig {
    pub async fn unlock(
        &self,
        phone: &SimPhone,
        lock: Id,
        credential: &[u8],
        command_id: Id,
    ) -> Result<ResultBody, ExchangeError> {
        unlock_with(
            phone,
            lock,
            Action::Unlock,
            &self.trusted(),
            credential,
            &self.device,
            command_id,
        )
        .await
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}
