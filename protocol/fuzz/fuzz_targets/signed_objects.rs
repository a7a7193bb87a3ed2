//! Organization-signed object decoders (credential, certificate, revocation list, time).
#![no_main]
use keyway_protocol::certificate::ControllerCertificate;
use keyway_protocol::credential::SignedCredential;
use keyway_protocol::revocation::RevocationList;
use keyway_protocol::time::TimeStatement;
use keyway_protocol::{Id, TrustedKeys};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let trusted = TrustedKeys::default();
    let _ = SignedCredential::decode(data);
    let _ = ControllerCertificate::decode(data);
    let _ = RevocationList::verify(data, &trusted);
    let _ = TimeStatement::verify(data, &trusted, Id::default(), &[0; 16]);
});
