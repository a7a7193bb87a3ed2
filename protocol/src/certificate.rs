//! Controller certificates: the organization vouches that a controller key serves some locks.
//! The phone checks it before revealing anything about its user (reader authentication first).
//!
//! Layout (after the [`crate::signed`] header):
//! ```text
//! controller id [16] | controller public key [65] | lock count u8 (1..=32) | lock id [16] *
//! | not_before u64 | not_after u64 | signature [64]
//! ```

use crate::codec::DecodeError;
use crate::id::Id;
use crate::keys::{CryptoError, KeyId, PUBLIC_KEY_LEN, PublicKey, SigningKey};
use crate::reason::Reason;
use crate::signed::{self, Kind, OpenError};
use crate::trust::TrustedKeys;
use ring::rand::SecureRandom;

pub const MAX_CERTIFICATE_LEN: usize = 768;
pub const MAX_CERT_LOCKS: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ControllerCertificate {
    pub org: Id,
    pub controller: Id,
    pub public_key: PublicKey,
    pub locks: Vec<Id>,
    pub not_before: u64,
    pub not_after: u64,
}

impl ControllerCertificate {
    pub fn sign(
        &self,
        org_key: &SigningKey,
        rng: &dyn SecureRandom,
    ) -> Result<Vec<u8>, CryptoError> {
        if self.locks.len() > MAX_CERT_LOCKS {
            return Err(CryptoError::InvalidObject(
                "a certificate covers at most 32 locks",
            ));
        }
        let mut w = signed::begin(Kind::ControllerCertificate, self.org, org_key);
        w.bytes(&self.controller.0)
            .bytes(&self.public_key.0)
            .u8(self.locks.len() as u8);
        for lock in &self.locks {
            w.bytes(&lock.0);
        }
        w.u64(self.not_before).u64(self.not_after);
        signed::seal(w, org_key, rng)
    }

    pub fn decode(bytes: &[u8]) -> Result<(Self, KeyId), OpenError> {
        let opened = signed::open(bytes, Kind::ControllerCertificate, MAX_CERTIFICATE_LEN)?;
        Ok(decode_body(opened)?)
    }

    /// Decodes, verifies the organization signature and checks the certificate covers
    /// `lock` at time `now`.
    pub fn verify_for(
        bytes: &[u8],
        trusted: &TrustedKeys,
        lock: Id,
        now: u64,
    ) -> Result<Self, Reason> {
        let opened = signed::open(bytes, Kind::ControllerCertificate, MAX_CERTIFICATE_LEN)
            .map_err(|e| e.reason())?;
        opened
            .verify(trusted, Reason::UntrustedDoor)
            .map_err(|r| match r {
                Reason::UnknownOrgKey | Reason::WrongOrganization => Reason::UntrustedDoor,
                other => other,
            })?;
        let (cert, _) = decode_body(opened).map_err(|e| e.reason())?;
        if !cert.locks.contains(&lock) || now < cert.not_before || now >= cert.not_after {
            return Err(Reason::DoorNotAuthorized);
        }
        Ok(cert)
    }
}

fn decode_body(opened: signed::Opened<'_>) -> Result<(ControllerCertificate, KeyId), DecodeError> {
    let mut r = opened.body;
    let controller = Id(r.array("controller id")?);
    let public_key =
        PublicKey::from_slice(r.bytes(PUBLIC_KEY_LEN, "controller key")?).map_err(|_| {
            DecodeError::BadValue {
                field: "controller key",
                value: 0,
            }
        })?;
    let n = r.count(MAX_CERT_LOCKS, "locks")?;
    let mut locks = Vec::with_capacity(n);
    for _ in 0..n {
        locks.push(Id(r.array("lock id")?));
    }
    let not_before = r.u64("not_before")?;
    let not_after = r.u64("not_after")?;
    r.finish("controller certificate")?;
    let cert = ControllerCertificate {
        org: opened.header.org,
        controller,
        public_key,
        locks,
        not_before,
        not_after,
    };
    Ok((cert, opened.header.key_id))
}
