//! Property tests: fragmentation round-trips at every MTU, and no decoder panics on any input.

use keyway_protocol::advert::Advertisement;
use keyway_protocol::certificate::ControllerCertificate;
use keyway_protocol::credential::SignedCredential;
use keyway_protocol::gatt::{self, Reassembler};
use keyway_protocol::handshake::frames::{self, AuthBody, Challenge, Hello, ResultBody, Sealed};
use keyway_protocol::revocation::RevocationList;
use keyway_protocol::time::TimeStatement;
use keyway_protocol::{Id, TrustedKeys};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn fragments_reassemble_to_the_message(
        msg in prop::collection::vec(any::<u8>(), 1..=gatt::MAX_MESSAGE_LEN),
        mtu in gatt::MIN_ATT_MTU..=517usize,
    ) {
        let frags = gatt::fragment(&msg, mtu).unwrap();
        prop_assert!(frags.iter().all(|f| f.len() <= mtu - 3));
        let mut r = Reassembler::new();
        let (last, init) = frags.split_last().unwrap();
        for f in init {
            prop_assert_eq!(r.push(f).unwrap(), None);
        }
        prop_assert_eq!(r.push(last).unwrap(), Some(msg));
    }

    #[test]
    fn reassembler_survives_any_fragment_sequence(
        frags in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..64),
    ) {
        let mut r = Reassembler::new();
        for f in &frags {
            if let Ok(Some(m)) = r.push(f) {
                prop_assert!(m.len() <= gatt::MAX_MESSAGE_LEN);
            }
        }
    }

    #[test]
    fn frame_decoders_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..1600)) {
        let _ = Hello::decode(&bytes);
        let _ = Challenge::decode(&bytes);
        let _ = Sealed::decode(&bytes, frames::AUTH);
        let _ = Sealed::decode(&bytes, frames::RESULT);
        let _ = AuthBody::decode(&bytes);
        let _ = ResultBody::decode(&bytes);
        let _ = frames::decode_error(&bytes);
        let _ = Advertisement::decode(&bytes);
    }

    #[test]
    fn signed_object_decoders_never_panic(mut bytes in prop::collection::vec(any::<u8>(), 0..1200), kind in 0x10u8..=0x13) {
        // Steer a good share of inputs past the kind/version check.
        if bytes.len() > 2 { bytes[0] = kind; bytes[1] = 1; }
        let trusted = TrustedKeys::default();
        let _ = SignedCredential::decode(&bytes);
        let _ = SignedCredential::verify(&bytes, &trusted);
        let _ = ControllerCertificate::decode(&bytes);
        let _ = RevocationList::verify(&bytes, &trusted);
        let _ = TimeStatement::verify(&bytes, &trusted, Id::default(), &[0; 16]);
    }

    #[test]
    fn result_body_round_trips(granted in any::<bool>(), dup in any::<bool>(), seq in any::<u64>(), ms in any::<u32>(), r in 0usize..keyway_protocol::Reason::ALL.len()) {
        let body = ResultBody {
            command_id: Id([3; 16]),
            granted,
            reason: if granted { None } else { Some(keyway_protocol::Reason::ALL[r]) },
            event_seq: seq,
            relay_ms: ms,
            duplicate: dup,
        };
        prop_assert_eq!(ResultBody::decode(&body.encode()).unwrap(), body);
    }
}
