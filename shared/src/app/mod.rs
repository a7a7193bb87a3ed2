//! The crux app: pure logic, no IO. Start at [`Event`] (what shells and effects send in),
//! [`Model`] (everything the core remembers) and [`ViewModel`] (what screens draw). Each flow
//! lives in its own file with its handlers and tests:
//! [`session`] (login, logout, restore, organizations), [`places`] (places and locks with an
//! offline cache), [`credentials`] (device key and offline credentials), [`unlock`] (route
//! choice, BLE handshake, cloud unlock, fallback), [`walkup`] (scan stream into the walk-up
//! engine) and [`invites`].

pub mod api;
pub mod credentials;
pub mod invites;
pub mod places;
pub mod session;
pub mod unlock;
pub mod view;
pub mod walkup;

#[cfg(test)]
pub(crate) mod testkit;

use crate::effects::{BleOperation, ScanItem, ScanOperation, SigningOperation};
use crate::walkup::{Carry, Motion, WalkUpEngine, WalkUpParams};
use crux_core::Command;
use crux_core::macros::effect;
use crux_core::render::{RenderOperation, render};
use crux_http::protocol::HttpRequest;
use crux_kv::KeyValueOperation;
use crux_time::TimeRequest;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};

pub use api::{ApiError, ApiResult, Lock, LoginResponse, Membership, Org, Place, User};
pub use credentials::HeldCredential;
pub use session::Session;
pub use unlock::{Route, RouteOutcome, UnlockAttempt, UnlockStatus};
pub use view::ViewModel;

#[effect]
#[derive(Debug)]
pub enum Effect {
    Render(RenderOperation),
    Http(HttpRequest),
    KeyValue(KeyValueOperation),
    Time(TimeRequest),
    Scan(ScanOperation),
    Ble(BleOperation),
    Signing(SigningOperation),
}

/// A position fix (WGS84 degrees) and the unix time it was taken.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Location {
    pub latitude: f64,
    pub longitude: f64,
    pub fix_ms: u64,
}

/// Inputs to the core. The variants a shell may send serialize as snake_case JSON
/// (`{"login": {"email": "..", "password": ".."}}`, `"logout"`); the rest are answers from
/// effects and never cross the FFI.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// First event after construction: restores the session from storage.
    Start {
        api_base: String,
    },
    Login {
        email: String,
        password: String,
    },
    Logout,
    SelectOrg {
        org: String,
    },
    /// Reload places, locks and credentials for the current organization.
    Refresh,
    Unlock {
        lock: String,
    },
    DismissUnlock,
    SetWalkUp {
        lock: String,
        enabled: bool,
    },
    /// Accept a visitor invite: a bare code or a link carrying one.
    RedeemInvite {
        code: String,
    },
    StartScan,
    StopScan,
    /// The device's position from the platform's location service. Sent with cloud unlocks
    /// while fresh, for doors that only open inside a geofence.
    SetLocation(Location),
    /// Whether the wearer walks or stands (`{"set_motion": "still"}`), from the platform's
    /// motion sensors; the walk-up engine needs surer RSSI evidence while they walk. Shells
    /// with only raw accelerometer samples use [`crate::ffi::KeywayCore::accelerometer`].
    SetMotion(Motion),
    /// How the phone is carried (`{"set_carry": "covered"}`), from its proximity sensor; the
    /// walk-up engine uses it to bound the signal loss it allows for. Shells with only the
    /// raw sensor use [`crate::ffi::KeywayCore::proximity`].
    SetCarry(Carry),
    /// The wearer's walking pace in m/s (`{"set_pace": 1.2}`), or `null` when the shell stops
    /// sensing; shown in the view, and used by the walk-up engine's arrival test (unless its
    /// `pace_doubt` is 1). Shells that forward raw accelerometer samples get this from the
    /// core.
    SetPace(Option<f64>),
    /// A distance the shell's secure ranging (UWB, Bluetooth Channel Sounding) measured to a
    /// door it heard (`{"ranged": {"peer": "…", "distance_m": 0.8, "at_ms": …}}`); while a
    /// door's readings keep coming the walk-up engine decides by them, not by RSSI. Shells
    /// call [`crate::ffi::KeywayCore::ranging`], which stamps the time.
    Ranged(walkup::Ranged),

    // ---- effect answers (internal) ----
    #[serde(skip)]
    Restored(Box<session::Restored>),
    #[serde(skip)]
    LoggedIn {
        result: ApiResult<LoginResponse>,
        via_invite: bool,
    },
    // Answers about the session carry the [`Model::epoch`] they were asked in: one that
    // arrives after a sign-out, a new sign-in or an organization switch is dropped.
    #[serde(skip)]
    CacheLoaded {
        epoch: u64,
        org: String,
        cache: Option<places::DirectoryCache>,
    },
    #[serde(skip)]
    DirectoryFetched {
        epoch: u64,
        org: String,
        result: ApiResult<(Vec<Place>, Vec<Lock>)>,
    },
    /// Bound to the user it was registered for, not the epoch: an organization switch
    /// does not make it someone else's.
    #[serde(skip)]
    DeviceRegistered {
        user: String,
        id: String,
    },
    #[serde(skip)]
    CredentialLoaded {
        epoch: u64,
        held: Option<HeldCredential>,
    },
    #[serde(skip)]
    CredentialFetched {
        epoch: u64,
        org: String,
        /// The device was registered by this same fetch (so a 404 is not about the device).
        registered: bool,
        result: ApiResult<api::CredentialResponse>,
    },
    #[serde(skip)]
    CredentialRefreshAt {
        epoch: u64,
        now_ms: u64,
    },
    #[serde(skip)]
    CredentialRefreshDue {
        epoch: u64,
        org: String,
    },
    // Answers about an unlock carry its command id: one for an attempt no longer shown is
    // dropped.
    #[serde(skip)]
    UnlockAt {
        command_id: keyway_protocol::Id,
        now_ms: u64,
    },
    #[serde(skip)]
    UnlockDone {
        command_id: keyway_protocol::Id,
        route: Route,
        outcome: RouteOutcome,
    },
    #[serde(skip)]
    UnlockOverdue {
        command_id: keyway_protocol::Id,
        run: usize,
    },
    #[serde(skip)]
    Scanned(ScanItem),
    /// A fire-and-forget effect finished; nothing to do.
    #[serde(skip)]
    Noop,
}

/// Everything the core remembers. Not serialized: persistent parts go to KeyValue on change.
#[derive(Debug)]
pub struct Model {
    pub api_base: String,
    /// Storage has been read (`Start` finished).
    pub ready: bool,
    pub session: Option<Session>,
    pub auth_busy: bool,
    pub auth_error: Option<String>,
    pub directory: places::Directory,
    pub device_id: Option<String>,
    pub credential: Option<HeldCredential>,
    pub credential_busy: bool,
    /// Heard doors by advertised short id (hex).
    pub heard: HashMap<String, walkup::Heard>,
    /// Latest wall clock seen (adverts, time answers), unix ms.
    pub clock_ms: u64,
    pub walk_up_locks: BTreeSet<String>,
    pub engine: WalkUpEngine,
    pub last_walk_up: Option<walkup::WalkUpNote>,
    pub unlock: Option<UnlockAttempt>,
    pub invite: invites::InviteState,
    pub scanning: bool,
    /// When an advertisement last caused a render (unix ms).
    pub scan_rendered_ms: u64,
    /// Last position the shell reported.
    pub location: Option<Location>,
    pub(crate) refresh_timer: Option<crux_time::TimerHandle>,
    /// Bumped at every sign-in, sign-out and organization switch; answers asked for in an
    /// earlier epoch are dropped (a reply for the previous user or organization must not be
    /// stored as this one's).
    pub epoch: u64,
}

impl Default for Model {
    fn default() -> Self {
        Self {
            api_base: String::new(),
            ready: false,
            session: None,
            auth_busy: false,
            auth_error: None,
            directory: Default::default(),
            device_id: None,
            credential: None,
            credential_busy: false,
            heard: HashMap::new(),
            clock_ms: 0,
            walk_up_locks: BTreeSet::new(),
            location: None,
            engine: WalkUpEngine::new(WalkUpParams::default()),
            last_walk_up: None,
            unlock: None,
            invite: Default::default(),
            scanning: false,
            scan_rendered_ms: 0,
            refresh_timer: None,
            epoch: 0,
        }
    }
}

impl Model {
    pub fn current_org(&self) -> Option<&str> {
        self.session.as_ref()?.current_org.as_deref()
    }

    pub fn token(&self) -> Option<&str> {
        self.session.as_ref().map(|s| s.token.as_str())
    }

    pub fn lock(&self, id: &str) -> Option<&Lock> {
        self.directory.locks.iter().find(|l| l.id == id)
    }

    /// Starts a new epoch: answers to anything asked before are dropped from now on.
    pub(crate) fn next_epoch(&mut self) -> u64 {
        self.epoch += 1;
        self.epoch
    }

    /// Walk-up is on for a lock when the user opted in and the lock allows it.
    pub(crate) fn sync_engine(&mut self) {
        let allowed: Vec<(String, bool)> = self
            .directory
            .locks
            .iter()
            .map(|l| {
                (
                    l.id.clone(),
                    l.walk_up_allowed && self.walk_up_locks.contains(&l.id),
                )
            })
            .collect();
        for (id, on) in allowed {
            if self.engine.is_enabled(&id) != on {
                self.engine.set_enabled(&id, on);
            }
        }
    }
}

/// The app. Stateless: all state is in [`Model`].
#[derive(Debug, Default)]
pub struct Keyway;

pub type Cmd = Command<Effect, Event>;

impl crux_core::App for Keyway {
    type Event = Event;
    type Model = Model;
    type ViewModel = ViewModel;
    type Effect = Effect;

    fn update(&self, event: Event, model: &mut Model) -> Cmd {
        match event {
            Event::Start { api_base } => session::start(model, api_base),
            Event::Login { email, password } => session::login(model, email, password),
            Event::Logout => session::logout(model),
            Event::SelectOrg { org } => session::select_org(model, org),
            Event::Refresh => session::sync_org(model),
            Event::Unlock { lock } => unlock::tap(model, lock),
            Event::DismissUnlock => unlock::dismiss(model),
            Event::SetWalkUp { lock, enabled } => walkup::set_walk_up(model, lock, enabled),
            Event::RedeemInvite { code } => invites::redeem(model, code),
            Event::StartScan => walkup::start_scan(model),
            Event::StopScan => walkup::stop_scan(model),
            Event::SetLocation(fix) => {
                model.location = Some(fix);
                Command::done()
            }
            Event::SetMotion(motion) => {
                model.engine.set_motion(motion);
                render()
            }
            Event::SetCarry(carry) => {
                model.engine.set_carry(carry);
                render()
            }
            Event::SetPace(pace) => {
                model.engine.set_pace(pace);
                render()
            }
            Event::Restored(r) => session::restored(model, *r),
            Event::LoggedIn { result, via_invite } => session::logged_in(model, result, via_invite),
            // Answers from an earlier epoch (another user or organization) are dropped.
            Event::CacheLoaded { epoch, .. }
            | Event::DirectoryFetched { epoch, .. }
            | Event::CredentialLoaded { epoch, .. }
            | Event::CredentialFetched { epoch, .. }
            | Event::CredentialRefreshAt { epoch, .. }
            | Event::CredentialRefreshDue { epoch, .. }
                if epoch != model.epoch =>
            {
                Command::done()
            }
            Event::CacheLoaded { org, cache, .. } => places::cache_loaded(model, org, cache),
            Event::DirectoryFetched { org, result, .. } => places::fetched(model, org, result),
            Event::DeviceRegistered { user, id } => credentials::device_registered(model, user, id),
            Event::CredentialLoaded { held, .. } => credentials::loaded(model, held),
            Event::CredentialFetched {
                org,
                registered,
                result,
                ..
            } => credentials::fetched(model, org, registered, result),
            Event::CredentialRefreshAt { now_ms, .. } => {
                credentials::schedule_refresh(model, now_ms)
            }
            Event::CredentialRefreshDue { org, .. } => credentials::refresh_due(model, org),
            Event::UnlockAt { command_id, now_ms } => unlock::decide(model, command_id, now_ms),
            Event::UnlockDone {
                command_id,
                route,
                outcome,
            } => unlock::done(model, command_id, route, outcome),
            Event::UnlockOverdue { command_id, run } => unlock::overdue(model, command_id, run),
            Event::Scanned(item) => walkup::scanned(model, item),
            Event::Ranged(reading) => walkup::ranged(model, reading),
            Event::Noop => Command::done(),
        }
    }

    fn view(&self, model: &Model) -> ViewModel {
        view::view(model)
    }
}

/// KeyValue keys.
pub(crate) mod keys {
    pub const SESSION: &str = "session";
    pub const DEVICE: &str = "device";
    pub const WALK_UP: &str = "walk_up";
    pub fn cache(org: &str) -> String {
        format!("cache/{org}")
    }
    pub fn credential(org: &str) -> String {
        format!("credential/{org}")
    }
}

/// Persists a JSON value, ignoring the outcome (a failed write only costs a re-fetch).
pub(crate) fn kv_put<T: Serialize>(key: impl Into<String>, value: &T) -> Cmd {
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    crux_kv::KeyValue::set(key.into(), bytes).then_send(|_| Event::Noop)
}

pub(crate) fn kv_delete(key: impl Into<String>) -> Cmd {
    crux_kv::KeyValue::delete(key.into()).then_send(|_| Event::Noop)
}

/// Reads a JSON value inside an async command; missing or unreadable values are `None`.
pub(crate) async fn kv_get<T: serde::de::DeserializeOwned>(
    ctx: &crux_core::command::CommandContext<Effect, Event>,
    key: impl Into<String>,
) -> Option<T> {
    let key: String = key.into();
    let bytes = crux_kv::KeyValue::get(key)
        .into_future(ctx.clone())
        .await
        .ok()??;
    serde_json::from_slice(&bytes).ok()
}
