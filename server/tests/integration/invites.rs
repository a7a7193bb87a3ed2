//! Visitor invites: redemption, window, daily hours, use limit, revocation.

use crate::common::*;
use serde_json::{Value, json};

async fn invite(srv: &TestServer, org: &Org, body: Value) -> Value {
    let (s, v) = srv
        .post(&format!("/orgs/{}/invites", org.id), &org.manager, body)
        .await;
    assert_eq!(s, 201, "{v}");
    v
}

async fn redeem(srv: &TestServer, code: &Value) -> (u16, Value) {
    srv.call("POST", "/invites/redeem", None, Some(json!({"code": code})))
        .await
}

#[tokio::test]
async fn invite_window_limit_and_revocation() {
    on_all_backends(test_settings(), |srv| async move {
        let org = make_org(&srv, "acme").await;
        let ctl = connect_controller(&srv, &org).await;
        let now = chrono::Utc::now().timestamp();

        // Use limit: two unlocks, then use_limit_exceeded.
        let inv = invite(
            &srv,
            &org,
            json!({"name": "Vera", "email": "vera@x.test",
            "lock_ids": [org.front], "valid_until": now + 3600, "max_unlocks": 2}),
        )
        .await;
        assert!(
            inv["link"]
                .as_str()
                .unwrap()
                .contains(inv["code"].as_str().unwrap())
        );
        assert_eq!(inv["status"], "pending");
        let (s, g) = redeem(&srv, &inv["code"]).await;
        assert_eq!(s, 201, "{g}");
        assert_eq!(g["memberships"][0]["role"], "guest");
        let guest = g["token"].as_str().unwrap().to_owned();
        // Single use.
        let (s, v) = redeem(&srv, &inv["code"]).await;
        assert_eq!((s, code(&v)), (409, "conflict"));
        let (s, v) = redeem(&srv, &json!("not-a-code")).await;
        assert_eq!((s, code(&v)), (404, "not_found"));
        for _ in 0..2 {
            let (s, v) = srv.unlock(&org.front, &guest, json!({}), None).await;
            assert_eq!(s, 200, "{v}");
        }
        let (s, v) = srv.unlock(&org.front, &guest, json!({}), None).await;
        assert_eq!((s, code(&v)), (403, "use_limit_exceeded"));
        // Not in scope.
        let (s, v) = srv.unlock(&org.lab, &guest, json!({}), None).await;
        assert_eq!((s, code(&v)), (403, "no_access"));
        // A door that refuses does not consume a use.
        let inv2 = invite(
            &srv,
            &org,
            json!({"name": "Otto", "group_id": org.group,
            "valid_until": now + 3600, "max_unlocks": 1}),
        )
        .await;
        // Typed from paper: lower case, grouped with a dash and a space.
        let c2 = inv2["code"].as_str().unwrap().to_lowercase();
        let retyped = format!("{}-{} {}", &c2[..9], &c2[9..18], &c2[18..]);
        let (s, g2) = redeem(&srv, &json!(retyped)).await;
        assert_eq!(s, 201, "{retyped}: {g2}");
        let guest2 = g2["token"].as_str().unwrap().to_owned();
        ctl.set_answer(Answer::Deny(keyway_protocol::Reason::Lockdown));
        assert_eq!(srv.unlock(&org.lab, &guest2, json!({}), None).await.0, 403);
        ctl.set_answer(Answer::Grant);
        assert_eq!(srv.unlock(&org.lab, &guest2, json!({}), None).await.0, 200);

        // Revocation is immediate for cloud unlocks and reaches the door's list.
        let serial_before = ctl.seen.lock().unwrap().revocations.len();
        let (s, _) = srv
            .delete(
                &format!("/invites/{}", inv2["id"].as_str().unwrap()),
                &org.manager,
            )
            .await;
        assert_eq!(s, 204);
        let (s, v) = srv.unlock(&org.lab, &guest2, json!({}), None).await;
        assert_eq!((s, code(&v)), (403, "access_revoked"));
        ctl.wait(|s| s.revocations.len() > serial_before).await;

        // Not yet valid and expired windows; daily hours outside now.
        let later = invite(
            &srv,
            &org,
            json!({"name": "Later", "lock_ids": [org.front],
            "valid_from": now + 1800, "valid_until": now + 3600}),
        )
        .await;
        let (_, g3) = redeem(&srv, &later["code"]).await;
        let (s, v) = srv
            .unlock(&org.front, g3["token"].as_str().unwrap(), json!({}), None)
            .await;
        assert_eq!((s, code(&v)), (403, "access_not_yet_valid"));

        let short = invite(
            &srv,
            &org,
            json!({"name": "Short", "lock_ids": [org.front],
            "valid_until": now + 3600}),
        )
        .await;
        let (_, g4) = redeem(&srv, &short["code"]).await;
        sqlx::query("UPDATE invites SET valid_until = $1 WHERE id = $2")
            .bind(now - 1)
            .bind(short["id"].as_str().unwrap())
            .execute(srv.state.pool())
            .await
            .unwrap();
        let (s, v) = srv
            .unlock(&org.front, g4["token"].as_str().unwrap(), json!({}), None)
            .await;
        assert!(
            (s == 403 && code(&v) == "access_expired") || s == 401,
            "expired invite: {s} {v}"
        );
        // An expired code cannot be redeemed.
        let gone = invite(
            &srv,
            &org,
            json!({"name": "Gone", "lock_ids": [org.front],
            "valid_until": now + 3600}),
        )
        .await;
        sqlx::query("UPDATE invites SET valid_until = $1 WHERE id = $2")
            .bind(now - 1)
            .bind(gone["id"].as_str().unwrap())
            .execute(srv.state.pool())
            .await
            .unwrap();
        let (s, v) = redeem(&srv, &gone["code"]).await;
        assert_eq!((s, code(&v)), (403, "access_expired"));

        // Daily window that excludes the current Berlin time.
        use chrono::Timelike;
        let berlin: chrono_tz::Tz = "Europe/Berlin".parse().unwrap();
        let local = chrono::Utc::now().with_timezone(&berlin);
        let minute = local.hour() * 60 + local.minute();
        let (start, end) = if minute >= 120 { (0, 60) } else { (600, 700) };
        let fmt = |m: u32| format!("{:02}:{:02}", m / 60, m % 60);
        let hours = invite(
            &srv,
            &org,
            json!({"name": "Hours", "lock_ids": [org.front],
            "valid_until": now + 3600, "daily_start": fmt(start), "daily_end": fmt(end)}),
        )
        .await;
        let (_, g5) = redeem(&srv, &hours["code"]).await;
        let (s, v) = srv
            .unlock(&org.front, g5["token"].as_str().unwrap(), json!({}), None)
            .await;
        assert_eq!((s, code(&v)), (403, "outside_schedule"));

        // A revoked code cannot be redeemed.
        let dead = invite(
            &srv,
            &org,
            json!({"name": "Dead", "lock_ids": [org.front], "valid_until": now + 3600}),
        )
        .await;
        srv.delete(
            &format!("/invites/{}", dead["id"].as_str().unwrap()),
            &org.manager,
        )
        .await;
        let (s, v) = redeem(&srv, &dead["code"]).await;
        assert_eq!((s, code(&v)), (403, "access_revoked"));

        // Bad invites are 400.
        let (s, v) = srv
            .post(
                &format!("/orgs/{}/invites", org.id),
                &org.manager,
                json!({"name": "x", "lock_ids": [], "valid_until": now + 10}),
            )
            .await;
        assert_eq!((s, code(&v)), (400, "invalid_request"));
    })
    .await;
}
