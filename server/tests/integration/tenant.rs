//! Tenant isolation: another organization's admin gets 403/404 on every endpoint that names
//! this organization's objects.

use crate::common::*;
use serde_json::json;

#[tokio::test]
async fn other_org_is_refused_everywhere() {
    on_all_backends(test_settings(), |srv| async move {
        let a = make_org(&srv, "acme").await;
        let b = make_org(&srv, "globex").await;
        let (_, sched) = srv
            .post(
                &format!("/orgs/{}/schedules", a.id),
                &a.owner,
                json!({"name": "s", "windows": [{"days": ["mon"], "start": "08:00", "end": "09:00"}]}),
            )
            .await;
        let (_, assignments) = srv.get(&format!("/orgs/{}/role_assignments", a.id), &a.owner).await;
        let assignment = assignments["items"][0]["id"].as_str().unwrap().to_owned();
        let (_, inv) = srv
            .post(
                &format!("/orgs/{}/invites", a.id),
                &a.owner,
                json!({"name": "v", "lock_ids": [a.front], "valid_until": chrono::Utc::now().timestamp() + 3600}),
            )
            .await;
        let (_, hook) = srv
            .post(
                &format!("/orgs/{}/webhooks", a.id),
                &a.owner,
                json!({"url": "http://127.0.0.1:9/x", "event_types": ["*"]}),
            )
            .await;
        let (_, key) = srv
            .post(&format!("/orgs/{}/api_keys", a.id), &a.owner, json!({"name": "k", "role": "admin"}))
            .await;
        let (_, members) = srv.get(&format!("/orgs/{}/members", a.id), &a.owner).await;
        let user = members["items"][0]["user_id"].as_str().unwrap().to_owned();
        let o = &a.id;
        let body = json!({});
        let endpoints: Vec<(&str, String, serde_json::Value)> = vec![
            ("GET", format!("/orgs/{o}"), body.clone()),
            ("GET", format!("/orgs/{o}/members"), body.clone()),
            ("POST", format!("/orgs/{o}/members"), json!({"email": "z@z.test", "role": "member"})),
            ("PUT", format!("/orgs/{o}/members/{user}"), json!({"role": "admin"})),
            ("DELETE", format!("/orgs/{o}/members/{user}"), body.clone()),
            ("GET", format!("/orgs/{o}/api_keys"), body.clone()),
            ("POST", format!("/orgs/{o}/api_keys"), json!({"name": "x", "role": "member"})),
            ("DELETE", format!("/orgs/{o}/api_keys/{}", key["id"].as_str().unwrap()), body.clone()),
            ("GET", format!("/orgs/{o}/keys"), body.clone()),
            ("POST", format!("/orgs/{o}/keys/rotate"), body.clone()),
            ("POST", format!("/orgs/{o}/keys/retire_previous"), body.clone()),
            ("GET", format!("/orgs/{o}/revocations"), body.clone()),
            ("GET", format!("/orgs/{o}/places"), body.clone()),
            ("POST", format!("/orgs/{o}/places"), json!({"name": "x", "time_zone": "UTC"})),
            ("GET", format!("/places/{}", a.place), body.clone()),
            ("PUT", format!("/places/{}", a.place), json!({"name": "x"})),
            ("DELETE", format!("/places/{}", a.place), body.clone()),
            ("POST", format!("/places/{}/lockdown", a.place), json!({"lockdown": true})),
            ("GET", format!("/orgs/{o}/locks"), body.clone()),
            ("POST", format!("/orgs/{o}/locks"), json!({"place_id": a.place, "name": "x"})),
            ("GET", format!("/locks/{}", a.front), body.clone()),
            ("PUT", format!("/locks/{}", a.front), json!({"name": "x"})),
            ("DELETE", format!("/locks/{}", a.front), body.clone()),
            ("POST", format!("/locks/{}/lockdown", a.front), json!({"lockdown": true})),
            ("POST", format!("/locks/{}/unlock", a.front), body.clone()),
            ("GET", format!("/orgs/{o}/controllers"), body.clone()),
            ("POST", format!("/orgs/{o}/controllers"), json!({"name": "x"})),
            ("GET", format!("/controllers/{}", a.controller), body.clone()),
            ("DELETE", format!("/controllers/{}", a.controller), body.clone()),
            ("POST", format!("/controllers/{}/provisioning_token", a.controller), body.clone()),
            ("GET", format!("/orgs/{o}/groups"), body.clone()),
            ("POST", format!("/orgs/{o}/groups"), json!({"name": "x"})),
            ("GET", format!("/groups/{}", a.group), body.clone()),
            ("DELETE", format!("/groups/{}", a.group), body.clone()),
            ("POST", format!("/groups/{}/locks", a.group), json!({"lock_id": a.front})),
            ("DELETE", format!("/groups/{}/locks/{}", a.group, a.front), body.clone()),
            ("GET", format!("/orgs/{o}/schedules"), body.clone()),
            ("POST", format!("/orgs/{o}/schedules"), json!({"name": "x", "windows": [{"days": ["mon"], "start": "08:00", "end": "09:00"}]})),
            ("DELETE", format!("/schedules/{}", sched["id"].as_str().unwrap()), body.clone()),
            ("GET", format!("/orgs/{o}/role_assignments"), body.clone()),
            ("POST", format!("/orgs/{o}/role_assignments"), json!({"user_id": user, "group_id": a.group})),
            ("DELETE", format!("/role_assignments/{assignment}"), body.clone()),
            ("GET", format!("/orgs/{o}/invites"), body.clone()),
            ("POST", format!("/orgs/{o}/invites"), json!({"name": "x", "lock_ids": [a.front], "valid_until": 4_000_000_000i64})),
            ("GET", format!("/invites/{}", inv["id"].as_str().unwrap()), body.clone()),
            ("DELETE", format!("/invites/{}", inv["id"].as_str().unwrap()), body.clone()),
            ("GET", format!("/orgs/{o}/events"), body.clone()),
            ("GET", format!("/orgs/{o}/events.csv"), body.clone()),
            ("GET", format!("/orgs/{o}/webhooks"), body.clone()),
            ("POST", format!("/orgs/{o}/webhooks"), json!({"url": "http://x.test/", "event_types": ["*"]})),
            ("GET", format!("/webhooks/{}", hook["id"].as_str().unwrap()), body.clone()),
            ("DELETE", format!("/webhooks/{}", hook["id"].as_str().unwrap()), body.clone()),
            ("POST", format!("/webhooks/{}/enable", hook["id"].as_str().unwrap()), body.clone()),
            ("GET", format!("/webhooks/{}/deliveries", hook["id"].as_str().unwrap()), body.clone()),
        ];
        // Also with an API key of the other organization.
        let (_, bkey) = srv
            .post(&format!("/orgs/{}/api_keys", b.id), &b.owner, json!({"name": "k", "role": "admin"}))
            .await;
        let bkey = bkey["token"].as_str().unwrap().to_owned();
        for token in [&b.owner, &b.member, &bkey] {
            for (method, path, body) in &endpoints {
                let body = if *method == "GET" || *method == "DELETE" { None } else { Some(body.clone()) };
                let (s, v) = srv.call(method, path, Some(token), body).await;
                assert!(s == 403 || s == 404, "{method} {path} gave {s}: {v}");
            }
        }
        // Device credentials for another org: 404.
        let (dev_key, _) = keyway_protocol::SigningKey::generate(&ring::rand::SystemRandom::new()).unwrap();
        let (_, dev) = srv
            .post("/devices", &b.member, json!({"public_key": dev_key.public_key().to_hex(), "name": "p"}))
            .await;
        let (s, _) = srv
            .post(&format!("/devices/{}/credentials", dev["id"].as_str().unwrap()), &b.member, json!({"org": a.id}))
            .await;
        assert_eq!(s, 404);
        // User-scoped objects: another user's device and session are not found.
        let (a_key, _) = keyway_protocol::SigningKey::generate(&ring::rand::SystemRandom::new()).unwrap();
        let (_, a_dev) = srv
            .post("/devices", &a.member, json!({"public_key": a_key.public_key().to_hex(), "name": "a"}))
            .await;
        let a_dev = a_dev["id"].as_str().unwrap().to_owned();
        let (_, a_sessions) = srv.get("/logins", &a.member).await;
        let a_session = a_sessions["items"][0]["id"].as_str().unwrap().to_owned();
        for (method, path, body) in [
            ("DELETE", format!("/devices/{a_dev}"), None),
            ("POST", format!("/devices/{a_dev}/credentials"), Some(json!({"org": a.id}))),
            ("POST", format!("/devices/{a_dev}/credentials"), Some(json!({"org": b.id}))),
            ("DELETE", format!("/logins/{a_session}"), None),
        ] {
            let (s, v) = srv.call(method, &path, Some(&b.member), body).await;
            assert_eq!(s, 404, "{method} {path}: {v}");
        }
        assert_eq!(srv.get("/me", &a.member).await.0, 200);
        // Nothing changed in org A.
        let (s, lock) = srv.get(&format!("/locks/{}", a.front), &a.owner).await;
        assert_eq!(s, 200);
        assert_eq!(lock["name"], "Front door");
        assert_eq!(lock["lockdown"], false);
    })
    .await;
}
