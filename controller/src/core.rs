//! The controller's state and every decision that changes it. Transports (BLE, the server
//! channel) call in here; nothing in this file does network I/O.
//!
//! Ordering rules that make the log and actuation safe across crashes:
//! 1. an attempt's event is appended and fsynced first;
//! 2. then the door state (`state.json`) records the grant or command result;
//! 3. then the relay is driven and the answer (BLE RESULT, `command_result`) is sent.
//!
//! A crash between 1 and 2 is repaired on start by replaying the log into the state, so a
//! retried command id never opens twice and use counts never go back (a replayed grant counts
//! against its credential's limit, which the event does not carry, as if it had one).

use crate::events::{EventLog, EventLogError, Recovery};
use crate::identity::Identity;
use crate::store::{CachedConfig, CachedRevocations, DoorState, Store};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use keyway_channel::{
    CloudCommand, CommandResult, ControllerConfig, DoorEvent, DoorEventKind, LockConfig, Method,
};
use keyway_protocol::advert::{self, Advertisement, FLAG_LOCKDOWN, FLAG_WALK_UP};
use keyway_protocol::certificate::ControllerCertificate;
use keyway_protocol::command::CommandOrder;
use keyway_protocol::door_trust::{ConfigSeal, extend_trust};
use keyway_protocol::handshake::{
    Action, AuthInput, Decision, DoorConfig, DoorIdentity, LockPolicy, Responder,
};
use keyway_protocol::revocation::RevocationList;
use keyway_protocol::time::{TimeStatement, TrustedClock};
use keyway_protocol::{Id, Reason, SigningKey};
use ring::rand::{SecureRandom, SystemRandom};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{Notify, watch};

/// Tunables of the simulated door hardware and of command handling.
#[derive(Debug, Clone)]
pub struct CoreOptions {
    /// A door open longer than this after an unlock is reported held open.
    pub held_open_ms: u64,
    /// Cloud commands older than this (server clock vs trusted time) are refused.
    pub command_max_age_ms: u64,
    /// After each unlock, simulate a person: door opens after 500 ms, closes after 3 s.
    pub simulate_entry: bool,
}

impl Default for CoreOptions {
    fn default() -> Self {
        Self {
            held_open_ms: 30_000,
            command_max_age_ms: 30_000,
            simulate_entry: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error(transparent)]
    Events(#[from] EventLogError),
    #[error("data directory: {0}")]
    Io(#[from] std::io::Error),
    #[error("the stored controller key is invalid")]
    BadKey,
}

/// How the controller sees its server link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Connection {
    Connecting,
    Online,
    Offline,
}

/// The simulated relay and door sensor of one lock.
#[derive(Debug, Default, Clone)]
struct DoorRuntime {
    relay_until: Option<Instant>,
    actuations: u64,
    open_since: Option<Instant>,
    held_reported: bool,
}

struct Inner {
    config: Option<CachedConfig>,
    door_config: Option<DoorConfig>,
    door_identity: Option<Arc<DoorIdentity>>,
    secrets: HashMap<Id, [u8; 32]>,
    revocations: Option<CachedRevocations>,
    clock: Option<TrustedClock>,
    state: DoorState,
    log: EventLog,
    doors: BTreeMap<Id, DoorRuntime>,
    connection: Connection,
    time_nonce: Option<[u8; 16]>,
    last_error: Option<String>,
}

/// Shared controller core. Cheap to clone through `Arc`.
pub struct Core {
    identity: Identity,
    pkcs8: Vec<u8>,
    store: Store,
    started: Instant,
    rng: SystemRandom,
    options: CoreOptions,
    inner: Mutex<Inner>,
    /// Signalled when events are appended (the uploader wakes).
    pub(crate) events_changed: Notify,
    /// Bumped whenever the served locks or their adverts may have changed.
    pub(crate) config_changed: watch::Sender<u64>,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("controller", &self.identity.controller_id)
            .finish()
    }
}

/// How far the host's clock may be behind the last status written before the cached trusted
/// time is dropped at start (status is written every second; this allows for that).
const CLOCK_STEP_TOLERANCE_MS: u64 = 2_000;

/// The emulator's stand-in for a door RTC, unix milliseconds: the host's wall clock when the
/// process started, advanced by the monotonic clock. A door's RTC is not set from the
/// network, and trusted time is its anchor plus this clock's progress, so stepping the
/// host's clock (a spoofed NTP answer, `date -s`) must not move the door's time while it
/// runs. Across restarts the wall clock is read again; `Core::open` distrusts it when it is
/// behind the last status this data directory recorded.
pub fn rtc_ms() -> u64 {
    static START: std::sync::OnceLock<(Instant, u64)> = std::sync::OnceLock::new();
    let (at, wall_ms) = START.get_or_init(|| {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        (Instant::now(), wall)
    });
    wall_ms + at.elapsed().as_millis() as u64
}

fn policy(l: &LockConfig) -> LockPolicy {
    LockPolicy {
        id: l.id,
        place: l.place,
        walk_up: l.walk_up,
        walk_up_min_rssi: l.walk_up_min_rssi,
        lockdown: l.lockdown,
        relay_ms: l.relay_ms,
    }
}

/// Caches the server re-sends are dropped, not fatal, when unreadable.
fn cache_or_warn<T>(r: std::io::Result<Option<T>>, what: &str) -> Option<T> {
    r.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "cached {what} unreadable; waiting for the server");
        None
    })
}

/// The log entry for a cloud command's outcome.
fn cloud_attempt(
    inner: &Inner,
    cmd: &CloudCommand,
    outcome: Result<(), Reason>,
    holder: Option<keyway_protocol::credential::Holder>,
) -> DoorEvent {
    DoorEvent {
        seq: 0,
        at_ms: event_time(inner),
        kind: DoorEventKind::UnlockAttempt,
        lock: cmd.lock,
        method: Some(Method::Cloud),
        granted: Some(outcome.is_ok()),
        reason: outcome.err(),
        credential: None,
        holder,
        command_id: Some(cmd.command_id),
    }
}

/// Event timestamps: trusted time when the door has it, else its own clock.
fn event_time(inner: &Inner) -> u64 {
    inner
        .clock
        .and_then(|c| c.bounds(rtc_ms()).ok())
        .map(|b| (b.earliest + b.latest) * 500)
        .unwrap_or_else(rtc_ms)
}

/// How near the door measured the phone during one connection.
#[derive(Debug, Clone, Copy, Default)]
pub struct Nearness {
    pub rssi: Option<i16>,
    pub range_m: Option<f64>,
}

/// The outcome of one BLE AUTH: what to notify and what was logged.
#[derive(Debug)]
pub struct BleVerdict {
    pub result_frame: Vec<u8>,
    pub event: DoorEvent,
}

impl Core {
    /// Loads everything from the data directory, repairing the event log and replaying any
    /// events whose effects the door state missed.
    pub fn open(
        identity: Identity,
        pkcs8: Vec<u8>,
        store: Store,
        options: CoreOptions,
    ) -> Result<(Arc<Self>, Recovery), CoreError> {
        let (log, recovery) = EventLog::open(store.dir())?;
        let state = store.load_state()?.unwrap_or_default();
        let (config_changed, _) = watch::channel(0);
        let core = Arc::new(Self {
            identity,
            pkcs8,
            store,
            started: Instant::now(),
            rng: SystemRandom::new(),
            options,
            inner: Mutex::new(Inner {
                config: None,
                door_config: None,
                door_identity: None,
                secrets: HashMap::new(),
                revocations: None,
                clock: None,
                state,
                log,
                doors: BTreeMap::new(),
                connection: Connection::Offline,
                time_nonce: None,
                last_error: None,
            }),
            events_changed: Notify::new(),
            config_changed,
        });
        {
            let mut inner = core.inner.lock().unwrap();
            core.replay_log(&mut inner)?;
            if let Some(cached) = cache_or_warn(core.store.load_config(), "configuration") {
                inner.config = Some(cached);
                core.rebuild(&mut inner);
            }
            inner.clock = cache_or_warn(core.store.load_clock(), "trusted time");
            // The host's clock went back since the last run wrote its status: elapsed time
            // measured against the old anchor would be short by the step (expired
            // credentials valid again), so wait for a fresh time statement instead.
            let last_seen = cache_or_warn(core.store.load_status(), "last status")
                .map(|s| s.updated_at_ms)
                .unwrap_or(0);
            if inner.clock.is_some() && last_seen > rtc_ms() + CLOCK_STEP_TOLERANCE_MS {
                tracing::warn!(
                    behind_ms = last_seen - rtc_ms(),
                    "the host clock is behind the last status written; trusted time dropped until the server sends a new statement"
                );
                inner.clock = None;
                // Gone from disk too: this run's own status will not be ahead of the host's
                // clock, so a second restart would otherwise take the old anchor up again.
                if let Err(e) = core.store.clear_clock() {
                    tracing::error!(error = %e, "cannot remove the distrusted clock.json");
                }
            }
            if let Some(rev) = cache_or_warn(core.store.load_revocations(), "revocation list") {
                // Re-verify: the cache is local, but a list must always chain to an org key.
                match core.verify_revocations(&inner, &rev.list) {
                    Ok(list) => {
                        inner.revocations = Some(rev);
                        if let Some(dc) = inner.door_config.as_mut() {
                            dc.revocations = list;
                        }
                    }
                    // Its serial stays the floor: an older list, replayed, must still not
                    // replace it.
                    Err(r) => {
                        tracing::warn!(reason = %r, serial = rev.serial,
                            "cached revocation list ignored; only a higher serial is taken");
                        inner.revocations = Some(CachedRevocations {
                            list: String::new(),
                            serial: rev.serial,
                        });
                    }
                }
            }
        }
        Ok((core, recovery))
    }

    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    pub fn options(&self) -> &CoreOptions {
        &self.options
    }

    pub(crate) fn signing_key(&self) -> Result<SigningKey, CoreError> {
        SigningKey::from_pkcs8(&self.pkcs8, &self.rng).map_err(|_| CoreError::BadKey)
    }

    pub(crate) fn rng(&self) -> &SystemRandom {
        &self.rng
    }

    /// Door monotonic clock, ms since this process started (nonce ages).
    pub fn mono_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn replay_log(&self, inner: &mut Inner) -> Result<(), CoreError> {
        let applied = inner.state.applied_seq;
        let mut changed = false;
        let events: Vec<DoorEvent> = inner
            .log
            .pending()
            .filter(|e| e.seq > applied)
            .cloned()
            .collect();
        for e in events {
            changed = true;
            inner.state.applied_seq = e.seq;
            if e.kind != DoorEventKind::UnlockAttempt {
                continue;
            }
            match (e.method, e.command_id, e.credential, e.granted) {
                // A refused order is not this id's answer (`execute_command`), so it is not
                // remembered here either. `NotConfigured` may also be an unknown lock, which
                // was remembered live; forgetting that refusal opens nothing.
                (Some(Method::Cloud), Some(cmd), _, Some(granted))
                    if inner.state.command(cmd).is_none()
                        && !matches!(
                            e.reason,
                            Some(
                                Reason::BadCommandSignature
                                    | Reason::UnknownOrgKey
                                    | Reason::NotConfigured
                            )
                        ) =>
                {
                    inner.state.remember_command(CommandResult {
                        command_id: cmd,
                        granted,
                        reason: e.reason,
                        event_seq: e.seq,
                        duplicate: false,
                    });
                }
                (Some(Method::Cloud), ..) => {}
                (_, Some(cmd), Some(cred), Some(true)) => {
                    let memory = inner.state.memories.entry(e.lock).or_default();
                    if memory.executed(cred, cmd).is_none() {
                        // The event names the credential but not its limit or end: count the
                        // use whatever they are (`UseCounting::Unknown`), so a crash never gives
                        // a use back; the credential's next grant settles the entry.
                        memory.record_grant(cred, cmd, e.seq);
                    }
                }
                _ => {}
            }
        }
        if changed {
            tracing::info!(
                applied_seq = inner.state.applied_seq,
                "door state caught up from the event log"
            );
            self.store.save_state(&inner.state)?;
        }
        Ok(())
    }

    /// Derives the door's working configuration from the cached channel config.
    fn rebuild(&self, inner: &mut Inner) {
        let Some(cached) = inner.config.as_ref() else {
            return;
        };
        let cfg = &cached.config;
        let mut door_config = DoorConfig::new(
            cfg.org,
            cfg.trusted.clone(),
            cfg.locks.iter().map(policy).collect(),
        );
        if let Some(old) = inner.door_config.as_ref() {
            door_config.revocations = old.revocations.clone();
        }
        inner.secrets = cfg
            .locks
            .iter()
            .filter_map(|l| {
                let mut s = [0u8; 32];
                hex::decode_to_slice(&l.proximity_secret, &mut s)
                    .ok()
                    .map(|_| (l.id, s))
            })
            .collect();
        inner.door_identity = match (B64.decode(&cfg.certificate), self.signing_key()) {
            (Ok(certificate), Ok(key)) => {
                match ControllerCertificate::decode(&certificate) {
                    Ok((cert, _)) if cert.public_key != key.public_key() => tracing::warn!(
                        "the controller certificate names another key; phones will refuse this door"
                    ),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "controller certificate does not decode"),
                }
                Some(Arc::new(DoorIdentity { key, certificate }))
            }
            _ => {
                tracing::warn!("configuration without a usable certificate; BLE disabled");
                None
            }
        };
        for l in &cfg.locks {
            inner.doors.entry(l.id).or_default();
        }
        inner.door_config = Some(door_config);
        self.config_changed.send_modify(|v| *v += 1);
    }

    /// Applies a `config` message. Older versions are ignored; returns whether it changed.
    pub fn apply_config(&self, config: ControllerConfig) -> Result<bool, String> {
        if config.controller != self.identity.controller_id || config.org != self.identity.org_id {
            return Err("configuration for another controller or organization".into());
        }
        let mut inner = self.inner.lock().unwrap();
        if let Some(current) = inner.config.as_ref()
            && (config.version < current.config.version
                || (config.version == current.config.version && config == current.config))
        {
            return Ok(false);
        }
        self.check_seal(&inner, &config)?;
        let cached = CachedConfig {
            config,
            received_at_ms: rtc_ms(),
        };
        self.store
            .save_config(&cached)
            .map_err(|e| format!("saving configuration: {e}"))?;
        tracing::info!(
            version = cached.config.version,
            locks = cached.config.locks.len(),
            "configuration applied"
        );
        inner.config = Some(cached);
        self.rebuild(&mut inner);
        Ok(true)
    }

    /// A configuration is taken only under a seal from a key the door trusts (its current
    /// configuration's keys, else those pinned at provisioning) or one the organization's
    /// endorsement chain leads to from them, and it may name no other key: holding the
    /// channel is not enough to change what the door trusts, its locks or its version.
    fn check_seal(&self, inner: &Inner, config: &ControllerConfig) -> Result<(), String> {
        let base = match (inner.config.as_ref(), self.identity.pinned.as_ref()) {
            (Some(current), _) => current.config.trusted.clone(),
            (None, Some(pinned)) => pinned.clone(),
            (None, None) => {
                tracing::warn!(
                    "no organization keys were pinned at provisioning; the first configuration's \
                     own keys are taken as the pin"
                );
                config.trusted.clone()
            }
        };
        let endorsements: Vec<Vec<u8>> = config
            .endorsements
            .iter()
            .filter_map(|e| B64.decode(e).ok())
            .collect();
        let known = extend_trust(&base, config.org, &endorsements);
        let seal = B64
            .decode(&config.seal)
            .map_err(|_| "configuration without a seal".to_string())?;
        let seal = ConfigSeal::verify(&seal, &known)
            .map_err(|r| format!("configuration seal refused: {r}"))?;
        if seal.org != config.org
            || seal.controller != config.controller
            || seal.version != config.version
            || !keyway_protocol::keys::ct_eq(&seal.digest, &config.digest())
        {
            return Err("the seal is for another configuration".into());
        }
        let endorsed = |k: &keyway_protocol::TrustedKey| {
            known
                .keys
                .iter()
                .any(|t| t.org == k.org && t.public_key == k.public_key)
        };
        if let Some(k) = config.trusted.keys.iter().find(|k| !endorsed(k)) {
            return Err(format!(
                "configuration names organization key {} that no trusted key endorsed",
                k.public_key.key_id()
            ));
        }
        Ok(())
    }

    fn verify_revocations(&self, inner: &Inner, list_b64: &str) -> Result<RevocationList, Reason> {
        let dc = inner.door_config.as_ref().ok_or(Reason::NotConfigured)?;
        let bytes = B64.decode(list_b64).map_err(|_| Reason::MalformedFrame)?;
        let list = RevocationList::verify(&bytes, &dc.trusted)?;
        if list.org != dc.org {
            return Err(Reason::WrongOrganization);
        }
        Ok(list)
    }

    /// Applies a signed revocation list; only a higher serial replaces the current one.
    pub fn apply_revocations(&self, list_b64: &str) -> Result<bool, Reason> {
        let mut inner = self.inner.lock().unwrap();
        let list = self.verify_revocations(&inner, list_b64)?;
        // The same serial is taken when the cached list was ignored at start (kept as a
        // floor without a list): the same serial names no fewer credentials.
        if let Some(current) = inner.revocations.as_ref()
            && (list.serial < current.serial
                || (list.serial == current.serial && !current.list.is_empty()))
        {
            return Ok(false);
        }
        let cached = CachedRevocations {
            list: list_b64.to_string(),
            serial: list.serial,
        };
        self.store.save_revocations(&cached).map_err(|e| {
            tracing::error!(error = %e, "saving revocation list");
            Reason::NotConfigured
        })?;
        tracing::info!(
            serial = list.serial,
            revoked = list.revoked.len(),
            "revocation list applied"
        );
        inner.revocations = Some(cached);
        if let Some(dc) = inner.door_config.as_mut() {
            dc.revocations = list;
        }
        Ok(true)
    }

    /// A fresh nonce for `time_request` (hex); the answer must echo it.
    pub fn time_request(&self) -> Option<String> {
        let mut nonce = [0u8; 16];
        self.rng.fill(&mut nonce).ok()?;
        self.inner.lock().unwrap().time_nonce = Some(nonce);
        Some(hex::encode(nonce))
    }

    /// Anchors the trusted clock to a signed statement answering our last nonce.
    pub fn apply_time(&self, statement_b64: &str) -> Result<(), Reason> {
        let mut inner = self.inner.lock().unwrap();
        let nonce = inner.time_nonce.ok_or(Reason::UnexpectedMessage)?;
        let trusted = &inner
            .door_config
            .as_ref()
            .ok_or(Reason::NotConfigured)?
            .trusted;
        let bytes = B64
            .decode(statement_b64)
            .map_err(|_| Reason::MalformedFrame)?;
        let stmt = TimeStatement::verify(&bytes, trusted, self.identity.controller_id, &nonce)?;
        let clock = TrustedClock::anchored(stmt.unix_ms, rtc_ms());
        inner.time_nonce = None;
        self.store.save_clock(&clock).map_err(|e| {
            tracing::error!(error = %e, "saving trusted time");
            Reason::NotConfigured
        })?;
        let skew = stmt.unix_ms as i64 - rtc_ms() as i64;
        tracing::info!(skew_ms = skew, "trusted time anchored");
        inner.clock = Some(clock);
        // Doors that see few unlocks still shed the counts of credentials that ended.
        if let Ok(time) = clock.bounds(rtc_ms())
            && inner.state.prune_uses(time) > 0
            && let Err(e) = self.store.save_state(&inner.state)
        {
            tracing::error!(error = %e, "saving door state");
        }
        Ok(())
    }

    /// Whether the trusted clock should be refreshed (absent or older than `max_age`).
    pub fn clock_needs_refresh(&self, max_age: Duration) -> bool {
        let inner = self.inner.lock().unwrap();
        inner
            .clock
            .is_none_or(|c| rtc_ms().saturating_sub(c.anchor_mono_ms) > max_age.as_millis() as u64)
    }

    pub fn has_config(&self) -> bool {
        self.inner.lock().unwrap().door_config.is_some()
    }

    /// Locks this controller serves, from the current configuration.
    pub fn locks(&self) -> Vec<LockConfig> {
        let inner = self.inner.lock().unwrap();
        inner
            .config
            .as_ref()
            .map(|c| c.config.locks.clone())
            .unwrap_or_default()
    }

    /// What `lock` should advertise now.
    pub fn advertisement(&self, lock: Id) -> Option<Advertisement> {
        let inner = self.inner.lock().unwrap();
        let cfg = inner.config.as_ref()?;
        let l = cfg.config.locks.iter().find(|l| l.id == lock)?;
        let now_secs = inner
            .clock
            .and_then(|c| c.bounds(rtc_ms()).ok())
            .map(|b| (b.earliest + b.latest) / 2)
            .unwrap_or(rtc_ms() / 1000);
        let code = inner
            .secrets
            .get(&lock)
            .map(|s| advert::proximity_code(s, lock, now_secs))
            .unwrap_or(0);
        let mut flags = 0;
        if l.walk_up {
            flags |= FLAG_WALK_UP;
        }
        if l.lockdown {
            flags |= FLAG_LOCKDOWN;
        }
        Some(Advertisement {
            lock_short_id: advert::lock_short_id(lock),
            tx_power: l.tx_power,
            proximity_code: code,
            flags,
        })
    }

    /// What a HELLO needs: the door identity and the current configuration.
    pub fn hello_context(&self) -> Option<(Arc<DoorIdentity>, DoorConfig)> {
        let inner = self.inner.lock().unwrap();
        Some((inner.door_identity.clone()?, inner.door_config.clone()?))
    }

    fn append(&self, inner: &mut Inner, event: DoorEvent) -> Result<DoorEvent, EventLogError> {
        let e = inner.log.append(event)?;
        self.events_changed.notify_one();
        Ok(e)
    }

    /// Logs an attempt that failed before a verdict (framing, handshake errors).
    pub fn log_rejected(&self, lock: Id, method: Method, reason: Reason) {
        let mut inner = self.inner.lock().unwrap();
        let event = DoorEvent {
            seq: 0,
            at_ms: event_time(&inner),
            kind: DoorEventKind::UnlockAttempt,
            lock,
            method: Some(method),
            granted: Some(false),
            reason: Some(reason),
            credential: None,
            holder: None,
            command_id: None,
        };
        if let Err(e) = self.append(&mut inner, event) {
            tracing::error!(error = %e, "event log append failed");
        }
    }

    /// Authenticates AUTH, decides offline, logs, records and actuates; returns RESULT.
    /// `Err` carries the reason for an ERROR frame (the attempt is already logged).
    pub fn ble_auth(
        self: &Arc<Self>,
        responder: &mut Responder,
        lock: Id,
        action: Action,
        frame: &[u8],
        near: Nearness,
    ) -> Result<BleVerdict, Reason> {
        let method = match action {
            Action::Unlock => Method::Ble,
            Action::WalkUp => Method::WalkUp,
        };
        let mut inner = self.inner.lock().unwrap();
        let Some(config) = inner.door_config.as_ref() else {
            drop(inner);
            self.log_rejected(lock, method, Reason::NotConfigured);
            return Err(Reason::NotConfigured);
        };
        let time = inner.clock.and_then(|c| c.bounds(rtc_ms()).ok());
        let input = AuthInput {
            config,
            time,
            mono_ms: self.mono_ms(),
            rssi: near.rssi,
            range_m: near.range_m,
        };
        let empty = Default::default();
        let memory = inner.state.memories.get(&lock).unwrap_or(&empty);
        let decision: Decision = match responder.on_auth(frame, &input, memory) {
            Ok(d) => d,
            Err(e) => {
                let reason = e.reason().unwrap_or(Reason::MalformedFrame);
                drop(inner);
                self.log_rejected(lock, method, reason);
                return Err(reason);
            }
        };
        let event = DoorEvent {
            seq: 0,
            at_ms: event_time(&inner),
            kind: DoorEventKind::UnlockAttempt,
            lock: decision.lock,
            method: Some(method),
            granted: Some(decision.outcome.is_ok()),
            reason: decision.outcome.err(),
            credential: decision.credential_id,
            holder: decision.holder,
            command_id: Some(decision.command_id),
        };
        let event = self.append(&mut inner, event).map_err(|e| {
            // Without a durable record nothing may open; the phone may retry.
            tracing::error!(error = %e, "event log append failed; refusing");
            Reason::NotConfigured
        })?;
        if decision.actuate() {
            inner
                .state
                .memories
                .entry(decision.lock)
                .or_default()
                .record_decision(&decision, event.seq);
        }
        if let Some(time) = time {
            // The file is rewritten anyway; keep it from carrying counts nobody can use.
            inner.state.prune_uses(time);
        }
        inner.state.applied_seq = event.seq;
        if let Err(e) = self.store.save_state(&inner.state) {
            // The log replay on the next start repairs this; keep serving.
            tracing::error!(error = %e, "saving door state");
        }
        if decision.actuate() {
            let relay_ms = *decision.outcome.as_ref().unwrap_or(&0);
            self.actuate(&mut inner, decision.lock, relay_ms);
        }
        tracing::info!(
            lock = %decision.lock,
            granted = decision.outcome.is_ok(),
            reason = ?decision.outcome.err(),
            duplicate = decision.duplicate_of.is_some(),
            seq = event.seq,
            "BLE attempt"
        );
        let result_frame = responder
            .result_frame(&decision, event.seq)
            .map_err(|e| e.reason().unwrap_or(Reason::MalformedFrame))?;
        Ok(BleVerdict {
            result_frame,
            event,
        })
    }

    /// Checks that `cmd` carries the organization's signed order for this controller, naming
    /// the same command, lock, time and actor.
    fn verify_order(&self, inner: &Inner, cmd: &CloudCommand) -> Result<(), Reason> {
        let dc = inner.door_config.as_ref().ok_or(Reason::NotConfigured)?;
        let bytes = B64
            .decode(&cmd.order)
            .map_err(|_| Reason::BadCommandSignature)?;
        // Unreadable or missing counts as unsigned; an unknown key keeps its own reason (the
        // door's keys may be behind a rotation).
        let order = CommandOrder::verify(&bytes, &dc.trusted, self.identity.controller_id)
            .map_err(|r| match r {
                Reason::UnknownOrgKey => r,
                _ => Reason::BadCommandSignature,
            })?;
        if order.org != dc.org
            || order.command != cmd.command_id
            || order.lock != cmd.lock
            || order.issued_at_ms != cmd.issued_at_ms
            || order.actor != cmd.actor
        {
            return Err(Reason::BadCommandSignature);
        }
        Ok(())
    }

    /// Executes a cloud command at most once per command id, and only when its order is
    /// signed by the organization for this controller.
    pub fn execute_command(self: &Arc<Self>, cmd: &CloudCommand) -> CommandResult {
        let mut inner = self.inner.lock().unwrap();
        if let Err(reason) = self.verify_order(&inner, cmd) {
            // Logged as an attempt (a forged command is worth an audit line) but not
            // remembered: the genuine command with this id must still run.
            tracing::warn!(command = %cmd.command_id, lock = %cmd.lock, %reason, "cloud command refused");
            // An unverified command names nobody: its actor is not the organization's word.
            let event = cloud_attempt(&inner, cmd, Err(reason), None);
            let event_seq = match self.append(&mut inner, event) {
                Ok(e) => e.seq,
                Err(e) => {
                    tracing::error!(error = %e, "event log append failed");
                    0
                }
            };
            return CommandResult {
                command_id: cmd.command_id,
                granted: false,
                reason: Some(reason),
                event_seq,
                duplicate: false,
            };
        }
        if let Some(previous) = inner.state.command(cmd.command_id) {
            let mut r = previous.clone();
            r.duplicate = true;
            tracing::info!(command = %cmd.command_id, "duplicate cloud command; not actuating");
            return r;
        }
        // Without trusted time the emulator's RTC stands in (a real door's battery clock).
        let now = inner
            .clock
            .and_then(|c| c.bounds(rtc_ms()).ok())
            .map(|b| b.latest * 1000)
            .unwrap_or_else(rtc_ms);
        let max_age = self.options.command_max_age_ms;
        let lock = inner
            .door_config
            .as_ref()
            .and_then(|dc| dc.lock(cmd.lock).cloned());
        let outcome = match lock {
            None => Err(Reason::NotConfigured),
            Some(l) if l.lockdown => Err(Reason::Lockdown),
            // Too old, or dated further ahead than the door's clock can be off: an order
            // signed for later must not wait to be played then.
            Some(_)
                if now.saturating_sub(cmd.issued_at_ms) > max_age
                    || cmd.issued_at_ms > now.saturating_add(max_age) =>
            {
                Err(Reason::StaleNonce)
            }
            Some(l) => Ok(l.relay_ms),
        };
        let event = cloud_attempt(&inner, cmd, outcome.map(|_| ()), cmd.actor);
        let event = match self.append(&mut inner, event) {
            Ok(e) => e,
            Err(e) => {
                tracing::error!(error = %e, "event log append failed; refusing command");
                // Not remembered: a retry may succeed once the disk recovers.
                return CommandResult {
                    command_id: cmd.command_id,
                    granted: false,
                    reason: Some(Reason::NotConfigured),
                    event_seq: 0,
                    duplicate: false,
                };
            }
        };
        let result = CommandResult {
            command_id: cmd.command_id,
            granted: outcome.is_ok(),
            reason: outcome.err(),
            event_seq: event.seq,
            duplicate: false,
        };
        inner.state.remember_command(result.clone());
        inner.state.applied_seq = event.seq;
        if let Err(e) = self.store.save_state(&inner.state) {
            tracing::error!(error = %e, "saving door state");
        }
        if let Ok(relay_ms) = outcome {
            self.actuate(&mut inner, cmd.lock, relay_ms);
        }
        tracing::info!(command = %cmd.command_id, lock = %cmd.lock, granted = result.granted, reason = ?result.reason, seq = event.seq, "cloud command");
        result
    }

    fn actuate(self: &Arc<Self>, inner: &mut Inner, lock: Id, relay_ms: u32) {
        let door = inner.doors.entry(lock).or_default();
        door.relay_until = Some(Instant::now() + Duration::from_millis(relay_ms as u64));
        door.actuations += 1;
        tracing::info!(%lock, relay_ms, "relay energised");
        if self.options.simulate_entry {
            let core = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(500)).await;
                core.door_sensor(lock, true);
                tokio::time::sleep(Duration::from_millis(3000)).await;
                core.door_sensor(lock, false);
            });
        }
    }

    /// Feeds the simulated door sensor: opened while the relay is off is a forced door.
    pub fn door_sensor(&self, lock: Id, open: bool) {
        let mut inner = self.inner.lock().unwrap();
        let now = Instant::now();
        let door = inner.doors.entry(lock).or_default();
        let kind = match (open, door.open_since.is_some()) {
            (true, false) => {
                door.open_since = Some(now);
                door.held_reported = false;
                if door.relay_until.is_some_and(|t| t > now) {
                    DoorEventKind::DoorOpened
                } else {
                    DoorEventKind::DoorForced
                }
            }
            (false, true) => {
                door.open_since = None;
                DoorEventKind::DoorClosed
            }
            _ => return,
        };
        self.log_door_event(&mut inner, lock, kind);
    }

    fn log_door_event(&self, inner: &mut Inner, lock: Id, kind: DoorEventKind) {
        tracing::info!(%lock, ?kind, "door sensor");
        let event = DoorEvent {
            seq: 0,
            at_ms: event_time(inner),
            kind,
            lock,
            method: None,
            granted: None,
            reason: None,
            credential: None,
            holder: None,
            command_id: None,
        };
        if let Err(e) = self.append(inner, event) {
            tracing::error!(error = %e, "event log append failed");
        }
    }

    /// Periodic housekeeping: relay release and held-open detection.
    pub fn tick(&self) {
        let mut inner = self.inner.lock().unwrap();
        let now = Instant::now();
        let mut held = Vec::new();
        for (lock, door) in inner.doors.iter_mut() {
            if door.relay_until.is_some_and(|t| t <= now) {
                door.relay_until = None;
                tracing::info!(%lock, "relay released");
            }
            if let Some(since) = door.open_since
                && !door.held_reported
                && now.duration_since(since) >= Duration::from_millis(self.options.held_open_ms)
            {
                door.held_reported = true;
                held.push(*lock);
            }
        }
        for lock in held {
            self.log_door_event(&mut inner, lock, DoorEventKind::DoorHeldOpen);
        }
    }

    /// Unacknowledged events after `after`, oldest first.
    pub fn pending_events(&self, after: u64, max: usize) -> Vec<DoorEvent> {
        self.inner.lock().unwrap().log.pending_after(after, max)
    }

    /// The server stored events up to `up_to`.
    pub fn ack_events(&self, up_to: u64) -> Result<(), EventLogError> {
        self.inner.lock().unwrap().log.ack(up_to)
    }

    pub fn acked_seq(&self) -> u64 {
        self.inner.lock().unwrap().log.acked()
    }

    pub fn set_connection(&self, c: Connection, error: Option<String>) {
        let mut inner = self.inner.lock().unwrap();
        inner.connection = c;
        if error.is_some() || c == Connection::Online {
            inner.last_error = error;
        }
    }

    /// How many times the relay of `lock` was energised by this process.
    pub fn actuations(&self, lock: Id) -> u64 {
        self.inner
            .lock()
            .unwrap()
            .doors
            .get(&lock)
            .map_or(0, |d| d.actuations)
    }

    /// Heartbeat status for the server.
    pub fn channel_status(&self) -> keyway_channel::ControllerStatus {
        let inner = self.inner.lock().unwrap();
        keyway_channel::ControllerStatus {
            config_version: inner.config.as_ref().map_or(0, |c| c.config.version),
            revocation_serial: inner.revocations.as_ref().map_or(0, |r| r.serial),
            pending_events: inner.log.pending_count(),
            last_event_seq: inner.log.last_seq(),
        }
    }

    /// Snapshot for the status file.
    pub fn status(&self) -> crate::status::Status {
        let inner = self.inner.lock().unwrap();
        let now = Instant::now();
        let doors = inner
            .config
            .as_ref()
            .map(|c| c.config.locks.clone())
            .unwrap_or_default()
            .into_iter()
            .map(|l| {
                let d = inner.doors.get(&l.id).cloned().unwrap_or_default();
                crate::status::DoorStatus {
                    lock: l.id,
                    name: l.name,
                    relay: if d.relay_until.is_some_and(|t| t > now) {
                        "unlocked".into()
                    } else {
                        "locked".into()
                    },
                    door: if d.open_since.is_some() {
                        "open".into()
                    } else {
                        "closed".into()
                    },
                    lockdown: l.lockdown,
                    walk_up: l.walk_up,
                    actuations: d.actuations,
                }
            })
            .collect();
        crate::status::Status {
            controller: self.identity.controller_id,
            org: self.identity.org_id,
            pid: std::process::id(),
            updated_at_ms: rtc_ms(),
            connection: inner.connection,
            last_error: inner.last_error.clone(),
            config_version: inner.config.as_ref().map(|c| c.config.version),
            config_received_at_ms: inner.config.as_ref().map(|c| c.received_at_ms),
            revocation_serial: inner.revocations.as_ref().map(|r| r.serial),
            trusted_time: inner.clock.is_some_and(|c| c.bounds(rtc_ms()).is_ok()),
            pending_events: inner.log.pending_count(),
            last_event_seq: inner.log.last_seq(),
            acked_event_seq: inner.log.acked(),
            doors,
        }
    }
}
