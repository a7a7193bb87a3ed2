//! What the screens draw: sign-in, organizations, places with their locks, unlock progress and
//! result, invites, and walk-up settings. Plain data, serializable as JSON for any shell.

use super::Model;
use super::unlock::{HEARD_FRESH_MS, Route, UnlockStatus};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, uniffi::Record)]
pub struct ViewModel {
    /// Stored state has been loaded; before this, `signed_in` is not yet known.
    pub ready: bool,
    pub signed_in: bool,
    pub guest: bool,
    pub user_email: Option<String>,
    pub auth_busy: bool,
    pub auth_error: Option<String>,
    pub orgs: Vec<OrgView>,
    pub places: Vec<PlaceView>,
    /// The list is from the offline cache and not confirmed by the server.
    pub stale: bool,
    pub loading: bool,
    pub notice: Option<String>,
    pub unlock: Option<UnlockView>,
    pub invite: InviteView,
    pub credential: Option<CredentialView>,
    pub scanning: bool,
    pub last_walk_up: Option<super::walkup::WalkUpNote>,
    /// What the walk-up engine believes about the wearer's motion.
    pub motion: crate::walkup::Motion,
    /// How the walk-up engine believes the phone is carried.
    pub carry: crate::walkup::Carry,
    /// The wearer's walking pace as the walk-up engine last heard it, m/s.
    pub pace: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, uniffi::Record)]
pub struct OrgView {
    pub id: String,
    pub name: String,
    pub role: String,
    pub selected: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, uniffi::Record)]
pub struct PlaceView {
    pub id: String,
    pub name: String,
    pub locks: Vec<LockView>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, uniffi::Record)]
pub struct LockView {
    pub id: String,
    pub name: String,
    pub online: bool,
    pub lockdown: bool,
    pub walk_up_allowed: bool,
    pub walk_up_enabled: bool,
    /// Heard over BLE within the last few seconds.
    pub nearby: bool,
    pub rssi: Option<i16>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, uniffi::Record)]
pub struct UnlockView {
    pub lock: String,
    pub lock_name: String,
    pub walk_up: bool,
    /// `checking`, `in_progress`, `granted`, `denied` or `unconfirmed` (sent, no verdict).
    pub state: String,
    pub route: Option<Route>,
    /// Shared reason code when denied (`access_expired`, `too_far`, ...).
    pub reason: Option<String>,
    pub message: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, uniffi::Record)]
pub struct InviteView {
    pub busy: bool,
    pub error: Option<String>,
    pub accepted: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, uniffi::Record)]
pub struct CredentialView {
    pub org: String,
    pub not_after: u64,
    pub refresh_after: u64,
}

pub fn view(model: &Model) -> ViewModel {
    let session = model.session.as_ref();
    let current = model.current_org();
    let orgs = session
        .map(|s| {
            s.memberships
                .iter()
                .map(|m| OrgView {
                    id: m.org.id.clone(),
                    name: m.org.name.clone(),
                    role: m.role.clone(),
                    selected: Some(m.org.id.as_str()) == current,
                })
                .collect()
        })
        .unwrap_or_default();
    let lock_view = |l: &super::Lock| {
        let heard = model.heard.get(&l.short_id.to_ascii_lowercase());
        LockView {
            id: l.id.clone(),
            name: l.name.clone(),
            online: l.online,
            lockdown: l.lockdown,
            walk_up_allowed: l.walk_up_allowed,
            walk_up_enabled: model.walk_up_locks.contains(&l.id),
            nearby: heard.is_some_and(|h| model.clock_ms.saturating_sub(h.at_ms) <= HEARD_FRESH_MS),
            rssi: heard.map(|h| h.rssi),
        }
    };
    let mut places: Vec<PlaceView> = model
        .directory
        .places
        .iter()
        .map(|p| PlaceView {
            id: p.id.clone(),
            name: p.name.clone(),
            locks: model
                .directory
                .locks
                .iter()
                .filter(|l| l.place_id == p.id)
                .map(lock_view)
                .collect(),
        })
        .collect();
    let orphans: Vec<LockView> = model
        .directory
        .locks
        .iter()
        .filter(|l| !model.directory.places.iter().any(|p| p.id == l.place_id))
        .map(lock_view)
        .collect();
    if !orphans.is_empty() {
        places.push(PlaceView {
            id: String::new(),
            name: "Other doors".into(),
            locks: orphans,
        });
    }
    let unlock = model.unlock.as_ref().map(|a| {
        let lock_name = model
            .lock(&a.lock)
            .map(|l| l.name.clone())
            .unwrap_or_default();
        let (state, route, reason, message) = match &a.status {
            UnlockStatus::Checking => ("checking", None, None, "looking for the door".to_owned()),
            UnlockStatus::InProgress(r) => (
                "in_progress",
                Some(*r),
                None,
                match r {
                    Route::Ble => "opening over Bluetooth".to_owned(),
                    Route::Cloud => "opening through the cloud".to_owned(),
                },
            ),
            UnlockStatus::Granted { route, duplicate } => (
                "granted",
                Some(*route),
                None,
                if *duplicate {
                    "already opened".to_owned()
                } else {
                    "door opened".to_owned()
                },
            ),
            UnlockStatus::Unconfirmed { route } => (
                "unconfirmed",
                Some(*route),
                None,
                "the door did not confirm; check whether it opened".to_owned(),
            ),
            UnlockStatus::Denied { route, reason } => (
                "denied",
                *route,
                Some(reason.code().to_owned()),
                reason.message().to_owned(),
            ),
        };
        UnlockView {
            lock: a.lock.clone(),
            lock_name,
            walk_up: a.action == keyway_protocol::handshake::Action::WalkUp,
            state: state.to_owned(),
            route,
            reason,
            message,
        }
    });
    ViewModel {
        ready: model.ready,
        signed_in: session.is_some(),
        guest: session.is_some_and(|s| s.guest),
        user_email: session.map(|s| s.user.email.clone()),
        auth_busy: model.auth_busy,
        auth_error: model.auth_error.clone(),
        orgs,
        places,
        stale: model.directory.stale,
        loading: model.directory.loading,
        notice: model.directory.notice.clone(),
        unlock,
        invite: InviteView {
            busy: model.invite.busy,
            error: model.invite.error.clone(),
            accepted: model.invite.accepted,
        },
        credential: model.credential.as_ref().map(|c| CredentialView {
            org: c.org.clone(),
            not_after: c.response.not_after,
            refresh_after: c.response.refresh_after,
        }),
        scanning: model.scanning,
        last_walk_up: model.last_walk_up.clone(),
        motion: model.engine.motion(),
        carry: model.engine.carry(),
        pace: model.engine.pace(),
    }
}
