//! P-256 keys: organization signing keys, controller keys and device keys.
//!
//! Signatures are ECDSA P-256 with SHA-256 in the fixed 64-byte `r || s` form. Phones whose
//! secure hardware emits ASN.1 DER convert with [`der_signature_to_fixed`].

use ring::rand::SecureRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair, UnparsedPublicKey};

/// Uncompressed SEC1 P-256 point length.
pub const PUBLIC_KEY_LEN: usize = 65;
/// Fixed-size ECDSA P-256 signature length.
pub const SIGNATURE_LEN: usize = 64;
/// Key id length: first bytes of SHA-256 over the public key.
pub const KEY_ID_LEN: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("the system random number generator failed")]
    Rng,
    #[error("the key material is invalid")]
    InvalidKey,
    #[error("signing failed")]
    Signing,
    #[error("key agreement failed")]
    Agreement,
    #[error("the signature encoding is invalid")]
    InvalidSignature,
    #[error("the object cannot be encoded: {0}")]
    InvalidObject(&'static str),
}

/// Identifies a signing key inside a key ring, so keys can rotate with overlap.
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct KeyId(pub [u8; KEY_ID_LEN]);

impl std::fmt::Debug for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyId({})", hex::encode(self.0))
    }
}

impl std::fmt::Display for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// An uncompressed P-256 public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey(pub [u8; PUBLIC_KEY_LEN]);

impl PublicKey {
    /// Accepts only well-formed uncompressed points (the curve check happens at verify time).
    pub fn from_slice(bytes: &[u8]) -> Result<Self, CryptoError> {
        if bytes.len() != PUBLIC_KEY_LEN || bytes[0] != 0x04 {
            return Err(CryptoError::InvalidKey);
        }
        let mut out = [0u8; PUBLIC_KEY_LEN];
        out.copy_from_slice(bytes);
        Ok(Self(out))
    }

    pub fn key_id(&self) -> KeyId {
        let digest = ring::digest::digest(&ring::digest::SHA256, &self.0);
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(&digest.as_ref()[..KEY_ID_LEN]);
        KeyId(id)
    }

    /// Verifies a fixed-size ECDSA P-256 SHA-256 signature over `msg`.
    pub fn verify(&self, msg: &[u8], sig: &Signature) -> bool {
        UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, &self.0[..])
            .verify(msg, &sig.0)
            .is_ok()
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({})", self.key_id())
    }
}

impl serde::Serialize for PublicKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(self.0))
    }
}

impl<'de> serde::Deserialize<'de> for PublicKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let raw = hex::decode(&text).map_err(serde::de::Error::custom)?;
        PublicKey::from_slice(&raw).map_err(serde::de::Error::custom)
    }
}

/// A fixed-size (`r || s`) ECDSA P-256 signature.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(pub [u8; SIGNATURE_LEN]);

impl std::fmt::Debug for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signature({}..)", hex::encode(&self.0[..6]))
    }
}

/// A P-256 ECDSA signing key held in software (organization keys on the server, controller
/// keys in the emulator, device keys on phones without secure hardware).
pub struct SigningKey {
    pair: EcdsaKeyPair,
    public: PublicKey,
}

impl std::fmt::Debug for SigningKey {
    // Never prints private material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("public", &self.public)
            .finish()
    }
}

impl SigningKey {
    /// Generates a key; returns it with its PKCS#8 encoding for storage.
    pub fn generate(rng: &dyn SecureRandom) -> Result<(Self, Vec<u8>), CryptoError> {
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, rng)
            .map_err(|_| CryptoError::Rng)?;
        let key = Self::from_pkcs8(pkcs8.as_ref(), rng)?;
        Ok((key, pkcs8.as_ref().to_vec()))
    }

    pub fn from_pkcs8(pkcs8: &[u8], rng: &dyn SecureRandom) -> Result<Self, CryptoError> {
        let pair =
            EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8, rng)
                .map_err(|_| CryptoError::InvalidKey)?;
        let public = PublicKey::from_slice(pair.public_key().as_ref())?;
        Ok(Self { pair, public })
    }

    pub fn public_key(&self) -> PublicKey {
        self.public
    }

    pub fn key_id(&self) -> KeyId {
        self.public.key_id()
    }

    pub fn sign(&self, rng: &dyn SecureRandom, msg: &[u8]) -> Result<Signature, CryptoError> {
        let sig = self.pair.sign(rng, msg).map_err(|_| CryptoError::Signing)?;
        let mut out = [0u8; SIGNATURE_LEN];
        out.copy_from_slice(sig.as_ref());
        Ok(Signature(out))
    }
}

/// Converts an ASN.1 DER ECDSA signature (Android Keystore, Secure Enclave) to the fixed form.
pub fn der_signature_to_fixed(der: &[u8]) -> Result<Signature, CryptoError> {
    fn int<'a>(input: &mut &'a [u8]) -> Result<&'a [u8], CryptoError> {
        let [0x02, len, rest @ ..] = input else {
            return Err(CryptoError::InvalidSignature);
        };
        let len = *len as usize;
        if len == 0 || len > 33 || rest.len() < len {
            return Err(CryptoError::InvalidSignature);
        }
        let (value, tail) = rest.split_at(len);
        *input = tail;
        // Strip the sign-padding zero.
        let value = if value.len() == 33 && value[0] == 0 {
            &value[1..]
        } else {
            value
        };
        if value.len() > 32 {
            return Err(CryptoError::InvalidSignature);
        }
        Ok(value)
    }
    let [0x30, len, body @ ..] = der else {
        return Err(CryptoError::InvalidSignature);
    };
    if *len as usize != body.len() {
        return Err(CryptoError::InvalidSignature);
    }
    let mut rest = body;
    let r = int(&mut rest)?;
    let s = int(&mut rest)?;
    if !rest.is_empty() {
        return Err(CryptoError::InvalidSignature);
    }
    let mut out = [0u8; SIGNATURE_LEN];
    out[32 - r.len()..32].copy_from_slice(r);
    out[64 - s.len()..].copy_from_slice(s);
    Ok(Signature(out))
}

/// Something that can sign with a device key: software key here, secure hardware on phones.
pub trait DeviceSigner {
    fn public_key(&self) -> PublicKey;
    fn sign(&self, msg: &[u8]) -> Result<Signature, CryptoError>;
}

/// Constant-time equality for secrets and MACs.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    #[allow(deprecated)]
    ring::constant_time::verify_slices_are_equal(a, b).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;

    #[test]
    fn sign_verify_and_der_conversion() {
        let rng = SystemRandom::new();
        let (key, pkcs8) = SigningKey::generate(&rng).unwrap();
        let again = SigningKey::from_pkcs8(&pkcs8, &rng).unwrap();
        assert_eq!(key.public_key(), again.public_key());
        let sig = key.sign(&rng, b"hello").unwrap();
        assert!(key.public_key().verify(b"hello", &sig));
        assert!(!key.public_key().verify(b"hellO", &sig));

        // DER produced by ring's ASN.1 signer converts to a fixed signature that verifies.
        let der_pair =
            EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, &pkcs8, &rng)
                .unwrap();
        let der = der_pair.sign(&rng, b"msg").unwrap();
        let fixed = der_signature_to_fixed(der.as_ref()).unwrap();
        assert!(key.public_key().verify(b"msg", &fixed));
        assert!(der_signature_to_fixed(&der.as_ref()[..10]).is_err());
        assert!(der_signature_to_fixed(&[]).is_err());
    }

    #[test]
    fn public_key_rejects_bad_shapes() {
        assert!(PublicKey::from_slice(&[4u8; 64]).is_err());
        assert!(PublicKey::from_slice(&[3u8; 65]).is_err());
    }
}
