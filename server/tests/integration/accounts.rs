//! Logins, sessions, throttling, API keys.

use crate::common::*;
use serde_json::json;

#[tokio::test]
async fn login_sessions_logout_and_throttle() {
    on_all_backends(test_settings(), |srv| async move {
        let org = make_org(&srv, "acme").await;
        let (s, orgs) = srv.get("/orgs", &org.member).await;
        assert_eq!(s, 200);
        assert_eq!(orgs["items"][0]["id"], serde_json::json!(org.id));
        assert_eq!(orgs["items"][0]["role"], "member");
        let (s, me) = srv.get("/me", &org.member).await;
        assert_eq!(s, 200);
        assert_eq!(me["memberships"][0]["role"], "member");
        let email = me["user"]["email"].as_str().unwrap().to_owned();
        let second = srv.login(&email, "member-password").await;
        let (s, list) = srv.get("/logins", &second).await;
        assert_eq!(s, 200);
        assert_eq!(list["total"], 2);
        let other = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["current"] == false)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        // Revoke the first session from the second.
        let (s, _) = srv.delete(&format!("/logins/{other}"), &second).await;
        assert_eq!(s, 204);
        let (s, v) = srv.get("/me", &org.member).await;
        assert_eq!((s, code(&v)), (401, "unauthorized"));
        // Logout.
        let (s, _) = srv.delete("/logins/current", &second).await;
        assert_eq!(s, 204);
        assert_eq!(srv.get("/me", &second).await.0, 401);
        // Sessions are stored only as hashes.
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM sessions WHERE token_hash = $1")
            .bind(&second)
            .fetch_one(srv.state.pool())
            .await
            .unwrap();
        assert_eq!(n, 0);

        // Wrong passwords: 401, then the account is throttled (even with the right one).
        for _ in 0..5 {
            let (s, v) = srv
                .call(
                    "POST",
                    "/logins",
                    None,
                    Some(json!({"email": email, "password": "nope"})),
                )
                .await;
            assert_eq!((s, code(&v)), (401, "unauthorized"));
        }
        let (s, v) = srv
            .call(
                "POST",
                "/logins",
                None,
                Some(json!({"email": email, "password": "member-password"})),
            )
            .await;
        assert_eq!((s, code(&v)), (429, "rate_limited"));
        // Unknown accounts answer like wrong passwords.
        let (s, _) = srv
            .call(
                "POST",
                "/logins",
                None,
                Some(json!({"email": "ghost@x.test", "password": "x"})),
            )
            .await;
        assert_eq!(s, 401);
        assert_eq!(srv.get("/me", "kws_not-a-token").await.0, 401);
        assert_eq!(srv.call("GET", "/me", None, None).await.0, 401);
    })
    .await;
}

#[tokio::test]
async fn api_keys_act_within_their_org_and_role() {
    on_all_backends(test_settings(), |srv| async move {
        let org = make_org(&srv, "acme").await;
        let other = make_org(&srv, "globex").await;
        let (s, k) = srv
            .post(
                &format!("/orgs/{}/api_keys", org.id),
                &org.admin,
                json!({"name": "integration", "role": "manager"}),
            )
            .await;
        assert_eq!(s, 201, "{k}");
        let key = k["token"].as_str().unwrap().to_owned();
        assert!(key.starts_with("kwk_"));
        assert_eq!(
            srv.get(&format!("/orgs/{}/places", org.id), &key).await.0,
            200
        );
        assert_eq!(
            srv.get(&format!("/orgs/{}/events", org.id), &key).await.0,
            200
        );
        // Manager keys cannot administer, nor see other organizations.
        let (s, _) = srv
            .post(
                &format!("/orgs/{}/places", org.id),
                &key,
                json!({"name": "x", "time_zone": "UTC"}),
            )
            .await;
        assert_eq!(s, 403);
        assert_eq!(
            srv.get(&format!("/orgs/{}/places", other.id), &key).await.0,
            404
        );
        // Admins cannot mint owner keys.
        let (s, _) = srv
            .post(
                &format!("/orgs/{}/api_keys", org.id),
                &org.admin,
                json!({"name": "x", "role": "owner"}),
            )
            .await;
        assert_eq!(s, 403);
        let (s, _) = srv
            .delete(
                &format!("/orgs/{}/api_keys/{}", org.id, k["id"].as_str().unwrap()),
                &org.admin,
            )
            .await;
        assert_eq!(s, 204);
        assert_eq!(
            srv.get(&format!("/orgs/{}/places", org.id), &key).await.0,
            401
        );
    })
    .await;
}

#[tokio::test]
async fn health_metrics_and_openapi() {
    let srv = TestServer::sqlite(test_settings()).await;
    let h = srv
        .http
        .get(format!("{}/healthz", srv.base))
        .send()
        .await
        .unwrap();
    assert_eq!(h.status(), 200);
    let m = srv
        .http
        .get(format!("{}/metrics", srv.base))
        .send()
        .await
        .unwrap();
    let text = m.text().await.unwrap();
    assert!(text.contains("keyway_http_requests_total"));
    let o = srv
        .http
        .get(format!("{}/api/v1/openapi.json", srv.base))
        .send()
        .await
        .unwrap();
    let doc: serde_json::Value = o.json().await.unwrap();
    assert_eq!(doc["openapi"].as_str().unwrap().chars().next(), Some('3'));
    assert!(doc["paths"]["/locks/{id}/unlock"]["post"].is_object());
}

#[tokio::test]
async fn one_login_across_organizations() {
    on_all_backends(test_settings(), |srv| async move {
        let a = make_org(&srv, "acme").await;
        let b = make_org(&srv, "globex").await;
        let (_, me) = srv.get("/me", &a.member).await;
        let email = me["user"]["email"].as_str().unwrap().to_owned();
        // Globex adds the Acme member by email; no new account, no password reset.
        let (s, v) = srv
            .post(
                &format!("/orgs/{}/members", b.id),
                &b.admin,
                json!({"email": email, "password": "ignored-password", "role": "admin"}),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        assert_eq!(v["user_id"], json!(a.member_id));
        let token = srv.login(&email, "member-password").await;
        let (_, orgs) = srv.get("/orgs", &token).await;
        assert_eq!(orgs["total"], 2);
        // Member in Acme, admin in Globex: the role is per organization.
        assert_eq!(
            srv.get(&format!("/orgs/{}/members", a.id), &token).await.0,
            403
        );
        assert_eq!(
            srv.get(&format!("/orgs/{}/members", b.id), &token).await.0,
            200
        );
    })
    .await;
}

async fn try_login(srv: &TestServer, email: &str, password: &str) -> u16 {
    let body = json!({"email": email, "password": password});
    srv.call("POST", "/logins", None, Some(body)).await.0
}

/// Login attempts are counted in the shared database before the password is checked: spread
/// over two instances, or sent all at once, guesses at one account get the per-account
/// budget (5) and no more.
#[tokio::test]
async fn login_attempts_are_budgeted_across_instances_and_in_parallel() {
    on_all_backends(test_settings(), |a| async move {
        keyway_server::seed::create_org_with_owner(
            &a.state,
            "acme",
            "o@acme.test",
            "owner-password",
        )
        .await
        .unwrap();
        let b = a.same_database().await;
        for srv in [&a, &a, &a, &b, &b] {
            assert_eq!(try_login(srv, "o@acme.test", "nope").await, 401);
        }
        // The sixth attempt, on the first instance, fails even with the right password.
        assert_eq!(try_login(&a, "o@acme.test", "owner-password").await, 429);
        assert_eq!(try_login(&b, "o@acme.test", "owner-password").await, 429);

        // Twenty guesses at once at another account, over both instances.
        let guesses = futures::future::join_all((0..20).map(|i| {
            let srv = if i % 2 == 0 { &a } else { &b };
            try_login(srv, "ghost@acme.test", "guess")
        }))
        .await;
        let checked = guesses.iter().filter(|s| **s == 401).count();
        let refused = guesses.iter().filter(|s| **s == 429).count();
        assert_eq!((checked, refused), (5, 15), "{guesses:?}");

        // The counters hold hashes, not the addresses tried.
        let (n,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM login_attempts WHERE key LIKE '%acme%'")
                .fetch_one(a.state.pool())
                .await
                .unwrap();
        assert_eq!(n, 0);
    })
    .await;
}

#[tokio::test]
async fn per_caller_request_rate_limit() {
    let settings = keyway_server::Settings {
        requests_per_second: 3,
        ..test_settings()
    };
    let srv = TestServer::sqlite(settings).await;
    let dir_org = keyway_server::seed::create_org_with_owner(
        &srv.state,
        "acme",
        "o@acme.test",
        "owner-password",
    )
    .await
    .unwrap();
    let token = srv.login("o@acme.test", "owner-password").await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(srv.get(&format!("/orgs/{dir_org}"), &token).await.0);
    }
    // Within one second at most three pass; the rest are 429 (a window boundary may let a
    // few more through, never all six).
    assert!(statuses.contains(&429), "{statuses:?}");
    let (s, v) = srv.get(&format!("/orgs/{dir_org}"), &token).await;
    assert!(s == 429 && code(&v) == "rate_limited" || s == 200);
}
