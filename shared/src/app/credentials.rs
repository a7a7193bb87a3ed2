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
    Command::new(|ctx| async move {
        let device_id = match device_id {
            Some(id) => id,
            None => {
                let key = match ctx.request_from_shell(SigningOperation::PublicKey).await {
                    SigningOutput::PublicKey { key } => key,
                    other => {
                        let message = format!("device key unavailable: {other:?}");
                        ctx.send_event(Event::CredentialFetched {
                            org,
                            result: Err(ApiError::Decode { message }),
                        });
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
                        ctx.send_event(Event::DeviceRegistered { id: d.id.clone() });
                        d.id
                    }
                    Err(e) => {
                        ctx.send_event(Event::CredentialFetched {
                            org,
                            result: Err(e),
                        });
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
        ctx.send_event(Event::CredentialFetched { org, result });
    })
}

pub fn device_registered(model: &mut Model, id: String) -> Cmd {
    model.device_id = Some(id.clone());
    kv_put(keys::DEVICE, &id)
}

pub fn loaded(model: &mut Model, held: Option<HeldCredential>) -> Cmd {
    if model.credential.is_none()
        && let Some(h) = held
        && model.current_org() == Some(h.org.as_str())
    {
        model.credential = Some(h);
    }
    render()
}

pub fn fetched(model: &mut Model, org: String, result: ApiResult<CredentialResponse>) -> Cmd {
    model.credential_busy = false;
    if model.current_org() != Some(org.as_str()) {
        return Command::done();
    }
    match result {
        Ok(response) => {
            let at = UNIX_EPOCH + Duration::from_secs(response.refresh_after);
            let held = HeldCredential {
                org: org.clone(),
                response,
            };
            model.credential = Some(held.clone());
            let (timer, handle) = crux_time::Time::notify_at(at);
            if let Some(old) = model.refresh_timer.replace(handle) {
                old.clear();
            }
            let org2 = org.clone();
            Command::all([
                kv_put(keys::credential(&org), &held),
                timer.then_send(move |outcome| match outcome {
                    crux_time::TimerOutcome::Completed(_) => {
                        Event::CredentialRefreshDue { org: org2 }
                    }
                    crux_time::TimerOutcome::Cleared => Event::Noop,
                }),
                render(),
            ])
        }
        Err(e) if revoked(&e) => {
            // The server no longer vouches for this device here: stop offering BLE unlocks.
            model.credential = None;
            if matches!(e, ApiError::Server { status: 404, .. }) {
                model.device_id = None; // unknown device: register again next time
                return Command::all([
                    kv_delete(keys::credential(&org)),
                    kv_delete(keys::DEVICE),
                    render(),
                ]);
            }
            Command::all([kv_delete(keys::credential(&org)), render()])
        }
        // Offline or a server hiccup: keep what we hold until it expires, and try again soon.
        Err(_) => {
            let (timer, handle) = crux_time::Time::notify_after(RETRY_AFTER);
            if let Some(old) = model.refresh_timer.replace(handle) {
                old.clear();
            }
            Command::all([
                timer.then_send(move |outcome| match outcome {
                    crux_time::TimerOutcome::Completed(_) => Event::CredentialRefreshDue { org },
                    crux_time::TimerOutcome::Cleared => Event::Noop,
                }),
                render(),
            ])
        }
    }
}

/// Retry delay for a credential fetch that failed for a reason other than revocation.
pub const RETRY_AFTER: Duration = Duration::from_secs(60);

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
        assert!(matches!(&events[0], Event::DeviceRegistered { id } if id == "dev-9"));
        for ev in events {
            let mut cmd = app.update(ev, &mut model);
            let effects: Vec<Effect> = cmd.effects().collect();
            if model.credential.is_some() {
                // Refresh timer at refresh_after.
                assert!(effects.iter().any(|e| matches!(e, Effect::Time(r)
                    if matches!(r.operation, crux_time::TimeRequest::NotifyAt { .. }))));
            }
        }
        assert_eq!(model.device_id.as_deref(), Some("dev-9"));
        assert_eq!(
            model.credential.as_ref().unwrap().response.not_after,
            2_000_000_000
        );
        assert!(app.view(&model).credential.is_some());
    }

    #[test]
    fn refresh_due_refetches_with_known_device() {
        let app = Keyway;
        let mut model = signed_in_model();
        model.device_id = Some("dev-1".into());
        let mut cmd = app.update(
            Event::CredentialRefreshDue { org: ORG_A.into() },
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
            Event::CredentialFetched {
                org: ORG_A.into(),
                result: Err(ApiError::Server {
                    status: 403,
                    code: "access_revoked".into(),
                    message: String::new(),
                }),
            },
            &mut model,
        );
        assert!(model.credential.is_none());
        assert!(cmd.effects().any(|e| matches!(e, Effect::KeyValue(r)
            if matches!(&r.operation, crux_kv::KeyValueOperation::Delete { key } if *key == format!("credential/{ORG_A}")))));
        // Offline errors keep the credential and retry later.
        model.credential = Some(held_credential(2_000_000_000));
        let mut cmd = app.update(
            Event::CredentialFetched {
                org: ORG_A.into(),
                result: Err(ApiError::Network {
                    message: "down".into(),
                }),
            },
            &mut model,
        );
        assert!(model.credential.is_some());
        assert!(cmd.effects().any(|e| matches!(e, Effect::Time(r)
            if matches!(r.operation, crux_time::TimeRequest::NotifyAfter { .. }))));
    }
}
