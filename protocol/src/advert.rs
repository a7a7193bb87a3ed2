//! The door's BLE advertisement and the rotating proximity code.
//!
//! Payload (10 bytes), carried as Service Data for the 128-bit Keyway service UUID, so flags
//! (3) + service data (2 + 16 + 10) fill the 31-byte legacy advertisement exactly:
//! ```text
//! version u8 | lock short id [4] | tx power at 1 m i8 | proximity code [3] | flags u8
//! ```
//! The proximity code is a 24-bit HMAC-SHA256 TOTP over the lock id and a 30-second step,
//! keyed by a per-lock secret that the server and the controller share. The app sends it as
//! `proximity_proof` with a cloud unlock; the server accepts the current and adjacent steps.

use crate::codec::{DecodeError, Reader, Writer};
use crate::id::Id;
use crate::keys::ct_eq;
use ring::hmac;

pub const ADVERT_VERSION: u8 = 1;
pub const ADVERT_LEN: usize = 10;
/// Seconds per proximity-code step.
pub const PROXIMITY_STEP_SECS: u64 = 30;

/// Advertised flag bits.
pub const FLAG_WALK_UP: u8 = 0x01;
pub const FLAG_LOCKDOWN: u8 = 0x02;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Advertisement {
    pub lock_short_id: [u8; 4],
    /// Received power at 1 m, dBm (path-loss reference for distance estimates).
    pub tx_power: i8,
    pub proximity_code: u32,
    pub flags: u8,
}

/// The 4-byte id a lock advertises; phones map it back through their lock list.
pub fn lock_short_id(lock: Id) -> [u8; 4] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(b"keyway/v1 lock short id");
    ctx.update(&lock.0);
    let d = ctx.finish();
    let mut out = [0u8; 4];
    out.copy_from_slice(&d.as_ref()[..4]);
    out
}

/// The 24-bit code for `lock` at `unix_secs`.
pub fn proximity_code(secret: &[u8; 32], lock: Id, unix_secs: u64) -> u32 {
    code_for_step(secret, lock, unix_secs / PROXIMITY_STEP_SECS)
}

fn code_for_step(secret: &[u8; 32], lock: Id, step: u64) -> u32 {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(b"keyway/v1 proximity");
    ctx.update(&lock.0);
    ctx.update(&step.to_be_bytes());
    let tag = ctx.sign();
    let t = tag.as_ref();
    u32::from_be_bytes([0, t[0], t[1], t[2]])
}

/// Accepts the code of the current step and of one step either side (clock skew, scan delay).
pub fn verify_proximity_code(secret: &[u8; 32], lock: Id, code: u32, unix_secs: u64) -> bool {
    let step = unix_secs / PROXIMITY_STEP_SECS;
    let mut ok = false;
    for s in [step.saturating_sub(1), step, step + 1] {
        // Evaluate all three so timing does not reveal which step matched.
        ok |= ct_eq(
            &code_for_step(secret, lock, s).to_be_bytes(),
            &code.to_be_bytes(),
        );
    }
    ok
}

impl Advertisement {
    pub fn encode(&self) -> [u8; ADVERT_LEN] {
        let mut w = Writer::new();
        w.u8(ADVERT_VERSION)
            .bytes(&self.lock_short_id)
            .u8(self.tx_power as u8);
        w.bytes(&self.proximity_code.to_be_bytes()[1..])
            .u8(self.flags);
        let mut out = [0u8; ADVERT_LEN];
        out.copy_from_slice(w.as_slice());
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let version = r.u8("advert version")?;
        if version != ADVERT_VERSION {
            return Err(DecodeError::BadValue {
                field: "advert version",
                value: version as u64,
            });
        }
        let lock_short_id = r.array("short id")?;
        let tx_power = r.u8("tx power")? as i8;
        let code: [u8; 3] = r.array("proximity code")?;
        let flags = r.u8("flags")?;
        r.finish("advertisement")?;
        Ok(Self {
            lock_short_id,
            tx_power,
            proximity_code: u32::from_be_bytes([0, code[0], code[1], code[2]]),
            flags,
        })
    }

    pub fn walk_up(&self) -> bool {
        self.flags & FLAG_WALK_UP != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advert_round_trip_and_fits_legacy_advertising() {
        let a = Advertisement {
            lock_short_id: [1, 2, 3, 4],
            tx_power: -59,
            proximity_code: 0xABCDEF,
            flags: FLAG_WALK_UP,
        };
        let bytes = a.encode();
        assert_eq!(Advertisement::decode(&bytes).unwrap(), a);
        // flags AD (3) + service data AD header (2) + 128-bit UUID (16) + payload
        assert!(3 + 2 + 16 + bytes.len() <= 31);
        assert!(Advertisement::decode(&bytes[..9]).is_err());
    }

    #[test]
    fn proximity_code_rotates_and_verifies_with_skew() {
        let secret = [7u8; 32];
        let lock = Id([9; 16]);
        let t = 1_800_000_000;
        let code = proximity_code(&secret, lock, t);
        assert!(code < 1 << 24);
        assert!(verify_proximity_code(&secret, lock, code, t));
        assert!(verify_proximity_code(
            &secret,
            lock,
            code,
            t + PROXIMITY_STEP_SECS
        ));
        assert!(!verify_proximity_code(
            &secret,
            lock,
            code,
            t + 3 * PROXIMITY_STEP_SECS
        ));
        assert!(!verify_proximity_code(&[8u8; 32], lock, code, t));
        assert!(!verify_proximity_code(&secret, Id([1; 16]), code, t));
    }
}
