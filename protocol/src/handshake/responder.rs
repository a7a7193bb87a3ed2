//! Door side of the handshake and the offline access decision.

use super::HandshakeError;
use super::frames::{
    self, Action, AuthBody, Challenge, Hello, PROTOCOL_VERSION, ResultBody, Sealed,
};
use super::keyschedule::{self, Direction, DirectionalKey};
use crate::credential::{Credential, Holder, SignedCredential};
use crate::id::Id;
use crate::keys::{CryptoError, PublicKey, Signature, SigningKey};
use crate::reason::Reason;
use crate::revocation::RevocationList;
use crate::time::TimeBounds;
use crate::trust::TrustedKeys;
use ring::agreement::{self, EphemeralPrivateKey, UnparsedPublicKey};
use ring::rand::SecureRandom;
use std::collections::{BTreeMap, VecDeque};

/// Default lifetime of a door nonce: AUTH must arrive within this many milliseconds.
pub const DEFAULT_NONCE_VALIDITY_MS: u64 = 10_000;
/// Farthest a walk-up phone may be, metres, when the door measures it by secure ranging (UWB,
/// Bluetooth Channel Sounding; [`AuthInput::range_m`]). Looser than the phone's own bar (the
/// core's `RangingParams::unlock_m`, 1.2 m), so the door does not refuse what the phone's
/// reading decided; a relayed phone cannot pass, since a relay only adds time of flight.
pub const WALK_UP_MAX_RANGE_M: f64 = 1.5;
/// How many executed command ids the door remembers for at-most-once actuation.
pub const COMMAND_MEMORY: usize = 1024;

/// The door's key and the organization-signed certificate for it.
#[derive(Debug)]
pub struct DoorIdentity {
    pub key: SigningKey,
    pub certificate: Vec<u8>,
}

/// How the door treats one lock it drives.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LockPolicy {
    pub id: Id,
    pub place: Option<Id>,
    /// Walk-up (hands-free) requests allowed for this lock.
    pub walk_up: bool,
    /// Weakest RSSI (dBm, as the door hears the phone) accepted for walk-up.
    pub walk_up_min_rssi: i16,
    pub lockdown: bool,
    pub relay_ms: u32,
}

/// Everything the door needs to decide offline; cached by the controller.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DoorConfig {
    pub org: Id,
    pub trusted: TrustedKeys,
    pub revocations: RevocationList,
    pub locks: Vec<LockPolicy>,
    pub nonce_validity_ms: u64,
}

impl DoorConfig {
    pub fn new(org: Id, trusted: TrustedKeys, locks: Vec<LockPolicy>) -> Self {
        let revocations = RevocationList {
            org,
            ..Default::default()
        };
        Self {
            org,
            trusted,
            revocations,
            locks,
            nonce_validity_ms: DEFAULT_NONCE_VALIDITY_MS,
        }
    }

    pub fn lock(&self, id: Id) -> Option<&LockPolicy> {
        self.locks.iter().find(|l| l.id == id)
    }
}

/// How long after a credential's end (unix seconds) its use count is still kept. Trusted time
/// is only as good as the last time statement: a re-anchor to a corrected server clock can move
/// the bounds back, and a count dropped on bounds that ran late would hand a credential that is
/// valid again fresh uses. A day covers any correction a sane server makes.
pub const USE_COUNT_GRACE_SECS: u64 = 86_400;

/// Durable door state for at-most-once actuation and use limits. Serializable so the
/// controller persists it with its event log. Both parts stay bounded: `commands` by
/// [`COMMAND_MEMORY`], `uses` by the use-limited credentials still (or lately) valid, once
/// [`DoorMemory::prune_uses`] runs with trusted time.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DoorMemory {
    /// Granted (credential, command) pairs with their event sequence, oldest first.
    pub commands: VecDeque<(Id, Id, u64)>,
    /// Granted unlocks of use-limited credentials; credentials without a limit have no entry.
    pub uses: BTreeMap<Id, UseCount>,
}

/// Unlocks granted to one use-limited credential at this door.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(from = "UseCountRecord")]
pub struct UseCount {
    pub count: u32,
    /// The credential's `not_after` (unix seconds), after which the count can be forgotten.
    /// `None` while unknown (a state file from before ends were kept, or a grant replayed from
    /// the event log): such an entry is kept, and settled by the credential's next grant.
    pub not_after: Option<u64>,
}

/// What a `uses` value may look like on disk.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum UseCountRecord {
    /// State files written before ends were kept map a credential to a bare count.
    Bare(u32),
    Full {
        count: u32,
        #[serde(default)]
        not_after: Option<u64>,
    },
}

impl From<UseCountRecord> for UseCount {
    fn from(r: UseCountRecord) -> Self {
        match r {
            UseCountRecord::Bare(count) => Self {
                count,
                not_after: None,
            },
            UseCountRecord::Full { count, not_after } => Self { count, not_after },
        }
    }
}

/// What a grant adds to the door's use counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UseCounting {
    /// The credential has no use limit: nothing is kept.
    Unlimited,
    /// It has one, which matters until `not_after` (unix seconds).
    Limited { not_after: u64 },
    /// Its terms are not at hand (a grant replayed from the event log, which names only the
    /// credential): counted as if limited, so a crash never gives a use back.
    Unknown,
}

impl UseCounting {
    pub fn of(credential: &Credential) -> Self {
        match credential.max_uses {
            Some(_) => Self::Limited {
                not_after: credential.not_after,
            },
            None => Self::Unlimited,
        }
    }
}

impl DoorMemory {
    /// The event sequence of an earlier grant of this (credential, command), if any.
    pub fn executed(&self, credential: Id, command: Id) -> Option<u64> {
        self.commands
            .iter()
            .find(|(c, k, _)| *c == credential && *k == command)
            .map(|e| e.2)
    }

    /// Unlocks counted so far against `credential`'s use limit.
    pub fn uses_of(&self, credential: Id) -> u32 {
        self.uses.get(&credential).map_or(0, |u| u.count)
    }

    /// Records an actuated decision (nothing otherwise); call after the event is logged and
    /// before the relay is driven.
    pub fn record_decision(&mut self, decision: &Decision, event_seq: u64) {
        if let (true, Some(credential)) = (decision.actuate(), decision.credential_id) {
            self.record(
                credential,
                decision.command_id,
                event_seq,
                decision.use_counting,
            );
        }
    }

    /// Records a grant known only by its ids, such as a logged event replayed after a crash:
    /// the use is counted whatever the credential's limit ([`UseCounting::Unknown`]). Live
    /// grants go through [`DoorMemory::record_decision`], which keeps no count for unlimited
    /// credentials.
    pub fn record_grant(&mut self, credential: Id, command: Id, event_seq: u64) {
        self.record(credential, command, event_seq, UseCounting::Unknown);
    }

    fn record(&mut self, credential: Id, command: Id, event_seq: u64, counting: UseCounting) {
        if self.commands.len() == COMMAND_MEMORY {
            self.commands.pop_front();
        }
        self.commands.push_back((credential, command, event_seq));
        let end = match counting {
            // A credential id names one signed credential (the server draws a fresh id per
            // issuance), so one seen without a limit never had one: an entry for it came from
            // a replay or an old state file and counts nothing.
            UseCounting::Unlimited => {
                self.uses.remove(&credential);
                return;
            }
            UseCounting::Limited { not_after } => Some(not_after),
            UseCounting::Unknown => None,
        };
        let entry = self.uses.entry(credential).or_insert(UseCount {
            count: 0,
            not_after: None,
        });
        entry.count = entry.count.saturating_add(1);
        // Fills an unknown end; should two ever differ, the later one wins (keeping is safe).
        entry.not_after = entry.not_after.max(end);
    }

    /// Forgets the counts of credentials that certainly ended: `time.earliest` (trusted) is more
    /// than [`USE_COUNT_GRACE_SECS`] past their `not_after`, so the validity check refuses them
    /// before their count matters. Entries whose end is unknown stay. Returns how many went.
    pub fn prune_uses(&mut self, time: TimeBounds) -> usize {
        let before = self.uses.len();
        self.uses.retain(|_, u| {
            u.not_after
                .is_none_or(|end| time.earliest <= end.saturating_add(USE_COUNT_GRACE_SECS))
        });
        before - self.uses.len()
    }
}

/// Per-attempt facts from the door's environment.
#[derive(Debug, Clone, Copy)]
pub struct AuthInput<'a> {
    pub config: &'a DoorConfig,
    /// From the trusted clock; `None` when the door has no trusted time.
    pub time: Option<TimeBounds>,
    /// Door's monotonic clock, milliseconds (nonce age).
    pub mono_ms: u64,
    /// RSSI of this connection as the door measures it.
    pub rssi: Option<i16>,
    /// Distance to the phone by the door's own secure ranging during this connection,
    /// metres; `None` when the door cannot range. Where present it decides walk-up instead of
    /// `rssi` ([`WALK_UP_MAX_RANGE_M`]).
    pub range_m: Option<f64>,
}

/// The door's verdict on an authenticated AUTH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub lock: Id,
    pub action: Action,
    pub command_id: Id,
    /// Present once the credential decoded, even when denied (for the event log).
    pub credential_id: Option<Id>,
    pub holder: Option<Holder>,
    pub outcome: Result<u32, Reason>,
    /// The command was already executed: answer granted, do not actuate.
    pub duplicate_of: Option<u64>,
    /// What a grant adds to the use counts; `Unknown` until the credential verified.
    pub use_counting: UseCounting,
}

impl Decision {
    /// Whether the relay must be driven now.
    pub fn actuate(&self) -> bool {
        self.outcome.is_ok() && self.duplicate_of.is_none()
    }
}

// One state per connection, never stored in bulk: the AES key schedules inline are fine.
#[allow(clippy::large_enum_variant)]
enum State {
    AwaitHello,
    AwaitAuth {
        th2: [u8; 32],
        rx: DirectionalKey,
        tx: DirectionalKey,
        lock: Id,
        action: Action,
        issued_ms: u64,
    },
    AwaitVerdict {
        tx: DirectionalKey,
        command_id: Id,
    },
    Done,
}

/// Door-side state machine, one per BLE connection.
pub struct Responder {
    state: State,
}

impl std::fmt::Debug for Responder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self.state {
            State::AwaitHello => "AwaitHello",
            State::AwaitAuth { .. } => "AwaitAuth",
            State::AwaitVerdict { .. } => "AwaitVerdict",
            State::Done => "Done",
        };
        f.debug_struct("Responder").field("state", &s).finish()
    }
}

impl Default for Responder {
    fn default() -> Self {
        Self::new()
    }
}

impl Responder {
    pub fn new() -> Self {
        Self {
            state: State::AwaitHello,
        }
    }

    /// Answers HELLO with a signed CHALLENGE. Errors before a key exists are sent back as a
    /// plaintext ERROR frame (see [`frames::encode_error`]).
    pub fn on_hello(
        &mut self,
        frame: &[u8],
        identity: &DoorIdentity,
        config: &DoorConfig,
        rng: &dyn SecureRandom,
        mono_ms: u64,
    ) -> Result<Vec<u8>, HandshakeError> {
        if !matches!(self.state, State::AwaitHello) {
            self.state = State::Done;
            return Err(Reason::UnexpectedMessage.into());
        }
        self.state = State::Done;
        let hello = Hello::decode(frame)?;
        if hello.version != PROTOCOL_VERSION {
            return Err(Reason::UnsupportedVersion.into());
        }
        let action = Action::from_byte(hello.action).ok_or(Reason::UnsupportedAction)?;
        if config.lock(hello.lock).is_none() {
            return Err(Reason::WrongLock.into());
        }
        let ephemeral = EphemeralPrivateKey::generate(&agreement::ECDH_P256, rng)
            .map_err(|_| CryptoError::Rng)?;
        let door_ephemeral = PublicKey::from_slice(
            ephemeral
                .compute_public_key()
                .map_err(|_| CryptoError::Agreement)?
                .as_ref(),
        )?
        .0;
        let mut nonce = [0u8; frames::NONCE_LEN];
        rng.fill(&mut nonce).map_err(|_| CryptoError::Rng)?;
        let mut challenge = Challenge {
            version: PROTOCOL_VERSION,
            door_ephemeral,
            nonce,
            certificate: identity.certificate.clone(),
            signature: [0; 64],
        };
        let th1 = keyschedule::transcript_hash(&[frame, &challenge.encode_unsigned()]);
        challenge.signature = identity
            .key
            .sign(rng, &keyschedule::door_signed_message(&th1))?
            .0;
        let out = challenge.encode();
        let th2 = keyschedule::transcript_hash(&[frame, &out]);
        let peer = UnparsedPublicKey::new(&agreement::ECDH_P256, hello.phone_ephemeral);
        let keys = agreement::agree_ephemeral(ephemeral, &peer, |secret| {
            keyschedule::derive_keys(secret, &th2)
        })
        .map_err(|_| HandshakeError::Rejected(Reason::MalformedFrame))??;
        self.state = State::AwaitAuth {
            th2,
            rx: DirectionalKey::new(&keys.phone_to_door, Direction::PhoneToDoor),
            tx: DirectionalKey::new(&keys.door_to_phone, Direction::DoorToPhone),
            lock: hello.lock,
            action,
            issued_ms: mono_ms,
        };
        Ok(out)
    }

    /// Authenticates AUTH and decides offline. `Err` means the frame could not be
    /// authenticated (answer with an ERROR frame or drop the link); `Ok` carries a verdict that
    /// the door logs and then seals with [`Responder::result_frame`].
    pub fn on_auth(
        &mut self,
        frame: &[u8],
        input: &AuthInput<'_>,
        memory: &DoorMemory,
    ) -> Result<Decision, HandshakeError> {
        let State::AwaitAuth {
            th2,
            mut rx,
            tx,
            lock,
            action,
            issued_ms,
        } = std::mem::replace(&mut self.state, State::Done)
        else {
            return Err(Reason::UnexpectedMessage.into());
        };
        let sealed = Sealed::decode(frame, frames::AUTH)?;
        let plain = rx.open(frames::AUTH, sealed.counter, &sealed.ciphertext)?;
        let body = AuthBody::decode(&plain)?;
        self.state = State::AwaitVerdict {
            tx,
            command_id: body.command_id,
        };

        let mut decision = Decision {
            lock,
            action,
            command_id: body.command_id,
            credential_id: None,
            holder: None,
            outcome: Err(Reason::NoAccess),
            duplicate_of: None,
            use_counting: UseCounting::Unknown,
        };
        decision.outcome = decide(
            &body,
            &th2,
            lock,
            action,
            issued_ms,
            input,
            memory,
            &mut decision,
        );
        Ok(decision)
    }

    /// Seals the verdict into RESULT with the door's event sequence number.
    pub fn result_frame(
        &mut self,
        decision: &Decision,
        event_seq: u64,
    ) -> Result<Vec<u8>, HandshakeError> {
        let State::AwaitVerdict { mut tx, command_id } =
            std::mem::replace(&mut self.state, State::Done)
        else {
            return Err(Reason::UnexpectedMessage.into());
        };
        let body = ResultBody {
            command_id,
            granted: decision.outcome.is_ok(),
            reason: decision.outcome.err(),
            event_seq: decision.duplicate_of.unwrap_or(event_seq),
            relay_ms: *decision.outcome.as_ref().unwrap_or(&0),
            duplicate: decision.duplicate_of.is_some(),
        };
        let (counter, ciphertext) = tx.seal(frames::RESULT, &body.encode())?;
        Ok(Sealed {
            frame_type: frames::RESULT,
            counter,
            ciphertext,
        }
        .encode())
    }
}

/// The offline access checks, in the order that reveals least to an unauthenticated phone.
#[allow(clippy::too_many_arguments)]
fn decide(
    body: &AuthBody,
    th2: &[u8; 32],
    lock: Id,
    action: Action,
    issued_ms: u64,
    input: &AuthInput<'_>,
    memory: &DoorMemory,
    decision: &mut Decision,
) -> Result<u32, Reason> {
    let config = input.config;
    if input.mono_ms.saturating_sub(issued_ms) > config.nonce_validity_ms {
        return Err(Reason::StaleNonce);
    }
    let cred = SignedCredential::verify(&body.credential, &config.trusted)?.credential;
    decision.credential_id = Some(cred.id);
    decision.holder = Some(cred.holder);
    decision.use_counting = UseCounting::of(&cred);
    let signed = keyschedule::device_signed_message(th2, &body.command_id);
    if !cred
        .device_key
        .verify(&signed, &Signature(body.device_signature))
    {
        return Err(Reason::BadDeviceSignature);
    }
    if cred.org != config.org {
        return Err(Reason::WrongOrganization);
    }
    let policy = config.lock(lock).ok_or(Reason::WrongLock)?;
    if let Some(seq) = memory.executed(cred.id, body.command_id) {
        // A retry after a lost RESULT: report the earlier grant, never actuate twice.
        decision.duplicate_of = Some(seq);
        return Ok(policy.relay_ms);
    }
    if policy.lockdown {
        return Err(Reason::Lockdown);
    }
    if action == Action::WalkUp {
        if !policy.walk_up {
            return Err(Reason::WalkUpDisabled);
        }
        let near = match input.range_m {
            // A measured distance beats a signal level that the phone's carry shifts by
            // several dB (and NaN is not near).
            Some(range) => range <= WALK_UP_MAX_RANGE_M,
            None => input
                .rssi
                .is_some_and(|rssi| rssi >= policy.walk_up_min_rssi),
        };
        if !near {
            return Err(Reason::TooFar);
        }
    }
    if config.revocations.revokes(&cred) {
        return Err(Reason::Revoked);
    }
    let time = input.time.ok_or(Reason::ClockUntrusted)?;
    cred.check_access_within(time.earliest, time.latest, lock, policy.place)?;
    if let Some(max) = cred.max_uses
        && memory.uses_of(cred.id) >= max
    {
        return Err(Reason::UseLimitExceeded);
    }
    Ok(policy.relay_ms)
}
