//! Cloud unlock: grant through a real controller connection, every denial reason,
//! idempotent retries, controller offline.

use crate::common::*;
use chrono::{Datelike, TimeZone};
use keyway_protocol::Reason;
use serde_json::{Value, json};

/// Adds a member with a role assignment on the org's group (window and schedule optional).
async fn member_with(srv: &TestServer, org: &Org, assignment: Value) -> String {
    let email = format!("m-{}@x.test", hex::encode(rand_bytes::<4>()));
    let (s, v) = srv
        .post(
            &format!("/orgs/{}/members", org.id),
            &org.owner,
            json!({"email": email, "password": "member-password", "role": "member"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let mut a = assignment;
    a["user_id"] = v["user_id"].clone();
    a["group_id"] = json!(org.group);
    let (s, v) = srv
        .post(&format!("/orgs/{}/role_assignments", org.id), &org.owner, a)
        .await;
    assert_eq!(s, 201, "{v}");
    srv.login(&email, "member-password").await
}

#[tokio::test]
async fn unlock_is_granted_through_the_controller_and_logged() {
    on_all_backends(test_settings(), |srv| async move {
        let org = make_org(&srv, "acme").await;
        let ctl = connect_controller(&srv, &org).await;
        let (s, v) = srv.unlock(&org.front, &org.member, json!({}), None).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["granted"], true);
        assert_eq!(v["duplicate"], false);
        assert!(v["event_id"].is_string());
        assert_eq!(ctl.seen.lock().unwrap().actuated.len(), 1);
        let (s, ev) = srv
            .get(
                &format!("/orgs/{}/events?type=unlock.attempt", org.id),
                &org.manager,
            )
            .await;
        assert_eq!(s, 200);
        assert_eq!(ev["items"][0]["success"], true);
        assert_eq!(ev["items"][0]["method"], "cloud");
        assert_eq!(ev["items"][0]["actor_id"], json!(org.member_id));
        // The lock reads online while its controller is connected.
        let (_, lock) = srv.get(&format!("/locks/{}", org.front), &org.admin).await;
        assert_eq!(lock["online"], true);
        let metrics = srv
            .http
            .get(format!("{}/metrics", srv.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            metrics.contains("keyway_unlock_seconds_count 1"),
            "{metrics}"
        );
        assert!(metrics.contains("keyway_controllers_connected 1"));
    })
    .await;
}

#[tokio::test]
async fn every_denial_reason_has_its_code() {
    on_all_backends(test_settings(), |srv| async move {
        let org = make_org(&srv, "acme").await;
        let now = chrono::Utc::now().timestamp();

        // not_configured: a lock without a controller.
        let (_, bare) = srv
            .post(
                &format!("/orgs/{}/locks", org.id),
                &org.owner,
                json!({"place_id": org.place, "name": "Bare"}),
            )
            .await;
        let bare = bare["id"].as_str().unwrap().to_owned();
        let (s, v) = srv.unlock(&bare, &org.admin, json!({}), None).await;
        assert_eq!((s, code(&v)), (409, "not_configured"));

        // door_offline: controller not connected.
        let (s, v) = srv.unlock(&org.front, &org.member, json!({}), None).await;
        assert_eq!((s, code(&v)), (409, "door_offline"));

        let ctl = connect_controller(&srv, &org).await;

        // no_access: the member's group does not include the bare lock.
        srv.put(
            &format!("/locks/{bare}"),
            &org.owner,
            json!({"controller_id": org.controller}),
        )
        .await;
        let (s, v) = srv.unlock(&bare, &org.member, json!({}), None).await;
        assert_eq!((s, code(&v)), (403, "no_access"));

        // access_not_yet_valid / access_expired.
        let future = member_with(&srv, &org, json!({"valid_from": now + 3600})).await;
        let (s, v) = srv.unlock(&org.front, &future, json!({}), None).await;
        assert_eq!((s, code(&v)), (403, Reason::NotYetValid.code()));
        let past =
            member_with(&srv, &org, json!({"valid_from": now - 7200, "valid_until": now - 3600}))
                .await;
        let (s, v) = srv.unlock(&org.front, &past, json!({}), None).await;
        assert_eq!((s, code(&v)), (403, "access_expired"));

        // outside_schedule: a schedule for every weekday but today (place time zone).
        let berlin: chrono_tz::Tz = "Europe/Berlin".parse().unwrap();
        let today = berlin
            .timestamp_opt(now, 0)
            .unwrap()
            .weekday()
            .num_days_from_monday() as usize;
        let days: Vec<&str> = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != today)
            .map(|(_, d)| *d)
            .collect();
        let (s, sched) = srv
            .post(
                &format!("/orgs/{}/schedules", org.id),
                &org.owner,
                json!({"name": "not today", "windows": [{"days": days, "start": "00:00", "end": "24:00"}]}),
            )
            .await;
        assert_eq!(s, 201, "{sched}");
        let scheduled = member_with(&srv, &org, json!({"schedule_id": sched["id"]})).await;
        let (s, v) = srv.unlock(&org.front, &scheduled, json!({}), None).await;
        assert_eq!((s, code(&v)), (403, "outside_schedule"));

        // lockdown of the lock, then of the place.
        let (s, _) = srv
            .post(&format!("/locks/{}/lockdown", org.front), &org.manager, json!({"lockdown": true}))
            .await;
        assert_eq!(s, 200);
        let (s, v) = srv.unlock(&org.front, &org.member, json!({}), None).await;
        assert_eq!((s, code(&v)), (403, "lockdown"));
        srv.post(&format!("/locks/{}/lockdown", org.front), &org.manager, json!({"lockdown": false}))
            .await;
        srv.post(&format!("/places/{}/lockdown", org.place), &org.manager, json!({"lockdown": true}))
            .await;
        let (s, v) = srv.unlock(&org.lab, &org.member, json!({}), None).await;
        assert_eq!((s, code(&v)), (403, "lockdown"));
        srv.post(&format!("/places/{}/lockdown", org.place), &org.manager, json!({"lockdown": false}))
            .await;

        // outside_geofence: 100 m around the place.
        let (s, v) = srv
            .put(&format!("/locks/{}", org.front), &org.owner, json!({"geofence_radius_m": 100.0}))
            .await;
        assert_eq!(s, 200, "{v}");
        let (s, v) = srv.unlock(&org.front, &org.member, json!({}), None).await;
        assert_eq!((s, code(&v)), (403, "outside_geofence"), "{v}");
        let (s, v) = srv
            .unlock(&org.front, &org.member, json!({"latitude": 52.6, "longitude": 13.405}), None)
            .await;
        assert_eq!((s, code(&v)), (403, "outside_geofence"), "{v}");
        let (s, v) = srv
            .unlock(&org.front, &org.member, json!({"latitude": 52.5201, "longitude": 13.4051}), None)
            .await;
        assert_eq!(s, 200, "{v}");
        srv.put(&format!("/locks/{}", org.front), &org.owner, json!({"geofence_radius_m": null}))
            .await;

        // too_far: reader restriction needs the door's current proximity code.
        srv.put(&format!("/locks/{}", org.lab), &org.owner, json!({"reader_restriction": true}))
            .await;
        let (s, v) = srv.unlock(&org.lab, &org.member, json!({}), None).await;
        assert_eq!((s, code(&v)), (403, "too_far"));
        let secret_hex = {
            let seen = ctl.seen.lock().unwrap();
            let cfg = seen.configs.last().unwrap();
            cfg.locks
                .iter()
                .find(|l| l.id.to_uuid_string() == org.lab)
                .unwrap()
                .proximity_secret
                .clone()
        };
        let mut secret = [0u8; 32];
        hex::decode_to_slice(&secret_hex, &mut secret).unwrap();
        let lab_id = keyway_protocol::Id::parse(&org.lab).unwrap();
        let good = keyway_protocol::advert::proximity_code(&secret, lab_id, now as u64);
        let (s, v) = srv
            .unlock(&org.lab, &org.member, json!({"proximity_proof": good ^ 0x5a5a}), None)
            .await;
        assert_eq!((s, code(&v)), (403, "too_far"));
        let (s, v) = srv
            .unlock(&org.lab, &org.member, json!({"proximity_proof": good}), None)
            .await;
        assert_eq!(s, 200, "{v}");

        // The door's own refusal is passed through with its reason.
        ctl.set_answer(Answer::Deny(Reason::ClockUntrusted));
        let (s, v) = srv.unlock(&org.front, &org.member, json!({}), None).await;
        assert_eq!((s, code(&v)), (403, "clock_untrusted"));

        // Every denial was logged with its reason.
        let (_, ev) = srv
            .get(
                &format!("/orgs/{}/events?type=unlock.attempt&success=false&limit=100", org.id),
                &org.manager,
            )
            .await;
        let reasons: Vec<&str> = ev["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["reason"].as_str().unwrap())
            .collect();
        for r in [
            "not_configured", "door_offline", "no_access", "access_not_yet_valid",
            "access_expired", "outside_schedule", "lockdown", "outside_geofence", "too_far",
            "clock_untrusted",
        ] {
            assert!(reasons.contains(&r), "{r} missing from {reasons:?}");
        }
    })
    .await;
}

#[tokio::test]
async fn rate_limit_denies_with_429() {
    let settings = keyway_server::Settings {
        unlocks_per_window: 2,
        ..test_settings()
    };
    on_all_backends(settings, |srv| async move {
        let org = make_org(&srv, "acme").await;
        let _ctl = connect_controller(&srv, &org).await;
        for _ in 0..2 {
            let (s, _) = srv.unlock(&org.front, &org.member, json!({}), None).await;
            assert_eq!(s, 200);
        }
        let (s, v) = srv.unlock(&org.front, &org.member, json!({}), None).await;
        assert_eq!((s, code(&v)), (429, "rate_limited"));
    })
    .await;
}

#[tokio::test]
async fn idempotent_retry_actuates_once() {
    on_all_backends(test_settings(), |srv| async move {
        let org = make_org(&srv, "acme").await;
        let ctl = connect_controller(&srv, &org).await;
        let (s1, v1) = srv
            .unlock(&org.front, &org.member, json!({}), Some("tap-1"))
            .await;
        let (s2, v2) = srv
            .unlock(&org.front, &org.member, json!({}), Some("tap-1"))
            .await;
        assert_eq!((s1, s2), (200, 200));
        assert_eq!(v1["command_id"], v2["command_id"]);
        assert_eq!(v1["duplicate"], false);
        assert_eq!(v2["duplicate"], true);
        assert_eq!(ctl.seen.lock().unwrap().actuated.len(), 1);
        // The same key for another lock is a conflict, not a second actuation.
        let (s, v) = srv
            .unlock(&org.lab, &org.member, json!({}), Some("tap-1"))
            .await;
        assert_eq!((s, code(&v)), (409, "conflict"));

        // A lost result: the controller actuates but its answer never arrives in time, so
        // the door may have opened (504 unconfirmed, not door_offline); the retry reuses the
        // command id and the door does not open again.
        ctl.set_answer(Answer::LoseResult);
        let (s, v) = srv
            .unlock(&org.front, &org.member, json!({}), Some("tap-2"))
            .await;
        assert_eq!((s, code(&v)), (504, "unconfirmed"));
        ctl.set_answer(Answer::Grant);
        let (s, v) = srv
            .unlock(&org.front, &org.member, json!({}), Some("tap-2"))
            .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["duplicate"], true);
        let seen = ctl.seen.lock().unwrap();
        let last_two = &seen.commands[seen.commands.len() - 2..];
        assert_eq!(last_two[0], last_two[1], "retry must reuse the command id");
        assert_eq!(seen.actuated.len(), 2);
    })
    .await;
}

/// Unlock attempts logged for the org, newest first.
async fn attempts(srv: &TestServer, org: &Org) -> Vec<Value> {
    let (s, ev) = srv
        .get(
            &format!("/orgs/{}/events?type=unlock.attempt&limit=100", org.id),
            &org.manager,
        )
        .await;
    assert_eq!(s, 200, "{ev}");
    ev["items"].as_array().unwrap().clone()
}

/// Closes the controller's connection and waits until the server sees it offline.
async fn disconnect(srv: &TestServer, org: &Org, ctl: TestController) {
    ctl.close();
    let path = format!("/controllers/{}", org.controller);
    eventually(|| async {
        let (_, c) = srv.get(&path, &org.admin).await;
        c["online"] == false
    })
    .await;
}

fn last_command(ctl: &TestController) -> String {
    let seen = ctl.seen.lock().unwrap();
    seen.commands
        .last()
        .expect("a command reached the controller")
        .to_uuid_string()
}

/// The controller holds the command and never answers: the door may have opened, so the
/// answer is 504 `unconfirmed` (never `door_offline`, which sends the phone to Bluetooth),
/// the attempt is logged with that reason and the command id, and retries with the same
/// Idempotency-Key relay the same command id, so the door opens at most once.
#[tokio::test]
async fn a_silent_controller_leaves_the_unlock_unconfirmed_and_retries_reuse_the_command() {
    on_all_backends(test_settings(), |srv| async move {
        let org = make_org(&srv, "acme").await;
        let ctl = connect_controller(&srv, &org).await;
        ctl.set_answer(Answer::Silent);
        let (s, v) = srv
            .unlock(&org.front, &org.member, json!({}), Some("tap-u"))
            .await;
        assert_eq!((s, code(&v)), (504, "unconfirmed"), "{v}");
        assert_eq!(
            v["error"]["message"],
            "the door did not confirm; it may have opened"
        );
        let first = last_command(&ctl);

        let ev = attempts(&srv, &org).await;
        assert_eq!(ev.len(), 1, "{ev:?}");
        assert_eq!(ev[0]["success"], false);
        assert_eq!(ev[0]["reason"], "unconfirmed");
        assert_eq!(ev[0]["method"], "cloud");
        assert_eq!(ev[0]["details"]["command_id"], json!(first));

        // Still no answer: the retry relays the same command id, signed at the same time
        // (so the door's age limit bounds retries too), and is unconfirmed again.
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let (s, v) = srv
            .unlock(&org.front, &org.member, json!({}), Some("tap-u"))
            .await;
        assert_eq!((s, code(&v)), (504, "unconfirmed"), "{v}");
        assert_eq!(last_command(&ctl), first, "retry must reuse the command id");
        {
            let issued = &ctl.seen.lock().unwrap().issued;
            assert_eq!(issued.len(), 2);
            assert_eq!(
                issued[0], issued[1],
                "retry must keep the order's signing time"
            );
        }

        // The door answers the retry: the same command, opened once, and then replayed.
        ctl.set_answer(Answer::Grant);
        let (s, v) = srv
            .unlock(&org.front, &org.member, json!({}), Some("tap-u"))
            .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["command_id"], json!(first));
        let (s, v) = srv
            .unlock(&org.front, &org.member, json!({}), Some("tap-u"))
            .await;
        assert_eq!((s, v["duplicate"].as_bool()), (200, Some(true)), "{v}");
        {
            let seen = ctl.seen.lock().unwrap();
            assert_eq!(seen.commands.len(), 3, "{seen:?}");
            assert_eq!(seen.actuated.len(), 1, "{seen:?}");
            assert_eq!(seen.actuated[0].to_uuid_string(), first);
        }
        let reasons: Vec<Value> = attempts(&srv, &org)
            .await
            .iter()
            .map(|e| e["reason"].clone())
            .collect();
        assert_eq!(
            reasons,
            vec![Value::Null, json!("unconfirmed"), json!("unconfirmed")]
        );
    })
    .await;
}

/// After an unconfirmed attempt the controller goes away: the retry with the same key is
/// still `unconfirmed` (the first attempt may have opened the door), while an attempt that
/// certainly reached nothing is `door_offline` and leaves nothing behind.
#[tokio::test]
async fn a_retry_of_an_unconfirmed_unlock_stays_unconfirmed_when_the_controller_is_gone() {
    on_all_backends(test_settings(), |srv| async move {
        let org = make_org(&srv, "acme").await;
        let ctl = connect_controller(&srv, &org).await;
        ctl.set_answer(Answer::Silent);
        let (s, v) = srv
            .unlock(&org.front, &org.member, json!({}), Some("tap-a"))
            .await;
        assert_eq!((s, code(&v)), (504, "unconfirmed"), "{v}");
        disconnect(&srv, &org, ctl).await;
        let (s, v) = srv
            .unlock(&org.front, &org.member, json!({}), Some("tap-a"))
            .await;
        assert_eq!((s, code(&v)), (504, "unconfirmed"), "{v}");
        for key in [Some("tap-b"), Some("tap-b"), None] {
            let (s, v) = srv.unlock(&org.front, &org.member, json!({}), key).await;
            assert_eq!((s, code(&v)), (409, "door_offline"), "{key:?}: {v}");
        }
        let kept: Vec<(String, String)> =
            sqlx::query_as("SELECT idem_key, status FROM idempotency_keys ORDER BY idem_key")
                .fetch_all(srv.state.pool())
                .await
                .unwrap();
        assert_eq!(kept, vec![("tap-a".to_owned(), "unconfirmed".to_owned())]);
        let reasons: Vec<Value> = attempts(&srv, &org)
            .await
            .iter()
            .map(|e| e["reason"].clone())
            .collect();
        assert_eq!(
            reasons,
            vec![
                json!("door_offline"),
                json!("door_offline"),
                json!("door_offline"),
                json!("unconfirmed"),
                json!("unconfirmed"),
            ]
        );
    })
    .await;
}

/// A visitor's limited invite: an unconfirmed unlock counts as a use (the door may have
/// opened), its retry with the same key does not count a second one, and an unlock that
/// certainly reached nothing gives its use back.
#[tokio::test]
async fn an_unconfirmed_unlock_uses_one_invite_unlock() {
    on_all_backends(test_settings(), |srv| async move {
        let org = make_org(&srv, "acme").await;
        let ctl = connect_controller(&srv, &org).await;
        let (guest, inv) = visitor(&srv, &org, 3).await;
        let used = || async {
            let (s, v) = srv
                .get(
                    &format!("/invites/{}", inv["id"].as_str().unwrap()),
                    &org.manager,
                )
                .await;
            assert_eq!(s, 200, "{v}");
            v["unlock_count"].as_i64().unwrap()
        };

        ctl.set_answer(Answer::Silent);
        let (s, v) = srv.unlock(&org.front, &guest, json!({}), Some("v-1")).await;
        assert_eq!((s, code(&v)), (504, "unconfirmed"), "{v}");
        assert_eq!(used().await, 1);
        ctl.set_answer(Answer::Grant);
        let (s, v) = srv.unlock(&org.front, &guest, json!({}), Some("v-1")).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(
            used().await,
            1,
            "the retry of the same command counts no second use"
        );
        assert_eq!(ctl.seen.lock().unwrap().actuated.len(), 1);

        disconnect(&srv, &org, ctl).await;
        let (s, v) = srv.unlock(&org.front, &guest, json!({}), Some("v-2")).await;
        assert_eq!((s, code(&v)), (409, "door_offline"), "{v}");
        assert_eq!(used().await, 1, "nothing delivered, the use is given back");
    })
    .await;
}

/// A visitor's guest token and invite, for the front door, with `max_unlocks`.
async fn visitor(srv: &TestServer, org: &Org, max_unlocks: u32) -> (String, Value) {
    let now = chrono::Utc::now().timestamp();
    let (s, inv) = srv
        .post(
            &format!("/orgs/{}/invites", org.id),
            &org.manager,
            json!({"name": "Vera", "lock_ids": [org.front], "valid_until": now + 3600,
                   "max_unlocks": max_unlocks}),
        )
        .await;
    assert_eq!(s, 201, "{inv}");
    let body = Some(json!({"code": inv["code"]}));
    let (s, g) = srv.call("POST", "/invites/redeem", None, body).await;
    assert_eq!(s, 201, "{g}");
    (g["token"].as_str().unwrap().to_owned(), inv)
}

/// The retry of an unconfirmed unlock that took a visitor's last use may still ask the door
/// (it holds that use): it learns whether the door opened instead of "no unlocks left".
#[tokio::test]
async fn the_retry_of_a_last_use_still_reaches_the_door() {
    on_all_backends(test_settings(), |srv| async move {
        let org = make_org(&srv, "acme").await;
        let ctl = connect_controller(&srv, &org).await;
        let (guest, _) = visitor(&srv, &org, 1).await;
        ctl.set_answer(Answer::Silent);
        let (s, v) = srv
            .unlock(&org.front, &guest, json!({}), Some("last"))
            .await;
        assert_eq!((s, code(&v)), (504, "unconfirmed"), "{v}");
        ctl.set_answer(Answer::Grant);
        let (s, v) = srv
            .unlock(&org.front, &guest, json!({}), Some("last"))
            .await;
        assert_eq!(s, 200, "{v}");
        // A new command finds the use spent.
        let (s, v) = srv
            .unlock(&org.front, &guest, json!({}), Some("next"))
            .await;
        assert_eq!((s, code(&v)), (403, "use_limit_exceeded"), "{v}");
        assert_eq!(ctl.seen.lock().unwrap().actuated.len(), 1);
    })
    .await;
}

#[tokio::test]
async fn controller_offline_after_bounded_wait_and_status() {
    on_all_backends(test_settings(), |srv| async move {
        let org = make_org(&srv, "acme").await;
        let ctl = connect_controller(&srv, &org).await;
        ctl.set_answer(Answer::Silent);
        // Sent but unanswered within the bounded wait: the door may have opened.
        let (s, v) = srv.unlock(&org.front, &org.member, json!({}), None).await;
        assert_eq!((s, code(&v)), (504, "unconfirmed"));
        disconnect(&srv, &org, ctl).await;
        // Not connected: certainly not delivered.
        let (s, v) = srv.unlock(&org.front, &org.member, json!({}), None).await;
        assert_eq!((s, code(&v)), (409, "door_offline"));
    })
    .await;
}

/// A second request with a key whose first request is still waiting for the door is refused
/// (409), not relayed: if the first then found the door offline and gave the key up, a
/// retry would get a new command id while the second's may have opened the door. A key left
/// pending by a request that died is taken over, with its command id.
#[tokio::test]
async fn a_key_in_use_by_a_request_under_way_is_refused_and_a_dead_ones_taken_over() {
    // Long enough that the second request surely comes while the first still waits.
    let settings = keyway_server::state::Settings {
        unlock_timeout: std::time::Duration::from_secs(3),
        ..test_settings()
    };
    on_all_backends(settings, |srv| async move {
        let org = make_org(&srv, "acme").await;
        let ctl = connect_controller(&srv, &org).await;
        ctl.set_answer(Answer::Silent);
        let (http, url) = (
            srv.http.clone(),
            format!("{}/api/v1/locks/{}/unlock", srv.base, org.front),
        );
        let token = org.member.clone();
        let first = tokio::spawn(async move {
            let resp = http
                .post(url)
                .bearer_auth(token)
                .header("Idempotency-Key", "tap-c")
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            resp.status().as_u16()
        });
        ctl.wait(|s| s.commands.len() == 1).await;
        let (s, v) = srv
            .unlock(&org.front, &org.member, json!({}), Some("tap-c"))
            .await;
        assert_eq!((s, code(&v)), (409, "conflict"), "{v}");
        assert_eq!(first.await.unwrap(), 504);
        assert_eq!(
            ctl.seen.lock().unwrap().commands.len(),
            1,
            "not relayed twice"
        );

        // A request that died with its key pending, a minute ago: the retry takes it over
        // and relays the command id it had.
        ctl.set_answer(Answer::Grant);
        let member = org.member_id.clone();
        let command = "0e0e0e0e-0000-4000-8000-00000000000e";
        sqlx::query(
            "INSERT INTO idempotency_keys (user_id, idem_key, lock_id, command_id, status, \
             created_at) VALUES ($1, 'tap-d', $2, $3, 'pending', $4)",
        )
        .bind(&member)
        .bind(&org.front)
        .bind(command)
        .bind(chrono::Utc::now().timestamp() - 60)
        .execute(srv.state.pool())
        .await
        .unwrap();
        let (s, v) = srv
            .unlock(&org.front, &org.member, json!({}), Some("tap-d"))
            .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["command_id"], command);
    })
    .await;
}
