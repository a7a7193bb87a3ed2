//! `POST /locks/{id}/unlock`: the cloud unlock.
//!
//! Checks in order: rate limit, the caller's grant (role, group assignment window and
//! schedule, invite window/hours/revocation/limit), lockdown, geofence, reader restriction
//! (the rotating proximity code from the door's advertisement), then relays a
//! [`CloudCommand`] to the lock's controller and answers with the controller's result;
//! `door_offline` (409) when the command certainly was not delivered, so another route may be
//! tried; `unconfirmed` (504) when it was sent, or may have been, and no answer came within
//! the bounded wait: the door may have opened, and the caller must not try another route.
//! With an `Idempotency-Key` the command id is reused on retries, so the controller actuates
//! at most once, and a finished result is replayed.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use keyway_channel::CloudCommand;
use keyway_protocol::command::CommandOrder;
use keyway_protocol::credential::{Holder, HolderKind};
use keyway_protocol::{Id, Reason};
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Duration;

use crate::access::{Grant, LockInfo, check_grant};
use crate::auth::{Caller, Role};
use crate::error::{ApiError, ApiResult};
use crate::events::{NewEvent, record};
use crate::metrics::Metrics;
use crate::relay::RelayError;
use crate::state::AppState;
use crate::util::{distance_m, new_id, now_ms, now_s, pid};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnlockRequest {
    pub proximity_proof: Option<u32>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
}

/// The lock-side policy checks that need no database: lockdown, geofence, reader restriction.
pub fn door_policy(lock: &LockInfo, req: &UnlockRequest, now_s: i64) -> Result<(), Reason> {
    if lock.lockdown || lock.place_lockdown {
        return Err(Reason::Lockdown);
    }
    if let (Some(radius), Some(plat), Some(plon)) =
        (lock.geofence_radius_m, lock.latitude, lock.longitude)
    {
        match (req.latitude, req.longitude) {
            (Some(lat), Some(lon)) if distance_m(lat, lon, plat, plon) <= radius => {}
            _ => return Err(Reason::OutsideGeofence),
        }
    }
    if lock.reader_restriction {
        let mut secret = [0u8; 32];
        let ok_secret = hex::decode_to_slice(&lock.proximity_secret, &mut secret).is_ok();
        let ok = ok_secret
            && req.proximity_proof.is_some_and(|code| {
                keyway_protocol::advert::verify_proximity_code(
                    &secret,
                    pid(&lock.id),
                    code,
                    now_s.max(0) as u64,
                )
            });
        if !ok {
            return Err(Reason::TooFar);
        }
    }
    Ok(())
}

const MAX_IDEMPOTENCY_KEY: usize = 200;

fn idempotency_key(headers: &HeaderMap) -> ApiResult<Option<String>> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let s = v
        .to_str()
        .ok()
        .filter(|s| {
            !s.is_empty()
                && s.len() <= MAX_IDEMPOTENCY_KEY
                && s.bytes().all(|b| (0x20..=0x7e).contains(&b))
        })
        .ok_or_else(|| {
            ApiError::invalid("Idempotency-Key must be 1..200 visible ASCII characters")
        })?;
    Ok(Some(s.to_owned()))
}

fn parse_body(body: Result<Bytes, BytesRejection>) -> ApiResult<UnlockRequest> {
    let bytes = body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "request body too large",
            )
        } else {
            ApiError::invalid("could not read the request body")
        }
    })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(UnlockRequest::default());
    }
    let req: UnlockRequest = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::invalid(format!("invalid JSON: {e}")))?;
    if req.latitude.is_some_and(|v| !(-90.0..=90.0).contains(&v))
        || req
            .longitude
            .is_some_and(|v| !(-180.0..=180.0).contains(&v))
    {
        return Err(ApiError::invalid("latitude/longitude out of range"));
    }
    Ok(req)
}

/// How long past its relay timeout a `pending` key still belongs to the request that made it.
const PENDING_GRACE_S: i64 = 30;

/// A `pending` key belongs to the request under way with it: a second request with the
/// same key must not relay too (if the first then finds the door offline it deletes the key,
/// and a retry would mint a new command id while the second's command may have opened the
/// door). A key pending for longer than any request takes was left by one that died (a
/// crash, a dropped connection): one retry takes it over, with its command id.
async fn claim_pending(state: &AppState, user: &str, key: &str, created_at: i64) -> ApiResult<()> {
    let in_progress = || ApiError::conflict("a request with this Idempotency-Key is in progress");
    let lease = state.settings.unlock_timeout.as_secs() as i64 + PENDING_GRACE_S;
    let now = now_s();
    if now - created_at < lease {
        return Err(in_progress());
    }
    let claimed = sqlx::query(
        "UPDATE idempotency_keys SET created_at = $1 WHERE user_id = $2 AND idem_key = $3 \
         AND status = 'pending' AND created_at = $4",
    )
    .bind(now)
    .bind(user)
    .bind(key)
    .bind(created_at)
    .execute(state.pool())
    .await?
    .rows_affected();
    if claimed == 0 {
        return Err(in_progress());
    }
    Ok(())
}

pub async fn unlock(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let started = std::time::Instant::now();
    let req = parse_body(body)?;
    let idem = idempotency_key(&headers)?;
    let (lock, role) = super::lock_for(&state, &caller, &id).await?;
    let (actor_id, actor_kind) = caller.actor();

    // Idempotency: a finished result is replayed; an unfinished one reuses its command id.
    // Status `pending`: an attempt is under way (or died); `unconfirmed`: an attempt sent the
    // command and got no answer, so the door may have run it, and that attempt's invite use
    // counts for it; `done`: the stored answer.
    let mut command_id: Option<String> = None;
    let mut fresh_key = false;
    // When this request made the key: it gives the key up only if no retry took it over.
    let mut written_at = 0;
    let mut use_held = false;
    // When the command's order is signed: a retry keeps the first one's, so the door's age
    // limit bounds retries too.
    let mut issued_at_ms = now_ms().max(0);
    if let Some(key) = &idem {
        type Row = (
            String,
            String,
            String,
            Option<i64>,
            Option<String>,
            i64,
            Option<i64>,
        );
        let existing: Option<Row> = sqlx::query_as(
            "SELECT lock_id, command_id, status, http_status, response, created_at, \
             issued_at_ms FROM idempotency_keys WHERE user_id = $1 AND idem_key = $2",
        )
        .bind(&actor_id)
        .bind(key)
        .fetch_optional(state.pool())
        .await?;
        match existing {
            Some((lock_id, ..)) if lock_id != lock.id => {
                return Err(ApiError::conflict(
                    "this Idempotency-Key was used for another lock",
                ));
            }
            Some((_, _, status, Some(http), Some(resp), ..)) if status == "done" => {
                let mut body: Value = serde_json::from_str(&resp).unwrap_or(json!({}));
                if body.get("granted").is_some() {
                    body["duplicate"] = json!(true);
                }
                let code = StatusCode::from_u16(http as u16).unwrap_or(StatusCode::OK);
                return Ok((code, Json(body)).into_response());
            }
            Some((_, cmd, status, _, _, created_at, first_issued)) => {
                if status == "pending" {
                    claim_pending(&state, &actor_id, key, created_at).await?;
                }
                use_held = status == "unconfirmed";
                command_id = Some(cmd);
                issued_at_ms = first_issued.unwrap_or(issued_at_ms);
            }
            None => {
                let cmd = new_id(&state.rng);
                written_at = now_s();
                sqlx::query(
                    "INSERT INTO idempotency_keys (user_id, idem_key, lock_id, command_id, status, \
                     created_at, issued_at_ms) VALUES ($1, $2, $3, $4, 'pending', $5, $6)",
                )
                .bind(&actor_id)
                .bind(key)
                .bind(&lock.id)
                .bind(&cmd)
                .bind(written_at)
                .bind(issued_at_ms)
                .execute(state.pool())
                .await
                .map_err(|e| match ApiError::from(e) {
                    c if c.code == "conflict" => {
                        ApiError::conflict("a request with this Idempotency-Key is in progress")
                    }
                    other => other,
                })?;
                command_id = Some(cmd);
                fresh_key = true;
            }
        }
    }
    let command_id = command_id.unwrap_or_else(|| new_id(&state.rng));

    let command = Command {
        id: &command_id,
        issued_at_ms: issued_at_ms as u64,
        use_held,
    };
    let mut outcome = attempt(&state, &caller, role, &lock, &req, command).await?;
    // A retry's command id may have reached the door on an earlier attempt: that this attempt
    // found the controller offline does not mean nothing opened, so the answer stays
    // `unconfirmed` (a `door_offline` would send the phone to Bluetooth, a second opening).
    if idem.is_some() && !fresh_key && matches!(outcome, Err(Reason::DoorOffline)) {
        outcome = Err(Reason::Unconfirmed);
    }
    let (status, body, reason, success) = match &outcome {
        Ok(Attempt::Granted { duplicate }) => (
            StatusCode::OK,
            json!({"granted": true, "command_id": command_id, "duplicate": duplicate}),
            None,
            true,
        ),
        Err(reason) => {
            let e = ApiError::denied(*reason);
            (
                e.status,
                json!({"error": {"code": e.code, "message": e.message}}),
                Some(*reason),
                false,
            )
        }
    };
    let mut ev = NewEvent {
        org_id: lock.org_id.clone(),
        kind: "unlock.attempt".into(),
        actor_id: Some(actor_id.clone()),
        actor_kind: Some(actor_kind.into()),
        lock_id: Some(lock.id.clone()),
        place_id: Some(lock.place_id.clone()),
        method: Some("cloud".into()),
        success: Some(success),
        reason: reason.map(|r| r.code().to_owned()),
        details: Some(json!({"command_id": command_id})),
        ..Default::default()
    };
    if success {
        Metrics::inc(&state.metrics.unlocks_granted);
    } else {
        Metrics::inc(&state.metrics.unlocks_denied);
        // The command id matters only where the command may have reached the door: it
        // matches the door's own `door.command_executed` record, should one arrive.
        if reason != Some(Reason::Unconfirmed) {
            ev.details = None;
        }
    }
    let event_id = record(&state, ev).await?;
    let mut body = body;
    if success {
        body["event_id"] = json!(event_id);
    }
    if let Some(key) = &idem {
        // Grants are stored and replayed. A command that may have reached the door keeps its
        // command id, so a retry reuses it and the door's at-most-once check catches it. A
        // denial, or a command certainly not delivered, leaves nothing behind when this
        // request made the key: nothing opened, so a retry is evaluated afresh. A key an
        // earlier attempt made keeps its command id whatever this attempt found.
        match &outcome {
            Ok(_) => {
                sqlx::query(
                    "UPDATE idempotency_keys SET status = 'done', http_status = $1, \
                     response = $2 WHERE user_id = $3 AND idem_key = $4",
                )
                .bind(i64::from(status.as_u16()))
                .bind(body.to_string())
                .bind(&actor_id)
                .bind(key)
                .execute(state.pool())
                .await?;
            }
            Err(Reason::Unconfirmed) => {
                sqlx::query(
                    "UPDATE idempotency_keys SET status = 'unconfirmed' \
                     WHERE user_id = $1 AND idem_key = $2 AND status = 'pending'",
                )
                .bind(&actor_id)
                .bind(key)
                .execute(state.pool())
                .await?;
            }
            Err(_) if fresh_key => {
                sqlx::query(
                    "DELETE FROM idempotency_keys \
                     WHERE user_id = $1 AND idem_key = $2 AND status = 'pending' \
                     AND created_at = $3",
                )
                .bind(&actor_id)
                .bind(key)
                .bind(written_at)
                .execute(state.pool())
                .await?;
            }
            Err(_) => {}
        }
    }
    state.metrics.unlock_micros_sum.fetch_add(
        started.elapsed().as_micros() as u64,
        std::sync::atomic::Ordering::Relaxed,
    );
    Metrics::inc(&state.metrics.unlock_count);
    Ok((status, Json(body)).into_response())
}

enum Attempt {
    Granted { duplicate: bool },
}

/// The command an attempt relays: its id, when its order is signed, and whether an earlier
/// attempt with it already holds an invite use.
struct Command<'a> {
    id: &'a str,
    issued_at_ms: u64,
    use_held: bool,
}

async fn attempt(
    state: &AppState,
    caller: &Caller,
    role: Role,
    lock: &LockInfo,
    req: &UnlockRequest,
    command: Command<'_>,
) -> ApiResult<Result<Attempt, Reason>> {
    let Command {
        id: command_id,
        issued_at_ms,
        use_held,
    } = command;
    let (actor_id, _) = caller.actor();
    let window = Duration::from_secs(10);
    if !state.throttle.take(
        &format!("unlock:{actor_id}"),
        state.settings.unlocks_per_window,
        window,
    ) {
        return Ok(Err(Reason::RateLimited));
    }
    let now = now_s();
    let grant = match caller.user_id() {
        Some(user) => match check_grant(state, user, role, lock, now, use_held).await? {
            Ok(g) => g,
            Err(r) => return Ok(Err(r)),
        },
        None if role.opens_everything() => Grant::Role,
        None => return Ok(Err(Reason::NoAccess)),
    };
    if let Err(r) = door_policy(lock, req, now) {
        return Ok(Err(r));
    }
    let Some(controller) = lock.controller_id.clone() else {
        return Ok(Err(Reason::NotConfigured));
    };
    // The door executes only what the organization signed for it (`CommandOrder`): signed
    // before an invite use is reserved, so a signing failure costs the visitor nothing.
    let command_id = Id::parse(command_id).unwrap_or_default();
    let holder = caller.user_id().map(|u| Holder {
        kind: if role == Role::Guest {
            HolderKind::Guest
        } else {
            HolderKind::User
        },
        id: pid(u),
    });
    let key = crate::orgkeys::signing_key(state, &lock.org_id).await?;
    let order = CommandOrder {
        org: pid(&lock.org_id),
        controller: pid(&controller),
        command: command_id,
        lock: pid(&lock.id),
        issued_at_ms,
        actor: holder,
    }
    .sign(&key, &state.rng)
    .map_err(|e| anyhow::anyhow!("signing the command order: {e}"))?;
    // Reserve one use of a limited invite before relaying; give it back only if nothing can
    // have opened. A retry of a command an earlier attempt left unconfirmed (`use_held`)
    // reserves none: that attempt's use counts for this command id, which runs at most once.
    let limited_invite = match &grant {
        Grant::Invite {
            invite_id,
            limited: true,
        } if !use_held => Some(invite_id.clone()),
        _ => None,
    };
    if let Some(invite) = &limited_invite {
        let n = sqlx::query(
            "UPDATE invites SET unlock_count = unlock_count + 1 WHERE id = $1 \
             AND (max_unlocks IS NULL OR unlock_count < max_unlocks)",
        )
        .bind(invite)
        .execute(state.pool())
        .await?
        .rows_affected();
        if n == 0 {
            return Ok(Err(Reason::UseLimitExceeded));
        }
    }
    let command = CloudCommand {
        command_id,
        lock: pid(&lock.id),
        actor: holder,
        issued_at_ms,
        order: base64::engine::general_purpose::STANDARD.encode(order),
    };
    let result = state
        .relay
        .deliver(controller, command, state.settings.unlock_timeout)
        .await;
    let verdict = match result {
        Ok(r) if r.granted => Ok(Attempt::Granted {
            duplicate: r.duplicate,
        }),
        Ok(r) => Err(r.reason.unwrap_or(Reason::NoAccess)),
        // Certainly not delivered: nothing opened.
        Err(RelayError::Offline) => Err(Reason::DoorOffline),
        // Sent, or may have been, without an answer: the door may have opened.
        Err(RelayError::Timeout) => Err(Reason::Unconfirmed),
    };
    // The door may have opened on an unconfirmed command: its use stays counted.
    if verdict.is_err()
        && !matches!(verdict, Err(Reason::Unconfirmed))
        && let Some(invite) = &limited_invite
    {
        let _ = sqlx::query(
            "UPDATE invites SET unlock_count = unlock_count - 1 WHERE id = $1 AND unlock_count > 0",
        )
        .bind(invite)
        .execute(state.pool())
        .await;
    }
    Ok(verdict)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lock() -> LockInfo {
        LockInfo {
            id: "6f1c2a9e-0000-4000-8000-000000000001".into(),
            org_id: String::new(),
            place_id: String::new(),
            name: "Front door".into(),
            controller_id: None,
            walk_up_allowed: false,
            geofence_radius_m: None,
            reader_restriction: false,
            lockdown: false,
            proximity_secret: hex::encode([7u8; 32]),
            tx_power: -59,
            place_lockdown: false,
            time_zone: "Europe/Berlin".into(),
            latitude: Some(52.52),
            longitude: Some(13.405),
            online: true,
        }
    }

    #[test]
    fn lockdown_of_lock_or_place_denies() {
        let mut l = lock();
        assert_eq!(door_policy(&l, &UnlockRequest::default(), 0), Ok(()));
        l.place_lockdown = true;
        assert_eq!(
            door_policy(&l, &UnlockRequest::default(), 0),
            Err(Reason::Lockdown)
        );
    }

    #[test]
    fn geofence_needs_a_location_inside_the_radius() {
        let mut l = lock();
        l.geofence_radius_m = Some(100.0);
        let near = UnlockRequest {
            latitude: Some(52.5201),
            longitude: Some(13.405),
            ..Default::default()
        };
        let far = UnlockRequest {
            latitude: Some(52.53),
            longitude: Some(13.405),
            ..Default::default()
        };
        assert_eq!(door_policy(&l, &near, 0), Ok(()));
        assert_eq!(door_policy(&l, &far, 0), Err(Reason::OutsideGeofence));
        assert_eq!(
            door_policy(&l, &UnlockRequest::default(), 0),
            Err(Reason::OutsideGeofence)
        );
    }

    #[test]
    fn reader_restriction_checks_the_rotating_code() {
        let mut l = lock();
        l.reader_restriction = true;
        let now = 1_800_000_000u64;
        let code = keyway_protocol::advert::proximity_code(&[7u8; 32], pid(&l.id), now);
        let ok = UnlockRequest {
            proximity_proof: Some(code),
            ..Default::default()
        };
        let bad = UnlockRequest {
            proximity_proof: Some(code ^ 1),
            ..Default::default()
        };
        assert_eq!(door_policy(&l, &ok, now as i64), Ok(()));
        assert_eq!(door_policy(&l, &bad, now as i64), Err(Reason::TooFar));
        assert_eq!(door_policy(&l, &ok, now as i64 + 3600), Err(Reason::TooFar));
    }
}
