//! Role matrix: which roles may call which operations.

use crate::common::*;
use serde_json::json;

#[tokio::test]
async fn role_matrix() {
    on_all_backends(test_settings(), |srv| async move {
        let org = make_org(&srv, "acme").await;
        // A guest via a redeemed invite.
        let (_, inv) = srv
            .post(
                &format!("/orgs/{}/invites", org.id),
                &org.manager,
                json!({"name": "v", "lock_ids": [org.front], "valid_until": chrono::Utc::now().timestamp() + 3600}),
            )
            .await;
        let (s, g) = srv
            .call("POST", "/invites/redeem", None, Some(json!({"code": inv["code"]})))
            .await;
        assert_eq!(s, 201, "{g}");
        let guest = g["token"].as_str().unwrap().to_owned();
        let o = &org.id;
        let tokens = [
            ("owner", org.owner.clone()),
            ("admin", org.admin.clone()),
            ("manager", org.manager.clone()),
            ("member", org.member.clone()),
            ("guest", guest),
        ];
        // (method, path, body, weakest role allowed)
        let cases: Vec<(&str, String, Option<serde_json::Value>, &str)> = vec![
            ("GET", format!("/orgs/{o}/locks"), None, "guest"),
            ("GET", format!("/orgs/{o}/places"), None, "guest"),
            ("GET", format!("/orgs/{o}/revocations"), None, "guest"),
            ("GET", format!("/orgs/{o}/members"), None, "manager"),
            ("GET", format!("/orgs/{o}/events"), None, "manager"),
            ("GET", format!("/orgs/{o}/invites"), None, "manager"),
            ("GET", format!("/orgs/{o}/groups"), None, "manager"),
            ("GET", format!("/orgs/{o}/controllers"), None, "manager"),
            ("POST", format!("/locks/{}/lockdown", org.lab), Some(json!({"lockdown": false})), "manager"),
            ("POST", format!("/orgs/{o}/places"), Some(json!({"name": "p", "time_zone": "UTC"})), "admin"),
            ("POST", format!("/orgs/{o}/groups"), Some(json!({"name": "g"})), "admin"),
            ("GET", format!("/orgs/{o}/webhooks"), None, "admin"),
            ("GET", format!("/orgs/{o}/api_keys"), None, "admin"),
            ("GET", format!("/orgs/{o}/keys"), None, "admin"),
            ("PUT", format!("/locks/{}", org.lab), Some(json!({"name": "Lab"})), "admin"),
            ("POST", format!("/orgs/{o}/keys/rotate"), None, "owner"),
        ];
        let rank = |r: &str| ["guest", "member", "manager", "admin", "owner"].iter().position(|x| *x == r).unwrap();
        for (method, path, body, weakest) in &cases {
            for (role, token) in &tokens {
                let (s, v) = srv.call(method, path, Some(token), body.clone()).await;
                if rank(role) >= rank(weakest) {
                    assert!((200..300).contains(&s), "{role} {method} {path}: {s} {v}");
                } else {
                    assert_eq!(s, 403, "{role} {method} {path}: {v}");
                    assert_eq!(code(&v), "forbidden");
                }
            }
        }
        // Members and guests only see the locks they may open.
        let (_, locks) = srv.get(&format!("/orgs/{o}/locks"), &tokens[4].1).await;
        assert_eq!(locks["total"], 1);
        assert_eq!(locks["items"][0]["id"], json!(org.front));
        let (_, locks) = srv.get(&format!("/orgs/{o}/locks"), &org.member).await;
        assert_eq!(locks["total"], 2);
        // Managers cannot grant roles, admins cannot create owners.
        let (s, _) = srv
            .post(&format!("/orgs/{o}/members"), &org.manager, json!({"email": "q@q.test", "role": "member"}))
            .await;
        assert_eq!(s, 403);
        let (s, _) = srv
            .post(&format!("/orgs/{o}/members"), &org.admin, json!({"email": "q@q.test", "role": "owner"}))
            .await;
        assert_eq!(s, 403);
        // Owners and admins open every lock without a group assignment.
        let _ctl = connect_controller(&srv, &org).await;
        assert_eq!(srv.unlock(&org.lab, &org.admin, json!({}), None).await.0, 200);
        assert_eq!(srv.unlock(&org.lab, &org.owner, json!({}), None).await.0, 200);
        let (s, v) = srv.unlock(&org.lab, &tokens[4].1, json!({}), None).await;
        assert_eq!((s, code(&v)), (403, "no_access"));
        let (s, _) = srv.unlock(&org.front, &tokens[4].1, json!({}), None).await;
        assert_eq!(s, 200);
    })
    .await;
}
