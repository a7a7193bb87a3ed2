//! Sign-in, sign-out, restoring the session from storage, and choosing among the account's
//! organizations.

use super::api::{ApiCall, ApiResult, LoginResponse, Membership, User};
use super::{Cmd, Event, Model, credentials, keys, kv_delete, kv_get, kv_put, places};
use crate::app::HeldCredential;
use crux_core::Command;
use crux_core::render::render;
use serde::{Deserialize, Serialize};

/// What survives restarts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub token: String,
    pub user: User,
    pub memberships: Vec<Membership>,
    pub current_org: Option<String>,
    /// Signed in by redeeming an invite (a guest without a password).
    #[serde(default)]
    pub guest: bool,
}

/// Everything `Start` reads from storage.
#[derive(Debug, Default)]
pub struct Restored {
    pub session: Option<Session>,
    pub device_id: Option<String>,
    pub walk_up: Vec<String>,
    pub credential: Option<HeldCredential>,
    pub cache: Option<places::DirectoryCache>,
}

pub fn start(model: &mut Model, api_base: String) -> Cmd {
    model.api_base = api_base;
    Command::new(|ctx| async move {
        let mut r = Restored {
            session: kv_get(&ctx, keys::SESSION).await,
            device_id: kv_get(&ctx, keys::DEVICE).await,
            walk_up: kv_get(&ctx, keys::WALK_UP).await.unwrap_or_default(),
            ..Default::default()
        };
        if let Some(org) = r.session.as_ref().and_then(|s| s.current_org.clone()) {
            r.credential = kv_get(&ctx, keys::credential(&org)).await;
            r.cache = kv_get(&ctx, keys::cache(&org)).await;
        }
        ctx.send_event(Event::Restored(Box::new(r)));
    })
}

pub fn restored(model: &mut Model, r: Restored) -> Cmd {
    model.ready = true;
    model.device_id = r.device_id;
    model.walk_up_locks = r.walk_up.into_iter().collect();
    let Some(session) = r.session else {
        return render();
    };
    model.session = Some(session);
    model.credential = r.credential;
    if let Some(org) = model.current_org().map(str::to_owned) {
        places::apply_cache(model, &org, r.cache);
    }
    // Show what we have at once, then refresh from the network.
    Command::all([render(), sync_org(model)])
}

pub fn login(model: &mut Model, email: String, password: String) -> Cmd {
    model.auth_busy = true;
    model.auth_error = None;
    let call = ApiCall::new("POST", &model.api_base, "/logins").json(serde_json::json!({
        "email": email, "password": password, "device_name": "Keyway app"
    }));
    Command::all([
        render(),
        call.send::<LoginResponse>()
            .then_send(|result| Event::LoggedIn {
                result,
                via_invite: false,
            }),
    ])
}

pub fn logged_in(model: &mut Model, result: ApiResult<LoginResponse>, via_invite: bool) -> Cmd {
    model.auth_busy = false;
    if via_invite {
        model.invite.busy = false;
    }
    match result {
        Ok(login) => {
            let current_org = login.memberships.first().map(|m| m.org.id.clone());
            let session = Session {
                token: login.token,
                user: login.user,
                memberships: login.memberships,
                current_org,
                guest: via_invite,
            };
            if via_invite {
                model.invite.accepted = true;
                model.invite.error = None;
            }
            // A new session: nothing asked for under the previous one may land in it.
            let mut cmds = vec![];
            if let Some(old) = model.session.take() {
                // A sign-in over a live session (an invite opened while signed in): the old
                // session ends on the server too. Someone else's leaves nothing behind here:
                // its device registration (the server would refuse it to this user), stored
                // credentials, cached doors and walk-up choices.
                let other_user = old.user.id != session.user.id;
                cmds.extend(forget(model, &old, other_user));
                if other_user {
                    model.walk_up_locks.clear();
                    model.sync_engine();
                }
            }
            cmds.extend([kv_put(keys::SESSION, &session), render()]);
            leave_epoch(model);
            model.directory = Default::default();
            model.credential = None;
            model.session = Some(session);
            cmds.push(sync_org(model));
            Command::all(cmds)
        }
        Err(e) => {
            let message = match &e {
                super::ApiError::Server { status: 401, .. } if !via_invite => {
                    "wrong email or password".to_owned()
                }
                super::ApiError::Server { code, .. } if via_invite && code == "not_found" => {
                    "this invite code is not valid".to_owned()
                }
                other => other.user_message(),
            };
            if via_invite {
                model.invite.error = Some(message);
            } else {
                model.auth_error = Some(message);
            }
            render()
        }
    }
}

/// Loads the current organization: cached list, fresh list, and offline credentials.
pub fn sync_org(model: &mut Model) -> Cmd {
    let (Some(token), Some(org)) = (model.token(), model.current_org()) else {
        return Command::done();
    };
    let (token, org) = (token.to_owned(), org.to_owned());
    model.directory.loading = true;
    Command::all([
        places::fetch(&model.api_base, &token, &org, model.epoch),
        credentials::ensure(model),
    ])
}

pub fn select_org(model: &mut Model, org: String) -> Cmd {
    let Some(session) = model.session.as_mut() else {
        return Command::done();
    };
    if !session.memberships.iter().any(|m| m.org.id == org) {
        return render();
    }
    session.current_org = Some(org.clone());
    let session = session.clone();
    let epoch = leave_epoch(model);
    model.directory = Default::default();
    model.credential = None;
    let org2 = org.clone();
    let load = Command::new(move |ctx| async move {
        let held: Option<HeldCredential> = kv_get(&ctx, keys::credential(&org2)).await;
        ctx.send_event(Event::CredentialLoaded { epoch, held });
        let cache = kv_get(&ctx, keys::cache(&org2)).await;
        ctx.send_event(Event::CacheLoaded {
            epoch,
            org: org2,
            cache,
        });
    });
    Command::all([
        kv_put(keys::SESSION, &session),
        render(),
        load.then(sync_org(model)),
    ])
}

/// Starts a new epoch for a new session or organization: answers and timers of the old one
/// are dropped, and an unlock in progress is no longer shown (its answer is dropped too).
fn leave_epoch(model: &mut Model) -> u64 {
    if let Some(t) = model.refresh_timer.take() {
        t.clear();
    }
    model.credential_busy = false;
    model.unlock = None;
    model.next_epoch()
}

/// Resets the model after a sign-out, keeping what outlives sessions.
fn reset(model: &mut Model, auth_error: Option<String>) -> Cmd {
    let stop_scan = if model.scanning {
        Command::notify_shell(crate::effects::ScanOperation::Stop).into()
    } else {
        Command::done()
    };
    let epoch = leave_epoch(model);
    let api_base = std::mem::take(&mut model.api_base);
    *model = Model {
        api_base,
        ready: true,
        auth_error,
        epoch,
        ..Model::default()
    };
    stop_scan
}

/// Ends `session` on the server and, with `everything`, also deletes this device there
/// (revoking its credentials; the next sign-in registers afresh) and forgets the session's
/// stored credentials, cached doors, device id and walk-up choices here.
fn forget(model: &mut Model, session: &Session, everything: bool) -> Vec<Cmd> {
    let base = model.api_base.clone();
    let delete = |path: &str| {
        ApiCall::new("DELETE", &base, path)
            .token(&session.token)
            .into_http()
    };
    // The device first, then the session: the device's deletion needs the session, and a
    // session ended first would leave the device and its credentials valid (401).
    let device = everything
        .then(|| model.device_id.take())
        .flatten()
        .map(|d| delete(&format!("/devices/{d}")));
    let end_session = delete("/logins/current");
    let mut cmds = vec![Command::new(|ctx| async move {
        if let Some(device) = device {
            let _ = ctx.request_from_shell(device).await;
        }
        let _ = ctx.request_from_shell(end_session).await;
    })];
    if !everything {
        return cmds;
    }
    for m in &session.memberships {
        cmds.push(kv_delete(keys::credential(&m.org.id)));
        cmds.push(kv_delete(keys::cache(&m.org.id)));
    }
    cmds.push(kv_delete(keys::DEVICE));
    cmds.push(kv_delete(keys::WALK_UP));
    cmds
}

/// Signs out: tells the server (session and device credentials), forgets everything local.
pub fn logout(model: &mut Model) -> Cmd {
    let Some(session) = model.session.take() else {
        return render();
    };
    let mut cmds = forget(model, &session, true);
    cmds.push(kv_delete(keys::SESSION));
    cmds.push(reset(model, None));
    cmds.push(render());
    Command::all(cmds)
}

/// The server no longer accepts our session: forget it locally and say why. The device
/// registration stays (the server may still hold it for this user; another user signing in
/// registers afresh), but nothing of the user's: whoever signs in next may be someone else.
pub fn logout_local(model: &mut Model, why: &str) -> Cmd {
    let orgs: Vec<String> = model
        .session
        .take()
        .map(|s| s.memberships.into_iter().map(|m| m.org.id).collect())
        .unwrap_or_default();
    let device_id = model.device_id.take();
    let mut cmds = vec![reset(model, Some(why.to_owned()))];
    model.device_id = device_id;
    for org in &orgs {
        cmds.push(kv_delete(keys::credential(org)));
        cmds.push(kv_delete(keys::cache(org)));
    }
    cmds.push(kv_delete(keys::SESSION));
    cmds.push(kv_delete(keys::WALK_UP));
    cmds.push(render());
    Command::all(cmds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::testkit::*;
    use crate::app::{Effect, Keyway};
    use crux_core::App;

    /// The storage keys `effects` delete.
    fn deleted_keys(effects: impl IntoIterator<Item = Effect>) -> Vec<String> {
        effects
            .into_iter()
            .filter_map(|e| match e {
                Effect::KeyValue(r) => match &r.operation {
                    crux_kv::KeyValueOperation::Delete { key } => Some(key.clone()),
                    _ => None,
                },
                _ => None,
            })
            .collect()
    }

    #[test]
    fn signing_out_stops_the_scan_and_an_expired_session_keeps_no_choices() {
        let app = Keyway;
        let mut model = signed_in_model();
        let _ = app.update(Event::StartScan, &mut model);
        let _ = app.update(
            Event::SetWalkUp {
                lock: "door".into(),
                enabled: true,
            },
            &mut model,
        );
        let epoch = model.epoch;
        let mut cmd = app.update(Event::Logout, &mut model);
        assert!(cmd.effects().any(|e| matches!(e, Effect::Scan(r)
            if r.operation == crate::effects::ScanOperation::Stop)));
        assert!(
            model.epoch > epoch,
            "answers to the old session are dropped"
        );

        // Expired: whoever signs in next may be someone else, so walk-up choices go too.
        let mut model = signed_in_model();
        model.device_id = Some("dev-1".into());
        let _ = app.update(
            Event::SetWalkUp {
                lock: "door".into(),
                enabled: true,
            },
            &mut model,
        );
        let mut cmd = logout_local(&mut model, "expired");
        assert!(model.walk_up_locks.is_empty());
        assert_eq!(model.device_id.as_deref(), Some("dev-1"));
        let deleted = deleted_keys(cmd.effects());
        for key in ["walk_up", "session", &format!("cache/{ORG_A}")] {
            assert!(deleted.iter().any(|k| k == key), "{key} not deleted");
        }
    }

    #[test]
    fn another_user_signing_in_does_not_inherit_the_device_or_walk_up() {
        let app = Keyway;
        let mut model = signed_in_model();
        model.device_id = Some("dev-of-u1".into());
        model.walk_up_locks.insert("door".into());
        let mut login = app.update(
            Event::Login {
                email: "bob@example.com".into(),
                password: "pw".into(),
            },
            &mut model,
        );
        let mut other = login_json();
        other["user"]["id"] = "u2".into();
        take_http(&mut login).resolve(ok_json(201, other)).unwrap();
        let mut after = drain(&app, &mut model, &mut login);
        assert!(model.device_id.is_none() && model.walk_up_locks.is_empty());
        // The first user's device, then session, end on the server; their credentials go.
        let cmd = &mut after[0];
        let mut device = take_http(cmd);
        assert_eq!(device.operation.method, "DELETE");
        assert!(device.operation.url.ends_with("/devices/dev-of-u1"));
        assert!(cmd.effects().any(|e| matches!(e, Effect::KeyValue(r)
            if matches!(&r.operation, crux_kv::KeyValueOperation::Delete { key }
                if *key == format!("credential/{ORG_A}")))));
        assert!(
            !cmd.effects().any(|e| matches!(e, Effect::Http(r)
                if r.operation.url.ends_with("/logins/current"))),
            "the session ends only after the device"
        );
        device
            .resolve(ok_json(204, serde_json::json!(null)))
            .unwrap();
        let session = take_http_matching(cmd, "/logins/current");
        assert_eq!(session.operation.method, "DELETE");
    }

    #[test]
    fn login_stores_session_selects_first_org_and_syncs() {
        let app = Keyway;
        let mut model = started_model();
        let mut cmd = app.update(
            Event::Login {
                email: "ada@example.com".into(),
                password: "pw".into(),
            },
            &mut model,
        );
        assert!(app.view(&model).auth_busy);
        let mut http = take_http(&mut cmd);
        assert_eq!(http.operation.method, "POST");
        assert!(http.operation.url.ends_with("/api/v1/logins"));
        let body: serde_json::Value = serde_json::from_slice(&http.operation.body).unwrap();
        assert_eq!(body["email"], "ada@example.com");
        http.resolve(ok_json(201, login_json())).unwrap();
        let event = cmd.events().next().unwrap();
        let mut cmd = app.update(event, &mut model);
        let session = model.session.as_ref().unwrap();
        assert_eq!(session.current_org.as_deref(), Some(ORG_A));
        assert_eq!(session.memberships.len(), 2);
        let effects: Vec<Effect> = cmd.effects().collect();
        assert!(effects.iter().any(|e| matches!(e, Effect::KeyValue(r)
            if matches!(&r.operation, crux_kv::KeyValueOperation::Set { key, .. } if key == "session"))));
        // Sync: places list and device key registration start.
        assert!(
            effects
                .iter()
                .any(|e| matches!(e, Effect::Http(r) if r.operation.url.contains("/places")))
        );
        assert!(effects.iter().any(|e| matches!(e, Effect::Signing(_))));
        let v = app.view(&model);
        assert!(v.signed_in);
        assert_eq!(v.orgs.len(), 2);
        assert!(v.orgs[0].selected);
    }

    #[test]
    fn wrong_password_shows_reason() {
        let app = Keyway;
        let mut model = started_model();
        let mut cmd = app.update(
            Event::Login {
                email: "a@b".into(),
                password: "x".into(),
            },
            &mut model,
        );
        take_http(&mut cmd)
            .resolve(error_json(401, "unauthorized", "bad credentials"))
            .unwrap();
        let ev = cmd.events().next().unwrap();
        let _ = app.update(ev, &mut model);
        let v = app.view(&model);
        assert!(!v.signed_in);
        assert_eq!(v.auth_error.as_deref(), Some("wrong email or password"));
    }

    #[test]
    fn restore_from_storage_shows_cache_then_refreshes() {
        let app = Keyway;
        let mut model = Model::default();
        let mut cmd = app.update(
            Event::Start {
                api_base: BASE.into(),
            },
            &mut model,
        );
        let session = signed_in_session();
        resolve_kv_get(
            &mut cmd,
            "session",
            Some(serde_json::to_vec(&session).unwrap()),
        );
        resolve_kv_get(&mut cmd, "device", Some(b"\"dev-1\"".to_vec()));
        resolve_kv_get(&mut cmd, "walk_up", None);
        resolve_kv_get(&mut cmd, &format!("credential/{ORG_A}"), None);
        let cache = places::DirectoryCache {
            places: vec![place()],
            locks: vec![lock()],
            fetched_at_ms: 5,
        };
        resolve_kv_get(
            &mut cmd,
            &format!("cache/{ORG_A}"),
            Some(serde_json::to_vec(&cache).unwrap()),
        );
        let ev = cmd.events().next().unwrap();
        let mut cmd = app.update(ev, &mut model);
        let v = app.view(&model);
        assert!(v.signed_in);
        assert_eq!(v.places.len(), 1);
        assert!(v.stale, "cached list is stale until the network answers");
        // Registered device: credentials are fetched directly.
        let effects: Vec<Effect> = cmd.effects().collect();
        assert!(effects.iter().any(|e| matches!(e, Effect::Http(r)
            if r.operation.url.ends_with("/devices/dev-1/credentials"))));
    }

    #[test]
    fn logout_revokes_device_and_forgets_everything() {
        let app = Keyway;
        let mut model = signed_in_model();
        model.device_id = Some("dev-1".into());
        model.credential = Some(held_credential(u64::MAX / 2));
        let mut cmd = app.update(Event::Logout, &mut model);
        // The device is deleted first (that needs the session), then the session.
        let mut device = take_http(&mut cmd);
        assert_eq!(
            (
                device.operation.method.as_str(),
                device.operation.url.as_str()
            ),
            ("DELETE", format!("{BASE}/api/v1/devices/dev-1").as_str())
        );
        let effects: Vec<Effect> = cmd.effects().collect();
        device
            .resolve(ok_json(204, serde_json::json!(null)))
            .unwrap();
        let session = take_http(&mut cmd);
        assert_eq!(
            (
                session.operation.method.as_str(),
                session.operation.url.as_str()
            ),
            ("DELETE", format!("{BASE}/api/v1/logins/current").as_str())
        );
        let deleted = deleted_keys(effects);
        assert!(deleted.contains(&"session".to_owned()));
        assert!(deleted.contains(&format!("credential/{ORG_A}")));
        assert!(model.session.is_none() && model.credential.is_none() && model.device_id.is_none());
        assert!(!app.view(&model).signed_in);
    }

    #[test]
    fn select_org_switches_and_ignores_foreign_orgs() {
        let app = Keyway;
        let mut model = signed_in_model();
        let _ = app.update(Event::SelectOrg { org: "nope".into() }, &mut model);
        assert_eq!(model.current_org(), Some(ORG_A));
        let mut cmd = app.update(Event::SelectOrg { org: ORG_B.into() }, &mut model);
        assert_eq!(model.current_org(), Some(ORG_B));
        resolve_kv_get(&mut cmd, &format!("credential/{ORG_B}"), None);
        resolve_kv_get(&mut cmd, &format!("cache/{ORG_B}"), None);
        let effects: Vec<Effect> = cmd.effects().collect();
        assert!(effects.iter().any(|e| matches!(e, Effect::Http(r)
            if r.operation.url.contains(&format!("/orgs/{ORG_B}/places")))));
    }
}
