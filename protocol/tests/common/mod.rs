//! A small world for handshake tests: one organization, one door serving two locks, one phone.
#![allow(dead_code)]

use keyway_protocol::certificate::ControllerCertificate;
use keyway_protocol::credential::{Credential, Holder, HolderKind, ScopeEntry};
use keyway_protocol::handshake::{
    Action, AuthInput, Decision, DoorConfig, DoorIdentity, DoorMemory, HandshakeError, Initiator,
    LockPolicy, Responder, ResultBody,
};
use keyway_protocol::time::TimeBounds;
use keyway_protocol::{Id, SigningKey, TrustedKeys};
use ring::rand::SystemRandom;

/// 2027-03-04 10:00:00 UTC, a Thursday (11:00 in Europe/Berlin).
pub const NOW: u64 = 1_804_154_400;
pub const LOCK: Id = Id([0x10; 16]);
pub const OTHER_LOCK: Id = Id([0x11; 16]);
pub const UNSERVED_LOCK: Id = Id([0x12; 16]);
pub const PLACE: Id = Id([0x20; 16]);
pub const ORG: Id = Id([0x30; 16]);

pub struct World {
    pub rng: SystemRandom,
    pub org_key: SigningKey,
    pub device_key: SigningKey,
    pub door: DoorIdentity,
    pub config: DoorConfig,
    pub memory: DoorMemory,
    pub phone_trust: TrustedKeys,
    pub mono_ms: u64,
    pub rssi: Option<i16>,
    /// The door's own ranged distance to the phone (`None`: it cannot range).
    pub range_m: Option<f64>,
    pub time: Option<TimeBounds>,
}

impl World {
    pub fn new() -> Self {
        let rng = SystemRandom::new();
        let (org_key, _) = SigningKey::generate(&rng).unwrap();
        let (device_key, _) = SigningKey::generate(&rng).unwrap();
        let (controller_key, _) = SigningKey::generate(&rng).unwrap();
        let cert = ControllerCertificate {
            org: ORG,
            controller: Id([0x40; 16]),
            public_key: controller_key.public_key(),
            locks: vec![LOCK, OTHER_LOCK],
            not_before: NOW - 86_400,
            not_after: NOW + 365 * 86_400,
        }
        .sign(&org_key, &rng)
        .unwrap();
        let trusted = TrustedKeys::single(ORG, org_key.public_key());
        let policy = |id| LockPolicy {
            id,
            place: Some(PLACE),
            walk_up: true,
            walk_up_min_rssi: -70,
            lockdown: false,
            relay_ms: 3000,
        };
        let config = DoorConfig::new(ORG, trusted.clone(), vec![policy(LOCK), policy(OTHER_LOCK)]);
        Self {
            rng,
            org_key,
            device_key,
            door: DoorIdentity {
                key: controller_key,
                certificate: cert,
            },
            config,
            memory: DoorMemory::default(),
            phone_trust: trusted,
            mono_ms: 1_000,
            rssi: Some(-55),
            range_m: None,
            time: Some(TimeBounds {
                earliest: NOW,
                latest: NOW,
            }),
        }
    }

    /// A credential for the world's device, valid a day around NOW, for LOCK.
    pub fn credential(&self) -> Credential {
        Credential {
            id: Id([0x50; 16]),
            org: ORG,
            holder: Holder {
                kind: HolderKind::User,
                id: Id([0x60; 16]),
            },
            device_key: self.device_key.public_key(),
            scope: vec![ScopeEntry::Lock(LOCK)],
            not_before: NOW - 3600,
            not_after: NOW + 3600,
            max_uses: None,
            schedule: None,
        }
    }

    pub fn sign(&self, c: &Credential) -> Vec<u8> {
        c.sign(&self.org_key, &self.rng).unwrap()
    }

    pub fn input(&self) -> AuthInput<'_> {
        AuthInput {
            config: &self.config,
            time: self.time,
            mono_ms: self.mono_ms,
            rssi: self.rssi,
            range_m: self.range_m,
        }
    }

    /// Runs HELLO and CHALLENGE and seals AUTH for `credential`, signed by `signer`.
    pub fn until_auth(&self, credential: &[u8], signer: &SigningKey) -> UpToAuth {
        let (mut phone, hello) = Initiator::start(&self.rng, LOCK, Action::Unlock).unwrap();
        let mut door = Responder::new();
        let challenge = door
            .on_hello(&hello, &self.door, &self.config, &self.rng, self.mono_ms)
            .unwrap();
        let req = phone
            .on_challenge(&challenge, &self.phone_trust, NOW, Id([0x77; 16]))
            .unwrap();
        let signature = signer.sign(&self.rng, &req.message).unwrap();
        let auth = phone.auth_frame(credential, &signature).unwrap();
        UpToAuth {
            phone,
            door,
            hello,
            auth,
        }
    }

    /// Runs a full exchange and, when granted, records it like a controller would.
    pub fn unlock(&mut self, lock: Id, action: Action, credential: &[u8], command: Id) -> Outcome {
        let (mut phone, hello) = Initiator::start(&self.rng, lock, action).unwrap();
        let mut door = Responder::new();
        let challenge =
            match door.on_hello(&hello, &self.door, &self.config, &self.rng, self.mono_ms) {
                Ok(c) => c,
                Err(e) => return Outcome::DoorRefusedHello(e),
            };
        let req = match phone.on_challenge(&challenge, &self.phone_trust, NOW, command) {
            Ok(r) => r,
            Err(e) => return Outcome::PhoneRefusedDoor(e),
        };
        let sig = self.device_key.sign(&self.rng, &req.message).unwrap();
        let auth = phone.auth_frame(credential, &sig).unwrap();
        let decision = match door.on_auth(&auth, &self.input(), &self.memory) {
            Ok(d) => d,
            Err(e) => return Outcome::DoorRefusedAuth(e),
        };
        let seq = self.memory.commands.len() as u64 + 100;
        self.memory.record_decision(&decision, seq);
        let result = door.result_frame(&decision, seq).unwrap();
        let body = phone.on_result(&result).unwrap();
        Outcome::Verdict(decision, body)
    }
}

/// Both ends of a handshake stopped just before the door reads AUTH.
pub struct UpToAuth {
    pub phone: Initiator,
    pub door: Responder,
    pub hello: Vec<u8>,
    pub auth: Vec<u8>,
}

#[derive(Debug)]
pub enum Outcome {
    DoorRefusedHello(HandshakeError),
    PhoneRefusedDoor(HandshakeError),
    DoorRefusedAuth(HandshakeError),
    Verdict(Decision, ResultBody),
}

impl Outcome {
    /// The reason both ends agree on, or None when granted.
    pub fn denial(&self) -> Option<keyway_protocol::Reason> {
        match self {
            Outcome::Verdict(d, body) => {
                assert_eq!(d.outcome.err(), body.reason, "door and phone disagree");
                body.reason
            }
            Outcome::DoorRefusedHello(e)
            | Outcome::PhoneRefusedDoor(e)
            | Outcome::DoorRefusedAuth(e) => Some(
                e.reason()
                    .expect("a protocol reason, not a local crypto failure"),
            ),
        }
    }
}
