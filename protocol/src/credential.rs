//! Device credentials: the organization's signed statement that one device key may open
//! some locks, within a validity window and optional weekly hours, up to a number of uses.
//!
//! Layout (after the [`crate::signed`] header):
//! ```text
//! credential id [16] | holder kind u8 | holder id [16] | device public key [65]
//! | scope count u8 (1..=32) | { scope kind u8 | id [16] } *
//! | not_before u64 | not_after u64            (unix seconds, not_before < not_after)
//! | max_uses u32 (0 = unlimited) | flags u8 (0)
//! | schedule: window count u8 (0..=8) | if > 0: tz name (u8 len, ..=64 bytes)
//! |           { weekday mask u8 | start minute u16 | end minute u16 } *
//! | signature [64]
//! ```

use crate::codec::DecodeError;
use crate::id::Id;
use crate::keys::{CryptoError, PUBLIC_KEY_LEN, PublicKey, SigningKey};
use crate::reason::Reason;
use crate::signed::{self, Kind, OpenError};
use crate::trust::TrustedKeys;
use chrono::{Datelike, TimeZone, Timelike};
use ring::rand::SecureRandom;

/// Hard cap on an encoded credential.
pub const MAX_CREDENTIAL_LEN: usize = 1024;
pub const MAX_SCOPE_ENTRIES: usize = 32;
pub const MAX_WINDOWS: usize = 8;
const MAX_TZ_LEN: usize = 64;

/// Who the credential was issued to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HolderKind {
    User = 1,
    Guest = 2,
}

impl HolderKind {
    /// The kind for its wire byte.
    pub fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(Self::User),
            2 => Some(Self::Guest),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Holder {
    pub kind: HolderKind,
    pub id: Id,
}

/// A lock or a whole place the credential opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "id")]
pub enum ScopeEntry {
    Lock(Id),
    Place(Id),
}

/// A weekly window in the schedule's time zone: `weekdays` bit 0 = Monday .. bit 6 = Sunday,
/// minutes of the day with `start_minute < end_minute <= 1440`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Window {
    pub weekdays: u8,
    pub start_minute: u16,
    pub end_minute: u16,
}

/// Weekly hours in an IANA time zone (the place's).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Schedule {
    pub time_zone: String,
    pub windows: Vec<Window>,
}

impl Schedule {
    /// Whether `unix_secs` falls inside any window, evaluated in the schedule's time zone.
    pub fn allows(&self, unix_secs: u64) -> Result<bool, Reason> {
        self.allows_throughout(unix_secs, unix_secs)
    }

    /// Whether every second of `earliest..=latest` falls inside a window. Windows start and
    /// end on whole local minutes, and every zone's offset is a whole number of minutes, so
    /// checking `earliest` and each minute that begins after it is checking them all.
    pub fn allows_throughout(&self, earliest: u64, latest: u64) -> Result<bool, Reason> {
        let tz: chrono_tz::Tz = self.time_zone.parse().map_err(|_| Reason::MalformedFrame)?;
        let mut t = earliest;
        while t <= latest {
            if !self.allows_in(tz, t)? {
                return Ok(false);
            }
            t = (t / 60 + 1) * 60;
        }
        Ok(true)
    }

    fn allows_in(&self, tz: chrono_tz::Tz, unix_secs: u64) -> Result<bool, Reason> {
        let secs = i64::try_from(unix_secs).map_err(|_| Reason::MalformedFrame)?;
        let local = tz
            .timestamp_opt(secs, 0)
            .single()
            .ok_or(Reason::MalformedFrame)?;
        let day_bit = 1u8 << local.weekday().num_days_from_monday();
        let minute = (local.hour() * 60 + local.minute()) as u16;
        Ok(self.windows.iter().any(|w| {
            w.weekdays & day_bit != 0 && w.start_minute <= minute && minute < w.end_minute
        }))
    }
}

/// The claims of a device credential.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Credential {
    pub id: Id,
    pub org: Id,
    pub holder: Holder,
    pub device_key: PublicKey,
    pub scope: Vec<ScopeEntry>,
    pub not_before: u64,
    pub not_after: u64,
    /// Unlocks allowed per door for this credential; `None` = unlimited.
    pub max_uses: Option<u32>,
    pub schedule: Option<Schedule>,
}

/// A credential with its signed encoding, as carried on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCredential {
    pub credential: Credential,
    pub key_id: crate::keys::KeyId,
    pub bytes: Vec<u8>,
}

impl Credential {
    /// Encodes and signs with the organization key.
    pub fn sign(
        &self,
        org_key: &SigningKey,
        rng: &dyn SecureRandom,
    ) -> Result<Vec<u8>, CryptoError> {
        self.validate()?;
        let mut w = signed::begin(Kind::Credential, self.org, org_key);
        w.bytes(&self.id.0)
            .u8(self.holder.kind as u8)
            .bytes(&self.holder.id.0);
        w.bytes(&self.device_key.0);
        w.u8(self.scope.len() as u8);
        for entry in &self.scope {
            match entry {
                ScopeEntry::Lock(id) => w.u8(1).bytes(&id.0),
                ScopeEntry::Place(id) => w.u8(2).bytes(&id.0),
            };
        }
        w.u64(self.not_before)
            .u64(self.not_after)
            .u32(self.max_uses.unwrap_or(0))
            .u8(0);
        match &self.schedule {
            None => {
                w.u8(0);
            }
            Some(s) => {
                w.u8(s.windows.len() as u8).short_str(&s.time_zone);
                for win in &s.windows {
                    w.u8(win.weekdays).u16(win.start_minute).u16(win.end_minute);
                }
            }
        }
        signed::seal(w, org_key, rng)
    }

    /// Refuses what the decoder would refuse, so the server never issues an unusable credential.
    pub fn validate(&self) -> Result<(), CryptoError> {
        let bad = CryptoError::InvalidObject;
        if self.scope.is_empty() || self.scope.len() > MAX_SCOPE_ENTRIES {
            return Err(bad("scope must hold 1 to 32 entries"));
        }
        if self.not_before >= self.not_after {
            return Err(bad("not_before must precede not_after"));
        }
        if let Some(s) = &self.schedule {
            if s.windows.is_empty() || s.windows.len() > MAX_WINDOWS {
                return Err(bad("a schedule holds 1 to 8 windows"));
            }
            if s.time_zone.len() > MAX_TZ_LEN || s.time_zone.parse::<chrono_tz::Tz>().is_err() {
                return Err(bad("unknown time zone"));
            }
            if s.windows.iter().any(|w| {
                w.weekdays & 0x80 != 0 || w.start_minute >= w.end_minute || w.end_minute > 1440
            }) {
                return Err(bad(
                    "a window needs start < end <= 1440 and weekday bits 0..=6",
                ));
            }
        }
        if self.max_uses == Some(0) {
            return Err(bad("max_uses must be positive or absent"));
        }
        Ok(())
    }

    /// Checks the claims a verifier can check without a signature: time, schedule, scope.
    /// `now` must come from a trusted clock.
    pub fn check_access(&self, now: u64, lock: Id, place: Option<Id>) -> Result<(), Reason> {
        self.check_access_within(now, now, lock, place)
    }

    /// Like [`Credential::check_access`] when the verifier only knows the time lies within
    /// `earliest..=latest` (a door's drifting clock): access must hold across the whole span.
    pub fn check_access_within(
        &self,
        earliest: u64,
        latest: u64,
        lock: Id,
        place: Option<Id>,
    ) -> Result<(), Reason> {
        let in_scope = self.scope.iter().any(|e| match e {
            ScopeEntry::Lock(id) => *id == lock,
            ScopeEntry::Place(id) => Some(*id) == place,
        });
        if !in_scope {
            return Err(Reason::WrongLock);
        }
        if latest >= self.not_after {
            return Err(Reason::Expired);
        }
        if earliest < self.not_before {
            return Err(Reason::NotYetValid);
        }
        if let Some(schedule) = &self.schedule
            && !schedule.allows_throughout(earliest, latest)?
        {
            return Err(Reason::OutsideSchedule);
        }
        Ok(())
    }
}

impl SignedCredential {
    /// Strict decoding without signature verification (see [`SignedCredential::verify`]).
    pub fn decode(bytes: &[u8]) -> Result<Self, OpenError> {
        let opened = signed::open(bytes, Kind::Credential, MAX_CREDENTIAL_LEN)?;
        let (credential, key_id) = decode_body(opened)?;
        Ok(Self {
            credential,
            key_id,
            bytes: bytes.to_vec(),
        })
    }

    /// Decodes and verifies the organization signature against trusted keys.
    pub fn verify(bytes: &[u8], trusted: &TrustedKeys) -> Result<Self, Reason> {
        let opened =
            signed::open(bytes, Kind::Credential, MAX_CREDENTIAL_LEN).map_err(|e| e.reason())?;
        opened.verify(trusted, Reason::BadCredentialSignature)?;
        let (credential, key_id) = decode_body(opened).map_err(|e| e.reason())?;
        Ok(Self {
            credential,
            key_id,
            bytes: bytes.to_vec(),
        })
    }
}

fn decode_body(
    opened: signed::Opened<'_>,
) -> Result<(Credential, crate::keys::KeyId), DecodeError> {
    let mut r = opened.body;
    let id = Id(r.array("credential id")?);
    let kind = r.u8("holder kind")?;
    let holder_kind = HolderKind::from_u8(kind).ok_or(DecodeError::BadValue {
        field: "holder kind",
        value: u64::from(kind),
    })?;
    let holder = Holder {
        kind: holder_kind,
        id: Id(r.array("holder id")?),
    };
    let device_key =
        PublicKey::from_slice(r.bytes(PUBLIC_KEY_LEN, "device key")?).map_err(|_| {
            DecodeError::BadValue {
                field: "device key",
                value: 0,
            }
        })?;
    let n = r.count(MAX_SCOPE_ENTRIES, "scope")?;
    if n == 0 {
        return Err(DecodeError::BadValue {
            field: "scope count",
            value: 0,
        });
    }
    let mut scope = Vec::with_capacity(n);
    for _ in 0..n {
        let kind = r.u8("scope kind")?;
        let id = Id(r.array("scope id")?);
        scope.push(match kind {
            1 => ScopeEntry::Lock(id),
            2 => ScopeEntry::Place(id),
            v => {
                return Err(DecodeError::BadValue {
                    field: "scope kind",
                    value: v as u64,
                });
            }
        });
    }
    let not_before = r.u64("not_before")?;
    let not_after = r.u64("not_after")?;
    if not_before >= not_after {
        return Err(DecodeError::BadValue {
            field: "validity window",
            value: not_after,
        });
    }
    let max_uses = match r.u32("max_uses")? {
        0 => None,
        n => Some(n),
    };
    let flags = r.u8("flags")?;
    if flags != 0 {
        return Err(DecodeError::BadValue {
            field: "flags",
            value: flags as u64,
        });
    }
    let windows = r.count(MAX_WINDOWS, "schedule windows")?;
    let schedule = if windows == 0 {
        None
    } else {
        let tz = r.short_str("time zone")?;
        if tz.len() > MAX_TZ_LEN || tz.parse::<chrono_tz::Tz>().is_err() {
            return Err(DecodeError::BadValue {
                field: "time zone",
                value: tz.len() as u64,
            });
        }
        let mut list = Vec::with_capacity(windows);
        for _ in 0..windows {
            let w = Window {
                weekdays: r.u8("weekdays")?,
                start_minute: r.u16("start minute")?,
                end_minute: r.u16("end minute")?,
            };
            if w.weekdays & 0x80 != 0 || w.start_minute >= w.end_minute || w.end_minute > 1440 {
                return Err(DecodeError::BadValue {
                    field: "window",
                    value: w.end_minute as u64,
                });
            }
            list.push(w);
        }
        Some(Schedule {
            time_zone: tz.to_owned(),
            windows: list,
        })
    };
    r.finish("credential")?;
    let credential = Credential {
        id,
        org: opened.header.org,
        holder,
        device_key,
        scope,
        not_before,
        not_after,
        max_uses,
        schedule,
    };
    Ok((credential, opened.header.key_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_is_evaluated_in_local_time_across_dst() {
        // 2027-03-04 10:00 UTC = Thursday 11:00 CET; 2027-07-01 10:00 UTC = Thursday 12:00 CEST.
        let sched = |start: u16, end: u16| Schedule {
            time_zone: "Europe/Berlin".into(),
            windows: vec![Window {
                weekdays: 1 << 3,
                start_minute: start,
                end_minute: end,
            }],
        };
        assert!(sched(660, 661).allows(1_804_154_400).unwrap());
        assert!(!sched(600, 660).allows(1_804_154_400).unwrap());
        assert!(sched(720, 721).allows(1_814_436_000).unwrap());
        assert!(!sched(660, 720).allows(1_814_436_000).unwrap());
    }

    #[test]
    fn a_span_of_time_needs_every_minute_allowed() {
        // 10:59:10 to 11:01:10 UTC on a Thursday (2027-03-04).
        let (earliest, latest) = (1_804_157_950, 1_804_158_070);
        let windows = |spans: &[(u16, u16)]| Schedule {
            time_zone: "UTC".into(),
            windows: spans
                .iter()
                .map(|&(start_minute, end_minute)| Window {
                    weekdays: 0x7f,
                    start_minute,
                    end_minute,
                })
                .collect(),
        };
        // Both ends are allowed, but 11:00 is in neither window.
        let gap = windows(&[(600, 660), (661, 720)]);
        assert!(gap.allows(earliest).unwrap() && gap.allows(latest).unwrap());
        assert!(!gap.allows_throughout(earliest, latest).unwrap());
        assert!(
            windows(&[(600, 660), (660, 720)])
                .allows_throughout(earliest, latest)
                .unwrap()
        );
        assert!(
            !windows(&[(600, 661)])
                .allows_throughout(earliest, latest)
                .unwrap()
        );
    }
}

#[cfg(test)]
mod validate_tests {
    use super::*;
    use ring::rand::SystemRandom;

    #[test]
    fn signing_refuses_what_decoding_would_refuse() {
        let rng = SystemRandom::new();
        let (key, _) = SigningKey::generate(&rng).unwrap();
        let good = Credential {
            id: Id([1; 16]),
            org: Id([2; 16]),
            holder: Holder {
                kind: HolderKind::Guest,
                id: Id([3; 16]),
            },
            device_key: key.public_key(),
            scope: vec![ScopeEntry::Lock(Id([4; 16]))],
            not_before: 10,
            not_after: 20,
            max_uses: Some(1),
            schedule: None,
        };
        assert!(good.sign(&key, &rng).is_ok());
        let mut c = good.clone();
        c.scope = vec![ScopeEntry::Lock(Id([4; 16])); 33];
        assert!(c.sign(&key, &rng).is_err());
        let mut c = good.clone();
        c.not_after = 10;
        assert!(c.sign(&key, &rng).is_err());
        let mut c = good.clone();
        c.schedule = Some(Schedule {
            time_zone: "Mars/Olympus".into(),
            windows: vec![Window {
                weekdays: 1,
                start_minute: 0,
                end_minute: 1,
            }],
        });
        assert!(c.sign(&key, &rng).is_err());
        let mut c = good;
        c.max_uses = Some(0);
        assert!(c.sign(&key, &rng).is_err());
    }
}
