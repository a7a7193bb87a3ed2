//! Organization-signed cloud commands: the order behind a cloud unlock.
//!
//! The server signs one for the controller it sends it to; the door executes only orders that
//! verify against its cached organization keys and name it. Whoever impersonates the server
//! on the channel (a spoofed name, a plain-text hop behind a TLS proxy) therefore cannot open
//! a door, and an order for one controller does not work on another. Freshness and
//! at-most-once stay with the door (`issued_at_ms` against trusted time, the command id
//! against its memory of executed commands). The actor (who asked) is signed too, so the
//! door's event log names only whom the organization vouched for.
//!
//! Layout (after the [`crate::signed`] header):
//! ```text
//! controller id [16] | command id [16] | lock id [16] | issued_at_ms u64
//!   | actor kind u8 (0 none: an API key; 1 user, 2 guest) | actor id [16] (zeros
//!   for none) | signature [64]
//! ```

use crate::credential::{Holder, HolderKind};
use crate::id::Id;
use crate::keys::{CryptoError, SigningKey};
use crate::reason::Reason;
use crate::signed::{self, Kind};
use crate::trust::TrustedKeys;
use ring::rand::SecureRandom;

const ORDER_LEN: usize = 2 + 16 + 8 + 16 + 16 + 16 + 8 + 1 + 16 + 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandOrder {
    pub org: Id,
    pub controller: Id,
    pub command: Id,
    pub lock: Id,
    pub issued_at_ms: u64,
    /// The user or guest the command acts for; `None` for an API key.
    pub actor: Option<Holder>,
}

impl CommandOrder {
    pub fn sign(
        &self,
        org_key: &SigningKey,
        rng: &dyn SecureRandom,
    ) -> Result<Vec<u8>, CryptoError> {
        let mut w = signed::begin(Kind::CommandOrder, self.org, org_key);
        w.bytes(&self.controller.0)
            .bytes(&self.command.0)
            .bytes(&self.lock.0)
            .u64(self.issued_at_ms);
        match self.actor {
            Some(a) => w.u8(a.kind as u8).bytes(&a.id.0),
            None => w.u8(0).bytes(&[0; 16]),
        };
        signed::seal(w, org_key, rng)
    }

    /// Verifies the signature and that the order is for `controller`.
    pub fn verify(bytes: &[u8], trusted: &TrustedKeys, controller: Id) -> Result<Self, Reason> {
        let opened = signed::open(bytes, Kind::CommandOrder, ORDER_LEN).map_err(|e| e.reason())?;
        opened.verify(trusted, Reason::BadCommandSignature)?;
        let org = opened.header.org;
        let mut r = opened.body;
        let parse =
            |r: &mut crate::codec::Reader<'_>| -> Result<CommandOrder, crate::codec::DecodeError> {
                Ok(CommandOrder {
                    org,
                    controller: Id(r.array("controller id")?),
                    command: Id(r.array("command id")?),
                    lock: Id(r.array("lock id")?),
                    issued_at_ms: r.u64("issued_at_ms")?,
                    actor: actor(r)?,
                })
            };
        let order = parse(&mut r).map_err(|e| e.reason())?;
        r.finish("command order").map_err(|e| e.reason())?;
        if order.controller != controller {
            return Err(Reason::BadCommandSignature);
        }
        Ok(order)
    }
}

fn actor(r: &mut crate::codec::Reader<'_>) -> Result<Option<Holder>, crate::codec::DecodeError> {
    let kind = r.u8("actor kind")?;
    let id = Id(r.array("actor id")?);
    if kind == 0 {
        // One encoding per order: no actor has a zero id.
        if id != Id([0; 16]) {
            return Err(crate::codec::DecodeError::BadValue {
                field: "actor id",
                value: 0,
            });
        }
        return Ok(None);
    }
    let kind = HolderKind::from_u8(kind).ok_or(crate::codec::DecodeError::BadValue {
        field: "actor kind",
        value: u64::from(kind),
    })?;
    Ok(Some(Holder { kind, id }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust::TrustedKey;
    use ring::rand::SystemRandom;

    fn org_key(rng: &SystemRandom) -> SigningKey {
        SigningKey::generate(rng).unwrap().0
    }

    fn trusting(org: Id, key: &SigningKey) -> TrustedKeys {
        TrustedKeys::new(vec![TrustedKey {
            org,
            public_key: key.public_key(),
        }])
    }

    #[test]
    fn an_order_opens_only_for_its_controller_under_its_organizations_key() {
        let rng = SystemRandom::new();
        let key = org_key(&rng);
        let order = CommandOrder {
            org: Id([1; 16]),
            controller: Id([2; 16]),
            command: Id([3; 16]),
            lock: Id([4; 16]),
            issued_at_ms: 1_700_000_000_000,
            actor: Some(Holder {
                kind: HolderKind::Guest,
                id: Id([5; 16]),
            }),
        };
        let bytes = order.sign(&key, &rng).unwrap();
        let trusted = trusting(order.org, &key);
        assert_eq!(
            CommandOrder::verify(&bytes, &trusted, order.controller),
            Ok(order)
        );

        // Another controller of the same organization refuses it.
        assert_eq!(
            CommandOrder::verify(&bytes, &trusted, Id([9; 16])),
            Err(Reason::BadCommandSignature)
        );
        // Any changed byte (lock, command, time, actor) breaks the signature.
        for at in [
            2 + 16 + 8 + 16,
            2 + 16 + 8 + 32,
            2 + 16 + 8 + 47,
            2 + 16 + 8 + 56,
            2 + 16 + 8 + 57,
            ORDER_LEN - 65,
        ] {
            let mut forged = bytes.clone();
            forged[at] ^= 1;
            assert_eq!(
                CommandOrder::verify(&forged, &trusted, order.controller),
                Err(Reason::BadCommandSignature),
                "byte {at}"
            );
        }
        // An order for an API key names nobody.
        let keyless = CommandOrder {
            actor: None,
            ..order
        };
        let signed = keyless.sign(&key, &rng).unwrap();
        assert_eq!(
            CommandOrder::verify(&signed, &trusted, order.controller),
            Ok(keyless)
        );
        // "No actor" has one encoding: a zero id, even when signed.
        let mut w = signed::begin(Kind::CommandOrder, order.org, &key);
        w.bytes(&order.controller.0)
            .bytes(&order.command.0)
            .bytes(&order.lock.0)
            .u64(order.issued_at_ms)
            .u8(0)
            .bytes(&[5; 16]);
        let odd = signed::seal(w, &key, &rng).unwrap();
        assert_eq!(
            CommandOrder::verify(&odd, &trusted, order.controller),
            Err(Reason::MalformedFrame)
        );
        // A key the door does not hold, and a truncated order.
        let stranger = org_key(&rng);
        let signed_elsewhere = order.sign(&stranger, &rng).unwrap();
        assert!(CommandOrder::verify(&signed_elsewhere, &trusted, order.controller).is_err());
        assert!(
            CommandOrder::verify(&bytes[..bytes.len() - 1], &trusted, order.controller).is_err()
        );
        // Another kind of signed object is not an order.
        let time = crate::time::TimeStatement {
            org: order.org,
            controller: order.controller,
            nonce: [0; 16],
            unix_ms: 1,
        }
        .sign(&key, &rng)
        .unwrap();
        assert!(CommandOrder::verify(&time, &trusted, order.controller).is_err());
    }
}
