//! Test harness: a real server on a random loopback port (SQLite in a temp dir, and
//! PostgreSQL when `KEYWAY_TEST_PG_URL` is set), an HTTP client and a real WebSocket test
//! controller that signs the challenge with its own key.

#![allow(dead_code)]

use futures::{SinkExt, StreamExt};
use keyway_channel::{
    CHANNEL_VERSION, CommandResult, ControllerConfig, ControllerMessage, ControllerStatus,
    DoorEvent, ServerMessage, auth_message,
};
use keyway_protocol::{Id, Reason, SigningKey};
use keyway_server::{AppState, Settings};
use ring::rand::SystemRandom;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

pub struct TestServer {
    pub base: String,
    pub state: AppState,
    pub http: reqwest::Client,
    pub backend: &'static str,
    _dir: Option<tempfile::TempDir>,
    /// The PostgreSQL database made for this test, dropped with the last server on it.
    scratch: Option<Arc<ScratchDatabase>>,
    handle: Option<tokio::task::JoinHandle<()>>,
}

/// A PostgreSQL database made for one test and dropped after it, so test runs against a
/// developer's server do not pile up databases.
pub struct ScratchDatabase {
    admin_url: String,
    name: String,
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept test database {} of a failed test", self.name);
            return;
        }
        // Drop cannot await; a thread with its own runtime can, whichever runtime (if any)
        // this runs on. FORCE (PostgreSQL 13+) closes connections a server's pool still holds.
        let (url, name) = (self.admin_url.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            use sqlx::Executor;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            // The timer must be made inside the runtime.
            rt.block_on(async {
                tokio::time::timeout(Duration::from_secs(30), async {
                    let admin = sqlx::AnyPool::connect(&url).await?;
                    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    admin.execute(sqlx::AssertSqlSafe(sql)).await?;
                    admin.close().await;
                    Ok::<_, sqlx::Error>(())
                })
                .await
            })??;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test database {}: {dropped:?}", self.name);
        }
    }
}

pub fn test_settings() -> Settings {
    Settings {
        unlock_timeout: Duration::from_millis(400),
        webhook_retry_base_ms: 30,
        webhook_max_attempts: 3,
        webhook_disable_after: 100,
        login_failures_per_ip: 1000,
        requests_per_second: 100_000,
        // The receivers in these tests listen on loopback.
        webhook_allow_private: true,
        ..Settings::default()
    }
}

static PG_NOTICE: std::sync::Once = std::sync::Once::new();

/// Runs `body` against a SQLite server and, when configured, a PostgreSQL one.
pub async fn on_all_backends<F, Fut>(settings: Settings, body: F)
where
    F: Fn(TestServer) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    body(TestServer::sqlite(settings.clone()).await).await;
    match std::env::var("KEYWAY_TEST_PG_URL") {
        Ok(url) if !url.is_empty() => body(TestServer::postgres(&url, settings).await).await,
        _ => PG_NOTICE.call_once(|| {
            eprintln!("skipping PostgreSQL runs: set KEYWAY_TEST_PG_URL=postgres://... to enable")
        }),
    }
}

impl TestServer {
    pub async fn sqlite(settings: Settings) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = keyway_server::db::connect(&keyway_server::db::sqlite_url(dir.path()))
            .await
            .unwrap();
        Self::start(db, settings, Some(dir), "sqlite").await
    }

    /// A fresh database per test on the given server.
    pub async fn postgres(url: &str, settings: Settings) -> Self {
        use sqlx::Executor;
        sqlx::any::install_default_drivers();
        let admin = sqlx::AnyPool::connect(url).await.unwrap();
        let name = format!("keyway_test_{}", hex::encode(rand_bytes::<6>()));
        admin
            .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .unwrap();
        admin.close().await;
        let scratch = Arc::new(ScratchDatabase {
            admin_url: url.to_owned(),
            name: name.clone(),
        });
        let (base, _) = url.rsplit_once('/').unwrap();
        let db = keyway_server::db::connect(&format!("{base}/{name}"))
            .await
            .unwrap();
        let mut server = Self::start(db, settings, None, "postgres").await;
        server.scratch = Some(scratch);
        server
    }

    /// A second server instance on the same database (PostgreSQL multi-instance tests).
    pub async fn same_database(&self) -> Self {
        let db = keyway_server::db::connect(&self.state.db.url)
            .await
            .unwrap();
        let mut server = Self::start(db, self.state.settings.clone(), None, self.backend).await;
        server.scratch = self.scratch.clone();
        server
    }

    async fn start(
        db: keyway_server::db::Db,
        settings: Settings,
        dir: Option<tempfile::TempDir>,
        backend: &'static str,
    ) -> Self {
        let state = AppState::new(db, settings);
        let running = keyway_server::serve(state.clone(), "127.0.0.1:0")
            .await
            .unwrap();
        TestServer {
            base: format!("http://{}", running.addr),
            state,
            http: keyway_server::util::http_client().build().unwrap(),
            backend,
            _dir: dir,
            scratch: None,
            handle: Some(running.handle),
        }
    }

    /// A client for a server running elsewhere (another process) on `like`'s database.
    pub fn remote(base: &str, like: &TestServer) -> Self {
        TestServer {
            base: base.trim_end_matches('/').to_owned(),
            state: like.state.clone(),
            http: keyway_server::util::http_client().build().unwrap(),
            backend: like.backend,
            _dir: None,
            scratch: like.scratch.clone(),
            handle: None,
        }
    }

    pub fn ws_url(&self) -> String {
        format!(
            "{}/api/v1/controllers/connect",
            self.base.replace("http://", "ws://")
        )
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let url = format!("{}/api/v1{path}", self.base);
        let mut req = self
            .http
            .request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    pub async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        self.call("GET", path, Some(token), None).await
    }
    pub async fn post(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        self.call("POST", path, Some(token), Some(body)).await
    }
    pub async fn put(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        self.call("PUT", path, Some(token), Some(body)).await
    }
    pub async fn delete(&self, path: &str, token: &str) -> (u16, Value) {
        self.call("DELETE", path, Some(token), None).await
    }

    pub async fn login(&self, email: &str, password: &str) -> String {
        let (s, v) = self
            .call(
                "POST",
                "/logins",
                None,
                Some(json!({"email": email, "password": password})),
            )
            .await;
        assert_eq!(s, 201, "login {email}: {v}");
        v["token"].as_str().unwrap().to_owned()
    }

    /// Unlock with an optional idempotency key.
    pub async fn unlock(
        &self,
        lock: &str,
        token: &str,
        body: Value,
        idem: Option<&str>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .post(format!("{}/api/v1/locks/{lock}/unlock", self.base))
            .bearer_auth(token)
            .json(&body);
        if let Some(k) = idem {
            req = req.header("Idempotency-Key", k);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap())
    }
}

pub fn rand_bytes<const N: usize>() -> [u8; N] {
    use ring::rand::SecureRandom;
    let mut b = [0u8; N];
    SystemRandom::new().fill(&mut b).unwrap();
    b
}

pub fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

/// An organization with an owner, an admin, a manager, a member (in group "Staff" with both
/// locks), a place in Europe/Berlin and two locks bound to one controller.
pub struct Org {
    pub id: String,
    pub owner: String,
    pub admin: String,
    pub manager: String,
    pub member: String,
    pub member_id: String,
    pub place: String,
    pub front: String,
    pub lab: String,
    pub group: String,
    pub controller: String,
    pub provisioning_token: String,
}

pub async fn make_org(srv: &TestServer, name: &str) -> Org {
    let tag = hex::encode(rand_bytes::<4>());
    let owner_email = format!("owner-{tag}@{name}.test");
    let org = keyway_server::seed::create_org_with_owner(
        &srv.state,
        name,
        &owner_email,
        "owner-password",
    )
    .await
    .unwrap();
    let owner = srv.login(&owner_email, "owner-password").await;
    let mut tokens = HashMap::new();
    let mut ids = HashMap::new();
    for role in ["admin", "manager", "member"] {
        let email = format!("{role}-{tag}@{name}.test");
        let (s, v) = srv
            .post(
                &format!("/orgs/{org}/members"),
                &owner,
                json!({"email": email, "password": "member-password", "role": role}),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        ids.insert(role, v["user_id"].as_str().unwrap().to_owned());
        tokens.insert(role, srv.login(&email, "member-password").await);
    }
    let (s, place) = srv
        .post(
            &format!("/orgs/{org}/places"),
            &owner,
            json!({"name": "HQ", "time_zone": "Europe/Berlin", "latitude": 52.52, "longitude": 13.405}),
        )
        .await;
    assert_eq!(s, 201, "{place}");
    let place = place["id"].as_str().unwrap().to_owned();
    let (s, c) = srv
        .post(
            &format!("/orgs/{org}/controllers"),
            &owner,
            json!({"name": "ctl"}),
        )
        .await;
    assert_eq!(s, 201, "{c}");
    let controller = c["id"].as_str().unwrap().to_owned();
    let mut locks = Vec::new();
    for name in ["Front door", "Lab"] {
        let (s, l) = srv
            .post(
                &format!("/orgs/{org}/locks"),
                &owner,
                json!({"place_id": place, "name": name, "controller_id": controller}),
            )
            .await;
        assert_eq!(s, 201, "{l}");
        locks.push(l["id"].as_str().unwrap().to_owned());
    }
    let (s, g) = srv
        .post(
            &format!("/orgs/{org}/groups"),
            &owner,
            json!({"name": "Staff", "lock_ids": locks}),
        )
        .await;
    assert_eq!(s, 201, "{g}");
    let group = g["id"].as_str().unwrap().to_owned();
    // The manager holds the group too: managers invite visitors only to locks they hold.
    for holder in ["member", "manager"] {
        let (s, v) = srv
            .post(
                &format!("/orgs/{org}/role_assignments"),
                &owner,
                json!({"user_id": ids[holder], "group_id": group}),
            )
            .await;
        assert_eq!(s, 201, "{v}");
    }
    Org {
        id: org,
        owner,
        admin: tokens["admin"].clone(),
        manager: tokens["manager"].clone(),
        member: tokens["member"].clone(),
        member_id: ids["member"].clone(),
        place,
        front: locks[0].clone(),
        lab: locks[1].clone(),
        group,
        controller,
        provisioning_token: c["provisioning_token"].as_str().unwrap().to_owned(),
    }
}

/// How the test controller answers commands.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Answer {
    Grant,
    Deny(Reason),
    /// Never answers (the server must time out).
    Silent,
    /// Actuates but the result is lost on the way back.
    LoseResult,
}

#[derive(Debug, Default)]
pub struct Seen {
    pub configs: Vec<ControllerConfig>,
    pub revocations: Vec<String>,
    pub times: Vec<String>,
    pub acks: Vec<u64>,
    pub errors: Vec<String>,
    /// Command ids actually actuated (a repeated id is not actuated again).
    pub actuated: Vec<Id>,
    pub commands: Vec<Id>,
    /// When each command's order was signed (`issued_at_ms`), in arrival order.
    pub issued: Vec<u64>,
}

/// A controller speaking the real channel protocol over a real WebSocket.
pub struct TestController {
    pub id: Id,
    pub key: Arc<SigningKey>,
    pub seen: Arc<Mutex<Seen>>,
    pub answer: watch::Sender<Answer>,
    out: mpsc::UnboundedSender<ControllerMessage>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestController {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Provisions a fresh key for `controller` with its token.
pub async fn provision(srv: &TestServer, token: &str) -> (Id, SigningKey) {
    let (key, _) = SigningKey::generate(&SystemRandom::new()).unwrap();
    let (s, v) = srv
        .call(
            "POST",
            "/controllers/provision",
            None,
            Some(json!({"token": token, "public_key": key.public_key().to_hex()})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    // The controller pins the organization's keys from this answer.
    let pinned: keyway_protocol::TrustedKeys =
        serde_json::from_value(v["trusted_keys"].clone()).unwrap();
    assert!(!pinned.keys.is_empty(), "{v}");
    (
        Id::parse(v["controller_id"].as_str().unwrap()).unwrap(),
        key,
    )
}

impl TestController {
    /// Connects and authenticates; waits for the first config.
    pub async fn connect(srv: &TestServer, id: Id, key: SigningKey) -> Self {
        let (ws, _) = tokio_tungstenite::connect_async(srv.ws_url())
            .await
            .unwrap();
        let (mut sink, mut stream) = ws.split();
        let first = next_server(&mut stream).await.expect("challenge");
        let ServerMessage::Challenge { nonce } = first else {
            panic!("expected challenge, got {first:?}")
        };
        let mut n = [0u8; 32];
        hex::decode_to_slice(&nonce, &mut n).unwrap();
        let sig = key
            .sign(&SystemRandom::new(), &auth_message(&n, id))
            .unwrap();
        let hello = ControllerMessage::Hello {
            controller: id,
            version: CHANNEL_VERSION,
            signature: hex::encode(sig.0),
        };
        sink.send(text(&hello)).await.unwrap();
        let welcome = next_server(&mut stream).await.expect("welcome");
        assert!(
            matches!(welcome, ServerMessage::Welcome { controller, .. } if controller == id),
            "{welcome:?}"
        );
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (answer, answer_rx) = watch::channel(Answer::Grant);
        let (out, mut out_rx) = mpsc::unbounded_channel::<ControllerMessage>();
        let seen2 = seen.clone();
        let task = tokio::spawn(async move {
            let mut results: HashMap<Id, CommandResult> = HashMap::new();
            let mut seq = 0u64;
            loop {
                tokio::select! {
                    msg = next_server(&mut stream) => {
                        let Some(msg) = msg else { return };
                        let reply = {
                            let mut seen = seen2.lock().unwrap();
                            match msg {
                                ServerMessage::Config { config } => { seen.configs.push(config); None }
                                ServerMessage::Revocations { list } => { seen.revocations.push(list); None }
                                ServerMessage::Time { statement } => { seen.times.push(statement); None }
                                ServerMessage::EventsAck { up_to_seq } => { seen.acks.push(up_to_seq); None }
                                ServerMessage::Error { code, .. } => { seen.errors.push(code); None }
                                ServerMessage::Command { command } => {
                                    seen.commands.push(command.command_id);
                                    seen.issued.push(command.issued_at_ms);
                                    let mode = *answer_rx.borrow();
                                    if mode == Answer::Silent {
                                        None
                                    } else if let Some(prev) = results.get(&command.command_id) {
                                        let mut r = prev.clone();
                                        r.duplicate = true;
                                        Some(r)
                                    } else {
                                        seq += 1;
                                        let r = CommandResult {
                                            command_id: command.command_id,
                                            granted: matches!(mode, Answer::Grant | Answer::LoseResult),
                                            reason: match mode { Answer::Deny(r) => Some(r), _ => None },
                                            event_seq: seq,
                                            duplicate: false,
                                        };
                                        if r.granted { seen.actuated.push(command.command_id); }
                                        results.insert(command.command_id, r.clone());
                                        (mode != Answer::LoseResult).then_some(r)
                                    }
                                }
                                _ => None,
                            }
                        };
                        if let Some(result) = reply {
                            let m = ControllerMessage::CommandResult { result };
                            if sink.send(text(&m)).await.is_err() { return; }
                        }
                    }
                    out = out_rx.recv() => {
                        let Some(m) = out else { let _ = sink.close().await; return };
                        if sink.send(text(&m)).await.is_err() { return; }
                    }
                }
            }
        });
        let c = TestController {
            id,
            key: Arc::new(key),
            seen,
            answer,
            out,
            task,
        };
        c.wait(|s| !s.configs.is_empty() && !s.revocations.is_empty())
            .await;
        c
    }

    pub fn send(&self, m: ControllerMessage) {
        self.out.send(m).unwrap();
    }

    pub fn heartbeat(&self) {
        self.send(ControllerMessage::Heartbeat {
            status: ControllerStatus {
                config_version: 1,
                revocation_serial: 0,
                pending_events: 0,
                last_event_seq: 0,
            },
        });
    }

    pub fn upload(&self, events: Vec<DoorEvent>) {
        self.send(ControllerMessage::Events { events });
    }

    pub fn set_answer(&self, a: Answer) {
        self.answer.send_replace(a);
    }

    /// Polls the observed state until `cond` holds (bounded; never a timed assertion).
    pub async fn wait(&self, cond: impl Fn(&Seen) -> bool) {
        for _ in 0..500 {
            if cond(&self.seen.lock().unwrap()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("condition not reached: {:?}", self.seen.lock().unwrap());
    }

    pub fn close(self) {
        drop(self);
    }
}

fn text(m: &ControllerMessage) -> tokio_tungstenite::tungstenite::Message {
    tokio_tungstenite::tungstenite::Message::Text(serde_json::to_string(m).unwrap().into())
}

async fn next_server<S>(stream: &mut S) -> Option<ServerMessage>
where
    S: futures::Stream<
            Item = Result<
                tokio_tungstenite::tungstenite::Message,
                tokio_tungstenite::tungstenite::Error,
            >,
        > + Unpin,
{
    loop {
        match stream.next().await? {
            Ok(tokio_tungstenite::tungstenite::Message::Text(t)) => {
                return Some(serde_json::from_str(&t).expect("server message parses"));
            }
            Ok(tokio_tungstenite::tungstenite::Message::Close(_)) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}

/// Provisions and connects the org's controller.
pub async fn connect_controller(srv: &TestServer, org: &Org) -> TestController {
    let (id, key) = provision(srv, &org.provisioning_token).await;
    assert_eq!(id.to_uuid_string(), org.controller);
    TestController::connect(srv, id, key).await
}

/// Polls an HTTP condition (bounded).
pub async fn eventually<F, Fut>(mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    // 15 s: a webhook's two retries take about 3 s, longer on a loaded 2-core machine.
    for _ in 0..1500 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not reached in 15 s");
}
