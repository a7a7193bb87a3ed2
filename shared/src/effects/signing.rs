//! Device-key operations. The key lives with the shell: a software key by default, Android
//! Keystore or the Secure Enclave in production apps. Signatures are ECDSA P-256 SHA-256 in
//! the fixed 64-byte form (`keyway_protocol::keys::der_signature_to_fixed` converts DER).

use crux_core::capability::Operation;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SigningOperation {
    /// The device public key (65-byte uncompressed P-256), creating the key if needed.
    PublicKey,
    Sign {
        message: Vec<u8>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SigningOutput {
    PublicKey { key: Vec<u8> },
    Signature { signature: Vec<u8> },
    Error { message: String },
}

impl Operation for SigningOperation {
    type Output = SigningOutput;
}
