//! The door state machine fed arbitrary HELLO and AUTH frames: errors only, never a panic.
#![no_main]
use keyway_protocol::certificate::ControllerCertificate;
use keyway_protocol::handshake::{AuthInput, DoorConfig, DoorIdentity, DoorMemory, LockPolicy, Responder};
use keyway_protocol::{Id, SigningKey, TrustedKeys};
use libfuzzer_sys::fuzz_target;
use ring::rand::SystemRandom;
use std::sync::OnceLock;

struct Door {
    identity: DoorIdentity,
    config: DoorConfig,
}

fn door() -> &'static Door {
    static DOOR: OnceLock<Door> = OnceLock::new();
    DOOR.get_or_init(|| {
        let rng = SystemRandom::new();
        let org = SigningKey::generate(&rng).unwrap().0;
        let key = SigningKey::generate(&rng).unwrap().0;
        let lock = Id([0x10; 16]);
        let cert = ControllerCertificate {
            org: Id([1; 16]),
            controller: Id([2; 16]),
            public_key: key.public_key(),
            locks: vec![lock],
            not_before: 0,
            not_after: u64::MAX,
        }
        .sign(&org, &rng)
        .unwrap();
        let policy = LockPolicy { id: lock, place: None, walk_up: true, walk_up_min_rssi: -70, lockdown: false, relay_ms: 1 };
        Door {
            identity: DoorIdentity { key, certificate: cert },
            config: DoorConfig::new(Id([1; 16]), TrustedKeys::single(Id([1; 16]), org.public_key()), vec![policy]),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let d = door();
    let rng = SystemRandom::new();
    let split = data.first().copied().unwrap_or(0) as usize;
    let body = data.get(1..).unwrap_or_default();
    let (hello, auth) = body.split_at(split.min(body.len()));
    let mut responder = Responder::new();
    let _ = responder.on_hello(hello, &d.identity, &d.config, &rng, 0);
    let input = AuthInput { config: &d.config, time: None, mono_ms: 1, rssi: None };
    let _ = responder.on_auth(auth, &input, &DoorMemory::default());
});
