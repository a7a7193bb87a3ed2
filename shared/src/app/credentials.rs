//! The device key and offline credentials: register the device public key once, fetch a
//! credential for the current organization, refresh it before expiry (a timer at the
//! server's `refresh_after`), and drop it on logout or revocation.

use super::api::{ApiCall, ApiError, ApiResult, CredentialResponse, DeviceCreated};
use super::{Cmd, Event, Model, keys, kv_delete, kv_put};
use crate::effects::{SigningOperation, SigningOutput};
use base64::Engine;
use crux_core::Command;
use crux_core::render::render;
use keyway_protocol::Reason;
use keyway_protocol::credential::SignedCredential;
use serde::{Deserialize, Serialize};
use std::time::{Duration, UNIX_EPOCH};

/// A credential held for offline (BLE) unlocks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldCredential {
    pub org: String,
    #[serde(flatten)]
    pub response: CredentialResponse,
}

impl HeldCredential {
    pub fn bytes(&self) -> Option<Vec<u8>> {
        base64::engine::general_purpose::STANDARD
            .decode(&self.response.credential)
            .ok()
    }

    /// Decoded claims (the door verifies the signature; the phone only needs scope and times).
    pub fn decoded(&self) -> Option<SignedCredential> {
        SignedCredential::decode(&self.bytes()?).ok()
    }

    /// Whether the credential was issued to `user_id` (a stored one may be someone else's
    /// from before a sign-in).
    pub fn issued_to(&self, user_id: &str) -> bool {
        let holder = self.decoded().map(|c| c.credential.holder.id);
        holder.is_some() && holder == keyway_protocol::Id::parse(user_id)
    }

    /// Whether this credential would be accepted for `lock` at `now_s`, and if not, why.
    pub fn check(&self, now_s: u64, lock: &str, place: &str) -> Result<(), Reason> {
        let cred = self.decoded().ok_or(Reason::MalformedFrame)?;
        let lock = keyway_protocol::Id::parse(lock).ok_or(Reason::WrongLock)?;
        let place = keyway_protocol::Id::parse(place);
        cred.credential.check_access(now_s, lock, place)
    }
}

/// Registers the device key if needed, then fetches this organization's credential.
pub fn ensure(model: &mut Model) -> Cmd {
    let (Some(token), Some(org)) = (model.token(), model.current_org()) else {
        return Command::done();
    };
    let (base, token, org) = (model.api_base.clone(), token.to_owned(), org.to_owned());
    if model.credential_busy {
        return Command::done();
    }
    model.credential_busy = true;
    let device_id = model.device_id.clone();
    let user = model
        .session
        .as_ref()
        .map(|s| s.user.id.clone())
        .unwrap_or_default();
    let epoch = model.epoch;
    Command::new(move |ctx| async move {
        // Registration failures count as `registered`: a 404 then is not about a stale id.
        let failed = |org, result| Event::CredentialFetched {
            epoch,
            org,
            registered: true,
            result,
        };
        let (device_id, registered) = match device_id {
            Some(id) => (id, false),
            None => {
                let key = match ctx.request_from_shell(SigningOperation::PublicKey).await {
                    SigningOutput::PublicKey { key } => key,
                    other => {
                        let message = format!("device key unavailable: {other:?}");
                        ctx.send_event(failed(org, Err(ApiError::Decode { message })));
                        return;
                    }
                };
                let created = ApiCall::new("POST", &base, "/devices")
                    .token(&token)
                    .json(serde_json::json!({"public_key": hex::encode(key), "name": "Keyway app"}))
                    .send::<DeviceCreated>()
                    .into_future(ctx.clone())
                    .await;
                match created {
                    Ok(d) => {
                        ctx.send_event(Event::DeviceRegistered {
                            user,
                            id: d.id.clone(),
                        });
                        (d.id, true)
                    }
                    Err(e) => {
                        ctx.send_event(failed(org, Err(e)));
                        return;
                    }
                }
            }
        };
        let result = ApiCall::new("POST", &base, &format!("/devices/{device_id}/credentials"))
            .token(&token)
            .json(serde_json::json!({ "org": org }))
            .send::<CredentialResponse>()
            .into_future(ctx.clone())
            .await;
        ctx.send_event(Event::CredentialFetched {
            epoch,
            org,
            registered,
            result,
        });
    })
}

/// A device registered for `user`: kept while that user is signed in (an organization
/// switch does not change whose device it is).
pub fn device_registered(model: &mut Model, user: String, id: String) -> Cmd {
    if model.session.as_ref().is_none_or(|s| s.user.id != user) {
        return Command::done();
    }
    model.device_id = Some(id.clone());
    kv_put(keys::DEVICE, &id)
}

pub fn loaded(model: &mut Model, held: Option<HeldCredential>) -> Cmd {
    if model.credential.is_none()
        && let Some(h) = held
        && model.current_org() == Some(h.org.as_str())
        && model
            .session
            .as_ref()
            .is_some_and(|s| h.issued_to(&s.user.id))
    {
        model.credential = Some(h);
    }
    render()
}

pub fn fetched(
    model: &mut Model,
    org: String,
    registered: bool,
    result: ApiResult<CredentialResponse>,
) -> Cmd {
    model.credential_busy = false;
    if model.current_org() != Some(org.as_str()) {
        return Command::done();
    }
    match result {
        Ok(response) => {
            let held = HeldCredential {
                org: org.clone(),
                response,
            };
            model.credential = Some(held.clone());
            let epoch = model.epoch;
            Command::all([
                kv_put(keys::credential(&org), &held),
                // The refresh is timed from the phone's clock: see `schedule_refresh`.
                crux_time::Time::now().then_send(move |t| Event::CredentialRefreshAt {
                    epoch,
                    now_ms: t
                        .duration_since(UNIX_EPOCH)
                        .map(|d| d.as_millis() as u64)
                        .unwrap_or(0),
                }),
                render(),
            ])
        }
        Err(e) if e.is_unauthorized() => {
            super::session::logout_local(model, "your session expired; sign in again")
        }
        // A device id from before (deleted on the server, or registered to whoever was signed
        // in before): forget it and its credential, and register this device again. (The
        // server says which resource it did not find; an organization the user left is not
        // a reason to register again.)
        Err(ApiError::Server {
            status: 404,
            message,
            ..
        }) if !registered && message == "device not found" => {
            model.device_id = None;
            model.credential = None;
            Command::all([
                kv_delete(keys::DEVICE),
                kv_delete(keys::credential(&org)),
                ensure(model),
                render(),
            ])
        }
        Err(e) if revoked(&e) => {
            // The server no longer vouches for this device here: stop offering BLE unlocks.
            model.credential = None;
            Command::all([kv_delete(keys::credential(&org)), render()])
        }
        // Offline or a server hiccup: keep what we hold until it expires, and try again soon.
        Err(_) => Command::all([refresh_after(model, org, RETRY_AFTER), render()]),
    }
}

/// Retry delay for a credential fetch that failed for a reason other than revocation, and
/// the shortest time between two fetches.
pub const RETRY_AFTER: Duration = Duration::from_secs(60);

/// Sets the refresh timer of the held credential at its `refresh_after` (no later than its
/// expiry), but never sooner than [`RETRY_AFTER`]: a refresh time already past (a phone clock
/// ahead of the server's) must not fetch in a loop and fill the server's per-user cap.
pub fn schedule_refresh(model: &mut Model, now_ms: u64) -> Cmd {
    let Some(held) = &model.credential else {
        return Command::done();
    };
    let due_s = held.response.refresh_after.min(held.response.not_after);
    // Timed on the server's clock when it says when it issued the credential (a phone clock
    // hours ahead would otherwise refresh every minute), else on the phone's.
    let now_s = held.response.issued_at.unwrap_or(now_ms / 1000);
    let delay = Duration::from_secs(due_s.saturating_sub(now_s)).max(RETRY_AFTER);
    let org = held.org.clone();
    refresh_after(model, org, delay)
}

fn refresh_after(model: &mut Model, org: String, delay: Duration) -> Cmd {
    let (timer, handle) = crux_time::Time::notify_after(delay);
    if let Some(old) = model.refresh_timer.replace(handle) {
        old.clear();
    }
    let epoch = model.epoch;
    timer.then_send(move |outcome| match outcome {
        crux_time::TimerOutcome::Completed(_) => Event::CredentialRefreshDue { epoch, org },
        crux_time::TimerOutcome::Cleared => Event::Noop,
    })
}

fn revoked(e: &ApiError) -> bool {
    matches!(e.reason(), Some(Reason::Revoked | Reason::NoAccess))
        || matches!(
            e,
            ApiError::Server {
                status: 403 | 404,
                ..
            }
        )
}

pub fn refresh_due(model: &mut Model, org: String) -> Cmd {
    model.refresh_timer = None;
    if model.current_org() != Some(org.as_str()) {
        return Command::done();
    }
    ensure(model)
}

/// Drops the held credential after a door said it is revoked.
pub fn drop_revoked(model: &mut Model) -> Cmd {
    match model.credential.take() {
        Some(h) => kv_delete(keys::credential(&h.org)),
        None => Command::done(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::testkit::*;
    use crate::app::{Effect, Keyway};
    use crux_core::App;

    #[test]
    fn registers_device_key_then_fetches_credential_and_schedules_refresh() {
        let app = Keyway;
        let mut model = signed_in_model();
        let mut cmd = ensure(&mut model);
        let mut sign = take_signing(&mut cmd);
        assert_eq!(sign.operation, SigningOperation::PublicKey);
        sign.resolve(SigningOutput::PublicKey { key: vec![4; 65] })
            .unwrap();
        let mut reg = take_http(&mut cmd);
        assert!(reg.operation.url.ends_with("/api/v1/devices"));
        let body: serde_json::Value = serde_json::from_slice(&reg.operation.body).unwrap();
        assert_eq!(body["public_key"], hex::encode([4u8; 65]));
        reg.resolve(ok_json(201, serde_json::json!({"id": "dev-9"})))
            .unwrap();
        let mut fetch = take_http(&mut cmd);
        assert!(fetch.operation.url.ends_with("/devices/dev-9/credentials"));
        fetch
            .resolve(ok_json(200, credential_json(2_000_000_000)))
            .unwrap();
        let events: Vec<Event> = cmd.events().collect();
        assert!(matches!(&events[0], Event::DeviceRegistered { id, .. } if id == "dev-9"));
        let mut timed = None;
        for ev in events {
            let mut cmd = app.update(ev, &mut model);
            if model.credential.is_some() && timed.is_none() {
                // The refresh is timed from now: refresh_after is an hour before not_after.
                resolve_now(&mut cmd, 2_000_000_000 - 7_200);
                let mut next = drain(&app, &mut model, &mut cmd);
                timed = Some(refresh_delay(&mut next[0]));
            }
        }
        assert_eq!(timed, Some(Some(3_600)));
        assert_eq!(model.device_id.as_deref(), Some("dev-9"));
        assert_eq!(
            model.credential.as_ref().unwrap().response.not_after,
            2_000_000_000
        );
        assert!(app.view(&model).credential.is_some());
    }

    /// The answer to a credential fetch for organization A in the model's current epoch.
    fn fetched_for(
        model: &Model,
        registered: bool,
        result: ApiResult<CredentialResponse>,
    ) -> Event {
        Event::CredentialFetched {
            epoch: model.epoch,
            org: ORG_A.into(),
            registered,
            result,
        }
    }

    /// The delay of the refresh timer `cmd` sets, in seconds.
    fn refresh_delay(cmd: &mut Cmd) -> Option<u64> {
        cmd.effects().find_map(|e| match e {
            Effect::Time(r) => match r.operation {
                crux_time::TimeRequest::NotifyAfter { duration, .. } => {
                    Some(std::time::Duration::from(duration).as_secs())
                }
                _ => None,
            },
            _ => None,
        })
    }

    /// A credential arrives whose `refresh_after` is `refresh_after`; returns the refresh
    /// timer's delay when the phone's clock reads `now_s`.
    fn refresh_timer_for(refresh_after: u64, now_s: u64) -> Option<u64> {
        let app = Keyway;
        let mut model = signed_in_model();
        let mut response = credential_json(2_000_000_000);
        response["refresh_after"] = refresh_after.into();
        let mut cmd = app.update(
            fetched_for(&model, false, Ok(serde_json::from_value(response).unwrap())),
            &mut model,
        );
        resolve_now(&mut cmd, now_s);
        let mut next = drain(&app, &mut model, &mut cmd);
        refresh_delay(&mut next[0])
    }

    #[test]
    fn a_refresh_time_past_or_absurd_neither_loops_nor_panics() {
        // Already past (the phone's clock ahead of the server's): not at once, after a minute.
        assert_eq!(refresh_timer_for(NOW_S - 600, NOW_S), Some(60));
        // Beyond any instant: capped by the credential's own expiry, no overflow.
        assert_eq!(
            refresh_timer_for(u64::MAX, NOW_S),
            Some(2_000_000_000 - NOW_S)
        );
    }

    #[test]
    fn the_refresh_is_timed_on_the_servers_clock_when_it_says_when_it_issued() {
        // The phone's clock is 13 h ahead; the server issued at NOW_S, refresh in 6 h.
        let app = Keyway;
        let mut model = signed_in_model();
        let mut response = credential_json(NOW_S + 43_200);
        response["refresh_after"] = (NOW_S + 21_600).into();
        response["issued_at"] = NOW_S.into();
        let mut cmd = app.update(
            fetched_for(&model, false, Ok(serde_json::from_value(response).unwrap())),
            &mut model,
        );
        resolve_now(&mut cmd, NOW_S + 46_800);
        let mut next = drain(&app, &mut model, &mut cmd);
        assert_eq!(refresh_delay(&mut next[0]), Some(21_600));
    }

    #[test]
    fn a_stored_credential_of_someone_else_is_not_taken() {
        let app = Keyway;
        let held = held_credential(NOW_S + 3_600);
        let mut model = signed_in_model();
        let _ = app.update(
            Event::CredentialLoaded {
                epoch: model.epoch,
                held: Some(held.clone()),
            },
            &mut model,
        );
        assert!(model.credential.is_none(), "issued to another holder");
        let holder = held.decoded().unwrap().credential.holder.id;
        model.session.as_mut().unwrap().user.id = holder.to_uuid_string();
        let _ = app.update(
            Event::CredentialLoaded {
                epoch: model.epoch,
                held: Some(held),
            },
            &mut model,
        );
        assert!(model.credential.is_some());
    }

    #[test]
    fn a_fetch_answered_after_sign_out_and_a_new_sign_in_is_dropped() {
        let app = Keyway;
        let mut model = signed_in_model();
        model.device_id = Some("dev-1".into());
        let mut asked = ensure(&mut model);
        let mut fetch = take_http(&mut asked);
        let _ = app.update(Event::Logout, &mut model);
        let mut login = app.update(
            Event::Login {
                email: "ada@example.com".into(),
                password: "pw".into(),
            },
            &mut model,
        );
        take_http(&mut login)
            .resolve(ok_json(201, login_json()))
            .unwrap();
        let _ = drain(&app, &mut model, &mut login);
        assert!(model.credential_busy, "the new session asks for its own");
        // The first session's answer lands now: not stored, and the new fetch still counts.
        fetch
            .resolve(ok_json(200, credential_json(2_000_000_000)))
            .unwrap();
        let mut follow = drain(&app, &mut model, &mut asked);
        assert!(model.credential.is_none());
        assert!(model.credential_busy);
        assert!(follow.iter_mut().all(|c| c.effects().next().is_none()));
    }

    #[test]
    fn switching_organization_mid_fetch_fetches_for_the_new_one() {
        let app = Keyway;
        let mut model = signed_in_model();
        model.device_id = Some("dev-1".into());
        let mut asked = ensure(&mut model);
        let mut fetch = take_http(&mut asked);
        let mut switched = app.update(Event::SelectOrg { org: ORG_B.into() }, &mut model);
        // Storage has nothing for B; then B's own fetch goes out.
        resolve_kv_get(&mut switched, &format!("credential/{ORG_B}"), None);
        resolve_kv_get(&mut switched, &format!("cache/{ORG_B}"), None);
        let _ = drain(&app, &mut model, &mut switched);
        let b_fetch = take_http_matching(&mut switched, "/credentials");
        let body: serde_json::Value = serde_json::from_slice(&b_fetch.operation.body).unwrap();
        assert_eq!(body["org"], ORG_B);
        // A's answer is dropped.
        fetch
            .resolve(ok_json(200, credential_json(2_000_000_000)))
            .unwrap();
        let _ = drain(&app, &mut model, &mut asked);
        assert!(model.credential.is_none());
    }

    #[test]
    fn a_device_id_the_server_does_not_know_is_registered_again() {
        let app = Keyway;
        let mut model = signed_in_model();
        model.device_id = Some("someone-elses".into());
        model.credential = Some(held_credential(2_000_000_000));
        let mut cmd = app.update(
            fetched_for(
                &model,
                false,
                Err(ApiError::Server {
                    status: 404,
                    code: "not_found".into(),
                    message: "device not found".into(),
                }),
            ),
            &mut model,
        );
        assert!(model.device_id.is_none() && model.credential.is_none());
        assert_eq!(
            take_signing(&mut cmd).operation,
            SigningOperation::PublicKey,
            "registers the device key again"
        );
        // A 404 right after registering is about the organization: no second registration.
        let mut cmd = app.update(
            fetched_for(
                &model,
                true,
                Err(ApiError::Server {
                    status: 404,
                    code: "not_found".into(),
                    message: "organization not found".into(),
                }),
            ),
            &mut model,
        );
        assert!(
            !cmd.effects()
                .any(|e| matches!(e, Effect::Signing(_) | Effect::Http(_)))
        );
    }

    #[test]
    fn refresh_due_refetches_with_known_device() {
        let app = Keyway;
        let mut model = signed_in_model();
        model.device_id = Some("dev-1".into());
        let mut cmd = app.update(
            Event::CredentialRefreshDue {
                epoch: model.epoch,
                org: ORG_A.into(),
            },
            &mut model,
        );
        let req = take_http(&mut cmd);
        assert!(req.operation.url.ends_with("/devices/dev-1/credentials"));
    }

    #[test]
    fn revocation_drops_the_credential() {
        let app = Keyway;
        let mut model = signed_in_model();
        model.device_id = Some("dev-1".into());
        model.credential = Some(held_credential(2_000_000_000));
        let mut cmd = app.update(
            fetched_for(
                &model,
                false,
                Err(ApiError::Server {
                    status: 403,
                    code: "access_revoked".into(),
                    message: String::new(),
                }),
            ),
            &mut model,
        );
        assert!(model.credential.is_none());
        assert!(cmd.effects().any(|e| matches!(e, Effect::KeyValue(r)
            if matches!(&r.operation, crux_kv::KeyValueOperation::Delete { key } if *key == format!("credential/{ORG_A}")))));
        // Offline errors keep the credential and retry later.
        model.credential = Some(held_credential(2_000_000_000));
        let mut cmd = app.update(
            fetched_for(
                &model,
                false,
                Err(ApiError::Network {
                    message: "down".into(),
                }),
            ),
            &mut model,
        );
        assert!(model.credential.is_some());
        assert!(cmd.effects().any(|e| matches!(e, Effect::Time(r)
            if matches!(r.operation, crux_time::TimeRequest::NotifyAfter { .. }))));
    }
}
