//! The controller in-process against a test server (keyway-channel over axum) and phones on
//! the simulated radio running the real `Initiator`.

mod common;

use common::*;
use keyway_channel::{DoorEventKind, Method};
use keyway_controller::CoreOptions;
use keyway_controller::core::Connection;
use keyway_protocol::credential::ScopeEntry;
use keyway_protocol::handshake::Action;
use keyway_protocol::{Id, Reason, SigningKey};
use keyway_sim_radio::HubConfig;
use ring::rand::SystemRandom;
use std::time::Duration;

fn reason_of(
    r: &Result<keyway_protocol::handshake::ResultBody, keyway_sim_radio::exchange::ExchangeError>,
) -> Option<Reason> {
    match r {
        Ok(body) => body.reason,
        Err(e) => e.reason(),
    }
}

#[tokio::test]
async fn ble_unlock_is_granted_logged_and_uploaded() {
    let rig = Rig::new().await;
    rig.ready().await;
    let phone = rig.phone(0.5, 0.0).await;
    let (cred_id, cred) = rig.credential(|_| {});
    let body = rig
        .unlock(&phone, LOCK_A, &cred, random_id())
        .await
        .unwrap();
    assert!(body.granted, "{body:?}");
    assert_eq!(body.relay_ms, 1000);
    assert!(!body.duplicate);
    let core = rig.controller().core().clone();
    assert_eq!(core.actuations(LOCK_A), 1);
    let state = rig.server.state.clone();
    eventually("event uploaded", 10, || state.event_count() >= 1).await;
    let e = &state.events()[0];
    assert_eq!(e.seq, body.event_seq);
    assert_eq!(e.kind, DoorEventKind::UnlockAttempt);
    assert_eq!(e.method, Some(Method::Ble));
    assert_eq!(e.granted, Some(true));
    assert_eq!(e.credential, Some(cred_id));
    eventually("controller log trimmed", 10, || {
        core.status().pending_events == 0
    })
    .await;
    // The status file is written by the running process.
    let dir = rig.data_dir().to_path_buf();
    eventually("status file after the upload", 5, || {
        keyway_controller::status::render(&dir)
            .is_ok_and(|t| t.contains("Front door") && t.contains("last seq 1, acked 1"))
    })
    .await;
    let text = keyway_controller::status::render(&dir).unwrap();
    assert!(text.contains("running"), "{text}");
    assert!(text.contains("Online"), "{text}");
    assert!(text.contains("events       0 pending"), "{text}");
}

#[tokio::test]
async fn every_offline_denial_reason_is_answered_and_logged() {
    let rig = Rig::new().await;
    rig.ready().await;
    let phone = rig.phone(0.5, 0.0).await;
    let now = now_secs();
    let mut expected = Vec::new();

    let (_, expired) = rig.credential(|c| {
        c.not_before = now - 7200;
        c.not_after = now - 3600;
    });
    expected.push((expired, LOCK_A, Reason::Expired));
    let (_, early) = rig.credential(|c| {
        c.not_before = now + 3600;
        c.not_after = now + 7200;
    });
    expected.push((early, LOCK_A, Reason::NotYetValid));
    let (_, schedule) = rig.credential(|c| c.schedule = Some(schedule_excluding_now()));
    expected.push((schedule, LOCK_A, Reason::OutsideSchedule));
    let (_, wrong_lock) = rig.credential(|c| c.scope = vec![ScopeEntry::Lock(LOCK_B)]);
    expected.push((wrong_lock, LOCK_A, Reason::WrongLock));
    let (other_key, _) = SigningKey::generate(&SystemRandom::new()).unwrap();
    let (_, unknown_key) = rig.credential_signed_by(&other_key, |_| {});
    expected.push((unknown_key, LOCK_A, Reason::UnknownOrgKey));

    for (cred, lock, reason) in &expected {
        let r = rig.unlock(&phone, *lock, cred, random_id()).await;
        assert_eq!(reason_of(&r), Some(*reason), "{r:?}");
        assert!(!r.unwrap().granted);
    }

    // Bad device signature: a credential for another device key, signed by this phone.
    let other_device = Device::new();
    let (_, cred) = rig.credential(|c| c.device_key = other_device.0.public_key());
    let r = rig.unlock(&phone, LOCK_A, &cred, random_id()).await;
    assert_eq!(reason_of(&r), Some(Reason::BadDeviceSignature), "{r:?}");

    // Use limit: one unlock, then refused.
    let (_, once) = rig.credential(|c| c.max_uses = Some(1));
    let r = rig
        .unlock(&phone, LOCK_A, &once, random_id())
        .await
        .unwrap();
    assert!(r.granted);
    let r = rig.unlock(&phone, LOCK_A, &once, random_id()).await;
    assert_eq!(reason_of(&r), Some(Reason::UseLimitExceeded), "{r:?}");

    // Lockdown on lock B (phone next to it).
    let near_b = rig.phone(30.5, 0.0).await;
    let (_, cred) = rig.credential(|_| {});
    let r = rig.unlock(&near_b, LOCK_B, &cred, random_id()).await;
    assert_eq!(reason_of(&r), Some(Reason::Lockdown), "{r:?}");

    // Walk-up: granted at 0.3 m, too far at 15 m (the door's own RSSI check, -70 dBm).
    let trusted = rig.trusted();
    let near = rig.phone(0.3, 0.0).await;
    let r = unlock_with(
        &near,
        LOCK_A,
        Action::WalkUp,
        &trusted,
        &cred,
        &rig.device,
        random_id(),
    )
    .await
    .unwrap();
    assert!(r.granted, "{r:?}");
    let far = rig.phone(15.0, 0.0).await;
    let r = unlock_with(
        &far,
        LOCK_A,
        Action::WalkUp,
        &trusted,
        &cred,
        &rig.device,
        random_id(),
    )
    .await;
    assert_eq!(reason_of(&r), Some(Reason::TooFar), "{r:?}");

    // Every attempt is in the uploaded log with its reason, sequence numbers without gaps.
    let state = rig.server.state.clone();
    eventually("all attempts uploaded", 10, || state.event_count() >= 11).await;
    let events = state.events();
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=events.len() as u64).collect::<Vec<_>>());
    for reason in [
        Reason::Expired,
        Reason::NotYetValid,
        Reason::OutsideSchedule,
        Reason::WrongLock,
        Reason::UnknownOrgKey,
        Reason::BadDeviceSignature,
        Reason::UseLimitExceeded,
        Reason::Lockdown,
        Reason::TooFar,
    ] {
        assert!(
            events
                .iter()
                .any(|e| e.reason == Some(reason) && e.granted == Some(false)),
            "no event for {reason}"
        );
    }
    assert!(
        events
            .iter()
            .any(|e| e.method == Some(Method::WalkUp) && e.granted == Some(true))
    );
}

#[tokio::test]
async fn a_door_that_ranges_decides_walk_up_by_the_distance() {
    let rig = Rig::with_hub(HubConfig {
        ranging_sigma_m: Some(0.05),
        ..HubConfig::default()
    })
    .await;
    rig.ready().await;
    let (_, cred) = rig.credential(|_| {});
    let trusted = rig.trusted();
    let walk_up = |phone| {
        unlock_with(
            phone,
            LOCK_A,
            Action::WalkUp,
            &trusted,
            &cred,
            &rig.device,
            random_id(),
        )
    };
    // At 2 m the phone is loud enough for the RSSI floor most of the time, but ranged too far.
    let short = rig.phone(2.0, 0.0).await;
    for _ in 0..3 {
        let r = walk_up(&short).await;
        assert_eq!(reason_of(&r), Some(Reason::TooFar), "{r:?}");
    }
    // A tap is the user's own act: the same phone opens the door.
    let r = rig
        .unlock(&short, LOCK_A, &cred, random_id())
        .await
        .unwrap();
    assert!(r.granted, "{r:?}");
    let near = rig.phone(0.5, 0.0).await;
    let r = walk_up(&near).await.unwrap();
    assert!(r.granted, "{r:?}");
    let state = rig.server.state.clone();
    eventually("attempts uploaded", 10, || state.event_count() >= 5).await;
    let walk_ups: Vec<_> = state
        .events()
        .into_iter()
        .filter(|e| e.method == Some(Method::WalkUp))
        .map(|e| (e.granted, e.reason))
        .collect();
    assert_eq!(
        walk_ups,
        [
            (Some(false), Some(Reason::TooFar)),
            (Some(false), Some(Reason::TooFar)),
            (Some(false), Some(Reason::TooFar)),
            (Some(true), None),
        ]
    );
}

#[tokio::test]
async fn revoked_credential_is_refused_once_the_list_arrives() {
    let rig = Rig::new().await;
    rig.ready().await;
    let phone = rig.phone(0.5, 0.0).await;
    let (cred_id, cred) = rig.credential(|_| {});
    assert!(
        rig.unlock(&phone, LOCK_A, &cred, random_id())
            .await
            .unwrap()
            .granted
    );

    rig.server.revoke(5, vec![cred_id]);
    let core = rig.controller().core().clone();
    eventually("revocation list applied", 10, || {
        core.status().revocation_serial == Some(5)
    })
    .await;
    let r = rig.unlock(&phone, LOCK_A, &cred, random_id()).await;
    assert_eq!(reason_of(&r), Some(Reason::Revoked), "{r:?}");

    // An older list (lower serial) cannot un-revoke it.
    rig.server.revoke(4, vec![]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(core.status().revocation_serial, Some(5));
    let r = rig.unlock(&phone, LOCK_A, &cred, random_id()).await;
    assert_eq!(reason_of(&r), Some(Reason::Revoked), "{r:?}");
    // Other credentials still open.
    let (_, fresh) = rig.credential(|_| {});
    assert!(
        rig.unlock(&phone, LOCK_A, &fresh, random_id())
            .await
            .unwrap()
            .granted
    );
}

#[tokio::test]
async fn a_cached_list_that_no_longer_verifies_still_holds_its_serial() {
    let mut rig = Rig::new().await;
    rig.ready().await;
    let (cred_id, cred) = rig.credential(|_| {});
    rig.server.revoke(5, vec![cred_id]);
    let core = rig.controller().core().clone();
    eventually("revocation list applied", 10, || {
        core.status().revocation_serial == Some(5)
    })
    .await;

    // On disk the list is replaced by one the door's keys do not verify, and the server
    // has nothing to resend: the door starts without a list, but not without its serial.
    rig.stop_controller().await;
    *rig.server.state.revocations.lock().unwrap() = None;
    let path = rig.data_dir().join("revocations.json");
    let mut cached: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let (stranger, _) = SigningKey::generate(&SystemRandom::new()).unwrap();
    let foreign = keyway_protocol::revocation::RevocationList {
        org: ORG,
        serial: 5,
        ..Default::default()
    }
    .sign(&stranger, &SystemRandom::new())
    .unwrap();
    use base64::Engine as _;
    let foreign = base64::engine::general_purpose::STANDARD.encode(foreign);
    cached["list"] = foreign.clone().into();
    std::fs::write(&path, serde_json::to_vec(&cached).unwrap()).unwrap();
    rig.start_controller().await;
    let core = configured(&rig).await;
    assert_eq!(core.status().revocation_serial, Some(5));

    // An older list, replayed, is still refused; the same serial again is taken.
    rig.server.revoke(4, vec![]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(core.status().revocation_serial, Some(5));
    rig.server.revoke(5, vec![cred_id]);
    let phone = rig.phone(0.5, 0.0).await;
    eventually("the same serial's list applied", 10, || {
        let on_disk = std::fs::read(&path).unwrap_or_default();
        serde_json::from_slice::<serde_json::Value>(&on_disk)
            .is_ok_and(|v| v["list"].as_str() != Some(&foreign))
    })
    .await;
    let r = rig.unlock(&phone, LOCK_A, &cred, random_id()).await;
    assert_eq!(reason_of(&r), Some(Reason::Revoked), "{r:?}");
}

#[tokio::test]
async fn server_down_ble_works_from_cache_and_events_upload_exactly_once() {
    let mut rig = Rig::new().await;
    rig.ready().await;
    let phone = rig.phone(0.5, 0.0).await;
    let (_, cred) = rig.credential(|_| {});
    assert!(
        rig.unlock(&phone, LOCK_A, &cred, random_id())
            .await
            .unwrap()
            .granted
    );
    let state = rig.server.state.clone();
    eventually("first event uploaded", 10, || state.event_count() == 1).await;

    rig.server.stop().await;
    let core = rig.controller().core().clone();
    eventually("controller offline", 10, || {
        core.status().connection != Connection::Online
    })
    .await;
    for _ in 0..3 {
        assert!(
            rig.unlock(&phone, LOCK_A, &cred, random_id())
                .await
                .unwrap()
                .granted
        );
    }
    let (_, expired) = rig.credential(|c| {
        c.not_before = now_secs() - 7200;
        c.not_after = now_secs() - 3600;
    });
    let r = rig.unlock(&phone, LOCK_A, &expired, random_id()).await;
    assert_eq!(reason_of(&r), Some(Reason::Expired));
    assert_eq!(core.status().pending_events, 4);

    rig.server.restart().await;
    eventually("events uploaded after reconnect", 15, || {
        state.event_count() == 5
    })
    .await;
    eventually("controller log trimmed", 10, || {
        core.status().pending_events == 0
    })
    .await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let seqs: Vec<u64> = state.events().iter().map(|e| e.seq).collect();
    assert_eq!(seqs, vec![1, 2, 3, 4, 5]);
    assert!(state.resent_after_ack.lock().unwrap().is_empty());
    assert_eq!(*state.acked.lock().unwrap(), 5);
    assert_eq!(core.actuations(LOCK_A), 4);
}

#[tokio::test]
async fn controller_restart_mid_outage_loses_nothing() {
    let mut rig = Rig::new().await;
    rig.ready().await;
    let phone = rig.phone(0.5, 0.0).await;
    let (_, cred) = rig.credential(|_| {});
    let (_, once) = rig.credential(|c| c.max_uses = Some(1));
    rig.server.stop().await;
    let retried_command = random_id();
    let first = rig
        .unlock(&phone, LOCK_A, &once, retried_command)
        .await
        .unwrap();
    assert!(first.granted);
    assert!(
        rig.unlock(&phone, LOCK_A, &cred, random_id())
            .await
            .unwrap()
            .granted
    );

    // A second controller on the same data directory is refused.
    let mut dup =
        keyway_controller::RunOptions::new(rig.data_dir(), keyway_controller::Radio::None);
    dup.channel = Some(
        keyway_controller::channel::ChannelOptions::for_server(&rig.server.url(), None).unwrap(),
    );
    let err = keyway_controller::Controller::start(dup).await.unwrap_err();
    assert!(
        err.to_string().contains("another keyway-controller"),
        "{err}"
    );

    // Power loss: the process dies and a half-written record is left at the log's tail.
    rig.stop_controller().await;
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(rig.path("events.log"))
            .unwrap();
        f.write_all(b"deadbeef {\"seq\":3,\"at_ms\"").unwrap();
    }
    rig.start_controller().await;
    let core = rig.controller().core().clone();
    let s = core.status();
    assert_eq!(s.pending_events, 2);
    assert!(
        s.config_version.is_some() && s.trusted_time,
        "cache lost: {s:?}"
    );

    // Still offline: BLE works from the cache, use limits and command ids survived.
    let again = rig
        .unlock(&phone, LOCK_A, &once, retried_command)
        .await
        .unwrap();
    assert!(again.granted && again.duplicate, "{again:?}");
    assert_eq!(again.event_seq, first.event_seq);
    let r = rig.unlock(&phone, LOCK_A, &once, random_id()).await;
    assert_eq!(reason_of(&r), Some(Reason::UseLimitExceeded));
    assert!(
        rig.unlock(&phone, LOCK_A, &cred, random_id())
            .await
            .unwrap()
            .granted
    );
    assert_eq!(
        core.actuations(LOCK_A),
        1,
        "the retried command must not actuate"
    );

    rig.server.restart().await;
    let state = rig.server.state.clone();
    eventually("all events uploaded", 15, || state.event_count() == 5).await;
    eventually("controller log trimmed", 10, || {
        core.status().pending_events == 0
    })
    .await;
    let events = state.events();
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, vec![1, 2, 3, 4, 5]);
    assert!(state.resent_after_ack.lock().unwrap().is_empty());
}

/// The use counts `state.json` keeps for `lock`, by credential id (UUID text).
fn persisted_uses(
    rig: &Rig,
    lock: keyway_protocol::Id,
) -> serde_json::Map<String, serde_json::Value> {
    let text = std::fs::read_to_string(rig.path("state.json")).unwrap();
    let state: serde_json::Value = serde_json::from_str(&text).unwrap();
    state["memories"][lock.to_string()]["uses"]
        .as_object()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
async fn state_file_counts_only_limited_credentials_and_sheds_ended_ones() {
    let mut rig = Rig::new().await;
    rig.ready().await;
    let (limited_id, limited) = rig.credential(|c| c.max_uses = Some(3));
    let (ended, lately_ended) = (random_id(), random_id());
    let now = now_secs();

    // A state file from before counts kept ends: a bare count per credential. Entries in the
    // new form with ends long and lately past sit beside it.
    rig.stop_controller().await;
    let old = serde_json::json!({
        "applied_seq": 0,
        "memories": { LOCK_A.to_string(): {
            "commands": [],
            "uses": {
                limited_id.to_string(): 2,
                ended.to_string(): { "count": 1, "not_after": now - 3 * 86_400 },
                lately_ended.to_string(): { "count": 1, "not_after": now - 3600 },
            },
        }},
        "commands": [],
    });
    std::fs::write(rig.path("state.json"), old.to_string()).unwrap();
    rig.start_controller().await;
    rig.ready().await;
    let phone = rig.phone(0.5, 0.0).await;

    // The old count still limits: one use left of three.
    let r = rig
        .unlock(&phone, LOCK_A, &limited, random_id())
        .await
        .unwrap();
    assert!(r.granted, "{r:?}");
    let r = rig.unlock(&phone, LOCK_A, &limited, random_id()).await;
    assert_eq!(reason_of(&r), Some(Reason::UseLimitExceeded), "{r:?}");

    // Credentials without a limit open the door and leave no count behind.
    for _ in 0..3 {
        let (_, unlimited) = rig.credential(|_| {});
        let r = rig
            .unlock(&phone, LOCK_A, &unlimited, random_id())
            .await
            .unwrap();
        assert!(r.granted, "{r:?}");
    }

    let uses = persisted_uses(&rig, LOCK_A);
    let ids: std::collections::BTreeSet<String> = uses.keys().cloned().collect();
    let expected = [limited_id.to_string(), lately_ended.to_string()];
    assert_eq!(ids, expected.into(), "{uses:?}");
    // The grant filled the old entry's end in, so it is shed in its turn.
    assert_eq!(uses[&limited_id.to_string()]["count"], 3);
    assert!(
        uses[&limited_id.to_string()]["not_after"].is_u64(),
        "{uses:?}"
    );
}

#[tokio::test]
async fn use_limit_holds_when_the_state_write_was_lost() {
    let mut rig = Rig::new().await;
    rig.ready().await;
    let phone = rig.phone(0.5, 0.0).await;
    let (once_id, once) = rig.credential(|c| c.max_uses = Some(1));
    let (unlimited_id, unlimited) = rig.credential(|_| {});
    // Offline, so the log keeps the events for replay.
    rig.server.stop().await;
    let before = std::fs::read(rig.path("state.json")).ok();
    let first = random_id();
    assert!(
        rig.unlock(&phone, LOCK_A, &once, first)
            .await
            .unwrap()
            .granted
    );
    assert!(
        rig.unlock(&phone, LOCK_A, &unlimited, random_id())
            .await
            .unwrap()
            .granted
    );

    // Power lost after the log append, before `state.json` recorded the grants.
    rig.stop_controller().await;
    match before {
        Some(bytes) => std::fs::write(rig.path("state.json"), bytes).unwrap(),
        None => std::fs::remove_file(rig.path("state.json")).unwrap(),
    }
    rig.start_controller().await;
    // The log names the credentials but not their limits: both are counted.
    let uses = persisted_uses(&rig, LOCK_A);
    assert_eq!(uses.len(), 2, "{uses:?}");
    assert!(uses[&once_id.to_string()]["not_after"].is_null());

    let r = rig.unlock(&phone, LOCK_A, &once, random_id()).await;
    assert_eq!(reason_of(&r), Some(Reason::UseLimitExceeded), "{r:?}");
    let again = rig.unlock(&phone, LOCK_A, &once, first).await.unwrap();
    assert!(again.granted && again.duplicate, "{again:?}");
    assert_eq!(rig.controller().core().actuations(LOCK_A), 0);

    // The unlimited credential's next grant drops the count the replay made.
    assert!(
        rig.unlock(&phone, LOCK_A, &unlimited, random_id())
            .await
            .unwrap()
            .granted
    );
    let uses = persisted_uses(&rig, LOCK_A);
    assert!(!uses.contains_key(&unlimited_id.to_string()), "{uses:?}");
    assert_eq!(uses[&once_id.to_string()]["count"], 1);
}

/// Only an order the organization signed for this controller opens a door: forged, moved to
/// another lock, meant for another controller, or missing, each is refused and logged, and
/// the genuine command with the same id still opens once afterwards.
#[tokio::test]
async fn unsigned_or_forged_cloud_commands_open_nothing() {
    use base64::Engine;
    use keyway_channel::ServerMessage;
    use keyway_protocol::command::CommandOrder;
    use keyway_protocol::credential::{Holder, HolderKind};

    let mut rig = Rig::new().await;
    rig.ready().await;
    let state = rig.server.state.clone();
    let id = random_id();
    let (stranger, _) = SigningKey::generate(&SystemRandom::new()).unwrap();
    let forged = rig.server.signed_command(id, LOCK_A, &stranger);
    let mut moved = rig.server.signed_command(id, LOCK_A, &state.org_key);
    moved.lock = LOCK_C;
    let mut elsewhere = rig.server.signed_command(id, LOCK_A, &state.org_key);
    let order = CommandOrder {
        org: ORG,
        controller: Id([0x41; 16]),
        command: id,
        lock: LOCK_A,
        issued_at_ms: elsewhere.issued_at_ms,
        actor: elsewhere.actor,
    }
    .sign(&state.org_key, &SystemRandom::new())
    .unwrap();
    elsewhere.order = base64::engine::general_purpose::STANDARD.encode(order);
    let mut missing = rig.server.signed_command(id, LOCK_A, &state.org_key);
    missing.order = String::new();
    // Someone else's name on a genuine order: the door's log would blame them.
    let mut misnamed = rig.server.signed_command(id, LOCK_A, &state.org_key);
    misnamed.actor = Some(Holder {
        kind: HolderKind::Guest,
        id: Id([0x61; 16]),
    });
    let mut anonymous = rig.server.signed_command(id, LOCK_A, &state.org_key);
    anonymous.actor = None;
    for command in [forged, moved, elsewhere, missing, misnamed, anonymous] {
        rig.server.push(ServerMessage::Command { command });
    }
    eventually("refusals", 10, || state.results.lock().unwrap().len() == 6).await;
    let results = state.results.lock().unwrap().clone();
    assert!(
        results.iter().all(|r| !r.granted && !r.duplicate),
        "{results:?}"
    );
    // A key the organization never had is unknown; the rest fail the signature check.
    let reasons: Vec<_> = results.iter().map(|r| r.reason).collect();
    let bad = Some(Reason::BadCommandSignature);
    assert_eq!(
        reasons,
        [Some(Reason::UnknownOrgKey), bad, bad, bad, bad, bad]
    );
    let core = rig.controller().core().clone();
    assert_eq!(core.actuations(LOCK_A) + core.actuations(LOCK_C), 0);

    // A restart rebuilds the executed commands from the event log, where the refusals are
    // too: they must still not count as this id's answer.
    rig.stop_controller().await;
    rig.start_controller().await;
    rig.ready().await;
    rig.server.command(id, LOCK_A);
    eventually("genuine result", 10, || {
        state.results.lock().unwrap().len() == 7
    })
    .await;
    let genuine = state.results.lock().unwrap()[6].clone();
    assert!(genuine.granted && !genuine.duplicate, "{genuine:?}");
    assert_eq!(rig.controller().core().actuations(LOCK_A), 1);
}

#[tokio::test]
async fn cloud_orders_dated_too_far_back_or_ahead_open_nothing() {
    use keyway_channel::ServerMessage;
    let rig = Rig::new().await;
    rig.ready().await;
    let state = rig.server.state.clone();
    let max_age = CoreOptions::default().command_max_age_ms;
    for issued_at_ms in [now_ms() - 3 * max_age, now_ms() + 3 * max_age, now_ms()] {
        let command =
            rig.server
                .signed_command_at(random_id(), LOCK_A, &state.org_key, issued_at_ms);
        rig.server.push(ServerMessage::Command { command });
    }
    eventually("results", 10, || state.results.lock().unwrap().len() == 3).await;
    let results = state.results.lock().unwrap().clone();
    let reasons: Vec<_> = results.iter().map(|r| r.reason).collect();
    let stale = Some(Reason::StaleNonce);
    assert_eq!(reasons, [stale, stale, None], "{results:?}");
    assert_eq!(rig.controller().core().actuations(LOCK_A), 1);
}

#[tokio::test]
async fn only_a_config_sealed_by_a_trusted_or_endorsed_key_is_taken() {
    use base64::Engine;
    use keyway_channel::ControllerConfig;
    use keyway_protocol::door_trust::KeyEndorsement;
    use keyway_protocol::{TrustedKey, TrustedKeys};
    let rig = Rig::new().await;
    rig.ready().await;
    let core = configured(&rig).await;
    let org_key = &rig.server.state.org_key;
    let v0 = core.status().config_version.unwrap();
    let rng = SystemRandom::new();
    let new_key = || SigningKey::generate(&rng).unwrap().0;
    let (stranger, k2, k3) = (new_key(), new_key(), new_key());
    let endorse = |by: &SigningKey, of: &SigningKey| {
        let e = KeyEndorsement {
            org: ORG,
            public_key: of.public_key(),
            endorsed_at: now_secs(),
        };
        base64::engine::general_purpose::STANDARD.encode(e.sign(by, &rng).unwrap())
    };
    let base = rig.server.state.config().unwrap();
    let config = |version: u64, trusted: &[&SigningKey], endorsements: Vec<String>| {
        let keys = trusted.iter().map(|k| TrustedKey {
            org: ORG,
            public_key: k.public_key(),
        });
        ControllerConfig {
            version,
            trusted: TrustedKeys::new(keys.collect()),
            endorsements,
            ..base.clone()
        }
    };

    // Whoever holds the channel without an organization key changes nothing: not its own
    // key (sealed by itself, or endorsed by itself), not the version, not a lock.
    let mut unsealed = config(u64::MAX, &[org_key], vec![]);
    unsealed.seal = String::new();
    let mut altered = seal_config(config(v0 + 1, &[org_key], vec![]), org_key);
    altered.locks[0].lockdown = !altered.locks[0].lockdown;
    let refused = [
        seal_config(config(v0 + 1, &[&stranger], vec![]), &stranger),
        seal_config(
            config(v0 + 1, &[&stranger], vec![endorse(&stranger, &stranger)]),
            &stranger,
        ),
        // Sealed by the real key, but naming a key nobody endorsed.
        seal_config(config(v0 + 1, &[org_key, &stranger], vec![]), org_key),
        unsealed,
        altered,
    ];
    for c in refused {
        let err = core.apply_config(c).unwrap_err();
        assert!(err.contains("seal") || err.contains("endorsed"), "{err}");
    }
    assert_eq!(core.status().config_version, Some(v0));

    // Two rotations missed while offline: the chain leads from the door's key to k3.
    let rotated = config(
        v0 + 1,
        &[&k3],
        vec![endorse(org_key, &k2), endorse(&k2, &k3)],
    );
    assert_eq!(core.apply_config(seal_config(rotated, &k3)), Ok(true));
    let phone = rig.phone(0.5, 0.0).await;
    let (_, cred) = rig.credential_signed_by(&k3, |_| {});
    assert!(
        rig.unlock(&phone, LOCK_A, &cred, random_id())
            .await
            .unwrap()
            .granted
    );
    // The retired key seals nothing any more.
    let err = core
        .apply_config(seal_config(config(v0 + 2, &[org_key], vec![]), org_key))
        .unwrap_err();
    assert!(err.contains("seal"), "{err}");
    assert_eq!(core.status().config_version, Some(v0 + 1));
}

#[tokio::test]
async fn duplicate_cloud_command_opens_once_even_across_restart() {
    let mut rig = Rig::new().await;
    rig.ready().await;
    let state = rig.server.state.clone();
    let command = random_id();
    rig.server.command(command, LOCK_A);
    eventually("first result", 10, || {
        state.results.lock().unwrap().len() == 1
    })
    .await;
    rig.server.command(command, LOCK_A);
    eventually("second result", 10, || {
        state.results.lock().unwrap().len() == 2
    })
    .await;
    let core = rig.controller().core().clone();
    assert_eq!(core.actuations(LOCK_A), 1);

    rig.stop_controller().await;
    rig.start_controller().await;
    rig.ready().await;
    rig.server.command(command, LOCK_A);
    eventually("third result", 10, || {
        state.results.lock().unwrap().len() == 3
    })
    .await;
    let results = state.results.lock().unwrap().clone();
    assert!(results[0].granted && !results[0].duplicate);
    for r in &results[1..] {
        assert!(r.granted && r.duplicate, "{r:?}");
        assert_eq!(r.event_seq, results[0].event_seq);
    }
    assert_eq!(rig.controller().core().actuations(LOCK_A), 0);

    // A command for a locked-down door is refused with its reason; unknown locks too.
    rig.server.command(random_id(), LOCK_B);
    rig.server.command(random_id(), random_id());
    eventually("refusals", 10, || state.results.lock().unwrap().len() == 5).await;
    let results = state.results.lock().unwrap().clone();
    assert_eq!(results[3].reason, Some(Reason::Lockdown));
    assert_eq!(results[4].reason, Some(Reason::NotConfigured));
    eventually("cloud events uploaded", 10, || {
        state
            .events()
            .iter()
            .filter(|e| e.method == Some(Method::Cloud))
            .count()
            == 3
    })
    .await;
}

#[tokio::test]
async fn garbage_frames_are_refused_logged_and_survived() {
    use keyway_protocol::gatt;
    use keyway_protocol::handshake::frames;
    let rig = Rig::new().await;
    rig.ready().await;
    let phone = rig.phone(0.5, 0.0).await;
    let door = LOCK_A.to_string();

    // Each case: fragments to write, and the reason the door must log.
    let hello_ok = {
        let (_, hello) = keyway_protocol::handshake::Initiator::start(
            &SystemRandom::new(),
            LOCK_A,
            Action::Unlock,
        )
        .unwrap();
        hello
    };
    let truncated_hello = &hello_ok[..hello_ok.len() - 5];
    let cases: Vec<(Vec<Vec<u8>>, Reason)> = vec![
        (
            vec![vec![0xC0, 0x00, 0x03, 1, 2, 3]],
            Reason::MalformedFrame,
        ),
        (vec![vec![0xC0, 0x10, 0x00, 1]], Reason::FrameTooLarge),
        (vec![vec![0x05, 1, 2, 3]], Reason::MalformedFrame),
        (
            gatt::fragment(truncated_hello, 185).unwrap(),
            Reason::MalformedFrame,
        ),
        (
            gatt::fragment(&[frames::AUTH, 0, 0, 0, 0, 0, 0], 185).unwrap(),
            Reason::UnexpectedMessage,
        ),
        (vec![vec![]], Reason::MalformedFrame),
    ];
    for (frags, reason) in &cases {
        let mut link = phone.connect_door(&door).await.unwrap();
        for f in frags {
            link.write(f).await.unwrap();
        }
        // The door answers with an ERROR frame and drops the link.
        let msg = keyway_sim_radio::exchange::recv_message(&mut link, Duration::from_secs(3))
            .await
            .unwrap();
        assert_eq!(frames::decode_error(&msg).unwrap(), *reason);
        assert_eq!(link.next_notification().await, None);
    }

    // Valid HELLO, then a forged AUTH: decryption fails, ERROR, link dropped.
    let mut link = phone.connect_door(&door).await.unwrap();
    keyway_sim_radio::exchange::send_message(&link, &hello_ok)
        .await
        .unwrap();
    let challenge = keyway_sim_radio::exchange::recv_message(&mut link, Duration::from_secs(3))
        .await
        .unwrap();
    assert_eq!(challenge[0], frames::CHALLENGE);
    let forged = frames::Sealed {
        frame_type: frames::AUTH,
        counter: 0,
        ciphertext: vec![0u8; 200],
    }
    .encode();
    keyway_sim_radio::exchange::send_message(&link, &forged)
        .await
        .unwrap();
    let msg = keyway_sim_radio::exchange::recv_message(&mut link, Duration::from_secs(3))
        .await
        .unwrap();
    assert_eq!(frames::decode_error(&msg).unwrap(), Reason::DecryptFailed);

    // HELLO for a lock this radio is not: refused.
    let (_, hello_b) =
        keyway_protocol::handshake::Initiator::start(&SystemRandom::new(), LOCK_B, Action::Unlock)
            .unwrap();
    let mut link = phone.connect_door(&door).await.unwrap();
    keyway_sim_radio::exchange::send_message(&link, &hello_b)
        .await
        .unwrap();
    let msg = keyway_sim_radio::exchange::recv_message(&mut link, Duration::from_secs(3))
        .await
        .unwrap();
    assert_eq!(frames::decode_error(&msg).unwrap(), Reason::WrongLock);

    // Raw garbage on the hub socket itself.
    phone.send_line("\u{0}\u{1}garbage".into()).await.unwrap();

    // Still up: a real unlock works.
    let (_, cred) = rig.credential(|_| {});
    assert!(
        rig.unlock(&phone, LOCK_A, &cred, random_id())
            .await
            .unwrap()
            .granted
    );
    let state = rig.server.state.clone();
    eventually("attempts logged", 10, || {
        state.event_count() == cases.len() + 3
    })
    .await;
    let events = state.events();
    assert!(
        events
            .iter()
            .any(|e| e.reason == Some(Reason::FrameTooLarge))
    );
    assert!(
        events
            .iter()
            .any(|e| e.reason == Some(Reason::DecryptFailed))
    );
    assert!(
        events
            .iter()
            .any(|e| e.reason == Some(Reason::UnexpectedMessage))
    );
    assert_eq!(
        events.iter().filter(|e| e.granted == Some(false)).count(),
        cases.len() + 2
    );
}

#[tokio::test]
async fn door_sensor_reports_opened_forced_held_and_closed() {
    let rig = Rig::with_options(CoreOptions {
        held_open_ms: 300,
        ..CoreOptions::default()
    })
    .await;
    rig.ready().await;
    let core = rig.controller().core().clone();
    // Forced: opened without an unlock.
    core.door_sensor(LOCK_A, true);
    core.door_sensor(LOCK_A, false);
    // Opened after a cloud unlock, then held open past the limit.
    rig.server.command(random_id(), LOCK_A);
    let state = rig.server.state.clone();
    eventually("command result", 10, || {
        state.results.lock().unwrap().len() == 1
    })
    .await;
    core.door_sensor(LOCK_A, true);
    tokio::time::sleep(Duration::from_millis(600)).await;
    core.door_sensor(LOCK_A, false);
    eventually("sensor events uploaded", 10, || state.event_count() == 6).await;
    let kinds: Vec<DoorEventKind> = state.events().iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        vec![
            DoorEventKind::DoorForced,
            DoorEventKind::DoorClosed,
            DoorEventKind::UnlockAttempt,
            DoorEventKind::DoorOpened,
            DoorEventKind::DoorHeldOpen,
            DoorEventKind::DoorClosed,
        ]
    );
}

#[tokio::test]
async fn clock_signature_version_walk_up_and_stale_nonce_denials() {
    use keyway_protocol::handshake::{Initiator, frames};
    use keyway_sim_radio::exchange::{recv_message, send_message};

    // No time statement ever arrives: validity windows cannot be checked.
    let rig = Rig::without_trusted_time().await;
    let core = rig.controller().core().clone();
    eventually("configuration", 10, || {
        core.status().config_version.is_some()
    })
    .await;
    let phone = rig.phone(0.5, 0.0).await;
    phone
        .next_advert(Some(&LOCK_A.to_string()), Duration::from_secs(5))
        .await
        .unwrap();
    let (_, cred) = rig.credential(|_| {});
    let r = rig.unlock(&phone, LOCK_A, &cred, random_id()).await;
    assert_eq!(reason_of(&r), Some(Reason::ClockUntrusted), "{r:?}");

    let rig = Rig::new().await;
    rig.ready().await;
    let phone = rig.phone(0.5, 0.0).await;
    let (_, cred) = rig.credential(|_| {});

    // A credential whose org signature was tampered with.
    let mut forged = cred.clone();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    let r = rig.unlock(&phone, LOCK_A, &forged, random_id()).await;
    assert_eq!(reason_of(&r), Some(Reason::BadCredentialSignature), "{r:?}");

    // Walk-up on a door where it is off (phone next to lock C).
    let near_c = rig.phone(60.3, 0.0).await;
    let r = unlock_with(
        &near_c,
        LOCK_C,
        Action::WalkUp,
        &rig.trusted(),
        &cred,
        &rig.device,
        random_id(),
    )
    .await;
    assert_eq!(reason_of(&r), Some(Reason::WalkUpDisabled), "{r:?}");

    // A future protocol version is refused before any key work.
    let rng = SystemRandom::new();
    let (_, hello) = Initiator::start_with_version(&rng, LOCK_A, Action::Unlock, 9).unwrap();
    let mut link = phone.connect_door(&LOCK_A.to_string()).await.unwrap();
    send_message(&link, &hello).await.unwrap();
    let msg = recv_message(&mut link, Duration::from_secs(3))
        .await
        .unwrap();
    assert_eq!(
        frames::decode_error(&msg).unwrap(),
        Reason::UnsupportedVersion
    );

    // AUTH later than the door nonce's validity (10 s): refused as stale.
    let (mut initiator, hello) = Initiator::start(&rng, LOCK_A, Action::Unlock).unwrap();
    let mut link = phone.connect_door(&LOCK_A.to_string()).await.unwrap();
    send_message(&link, &hello).await.unwrap();
    let challenge = recv_message(&mut link, Duration::from_secs(3))
        .await
        .unwrap();
    let command = random_id();
    let sign = initiator
        .on_challenge(&challenge, &rig.trusted(), now_secs(), command)
        .unwrap();
    tokio::time::sleep(Duration::from_millis(10_300)).await;
    let signature = keyway_protocol::keys::DeviceSigner::sign(&rig.device, &sign.message).unwrap();
    let auth = initiator.auth_frame(&cred, &signature).unwrap();
    send_message(&link, &auth).await.unwrap();
    let result = recv_message(&mut link, Duration::from_secs(3))
        .await
        .unwrap();
    let body = initiator.on_result(&result).unwrap();
    assert_eq!(body.reason, Some(Reason::StaleNonce), "{body:?}");
    assert_eq!(rig.controller().core().actuations(LOCK_A), 0);

    let state = rig.server.state.clone();
    eventually("attempts uploaded", 10, || state.event_count() == 4).await;
    for reason in [
        Reason::BadCredentialSignature,
        Reason::WalkUpDisabled,
        Reason::UnsupportedVersion,
        Reason::StaleNonce,
    ] {
        assert!(
            state.events().iter().any(|e| e.reason == Some(reason)),
            "no event for {reason}"
        );
    }
}

#[tokio::test]
async fn random_fragment_storms_do_not_take_the_door_down() {
    let rig = Rig::new().await;
    rig.ready().await;
    let phone = rig.phone(0.5, 0.0).await;
    let mut noise = keyway_sim_radio::Noise::new(0xF022);
    for round in 0..30 {
        let link = phone.connect_door(&LOCK_A.to_string()).await.unwrap();
        for _ in 0..(1 + noise.next_u64() % 6) {
            let len = (noise.next_u64() % 182) as usize;
            let mut frag: Vec<u8> = (0..len).map(|_| noise.next_u64() as u8).collect();
            // Bias some rounds towards plausible headers so the reassembler gets deeper.
            if round % 3 == 0 && !frag.is_empty() {
                frag[0] = 0x80 | 0x40;
            }
            if link.write(&frag).await.is_err() {
                break;
            }
        }
        link.close().await;
    }
    // The hub socket itself gets garbage too.
    for _ in 0..20 {
        let line: String = (0..(noise.next_u64() % 200))
            .map(|_| char::from(32 + (noise.next_u64() % 95) as u8))
            .collect();
        phone.send_line(line).await.unwrap();
    }
    let (_, cred) = rig.credential(|_| {});
    let r = rig
        .unlock(&phone, LOCK_A, &cred, random_id())
        .await
        .unwrap();
    assert!(r.granted, "{r:?}");
    assert_eq!(rig.controller().core().actuations(LOCK_A), 1);
}

/// The running controller's core, once it has its configuration (trusted time or not).
async fn configured(rig: &Rig) -> std::sync::Arc<keyway_controller::core::Core> {
    let core = rig.controller().core().clone();
    eventually("configuration", 10, || {
        core.status().config_version.is_some()
    })
    .await;
    core
}

#[tokio::test]
async fn host_clock_stepped_back_between_runs_drops_trusted_time() {
    let mut rig = Rig::new().await;
    rig.ready().await;
    // From here on the server gives no new time statement: only the cache could vouch.
    rig.server
        .state
        .answer_time
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let status_path = rig.data_dir().join("status.json");
    let status_exists = || status_path.exists();
    eventually("status written", 10, status_exists).await;

    // A restart with the host's clock where it was: the cached anchor still holds.
    rig.stop_controller().await;
    rig.start_controller().await;
    let core = configured(&rig).await;
    assert!(
        core.status().trusted_time,
        "a plain restart keeps trusted time"
    );

    // The last status says the host's clock read an hour later than it does now: it was
    // stepped back while the door was down.
    rig.stop_controller().await;
    let mut status: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&status_path).unwrap()).unwrap();
    status["updated_at_ms"] = (now_ms() + 3_600_000).into();
    std::fs::write(&status_path, serde_json::to_vec(&status).unwrap()).unwrap();
    rig.start_controller().await;
    let core = configured(&rig).await;
    assert!(!core.status().trusted_time);
    let phone = rig.phone(0.5, 0.0).await;
    let (_, cred) = rig.credential(|_| {});
    let r = rig.unlock(&phone, LOCK_A, &cred, random_id()).await;
    assert_eq!(reason_of(&r), Some(Reason::ClockUntrusted), "{r:?}");

    // Nor does the next restart take the old anchor up again, now that the status written
    // is no longer ahead of the host's clock.
    drop(phone);
    rig.stop_controller().await;
    rig.start_controller().await;
    let core = configured(&rig).await;
    assert!(
        !core.status().trusted_time,
        "the distrusted anchor stays gone"
    );

    // A fresh statement from the server restores it.
    rig.server
        .state
        .answer_time
        .store(true, std::sync::atomic::Ordering::SeqCst);
    rig.stop_controller().await;
    rig.start_controller().await;
    rig.ready().await;
}
