//! The set of organization public keys a verifier trusts (door config cache, phone cache).

use crate::id::Id;
use crate::keys::{KeyId, PublicKey};
use crate::reason::Reason;

/// One trusted organization signing key.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TrustedKey {
    pub org: Id,
    pub public_key: PublicKey,
}

/// Organization keys a verifier accepts. During rotation both the old and the new key are
/// present; once the old one is dropped, objects signed with it fail with `UnknownOrgKey`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TrustedKeys {
    pub keys: Vec<TrustedKey>,
}

impl TrustedKeys {
    pub fn new(keys: Vec<TrustedKey>) -> Self {
        Self { keys }
    }

    pub fn single(org: Id, public_key: PublicKey) -> Self {
        Self {
            keys: vec![TrustedKey { org, public_key }],
        }
    }

    /// Finds the key with this id; a key of another organization counts as wrong organization.
    pub fn find(&self, org: Id, key_id: KeyId) -> Result<&PublicKey, Reason> {
        let mut other_org = false;
        for k in &self.keys {
            if k.public_key.key_id() == key_id {
                if k.org == org {
                    return Ok(&k.public_key);
                }
                other_org = true;
            }
        }
        Err(if other_org {
            Reason::WrongOrganization
        } else {
            Reason::UnknownOrgKey
        })
    }

    pub fn trusts_org(&self, org: Id) -> bool {
        self.keys.iter().any(|k| k.org == org)
    }
}
