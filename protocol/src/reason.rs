//! The one vocabulary of denial and failure reasons shared by the door's event log, the
//! server's API error codes and the app's user-facing messages.
//!
//! Each reason has a stable wire number (u16, sent in RESULT and ERROR frames), a stable
//! machine code (snake_case, used in JSON and logs) and a short human message. Numbers and
//! codes never change meaning; new reasons get new numbers.

macro_rules! reasons {
    ($( $(#[$doc:meta])* $name:ident = $num:literal, $code:literal, $msg:literal; )*) => {
        /// Why an unlock was refused or a frame was rejected.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Reason {
            $( $(#[$doc])* $name, )*
        }

        impl Reason {
            /// Every reason, in wire-number order.
            pub const ALL: &'static [Reason] = &[$(Reason::$name,)*];

            /// Stable number carried in RESULT and ERROR frames.
            pub const fn wire(self) -> u16 {
                match self { $(Reason::$name => $num,)* }
            }

            /// Stable machine code for JSON APIs and logs.
            pub const fn code(self) -> &'static str {
                match self { $(Reason::$name => $code,)* }
            }

            /// Short explanation fit to show a person.
            pub const fn message(self) -> &'static str {
                match self { $(Reason::$name => $msg,)* }
            }

            pub fn from_wire(n: u16) -> Option<Reason> {
                match n { $($num => Some(Reason::$name),)* _ => None }
            }

            pub fn from_code(code: &str) -> Option<Reason> {
                match code { $($code => Some(Reason::$name),)* _ => None }
            }
        }
    };
}

reasons! {
    // Framing and transport.
    /// A frame could not be decoded (truncated, bad field, trailing bytes).
    MalformedFrame = 1, "malformed_frame", "the message was malformed";
    /// A frame or field exceeded its hard size limit.
    FrameTooLarge = 2, "frame_too_large", "the message was too large";
    /// The peer speaks a protocol version this side does not accept.
    UnsupportedVersion = 3, "unsupported_version", "unsupported protocol version";
    /// A frame arrived in a state that does not expect it.
    UnexpectedMessage = 4, "unexpected_message", "unexpected message";
    /// An AEAD frame failed authentication (tampered, wrong key or transcript).
    DecryptFailed = 5, "decrypt_failed", "the message failed integrity checks";
    /// An AEAD frame reused or skipped a counter.
    ReplayedFrame = 6, "replayed_frame", "replayed message";
    /// The door nonce is older than its validity window.
    StaleNonce = 7, "stale_nonce", "the door challenge expired; try again";
    /// Unknown action byte.
    UnsupportedAction = 8, "unsupported_action", "unsupported action";

    // Door authenticity (checked by the phone).
    /// The controller certificate is not signed by a trusted organization key.
    UntrustedDoor = 20, "untrusted_door", "this door could not be verified";
    /// The door's signature over the transcript does not verify.
    BadDoorSignature = 21, "bad_door_signature", "this door could not be verified";
    /// The controller certificate does not cover this lock or is outside its validity.
    DoorNotAuthorized = 22, "door_not_authorized", "this door could not be verified";

    // Command authenticity (checked by the door).
    /// A cloud command is not signed by a trusted organization key for this controller.
    BadCommandSignature = 23, "bad_command_signature", "the door refused a command it could not verify";

    // Credential checks (door and server).
    /// The credential is signed with a key id the verifier does not trust (unknown or rotated out).
    UnknownOrgKey = 40, "unknown_org_key", "your access key is out of date; refresh it";
    /// The credential's organization signature does not verify.
    BadCredentialSignature = 41, "bad_credential_signature", "your access key is invalid";
    /// The device signature over the transcript does not verify.
    BadDeviceSignature = 42, "bad_device_signature", "this phone could not be verified";
    /// The credential belongs to another organization.
    WrongOrganization = 43, "wrong_organization", "you have no access to this door";
    /// The credential does not cover this lock.
    WrongLock = 44, "wrong_lock", "you have no access to this door";
    /// The credential is expired.
    Expired = 45, "access_expired", "access expired";
    /// The credential is not yet valid.
    NotYetValid = 46, "access_not_yet_valid", "access not yet valid";
    /// Outside the credential's weekday/time-of-day windows.
    OutsideSchedule = 47, "outside_schedule", "outside your access hours";
    /// The credential (or its device, user, role or invite) is revoked.
    Revoked = 48, "access_revoked", "access revoked";
    /// The credential's unlock limit is used up.
    UseLimitExceeded = 49, "use_limit_exceeded", "no unlocks left on this access";
    /// The caller has no grant for this lock.
    NoAccess = 50, "no_access", "you have no access to this door";

    // Door state and environment.
    /// The door has no trusted time, so it cannot check validity windows.
    ClockUntrusted = 60, "clock_untrusted", "the door's clock is not trusted; try the app";
    /// The lock or its place is in lockdown.
    Lockdown = 61, "lockdown", "this door is in lockdown";
    /// Walk-up request from too far away, or the proximity proof did not verify.
    TooFar = 62, "too_far", "not close enough to the door";
    /// Walk-up is not enabled for this lock.
    WalkUpDisabled = 63, "walk_up_disabled", "hands-free unlock is off for this door";
    /// The controller is not connected (cloud unlock): the command was certainly not
    /// delivered, so another route may be tried.
    DoorOffline = 64, "door_offline", "the door is offline";
    /// The door's configuration lacks what the check needs (no org keys, lock not served).
    NotConfigured = 65, "not_configured", "the door is not set up";
    /// Outside the geofence (cloud unlock).
    OutsideGeofence = 66, "outside_geofence", "you are too far from this place";
    /// The phone had no network and no usable BLE route.
    NoNetwork = 67, "no_network", "no network connection";
    /// Requests arrive faster than allowed.
    RateLimited = 68, "rate_limited", "too many attempts; wait a moment";
    /// The phone heard the door but the Bluetooth exchange failed (and no cloud route applied).
    DoorUnreachable = 69, "door_unreachable", "could not reach the door over Bluetooth; move closer and try again";
    /// A cloud command reached the door, or may have, and no answer came in time: the door
    /// may have opened. The caller must not retry on another route (Bluetooth, or a new
    /// command id), which could open the door a second time; a retry of the same request
    /// (the same `Idempotency-Key`, so the same command id) is safe, the door runs a command
    /// id at most once.
    Unconfirmed = 70, "unconfirmed", "the door did not confirm; it may have opened";
}

// Serialized as the machine code so JSON APIs and logs share one spelling.
impl serde::Serialize for Reason {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl<'de> serde::Deserialize<'de> for Reason {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let code = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Reason::from_code(&code)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown reason code {code:?}")))
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn numbers_and_codes_are_unique_and_round_trip() {
        let mut nums = HashSet::new();
        let mut codes = HashSet::new();
        for r in Reason::ALL {
            assert!(nums.insert(r.wire()), "duplicate wire number {}", r.wire());
            assert!(codes.insert(r.code()), "duplicate code {}", r.code());
            assert_eq!(Reason::from_wire(r.wire()), Some(*r));
            assert_eq!(Reason::from_code(r.code()), Some(*r));
            let json = serde_json::to_string(r).unwrap();
            assert_eq!(
                json,
                format!("\"{}\"", r.code()),
                "serde name must equal the code"
            );
        }
        assert_eq!(Reason::from_wire(0), None);
    }
}
