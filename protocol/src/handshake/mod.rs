//! The BLE unlock handshake: two GATT round trips after connect.
//!
//! ```text
//! phone (Initiator)                                   door (Responder)
//!   HELLO  version, action, lock id, phone eph key  ->
//!                                                   <- CHALLENGE door eph key, nonce, controller
//!                                                      certificate, door signature over th1
//!   (phone verifies the door before revealing anything)
//!   AUTH   AEAD(command id, device signature, credential)  ->
//!                                                   <- RESULT AEAD(verdict, reason, event seq)
//! ```
//! Both machines are sans-IO: frames in, frames out, time and randomness passed in.

pub mod frames;
mod initiator;
pub mod keyschedule;
mod responder;

pub use frames::{Action, PROTOCOL_VERSION, ResultBody};
pub use initiator::{Initiator, SignRequest};
pub use responder::{
    AuthInput, COMMAND_MEMORY, DEFAULT_NONCE_VALIDITY_MS, Decision, DoorConfig, DoorIdentity,
    DoorMemory, LockPolicy, Responder, USE_COUNT_GRACE_SECS, UseCount, UseCounting,
    WALK_UP_MAX_RANGE_M,
};

use crate::keys::CryptoError;
use crate::reason::Reason;

/// Why a handshake step failed. `Rejected` carries the shared-vocabulary reason the door logs
/// and the app shows; `Crypto` means the local RNG or key material failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    #[error("rejected: {0}")]
    Rejected(Reason),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

impl HandshakeError {
    pub fn reason(&self) -> Option<Reason> {
        match self {
            HandshakeError::Rejected(r) => Some(*r),
            HandshakeError::Crypto(_) => None,
        }
    }
}

impl From<Reason> for HandshakeError {
    fn from(r: Reason) -> Self {
        HandshakeError::Rejected(r)
    }
}

impl From<crate::codec::DecodeError> for HandshakeError {
    fn from(e: crate::codec::DecodeError) -> Self {
        HandshakeError::Rejected(e.reason())
    }
}
