//! Taking access away: every change that narrows someone's access revokes their offline
//! credentials, nobody delegates more than they hold, and nothing caps silently.

use crate::common::*;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use keyway_protocol::credential::{Credential, SignedCredential};
use keyway_protocol::revocation::RevocationList;
use keyway_protocol::{SigningKey, TrustedKeys};
use serde_json::{Value, json};

/// Registers a device for `token` and issues it a credential in `org`.
async fn issue(srv: &TestServer, token: &str, org: &str) -> Credential {
    let (key, _) = SigningKey::generate(&ring::rand::SystemRandom::new()).unwrap();
    let (s, dev) = srv
        .post(
            "/devices",
            token,
            json!({"public_key": key.public_key().to_hex(), "name": "phone"}),
        )
        .await;
    assert_eq!(s, 201, "{dev}");
    let path = format!("/devices/{}/credentials", dev["id"].as_str().unwrap());
    let (s, c) = srv.post(&path, token, json!({"org": org})).await;
    assert_eq!(s, 200, "{c}");
    credential_of(&c)
}

fn credential_of(c: &Value) -> Credential {
    let trusted: TrustedKeys = serde_json::from_value(c["trusted_keys"].clone()).unwrap();
    let bytes = STANDARD.decode(c["credential"].as_str().unwrap()).unwrap();
    SignedCredential::verify(&bytes, &trusted)
        .unwrap()
        .credential
}

async fn revocations(srv: &TestServer, org: &Org) -> RevocationList {
    let (s, rl) = srv
        .get(&format!("/orgs/{}/revocations", org.id), &org.owner)
        .await;
    assert_eq!(s, 200, "{rl}");
    let (_, keys) = srv.get(&format!("/orgs/{}/keys", org.id), &org.owner).await;
    let trusted: TrustedKeys = serde_json::from_value(keys["trusted_keys"].clone()).unwrap();
    RevocationList::verify(
        &STANDARD.decode(rl["list"].as_str().unwrap()).unwrap(),
        &trusted,
    )
    .unwrap()
}

/// A visitor's guest token for an invite code.
async fn redeem(srv: &TestServer, code: &Value) -> String {
    let body = Some(json!({"code": code}));
    let (s, guest) = srv.call("POST", "/invites/redeem", None, body).await;
    assert_eq!(s, 201, "{guest}");
    guest["token"].as_str().unwrap().to_owned()
}

async fn user_id(srv: &TestServer, token: &str) -> String {
    let (s, me) = srv.get("/me", token).await;
    assert_eq!(s, 200, "{me}");
    me["user"]["id"].as_str().unwrap().to_owned()
}

async fn add_member(srv: &TestServer, org: &Org, role: &str) -> (String, String) {
    let email = format!("{role}-{}@extra.test", hex::encode(rand_bytes::<4>()));
    let (s, v) = srv
        .post(
            &format!("/orgs/{}/members", org.id),
            &org.owner,
            json!({"email": email, "password": "member-password", "role": role}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let token = srv.login(&email, "member-password").await;
    (v["user_id"].as_str().unwrap().to_owned(), token)
}

#[tokio::test]
async fn narrowing_a_group_revokes_its_holders_credentials() {
    on_all_backends(test_settings(), |srv| async move {
        let org = make_org(&srv, "acme").await;
        let cred = issue(&srv, &org.member, &org.id).await;
        assert!(!revocations(&srv, &org).await.revokes(&cred));

        // The Lab leaves the Staff group: the credential naming it is revoked at once.
        let path = format!("/groups/{}/locks/{}", org.group, org.lab);
        let (s, v) = srv.delete(&path, &org.admin).await;
        assert_eq!(s, 204, "{v}");
        assert!(revocations(&srv, &org).await.revokes(&cred));
        let (s, v) = srv.delete(&path, &org.admin).await;
        assert_eq!((s, code(&v)), (404, "not_found"));
        // The next credential carries only what is left.
        let again = issue(&srv, &org.member, &org.id).await;
        assert_eq!(again.scope.len(), 1);
        assert!(!revocations(&srv, &org).await.revokes(&again));

        // A visitor invited to a group loses its credential with the group.
        let (s, g) = srv
            .post(
                &format!("/orgs/{}/groups", org.id),
                &org.owner,
                json!({"name": "Lab visitors", "lock_ids": [org.lab]}),
            )
            .await;
        assert_eq!(s, 201, "{g}");
        let now = chrono::Utc::now().timestamp();
        let (s, inv) = srv
            .post(
                &format!("/orgs/{}/invites", org.id),
                &org.owner,
                json!({"name": "Vic", "group_id": g["id"], "valid_until": now + 3600}),
            )
            .await;
        assert_eq!(s, 201, "{inv}");
        let guest = redeem(&srv, &inv["code"]).await;
        let guest_cred = issue(&srv, &guest, &org.id).await;
        let (s, v) = srv
            .delete(
                &format!("/groups/{}", g["id"].as_str().unwrap()),
                &org.owner,
            )
            .await;
        assert_eq!(s, 204, "{v}");
        let list = revocations(&srv, &org).await;
        assert!(list.revokes(&guest_cred) && list.revokes(&cred) && !list.revokes(&again));
    })
    .await;
}

#[tokio::test]
async fn managers_delegate_only_what_they_hold_and_only_to_members() {
    on_all_backends(test_settings(), |srv| async move {
        let org = make_org(&srv, "acme").await;
        let now = chrono::Utc::now().timestamp();
        let invites = format!("/orgs/{}/invites", org.id);
        // A lock in no group of the manager's.
        let (s, vault) = srv
            .post(
                &format!("/orgs/{}/locks", org.id),
                &org.owner,
                json!({"place_id": org.place, "name": "Vault"}),
            )
            .await;
        assert_eq!(s, 201, "{vault}");
        let (s, vault_group) = srv
            .post(
                &format!("/orgs/{}/groups", org.id),
                &org.owner,
                json!({"name": "Vault", "lock_ids": [vault["id"]]}),
            )
            .await;
        assert_eq!(s, 201, "{vault_group}");
        for body in [
            json!({"name": "V", "lock_ids": [vault["id"]], "valid_until": now + 600}),
            json!({"name": "V", "lock_ids": [org.front, vault["id"]], "valid_until": now + 600}),
            json!({"name": "V", "group_id": vault_group["id"], "valid_until": now + 600}),
        ] {
            let (s, v) = srv.post(&invites, &org.manager, body.clone()).await;
            assert_eq!((s, code(&v)), (403, "forbidden"), "{body}: {v}");
            // An admin may.
            let (s, v) = srv.post(&invites, &org.admin, body).await;
            assert_eq!(s, 201, "{v}");
        }
        let (s, v) = srv
            .post(
                &invites,
                &org.manager,
                json!({"name": "V", "group_id": org.group, "valid_until": now + 600}),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        let managers_invite = format!("/invites/{}", v["id"].as_str().unwrap());

        // A manager grants members only groups they hold.
        let assign = format!("/orgs/{}/role_assignments", org.id);
        let (s, v) = srv
            .post(
                &assign,
                &org.manager,
                json!({"user_id": org.member_id, "group_id": vault_group["id"]}),
            )
            .await;
        assert_eq!((s, code(&v)), (403, "forbidden"), "{v}");
        let (s, v) = srv
            .post(
                &assign,
                &org.manager,
                json!({"user_id": org.member_id, "group_id": org.group}),
            )
            .await;
        assert_eq!(s, 201, "{v}");

        // The manager's invites rest on their assignment: removing it withdraws them.
        let manager_id = user_id(&srv, &org.manager).await;
        let (_, theirs) = srv
            .get(&format!("{assign}?user={manager_id}"), &org.admin)
            .await;
        let (s, v) = srv
            .delete(
                &format!(
                    "/role_assignments/{}",
                    theirs["items"][0]["id"].as_str().unwrap()
                ),
                &org.admin,
            )
            .await;
        assert_eq!(s, 204, "{v}");
        let (_, after) = srv.get(&managers_invite, &org.admin).await;
        assert_eq!(after["status"], "revoked", "{after}");
        let (s, v) = srv
            .post(
                &assign,
                &org.owner,
                json!({"user_id": manager_id, "group_id": org.group}),
            )
            .await;
        assert_eq!(s, 201, "{v}");

        // A manager removes a member's assignment, not a peer manager's.
        let (peer, peer_token) = add_member(&srv, &org, "manager").await;
        let (s, peer_assignment) = srv
            .post(
                &assign,
                &org.owner,
                json!({"user_id": peer, "group_id": org.group, "valid_until": now + 3600}),
            )
            .await;
        assert_eq!(s, 201, "{peer_assignment}");
        let peer_path = format!(
            "/role_assignments/{}",
            peer_assignment["id"].as_str().unwrap()
        );
        let (s, v) = srv.delete(&peer_path, &org.manager).await;
        assert_eq!((s, code(&v)), (403, "forbidden"), "{v}");
        let (_, mine) = srv
            .get(&format!("{assign}?user={}", org.member_id), &org.manager)
            .await;
        let member_path = format!(
            "/role_assignments/{}",
            mine["items"][0]["id"].as_str().unwrap()
        );
        let (s, v) = srv.delete(&member_path, &org.manager).await;
        assert_eq!(s, 204, "{v}");

        // Nor past the end of their own access; and what they handed on goes with them.
        let front_for =
            |until: i64| json!({"name": "V", "lock_ids": [org.front], "valid_until": until});
        let (s, v) = srv.post(&invites, &peer_token, front_for(now + 7200)).await;
        assert_eq!((s, code(&v)), (403, "forbidden"), "{v}");
        let (s, inv) = srv.post(&invites, &peer_token, front_for(now + 1800)).await;
        assert_eq!(s, 201, "{inv}");
        let visitor = redeem(&srv, &inv["code"]).await;
        let visitor_cred = issue(&srv, &visitor, &org.id).await;
        let (s, v) = srv
            .delete(&format!("/orgs/{}/members/{peer}", org.id), &org.admin)
            .await;
        assert_eq!(s, 204, "{v}");
        let (_, after) = srv
            .get(
                &format!("/invites/{}", inv["id"].as_str().unwrap()),
                &org.admin,
            )
            .await;
        assert_eq!(after["status"], "revoked", "{after}");
        assert!(revocations(&srv, &org).await.revokes(&visitor_cred));
        let (s, v) = srv.delete(&peer_path, &org.admin).await;
        assert_eq!(
            (s, code(&v)),
            (404, "not_found"),
            "assignments go with the member: {v}"
        );

        // A visitor's guest login cannot found an organization.
        let (_, inv) = srv
            .post(
                &invites,
                &org.admin,
                json!({"name": "G",
            "lock_ids": [org.front], "valid_until": now + 600}),
            )
            .await;
        let guest = redeem(&srv, &inv["code"]).await;
        let (s, v) = srv.post("/orgs", &guest, json!({"name": "Mine"})).await;
        assert_eq!((s, code(&v)), (403, "forbidden"), "{v}");
        let (s, v) = srv
            .post("/orgs", &org.member, json!({"name": "Mine"}))
            .await;
        assert_eq!(s, 201, "{v}");
    })
    .await;
}

#[tokio::test]
async fn api_keys_keep_no_more_than_their_creators_role() {
    on_all_backends(test_settings(), |srv| async move {
        let org = make_org(&srv, "acme").await;
        let admin_id = user_id(&srv, &org.admin).await;
        let mut keys = Vec::new();
        for role in ["admin", "manager"] {
            let (s, k) = srv
                .post(
                    &format!("/orgs/{}/api_keys", org.id),
                    &org.admin,
                    json!({"name": role, "role": role}),
                )
                .await;
            assert_eq!(s, 201, "{k}");
            keys.push(k["token"].as_str().unwrap().to_owned());
        }
        let places = format!("/orgs/{}/places", org.id);
        let works = |key: String| {
            let srv = &srv;
            let places = places.clone();
            async move { srv.get(&places, &key).await.0 }
        };
        assert_eq!(
            (works(keys[0].clone()).await, works(keys[1].clone()).await),
            (200, 200)
        );
        // A key made by the admin's admin key goes with it.
        let (s, k) = srv
            .post(
                &format!("/orgs/{}/api_keys", org.id),
                &keys[0],
                json!({"name": "made by a key", "role": "admin"}),
            )
            .await;
        assert_eq!(s, 201, "{k}");
        let grandchild = k["token"].as_str().unwrap().to_owned();
        assert_eq!(works(grandchild.clone()).await, 200);
        // Deleting a key takes the keys made with it along.
        let (s, k2) = srv
            .post(
                &format!("/orgs/{}/api_keys", org.id),
                &org.admin,
                json!({"name": "parent", "role": "admin"}),
            )
            .await;
        assert_eq!(s, 201, "{k2}");
        let (s, child) = srv
            .post(
                &format!("/orgs/{}/api_keys", org.id),
                k2["token"].as_str().unwrap(),
                json!({"name": "child", "role": "manager"}),
            )
            .await;
        assert_eq!(s, 201, "{child}");
        let (s, v) = srv
            .delete(
                &format!("/orgs/{}/api_keys/{}", org.id, k2["id"].as_str().unwrap()),
                &org.owner,
            )
            .await;
        assert_eq!(s, 204, "{v}");
        assert_eq!(
            works(child["token"].as_str().unwrap().to_owned()).await,
            401
        );
        let member = format!("/orgs/{}/members/{admin_id}", org.id);
        let (s, v) = srv
            .put(&member, &org.owner, json!({"role": "manager"}))
            .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(
            (works(keys[0].clone()).await, works(keys[1].clone()).await),
            (401, 200)
        );
        assert_eq!(works(grandchild).await, 401);
        let (s, v) = srv.delete(&member, &org.owner).await;
        assert_eq!(s, 204, "{v}");
        assert_eq!(works(keys[1].clone()).await, 401);

        // The last owner cannot leave or step down.
        let owner_id = user_id(&srv, &org.owner).await;
        let owner = format!("/orgs/{}/members/{owner_id}", org.id);
        let (s, v) = srv.put(&owner, &org.owner, json!({"role": "admin"})).await;
        assert_eq!((s, code(&v)), (409, "conflict"), "{v}");
        let (s, v) = srv.delete(&owner, &org.owner).await;
        assert_eq!((s, code(&v)), (409, "conflict"), "{v}");
    })
    .await;
}

#[tokio::test]
async fn no_member_fills_the_revocation_list_and_no_controller_drops_a_lock() {
    on_all_backends(test_settings(), |srv| async move {
        let org = make_org(&srv, "acme").await;
        let first = issue(&srv, &org.member, &org.id).await;
        for _ in 1..32 {
            issue(&srv, &org.member, &org.id).await;
        }
        let (key, _) = SigningKey::generate(&ring::rand::SystemRandom::new()).unwrap();
        let (_, dev) = srv
            .post(
                "/devices",
                &org.member,
                json!({"public_key": key.public_key().to_hex(), "name": "one more"}),
            )
            .await;
        let path = format!("/devices/{}/credentials", dev["id"].as_str().unwrap());
        let (s, v) = srv.post(&path, &org.member, json!({"org": org.id})).await;
        assert_eq!((s, code(&v)), (429, "too_many_credentials"), "{v}");
        // Others are not held back by one member's count.
        issue(&srv, &org.admin, &org.id).await;
        assert!(!revocations(&srv, &org).await.revokes(&first));

        // The controller's certificate names at most 32 locks: the 33rd is refused, not
        // left out of its configuration.
        let locks = format!("/orgs/{}/locks", org.id);
        for i in 2..32 {
            let (s, v) = srv
                .post(
                    &locks,
                    &org.owner,
                    json!({"place_id": org.place, "name": format!("Door {i}"),
                           "controller_id": org.controller}),
                )
                .await;
            assert_eq!(s, 201, "{v}");
        }
        let (s, v) = srv
            .post(
                &locks,
                &org.owner,
                json!({"place_id": org.place, "name": "Door 33", "controller_id": org.controller}),
            )
            .await;
        assert_eq!((s, code(&v)), (400, "invalid_request"), "{v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains("32"),
            "{v}"
        );
        // A lock already on it may be updated with it.
        let (s, v) = srv
            .put(
                &format!("/locks/{}", org.lab),
                &org.owner,
                json!({"name": "Lab 2", "controller_id": org.controller}),
            )
            .await;
        assert_eq!(s, 200, "{v}");
    })
    .await;
}

/// Issuance and revocation are ordered by the organization's row: a credential asked for
/// while a removal is in flight is refused once the removal commits, never issued behind
/// its back and left off the list.
#[tokio::test]
async fn a_credential_asked_for_during_a_revocation_is_refused() {
    on_all_backends(test_settings(), |srv| async move {
        let org = make_org(&srv, "acme").await;
        let (key, _) = SigningKey::generate(&ring::rand::SystemRandom::new()).unwrap();
        let (s, dev) = srv
            .post(
                "/devices",
                &org.member,
                json!({"public_key": key.public_key().to_hex(), "name": "phone"}),
            )
            .await;
        assert_eq!(s, 201, "{dev}");
        let path = format!("/devices/{}/credentials", dev["id"].as_str().unwrap());

        // A removal of the member's access, begun and not yet committed, as the assignment
        // endpoints do it.
        let mut tx = srv.state.pool().begin().await.unwrap();
        keyway_server::db::lock_org(&mut tx, &org.id).await.unwrap();
        sqlx::query("DELETE FROM role_assignments WHERE user_id = $1")
            .bind(&org.member_id)
            .execute(&mut *tx)
            .await
            .unwrap();
        keyway_server::orgkeys::revoke_credentials(
            &mut tx,
            &org.id,
            keyway_server::orgkeys::Holders::User(&org.member_id),
        )
        .await
        .unwrap();

        let (http, url) = (srv.http.clone(), format!("{}/api/v1{path}", srv.base));
        let (token, org_id) = (org.member.clone(), org.id.clone());
        let request = tokio::spawn(async move {
            let resp = http
                .post(url)
                .bearer_auth(token)
                .json(&json!({"org": org_id}))
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.unwrap())
        });
        // Long enough for the request's access check to run on the old data (it did before
        // the fix, and the credential came out unrevoked).
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        assert!(
            !request.is_finished(),
            "issued under a revocation in flight"
        );
        tx.commit().await.unwrap();

        let (s, v) = request.await.unwrap();
        assert_eq!((s, code(&v)), (403, "no_access"), "{v}");
    })
    .await;
}

/// Invites an admin made may open any door; a manager's only the doors of their groups. So
/// an admin stepping down to manager keeps none of them, and their visitors lose access.
#[tokio::test]
async fn an_admin_demoted_to_manager_keeps_no_invites() {
    on_all_backends(test_settings(), |srv| async move {
        let org = make_org(&srv, "acme").await;
        let now = chrono::Utc::now().timestamp();
        let (s, inv) = srv
            .post(
                &format!("/orgs/{}/invites", org.id),
                &org.admin,
                json!({"name": "Vic", "lock_ids": [org.lab], "valid_until": now + 3600}),
            )
            .await;
        assert_eq!(s, 201, "{inv}");
        let guest = redeem(&srv, &inv["code"]).await;
        let cred = issue(&srv, &guest, &org.id).await;
        let admin_id = user_id(&srv, &org.admin).await;
        let member = format!("/orgs/{}/members/{admin_id}", org.id);
        let (s, v) = srv
            .put(&member, &org.owner, json!({"role": "manager"}))
            .await;
        assert_eq!(s, 200, "{v}");
        assert!(revocations(&srv, &org).await.revokes(&cred));
        let invite = format!("/invites/{}", inv["id"].as_str().unwrap());
        let (s, v) = srv.get(&invite, &org.owner).await;
        assert_eq!((s, v["status"].as_str()), (200, Some("revoked")), "{v}");
        let (s, v) = srv.unlock(&org.lab, &guest, json!({}), None).await;
        assert_eq!((s, code(&v)), (403, "access_revoked"), "{v}");
    })
    .await;
}
