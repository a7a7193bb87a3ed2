//! Prints one BLE unlock exchange between a phone and a door, frame by frame, followed by a
//! refused attempt. Run: `cargo run -p keyway-protocol --example handshake_trace`.

use keyway_protocol::certificate::ControllerCertificate;
use keyway_protocol::credential::{Credential, Holder, HolderKind, ScopeEntry};
use keyway_protocol::gatt;
use keyway_protocol::handshake::{
    Action, AuthInput, DoorConfig, DoorIdentity, DoorMemory, Initiator, LockPolicy, Responder,
};
use keyway_protocol::time::TimeBounds;
use keyway_protocol::{Id, SigningKey, TrustedKeys};
use ring::rand::SystemRandom;
use std::time::{SystemTime, UNIX_EPOCH};

fn show(dir: &str, name: &str, frame: &[u8]) {
    let frags = gatt::fragment(frame, 185).map(|f| f.len()).unwrap_or(0);
    println!(
        "{dir} {name:<9} {:>4} bytes, {frags} GATT fragment(s) at MTU 185",
        frame.len()
    );
    println!("    {}", hex_preview(frame));
}

fn hex_preview(b: &[u8]) -> String {
    let h: String = b.iter().take(40).map(|x| format!("{x:02x}")).collect();
    if b.len() > 40 { format!("{h}…") } else { h }
}

fn main() {
    let rng = SystemRandom::new();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let org = Id([0x30; 16]);
    let lock = Id([0x10; 16]);
    let org_key = SigningKey::generate(&rng).unwrap().0;
    let device = SigningKey::generate(&rng).unwrap().0;
    let controller = SigningKey::generate(&rng).unwrap().0;
    let certificate = ControllerCertificate {
        org,
        controller: Id([0x40; 16]),
        public_key: controller.public_key(),
        locks: vec![lock],
        not_before: now - 60,
        not_after: now + 86_400,
    }
    .sign(&org_key, &rng)
    .unwrap();
    let credential = |not_after| {
        Credential {
            id: Id([0x50; 16]),
            org,
            holder: Holder {
                kind: HolderKind::User,
                id: Id([0x60; 16]),
            },
            device_key: device.public_key(),
            scope: vec![ScopeEntry::Lock(lock)],
            not_before: now - 60,
            not_after,
            max_uses: None,
            schedule: None,
        }
        .sign(&org_key, &rng)
        .unwrap()
    };
    let trusted = TrustedKeys::single(org, org_key.public_key());
    let policy = LockPolicy {
        id: lock,
        place: None,
        walk_up: false,
        walk_up_min_rssi: -70,
        lockdown: false,
        relay_ms: 3000,
    };
    let config = DoorConfig::new(org, trusted.clone(), vec![policy]);
    let identity = DoorIdentity {
        key: controller,
        certificate,
    };
    let mut memory = DoorMemory::default();

    let attempts = [
        ("a valid", credential(now + 3600)),
        ("an expired", credential(now - 1)),
    ];
    for (n, (label, cred)) in attempts.into_iter().enumerate() {
        println!("== tap unlock with {label} credential ==");
        let (mut phone, hello) = Initiator::start(&rng, lock, Action::Unlock).unwrap();
        show("phone ->", "HELLO", &hello);
        let mut door = Responder::new();
        let challenge = door.on_hello(&hello, &identity, &config, &rng, 0).unwrap();
        show("door  ->", "CHALLENGE", &challenge);
        let req = phone
            .on_challenge(&challenge, &trusted, now, Id([0x70 + n as u8; 16]))
            .unwrap();
        println!(
            "phone    verified door {} before revealing anything",
            req.controller
        );
        let auth = phone
            .auth_frame(&cred, &device.sign(&rng, &req.message).unwrap())
            .unwrap();
        show("phone ->", "AUTH", &auth);
        let input = AuthInput {
            config: &config,
            time: Some(TimeBounds {
                earliest: now,
                latest: now,
            }),
            mono_ms: 5,
            rssi: None,
            range_m: None,
        };
        let decision = door.on_auth(&auth, &input, &memory).unwrap();
        memory.record_decision(&decision, 1);
        let result = door.result_frame(&decision, 1).unwrap();
        show("door  ->", "RESULT", &result);
        let body = phone.on_result(&result).unwrap();
        match body.reason {
            None => println!(
                "result: granted, relay {} ms, event #{}\n",
                body.relay_ms, body.event_seq
            ),
            Some(r) => println!("result: denied — {} ({})\n", r.message(), r.code()),
        }
    }
}
