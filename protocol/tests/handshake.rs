//! Phone and door state machines run against each other in-process: the granted path and
//! every rejection, each ending in a specific `Reason` rather than a panic.

mod common;

use common::*;
use keyway_protocol::certificate::ControllerCertificate;
use keyway_protocol::credential::{Schedule, ScopeEntry, Window};
use keyway_protocol::handshake::frames::{self, Challenge, Hello, Sealed};
use keyway_protocol::handshake::{
    Action, HandshakeError, Initiator, Responder, USE_COUNT_GRACE_SECS, UseCount, UseCounting,
    WALK_UP_MAX_RANGE_M,
};
use keyway_protocol::revocation::RevocationList;
use keyway_protocol::time::TimeBounds;
use keyway_protocol::{Id, Reason, SigningKey, TrustedKey, TrustedKeys};

const CMD: Id = Id([0x77; 16]);

fn rejected(r: Reason) -> Option<Reason> {
    Some(r)
}

#[test]
fn tap_unlock_is_granted_and_both_ends_agree() {
    let mut w = World::new();
    let cred = w.sign(&w.credential());
    let outcome = w.unlock(LOCK, Action::Unlock, &cred, CMD);
    let Outcome::Verdict(decision, body) = outcome else {
        panic!("{outcome:?}")
    };
    assert!(decision.actuate());
    assert!(body.granted && !body.duplicate);
    assert_eq!(body.relay_ms, 3000);
    assert_eq!(body.command_id, CMD);
    assert_eq!(decision.credential_id, Some(Id([0x50; 16])));
    assert_eq!(decision.use_counting, UseCounting::Unlimited);
    assert_eq!(w.memory.commands.len(), 1);
    assert!(
        w.memory.uses.is_empty(),
        "a credential without a use limit leaves no count: {:?}",
        w.memory.uses
    );
}

#[test]
fn place_scope_opens_every_lock_of_the_place() {
    let mut w = World::new();
    let mut c = w.credential();
    c.scope = vec![ScopeEntry::Place(PLACE)];
    let cred = w.sign(&c);
    assert_eq!(
        w.unlock(OTHER_LOCK, Action::Unlock, &cred, CMD).denial(),
        None
    );
}

#[test]
fn retried_command_does_not_actuate_twice() {
    let mut w = World::new();
    let mut c = w.credential();
    c.max_uses = Some(5);
    let cred = w.sign(&c);
    assert_eq!(w.unlock(LOCK, Action::Unlock, &cred, CMD).denial(), None);
    // The RESULT was lost; the phone retries the same command on a new connection.
    let Outcome::Verdict(decision, body) = w.unlock(LOCK, Action::Unlock, &cred, CMD) else {
        panic!()
    };
    assert!(body.granted && body.duplicate);
    assert!(!decision.actuate(), "a retry must not open the door again");
    assert_eq!(
        body.event_seq, 100,
        "the retry reports the first attempt's event"
    );
    assert_eq!(w.memory.uses_of(Id([0x50; 16])), 1, "a retry is not a use");
    // A new command id is a new unlock.
    assert_eq!(
        w.unlock(LOCK, Action::Unlock, &cred, Id([0x78; 16]))
            .denial(),
        None
    );
    assert_eq!(w.memory.uses_of(Id([0x50; 16])), 2);
}

#[test]
fn expired_and_not_yet_valid() {
    let mut w = World::new();
    let mut c = w.credential();
    c.not_after = NOW;
    let cred = w.sign(&c);
    assert_eq!(
        w.unlock(LOCK, Action::Unlock, &cred, CMD).denial(),
        rejected(Reason::Expired)
    );
    let mut c = w.credential();
    c.not_before = NOW + 60;
    c.not_after = NOW + 3600;
    let cred = w.sign(&c);
    assert_eq!(
        w.unlock(LOCK, Action::Unlock, &cred, CMD).denial(),
        rejected(Reason::NotYetValid)
    );
}

#[test]
fn drifting_door_clock_refuses_when_validity_is_uncertain() {
    let mut w = World::new();
    let mut c = w.credential();
    c.not_after = NOW + 30;
    let cred = w.sign(&c);
    // The door only knows the time is within ±60 s: the credential may already be expired.
    w.time = Some(TimeBounds {
        earliest: NOW - 60,
        latest: NOW + 60,
    });
    assert_eq!(
        w.unlock(LOCK, Action::Unlock, &cred, CMD).denial(),
        rejected(Reason::Expired)
    );
    w.time = None;
    assert_eq!(
        w.unlock(LOCK, Action::Unlock, &cred, CMD).denial(),
        rejected(Reason::ClockUntrusted)
    );
}

#[test]
fn weekday_and_hours_windows_in_the_place_time_zone() {
    let mut w = World::new();
    let with_windows = |w: &World, windows: Vec<Window>| {
        let mut c = w.credential();
        c.schedule = Some(Schedule {
            time_zone: "Europe/Berlin".into(),
            windows,
        });
        w.sign(&c)
    };
    // NOW is Thursday 11:00 in Berlin (10:00 UTC). Each attempt is a new command.
    let weekdays_9_to_17 = Window {
        weekdays: 0b0001_1111,
        start_minute: 9 * 60,
        end_minute: 17 * 60,
    };
    let cred = with_windows(&w, vec![weekdays_9_to_17]);
    assert_eq!(
        w.unlock(LOCK, Action::Unlock, &cred, Id([1; 16])).denial(),
        None
    );

    let weekends = Window {
        weekdays: 0b0110_0000,
        start_minute: 0,
        end_minute: 1440,
    };
    let cred = with_windows(&w, vec![weekends]);
    assert_eq!(
        w.unlock(LOCK, Action::Unlock, &cred, Id([2; 16])).denial(),
        rejected(Reason::OutsideSchedule)
    );

    // 10:30-11:00 Berlin excludes 11:00 sharp; UTC interpretation would have allowed 10:00.
    let morning = Window {
        weekdays: 0b0111_1111,
        start_minute: 10 * 60,
        end_minute: 11 * 60,
    };
    let cred = with_windows(&w, vec![morning]);
    assert_eq!(
        w.unlock(LOCK, Action::Unlock, &cred, Id([3; 16])).denial(),
        rejected(Reason::OutsideSchedule)
    );
}

#[test]
fn wrong_lock_in_credential_and_lock_not_served_by_door() {
    let mut w = World::new();
    let cred = w.sign(&w.credential());
    assert_eq!(
        w.unlock(OTHER_LOCK, Action::Unlock, &cred, CMD).denial(),
        rejected(Reason::WrongLock)
    );
    assert!(matches!(
        w.unlock(UNSERVED_LOCK, Action::Unlock, &cred, CMD),
        Outcome::DoorRefusedHello(HandshakeError::Rejected(Reason::WrongLock))
    ));
}

#[test]
fn revoked_credential_is_refused() {
    let mut w = World::new();
    let cred = w.sign(&w.credential());
    let list = RevocationList {
        org: ORG,
        serial: 2,
        issued_at: NOW,
        revoked_before: 0,
        revoked: vec![Id([0x01; 16]), Id([0x50; 16])],
    }
    .sign(&w.org_key, &w.rng)
    .unwrap();
    w.config.revocations = RevocationList::verify(&list, &w.config.trusted).unwrap();
    assert_eq!(
        w.unlock(LOCK, Action::Unlock, &cred, CMD).denial(),
        rejected(Reason::Revoked)
    );
}

#[test]
fn a_full_list_revokes_every_credential_valid_from_before_its_cut() {
    let mut w = World::new();
    let older = w.credential();
    let mut newer = w.credential();
    newer.id = Id([0x51; 16]);
    newer.not_before = older.not_before + 1;
    let (older, newer) = (w.sign(&older), w.sign(&newer));
    let list = RevocationList {
        org: ORG,
        serial: 3,
        issued_at: NOW,
        // Neither credential is named: the cut alone refuses the one from before it.
        revoked_before: NOW - 3600 + 1,
        revoked: vec![Id([0x01; 16])],
    }
    .sign(&w.org_key, &w.rng)
    .unwrap();
    w.config.revocations = RevocationList::verify(&list, &w.config.trusted).unwrap();
    assert_eq!(
        w.unlock(LOCK, Action::Unlock, &older, CMD).denial(),
        rejected(Reason::Revoked)
    );
    assert_eq!(w.unlock(LOCK, Action::Unlock, &newer, CMD).denial(), None);
}

#[test]
fn unknown_and_rotated_org_keys() {
    let mut w = World::new();
    let (other_key, _) = SigningKey::generate(&w.rng).unwrap();
    let foreign = w.credential().sign(&other_key, &w.rng).unwrap();
    assert_eq!(
        w.unlock(LOCK, Action::Unlock, &foreign, CMD).denial(),
        rejected(Reason::UnknownOrgKey)
    );

    // Rotation: the door trusts old and new keys during the overlap ...
    let (new_key, _) = SigningKey::generate(&w.rng).unwrap();
    let old_cred = w.sign(&w.credential());
    let new_cred = w.credential().sign(&new_key, &w.rng).unwrap();
    w.config.trusted.keys.push(TrustedKey {
        org: ORG,
        public_key: new_key.public_key(),
    });
    assert_eq!(
        w.unlock(LOCK, Action::Unlock, &old_cred, Id([1; 16]))
            .denial(),
        None
    );
    assert_eq!(
        w.unlock(LOCK, Action::Unlock, &new_cred, Id([2; 16]))
            .denial(),
        None
    );
    // ... and refuses the old key once it is retired.
    w.config.trusted = TrustedKeys::single(ORG, new_key.public_key());
    assert_eq!(
        w.unlock(LOCK, Action::Unlock, &old_cred, Id([3; 16]))
            .denial(),
        rejected(Reason::UnknownOrgKey)
    );
}

#[test]
fn credential_of_another_organization_with_a_known_key_id() {
    let mut w = World::new();
    let mut c = w.credential();
    c.org = Id([0x99; 16]);
    let cred = w.sign(&c);
    assert_eq!(
        w.unlock(LOCK, Action::Unlock, &cred, CMD).denial(),
        rejected(Reason::WrongOrganization)
    );
}

#[test]
fn bad_credential_signature() {
    let mut w = World::new();
    let mut cred = w.sign(&w.credential());
    let n = cred.len();
    cred[n - 1] ^= 0x01;
    assert_eq!(
        w.unlock(LOCK, Action::Unlock, &cred, CMD).denial(),
        rejected(Reason::BadCredentialSignature)
    );
    // A changed claim (the expiry) breaks the signature too.
    let mut cred = w.sign(&w.credential());
    let at = 2 + 16 + 8 + 16 + 1 + 16 + 65 + 1 + 17 + 8; // not_after's first byte
    cred[at] ^= 0x01;
    assert_eq!(
        w.unlock(LOCK, Action::Unlock, &cred, CMD).denial(),
        rejected(Reason::BadCredentialSignature)
    );
}

#[test]
fn credential_bound_to_another_device_key() {
    let w = World::new();
    let (thief, _) = SigningKey::generate(&w.rng).unwrap();
    let cred = w.sign(&w.credential());
    // The thief holds the credential bytes but signs the transcript with its own key.
    let mut x = w.until_auth(&cred, &thief);
    let d = x.door.on_auth(&x.auth, &w.input(), &w.memory).unwrap();
    assert_eq!(d.outcome, Err(Reason::BadDeviceSignature));
    assert!(!d.actuate());
}

#[test]
fn use_limit_is_enforced_per_credential() {
    let mut w = World::new();
    let mut c = w.credential();
    c.max_uses = Some(2);
    let cred = w.sign(&c);
    assert_eq!(
        w.unlock(LOCK, Action::Unlock, &cred, Id([1; 16])).denial(),
        None
    );
    assert_eq!(
        w.unlock(LOCK, Action::Unlock, &cred, Id([2; 16])).denial(),
        None
    );
    assert_eq!(
        w.unlock(LOCK, Action::Unlock, &cred, Id([3; 16])).denial(),
        rejected(Reason::UseLimitExceeded)
    );
    // The refusal is not a use; the entry remembers when the credential ends.
    assert_eq!(
        w.memory.uses.get(&c.id),
        Some(&UseCount {
            count: 2,
            not_after: Some(NOW + 3600)
        })
    );
}

#[test]
fn use_counts_are_pruned_only_once_trusted_time_is_past_the_end_and_a_grace() {
    let mut w = World::new();
    let mut c = w.credential();
    c.max_uses = Some(2);
    let cred = w.sign(&c);
    assert_eq!(
        w.unlock(LOCK, Action::Unlock, &cred, Id([1; 16])).denial(),
        None
    );
    // A count whose end is unknown (an old state file or a replay) is never pruned.
    let unknown = Id([0x51; 16]);
    w.memory.record_grant(unknown, Id([2; 16]), 7);
    let end = NOW + 3600;
    let at = |earliest| TimeBounds {
        earliest,
        latest: earliest + 120,
    };

    // Already expired, but within the grace a re-anchor could still bring it back.
    assert_eq!(w.memory.prune_uses(at(end + 1)), 0);
    assert_eq!(w.memory.prune_uses(at(end + USE_COUNT_GRACE_SECS)), 0);
    // Bounds that only reach past the grace at their late edge are not enough.
    let straddling = TimeBounds {
        earliest: end,
        latest: end + 2 * USE_COUNT_GRACE_SECS,
    };
    assert_eq!(w.memory.prune_uses(straddling), 0);
    assert_eq!(w.memory.uses_of(c.id), 1);

    assert_eq!(w.memory.prune_uses(at(end + USE_COUNT_GRACE_SECS + 1)), 1);
    assert_eq!(w.memory.uses_of(c.id), 0);
    assert_eq!(w.memory.uses_of(unknown), 1);
    assert_eq!(w.memory.uses.len(), 1);
    // Command ids stay (bounded on their own) for at-most-once.
    assert_eq!(w.memory.commands.len(), 2);
}

#[test]
fn old_state_counts_load_and_still_limit() {
    let mut w = World::new();
    let mut c = w.credential();
    c.max_uses = Some(3);
    let cred = w.sign(&c);
    // Before ends were kept, `uses` mapped a credential id to a bare count.
    let old = format!(r#"{{"commands":[],"uses":{{"{}":2}}}}"#, c.id);
    w.memory = serde_json::from_str(&old).unwrap();
    assert_eq!(
        w.memory.uses.get(&c.id),
        Some(&UseCount {
            count: 2,
            not_after: None
        })
    );
    assert_eq!(
        w.unlock(LOCK, Action::Unlock, &cred, Id([1; 16])).denial(),
        None
    );
    assert_eq!(
        w.unlock(LOCK, Action::Unlock, &cred, Id([2; 16])).denial(),
        rejected(Reason::UseLimitExceeded)
    );
    // The grant filled the end in, so the entry can be pruned in time.
    assert_eq!(w.memory.uses[&c.id].not_after, Some(NOW + 3600));
    // And the new form reads back as written.
    let text = serde_json::to_string(&w.memory).unwrap();
    assert_eq!(
        serde_json::from_str::<keyway_protocol::handshake::DoorMemory>(&text).unwrap(),
        w.memory
    );
}

#[test]
fn replayed_grants_count_conservatively_until_the_credential_is_seen_again() {
    let mut w = World::new();
    // A crash after the log append: replay knows only the ids and counts the use.
    let mut limited = w.credential();
    limited.max_uses = Some(1);
    w.memory.record_grant(limited.id, Id([1; 16]), 1);
    let cred = w.sign(&limited);
    assert_eq!(
        w.unlock(LOCK, Action::Unlock, &cred, Id([2; 16])).denial(),
        rejected(Reason::UseLimitExceeded),
        "a replayed grant must still count against the limit"
    );
    // The same for a credential without a limit: it is not refused, and its next grant
    // drops the entry the replay made.
    let mut unlimited = w.credential();
    unlimited.id = Id([0x52; 16]);
    w.memory.record_grant(unlimited.id, Id([3; 16]), 2);
    assert_eq!(w.memory.uses_of(unlimited.id), 1);
    let cred = w.sign(&unlimited);
    assert_eq!(
        w.unlock(LOCK, Action::Unlock, &cred, Id([4; 16])).denial(),
        None
    );
    assert!(!w.memory.uses.contains_key(&unlimited.id));
    assert_eq!(w.memory.uses_of(limited.id), 1);
}

#[test]
fn walk_up_needs_the_door_policy_and_the_door_rssi() {
    let mut w = World::new();
    let cred = w.sign(&w.credential());
    assert_eq!(
        w.unlock(LOCK, Action::WalkUp, &cred, Id([1; 16])).denial(),
        None
    );
    w.rssi = Some(-80);
    assert_eq!(
        w.unlock(LOCK, Action::WalkUp, &cred, Id([2; 16])).denial(),
        rejected(Reason::TooFar)
    );
    w.rssi = None;
    assert_eq!(
        w.unlock(LOCK, Action::WalkUp, &cred, Id([3; 16])).denial(),
        rejected(Reason::TooFar)
    );
    // A tap unlock does not depend on RSSI.
    assert_eq!(
        w.unlock(LOCK, Action::Unlock, &cred, Id([4; 16])).denial(),
        None
    );
    w.rssi = Some(-50);
    w.config.locks[0].walk_up = false;
    assert_eq!(
        w.unlock(LOCK, Action::WalkUp, &cred, Id([5; 16])).denial(),
        rejected(Reason::WalkUpDisabled)
    );
}

#[test]
fn a_door_that_ranges_decides_walk_up_by_the_distance() {
    let mut w = World::new();
    let cred = w.sign(&w.credential());
    // A deep bag: far too weak for the RSSI floor, but ranged at the door.
    w.rssi = Some(-90);
    w.range_m = Some(0.6);
    assert_eq!(
        w.unlock(LOCK, Action::WalkUp, &cred, Id([1; 16])).denial(),
        None
    );
    w.range_m = Some(WALK_UP_MAX_RANGE_M);
    assert_eq!(
        w.unlock(LOCK, Action::WalkUp, &cred, Id([2; 16])).denial(),
        None
    );
    // Held up towards the door from 2 m: strong enough for the floor, but ranged too far;
    // a relayed phone reads further still.
    w.rssi = Some(-40);
    for (i, range) in [2.0, 30.0, f64::NAN].into_iter().enumerate() {
        w.range_m = Some(range);
        assert_eq!(
            w.unlock(LOCK, Action::WalkUp, &cred, Id([3 + i as u8; 16]))
                .denial(),
            rejected(Reason::TooFar),
            "{range} m"
        );
    }
    // A tap is the user's own act: ranging does not gate it.
    assert_eq!(
        w.unlock(LOCK, Action::Unlock, &cred, Id([9; 16])).denial(),
        None
    );
}

#[test]
fn lockdown_refuses_everyone() {
    let mut w = World::new();
    let cred = w.sign(&w.credential());
    w.config.locks[0].lockdown = true;
    assert_eq!(
        w.unlock(LOCK, Action::Unlock, &cred, CMD).denial(),
        rejected(Reason::Lockdown)
    );
}

#[test]
fn stale_door_nonce() {
    let w = World::new();
    let cred = w.sign(&w.credential());
    let mut x = w.until_auth(&cred, &w.device_key);
    let mut input = w.input();
    input.mono_ms = w.mono_ms + w.config.nonce_validity_ms + 1;
    let d = x.door.on_auth(&x.auth, &input, &w.memory).unwrap();
    assert_eq!(d.outcome, Err(Reason::StaleNonce));
    // The phone still learns why, authenticated.
    let body = x
        .phone
        .on_result(&x.door.result_frame(&d, 1).unwrap())
        .unwrap();
    assert_eq!(body.reason, Some(Reason::StaleNonce));
}

/// Drives a handshake to the AUTH frame and returns everything needed to replay it.
fn recorded_exchange(w: &World) -> (Vec<u8>, Vec<u8>) {
    let cred = w.sign(&w.credential());
    let x = w.until_auth(&cred, &w.device_key);
    (x.hello, x.auth)
}

#[test]
fn recorded_exchange_replays_to_nothing() {
    let w = World::new();
    let (hello, auth) = recorded_exchange(&w);
    // An attacker replays the recorded HELLO and AUTH; the door picks a fresh key and nonce.
    let mut door = Responder::new();
    door.on_hello(&hello, &w.door, &w.config, &w.rng, w.mono_ms)
        .unwrap();
    assert_eq!(
        door.on_auth(&auth, &w.input(), &w.memory),
        Err(HandshakeError::Rejected(Reason::DecryptFailed))
    );
}

#[test]
fn reused_or_skipped_counter() {
    let w = World::new();
    let cred = w.sign(&w.credential());
    let mut x = w.until_auth(&cred, &w.device_key);
    let mut sealed = Sealed::decode(&x.auth, frames::AUTH).unwrap();
    sealed.counter = 1;
    assert_eq!(
        x.door.on_auth(&sealed.encode(), &w.input(), &w.memory),
        Err(HandshakeError::Rejected(Reason::ReplayedFrame))
    );

    // Door side accepted AUTH; a RESULT replayed with a reused counter is refused by the phone.
    let w2 = World::new();
    let mut x = w2.until_auth(&w2.sign(&w2.credential()), &w2.device_key);
    let d = x.door.on_auth(&x.auth, &w2.input(), &w2.memory).unwrap();
    let result = x.door.result_frame(&d, 1).unwrap();
    let mut sealed = Sealed::decode(&result, frames::RESULT).unwrap();
    sealed.counter = 5;
    assert_eq!(
        x.phone.on_result(&sealed.encode()),
        Err(HandshakeError::Rejected(Reason::ReplayedFrame))
    );
}

#[test]
fn tampered_transcript_fields_break_the_session() {
    let w = World::new();
    // The action byte flipped in transit (tap → walk-up): the door signs what it received, so
    // the phone's transcript differs and the door's signature fails on the phone.
    let (mut phone, hello) = Initiator::start(&w.rng, LOCK, Action::Unlock).unwrap();
    let mut h = Hello::decode(&hello).unwrap();
    h.action = Action::WalkUp as u8;
    let mut door = Responder::new();
    let ch = door
        .on_hello(&h.encode(), &w.door, &w.config, &w.rng, w.mono_ms)
        .unwrap();
    assert_eq!(
        phone.on_challenge(&ch, &w.phone_trust, NOW, CMD),
        Err(HandshakeError::Rejected(Reason::BadDoorSignature))
    );

    // The door nonce changed in transit.
    let (mut phone, hello) = Initiator::start(&w.rng, LOCK, Action::Unlock).unwrap();
    let mut door = Responder::new();
    let ch = door
        .on_hello(&hello, &w.door, &w.config, &w.rng, w.mono_ms)
        .unwrap();
    let mut c = Challenge::decode(&ch).unwrap();
    c.nonce[0] ^= 1;
    assert_eq!(
        phone.on_challenge(&c.encode(), &w.phone_trust, NOW, CMD),
        Err(HandshakeError::Rejected(Reason::BadDoorSignature))
    );

    // The AUTH ciphertext changed in transit.
    let mut x = w.until_auth(&w.sign(&w.credential()), &w.device_key);
    let mut s = Sealed::decode(&x.auth, frames::AUTH).unwrap();
    s.ciphertext[0] ^= 0x01;
    assert_eq!(
        x.door.on_auth(&s.encode(), &w.input(), &w.memory),
        Err(HandshakeError::Rejected(Reason::DecryptFailed))
    );
}

#[test]
fn version_downgrade_is_refused() {
    let w = World::new();
    let (_, hello) = Initiator::start_with_version(&w.rng, LOCK, Action::Unlock, 0).unwrap();
    let mut door = Responder::new();
    let err = door
        .on_hello(&hello, &w.door, &w.config, &w.rng, w.mono_ms)
        .unwrap_err();
    assert_eq!(err, HandshakeError::Rejected(Reason::UnsupportedVersion));
    // The door answers in plaintext and the phone surfaces the reason.
    let error_frame = frames::encode_error(Reason::UnsupportedVersion);
    let (mut phone, _) = Initiator::start(&w.rng, LOCK, Action::Unlock).unwrap();
    assert_eq!(
        phone.on_challenge(&error_frame, &w.phone_trust, NOW, CMD),
        Err(HandshakeError::Rejected(Reason::UnsupportedVersion))
    );

    // A CHALLENGE claiming another version is refused by the phone.
    let (mut phone, hello) = Initiator::start(&w.rng, LOCK, Action::Unlock).unwrap();
    let mut door = Responder::new();
    let ch = door
        .on_hello(&hello, &w.door, &w.config, &w.rng, w.mono_ms)
        .unwrap();
    let mut c = Challenge::decode(&ch).unwrap();
    c.version = 0;
    assert_eq!(
        phone.on_challenge(&c.encode(), &w.phone_trust, NOW, CMD),
        Err(HandshakeError::Rejected(Reason::UnsupportedVersion))
    );
}

#[test]
fn phone_refuses_an_impostor_door() {
    let w = World::new();
    let (rogue_org, _) = SigningKey::generate(&w.rng).unwrap();
    let (rogue_key, _) = SigningKey::generate(&w.rng).unwrap();
    let rogue_cert = |signer: &SigningKey, locks: Vec<Id>, not_after: u64| {
        ControllerCertificate {
            org: ORG,
            controller: Id([0x41; 16]),
            public_key: rogue_key.public_key(),
            locks,
            not_before: NOW - 10,
            not_after,
        }
        .sign(signer, &w.rng)
        .unwrap()
    };
    let try_door = |certificate: Vec<u8>| {
        let identity = keyway_protocol::handshake::DoorIdentity {
            key: SigningKey::generate(&w.rng).unwrap().0,
            certificate,
        };
        let (mut phone, hello) = Initiator::start(&w.rng, LOCK, Action::Unlock).unwrap();
        let mut door = Responder::new();
        let ch = door
            .on_hello(&hello, &identity, &w.config, &w.rng, w.mono_ms)
            .unwrap();
        phone
            .on_challenge(&ch, &w.phone_trust, NOW, CMD)
            .unwrap_err()
    };
    // Certificate signed by an untrusted key.
    assert_eq!(
        try_door(rogue_cert(&rogue_org, vec![LOCK], NOW + 100)),
        HandshakeError::Rejected(Reason::UntrustedDoor)
    );
    // Genuine certificate for another lock, or expired.
    assert_eq!(
        try_door(rogue_cert(&w.org_key, vec![OTHER_LOCK], NOW + 100)),
        HandshakeError::Rejected(Reason::DoorNotAuthorized)
    );
    assert_eq!(
        try_door(rogue_cert(&w.org_key, vec![LOCK], NOW)),
        HandshakeError::Rejected(Reason::DoorNotAuthorized)
    );
    // Genuine certificate, but the door does not hold its private key (signature check).
    assert_eq!(
        try_door(rogue_cert(&w.org_key, vec![LOCK], NOW + 100)),
        HandshakeError::Rejected(Reason::BadDoorSignature)
    );
}

#[test]
fn truncated_oversized_garbage_and_out_of_order_frames() {
    let w = World::new();
    let (_, hello) = Initiator::start(&w.rng, LOCK, Action::Unlock).unwrap();
    let reason = |frame: &[u8]| {
        let mut door = Responder::new();
        door.on_hello(frame, &w.door, &w.config, &w.rng, w.mono_ms)
            .unwrap_err()
            .reason()
            .unwrap()
    };
    assert_eq!(reason(&hello[..hello.len() - 1]), Reason::MalformedFrame);
    assert_eq!(
        reason(&[hello.clone(), vec![0]].concat()),
        Reason::MalformedFrame
    );
    assert_eq!(reason(&[]), Reason::MalformedFrame);
    assert_eq!(reason(&[0xde, 0xad, 0xbe, 0xef]), Reason::MalformedFrame);
    let mut bad_action = Hello::decode(&hello).unwrap();
    bad_action.action = 9;
    assert_eq!(reason(&bad_action.encode()), Reason::UnsupportedAction);

    // AUTH before HELLO, HELLO twice.
    let mut door = Responder::new();
    assert_eq!(
        door.on_auth(&hello, &w.input(), &w.memory),
        Err(HandshakeError::Rejected(Reason::UnexpectedMessage))
    );
    let mut door = Responder::new();
    door.on_hello(&hello, &w.door, &w.config, &w.rng, w.mono_ms)
        .unwrap();
    assert_eq!(
        door.on_hello(&hello, &w.door, &w.config, &w.rng, w.mono_ms),
        Err(HandshakeError::Rejected(Reason::UnexpectedMessage))
    );

    // Oversized AUTH ciphertext is refused before decryption.
    let mut door = Responder::new();
    door.on_hello(&hello, &w.door, &w.config, &w.rng, w.mono_ms)
        .unwrap();
    let huge = Sealed {
        frame_type: frames::AUTH,
        counter: 0,
        ciphertext: vec![0; 4000],
    }
    .encode();
    assert_eq!(
        door.on_auth(&huge, &w.input(), &w.memory),
        Err(HandshakeError::Rejected(Reason::FrameTooLarge))
    );

    // The phone refuses a RESULT before AUTH and garbage instead of CHALLENGE.
    let (mut phone, _) = Initiator::start(&w.rng, LOCK, Action::Unlock).unwrap();
    assert_eq!(
        phone.on_result(&[frames::RESULT, 0, 0]),
        Err(HandshakeError::Rejected(Reason::UnexpectedMessage))
    );
    let (mut phone, _) = Initiator::start(&w.rng, LOCK, Action::Unlock).unwrap();
    assert_eq!(
        phone.on_challenge(&[0x02, 0x01], &w.phone_trust, NOW, CMD),
        Err(HandshakeError::Rejected(Reason::MalformedFrame))
    );
}

#[test]
fn credential_decoder_refuses_oversized_and_bad_fields() {
    let w = World::new();
    let cred = w.sign(&w.credential());
    let trusted = &w.config.trusted;
    let verify =
        |b: &[u8]| keyway_protocol::credential::SignedCredential::verify(b, trusted).unwrap_err();
    assert_eq!(verify(&cred[..20]), Reason::MalformedFrame);
    assert_eq!(verify(&vec![0x10; 5000]), Reason::FrameTooLarge);
    let mut wrong_version = cred.clone();
    wrong_version[1] = 2;
    assert_eq!(verify(&wrong_version), Reason::UnsupportedVersion);
    let mut wrong_kind = cred.clone();
    wrong_kind[0] = 0x11;
    assert_eq!(verify(&wrong_kind), Reason::MalformedFrame);
}
