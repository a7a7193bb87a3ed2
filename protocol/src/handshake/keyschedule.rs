//! Transcript hashing, the HKDF key schedule and the per-direction AEAD.
//!
//! ```text
//! th1 = SHA-256(HELLO || CHALLENGE without signature)      door signs "keyway/v1 door" || th1
//! th2 = SHA-256(HELLO || CHALLENGE)                        device signs "keyway/v1 device" || th2 || command id
//! prk = HKDF-Extract(salt = th2, ikm = ECDH(phone eph, door eph))
//! k_pd = HKDF-Expand(prk, "keyway/v1 phone->door", 32)   k_dp = HKDF-Expand(prk, "keyway/v1 door->phone", 32)
//! AEAD = AES-256-GCM, nonce = direction u8 || 0 0 0 || counter u64, aad = frame type || counter u32
//! ```
//! Because th2 covers version, action, lock id, both ephemeral keys, the door nonce and the
//! door certificate, changing any of them yields different keys and the session fails.

use crate::keys::CryptoError;
use crate::reason::Reason;
use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::{digest, hkdf};

pub const DOOR_SIGNATURE_CONTEXT: &[u8] = b"keyway/v1 door";
pub const DEVICE_SIGNATURE_CONTEXT: &[u8] = b"keyway/v1 device";
const PHONE_TO_DOOR: &[u8] = b"keyway/v1 phone->door";
const DOOR_TO_PHONE: &[u8] = b"keyway/v1 door->phone";

/// Direction byte in the AEAD nonce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    PhoneToDoor = 1,
    DoorToPhone = 2,
}

pub fn transcript_hash(parts: &[&[u8]]) -> [u8; 32] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    for p in parts {
        ctx.update(p);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// What the door signs: context || th1.
pub fn door_signed_message(th1: &[u8; 32]) -> Vec<u8> {
    [DOOR_SIGNATURE_CONTEXT, th1.as_slice()].concat()
}

/// What the device key signs: context || th2 || command id.
pub fn device_signed_message(th2: &[u8; 32], command_id: &crate::Id) -> Vec<u8> {
    [
        DEVICE_SIGNATURE_CONTEXT,
        th2.as_slice(),
        command_id.0.as_slice(),
    ]
    .concat()
}

/// The two directional session keys as raw bytes (kept only inside [`SessionKeys`]).
#[derive(Clone, PartialEq, Eq)]
pub struct KeyMaterial {
    pub phone_to_door: [u8; 32],
    pub door_to_phone: [u8; 32],
}

impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyMaterial(..)")
    }
}

#[cfg(test)]
thread_local! {
    /// Unit tests only: the last ECDH output, so test vectors can record it.
    pub(crate) static LAST_SHARED_SECRET: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

struct Len32;
impl hkdf::KeyType for Len32 {
    fn len(&self) -> usize {
        32
    }
}

/// HKDF over the ECDH output with the transcript hash as salt.
pub fn derive_keys(shared_secret: &[u8], th2: &[u8; 32]) -> Result<KeyMaterial, CryptoError> {
    #[cfg(test)]
    LAST_SHARED_SECRET.with(|s| *s.borrow_mut() = shared_secret.to_vec());
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, th2).extract(shared_secret);
    let expand = |label: &[u8]| -> Result<[u8; 32], CryptoError> {
        let mut out = [0u8; 32];
        let info = [label];
        prk.expand(&info, Len32)
            .and_then(|okm| okm.fill(&mut out))
            .map_err(|_| CryptoError::Agreement)?;
        Ok(out)
    };
    Ok(KeyMaterial {
        phone_to_door: expand(PHONE_TO_DOOR)?,
        door_to_phone: expand(DOOR_TO_PHONE)?,
    })
}

fn nonce(direction: Direction, counter: u32) -> Nonce {
    let mut n = [0u8; 12];
    n[0] = direction as u8;
    n[4..].copy_from_slice(&(counter as u64).to_be_bytes());
    Nonce::assume_unique_for_key(n)
}

/// One direction's AEAD key with its counter.
pub struct DirectionalKey {
    key: LessSafeKey,
    direction: Direction,
    counter: u32,
}

impl std::fmt::Debug for DirectionalKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectionalKey")
            .field("direction", &self.direction)
            .field("counter", &self.counter)
            .finish()
    }
}

impl DirectionalKey {
    pub fn new(raw: &[u8; 32], direction: Direction) -> Self {
        let unbound = UnboundKey::new(&aead::AES_256_GCM, raw).expect("32-byte AES-256 key");
        Self {
            key: LessSafeKey::new(unbound),
            direction,
            counter: 0,
        }
    }

    /// Seals with the next counter; returns (counter, ciphertext || tag).
    pub fn seal(
        &mut self,
        frame_type: u8,
        plaintext: &[u8],
    ) -> Result<(u32, Vec<u8>), CryptoError> {
        let counter = self.counter;
        self.counter = counter.checked_add(1).ok_or(CryptoError::Agreement)?;
        let mut buf = plaintext.to_vec();
        let aad = super::frames::Sealed::aad(frame_type, counter);
        self.key
            .seal_in_place_append_tag(nonce(self.direction, counter), Aad::from(aad), &mut buf)
            .map_err(|_| CryptoError::Agreement)?;
        Ok((counter, buf))
    }

    /// Opens a frame; the counter must be exactly the next expected one.
    pub fn open(
        &mut self,
        frame_type: u8,
        counter: u32,
        ciphertext: &[u8],
    ) -> Result<Vec<u8>, Reason> {
        if counter != self.counter {
            return Err(Reason::ReplayedFrame);
        }
        let mut buf = ciphertext.to_vec();
        let aad = super::frames::Sealed::aad(frame_type, counter);
        let plain = self
            .key
            .open_in_place(nonce(self.direction, counter), Aad::from(aad), &mut buf)
            .map_err(|_| Reason::DecryptFailed)?;
        let len = plain.len();
        buf.truncate(len);
        self.counter += 1;
        Ok(buf)
    }
}
