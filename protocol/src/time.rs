//! Trusted time for doors that have no reliable clock of their own.
//!
//! The server signs a [`TimeStatement`] answering a controller's fresh nonce; the controller
//! anchors a [`TrustedClock`] to it with its monotonic clock and widens the uncertainty by a
//! bounded drift as time passes. Past `max_age_ms` without a new statement the clock stops
//! being trusted and validity windows cannot be checked (`ClockUntrusted`).
//!
//! Layout (after the [`crate::signed`] header):
//! ```text
//! controller id [16] | nonce [16] | unix_ms u64 | signature [64]
//! ```

use crate::id::Id;
use crate::keys::{CryptoError, SigningKey};
use crate::reason::Reason;
use crate::signed::{self, Kind};
use crate::trust::TrustedKeys;
use ring::rand::SecureRandom;

const STATEMENT_LEN: usize = 2 + 16 + 8 + 16 + 16 + 8 + 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeStatement {
    pub org: Id,
    pub controller: Id,
    pub nonce: [u8; 16],
    pub unix_ms: u64,
}

impl TimeStatement {
    pub fn sign(
        &self,
        org_key: &SigningKey,
        rng: &dyn SecureRandom,
    ) -> Result<Vec<u8>, CryptoError> {
        let mut w = signed::begin(Kind::TimeStatement, self.org, org_key);
        w.bytes(&self.controller.0)
            .bytes(&self.nonce)
            .u64(self.unix_ms);
        signed::seal(w, org_key, rng)
    }

    /// Verifies the signature and that it answers this controller's `nonce`.
    pub fn verify(
        bytes: &[u8],
        trusted: &TrustedKeys,
        controller: Id,
        nonce: &[u8; 16],
    ) -> Result<Self, Reason> {
        let opened =
            signed::open(bytes, Kind::TimeStatement, STATEMENT_LEN).map_err(|e| e.reason())?;
        opened.verify(trusted, Reason::BadCredentialSignature)?;
        let org = opened.header.org;
        let mut r = opened.body;
        let parse =
            |r: &mut crate::codec::Reader<'_>| -> Result<TimeStatement, crate::codec::DecodeError> {
                let stmt = TimeStatement {
                    org,
                    controller: Id(r.array("controller id")?),
                    nonce: r.array("nonce")?,
                    unix_ms: r.u64("unix_ms")?,
                };
                Ok(stmt)
            };
        let stmt = parse(&mut r).map_err(|e| e.reason())?;
        r.finish("time statement").map_err(|e| e.reason())?;
        if stmt.controller != controller || !crate::keys::ct_eq(&stmt.nonce, nonce) {
            return Err(Reason::ReplayedFrame);
        }
        Ok(stmt)
    }
}

/// Wall-clock time derived from a signed statement plus a monotonic clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TrustedClock {
    pub anchor_unix_ms: u64,
    pub anchor_mono_ms: u64,
    /// Worst-case oscillator drift, parts per million.
    pub drift_ppm: u64,
    /// How long a statement stays usable.
    pub max_age_ms: u64,
}

/// The interval that certainly contains the current time, in unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeBounds {
    pub earliest: u64,
    pub latest: u64,
}

impl TrustedClock {
    /// Defaults: 100 ppm drift (cheap crystals) and a week without resync.
    pub fn anchored(unix_ms: u64, mono_ms: u64) -> Self {
        Self {
            anchor_unix_ms: unix_ms,
            anchor_mono_ms: mono_ms,
            drift_ppm: 100,
            max_age_ms: 7 * 86_400_000,
        }
    }

    pub fn bounds(&self, mono_ms: u64) -> Result<TimeBounds, Reason> {
        let elapsed = mono_ms
            .checked_sub(self.anchor_mono_ms)
            .ok_or(Reason::ClockUntrusted)?;
        if elapsed > self.max_age_ms {
            return Err(Reason::ClockUntrusted);
        }
        let slack = elapsed.saturating_mul(self.drift_ppm) / 1_000_000 + 1_000;
        let mid = self.anchor_unix_ms + elapsed;
        Ok(TimeBounds {
            earliest: mid.saturating_sub(slack) / 1000,
            latest: (mid + slack) / 1000,
        })
    }
}
