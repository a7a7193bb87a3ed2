//! Fixtures for update-level tests: canned server answers, effect helpers and a real door
//! (the protocol crate's `Responder`) to answer BLE exchanges.

use super::api::{CredentialResponse, Lock, Place};
use super::{Cmd, Effect, Event, HeldCredential, Model, Session};
use crate::effects::{BleOperation, BleOutput, SigningOperation, SigningOutput};
use base64::Engine;
use crux_core::Request;
use crux_http::protocol::{HttpRequest, HttpResponse, HttpResult};
use keyway_protocol::certificate::ControllerCertificate;
use keyway_protocol::credential::{Credential, Holder, HolderKind, ScopeEntry};
use keyway_protocol::handshake::{
    AuthInput, DoorConfig, DoorIdentity, DoorMemory, LockPolicy, Responder,
};
use keyway_protocol::time::TimeBounds;
use keyway_protocol::{Id, SigningKey, TrustedKeys};
use ring::rand::SystemRandom;

pub const BASE: &str = "http://keyway.test";
pub const ORG_A: &str = "0a0a0a0a-0000-4000-8000-000000000001";
pub const ORG_B: &str = "0b0b0b0b-0000-4000-8000-000000000002";
pub const PLACE: &str = "0c0c0c0c-0000-4000-8000-000000000003";
pub const LOCK: &str = "0d0d0d0d-0000-4000-8000-000000000004";
/// Wall clock used by tests, unix seconds.
pub const NOW_S: u64 = 1_800_000_000;

pub fn login_json() -> serde_json::Value {
    serde_json::json!({
        "token": "tok",
        "user": {"id": "u1", "email": "ada@example.com", "name": "Ada"},
        "memberships": [
            {"org": {"id": ORG_A, "name": "Acme"}, "role": "member"},
            {"org": {"id": ORG_B, "name": "Beta"}, "role": "admin"}
        ]
    })
}

pub fn signed_in_session() -> Session {
    let login: super::LoginResponse = serde_json::from_value(login_json()).unwrap();
    Session {
        token: login.token,
        user: login.user,
        memberships: login.memberships,
        current_org: Some(ORG_A.into()),
        guest: false,
    }
}

pub fn started_model() -> Model {
    Model {
        api_base: BASE.into(),
        ..Model::default()
    }
}

pub fn signed_in_model() -> Model {
    let mut m = started_model();
    m.session = Some(signed_in_session());
    m
}

pub fn place() -> Place {
    Place {
        id: PLACE.into(),
        name: "HQ".into(),
        time_zone: "Europe/London".into(),
        latitude: None,
        longitude: None,
    }
}

pub fn lock_id() -> Id {
    Id::parse(LOCK).unwrap()
}

pub fn lock() -> Lock {
    Lock {
        id: LOCK.into(),
        place_id: PLACE.into(),
        name: "Front door".into(),
        controller_id: None,
        walk_up_allowed: true,
        geofence_radius_m: None,
        reader_restriction: false,
        lockdown: false,
        online: true,
        short_id: hex::encode(keyway_protocol::advert::lock_short_id(lock_id())),
        tx_power: -59,
    }
}

pub fn list_json(items: Vec<serde_json::Value>) -> serde_json::Value {
    let n = items.len();
    serde_json::json!({"items": items, "total": n, "limit": 1000, "offset": 0})
}

pub fn ok_json(status: u16, body: serde_json::Value) -> HttpResult {
    HttpResult::Ok(HttpResponse::status(status).json(body).build())
}

pub fn error_json(status: u16, code: &str, message: &str) -> HttpResult {
    ok_json(
        status,
        serde_json::json!({"error": {"code": code, "message": message}}),
    )
}

/// A credential response whose bytes are only structurally valid (fresh keys each call).
pub fn credential_json(not_after: u64) -> serde_json::Value {
    let door = Door::new();
    serde_json::to_value(door.credential_response(not_after)).unwrap()
}

pub fn held_credential(not_after: u64) -> HeldCredential {
    Door::new().held(not_after)
}

pub fn take_http(cmd: &mut Cmd) -> Request<HttpRequest> {
    match cmd.effects().find(|e| matches!(e, Effect::Http(_))) {
        Some(Effect::Http(r)) => r,
        other => panic!("expected an Http effect, got {other:?}"),
    }
}

/// The next Http effect whose URL contains `part`, skipping others (left unresolved).
pub fn take_http_matching(cmd: &mut Cmd, part: &str) -> Request<HttpRequest> {
    for e in cmd.effects() {
        if let Effect::Http(r) = e
            && r.operation.url.contains(part)
        {
            return r;
        }
    }
    panic!("no Http effect for {part}")
}

pub fn take_signing(cmd: &mut Cmd) -> Request<SigningOperation> {
    match cmd.effects().find(|e| matches!(e, Effect::Signing(_))) {
        Some(Effect::Signing(r)) => r,
        other => panic!("expected a Signing effect, got {other:?}"),
    }
}

pub fn take_ble(cmd: &mut Cmd) -> Request<BleOperation> {
    match cmd.effects().find(|e| matches!(e, Effect::Ble(_))) {
        Some(Effect::Ble(r)) => r,
        other => panic!("expected a Ble effect, got {other:?}"),
    }
}

pub fn resolve_kv_get(cmd: &mut Cmd, key: &str, value: Option<Vec<u8>>) {
    let get = |e: &Effect| matches!(e, Effect::KeyValue(r) if matches!(r.operation, crux_kv::KeyValueOperation::Get { .. }));
    let mut req = match cmd.effects().find(get) {
        Some(Effect::KeyValue(r)) => r,
        other => panic!("expected KeyValue get {key}, got {other:?}"),
    };
    match &req.operation {
        crux_kv::KeyValueOperation::Get { key: k } => assert_eq!(k, key),
        other => panic!("expected get {key}, got {other:?}"),
    }
    let value = match value {
        Some(v) => crux_kv::value::Value::Bytes(v),
        None => crux_kv::value::Value::None,
    };
    req.resolve(crux_kv::KeyValueResult::Ok {
        response: crux_kv::KeyValueResponse::Get { value },
    })
    .unwrap();
}

pub fn resolve_now(cmd: &mut Cmd, unix_s: u64) {
    let mut req = match cmd.effects().find(|e| matches!(e, Effect::Time(_))) {
        Some(Effect::Time(r)) => r,
        other => panic!("expected a Time effect, got {other:?}"),
    };
    req.resolve(crux_time::TimeResponse::Now {
        instant: crux_time::Instant::new(unix_s, 0),
    })
    .unwrap();
}

/// Runs every event a command emitted through `update`, returning the follow-up commands.
pub fn drain(app: &super::Keyway, model: &mut Model, cmd: &mut Cmd) -> Vec<Cmd> {
    use crux_core::App;
    let events: Vec<Event> = cmd.events().collect();
    events.into_iter().map(|e| app.update(e, model)).collect()
}

/// An organization with one controller driving [`LOCK`], and a phone device key.
pub struct Door {
    pub org: Id,
    pub org_key: SigningKey,
    pub device_key: SigningKey,
    pub identity: DoorIdentity,
    pub config: DoorConfig,
    pub memory: DoorMemory,
    pub responder: Responder,
    /// How many times the door drove its relay.
    pub opened: u32,
    rng: SystemRandom,
}

impl Door {
    pub fn new() -> Self {
        let rng = SystemRandom::new();
        let org = Id::parse(ORG_A).unwrap();
        let (org_key, _) = SigningKey::generate(&rng).unwrap();
        let (device_key, _) = SigningKey::generate(&rng).unwrap();
        let (controller_key, _) = SigningKey::generate(&rng).unwrap();
        let certificate = ControllerCertificate {
            org,
            controller: Id([7; 16]),
            public_key: controller_key.public_key(),
            locks: vec![lock_id()],
            not_before: NOW_S - 86_400,
            not_after: NOW_S + 86_400 * 365,
        }
        .sign(&org_key, &rng)
        .unwrap();
        let trusted = TrustedKeys::single(org, org_key.public_key());
        let config = DoorConfig::new(
            org,
            trusted,
            vec![LockPolicy {
                id: lock_id(),
                place: Some(Id::parse(PLACE).unwrap()),
                walk_up: true,
                walk_up_min_rssi: -80,
                lockdown: false,
                relay_ms: 3000,
            }],
        );
        Self {
            org,
            org_key,
            device_key,
            identity: DoorIdentity {
                key: controller_key,
                certificate,
            },
            config,
            memory: DoorMemory::default(),
            responder: Responder::new(),
            opened: 0,
            rng,
        }
    }

    pub fn credential_response(&self, not_after: u64) -> CredentialResponse {
        self.credential_response_with_id(not_after, Id([3; 16]))
    }

    /// A credential like [`Self::credential_response`] with its own id, as a refresh gives.
    pub fn credential_response_with_id(&self, not_after: u64, id: Id) -> CredentialResponse {
        let cred = Credential {
            id,
            org: self.org,
            holder: Holder {
                kind: HolderKind::User,
                id: Id([4; 16]),
            },
            device_key: self.device_key.public_key(),
            scope: vec![ScopeEntry::Lock(lock_id())],
            not_before: NOW_S - 3600,
            not_after,
            max_uses: None,
            schedule: None,
        };
        let bytes = cred.sign(&self.org_key, &self.rng).unwrap();
        CredentialResponse {
            credential: base64::engine::general_purpose::STANDARD.encode(bytes),
            not_after,
            trusted_keys: TrustedKeys::single(self.org, self.org_key.public_key()),
            refresh_after: not_after - 3600,
            issued_at: None,
        }
    }

    pub fn held(&self, not_after: u64) -> HeldCredential {
        HeldCredential {
            org: ORG_A.into(),
            response: self.credential_response(not_after),
        }
    }

    /// The door's decision on AUTH frame `message`: remembered, the relay driven when it
    /// grants, and the RESULT frame it sends.
    fn on_auth(&mut self, message: &[u8]) -> Vec<u8> {
        let input = AuthInput {
            config: &self.config,
            time: Some(TimeBounds {
                earliest: NOW_S,
                latest: NOW_S,
            }),
            mono_ms: 1_500,
            rssi: Some(-50),
            range_m: None,
        };
        let decision = self
            .responder
            .on_auth(message, &input, &self.memory)
            .unwrap();
        let seq = u64::from(self.opened) + 1;
        let reply = self.responder.result_frame(&decision, seq).unwrap();
        if decision.actuate() {
            self.opened += 1;
        }
        self.memory.record_decision(&decision, seq);
        reply
    }

    /// The door runs the pending AUTH (and opens if it grants), but the phone gets `instead`:
    /// a lost link, a forged or garbled frame.
    pub fn answer_auth_with(&mut self, cmd: &mut Cmd, instead: BleOutput) {
        let mut request = match cmd.effects().find(|e| matches!(e, Effect::Ble(_))) {
            Some(Effect::Ble(r)) => r,
            other => panic!("expected the AUTH exchange, got {other:?}"),
        };
        let BleOperation::Exchange { message, .. } = request.operation.clone() else {
            panic!("expected the AUTH exchange, got {:?}", request.operation);
        };
        let _ = self.on_auth(&message);
        request.resolve(instead).unwrap();
    }

    /// Answers one BLE operation as the door (and the phone's key) would.
    pub fn answer(&mut self, cmd: &mut Cmd) {
        let effect = cmd
            .effects()
            .find(|e| matches!(e, Effect::Ble(_) | Effect::Signing(_)))
            .expect("a BLE or signing effect");
        match effect {
            Effect::Ble(mut r) => {
                let out = match &r.operation {
                    BleOperation::Connect { .. } => BleOutput::Connected { connection: 1 },
                    BleOperation::Exchange { message, .. } if message[0] == 0x01 => {
                        self.responder = Responder::new();
                        let reply = self
                            .responder
                            .on_hello(message, &self.identity, &self.config, &self.rng, 1_000)
                            .map_err(|e| e.reason().unwrap())
                            .unwrap_or_else(keyway_protocol::handshake::frames::encode_error);
                        BleOutput::Reply { message: reply }
                    }
                    BleOperation::Exchange { message, .. } => BleOutput::Reply {
                        message: self.on_auth(message),
                    },
                    BleOperation::Disconnect { .. } => panic!("disconnect is a notification"),
                };
                r.resolve(out).unwrap();
            }
            Effect::Signing(mut r) => {
                let out = match &r.operation {
                    SigningOperation::Sign { message } => SigningOutput::Signature {
                        signature: self.device_key.sign(&self.rng, message).unwrap().0.to_vec(),
                    },
                    SigningOperation::PublicKey => SigningOutput::PublicKey {
                        key: self.device_key.public_key().0.to_vec(),
                    },
                };
                r.resolve(out).unwrap();
            }
            _ => unreachable!(),
        }
    }
}
