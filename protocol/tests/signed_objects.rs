//! Revocation lists, time statements and the trusted clock: signatures of each kind and the
//! rules a door applies before it believes them.

use keyway_protocol::revocation::RevocationList;
use keyway_protocol::time::{TimeStatement, TrustedClock};
use keyway_protocol::{Id, Reason, SigningKey, TrustedKeys};
use ring::rand::SystemRandom;

const ORG: Id = Id([0x30; 16]);
const CONTROLLER: Id = Id([0x40; 16]);

fn setup() -> (SystemRandom, SigningKey, TrustedKeys) {
    let rng = SystemRandom::new();
    let (key, _) = SigningKey::generate(&rng).unwrap();
    let trusted = TrustedKeys::single(ORG, key.public_key());
    (rng, key, trusted)
}

#[test]
fn revocation_list_verifies_sorts_and_detects_tampering() {
    let (rng, key, trusted) = setup();
    let list = RevocationList {
        org: ORG,
        serial: 7,
        issued_at: 100,
        revoked_before: 50,
        revoked: vec![Id([9; 16]), Id([1; 16]), Id([9; 16])],
    };
    let bytes = list.sign(&key, &rng).unwrap();
    let got = RevocationList::verify(&bytes, &trusted).unwrap();
    assert_eq!(got.revoked, vec![Id([1; 16]), Id([9; 16])]);
    assert!(got.is_revoked(Id([9; 16])) && !got.is_revoked(Id([2; 16])));
    assert_eq!((got.serial, got.revoked_before), (7, 50));
    // Without a cut the list keeps version 1's layout, which doors from before the cut read.
    assert_eq!(bytes[1], 2);
    let uncut = RevocationList {
        revoked_before: 0,
        ..list.clone()
    }
    .sign(&key, &rng)
    .unwrap();
    assert_eq!((uncut[1], uncut.len() + 8), (1, bytes.len()));
    let got_uncut = RevocationList::verify(&uncut, &trusted).unwrap();
    assert_eq!(
        (got_uncut.revoked_before, got_uncut.revoked),
        (0, got.revoked.clone())
    );

    let mut tampered = bytes.clone();
    tampered[2 + 16 + 8 + 7] ^= 1; // serial
    assert_eq!(
        RevocationList::verify(&tampered, &trusted),
        Err(Reason::BadCredentialSignature)
    );
    let (other, _) = SigningKey::generate(&rng).unwrap();
    assert_eq!(
        RevocationList::verify(&list.sign(&other, &rng).unwrap(), &trusted),
        Err(Reason::UnknownOrgKey)
    );
    assert_eq!(
        RevocationList::verify(&bytes[..30], &trusted),
        Err(Reason::MalformedFrame)
    );
}

#[test]
fn time_statement_must_answer_this_controllers_nonce() {
    let (rng, key, trusted) = setup();
    let stmt = TimeStatement {
        org: ORG,
        controller: CONTROLLER,
        nonce: [5; 16],
        unix_ms: 1_800_000_000_000,
    };
    let bytes = stmt.sign(&key, &rng).unwrap();
    assert_eq!(
        TimeStatement::verify(&bytes, &trusted, CONTROLLER, &[5; 16]).unwrap(),
        stmt
    );
    // An old statement replayed to a fresh request, or one meant for another controller.
    assert_eq!(
        TimeStatement::verify(&bytes, &trusted, CONTROLLER, &[6; 16]),
        Err(Reason::ReplayedFrame)
    );
    assert_eq!(
        TimeStatement::verify(&bytes, &trusted, Id([1; 16]), &[5; 16]),
        Err(Reason::ReplayedFrame)
    );
    let mut tampered = bytes.clone();
    tampered[2 + 16 + 8 + 16 + 16 + 3] ^= 1; // unix_ms
    assert_eq!(
        TimeStatement::verify(&tampered, &trusted, CONTROLLER, &[5; 16]),
        Err(Reason::BadCredentialSignature)
    );
}

#[test]
fn trusted_clock_widens_with_drift_and_expires() {
    let clock = TrustedClock::anchored(1_800_000_000_000, 50_000);
    let b = clock.bounds(50_000).unwrap();
    assert_eq!((b.earliest, b.latest), (1_799_999_999, 1_800_000_001));
    // One day later at 100 ppm: ±8.64 s + 1 s base uncertainty.
    let day = 86_400_000;
    let b = clock.bounds(50_000 + day).unwrap();
    assert_eq!(b.earliest, 1_800_086_400 - 10);
    assert_eq!(b.latest, 1_800_086_400 + 9);
    assert_eq!(clock.bounds(50_000 + 8 * day), Err(Reason::ClockUntrusted));
    // A monotonic clock that went backwards (reboot without re-anchoring) is not trusted.
    assert_eq!(clock.bounds(10), Err(Reason::ClockUntrusted));
}
