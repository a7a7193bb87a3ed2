//! Signed revocation lists: credential ids a door must refuse even though they verify.
//!
//! Layout (after the [`crate::signed`] header):
//! ```text
//! version 1: serial u64 | issued_at u64 | count u16 (..=4096)
//!            | credential id [16] * (strictly ascending) | signature [64]
//! version 2: serial u64 | issued_at u64 | revoked_before u64 | count u16 (..=4096) | ...
//! ```
//! A list without a cut is written as version 1, so doors that predate the cut read it.
//! Serials only grow; a door ignores a list whose serial is not above the one it holds, so an
//! old list cannot be replayed to un-revoke a credential.
//!
//! A list names at most [`MAX_REVOKED`] credentials. When more are revoked and not yet
//! expired, the issuer raises `revoked_before` instead of leaving any off: every credential
//! whose validity starts earlier is refused too, and the honest ones among them are
//! re-issued on their holders' next refresh.

use crate::codec::DecodeError;
use crate::credential::Credential;
use crate::id::Id;
use crate::keys::{CryptoError, SigningKey};
use crate::reason::Reason;
use crate::signed::{self, Kind};
use crate::trust::TrustedKeys;
use ring::rand::SecureRandom;

pub const MAX_REVOKED: usize = 4096;
const MAX_LIST_LEN: usize = 2 + 16 + 8 + 8 + 8 + 8 + 2 + MAX_REVOKED * 16 + 64;

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RevocationList {
    pub org: Id,
    pub serial: u64,
    pub issued_at: u64,
    /// Every credential whose `not_before` (unix s) is earlier is revoked; 0 for none.
    #[serde(default)]
    pub revoked_before: u64,
    /// Sorted ascending, no duplicates.
    pub revoked: Vec<Id>,
}

impl RevocationList {
    /// Signs the list; `revoked` is sorted and de-duplicated first.
    pub fn sign(
        &self,
        org_key: &SigningKey,
        rng: &dyn SecureRandom,
    ) -> Result<Vec<u8>, CryptoError> {
        let mut ids = self.revoked.clone();
        ids.sort();
        ids.dedup();
        if ids.len() > MAX_REVOKED {
            return Err(CryptoError::InvalidObject(
                "a revocation list holds at most 4096 ids",
            ));
        }
        let version = if self.revoked_before == 0 { 1 } else { 2 };
        let mut w = signed::begin_version(Kind::RevocationList, version, self.org, org_key);
        w.u64(self.serial).u64(self.issued_at);
        if version == 2 {
            w.u64(self.revoked_before);
        }
        w.u16(ids.len() as u16);
        for id in &ids {
            w.bytes(&id.0);
        }
        signed::seal(w, org_key, rng)
    }

    pub fn verify(bytes: &[u8], trusted: &TrustedKeys) -> Result<Self, Reason> {
        let opened = signed::open_versions(bytes, Kind::RevocationList, MAX_LIST_LEN, &[1, 2])
            .map_err(|e| e.reason())?;
        opened.verify(trusted, Reason::BadCredentialSignature)?;
        let org = opened.header.org;
        decode_body(opened.body, org, opened.version == 2).map_err(|e| e.reason())
    }

    /// Whether the list names this credential id.
    pub fn is_revoked(&self, credential: Id) -> bool {
        self.revoked.binary_search(&credential).is_ok()
    }

    /// Whether a door must refuse this credential: named, or valid from before the cut.
    pub fn revokes(&self, credential: &Credential) -> bool {
        credential.not_before < self.revoked_before || self.is_revoked(credential.id)
    }
}

fn decode_body(
    mut r: crate::codec::Reader<'_>,
    org: Id,
    with_cut: bool,
) -> Result<RevocationList, DecodeError> {
    let serial = r.u64("serial")?;
    let issued_at = r.u64("issued_at")?;
    let revoked_before = if with_cut {
        r.u64("revoked_before")?
    } else {
        0
    };
    let n = r.count16(MAX_REVOKED, "revoked")?;
    let mut revoked: Vec<Id> = Vec::with_capacity(n);
    for _ in 0..n {
        let id = Id(r.array("revoked id")?);
        if revoked.last().is_some_and(|last| *last >= id) {
            return Err(DecodeError::BadValue {
                field: "revoked order",
                value: 0,
            });
        }
        revoked.push(id);
    }
    r.finish("revocation list")?;
    Ok(RevocationList {
        org,
        serial,
        issued_at,
        revoked_before,
        revoked,
    })
}
