//! Webhooks: Standard Webhooks signatures checked by an independent verifier in the test,
//! retry after receiver failure, auto-disable visible in the API.

use crate::common::*;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct Receiver {
    fail_first: usize,
    always_fail: bool,
    calls: usize,
    accepted: Vec<Value>,
    secret: String,
    bad_signatures: usize,
}

fn verify(secret: &str, headers: &HeaderMap, body: &str) -> bool {
    let id = headers["webhook-id"].to_str().unwrap();
    let ts = headers["webhook-timestamp"].to_str().unwrap();
    // The secret is handed over after creation; a delivery racing ahead fails verification.
    let Some(key) = secret
        .strip_prefix("whsec_")
        .and_then(|k| STANDARD.decode(k).ok())
    else {
        return false;
    };
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key);
    let want = format!(
        "v1,{}",
        STANDARD.encode(ring::hmac::sign(
            &key,
            format!("{id}.{ts}.{body}").as_bytes()
        ))
    );
    let age = chrono::Utc::now().timestamp() - ts.parse::<i64>().unwrap();
    headers["webhook-signature"]
        .to_str()
        .unwrap()
        .split(' ')
        .any(|s| s == want)
        && age.abs() < 300
}

async fn start_receiver(r: Arc<Mutex<Receiver>>) -> String {
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let r = r.clone();
            async move {
                let mut r = r.lock().unwrap();
                r.calls += 1;
                if !verify(&r.secret.clone(), &headers, &body) {
                    r.bad_signatures += 1;
                    return StatusCode::UNAUTHORIZED;
                }
                if r.always_fail || r.calls <= r.fail_first {
                    return StatusCode::INTERNAL_SERVER_ERROR;
                }
                r.accepted.push(serde_json::from_str(&body).unwrap());
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/hook")
}

#[tokio::test]
async fn signed_delivery_with_retry_after_failure() {
    on_all_backends(test_settings(), |srv| async move {
        let org = make_org(&srv, "acme").await;
        let _ctl = connect_controller(&srv, &org).await;
        let rx = Arc::new(Mutex::new(Receiver {
            fail_first: 2,
            ..Default::default()
        }));
        let url = start_receiver(rx.clone()).await;
        let (s, hook) = srv
            .post(
                &format!("/orgs/{}/webhooks", org.id),
                &org.admin,
                json!({"url": url, "event_types": ["unlock.attempt"]}),
            )
            .await;
        assert_eq!(s, 201, "{hook}");
        let secret = hook["secret"].as_str().unwrap().to_owned();
        assert!(secret.starts_with("whsec_"));
        rx.lock().unwrap().secret = secret;
        assert_eq!(
            srv.unlock(&org.front, &org.member, json!({}), None).await.0,
            200
        );
        eventually(|| async { !rx.lock().unwrap().accepted.is_empty() }).await;
        {
            let r = rx.lock().unwrap();
            assert_eq!(r.bad_signatures, 0);
            assert_eq!(r.calls, 3, "two failures then success");
            assert_eq!(r.accepted[0]["type"], "unlock.attempt");
            assert_eq!(r.accepted[0]["data"]["lock_id"], json!(org.front));
        }
        let (_, d) = srv
            .get(
                &format!("/webhooks/{}/deliveries", hook["id"].as_str().unwrap()),
                &org.admin,
            )
            .await;
        assert_eq!(d["items"][0]["status"], "delivered");
        assert_eq!(d["items"][0]["attempts"], 3);
        // The janitor's SQL runs on this backend and keeps recent rows.
        keyway_server::webhooks::cleanup(&srv.state).await.unwrap();
        let (_, d) = srv
            .get(
                &format!("/webhooks/{}/deliveries", hook["id"].as_str().unwrap()),
                &org.admin,
            )
            .await;
        assert_eq!(d["total"], 1);
    })
    .await;
}

#[tokio::test]
async fn failing_webhook_is_disabled_and_says_why() {
    let settings = keyway_server::Settings {
        webhook_disable_after: 3,
        ..test_settings()
    };
    on_all_backends(settings, |srv| async move {
        let org = make_org(&srv, "acme").await;
        let rx = Arc::new(Mutex::new(Receiver {
            always_fail: true,
            ..Default::default()
        }));
        let url = start_receiver(rx.clone()).await;
        let (_, hook) = srv
            .post(
                &format!("/orgs/{}/webhooks", org.id),
                &org.admin,
                json!({"url": url, "event_types": ["*"]}),
            )
            .await;
        rx.lock().unwrap().secret = hook["secret"].as_str().unwrap().to_owned();
        srv.post(
            &format!("/locks/{}/lockdown", org.lab),
            &org.manager,
            json!({"lockdown": true}),
        )
        .await;
        let path = format!("/webhooks/{}", hook["id"].as_str().unwrap());
        eventually(|| async { srv.get(&path, &org.admin).await.1["enabled"] == false }).await;
        let (_, h) = srv.get(&path, &org.admin).await;
        assert!(
            h["disabled_reason"]
                .as_str()
                .unwrap()
                .contains("consecutive failed deliveries")
        );
        assert!(h["consecutive_failures"].as_i64().unwrap() >= 3);
        let (s, h) = srv
            .post(&format!("{path}/enable"), &org.admin, json!({}))
            .await;
        assert_eq!(s, 200);
        assert_eq!(h["enabled"], true);
    })
    .await;
}

#[tokio::test]
async fn pending_deliveries_survive_a_restart() {
    // The outbox is a table: a delivery written by one server process is sent by the next.
    let dir = tempfile::tempdir().unwrap();
    let url = keyway_server::db::sqlite_url(dir.path());
    let rx = Arc::new(Mutex::new(Receiver::default()));
    let hook_url = start_receiver(rx.clone()).await;
    {
        let db = keyway_server::db::connect(&url).await.unwrap();
        let state = keyway_server::AppState::new(db, test_settings());
        let secret = keyway_server::webhooks::new_secret(&ring::rand::SystemRandom::new());
        rx.lock().unwrap().secret = secret.clone();
        store_hook_and_event(&state, &hook_url, &secret).await;
        // No worker ran in this "process".
        assert_eq!(rx.lock().unwrap().calls, 0);
    }
    let db = keyway_server::db::connect(&url).await.unwrap();
    let state = keyway_server::AppState::new(db, test_settings());
    let running = keyway_server::serve(state, "127.0.0.1:0").await.unwrap();
    eventually(|| async { rx.lock().unwrap().accepted.len() == 1 }).await;
    assert_eq!(rx.lock().unwrap().accepted[0]["type"], "test.event");
    running.handle.abort();
}

/// The receiver is Python's `standardwebhooks` package (PyPI), the reference verifier.
#[tokio::test]
async fn standardwebhooks_package_verifies_deliveries() {
    let check = std::process::Command::new("python3")
        .args(["-c", "import standardwebhooks"])
        .output();
    if !check.is_ok_and(|o| o.status.success()) {
        eprintln!(
            "skipping: python3 with the standardwebhooks package (pip install standardwebhooks) is not available"
        );
        return;
    }
    let srv = TestServer::sqlite(test_settings()).await;
    let org = make_org(&srv, "acme").await;
    // Create the webhook first (its secret is needed by the receiver), pointing at a
    // placeholder, then switch the URL once the receiver reports its port.
    let (s, hook) = srv
        .post(
            &format!("/orgs/{}/webhooks", org.id),
            &org.admin,
            json!({"url": "http://127.0.0.1:9/", "event_types": ["lock.*"]}),
        )
        .await;
    assert_eq!(s, 201);
    let secret = hook["secret"].as_str().unwrap().to_owned();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/webhook_receiver.py");
    let mut child = tokio::process::Command::new("python3")
        .args([script, &secret, "1"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next_line().await.unwrap().unwrap();
    let port = first.strip_prefix("PORT ").unwrap().to_owned();
    sqlx::query("UPDATE webhooks SET url = $1 WHERE id = $2")
        .bind(format!("http://127.0.0.1:{port}/hook"))
        .bind(hook["id"].as_str().unwrap())
        .execute(srv.state.pool())
        .await
        .unwrap();
    srv.post(
        &format!("/locks/{}/lockdown", org.lab),
        &org.manager,
        json!({"lockdown": true}),
    )
    .await;
    let a = lines.next_line().await.unwrap().unwrap();
    let b = lines.next_line().await.unwrap().unwrap();
    assert_eq!(
        a, "OK lock.lockdown_started 500",
        "first attempt refused by the receiver"
    );
    assert_eq!(
        b, "OK lock.lockdown_started 204",
        "retry verified and accepted"
    );
    let _ = child.kill().await;
}

#[tokio::test]
async fn webhook_urls_must_be_public_addresses() {
    // Without `webhook_allow_private`, an admin cannot point the server at its own network.
    let settings = keyway_server::Settings {
        webhook_allow_private: false,
        ..test_settings()
    };
    on_all_backends(settings, |srv| async move {
        let org = make_org(&srv, "acme").await;
        let path = format!("/orgs/{}/webhooks", org.id);
        for url in [
            "http://127.0.0.1:9/x",
            "http://[::1]:8080/",
            "http://169.254.169.254/latest/meta-data/",
            "http://10.0.0.5/hook",
            "http://localhost:8080/admin",
            "http://[::ffff:192.168.1.1]/",
        ] {
            let (s, body) = srv
                .post(&path, &org.admin, json!({"url": url, "event_types": ["*"]}))
                .await;
            assert_eq!(s, 400, "{url}: {body}");
            assert!(
                body["error"]["message"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("public address"),
                "{url}: {body}"
            );
        }
        let (s, body) = srv
            .post(
                &path,
                &org.admin,
                json!({"url": "https://hooks.example.com/keyway", "event_types": ["*"]}),
            )
            .await;
        assert_eq!(s, 201, "{body}");
    })
    .await;
}

#[tokio::test]
async fn stored_private_webhook_is_not_called() {
    // A row that predates the policy (or was written around the API) is refused at delivery.
    let rx = Arc::new(Mutex::new(Receiver::default()));
    let hook_url = start_receiver(rx.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let db = keyway_server::db::connect(&keyway_server::db::sqlite_url(dir.path()))
        .await
        .unwrap();
    let settings = keyway_server::Settings {
        webhook_allow_private: false,
        ..test_settings()
    };
    let state = keyway_server::AppState::new(db, settings);
    store_hook_and_event(&state, &hook_url, "whsec_AAAA").await;
    let pool = state.pool().clone();
    let running = keyway_server::serve(state, "127.0.0.1:0").await.unwrap();
    eventually(|| async {
        let (err,): (Option<String>,) =
            sqlx::query_as("SELECT last_error FROM webhook_deliveries WHERE webhook_id = 'w1'")
                .fetch_one(&pool)
                .await
                .unwrap();
        err.is_some_and(|e| e.contains("public address"))
    })
    .await;
    assert_eq!(rx.lock().unwrap().calls, 0, "the receiver was never called");
    running.handle.abort();
}

/// Writes webhook `w1` (all event types) for a new organization straight into the database,
/// as an older server or another process would have, and records one event for it.
async fn store_hook_and_event(state: &keyway_server::AppState, url: &str, secret: &str) {
    let org =
        keyway_server::seed::create_org_with_owner(state, "acme", "o@acme.test", "owner-password")
            .await
            .unwrap();
    sqlx::query("INSERT INTO webhooks (id, org_id, url, secret, event_types, created_at) VALUES ('w1', $1, $2, $3, '[\"*\"]', 0)")
        .bind(&org)
        .bind(url)
        .bind(secret)
        .execute(state.pool())
        .await
        .unwrap();
    keyway_server::events::record(
        state,
        keyway_server::events::NewEvent {
            org_id: org,
            kind: "test.event".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
}
