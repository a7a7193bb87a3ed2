//! Deterministic test vectors (`docs/vectors/handshake-v1.json`).
//!
//! ECDSA signatures and ephemeral keys are randomised, so the file records one real exchange
//! together with its ECDH output; the test then re-derives every deterministic byte from it:
//! object and frame encodings, transcript hashes, session keys, both AEAD ciphertexts, the
//! proximity code and the advertisement, and verifies every signature. Regenerate with
//! `KEYWAY_WRITE_VECTORS=1 cargo test -p keyway-protocol --lib vectors`.

use crate::advert::{self, Advertisement};
use crate::certificate::ControllerCertificate;
use crate::credential::{
    Credential, Holder, HolderKind, Schedule, ScopeEntry, SignedCredential, Window,
};
use crate::gatt;
use crate::handshake::frames::{self, AuthBody, Challenge, Hello, ResultBody, Sealed};
use crate::handshake::keyschedule::{self, Direction, DirectionalKey, LAST_SHARED_SECRET};
use crate::handshake::{
    Action, AuthInput, DoorConfig, DoorIdentity, DoorMemory, Initiator, LockPolicy, Responder,
};
use crate::keys::{Signature, SigningKey};
use crate::time::TimeBounds;
use crate::{Id, TrustedKeys};
use ring::rand::SystemRandom;
use serde::{Deserialize, Serialize};

const PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../docs/vectors/handshake-v1.json"
);

#[derive(Serialize, Deserialize)]
struct Vectors {
    comment: String,
    now: u64,
    lock: Id,
    place: Id,
    command_id: Id,
    org_key_pkcs8: String,
    controller_key_pkcs8: String,
    device_key_pkcs8: String,
    credential: String,
    certificate: String,
    hello: String,
    challenge: String,
    auth: String,
    result: String,
    ecdh_shared_secret: String,
    th1: String,
    th2: String,
    key_phone_to_door: String,
    key_door_to_phone: String,
    auth_plaintext: String,
    result_plaintext: String,
    hello_fragments_mtu23: Vec<String>,
    proximity_secret: String,
    proximity_code: u32,
    lock_short_id: String,
    advertisement: String,
}

fn h(b: &[u8]) -> String {
    hex::encode(b)
}

fn u(s: &str) -> Vec<u8> {
    hex::decode(s).expect("hex in vector file")
}

fn generate() -> Vectors {
    let rng = SystemRandom::new();
    let now = 1_804_154_400; // 2027-03-04T10:00:00Z
    let (lock, place, org, command_id) = (
        Id([0x10; 16]),
        Id([0x20; 16]),
        Id([0x30; 16]),
        Id([0x77; 16]),
    );
    let (org_key, org_pkcs8) = SigningKey::generate(&rng).unwrap();
    let (ctl_key, ctl_pkcs8) = SigningKey::generate(&rng).unwrap();
    let (dev_key, dev_pkcs8) = SigningKey::generate(&rng).unwrap();
    let credential = Credential {
        id: Id([0x50; 16]),
        org,
        holder: Holder {
            kind: HolderKind::User,
            id: Id([0x60; 16]),
        },
        device_key: dev_key.public_key(),
        scope: vec![ScopeEntry::Lock(lock), ScopeEntry::Place(place)],
        not_before: now - 3600,
        not_after: now + 86_400,
        max_uses: Some(10),
        schedule: Some(Schedule {
            time_zone: "Europe/Berlin".into(),
            windows: vec![Window {
                weekdays: 0b0001_1111,
                start_minute: 420,
                end_minute: 1200,
            }],
        }),
    }
    .sign(&org_key, &rng)
    .unwrap();
    let certificate = ControllerCertificate {
        org,
        controller: Id([0x40; 16]),
        public_key: ctl_key.public_key(),
        locks: vec![lock],
        not_before: now - 86_400,
        not_after: now + 365 * 86_400,
    }
    .sign(&org_key, &rng)
    .unwrap();
    let trusted = TrustedKeys::single(org, org_key.public_key());
    let policy = LockPolicy {
        id: lock,
        place: Some(place),
        walk_up: true,
        walk_up_min_rssi: -70,
        lockdown: false,
        relay_ms: 3000,
    };
    let config = DoorConfig::new(org, trusted.clone(), vec![policy]);
    let identity = DoorIdentity {
        key: ctl_key,
        certificate: certificate.clone(),
    };

    let (mut phone, hello) = Initiator::start(&rng, lock, Action::Unlock).unwrap();
    let mut door = Responder::new();
    let challenge = door.on_hello(&hello, &identity, &config, &rng, 0).unwrap();
    let req = phone
        .on_challenge(&challenge, &trusted, now, command_id)
        .unwrap();
    let secret = LAST_SHARED_SECRET.with(|s| s.borrow().clone());
    let auth = phone
        .auth_frame(&credential, &dev_key.sign(&rng, &req.message).unwrap())
        .unwrap();
    let input = AuthInput {
        config: &config,
        time: Some(TimeBounds {
            earliest: now,
            latest: now,
        }),
        mono_ms: 10,
        rssi: None,
        range_m: None,
    };
    let decision = door.on_auth(&auth, &input, &DoorMemory::default()).unwrap();
    assert!(decision.actuate());
    let result = door.result_frame(&decision, 1).unwrap();
    assert!(phone.on_result(&result).unwrap().granted);

    let c = Challenge::decode(&challenge).unwrap();
    let th1 = keyschedule::transcript_hash(&[&hello, &c.encode_unsigned()]);
    let th2 = keyschedule::transcript_hash(&[&hello, &challenge]);
    let keys = keyschedule::derive_keys(&secret, &th2).unwrap();
    let open = |raw: &[u8; 32], dir, frame: &[u8], t| {
        let s = Sealed::decode(frame, t).unwrap();
        DirectionalKey::new(raw, dir)
            .open(t, s.counter, &s.ciphertext)
            .unwrap()
    };
    let auth_plain = open(
        &keys.phone_to_door,
        Direction::PhoneToDoor,
        &auth,
        frames::AUTH,
    );
    let result_plain = open(
        &keys.door_to_phone,
        Direction::DoorToPhone,
        &result,
        frames::RESULT,
    );
    let proximity_secret = [0x5a; 32];
    let code = advert::proximity_code(&proximity_secret, lock, now);
    let ad = Advertisement {
        lock_short_id: advert::lock_short_id(lock),
        tx_power: -59,
        proximity_code: code,
        flags: advert::FLAG_WALK_UP,
    };
    Vectors {
        comment:
            "Keyway BLE protocol v1 test vectors; see docs/protocol.md and protocol/src/vectors.rs"
                .into(),
        now,
        lock,
        place,
        command_id,
        org_key_pkcs8: h(&org_pkcs8),
        controller_key_pkcs8: h(&ctl_pkcs8),
        device_key_pkcs8: h(&dev_pkcs8),
        credential: h(&credential),
        certificate: h(&certificate),
        hello: h(&hello),
        challenge: h(&challenge),
        auth: h(&auth),
        result: h(&result),
        ecdh_shared_secret: h(&secret),
        th1: h(&th1),
        th2: h(&th2),
        key_phone_to_door: h(&keys.phone_to_door),
        key_door_to_phone: h(&keys.door_to_phone),
        auth_plaintext: h(&auth_plain),
        result_plaintext: h(&result_plain),
        hello_fragments_mtu23: gatt::fragment(&hello, 23)
            .unwrap()
            .iter()
            .map(|f| h(f))
            .collect(),
        proximity_secret: h(&proximity_secret),
        proximity_code: code,
        lock_short_id: h(&ad.lock_short_id),
        advertisement: h(&ad.encode()),
    }
}

#[test]
fn vectors_rederive_byte_for_byte() {
    if std::env::var_os("KEYWAY_WRITE_VECTORS").is_some() {
        let text = serde_json::to_string_pretty(&generate()).unwrap();
        std::fs::create_dir_all(std::path::Path::new(PATH).parent().unwrap()).unwrap();
        std::fs::write(PATH, text + "\n").unwrap();
    }
    let v: Vectors =
        serde_json::from_str(&std::fs::read_to_string(PATH).expect("vector file")).unwrap();
    let rng = SystemRandom::new();
    let org_key = SigningKey::from_pkcs8(&u(&v.org_key_pkcs8), &rng).unwrap();
    let ctl_key = SigningKey::from_pkcs8(&u(&v.controller_key_pkcs8), &rng).unwrap();
    let dev_key = SigningKey::from_pkcs8(&u(&v.device_key_pkcs8), &rng).unwrap();
    let trusted = TrustedKeys::single(Id([0x30; 16]), org_key.public_key());

    // Signed objects verify and re-encode to the same bytes (the TBS part is deterministic).
    let cred = SignedCredential::verify(&u(&v.credential), &trusted).unwrap();
    assert_eq!(cred.credential.device_key, dev_key.public_key());
    let resigned = cred.credential.sign(&org_key, &rng).unwrap();
    assert_eq!(
        resigned[..resigned.len() - 64],
        u(&v.credential)[..resigned.len() - 64]
    );
    let cert =
        ControllerCertificate::verify_for(&u(&v.certificate), &trusted, v.lock, v.now).unwrap();
    assert_eq!(cert.public_key, ctl_key.public_key());

    // Frames decode and re-encode identically.
    let hello = u(&v.hello);
    let challenge = u(&v.challenge);
    assert_eq!(Hello::decode(&hello).unwrap().encode(), hello);
    let c = Challenge::decode(&challenge).unwrap();
    assert_eq!(c.encode(), challenge);
    assert_eq!(c.certificate, u(&v.certificate));

    // Transcript and key schedule.
    let th1 = keyschedule::transcript_hash(&[&hello, &c.encode_unsigned()]);
    let th2 = keyschedule::transcript_hash(&[&hello, &challenge]);
    assert_eq!(h(&th1), v.th1);
    assert_eq!(h(&th2), v.th2);
    assert!(ctl_key.public_key().verify(
        &keyschedule::door_signed_message(&th1),
        &Signature(c.signature)
    ));
    let keys = keyschedule::derive_keys(&u(&v.ecdh_shared_secret), &th2).unwrap();
    assert_eq!(h(&keys.phone_to_door), v.key_phone_to_door);
    assert_eq!(h(&keys.door_to_phone), v.key_door_to_phone);

    // AEAD: sealing the recorded plaintexts with the derived keys gives the recorded frames.
    let mut tx = DirectionalKey::new(&keys.phone_to_door, Direction::PhoneToDoor);
    let (counter, ct) = tx.seal(frames::AUTH, &u(&v.auth_plaintext)).unwrap();
    assert_eq!(
        Sealed {
            frame_type: frames::AUTH,
            counter,
            ciphertext: ct
        }
        .encode(),
        u(&v.auth)
    );
    let mut tx = DirectionalKey::new(&keys.door_to_phone, Direction::DoorToPhone);
    let (counter, ct) = tx.seal(frames::RESULT, &u(&v.result_plaintext)).unwrap();
    assert_eq!(
        Sealed {
            frame_type: frames::RESULT,
            counter,
            ciphertext: ct
        }
        .encode(),
        u(&v.result)
    );

    // Plaintexts: the credential, a device signature over th2 || command id, a granted verdict.
    let auth = AuthBody::decode(&u(&v.auth_plaintext)).unwrap();
    assert_eq!(auth.encode(), u(&v.auth_plaintext));
    assert_eq!(auth.credential, u(&v.credential));
    assert_eq!(auth.command_id, v.command_id);
    let signed = keyschedule::device_signed_message(&th2, &v.command_id);
    assert!(
        dev_key
            .public_key()
            .verify(&signed, &Signature(auth.device_signature))
    );
    let result = ResultBody::decode(&u(&v.result_plaintext)).unwrap();
    assert_eq!(result.encode(), u(&v.result_plaintext));
    assert!(result.granted && result.reason.is_none() && result.relay_ms == 3000);

    // Fragmentation, proximity code and advertisement.
    let frags: Vec<String> = gatt::fragment(&hello, 23)
        .unwrap()
        .iter()
        .map(|f| h(f))
        .collect();
    assert_eq!(frags, v.hello_fragments_mtu23);
    let secret: [u8; 32] = u(&v.proximity_secret).try_into().unwrap();
    assert_eq!(
        advert::proximity_code(&secret, v.lock, v.now),
        v.proximity_code
    );
    assert_eq!(h(&advert::lock_short_id(v.lock)), v.lock_short_id);
    let ad = Advertisement::decode(&u(&v.advertisement)).unwrap();
    assert_eq!(
        (ad.proximity_code, ad.tx_power, ad.walk_up()),
        (v.proximity_code, -59, true)
    );
}
