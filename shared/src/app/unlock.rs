//! Tap (and walk-up) unlock: pick a route, run it, fall back once, explain every denial.
//!
//! Route choice: BLE when the door's advertisement was heard within [`HEARD_FRESH_MS`] and a
//! credential valid for this lock right now is held; otherwise the cloud, sending the door's
//! rotating proximity code when it was heard recently. On failure the other route is tried
//! once: BLE → cloud on a transport failure or a denial the server may see differently
//! (stale credential or door state); cloud → BLE when the network or the door's link is down.
//! Walk-up never falls back to the cloud: the door's own RSSI check is part of its safety.

use super::api::{ApiCall, ApiError, ApiResult, UnlockResponse};
use super::{Cmd, Event, Model, credentials};
use crate::effects::{BleOperation, BleOutput, SigningOperation, SigningOutput};
use crux_core::Command;
use crux_core::command::CommandContext;
use crux_core::render::render;
use keyway_protocol::handshake::{Action, HandshakeError, Initiator};
use keyway_protocol::{Id, Reason, Signature, TrustedKeys};
use serde::{Deserialize, Serialize};

/// A door heard this recently is considered in BLE range.
pub const HEARD_FRESH_MS: u64 = 10_000;
/// A proximity code this old is still worth sending (the server accepts adjacent 30 s steps).
pub const PROOF_FRESH_MS: u64 = 30_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, uniffi::Enum)]
#[serde(rename_all = "snake_case")]
pub enum Route {
    Ble,
    Cloud,
}

/// How one route ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteOutcome {
    Granted {
        duplicate: bool,
    },
    /// The door or the server refused, with the shared reason.
    Denied(Reason),
    /// The route did not complete (radio, connection, network, local key) before the
    /// command was sent: nothing can have happened at the door.
    Failed(String),
    /// The command reached the door, or may have, but no verdict came back (link lost or
    /// answer garbled after AUTH, cloud timeout): the door may have opened. Never retried on
    /// another route (at-most-once actuation).
    Unconfirmed(String),
    /// The server no longer accepts the session (401).
    SessionExpired,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnlockStatus {
    Checking,
    InProgress(Route),
    Granted {
        route: Route,
        duplicate: bool,
    },
    Denied {
        route: Option<Route>,
        reason: Reason,
    },
    /// Sent, but the door never confirmed; it may or may not have opened.
    Unconfirmed {
        route: Route,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnlockAttempt {
    pub lock: String,
    pub action: Action,
    /// Same across the fallback and the retry, so logs correlate; the door dedupes on it
    /// (with the credential, over BLE), the server on it as the Idempotency-Key.
    pub command_id: Id,
    pub now_ms: u64,
    pub tried: Vec<Route>,
    pub status: UnlockStatus,
    /// The door's refusal when the attempt went on to the cloud: the answer shown if the
    /// cloud cannot be reached (more use than "no network").
    pub door_said: Option<Reason>,
    /// How the cloud route ended when BLE runs after it: shown if BLE no longer applies when
    /// it is checked again, or cannot reach the door.
    pub cloud_said: Option<UnlockStatus>,
    /// BLE sent AUTH once and got no verdict: the one retry goes by BLE again with the same
    /// command id (a door that ran it answers "granted, duplicate" and does not open again),
    /// never by the cloud.
    pub ble_unconfirmed: bool,
    /// The credential the first BLE run presented, presented again by the retry.
    pub ble_credential: Option<Vec<u8>>,
}

impl UnlockAttempt {
    pub fn busy(&self) -> bool {
        matches!(
            self.status,
            UnlockStatus::Checking | UnlockStatus::InProgress(_)
        )
    }
}

/// Everything a BLE unlock needs, gathered from the model.
#[derive(Debug, Clone)]
pub struct BlePlan {
    pub peer: String,
    pub lock: Id,
    pub credential: Vec<u8>,
    pub trusted: TrustedKeys,
}

fn new_command_id() -> Id {
    Id::random(&ring::rand::SystemRandom::new()).unwrap_or_default()
}

pub fn tap(model: &mut Model, lock: String) -> Cmd {
    if model.unlock.as_ref().is_some_and(UnlockAttempt::busy) {
        return Command::done();
    }
    let mut attempt = UnlockAttempt {
        lock: lock.clone(),
        action: Action::Unlock,
        command_id: new_command_id(),
        now_ms: 0,
        tried: vec![],
        status: UnlockStatus::Checking,
        door_said: None,
        cloud_said: None,
        ble_unconfirmed: false,
        ble_credential: None,
    };
    if model.session.is_none() || model.lock(&lock).is_none() {
        attempt.status = UnlockStatus::Denied {
            route: None,
            reason: Reason::NoAccess,
        };
        model.unlock = Some(attempt);
        return render();
    }
    let command_id = attempt.command_id;
    model.unlock = Some(attempt);
    Command::all([render(), unlock_at(command_id)])
}

/// Asks for the time, for the route choice of attempt `command_id`.
fn unlock_at(command_id: Id) -> Cmd {
    crux_time::Time::now().then_send(move |t| Event::UnlockAt {
        command_id,
        now_ms: t
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0),
    })
}

/// Closes the unlock panel. Not while the attempt runs: its answer (granted, or "may have
/// opened") is what the person needs to see.
pub fn dismiss(model: &mut Model) -> Cmd {
    if model.unlock.as_ref().is_some_and(UnlockAttempt::busy) {
        return Command::done();
    }
    model.unlock = None;
    render()
}

/// Whether BLE can be used for `lock` at `now_ms`, and if not, why.
pub fn ble_plan(model: &Model, lock: &str, now_ms: u64) -> Result<BlePlan, Reason> {
    let l = model.lock(lock).ok_or(Reason::NoAccess)?;
    let heard = model
        .heard
        .get(&l.short_id.to_ascii_lowercase())
        .filter(|h| now_ms.saturating_sub(h.at_ms) <= HEARD_FRESH_MS)
        .ok_or(Reason::TooFar)?;
    let held = model.credential.as_ref().ok_or(Reason::NoAccess)?;
    if model.current_org() != Some(held.org.as_str()) {
        return Err(Reason::WrongOrganization);
    }
    held.check(now_ms / 1000, &l.id, &l.place_id)?;
    Ok(BlePlan {
        peer: heard.peer.clone(),
        lock: Id::parse(&l.id).ok_or(Reason::NoAccess)?,
        credential: held.bytes().ok_or(Reason::MalformedFrame)?,
        trusted: held.response.trusted_keys.clone(),
    })
}

/// A position older than this says nothing about where the phone is now.
const LOCATION_FRESH_MS: u64 = 120_000;

fn fresh_location(model: &Model, now_ms: u64) -> Option<super::Location> {
    model.location.filter(|fix| {
        fix.fix_ms <= now_ms + 5_000 && now_ms.saturating_sub(fix.fix_ms) <= LOCATION_FRESH_MS
    })
}

fn proximity_proof(model: &Model, lock: &str, now_ms: u64) -> Option<u32> {
    let l = model.lock(lock)?;
    model
        .heard
        .get(&l.short_id.to_ascii_lowercase())
        .filter(|h| now_ms.saturating_sub(h.at_ms) <= PROOF_FRESH_MS)
        .map(|h| h.proximity_code)
}

/// The time has come for attempt `command_id`: choose its first route, or, when the cloud
/// failed before, whether BLE still applies now (the door heard recently, the credential
/// valid), since a cloud call may have taken many seconds.
pub fn decide(model: &mut Model, command_id: Id, now_ms: u64) -> Cmd {
    model.clock_ms = model.clock_ms.max(now_ms);
    let Some(attempt) = model.unlock.as_mut() else {
        return Command::done();
    };
    if attempt.command_id != command_id || attempt.status != UnlockStatus::Checking {
        return Command::done();
    }
    attempt.now_ms = now_ms;
    let lock = attempt.lock.clone();
    let retry = attempt.ble_unconfirmed;
    let ble = ble_plan(model, &lock, now_ms).is_ok();
    match model.unlock.as_ref().and_then(|a| a.cloud_said.clone()) {
        _ if retry && ble => run_route(model, Route::Ble),
        _ if retry => finish(model, UnlockStatus::Unconfirmed { route: Route::Ble }),
        Some(_) if ble => run_route(model, Route::Ble),
        Some(cloud_said) => finish(model, cloud_said),
        None if ble => run_route(model, Route::Ble),
        None => run_route(model, Route::Cloud),
    }
}

/// Starts `route` for the current attempt.
fn run_route(model: &mut Model, route: Route) -> Cmd {
    let Some(attempt) = model.unlock.clone() else {
        return Command::done();
    };
    let cmd = match route {
        Route::Ble => match ble_plan(model, &attempt.lock, attempt.now_ms) {
            Ok(mut plan) => {
                if let Some(a) = model.unlock.as_mut() {
                    match &a.ble_credential {
                        // The retry presents the credential the first try did: the door
                        // knows a command it ran by (credential, command id), and one
                        // refreshed in between would make it a new command.
                        Some(first) => plan.credential = first.clone(),
                        None => a.ble_credential = Some(plan.credential.clone()),
                    }
                }
                ble_unlock(
                    plan,
                    attempt.action,
                    attempt.command_id,
                    attempt.now_ms / 1000,
                )
            }
            Err(reason) => {
                return finish(
                    model,
                    UnlockStatus::Denied {
                        route: None,
                        reason,
                    },
                );
            }
        },
        Route::Cloud => {
            let Some(token) = model.token() else {
                return finish(
                    model,
                    UnlockStatus::Denied {
                        route: None,
                        reason: Reason::NoAccess,
                    },
                );
            };
            let proof = proximity_proof(model, &attempt.lock, attempt.now_ms);
            let mut body = serde_json::json!({});
            if let Some(code) = proof {
                body["proximity_proof"] = code.into();
            }
            if let Some(fix) = fresh_location(model, attempt.now_ms) {
                body["latitude"] = fix.latitude.into();
                body["longitude"] = fix.longitude.into();
            }
            ApiCall::new(
                "POST",
                &model.api_base,
                &format!("/locks/{}/unlock", attempt.lock),
            )
            .token(token)
            .idempotency_key(attempt.command_id.to_uuid_string())
            .json(body)
            .send::<UnlockResponse>()
            .then_send(move |result| Event::UnlockDone {
                command_id: attempt.command_id,
                route: Route::Cloud,
                outcome: cloud_outcome(result),
            })
        }
    };
    let mut run = 0;
    if let Some(a) = model.unlock.as_mut() {
        a.tried.push(route);
        a.status = UnlockStatus::InProgress(route);
        run = a.tried.len();
    }
    let command_id = attempt.command_id;
    let overdue = crux_time::Time::notify_after(ROUTE_OVERDUE)
        .0
        .then_send(move |outcome| match outcome {
            crux_time::TimerOutcome::Completed(_) => Event::UnlockOverdue { command_id, run },
            crux_time::TimerOutcome::Cleared => Event::Noop,
        });
    Command::all([render(), cmd, overdue])
}

/// A route with no answer by now is given up as `Unconfirmed` (it may have reached the door),
/// so a stack that never answers (a BLE connect some platforms never time out, a key waiting
/// for the user) cannot hold the unlock panel, and every later tap, forever. Above the
/// slowest unlocks seen (28 s over BlueZ in the VM test).
pub const ROUTE_OVERDUE: std::time::Duration = std::time::Duration::from_secs(60);

/// The watchdog of run `run` (the attempt's first route is run 1, a fallback or retry the
/// next) fired: if that run of that attempt is still going, give it up.
pub fn overdue(model: &mut Model, command_id: Id, run: usize) -> Cmd {
    match model.unlock.as_ref() {
        Some(a) if a.command_id == command_id && a.tried.len() == run => match a.status {
            UnlockStatus::InProgress(route) => finish(model, UnlockStatus::Unconfirmed { route }),
            _ => Command::done(),
        },
        _ => Command::done(),
    }
}

/// What a cloud unlock's answer says happened at the door. Whenever the request may have
/// reached the door it is `Unconfirmed`, never `Failed`: a failure falls back to BLE, and the
/// door must not open twice for one tap.
fn cloud_outcome(result: ApiResult<UnlockResponse>) -> RouteOutcome {
    match result {
        Ok(r) if r.granted => RouteOutcome::Granted {
            duplicate: r.duplicate,
        },
        Ok(_) => RouteOutcome::Denied(Reason::NoAccess),
        // Sent, and no answer in time: the server may have relayed the command.
        Err(e @ ApiError::TimedOut) => RouteOutcome::Unconfirmed(e.to_string()),
        Err(e) if e.is_network() => RouteOutcome::Failed(e.to_string()),
        Err(ApiError::Server { status: 401, .. }) => RouteOutcome::SessionExpired,
        Err(e) => match e.reason() {
            Some(Reason::Unconfirmed) => RouteOutcome::Unconfirmed(e.to_string()),
            Some(r) => RouteOutcome::Denied(r),
            // The server failed while handling it (after relaying, it may be), or answered
            // something this version does not understand.
            None if matches!(
                e,
                ApiError::Decode { .. } | ApiError::Server { status: 500.., .. }
            ) =>
            {
                RouteOutcome::Unconfirmed(e.to_string())
            }
            None => RouteOutcome::Denied(Reason::NoAccess),
        },
    }
}

fn finish(model: &mut Model, status: UnlockStatus) -> Cmd {
    if let Some(a) = model.unlock.as_mut() {
        a.status = status;
    }
    render()
}

/// Denials the other route may not share: the door's view of our credential or its own state
/// is out of date, or the door could not be verified.
fn ble_denial_worth_cloud(r: Reason) -> bool {
    use Reason::*;
    matches!(
        r,
        UnknownOrgKey
            | Expired
            | NotYetValid
            | BadCredentialSignature
            | ClockUntrusted
            | NotConfigured
            | StaleNonce
            | MalformedFrame
            | FrameTooLarge
            | UnsupportedVersion
            | UnexpectedMessage
            | DecryptFailed
            | ReplayedFrame
            | UntrustedDoor
            | BadDoorSignature
            | DoorNotAuthorized
    )
}

fn remember_door_said(model: &mut Model, reason: Reason) {
    if let Some(attempt) = model.unlock.as_mut() {
        attempt.door_said = Some(reason);
    }
}

pub fn done(model: &mut Model, command_id: Id, route: Route, outcome: RouteOutcome) -> Cmd {
    let Some(attempt) = model.unlock.clone() else {
        return Command::done();
    };
    if attempt.command_id != command_id || attempt.status != UnlockStatus::InProgress(route) {
        return Command::done(); // an answer for an attempt no longer shown
    }
    if route == Route::Ble && attempt.ble_unconfirmed {
        // The retry after an unconfirmed AUTH: only a grant (new, or the door's "duplicate"
        // of the first) settles it; anything else leaves the first's doubt standing.
        let status = match outcome {
            RouteOutcome::Granted { duplicate } => UnlockStatus::Granted { route, duplicate },
            _ => UnlockStatus::Unconfirmed { route },
        };
        return finish(model, status);
    }
    if let (Route::Ble, RouteOutcome::Unconfirmed(_)) = (route, &outcome) {
        // Ask the door again, with the same command id, once: a lost RESULT then comes
        // back as "granted, duplicate", and an AUTH that never arrived runs now.
        if let Some(a) = model.unlock.as_mut() {
            a.ble_unconfirmed = true;
            a.status = UnlockStatus::Checking;
        }
        return unlock_at(command_id);
    }
    let can_cloud = attempt.action == Action::Unlock
        && !attempt.tried.contains(&Route::Cloud)
        && model.session.is_some();
    // The cloud could not act: BLE, if it still applies when checked again at the current
    // time (the cloud call may have taken many seconds).
    if route == Route::Cloud
        && matches!(
            outcome,
            RouteOutcome::Failed(_) | RouteOutcome::Denied(Reason::DoorOffline)
        )
        && !attempt.tried.contains(&Route::Ble)
        && ble_plan(model, &attempt.lock, attempt.now_ms).is_ok()
    {
        let otherwise = cloud_gave_up(&attempt, &outcome);
        if let Some(a) = model.unlock.as_mut() {
            a.status = UnlockStatus::Checking;
            a.cloud_said = Some(otherwise);
        }
        return unlock_at(command_id);
    }
    let mut extra = Command::done();
    let status = match (route, outcome) {
        (_, RouteOutcome::Granted { duplicate }) => UnlockStatus::Granted { route, duplicate },
        (_, RouteOutcome::Unconfirmed(_)) => UnlockStatus::Unconfirmed { route },
        (_, RouteOutcome::SessionExpired) => {
            return super::session::logout_local(model, "your session expired; sign in again");
        }
        (Route::Ble, RouteOutcome::Denied(r)) if ble_denial_worth_cloud(r) && can_cloud => {
            remember_door_said(model, r);
            return run_route(model, Route::Cloud);
        }
        // A door's list may also cut honest credentials (when more are revoked than a list
        // names): drop this one, ask for a new one and let the server decide this tap.
        (Route::Ble, RouteOutcome::Denied(Reason::Revoked)) if can_cloud => {
            remember_door_said(model, Reason::Revoked);
            let dropped = credentials::drop_revoked(model);
            let renewed = credentials::ensure(model);
            return Command::all([dropped, renewed, run_route(model, Route::Cloud)]);
        }
        (Route::Ble, RouteOutcome::Failed(_)) if can_cloud => {
            return run_route(model, Route::Cloud);
        }
        (Route::Cloud, outcome) => cloud_gave_up(&attempt, &outcome),
        (Route::Ble, RouteOutcome::Denied(reason)) => {
            if reason == Reason::Revoked {
                extra = credentials::drop_revoked(model);
            }
            UnlockStatus::Denied {
                route: Some(route),
                reason,
            }
        }
        // After the cloud: its answer ("door offline", "no network") says more than ours.
        (Route::Ble, RouteOutcome::Failed(_)) => {
            attempt.cloud_said.unwrap_or(UnlockStatus::Denied {
                route: Some(route),
                reason: if attempt.tried.contains(&Route::Cloud) {
                    Reason::NoNetwork
                } else {
                    Reason::DoorUnreachable
                },
            })
        }
    };
    Command::all([finish(model, status), extra])
}

/// What to show when the cloud route ended without opening and nothing is left to try.
fn cloud_gave_up(attempt: &UnlockAttempt, outcome: &RouteOutcome) -> UnlockStatus {
    match (outcome, attempt.door_said) {
        (RouteOutcome::Denied(reason), _) => UnlockStatus::Denied {
            route: Some(Route::Cloud),
            reason: *reason,
        },
        // The door's own refusal says more than "no network".
        (_, Some(reason)) => UnlockStatus::Denied {
            route: Some(Route::Ble),
            reason,
        },
        (_, None) => UnlockStatus::Denied {
            route: Some(Route::Cloud),
            reason: Reason::NoNetwork,
        },
    }
}

/// Hands-free unlock decided by the walk-up engine: BLE only.
pub fn walk_up(model: &mut Model, lock: String, now_ms: u64) -> Result<Cmd, Reason> {
    if model.unlock.as_ref().is_some_and(UnlockAttempt::busy) {
        return Err(Reason::RateLimited);
    }
    ble_plan(model, &lock, now_ms)?;
    model.unlock = Some(UnlockAttempt {
        lock,
        action: Action::WalkUp,
        command_id: new_command_id(),
        now_ms,
        tried: vec![],
        status: UnlockStatus::Checking,
        door_said: None,
        cloud_said: None,
        ble_unconfirmed: false,
        ble_credential: None,
    });
    Ok(run_route(model, Route::Ble))
}

fn ble_unlock(plan: BlePlan, action: Action, command_id: Id, now_s: u64) -> Cmd {
    Command::new(move |ctx| async move {
        let outcome = handshake(&ctx, plan, action, command_id, now_s).await;
        ctx.send_event(Event::UnlockDone {
            command_id,
            route: Route::Ble,
            outcome,
        });
    })
}

fn rejected(e: HandshakeError) -> RouteOutcome {
    match e {
        HandshakeError::Rejected(r) => RouteOutcome::Denied(r),
        HandshakeError::Crypto(c) => RouteOutcome::Failed(c.to_string()),
    }
}

async fn exchange(
    ctx: &CommandContext<super::Effect, Event>,
    connection: u64,
    message: Vec<u8>,
) -> Result<Vec<u8>, RouteOutcome> {
    match ctx
        .request_from_shell(BleOperation::Exchange {
            connection,
            message,
        })
        .await
    {
        BleOutput::Reply { message } => Ok(message),
        BleOutput::Error { message } => Err(RouteOutcome::Failed(message)),
        other => Err(RouteOutcome::Failed(format!(
            "unexpected BLE answer {other:?}"
        ))),
    }
}

/// The phone side of the BLE handshake, one GATT round trip per exchange.
async fn handshake(
    ctx: &CommandContext<super::Effect, Event>,
    plan: BlePlan,
    action: Action,
    command_id: Id,
    now_s: u64,
) -> RouteOutcome {
    let rng = ring::rand::SystemRandom::new();
    let (mut initiator, hello) = match Initiator::start(&rng, plan.lock, action) {
        Ok(x) => x,
        Err(e) => return RouteOutcome::Failed(e.to_string()),
    };
    let connection = match ctx
        .request_from_shell(BleOperation::Connect {
            peer: plan.peer.clone(),
        })
        .await
    {
        BleOutput::Connected { connection } => connection,
        BleOutput::Error { message } => return RouteOutcome::Failed(message),
        other => return RouteOutcome::Failed(format!("unexpected BLE answer {other:?}")),
    };
    let outcome = async {
        let challenge = exchange(ctx, connection, hello).await?;
        let request = initiator
            .on_challenge(&challenge, &plan.trusted, now_s, command_id)
            .map_err(rejected)?;
        let signature = match ctx
            .request_from_shell(SigningOperation::Sign {
                message: request.message,
            })
            .await
        {
            SigningOutput::Signature { signature } => <[u8; 64]>::try_from(signature.as_slice())
                .map(Signature)
                .map_err(|_| {
                    RouteOutcome::Failed("device key gave a malformed signature".into())
                })?,
            other => {
                return Err(RouteOutcome::Failed(format!(
                    "device key failed: {other:?}"
                )));
            }
        };
        let auth = initiator
            .auth_frame(&plan.credential, &signature)
            .map_err(rejected)?;
        // AUTH is out: from here the door may have opened, so whatever goes wrong (a lost
        // link, a garbled or forged answer: ERROR frames are not sealed) is `Unconfirmed`,
        // never a failure that would send the command again by the cloud.
        let result = exchange(ctx, connection, auth).await.map_err(|e| match e {
            RouteOutcome::Failed(why) => RouteOutcome::Unconfirmed(why),
            other => other,
        })?;
        let body = initiator
            .on_result(&result)
            .map_err(|e| RouteOutcome::Unconfirmed(e.to_string()))?;
        Ok(if body.granted {
            RouteOutcome::Granted {
                duplicate: body.duplicate,
            }
        } else {
            RouteOutcome::Denied(body.reason.unwrap_or(Reason::NoAccess))
        })
    }
    .await;
    ctx.notify_shell(BleOperation::Disconnect { connection });
    outcome.unwrap_or_else(|e| e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::testkit::*;
    use crate::app::walkup::Heard;
    use crate::app::{Effect, Keyway, Location, places::Directory};
    use crux_core::App;
    use crux_http::protocol::HttpResult;

    const CODE: u32 = 0x00AB_CDEF;

    fn model_with_lock() -> Model {
        let mut m = signed_in_model();
        m.directory = Directory {
            org: Some(ORG_A.into()),
            places: vec![place()],
            locks: vec![lock()],
            fresh: true,
            ..Default::default()
        };
        m
    }

    fn hear(m: &mut Model, at_ms: u64) {
        m.heard.insert(
            lock().short_id,
            Heard {
                peer: "door-1".into(),
                rssi: -55,
                tx_power: -59,
                proximity_code: CODE,
                walk_up_flag: true,
                at_ms,
            },
        );
    }

    /// Taps the lock and resolves the clock; returns the command of the chosen route.
    fn tap_at(app: &Keyway, m: &mut Model, now_s: u64) -> Cmd {
        let mut cmd = app.update(Event::Unlock { lock: LOCK.into() }, m);
        assert_eq!(app.view(m).unlock.unwrap().state, "checking");
        resolve_now(&mut cmd, now_s);
        let ev = cmd.events().next().unwrap();
        app.update(ev, m)
    }

    fn finish_with(app: &Keyway, m: &mut Model, cmd: &mut Cmd) -> Vec<Cmd> {
        drain(app, m, cmd)
    }

    #[test]
    fn ble_when_heard_recently_and_credential_valid() {
        let app = Keyway;
        let mut door = Door::new();
        let mut m = model_with_lock();
        m.credential = Some(door.held(NOW_S + 86_400));
        hear(&mut m, NOW_S * 1000 - 2_000);
        let mut cmd = tap_at(&app, &mut m, NOW_S);
        assert_eq!(app.view(&m).unlock.unwrap().route, Some(Route::Ble));
        let connect = take_ble(&mut cmd);
        assert_eq!(
            connect.operation,
            BleOperation::Connect {
                peer: "door-1".into()
            }
        );
        let (_, mut handle) = connect.split();
        handle
            .resolve(BleOutput::Connected { connection: 1 })
            .unwrap();
        // HELLO -> CHALLENGE, sign, AUTH -> RESULT: two round trips.
        door.answer(&mut cmd);
        door.answer(&mut cmd);
        door.answer(&mut cmd);
        let effects: Vec<Effect> = cmd.effects().collect();
        assert!(effects.iter().any(|e| matches!(e, Effect::Ble(r)
            if r.operation == BleOperation::Disconnect { connection: 1 })));
        finish_with(&app, &mut m, &mut cmd);
        let v = app.view(&m).unlock.unwrap();
        assert_eq!((v.state.as_str(), v.route), ("granted", Some(Route::Ble)));
        assert_eq!(v.message, "door opened");
        assert_eq!(door.memory.commands.len(), 1, "the door actuated once");
    }

    #[test]
    fn cloud_with_proximity_code_when_no_credential() {
        let app = Keyway;
        let mut m = model_with_lock();
        hear(&mut m, NOW_S * 1000 - 2_000);
        let mut cmd = tap_at(&app, &mut m, NOW_S);
        let mut req = take_http(&mut cmd);
        assert_eq!(req.operation.method, "POST");
        assert!(
            req.operation
                .url
                .ends_with(&format!("/api/v1/locks/{LOCK}/unlock"))
        );
        let body: serde_json::Value = serde_json::from_slice(&req.operation.body).unwrap();
        assert_eq!(body["proximity_proof"], CODE);
        let key = req
            .operation
            .headers
            .iter()
            .find(|h| h.name == "Idempotency-Key")
            .unwrap();
        assert_eq!(
            key.value,
            m.unlock.as_ref().unwrap().command_id.to_uuid_string()
        );
        req.resolve(ok_json(200, serde_json::json!({"granted": true, "event_id": "e", "command_id": "c", "duplicate": false})))
            .unwrap();
        finish_with(&app, &mut m, &mut cmd);
        let v = app.view(&m).unlock.unwrap();
        assert_eq!((v.state.as_str(), v.route), ("granted", Some(Route::Cloud)));
    }

    #[test]
    fn cloud_unlock_carries_a_fresh_location_only() {
        let app = Keyway;
        let body_for = |fix_ms: u64| {
            let mut m = model_with_lock();
            let fix = Location {
                latitude: 52.52,
                longitude: 13.405,
                fix_ms,
            };
            let _ = app.update(Event::SetLocation(fix), &mut m);
            let mut cmd = tap_at(&app, &mut m, NOW_S);
            let req = take_http(&mut cmd);
            serde_json::from_slice::<serde_json::Value>(&req.operation.body).unwrap()
        };
        let fresh = body_for(NOW_S * 1000 - 30_000);
        assert_eq!(
            (fresh["latitude"].as_f64(), fresh["longitude"].as_f64()),
            (Some(52.52), Some(13.405))
        );
        let stale = body_for(NOW_S * 1000 - 10 * 60_000);
        assert!(stale.get("latitude").is_none(), "{stale}");
        let future = body_for(NOW_S * 1000 + 60 * 60_000);
        assert!(future.get("latitude").is_none(), "{future}");
    }

    #[test]
    fn cloud_without_proof_when_door_not_heard_even_with_credential() {
        let app = Keyway;
        let mut m = model_with_lock();
        m.credential = Some(held_credential(NOW_S + 86_400));
        hear(&mut m, NOW_S * 1000 - 60_000); // heard a minute ago: too old for either
        let mut cmd = tap_at(&app, &mut m, NOW_S);
        let req = take_http(&mut cmd);
        let body: serde_json::Value = serde_json::from_slice(&req.operation.body).unwrap();
        assert!(body.get("proximity_proof").is_none());
    }

    #[test]
    fn expired_credential_goes_to_cloud_and_shows_server_reason() {
        let app = Keyway;
        let mut m = model_with_lock();
        m.credential = Some(held_credential(NOW_S - 10));
        hear(&mut m, NOW_S * 1000);
        let mut cmd = tap_at(&app, &mut m, NOW_S);
        take_http(&mut cmd)
            .resolve(error_json(403, "access_expired", "access expired"))
            .unwrap();
        finish_with(&app, &mut m, &mut cmd);
        let v = app.view(&m).unlock.unwrap();
        assert_eq!(v.state, "denied");
        assert_eq!(v.reason.as_deref(), Some("access_expired"));
        assert_eq!(v.message, Reason::Expired.message());
    }

    #[test]
    fn ble_failure_falls_back_to_cloud_once() {
        let app = Keyway;
        let door = Door::new();
        let mut m = model_with_lock();
        m.credential = Some(door.held(NOW_S + 86_400));
        hear(&mut m, NOW_S * 1000);
        let mut cmd = tap_at(&app, &mut m, NOW_S);
        take_ble(&mut cmd)
            .resolve(BleOutput::Error {
                message: "connection timed out".into(),
            })
            .unwrap();
        let mut next = finish_with(&app, &mut m, &mut cmd);
        assert_eq!(app.view(&m).unlock.unwrap().route, Some(Route::Cloud));
        let mut cloud = next.remove(0);
        take_http(&mut cloud)
            .resolve(error_json(503, "door_offline", "the door is offline"))
            .unwrap();
        let mut after = finish_with(&app, &mut m, &mut cloud);
        // No second fallback: BLE was already tried.
        assert!(after.iter_mut().all(|c| {
            !c.effects()
                .any(|e| matches!(e, Effect::Ble(_) | Effect::Http(_)))
        }));
        let v = app.view(&m).unlock.unwrap();
        assert_eq!(v.state, "denied");
        assert_eq!(v.reason.as_deref(), Some("door_offline"));
    }

    /// A BLE tap run up to its AUTH exchange, left pending in the returned command.
    fn ble_tap_to_auth(app: &Keyway, door: &mut Door, m: &mut Model) -> Cmd {
        m.credential = Some(door.held(NOW_S + 86_400));
        hear(m, NOW_S * 1000);
        let mut cmd = tap_at(app, m, NOW_S);
        door.answer(&mut cmd); // connect
        door.answer(&mut cmd); // HELLO -> CHALLENGE
        door.answer(&mut cmd); // sign
        cmd
    }

    /// The first try ended without a verdict: nothing went to the cloud, and the retry asks
    /// the time first. Returns the retry's command, BLE connect pending.
    fn retry_after_unconfirmed(app: &Keyway, m: &mut Model, first: &mut Cmd) -> Cmd {
        let mut next = finish_with(app, m, first);
        assert_eq!(next.len(), 1);
        let mut asked = next.remove(0);
        let effects: Vec<Effect> = asked.effects().collect();
        let [Effect::Time(mut now)] = <[Effect; 1]>::try_from(effects).unwrap() else {
            panic!("expected only a time request: nothing by the cloud after AUTH was sent");
        };
        assert_eq!(app.view(m).unlock.unwrap().state, "checking");
        now.resolve(crux_time::TimeResponse::Now {
            instant: crux_time::Instant::new(NOW_S + 1, 0),
        })
        .unwrap();
        finish_with(app, m, &mut asked).remove(0)
    }

    /// The door answers the whole retry (connect, HELLO, sign, AUTH with the same command
    /// id); the attempt's state and message after it.
    fn door_answers_the_retry(
        app: &Keyway,
        door: &mut Door,
        m: &mut Model,
        mut retry: Cmd,
    ) -> (String, String) {
        for _ in 0..4 {
            door.answer(&mut retry);
        }
        let _ = finish_with(app, m, &mut retry);
        let v = app.view(m).unlock.unwrap();
        (v.state, v.message)
    }

    #[test]
    fn a_result_lost_after_the_door_opened_comes_back_as_a_duplicate() {
        let app = Keyway;
        let mut door = Door::new();
        let mut m = model_with_lock();
        let mut cmd = ble_tap_to_auth(&app, &mut door, &mut m);
        let lost = BleOutput::Error {
            message: "link lost".into(),
        };
        door.answer_auth_with(&mut cmd, lost);
        assert_eq!(door.opened, 1);
        let retry = retry_after_unconfirmed(&app, &mut m, &mut cmd);
        assert_eq!(
            door_answers_the_retry(&app, &mut door, &mut m, retry),
            ("granted".into(), "already opened".into())
        );
        assert_eq!(door.opened, 1, "the door did not open twice");
    }

    #[test]
    fn a_credential_refreshed_between_the_tries_does_not_make_the_retry_a_new_command() {
        let app = Keyway;
        let mut door = Door::new();
        let mut m = model_with_lock();
        let mut cmd = ble_tap_to_auth(&app, &mut door, &mut m);
        let lost = BleOutput::Error {
            message: "link lost".into(),
        };
        door.answer_auth_with(&mut cmd, lost);
        // The refresh lands between the tries: a new credential, a new id.
        m.credential = Some(crate::app::HeldCredential {
            org: ORG_A.into(),
            response: door.credential_response_with_id(NOW_S + 86_400, Id([9; 16])),
        });
        let retry = retry_after_unconfirmed(&app, &mut m, &mut cmd);
        assert_eq!(
            door_answers_the_retry(&app, &mut door, &mut m, retry),
            ("granted".into(), "already opened".into())
        );
        assert_eq!(door.opened, 1, "the door did not open twice");
    }

    #[test]
    fn an_auth_lost_on_the_way_runs_on_the_retry() {
        let app = Keyway;
        let mut door = Door::new();
        let mut m = model_with_lock();
        let mut cmd = ble_tap_to_auth(&app, &mut door, &mut m);
        let (_, mut auth) = take_ble(&mut cmd).split();
        auth.resolve(BleOutput::Error {
            message: "link lost".into(),
        })
        .unwrap();
        let retry = retry_after_unconfirmed(&app, &mut m, &mut cmd);
        assert_eq!(
            door_answers_the_retry(&app, &mut door, &mut m, retry),
            ("granted".into(), "door opened".into())
        );
        assert_eq!(door.opened, 1);
    }

    #[test]
    fn a_garbled_or_forged_answer_after_auth_is_asked_again_never_sent_by_cloud() {
        let app = Keyway;
        // ERROR frames are not sealed: anyone on the link can send "stale nonce" after the
        // door opened. Neither it nor a garbled RESULT sends the command by the cloud; the
        // door, asked again with the same command id, says it already opened.
        let forged = keyway_protocol::handshake::frames::encode_error(Reason::StaleNonce);
        for answer in [forged, vec![0x04, 0xde, 0xad, 0xbe, 0xef]] {
            let mut door = Door::new();
            let mut m = model_with_lock();
            let mut cmd = ble_tap_to_auth(&app, &mut door, &mut m);
            door.answer_auth_with(&mut cmd, BleOutput::Reply { message: answer });
            let retry = retry_after_unconfirmed(&app, &mut m, &mut cmd);
            assert_eq!(
                door_answers_the_retry(&app, &mut door, &mut m, retry),
                ("granted".into(), "already opened".into())
            );
            assert_eq!(door.opened, 1);
        }
    }

    #[test]
    fn a_retry_without_a_verdict_either_stays_unconfirmed() {
        let app = Keyway;
        let mut door = Door::new();
        let mut m = model_with_lock();
        let mut cmd = ble_tap_to_auth(&app, &mut door, &mut m);
        let lost = || BleOutput::Error {
            message: "link lost".into(),
        };
        door.answer_auth_with(&mut cmd, lost());
        let mut retry = retry_after_unconfirmed(&app, &mut m, &mut cmd);
        for _ in 0..3 {
            door.answer(&mut retry);
        }
        door.answer_auth_with(&mut retry, lost());
        let mut last = finish_with(&app, &mut m, &mut retry);
        assert!(last.iter_mut().all(|c| {
            !c.effects()
                .any(|e| matches!(e, Effect::Http(_) | Effect::Time(_)))
        }));
        let v = app.view(&m).unlock.unwrap();
        assert_eq!(
            (v.state.as_str(), v.route),
            ("unconfirmed", Some(Route::Ble))
        );
        assert_eq!(door.opened, 1);
    }

    #[test]
    fn a_cloud_unlock_that_may_have_reached_the_door_does_not_fall_back_to_ble() {
        let app = Keyway;
        let door = Door::new();
        // Each of these may follow a relayed command: the server's "no answer from the door",
        // the phone's own timeout after sending, a server failure.
        let answers = [
            error_json(
                504,
                "unconfirmed",
                "the door did not confirm; it may have opened",
            ),
            HttpResult::Err(crux_http::HttpError::Timeout),
            error_json(500, "internal", "internal error"),
        ];
        for answer in answers {
            let mut m = model_with_lock();
            m.credential = Some(door.held(NOW_S + 86_400));
            hear(&mut m, NOW_S * 1000 - 60_000); // too old for BLE at the tap
            let mut cmd = tap_at(&app, &mut m, NOW_S);
            take_http(&mut cmd).resolve(answer).unwrap();
            hear(&mut m, NOW_S * 1000); // the door is in range now
            let mut next = finish_with(&app, &mut m, &mut cmd);
            assert!(next.iter_mut().all(|c| {
                c.effects()
                    .all(|e| !matches!(e, Effect::Ble(_) | Effect::Time(_) | Effect::Http(_)))
            }));
            let v = app.view(&m).unlock.unwrap();
            assert_eq!(
                (v.state.as_str(), v.route),
                ("unconfirmed", Some(Route::Cloud))
            );
        }
    }

    #[test]
    fn cloud_to_ble_fallback_checks_the_door_again_at_the_current_time() {
        let app = Keyway;
        let mut door = Door::new();
        // Not heard at the tap: cloud. The door answers offline, and meanwhile the scan
        // heard it a second after the tap.
        let offline_then_heard = |m: &mut Model| {
            let mut cmd = tap_at(&app, m, NOW_S);
            assert_eq!(app.view(m).unlock.unwrap().route, Some(Route::Cloud));
            take_http(&mut cmd)
                .resolve(error_json(409, "door_offline", "the door is offline"))
                .unwrap();
            hear(m, (NOW_S + 1) * 1000);
            let mut next = finish_with(&app, m, &mut cmd);
            assert_eq!(app.view(m).unlock.unwrap().state, "checking");
            next.remove(0)
        };
        let mut m = model_with_lock();
        m.credential = Some(door.held(NOW_S + 86_400));
        let mut asked = offline_then_heard(&mut m);
        // The call took 15 s: the door was last heard 14 s ago, too long for BLE.
        resolve_now(&mut asked, NOW_S + 15);
        let _ = finish_with(&app, &mut m, &mut asked);
        let v = app.view(&m).unlock.unwrap();
        assert_eq!(
            (v.state.as_str(), v.reason.as_deref()),
            ("denied", Some("door_offline"))
        );
        // The call took 2 s: BLE runs.
        let _ = app.update(Event::DismissUnlock, &mut m);
        m.heard.clear();
        let mut asked = offline_then_heard(&mut m);
        resolve_now(&mut asked, NOW_S + 2);
        let mut ble = finish_with(&app, &mut m, &mut asked);
        door.answer(&mut ble[0]); // connect
        assert_eq!(
            app.view(&m).unlock.unwrap().state,
            "in_progress",
            "BLE after the cloud"
        );
        assert_eq!(app.view(&m).unlock.unwrap().route, Some(Route::Ble));
    }

    #[test]
    fn a_route_that_never_answers_is_given_up_as_unconfirmed() {
        let app = Keyway;
        let door = Door::new();
        let mut m = model_with_lock();
        m.credential = Some(door.held(NOW_S + 86_400));
        hear(&mut m, NOW_S * 1000);
        let mut cmd = tap_at(&app, &mut m, NOW_S);
        // The connect never completes; the route's watchdog fires.
        let (_, mut connect) = take_ble(&mut cmd).split();
        let mut watchdog = match cmd.effects().find(|e| matches!(e, Effect::Time(_))) {
            Some(Effect::Time(r)) => r,
            other => panic!("expected the route's watchdog, got {other:?}"),
        };
        let crux_time::TimeRequest::NotifyAfter { id, duration } = watchdog.operation.clone()
        else {
            panic!("expected a NotifyAfter");
        };
        assert_eq!(std::time::Duration::from(duration), ROUTE_OVERDUE);
        watchdog
            .resolve(crux_time::TimeResponse::DurationElapsed { id })
            .unwrap();
        let _ = finish_with(&app, &mut m, &mut cmd);
        let v = app.view(&m).unlock.unwrap();
        assert_eq!(
            (v.state.as_str(), v.route),
            ("unconfirmed", Some(Route::Ble))
        );
        // A late answer changes nothing; no longer busy, the panel can be closed.
        connect
            .resolve(BleOutput::Error {
                message: "connection failed".into(),
            })
            .unwrap();
        let _ = finish_with(&app, &mut m, &mut cmd);
        assert_eq!(app.view(&m).unlock.unwrap().state, "unconfirmed");
        let _ = app.update(Event::DismissUnlock, &mut m);
        assert!(m.unlock.is_none());
    }

    #[test]
    fn ble_failing_after_the_cloud_said_door_offline_shows_door_offline() {
        let app = Keyway;
        let mut m = model_with_lock();
        m.credential = Some(Door::new().held(NOW_S + 86_400));
        let mut cmd = tap_at(&app, &mut m, NOW_S);
        take_http(&mut cmd)
            .resolve(error_json(409, "door_offline", "the door is offline"))
            .unwrap();
        hear(&mut m, (NOW_S + 1) * 1000);
        let mut next = finish_with(&app, &mut m, &mut cmd);
        resolve_now(&mut next[0], NOW_S + 2);
        let mut ble = finish_with(&app, &mut m, &mut next[0]);
        let (_, mut connect) = take_ble(&mut ble[0]).split();
        connect
            .resolve(BleOutput::Error {
                message: "connection failed".into(),
            })
            .unwrap();
        let _ = finish_with(&app, &mut m, &mut ble[0]);
        let v = app.view(&m).unlock.unwrap();
        assert_eq!(
            (v.state.as_str(), v.route, v.reason.as_deref()),
            ("denied", Some(Route::Cloud), Some("door_offline"))
        );
    }

    #[test]
    fn an_answer_for_an_earlier_tap_does_not_land_on_the_next() {
        let app = Keyway;
        let mut m = model_with_lock();
        let mut first = tap_at(&app, &mut m, NOW_S);
        let mut first_call = take_http(&mut first);
        // Busy: the panel stays until the answer.
        let _ = app.update(Event::DismissUnlock, &mut m);
        assert!(m.unlock.is_some());
        // The organization changes under it (as a sign-in would): the attempt goes.
        let _ = app.update(Event::SelectOrg { org: ORG_B.into() }, &mut m);
        assert!(m.unlock.is_none());
        m.directory.locks = vec![lock()];
        let mut second = tap_at(&app, &mut m, NOW_S + 5);
        let _pending = take_http(&mut second);
        first_call
            .resolve(ok_json(200, serde_json::json!({"granted": true})))
            .unwrap();
        let _ = finish_with(&app, &mut m, &mut first);
        assert_eq!(app.view(&m).unlock.unwrap().state, "in_progress");
    }

    #[test]
    fn expired_session_on_cloud_unlock_signs_out() {
        let app = Keyway;
        let mut m = model_with_lock();
        let mut cmd = tap_at(&app, &mut m, NOW_S);
        take_http(&mut cmd)
            .resolve(error_json(401, "unauthorized", "sign in again"))
            .unwrap();
        let _ = finish_with(&app, &mut m, &mut cmd);
        let v = app.view(&m);
        assert!(!v.signed_in && v.unlock.is_none());
        assert!(v.auth_error.unwrap().contains("expired"));
    }

    #[test]
    fn no_network_and_no_door_nearby_says_so() {
        let app = Keyway;
        let mut m = model_with_lock();
        let mut cmd = tap_at(&app, &mut m, NOW_S);
        take_http(&mut cmd)
            .resolve(HttpResult::Err(crux_http::HttpError::Io(
                "network unreachable".into(),
            )))
            .unwrap();
        finish_with(&app, &mut m, &mut cmd);
        let v = app.view(&m).unlock.unwrap();
        assert_eq!(v.reason.as_deref(), Some("no_network"));
        assert_eq!(v.message, "no network connection");
    }

    #[test]
    fn door_denial_is_final_and_explained() {
        let app = Keyway;
        let mut door = Door::new();
        door.config.locks.clear(); // this door does not serve the lock
        let mut m = model_with_lock();
        m.credential = Some(door.held(NOW_S + 86_400));
        hear(&mut m, NOW_S * 1000);
        let mut cmd = tap_at(&app, &mut m, NOW_S);
        door.answer(&mut cmd); // connect
        door.answer(&mut cmd); // HELLO -> ERROR(wrong_lock)
        let mut next = finish_with(&app, &mut m, &mut cmd);
        assert!(
            next.iter_mut()
                .all(|c| !c.effects().any(|e| matches!(e, Effect::Http(_))))
        );
        let v = app.view(&m).unlock.unwrap();
        assert_eq!(v.reason.as_deref(), Some("wrong_lock"));
        assert_eq!(v.message, "you have no access to this door");
    }

    #[test]
    fn door_says_revoked_drops_credential_and_asks_the_server() {
        let app = Keyway;
        let door = Door::new();
        let refused_by_the_door = || {
            let mut m = model_with_lock();
            m.credential = Some(door.held(NOW_S + 86_400));
            hear(&mut m, NOW_S * 1000);
            let _ = tap_at(&app, &mut m, NOW_S);
            let mut cmd = app.update(
                Event::UnlockDone {
                    command_id: m.unlock.as_ref().unwrap().command_id,
                    route: Route::Ble,
                    outcome: RouteOutcome::Denied(Reason::Revoked),
                },
                &mut m,
            );
            let effects: Vec<Effect> = cmd.effects().collect();
            assert!(effects.iter().any(|e| matches!(e, Effect::KeyValue(_))));
            m
        };
        let mut m = refused_by_the_door();
        assert!(m.credential.is_none());
        assert!(m.credential_busy, "a new credential is asked for");
        assert_eq!(
            m.unlock.as_ref().unwrap().status,
            UnlockStatus::InProgress(Route::Cloud)
        );
        // The server still says no: that is the answer shown.
        let _ = app.update(
            Event::UnlockDone {
                command_id: m.unlock.as_ref().unwrap().command_id,
                route: Route::Cloud,
                outcome: RouteOutcome::Denied(Reason::Revoked),
            },
            &mut m,
        );
        assert_eq!(
            app.view(&m).unlock.unwrap().reason.as_deref(),
            Some("access_revoked")
        );
        // Without a network the door's answer is shown, not "no network".
        let mut offline = refused_by_the_door();
        let _ = app.update(
            Event::UnlockDone {
                command_id: offline.unlock.as_ref().unwrap().command_id,
                route: Route::Cloud,
                outcome: RouteOutcome::Failed("connection refused".into()),
            },
            &mut offline,
        );
        let v = app.view(&offline).unlock.unwrap();
        assert_eq!(
            (v.route, v.reason.as_deref()),
            (Some(Route::Ble), Some("access_revoked"))
        );
    }

    #[test]
    fn every_reason_has_a_user_message() {
        for r in Reason::ALL {
            let mut m = model_with_lock();
            m.unlock = Some(UnlockAttempt {
                lock: LOCK.into(),
                action: Action::Unlock,
                command_id: Id::default(),
                now_ms: 0,
                tried: vec![Route::Ble, Route::Cloud],
                status: UnlockStatus::InProgress(Route::Cloud),
                door_said: None,
                cloud_said: None,
                ble_unconfirmed: false,
                ble_credential: None,
            });
            let _ = done(
                &mut m,
                Id::default(),
                Route::Cloud,
                RouteOutcome::Denied(*r),
            );
            let v = Keyway.view(&m).unlock.unwrap();
            assert_eq!(v.reason.as_deref(), Some(r.code()));
            assert!(!v.message.is_empty());
        }
    }

    #[test]
    fn second_tap_while_busy_is_ignored_and_unknown_lock_denied() {
        let app = Keyway;
        let mut m = model_with_lock();
        let _ = app.update(Event::Unlock { lock: LOCK.into() }, &mut m);
        let mut again = app.update(Event::Unlock { lock: LOCK.into() }, &mut m);
        assert!(again.effects().next().is_none());
        let mut m = model_with_lock();
        let _ = app.update(
            Event::Unlock {
                lock: "elsewhere".into(),
            },
            &mut m,
        );
        assert_eq!(
            app.view(&m).unlock.unwrap().reason.as_deref(),
            Some("no_access")
        );
    }
}
