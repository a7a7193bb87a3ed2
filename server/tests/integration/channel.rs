//! The controller channel with a real WebSocket client: authentication, config with a
//! verifiable certificate, trusted time, event upload de-duplication, online status.

use crate::common::*;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use futures::{SinkExt, StreamExt};
use keyway_channel::{ControllerMessage, DoorEvent, DoorEventKind, Method, ServerMessage};
use keyway_protocol::certificate::ControllerCertificate;
use keyway_protocol::revocation::RevocationList;
use keyway_protocol::time::TimeStatement;
use keyway_protocol::{Id, Reason, SigningKey};
use serde_json::json;

#[tokio::test]
async fn hello_with_a_wrong_key_is_refused() {
    on_all_backends(test_settings(), |srv| async move {
        let org = make_org(&srv, "acme").await;
        let (id, _real) = provision(&srv, &org.provisioning_token).await;
        let (ws, _) = tokio_tungstenite::connect_async(srv.ws_url()).await.unwrap();
        let (mut sink, mut stream) = ws.split();
        let Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t))) = stream.next().await else {
            panic!("no challenge")
        };
        let ServerMessage::Challenge { nonce } = serde_json::from_str(&t).unwrap() else {
            panic!("not a challenge")
        };
        let mut n = [0u8; 32];
        hex::decode_to_slice(&nonce, &mut n).unwrap();
        let (wrong, _) = SigningKey::generate(&ring::rand::SystemRandom::new()).unwrap();
        let sig = wrong
            .sign(&ring::rand::SystemRandom::new(), &keyway_channel::auth_message(&n, id))
            .unwrap();
        let hello = ControllerMessage::Hello {
            controller: id,
            version: keyway_channel::CHANNEL_VERSION,
            signature: hex::encode(sig.0),
        };
        sink.send(tokio_tungstenite::tungstenite::Message::Text(
            serde_json::to_string(&hello).unwrap().into(),
        ))
        .await
        .unwrap();
        let Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t))) = stream.next().await else {
            panic!("no answer")
        };
        let msg: ServerMessage = serde_json::from_str(&t).unwrap();
        assert!(matches!(msg, ServerMessage::Error { ref code, .. } if code == "unauthorized"), "{msg:?}");
        // Provisioning tokens are single-use.
        let (s, _) = srv
            .call("POST", "/controllers/provision", None,
                Some(json!({"token": org.provisioning_token, "public_key": wrong.public_key().to_hex()})))
            .await;
        assert_eq!(s, 401);
    })
    .await;
}

#[tokio::test]
async fn config_time_events_and_status() {
    on_all_backends(test_settings(), |srv| async move {
        let org = make_org(&srv, "acme").await;
        let ctl = connect_controller(&srv, &org).await;
        let org_id = Id::parse(&org.id).unwrap();
        let front = Id::parse(&org.front).unwrap();
        let now = chrono::Utc::now().timestamp() as u64;

        // Config: both locks, a certificate the org's trusted keys verify for each lock.
        let cfg = ctl.seen.lock().unwrap().configs[0].clone();
        assert_eq!(cfg.org, org_id);
        assert_eq!(cfg.controller, ctl.id);
        assert_eq!(cfg.locks.len(), 2);
        let cert = STANDARD.decode(&cfg.certificate).unwrap();
        let c = ControllerCertificate::verify_for(&cert, &cfg.trusted, front, now).unwrap();
        assert_eq!(c.public_key, ctl.key.public_key());
        let list = ctl.seen.lock().unwrap().revocations[0].clone();
        RevocationList::verify(&STANDARD.decode(list).unwrap(), &cfg.trusted).unwrap();

        // A changed lock pushes a newer config.
        srv.post(
            &format!("/locks/{}/lockdown", org.front),
            &org.manager,
            json!({"lockdown": true}),
        )
        .await;
        ctl.wait(|s| s.configs.last().unwrap().locks.iter().any(|l| l.lockdown))
            .await;
        let newer = ctl.seen.lock().unwrap().configs.last().unwrap().version;
        assert!(newer > cfg.version);

        // Trusted time answers our nonce.
        let nonce = rand_bytes::<16>();
        ctl.send(ControllerMessage::TimeRequest {
            nonce: hex::encode(nonce),
        });
        ctl.wait(|s| !s.times.is_empty()).await;
        let stmt = STANDARD.decode(&ctl.seen.lock().unwrap().times[0]).unwrap();
        let t = TimeStatement::verify(&stmt, &cfg.trusted, ctl.id, &nonce).unwrap();
        assert!(t.unix_ms / 1000 >= now - 5);

        // Events: stored once per (controller, seq), acknowledged with the highest seq.
        let ev = |seq: u64| DoorEvent {
            seq,
            at_ms: now * 1000 + seq,
            kind: DoorEventKind::UnlockAttempt,
            lock: front,
            method: Some(Method::Ble),
            granted: Some(seq != 2),
            reason: (seq == 2).then_some(Reason::Expired),
            credential: None,
            holder: None,
            command_id: None,
        };
        ctl.upload(vec![ev(1), ev(2)]);
        ctl.wait(|s| s.acks.contains(&2)).await;
        ctl.upload(vec![ev(2), ev(3)]);
        ctl.wait(|s| s.acks.contains(&3)).await;
        let (_, events) = srv
            .get(
                &format!("/orgs/{}/events?type=unlock.attempt", org.id),
                &org.manager,
            )
            .await;
        assert_eq!(events["total"], 3, "{events}");
        assert_eq!(events["items"][1]["reason"], "access_expired");
        assert_eq!(events["items"][1]["method"], "ble");
        ctl.heartbeat();
        ctl.send(ControllerMessage::TimeRequest { nonce: "zz".into() });
        ctl.wait(|s| s.errors.iter().any(|e| e == "invalid_request"))
            .await;

        // Online while connected, offline after close.
        let path = format!("/controllers/{}", org.controller);
        assert_eq!(srv.get(&path, &org.admin).await.1["online"], true);
        ctl.close();
        eventually(|| async { srv.get(&path, &org.admin).await.1["online"] == false }).await;
    })
    .await;
}

#[tokio::test]
async fn silent_controller_goes_offline() {
    let settings = keyway_server::Settings {
        controller_silence: std::time::Duration::from_millis(500),
        ..test_settings()
    };
    on_all_backends(settings, |srv| async move {
        let org = make_org(&srv, "acme").await;
        let ctl = connect_controller(&srv, &org).await;
        let path = format!("/controllers/{}", org.controller);
        assert_eq!(srv.get(&path, &org.admin).await.1["online"], true);
        // No heartbeats: the server drops the session and marks the controller offline.
        eventually(|| async { srv.get(&path, &org.admin).await.1["online"] == false }).await;
        assert!(!srv.state.hub.is_connected(&org.controller));
        drop(ctl);
    })
    .await;
}
