//! # keyway-channel
//!
//! The controller channel: door controllers dial out to the server over a WebSocket
//! (`GET /api/v1/controllers/connect`) and exchange JSON text frames, one message per frame,
//! tagged by `"type"`. Binary objects signed by the organization (certificates, revocation
//! lists, time statements) travel as standard base64 of their `keyway-protocol` encoding;
//! keys, nonces and signatures as lower-case hex.
//!
//! Session:
//! 1. server → `challenge` (32-byte nonce)
//! 2. controller → `hello` (its id and an ECDSA P-256 signature with its controller key over
//!    [`auth_message`]); the server checks it against the key registered at provisioning.
//! 3. server → `welcome`, then `config` (again whenever it changes) and `revocations`.
//! 4. controller → `time_request` whenever it needs trusted time; server → `time`.
//! 5. server → `command` for cloud unlocks, carrying an org-signed order for this controller
//!    (the door executes nothing else); controller → `command_result` (at most once per
//!    command id: a repeated command id returns the first result without actuating).
//! 6. controller → `events` (its durable log, in sequence order); server → `events_ack` with
//!    the highest sequence stored. The server de-duplicates by (controller, seq).
//! 7. controller → `heartbeat` every [`HEARTBEAT_SECS`]; the server marks a controller offline
//!    after three missed heartbeats or a closed socket.

use keyway_protocol::credential::Holder;
use keyway_protocol::{Id, Reason, TrustedKeys};
use serde::{Deserialize, Serialize};

/// Channel protocol version, sent in `hello`.
pub const CHANNEL_VERSION: u32 = 1;
pub const HEARTBEAT_SECS: u64 = 10;
/// Largest text frame either side accepts.
pub const MAX_FRAME_BYTES: usize = 1 << 20;

/// What a controller signs to authenticate: context || server nonce || controller id.
pub fn auth_message(nonce: &[u8; 32], controller: Id) -> Vec<u8> {
    [
        b"keyway/v1 controller-auth".as_slice(),
        nonce,
        controller.as_bytes(),
    ]
    .concat()
}

/// Server → controller.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ServerMessage {
    Challenge {
        nonce: String,
    },
    Welcome {
        controller: Id,
        server_time_ms: u64,
    },
    Config {
        config: ControllerConfig,
    },
    /// Signed revocation list (base64); serials only grow.
    Revocations {
        list: String,
    },
    /// Signed `TimeStatement` (base64) answering a `time_request` nonce.
    Time {
        statement: String,
    },
    Command {
        command: CloudCommand,
    },
    EventsAck {
        up_to_seq: u64,
    },
    Error {
        code: String,
        message: String,
    },
}

/// Controller → server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ControllerMessage {
    Hello {
        controller: Id,
        version: u32,
        signature: String,
    },
    TimeRequest {
        nonce: String,
    },
    CommandResult {
        result: CommandResult,
    },
    Events {
        events: Vec<DoorEvent>,
    },
    Heartbeat {
        status: ControllerStatus,
    },
}

/// Everything a controller needs to serve its doors offline.
///
/// Sealed by the organization (`keyway_protocol::door_trust`): a controller takes it only
/// under a seal from a key it already trusts, or one an endorsement chain from such a key
/// leads to, and trusts afterwards only keys from that set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControllerConfig {
    pub org: Id,
    pub controller: Id,
    /// Monotonic per controller; a controller ignores an older config.
    pub version: u64,
    /// Org-signed `ControllerCertificate` (base64) covering `locks`.
    pub certificate: String,
    pub trusted: TrustedKeys,
    pub locks: Vec<LockConfig>,
    /// `KeyEndorsement`s (base64), oldest first: every rotation of the organization's key.
    #[serde(default)]
    pub endorsements: Vec<String>,
    /// `ConfigSeal` (base64) over [`Self::digest`].
    #[serde(default)]
    pub seal: String,
    /// Fields from a newer server, kept so that the digest still covers them.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl ControllerConfig {
    /// What the seal signs: SHA-256 of this config's JSON without the seal, objects' keys
    /// sorted, so field order and fields this version does not know change nothing.
    pub fn digest(&self) -> [u8; 32] {
        let mut value = serde_json::to_value(self).expect("a config serializes");
        if let serde_json::Value::Object(fields) = &mut value {
            fields.remove("seal");
        }
        let mut bytes = Vec::new();
        canonical_json(&value, &mut bytes);
        keyway_protocol::door_trust::config_digest(&bytes)
    }
}

/// JSON with every object's keys in sorted order (whatever map type serde_json was built
/// with).
fn canonical_json(value: &serde_json::Value, out: &mut Vec<u8>) {
    use serde_json::Value;
    let scalar = |v: &Value, out: &mut Vec<u8>| {
        serde_json::to_writer(out, v).expect("JSON scalars serialize");
    };
    match value {
        Value::Object(fields) => {
            let mut keys: Vec<&String> = fields.keys().collect();
            keys.sort();
            out.push(b'{');
            for (n, key) in keys.into_iter().enumerate() {
                if n > 0 {
                    out.push(b',');
                }
                scalar(&Value::String(key.clone()), out);
                out.push(b':');
                canonical_json(&fields[key], out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    out.push(b',');
                }
                canonical_json(item, out);
            }
            out.push(b']');
        }
        other => scalar(other, out),
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LockConfig {
    pub id: Id,
    pub place: Option<Id>,
    pub name: String,
    pub walk_up: bool,
    pub walk_up_min_rssi: i16,
    pub lockdown: bool,
    pub relay_ms: u32,
    /// Received power at 1 m that the door advertises, dBm.
    pub tx_power: i8,
    /// Per-lock secret for the rotating proximity code (hex, 32 bytes).
    pub proximity_secret: String,
    /// Fields from a newer server (see [`ControllerConfig::extra`]).
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CloudCommand {
    pub command_id: Id,
    pub lock: Id,
    /// The user or guest the server authorised, for the door's log (not signed: it names
    /// who asked, it grants nothing).
    pub actor: Option<Holder>,
    pub issued_at_ms: u64,
    /// Base64 of the organization-signed `keyway_protocol::command::CommandOrder` for this
    /// controller, naming the same command id, lock and time; the door executes nothing
    /// without it.
    pub order: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandResult {
    pub command_id: Id,
    pub granted: bool,
    pub reason: Option<Reason>,
    pub event_seq: u64,
    /// True when the command id had already been executed (no second actuation).
    pub duplicate: bool,
}

/// How an attempt reached the door.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    Ble,
    WalkUp,
    Cloud,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DoorEventKind {
    UnlockAttempt,
    DoorOpened,
    DoorClosed,
    DoorHeldOpen,
    DoorForced,
}

/// One entry of a controller's durable event log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DoorEvent {
    /// Per controller, starting at 1, no gaps.
    pub seq: u64,
    pub at_ms: u64,
    pub kind: DoorEventKind,
    pub lock: Id,
    pub method: Option<Method>,
    pub granted: Option<bool>,
    pub reason: Option<Reason>,
    pub credential: Option<Id>,
    pub holder: Option<Holder>,
    pub command_id: Option<Id>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControllerStatus {
    pub config_version: u64,
    pub revocation_serial: u64,
    pub pending_events: u64,
    pub last_event_seq: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_tagged_json_and_strict() {
        let m = ServerMessage::EventsAck { up_to_seq: 7 };
        let text = serde_json::to_string(&m).unwrap();
        assert_eq!(text, r#"{"type":"events_ack","up_to_seq":7}"#);
        assert_eq!(serde_json::from_str::<ServerMessage>(&text).unwrap(), m);
        assert!(
            serde_json::from_str::<ServerMessage>(r#"{"type":"events_ack","up_to_seq":7,"x":1}"#)
                .is_err()
        );
        assert!(serde_json::from_str::<ControllerMessage>(r#"{"type":"nope"}"#).is_err());
    }

    #[test]
    fn auth_message_binds_nonce_and_controller() {
        let a = auth_message(&[1; 32], Id([2; 16]));
        assert_ne!(a, auth_message(&[1; 32], Id([3; 16])));
        assert_ne!(a, auth_message(&[4; 32], Id([2; 16])));
    }
}

#[cfg(test)]
mod config_digest_tests {
    use super::*;

    fn config() -> ControllerConfig {
        ControllerConfig {
            org: Id([1; 16]),
            controller: Id([2; 16]),
            version: 3,
            certificate: "cert".into(),
            trusted: TrustedKeys::default(),
            locks: vec![LockConfig {
                id: Id([3; 16]),
                place: None,
                name: "Front door".into(),
                walk_up: true,
                walk_up_min_rssi: -70,
                lockdown: false,
                relay_ms: 3000,
                tx_power: -59,
                proximity_secret: "00".repeat(32),
                extra: Default::default(),
            }],
            endorsements: vec![],
            seal: String::new(),
            extra: Default::default(),
        }
    }

    #[test]
    fn the_digest_covers_every_field_but_the_seal_and_survives_unknown_ones() {
        let c = config();
        let sealed = ControllerConfig {
            seal: "anything".into(),
            ..c.clone()
        };
        assert_eq!(c.digest(), sealed.digest());
        let mut locked = c.clone();
        locked.locks[0].lockdown = true;
        assert_ne!(c.digest(), locked.digest());

        // A newer server's fields, wherever they sit in its JSON, are kept and covered.
        let mut json = serde_json::to_value(&c).unwrap();
        json["locks"][0]["chime"] = serde_json::json!(true);
        json["zone"] = serde_json::json!("north");
        let text = serde_json::to_string(&json).unwrap();
        let from_newer: ControllerConfig = serde_json::from_str(&text).unwrap();
        assert_eq!(from_newer.locks[0].extra["chime"], serde_json::json!(true));
        let mut changed = json.clone();
        changed["locks"][0]["chime"] = serde_json::json!(false);
        let other: ControllerConfig =
            serde_json::from_str(&serde_json::to_string(&changed).unwrap()).unwrap();
        assert_ne!(from_newer.digest(), other.digest());
        assert_ne!(from_newer.digest(), c.digest());
        let round_trip: ControllerConfig =
            serde_json::from_str(&serde_json::to_string(&from_newer).unwrap()).unwrap();
        assert_eq!(round_trip.digest(), from_newer.digest());
    }
}
