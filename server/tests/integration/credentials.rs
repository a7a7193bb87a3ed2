//! Devices and offline credentials: issue, verify, revoke into the signed list, rotation.

use crate::common::*;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use keyway_protocol::credential::{ScopeEntry, SignedCredential};
use keyway_protocol::door_trust::{ConfigSeal, extend_trust};
use keyway_protocol::revocation::RevocationList;
use keyway_protocol::{Id, SigningKey, TrustedKeys};
use serde_json::json;

/// Rotates the organization's key as its owner; the answer lists the trusted keys.
async fn rotate_key(srv: &TestServer, org: &Org) -> serde_json::Value {
    let path = format!("/orgs/{}/keys/rotate", org.id);
    let (s, r) = srv.post(&path, &org.owner, json!({})).await;
    assert_eq!(s, 200, "{r}");
    r
}

#[tokio::test]
async fn issue_verify_revoke_and_rotate() {
    on_all_backends(test_settings(), |srv| async move {
        let org = make_org(&srv, "acme").await;
        let ctl = connect_controller(&srv, &org).await;
        let (device_key, _) = SigningKey::generate(&ring::rand::SystemRandom::new()).unwrap();
        let (s, dev) = srv
            .post(
                "/devices",
                &org.member,
                json!({"public_key": device_key.public_key().to_hex(), "name": "Pixel"}),
            )
            .await;
        assert_eq!(s, 201, "{dev}");
        let dev_id = dev["id"].as_str().unwrap().to_owned();
        let (s, c) = srv
            .post(
                &format!("/devices/{dev_id}/credentials"),
                &org.member,
                json!({"org": org.id}),
            )
            .await;
        assert_eq!(s, 200, "{c}");
        let trusted: TrustedKeys = serde_json::from_value(c["trusted_keys"].clone()).unwrap();
        let bytes = STANDARD.decode(c["credential"].as_str().unwrap()).unwrap();
        let cred = SignedCredential::verify(&bytes, &trusted)
            .unwrap()
            .credential;
        assert_eq!(cred.device_key, device_key.public_key());
        assert_eq!(cred.holder.id, Id::parse(&org.member_id).unwrap());
        let front = Id::parse(&org.front).unwrap();
        assert!(cred.scope.contains(&ScopeEntry::Lock(front)));
        assert_eq!(cred.not_after as i64, c["not_after"].as_i64().unwrap());
        let now = chrono::Utc::now().timestamp() as u64;
        cred.check_access(now, front, None).unwrap();
        assert!(c["refresh_after"].as_i64().unwrap() < c["not_after"].as_i64().unwrap());
        // The server's clock, for phones to time the refresh by.
        let issued_at = c["issued_at"].as_i64().unwrap();
        assert!((issued_at - chrono::Utc::now().timestamp()).abs() < 60);
        assert!(issued_at < c["refresh_after"].as_i64().unwrap());

        // Someone else's device is not found; malformed keys are 400.
        let (s, _) = srv
            .post(
                &format!("/devices/{dev_id}/credentials"),
                &org.admin,
                json!({"org": org.id}),
            )
            .await;
        assert_eq!(s, 404);
        let (s, v) = srv
            .post(
                "/devices",
                &org.member,
                json!({"public_key": "04ab", "name": "x"}),
            )
            .await;
        assert_eq!((s, code(&v)), (400, "invalid_request"));

        // Rotation: both keys trusted, the old credential still verifies.
        let r = rotate_key(&srv, &org).await;
        let both: TrustedKeys = serde_json::from_value(r["trusted_keys"].clone()).unwrap();
        assert_eq!(both.keys.len(), 2);
        SignedCredential::verify(&bytes, &both).unwrap();
        ctl.wait(|s| s.configs.last().unwrap().trusted.keys.len() == 2)
            .await;
        // A door still trusting only the first key follows the new key's endorsement to the
        // seal, which the new key signed.
        let (first, rotated) = {
            let seen = ctl.seen.lock().unwrap();
            (
                seen.configs[0].clone(),
                seen.configs.last().unwrap().clone(),
            )
        };
        let endorsements: Vec<Vec<u8>> = rotated
            .endorsements
            .iter()
            .map(|e| STANDARD.decode(e).unwrap())
            .collect();
        assert_eq!(endorsements.len(), 1);
        let seal_bytes = STANDARD.decode(&rotated.seal).unwrap();
        assert!(ConfigSeal::verify(&seal_bytes, &first.trusted).is_err());
        let known = extend_trust(&first.trusted, first.org, &endorsements);
        let seal = ConfigSeal::verify(&seal_bytes, &known).unwrap();
        assert_eq!(
            (seal.controller, seal.version, seal.digest),
            (ctl.id, rotated.version, rotated.digest())
        );
        assert!(rotated.trusted.keys.iter().all(|k| known.keys.contains(k)));
        let (_, c2) = srv
            .post(
                &format!("/devices/{dev_id}/credentials"),
                &org.member,
                json!({"org": org.id}),
            )
            .await;
        let bytes2 = STANDARD.decode(c2["credential"].as_str().unwrap()).unwrap();
        let new_only: TrustedKeys = {
            let mut t = both.clone();
            t.keys.truncate(1);
            t
        };
        SignedCredential::verify(&bytes2, &new_only).unwrap();
        assert!(SignedCredential::verify(&bytes, &new_only).is_err());

        // Another instance may sign cloud commands with the key it cached for up to a
        // minute, so the previous key is not retired within that time, by neither route.
        let retire = format!("/orgs/{}/keys/retire_previous", org.id);
        let rotate = format!("/orgs/{}/keys/rotate", org.id);
        for path in [&retire, &rotate] {
            let (s, v) = srv.post(path, &org.owner, json!({})).await;
            assert_eq!((s, code(&v)), (409, "conflict"), "{path}: {v}");
            assert!(
                v["error"]["message"].as_str().unwrap().contains("retry in"),
                "{v}"
            );
        }
        let (_, keys) = srv.get(&format!("/orgs/{}/keys", org.id), &org.owner).await;
        let still: TrustedKeys = serde_json::from_value(keys["trusted_keys"].clone()).unwrap();
        assert_eq!(still.keys.len(), 2);
        // A minute later (the rotation moved back in time) it is retired.
        sqlx::query("UPDATE org_keys SET created_at = created_at - 61 WHERE org_id = $1")
            .bind(&org.id)
            .execute(srv.state.pool())
            .await
            .unwrap();
        let (s, r) = srv.post(&retire, &org.owner, json!({})).await;
        assert_eq!(s, 200, "{r}");
        let one: TrustedKeys = serde_json::from_value(r["trusted_keys"].clone()).unwrap();
        assert_eq!(one.keys.len(), 1);
        assert!(SignedCredential::verify(&bytes, &one).is_err());

        // Revoking the device puts its credential ids in a newer signed list, pushed to the
        // controller. (Waiting for any new push is not enough: the key retirement above
        // pushes a list too, which may arrive after the deletion began.)
        let (s, _) = srv.delete(&format!("/devices/{dev_id}"), &org.member).await;
        assert_eq!(s, 204);
        let revokes = |list: &String| {
            RevocationList::verify(&STANDARD.decode(list).unwrap(), &both)
                .unwrap()
                .is_revoked(cred.id)
        };
        ctl.wait(|s| s.revocations.last().is_some_and(revokes))
            .await;
        let (_, rl) = srv
            .get(&format!("/orgs/{}/revocations", org.id), &org.member)
            .await;
        let list = RevocationList::verify(
            &STANDARD.decode(rl["list"].as_str().unwrap()).unwrap(),
            &both,
        )
        .unwrap();
        assert!(list.is_revoked(cred.id));
        assert!(list.serial >= 1);
    })
    .await;
}

#[tokio::test]
async fn guest_credentials_carry_invite_limits() {
    on_all_backends(test_settings(), |srv| async move {
        let org = make_org(&srv, "acme").await;
        let now = chrono::Utc::now().timestamp();
        let (_, inv) = srv
            .post(
                &format!("/orgs/{}/invites", org.id),
                &org.manager,
                json!({"name": "v", "lock_ids": [org.front], "valid_until": now + 7200,
                       "daily_start": "00:00", "daily_end": "24:00", "max_unlocks": 3}),
            )
            .await;
        let (_, g) = srv
            .call(
                "POST",
                "/invites/redeem",
                None,
                Some(json!({"code": inv["code"]})),
            )
            .await;
        let guest = g["token"].as_str().unwrap().to_owned();
        let (k, _) = SigningKey::generate(&ring::rand::SystemRandom::new()).unwrap();
        let (_, dev) = srv
            .post(
                "/devices",
                &guest,
                json!({"public_key": k.public_key().to_hex(), "name": "p"}),
            )
            .await;
        let (s, c) = srv
            .post(
                &format!("/devices/{}/credentials", dev["id"].as_str().unwrap()),
                &guest,
                json!({"org": org.id}),
            )
            .await;
        assert_eq!(s, 200, "{c}");
        let trusted: TrustedKeys = serde_json::from_value(c["trusted_keys"].clone()).unwrap();
        let cred = SignedCredential::verify(
            &STANDARD.decode(c["credential"].as_str().unwrap()).unwrap(),
            &trusted,
        )
        .unwrap()
        .credential;
        assert_eq!(
            cred.scope,
            vec![ScopeEntry::Lock(Id::parse(&org.front).unwrap())]
        );
        assert!(cred.not_after as i64 <= now + 7200);
        assert_eq!(cred.max_uses, Some(3));
        assert_eq!(cred.schedule.unwrap().time_zone, "Europe/Berlin");
        // Revoking the invite revokes the credential.
        srv.delete(
            &format!("/invites/{}", inv["id"].as_str().unwrap()),
            &org.manager,
        )
        .await;
        let (_, rl) = srv
            .get(&format!("/orgs/{}/revocations", org.id), &org.member)
            .await;
        let list = RevocationList::verify(
            &STANDARD.decode(rl["list"].as_str().unwrap()).unwrap(),
            &trusted,
        )
        .unwrap();
        assert!(list.is_revoked(cred.id));
    })
    .await;
}

#[tokio::test]
async fn keys_rotated_before_endorsements_are_endorsed_at_start() {
    on_all_backends(test_settings(), |srv| async move {
        let org = make_org(&srv, "acme").await;
        let (_, before) = srv.get(&format!("/orgs/{}/keys", org.id), &org.owner).await;
        let first: TrustedKeys = serde_json::from_value(before["trusted_keys"].clone()).unwrap();
        let r = rotate_key(&srv, &org).await;
        // As an older server would have left it: no endorsement.
        sqlx::query("UPDATE org_keys SET endorsement = NULL WHERE org_id = $1")
            .bind(&org.id)
            .execute(srv.state.pool())
            .await
            .unwrap();
        assert!(
            keyway_server::orgkeys::endorsements(&srv.state, &org.id)
                .await
                .unwrap()
                .is_empty()
        );
        let n = keyway_server::orgkeys::backfill_endorsements(&srv.state)
            .await
            .unwrap();
        assert!(n >= 1);
        assert_eq!(
            keyway_server::orgkeys::backfill_endorsements(&srv.state)
                .await
                .unwrap(),
            0
        );
        let chain: Vec<Vec<u8>> = keyway_server::orgkeys::endorsements(&srv.state, &org.id)
            .await
            .unwrap()
            .iter()
            .map(|e| STANDARD.decode(e).unwrap())
            .collect();
        let both: TrustedKeys = serde_json::from_value(r["trusted_keys"].clone()).unwrap();
        let known = extend_trust(&first, Id::parse(&org.id).unwrap(), &chain);
        assert!(
            both.keys.iter().all(|k| known.keys.contains(k)),
            "{known:?}"
        );
    })
    .await;
}
