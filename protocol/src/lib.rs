//! # keyway-protocol
//!
//! The sans-IO core of Keyway's BLE unlock protocol, shared by the phone core, the door
//! controller and the server. No sockets, no clocks, no global RNG: time and randomness are
//! arguments, so both ends run against each other in one test.
//!
//! Where to start reading:
//! - [`handshake`]: the phone ([`handshake::Initiator`]) and door ([`handshake::Responder`])
//!   state machines and the offline access decision.
//! - [`credential`], [`certificate`], [`revocation`], [`time`], [`command`]: organization-signed
//!   objects.
//! - [`gatt`] and [`advert`]: how messages travel over BLE and what the door advertises.
//! - [`reason`]: the one vocabulary of denial reasons used across Keyway.
//!
//! The byte layouts and the threat model are specified in `docs/protocol.md`.

pub mod advert;
pub mod certificate;
pub mod codec;
pub mod command;
pub mod credential;
pub mod door_trust;
pub mod gatt;
pub mod handshake;
pub mod id;
pub mod keys;
pub mod reason;
pub mod revocation;
mod signed;
pub mod time;
pub mod trust;

#[cfg(test)]
mod vectors;

pub use id::Id;
pub use keys::{CryptoError, KeyId, PublicKey, Signature, SigningKey};
pub use reason::Reason;
pub use signed::OpenError;
pub use trust::{TrustedKey, TrustedKeys};
