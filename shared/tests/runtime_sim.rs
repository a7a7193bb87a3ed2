//! The Rust runtime end to end on loopback: a fake REST server (the contract in
//! `docs/interfaces.md`), a door on the simulated radio answering with the protocol's
//! `Responder`, and the core runtime with its `SimTransport`. Covers sign-in, device key
//! registration, credential issue, BLE tap unlock, cloud unlock when out of range, walk-up
//! on approach and restoring the session offline.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use base64::Engine;
use keyway_protocol::advert::{Advertisement, FLAG_WALK_UP, lock_short_id};
use keyway_protocol::certificate::ControllerCertificate;
use keyway_protocol::credential::{Credential, Holder, HolderKind, ScopeEntry};
use keyway_protocol::gatt::{self, Reassembler};
use keyway_protocol::handshake::{
    AuthInput, DoorConfig, DoorIdentity, DoorMemory, LockPolicy, Responder,
};
use keyway_protocol::time::TimeBounds;
use keyway_protocol::{Id, PublicKey, SigningKey, TrustedKeys};
use keyway_shared::app::{Event, Route, ViewModel};
use keyway_shared::runtime::sim::SimTransport;
use keyway_shared::runtime::{
    Runtime, RuntimeConfig, SharedSigner, SoftwareSigner, render_counter,
};
use keyway_sim_radio::{DoorSpec, HubConfig, Position, RadioHub};
use ring::rand::SystemRandom;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

const ORG: &str = "0a0a0a0a-0000-4000-8000-000000000001";
const PLACE: &str = "0c0c0c0c-0000-4000-8000-000000000003";
const LOCK: &str = "0d0d0d0d-0000-4000-8000-000000000004";
const WAIT: Duration = Duration::from_secs(20);

fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

struct Org {
    id: Id,
    key: SigningKey,
    device: Mutex<Option<PublicKey>>,
    cloud_unlocks: AtomicUsize,
    proofs: Mutex<Vec<Value>>,
}

type Shared = Arc<Org>;

fn list(items: Vec<Value>) -> Json<Value> {
    let n = items.len();
    Json(json!({"items": items, "total": n, "limit": 1000, "offset": 0}))
}

async fn server(org: Shared) -> String {
    let app = Router::new()
        .route(
            "/api/v1/logins",
            post(|Json(body): Json<Value>| async move {
                if body["password"] != "pw" {
                    return (StatusCode::UNAUTHORIZED, Json(json!({"error": {"code": "unauthorized", "message": "bad credentials"}})));
                }
                (StatusCode::CREATED, Json(json!({
                    "token": "tok-1",
                    "user": {"id": "u1", "email": body["email"], "name": "Ada"},
                    "memberships": [{"org": {"id": ORG, "name": "Acme"}, "role": "member"}]
                })))
            }),
        )
        .route("/api/v1/logins/current", delete(|| async { StatusCode::NO_CONTENT }))
        .route("/api/v1/orgs/{org}/places", get(|| async {
            list(vec![json!({"id": PLACE, "name": "HQ", "time_zone": "UTC"})])
        }))
        .route("/api/v1/orgs/{org}/locks", get(|| async {
            let short = hex::encode(lock_short_id(Id::parse(LOCK).unwrap()));
            list(vec![json!({
                "id": LOCK, "place_id": PLACE, "name": "Front door", "walk_up_allowed": true,
                "reader_restriction": false, "lockdown": false, "online": true,
                "short_id": short, "tx_power": -59
            })])
        }))
        .route("/api/v1/devices", post(|State(org): State<Shared>, Json(body): Json<Value>| async move {
            let raw = hex::decode(body["public_key"].as_str().unwrap()).unwrap();
            *org.device.lock().unwrap() = Some(PublicKey::from_slice(&raw).unwrap());
            (StatusCode::CREATED, Json(json!({"id": "dev-1"})))
        }))
        .route("/api/v1/devices/{id}", delete(|| async { StatusCode::NO_CONTENT }))
        .route("/api/v1/devices/{id}/credentials", post(|State(org): State<Shared>, Path(_id): Path<String>| async move {
            let device = org.device.lock().unwrap().expect("device registered first");
            let now = now_s();
            let bytes = Credential {
                id: Id([3; 16]),
                org: org.id,
                holder: Holder { kind: HolderKind::User, id: Id([4; 16]) },
                device_key: device,
                scope: vec![ScopeEntry::Place(Id::parse(PLACE).unwrap())],
                not_before: now - 60,
                not_after: now + 3600,
                max_uses: None,
                schedule: None,
            }
            .sign(&org.key, &SystemRandom::new())
            .unwrap();
            Json(json!({
                "credential": base64::engine::general_purpose::STANDARD.encode(bytes),
                "not_after": now + 3600,
                "refresh_after": now + 1800,
                "trusted_keys": TrustedKeys::single(org.id, org.key.public_key()),
            }))
        }))
        .route("/api/v1/locks/{id}/unlock", post(|State(org): State<Shared>, Json(body): Json<Value>| async move {
            org.cloud_unlocks.fetch_add(1, Ordering::SeqCst);
            org.proofs.lock().unwrap().push(body);
            Json(json!({"granted": true, "event_id": "e1", "command_id": "c1", "duplicate": false}))
        }))
        .with_state(org);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// A door on the radio hub that answers handshakes; returns (hub address, grants counter).
async fn door(org: &Org) -> (String, Arc<AtomicUsize>) {
    let rng = SystemRandom::new();
    let hub = RadioHub::bind("127.0.0.1:0", HubConfig::default())
        .await
        .unwrap();
    let addr = hub.local_addr().to_string();
    let lock = Id::parse(LOCK).unwrap();
    let advert = Advertisement {
        lock_short_id: lock_short_id(lock),
        tx_power: -59,
        proximity_code: 0x123456,
        flags: FLAG_WALK_UP,
    };
    let mut radio = hub
        .add_door(DoorSpec {
            id: LOCK.into(),
            position: Position { x: 0.0, y: 0.0 },
            tx_power_at_1m: -59,
            advertising_interval_ms: Some(100),
            advertisement: advert.encode().to_vec(),
        })
        .unwrap();
    let (controller_key, _) = SigningKey::generate(&rng).unwrap();
    let certificate = ControllerCertificate {
        org: org.id,
        controller: Id([7; 16]),
        public_key: controller_key.public_key(),
        locks: vec![lock],
        not_before: now_s() - 86_400,
        not_after: now_s() + 86_400,
    }
    .sign(&org.key, &rng)
    .unwrap();
    let identity = Arc::new(DoorIdentity {
        key: controller_key,
        certificate,
    });
    let config = Arc::new(DoorConfig::new(
        org.id,
        TrustedKeys::single(org.id, org.key.public_key()),
        vec![LockPolicy {
            id: lock,
            place: Some(Id::parse(PLACE).unwrap()),
            walk_up: true,
            walk_up_min_rssi: -75,
            lockdown: false,
            relay_ms: 3000,
        }],
    ));
    let grants = Arc::new(AtomicUsize::new(0));
    let g = grants.clone();
    let started = std::time::Instant::now();
    tokio::spawn(async move {
        let _hub = hub; // keep the air up
        let memory = Arc::new(Mutex::new(DoorMemory::default()));
        while let Some(mut link) = radio.accept().await {
            let (identity, config, memory, g) =
                (identity.clone(), config.clone(), memory.clone(), g.clone());
            tokio::spawn(async move {
                let rng = SystemRandom::new();
                let mut responder = Responder::new();
                let mut reassembler = Reassembler::new();
                let mut seq = 0u64;
                while let Some(frag) = link.next_write().await {
                    let Ok(Some(msg)) = reassembler.push(&frag) else {
                        continue;
                    };
                    let mono = started.elapsed().as_millis() as u64;
                    let reply = if msg.first() == Some(&0x01) {
                        match responder.on_hello(&msg, &identity, &config, &rng, mono) {
                            Ok(r) => r,
                            Err(e) => keyway_protocol::handshake::frames::encode_error(
                                e.reason().unwrap(),
                            ),
                        }
                    } else {
                        let input = AuthInput {
                            config: &config,
                            time: Some(TimeBounds {
                                earliest: now_s(),
                                latest: now_s(),
                            }),
                            mono_ms: mono,
                            rssi: link.rssi(),
                            range_m: None,
                        };
                        let decision = {
                            let mem = memory.lock().unwrap();
                            responder.on_auth(&msg, &input, &mem).unwrap()
                        };
                        seq += 1;
                        if decision.actuate() {
                            g.fetch_add(1, Ordering::SeqCst);
                            memory.lock().unwrap().record_decision(&decision, seq);
                        }
                        responder.result_frame(&decision, seq).unwrap()
                    };
                    for f in gatt::fragment(&reply, link.att_mtu()).unwrap() {
                        if link.notify(&f).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    (addr, grants)
}

struct Phone {
    rt: Runtime,
    renders: watch::Receiver<u64>,
    radio: Arc<SimTransport>,
}

impl Phone {
    async fn new(api: &str, hub: &str, dir: &std::path::Path) -> Self {
        Self::with_signer(api, hub, dir, None).await
    }

    async fn with_signer(
        api: &str,
        hub: &str,
        dir: &std::path::Path,
        signer: Option<SharedSigner>,
    ) -> Self {
        let radio = Arc::new(SimTransport::connect(hub, "test-phone").await.unwrap());
        let (observer, renders) = render_counter();
        let rt = Runtime::new(
            RuntimeConfig {
                api_base: api.into(),
                data_dir: dir.into(),
                ca_file: None,
            },
            radio.clone(),
            signer,
            observer,
        )
        .unwrap();
        Self { rt, renders, radio }
    }

    async fn wait(&self, what: &str, f: impl FnMut(&ViewModel) -> bool) -> ViewModel {
        match self.rt.wait_for(&self.renders, WAIT, f).await {
            Some(v) => v,
            None => panic!("timed out waiting for {what}: {:#?}", self.rt.view()),
        }
    }

    async fn sign_in(&self) {
        self.wait("ready", |v| v.ready).await;
        self.rt.send(Event::Login {
            email: "ada@example.com".into(),
            password: "pw".into(),
        });
        self.wait("credential", |v| {
            v.signed_in && v.credential.is_some() && !v.loading
        })
        .await;
    }

    async fn unlock(&self) -> keyway_shared::app::view::UnlockView {
        self.rt.send(Event::Unlock { lock: LOCK.into() });
        let v = self
            .wait("unlock result", |v| {
                v.unlock
                    .as_ref()
                    .is_some_and(|u| u.state == "granted" || u.state == "denied")
            })
            .await;
        v.unlock.unwrap()
    }
}

fn org() -> Shared {
    Arc::new(Org {
        id: Id::parse(ORG).unwrap(),
        key: SigningKey::generate(&SystemRandom::new()).unwrap().0,
        device: Mutex::new(None),
        cloud_unlocks: AtomicUsize::new(0),
        proofs: Mutex::new(vec![]),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tap_unlock_uses_ble_at_the_door_and_cloud_from_afar() {
    let org = org();
    let api = server(org.clone()).await;
    let (hub, grants) = door(&org).await;
    let dir = tempfile::tempdir().unwrap();
    let phone = Phone::new(&api, &hub, dir.path()).await;
    phone.radio.set_position(0.5, 0.0).await.unwrap();
    phone.sign_in().await;
    assert!(
        org.device.lock().unwrap().is_some(),
        "device key registered"
    );

    phone.rt.send(Event::StartScan);
    phone
        .wait("door nearby", |v| {
            v.places.iter().flat_map(|p| &p.locks).any(|l| l.nearby)
        })
        .await;
    let u = phone.unlock().await;
    assert_eq!(
        (u.state.as_str(), u.route),
        ("granted", Some(Route::Ble)),
        "{u:?}"
    );
    assert_eq!(grants.load(Ordering::SeqCst), 1);
    assert_eq!(org.cloud_unlocks.load(Ordering::SeqCst), 0);

    // Far away and nothing heard for a while: the cloud, without a proximity proof.
    phone.rt.send(Event::StopScan);
    phone.rt.send(Event::DismissUnlock);
    let far = Phone::new(&api, &hub, dir.path()).await; // same storage: restored session
    far.radio.set_position(500.0, 0.0).await.unwrap();
    far.wait("restored", |v| {
        v.ready && v.signed_in && v.credential.is_some()
    })
    .await;
    let u = far.unlock().await;
    assert_eq!(
        (u.state.as_str(), u.route),
        ("granted", Some(Route::Cloud)),
        "{u:?}"
    );
    assert_eq!(org.cloud_unlocks.load(Ordering::SeqCst), 1);
    assert!(
        org.proofs.lock().unwrap()[0]
            .get("proximity_proof")
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn walk_up_unlocks_once_on_approach() {
    let org = org();
    let api = server(org.clone()).await;
    let (hub, grants) = door(&org).await;
    let dir = tempfile::tempdir().unwrap();
    let phone = Phone::new(&api, &hub, dir.path()).await;
    phone.radio.set_position(12.0, 0.0).await.unwrap();
    phone.sign_in().await;
    phone.rt.send(Event::SetWalkUp {
        lock: LOCK.into(),
        enabled: true,
    });
    phone.rt.send(Event::StartScan);
    phone
        .wait("door heard far away", |v| {
            v.places.iter().flat_map(|p| &p.locks).any(|l| l.nearby)
        })
        .await;
    // Walk to the door at about 1.3 m/s and stay there.
    phone
        .radio
        .run_script(&[(0, 12.0, 0.0), (9_000, 0.4, 0.0)])
        .await
        .unwrap();
    let v = phone
        .wait("walk-up unlock", |v| {
            v.unlock
                .as_ref()
                .is_some_and(|u| u.walk_up && u.state == "granted")
        })
        .await;
    assert_eq!(v.unlock.unwrap().route, Some(Route::Ble));
    assert!(v.last_walk_up.unwrap().skipped.is_none());
    // Standing at the door does not unlock again.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(grants.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_restore_shows_cached_doors_marked_stale() {
    let org = org();
    let api = server(org.clone()).await;
    let (hub, _) = door(&org).await;
    let dir = tempfile::tempdir().unwrap();
    {
        let phone = Phone::new(&api, &hub, dir.path()).await;
        phone.sign_in().await;
    }
    // The server is unreachable now (nothing listens on port 9).
    let phone = Phone::new("http://127.0.0.1:9", &hub, dir.path()).await;
    let v = phone
        .wait("offline list", |v| {
            v.ready && !v.loading && v.notice.is_some()
        })
        .await;
    assert!(v.signed_in);
    assert!(v.stale);
    assert_eq!(v.places[0].locks[0].name, "Front door");
    assert!(
        v.credential.is_some(),
        "the offline credential survives restarts"
    );
}

/// A platform key that takes its time to sign, as one waiting for the user's presence does.
struct SlowKey(SoftwareSigner);

impl keyway_protocol::keys::DeviceSigner for SlowKey {
    fn public_key(&self) -> PublicKey {
        self.0.public_key()
    }

    fn sign(&self, msg: &[u8]) -> Result<keyway_protocol::Signature, keyway_protocol::CryptoError> {
        std::thread::sleep(Duration::from_millis(1_500));
        self.0.sign(msg)
    }
}

/// The longest the runtime's thread went without running a 10 ms ticker, while `f` ran.
async fn longest_stall<T>(f: impl std::future::Future<Output = T>) -> (T, Duration) {
    let stall = Arc::new(Mutex::new(Duration::ZERO));
    let s = stall.clone();
    let ticker = tokio::spawn(async move {
        let mut last = std::time::Instant::now();
        loop {
            tokio::time::sleep(Duration::from_millis(10)).await;
            let gap = last.elapsed();
            let mut worst = s.lock().unwrap();
            *worst = (*worst).max(gap);
            last = std::time::Instant::now();
        }
    });
    let out = f.await;
    ticker.abort();
    let worst = *stall.lock().unwrap();
    (out, worst)
}

// One runtime thread: a signature made on it would stop everything else meanwhile.
#[tokio::test(flavor = "current_thread")]
async fn a_slow_device_key_signs_off_the_runtime_threads() {
    let org = org();
    let api = server(org.clone()).await;
    let (hub, grants) = door(&org).await;
    let dir = tempfile::tempdir().unwrap();
    let key = SlowKey(SoftwareSigner::generate().unwrap());
    let phone = Phone::with_signer(&api, &hub, dir.path(), Some(Arc::new(key))).await;
    phone.radio.set_position(0.5, 0.0).await.unwrap();
    phone.sign_in().await;
    phone.rt.send(Event::StartScan);
    phone
        .wait("door nearby", |v| {
            v.places.iter().flat_map(|p| &p.locks).any(|l| l.nearby)
        })
        .await;
    let (u, stall) = longest_stall(phone.unlock()).await;
    assert_eq!(
        (u.state.as_str(), u.route),
        ("granted", Some(Route::Ble)),
        "{u:?}"
    );
    assert_eq!(grants.load(Ordering::SeqCst), 1);
    // Well under the key's 1.5 s, with room for a loaded machine's scheduling.
    assert!(
        stall < Duration::from_millis(700),
        "the runtime's thread stalled for {stall:?} while the key signed"
    );
}
