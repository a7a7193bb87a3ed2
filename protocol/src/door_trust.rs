//! How a door comes to trust organization keys and its configuration, so that holding the
//! channel to it is not enough to change what it trusts.
//!
//! - A door starts from the keys pinned at provisioning (or its last accepted configuration).
//! - A [`KeyEndorsement`] is a new organization key signed by the key it replaces; a door
//!   extends its keys only along such a chain ([`extend_trust`]), so it follows rotations
//!   it missed while offline, and a key nobody it trusts endorsed gets nowhere.
//! - A [`ConfigSeal`] binds one configuration (controller, version, SHA-256 of its bytes) to
//!   an organization key; a door takes a configuration only under a seal that verifies with
//!   its (extended) keys, and only keys from that set as the new trusted ones.
//!
//! Layouts (after the [`crate::signed`] header):
//! ```text
//! endorsement: endorsed public key [65] | endorsed_at u64 (unix s) | signature [64]
//! seal:        controller id [16] | version u64 | config digest [32] | signature [64]
//! ```

use crate::id::Id;
use crate::keys::{CryptoError, KeyId, PUBLIC_KEY_LEN, PublicKey, SigningKey};
use crate::reason::Reason;
use crate::signed::{self, Kind};
use crate::trust::{TrustedKey, TrustedKeys};
use ring::rand::SecureRandom;

const HEADER_LEN: usize = 2 + 16 + 8;
const ENDORSEMENT_LEN: usize = HEADER_LEN + PUBLIC_KEY_LEN + 8 + 64;
const SEAL_LEN: usize = HEADER_LEN + 16 + 8 + 32 + 64;

/// A new organization key, vouched for by the key that signed this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyEndorsement {
    pub org: Id,
    pub public_key: PublicKey,
    pub endorsed_at: u64,
}

impl KeyEndorsement {
    /// Signed with the key being replaced.
    pub fn sign(&self, by: &SigningKey, rng: &dyn SecureRandom) -> Result<Vec<u8>, CryptoError> {
        let mut w = signed::begin(Kind::KeyEndorsement, self.org, by);
        w.bytes(&self.public_key.0).u64(self.endorsed_at);
        signed::seal(w, by, rng)
    }

    /// The endorsement and the id of the key that signed it.
    pub fn verify(bytes: &[u8], trusted: &TrustedKeys) -> Result<(Self, KeyId), Reason> {
        let opened =
            signed::open(bytes, Kind::KeyEndorsement, ENDORSEMENT_LEN).map_err(|e| e.reason())?;
        opened.verify(trusted, Reason::BadCredentialSignature)?;
        let (org, signer) = (opened.header.org, opened.header.key_id);
        let mut r = opened.body;
        let raw = r
            .bytes(PUBLIC_KEY_LEN, "endorsed key")
            .map_err(|e| e.reason())?;
        let public_key = PublicKey::from_slice(raw).map_err(|_| Reason::MalformedFrame)?;
        let endorsed_at = r.u64("endorsed_at").map_err(|e| e.reason())?;
        r.finish("key endorsement").map_err(|e| e.reason())?;
        Ok((
            Self {
                org,
                public_key,
                endorsed_at,
            },
            signer,
        ))
    }
}

/// `trusted` plus every key `org`'s endorsements lead to from it, in the order given (the
/// server sends them oldest first). Endorsements that do not verify add nothing.
pub fn extend_trust(trusted: &TrustedKeys, org: Id, endorsements: &[Vec<u8>]) -> TrustedKeys {
    let mut keys = trusted.clone();
    // Later endorsements may be signed by keys earlier ones added: repeat until nothing is new.
    loop {
        let before = keys.keys.len();
        for bytes in endorsements {
            if let Ok((e, _)) = KeyEndorsement::verify(bytes, &keys)
                && e.org == org
                && !keys.keys.iter().any(|k| k.public_key == e.public_key)
            {
                keys.keys.push(TrustedKey {
                    org,
                    public_key: e.public_key,
                });
            }
        }
        if keys.keys.len() == before {
            return keys;
        }
    }
}

/// One configuration of one controller, signed by an organization key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigSeal {
    pub org: Id,
    pub controller: Id,
    pub version: u64,
    /// SHA-256 of the configuration's bytes ([`config_digest`]).
    pub digest: [u8; 32],
}

impl ConfigSeal {
    pub fn sign(
        &self,
        org_key: &SigningKey,
        rng: &dyn SecureRandom,
    ) -> Result<Vec<u8>, CryptoError> {
        let mut w = signed::begin(Kind::ConfigSeal, self.org, org_key);
        w.bytes(&self.controller.0)
            .u64(self.version)
            .bytes(&self.digest);
        signed::seal(w, org_key, rng)
    }

    pub fn verify(bytes: &[u8], trusted: &TrustedKeys) -> Result<Self, Reason> {
        let opened = signed::open(bytes, Kind::ConfigSeal, SEAL_LEN).map_err(|e| e.reason())?;
        opened.verify(trusted, Reason::BadCredentialSignature)?;
        let org = opened.header.org;
        let mut r = opened.body;
        let parse = |r: &mut crate::codec::Reader<'_>| -> Result<Self, crate::codec::DecodeError> {
            Ok(Self {
                org,
                controller: Id(r.array("controller id")?),
                version: r.u64("version")?,
                digest: r.array("config digest")?,
            })
        };
        let seal = parse(&mut r).map_err(|e| e.reason())?;
        r.finish("config seal").map_err(|e| e.reason())?;
        Ok(seal)
    }
}

/// The digest a [`ConfigSeal`] carries.
pub fn config_digest(bytes: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;

    const ORG: Id = Id([7; 16]);

    #[test]
    fn a_door_follows_a_chain_of_rotations_and_nothing_else() {
        let rng = SystemRandom::new();
        let keys: Vec<SigningKey> = (0..4)
            .map(|_| SigningKey::generate(&rng).unwrap().0)
            .collect();
        let endorse = |by: usize, of: usize| {
            KeyEndorsement {
                org: ORG,
                public_key: keys[of].public_key(),
                endorsed_at: 1,
            }
            .sign(&keys[by], &rng)
            .unwrap()
        };
        let pinned = TrustedKeys::single(ORG, keys[0].public_key());
        // Sent oldest first or not: 0 → 1 → 2 is followed; 3 vouched for itself is not.
        let chain = [endorse(1, 2), endorse(0, 1), endorse(3, 3)];
        let got = extend_trust(&pinned, ORG, &chain);
        let trusted: Vec<PublicKey> = got.keys.iter().map(|k| k.public_key).collect();
        assert_eq!(trusted.len(), 3, "{trusted:?}");
        assert!((0..3).all(|n| trusted.contains(&keys[n].public_key())));
        // Another organization's endorsement adds nothing either.
        let foreign = KeyEndorsement {
            org: Id([8; 16]),
            public_key: keys[3].public_key(),
            endorsed_at: 1,
        }
        .sign(&keys[0], &rng)
        .unwrap();
        assert_eq!(extend_trust(&pinned, ORG, &[foreign]).keys.len(), 1);
    }

    #[test]
    fn a_seal_binds_controller_version_and_bytes() {
        let rng = SystemRandom::new();
        let (key, _) = SigningKey::generate(&rng).unwrap();
        let trusted = TrustedKeys::single(ORG, key.public_key());
        let seal = ConfigSeal {
            org: ORG,
            controller: Id([9; 16]),
            version: 42,
            digest: config_digest(b"{\"locks\":[]}"),
        };
        let bytes = seal.sign(&key, &rng).unwrap();
        assert_eq!(ConfigSeal::verify(&bytes, &trusted), Ok(seal));
        let mut tampered = bytes.clone();
        tampered[HEADER_LEN + 16 + 7] ^= 1; // version
        assert_eq!(
            ConfigSeal::verify(&tampered, &trusted),
            Err(Reason::BadCredentialSignature)
        );
        let (other, _) = SigningKey::generate(&rng).unwrap();
        assert_eq!(
            ConfigSeal::verify(&seal.sign(&other, &rng).unwrap(), &trusted),
            Err(Reason::UnknownOrgKey)
        );
        assert_eq!(
            ConfigSeal::verify(&bytes[..40], &trusted),
            Err(Reason::MalformedFrame)
        );
    }
}
