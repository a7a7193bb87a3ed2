//! The product's journeys across real processes: `keyway-server`, `keyway-controller` on the
//! simulated radio, and phones running the mobile core through the `keyway` CLI.
//! Server-side journeys run on SQLite and, when `KEYWAY_TEST_PG_URL` is set, on PostgreSQL.

use keyway_e2e::*;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tempfile::TempDir;

const BOB: &str = "bob@acme.test";
const ALICE: &str = "alice@acme.test";

/// A running installation: server with the demo org, a controller serving both doors with
/// "Front door" 1 m from the phones' start and "Lab" 300 m away (out of radio range).
struct World {
    server: Server,
    controller: Controller,
    admin: Api,
    _dir: TempDir,
}

impl World {
    async fn start(db: &Db) -> World {
        Self::start_with(db, &[]).await
    }

    /// [`World::start`], with more arguments for the controller.
    async fn start_with(db: &Db, controller_args: &[&str]) -> World {
        let dir = TempDir::new().unwrap();
        let server = Server::start(db, &dir.path().join("server")).expect("server");
        Self::around(server, dir, controller_args).await
    }

    /// [`World::start`] with the server serving HTTPS and WSS under a fresh private CA,
    /// which the controller, the admin client and the phones are given.
    async fn start_tls(db: &Db) -> World {
        let dir = TempDir::new().unwrap();
        let tls = TestTls::generate(&dir.path().join("tls")).expect("test certificates");
        let server = Server::start_tls(db, &dir.path().join("server"), &tls).expect("server");
        Self::around(server, dir, &[]).await
    }

    /// Provisions and runs the controller against `server` and logs the admin in.
    async fn around(server: Server, dir: TempDir, controller_args: &[&str]) -> World {
        let seed = server.seed.clone();
        let controller = Controller::provision_and_run_with(
            &server,
            &dir.path().join("controller"),
            &[(&seed.front_door, 1.0, 0.0), (&seed.lab, 300.0, 0.0)],
            controller_args,
        )
        .expect("controller");
        let admin = Api::login(&server, ALICE, &seed.password(ALICE))
            .await
            .expect("admin login");
        let w = World {
            server,
            controller,
            admin,
            _dir: dir,
        };
        w.wait_online(true).await;
        w
    }

    fn phone(&self) -> Phone {
        Phone::new(&self.server, &self.controller)
    }

    fn staff_phone(&self) -> Phone {
        let p = self.phone();
        p.login(BOB, &self.server.seed.password(BOB));
        p
    }

    async fn locks(&self) -> Vec<Value> {
        let v = self
            .admin
            .get(&format!("/orgs/{}/locks", self.server.seed.org))
            .await
            .unwrap();
        v["items"].as_array().cloned().unwrap_or_default()
    }

    async fn wait_online(&self, online: bool) {
        for _ in 0..200 {
            let locks = self.locks().await;
            if !locks.is_empty() && locks.iter().all(|l| l["online"] == online) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "locks never became online={online}; controller log:\n{}",
            self.controller.log()
        );
    }

    /// Unlock attempts recorded by the server for `lock`, oldest first.
    async fn attempts(&self, lock: &str) -> Vec<Value> {
        let path = format!(
            "/orgs/{}/events?lock={lock}&type=unlock.attempt&limit=200",
            self.server.seed.org
        );
        let mut items = self.admin.get(&path).await.unwrap()["items"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        items.sort_by_key(|e| e["at_ms"].as_i64());
        items
    }

    /// Waits until the server holds at least `n` attempts for `lock`.
    async fn wait_attempts(&self, lock: &str, n: usize) -> Vec<Value> {
        for _ in 0..200 {
            let a = self.attempts(lock).await;
            if a.len() >= n {
                return a;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "fewer than {n} attempts reached the server: {:?}",
            self.attempts(lock).await
        );
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Runs a blocking CLI call without stalling the runtime's other tasks.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

fn assert_granted(v: &Value, route: &str) {
    assert_eq!(v["state"], "granted", "{v}");
    assert_eq!(v["route"], route, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn journey_1_staff_tap_unlock_over_ble_and_through_the_cloud() {
    for db in Db::all().await {
        let w = World::start(&db).await;
        let phone = blocking(|| w.staff_phone());
        let seed = &w.server.seed;

        let near = blocking(|| phone.ok(&["unlock", "Front door"]));
        assert_granted(&near, "ble");
        let far = blocking(|| phone.ok(&["unlock", "Lab"]));
        assert_granted(&far, "cloud");

        let front = w.wait_attempts(&seed.front_door, 1).await;
        assert_eq!(
            (front[0]["method"].as_str(), front[0]["success"].as_bool()),
            (Some("ble"), Some(true))
        );
        let lab = w.wait_attempts(&seed.lab, 1).await;
        assert_eq!(
            (lab[0]["method"].as_str(), lab[0]["success"].as_bool()),
            (Some("cloud"), Some(true))
        );

        // A geofenced door opens through the cloud only with a position inside the fence
        // (the demo place is at 52.52, 13.405).
        let (s, v) = w
            .admin
            .call(
                reqwest::Method::PUT,
                &format!("/locks/{}", seed.lab),
                Some(json!({"geofence_radius_m": 200.0})),
            )
            .await
            .unwrap();
        assert_eq!(s, 200, "{v}");
        for (at, expect) in [
            (None, Some("outside_geofence")),
            (Some("48.137,11.575"), Some("outside_geofence")),
            (Some("52.5205,13.4052"), None),
        ] {
            let mut args = vec!["unlock", "Lab"];
            args.extend(at.iter().flat_map(|a| ["--at", *a]));
            let (_, v, err) = blocking(|| phone.run(&args));
            match expect {
                Some(reason) => assert_eq!(
                    (v["state"].as_str(), v["reason"].as_str()),
                    (Some("denied"), Some(reason)),
                    "{at:?}: {v} {err}"
                ),
                None => assert_granted(&v, "cloud"),
            }
        }

        // Cloud commands are signed by the organization's key: after a rotation the server
        // signs with the new key, which the controller trusts from its refreshed config.
        let owner = Api::login(
            &w.server,
            "owner@acme.test",
            &seed.password("owner@acme.test"),
        )
        .await
        .unwrap();
        let (s, v) = owner
            .post(&format!("/orgs/{}/keys/rotate", seed.org), json!({}))
            .await
            .unwrap();
        assert!(s < 300, "rotate: {s} {v}");
        let after = blocking(|| phone.ok(&["unlock", "Lab", "--at", "52.5205,13.4052"]));
        assert_granted(&after, "cloud");
        eprintln!("journey 1 passed on {db:?}");
    }
}

/// `keyway walk` with walk-up on "Front door" along a simulated-radio script: the unlocks
/// granted, the walk-up decisions taken, and every JSON line printed.
fn walk(phone: &Phone, script: &str, secs: &str) -> (usize, usize, Vec<Value>) {
    let out = std::process::Command::new(bin("keyway"))
        .arg("--data-dir")
        .arg(phone.home.path())
        .args(["--server", &phone.server, "--radio", &phone.radio, "--json"])
        .args([
            "walk",
            "--enable",
            "Front door",
            "--sim-script",
            script,
            "--duration-s",
            secs,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "walk failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let unlocks = lines.iter().filter(|l| l["state"] == "granted").count();
    let decisions = lines
        .iter()
        .filter(|l| l.get("t_ms").is_some() && l["skipped"].is_null())
        .count();
    (unlocks, decisions, lines)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn journey_2_walk_up_opens_once_on_approach_and_never_passing_or_leaving() {
    let w = World::start(&Db::Sqlite).await;
    let phone = blocking(|| w.staff_phone());
    let walk = |script: &str, secs: &str| walk(&phone, script, secs);
    let front = w.server.seed.front_door.clone();

    // Walk past at 3 m from the door (the door stands at x = 1): never unlocks.
    let (unlocks, decisions, lines) = blocking(|| walk("0,-12,3;9000,14,3", "11"));
    assert_eq!(
        (unlocks, decisions),
        (0, 0),
        "walk-past unlocked: {lines:?}"
    );
    // Start beside the door and walk away: never unlocks.
    let (unlocks, decisions, lines) = blocking(|| walk("0,1.3,0;6000,14,0", "8"));
    assert_eq!(
        (unlocks, decisions),
        (0, 0),
        "departure unlocked: {lines:?}"
    );
    assert!(w.attempts(&front).await.is_empty());
    // Approach from 12 m and stop at the door: exactly one unlock.
    let (unlocks, decisions, lines) = blocking(|| walk("0,13,0;7000,1.6,0", "11"));
    assert_eq!((unlocks, decisions), (1, 1), "approach: {lines:?}");
    let attempts = w.wait_attempts(&front, 1).await;
    assert_eq!(attempts.len(), 1, "{attempts:?}");
    assert_eq!(attempts[0]["method"], "walk_up");
    assert_eq!(attempts[0]["success"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn journey_2_ranged_walk_up_the_radio_measures_the_distance_phone_and_door_decide_by() {
    // Doors that range (as UWB or Channel Sounding would): the radio reports distances to
    // the scanning phone, which its walk-up weighs and gates on, and the door checks its own.
    let w = World::start_with(&Db::Sqlite, &["--sim-ranging-sigma-m", "0.1"]).await;
    let phone = blocking(|| w.staff_phone());
    let front = w.server.seed.front_door.clone();
    // Walk past at 2.5 m from the door (at x = 1): never unlocks.
    let (unlocks, decisions, lines) = blocking(|| walk(&phone, "0,-12,2.5;9000,14,2.5", "11"));
    assert_eq!(
        (unlocks, decisions),
        (0, 0),
        "walk-past unlocked: {lines:?}"
    );
    // Approach from 12 m and stop at the door: one unlock, decided while ranged near it.
    let (unlocks, decisions, lines) = blocking(|| walk(&phone, "0,13,0;7000,1.6,0", "11"));
    assert_eq!((unlocks, decisions), (1, 1), "approach: {lines:?}");
    let decision = lines
        .iter()
        .find(|l| l.get("t_ms").is_some())
        .expect("a decision line");
    let ranged = decision["ranged_m"].as_f64().unwrap_or_else(|| {
        panic!("decided without the radio's ranges: {decision}");
    });
    // The gate is 1.6 m (1.75 with no carry report), and readings err by 0.1 m.
    assert!(ranged <= 2.0, "{decision}");
    let attempts = w.wait_attempts(&front, 1).await;
    assert_eq!(attempts.len(), 1, "{attempts:?}");
    assert_eq!(attempts[0]["method"], "walk_up");
    assert_eq!(attempts[0]["success"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn journey_3_visitor_invite_window_expiry_and_revocation() {
    for db in Db::all().await {
        let w = World::start(&db).await;
        let seed = &w.server.seed;
        let invite = |valid_for: i64| {
            json!({
                "name": "Vera Visitor",
                "email": "vera@example.test",
                "lock_ids": [seed.front_door, seed.lab],
                "valid_from": unix_now() - 60,
                "valid_until": unix_now() + valid_for,
            })
        };
        let (status, created) = w
            .admin
            .post(&format!("/orgs/{}/invites", seed.org), invite(3600))
            .await
            .unwrap();
        assert_eq!(status, 201, "{created}");
        let code = created["code"].as_str().expect("invite code").to_owned();

        // Redeemed without a password; opens both doors inside the window.
        let visitor = w.phone();
        blocking(|| visitor.ok(&["invite", "accept", &code]));
        assert_granted(&blocking(|| visitor.ok(&["unlock", "Front door"])), "ble");
        assert_granted(&blocking(|| visitor.ok(&["unlock", "Lab"])), "cloud");
        // The code is single-use.
        let (ok, _, _) = blocking(|| w.phone().run(&["invite", "accept", &code]));
        assert!(!ok, "a redeemed invite code was accepted twice");

        // Revocation stops the cloud at once; the visitor's door list drops the doors.
        let offline = visitor.offline_copy();
        let id = created["id"].as_str().unwrap();
        let (status, _) = w
            .admin
            .call(reqwest::Method::DELETE, &format!("/invites/{id}"), None)
            .await
            .unwrap();
        assert!(status == 200 || status == 204, "revoke: {status}");
        for lock in ["Lab", "Front door"] {
            let (ok, v, err) = blocking(|| visitor.run(&["unlock", lock]));
            assert!(!ok, "revoked visitor opened {lock}: {v}");
            assert!(
                v["reason"] == "access_revoked" || err.contains("no door called"),
                "{v} {err}"
            );
        }
        // A copy of the phone without network still holds the credential and tries BLE: the
        // door refuses it once the revocation list has reached it.
        let mut near = Value::Null;
        for _ in 0..50 {
            let (ok, v, _) = blocking(|| offline.run(&["unlock", "Front door"]));
            near = v;
            if !ok {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert_eq!(
            near["state"], "denied",
            "revoked credential still opens the door: {near}"
        );
        assert_eq!(
            (near["route"].as_str(), near["reason"].as_str()),
            (Some("ble"), Some("access_revoked")),
            "{near}"
        );

        // Expiry: a short invite opens now and is refused once its window closes.
        let (_, created) = w
            .admin
            .post(&format!("/orgs/{}/invites", seed.org), invite(6))
            .await
            .unwrap();
        let late = w.phone();
        blocking(|| late.ok(&["invite", "accept", created["code"].as_str().unwrap()]));
        assert_granted(&blocking(|| late.ok(&["unlock", "Front door"])), "ble");
        let late_offline = late.offline_copy();
        tokio::time::sleep(Duration::from_secs(8)).await;
        for lock in ["Front door", "Lab"] {
            let (ok, v, err) = blocking(|| late.run(&["unlock", lock]));
            assert!(!ok, "expired visitor opened {lock}: {v}");
            assert!(
                // The guest login ends with the invite window, so the app may have signed out.
                v["reason"] == "access_expired"
                    || err.contains("no door called")
                    || err.contains("not signed in"),
                "{lock}: {v} {err}"
            );
        }
        // Offline, the phone still holds the credential, which has expired with the invite.
        let (ok, v, err) = blocking(|| late_offline.run(&["unlock", "Front door"]));
        assert!(!ok, "expired credential opened the door offline: {v}");
        // The app does not present an expired credential to the door; with no network it says so.
        assert!(
            v["state"] == "denied"
                && ["access_expired", "no_network"]
                    .contains(&v["reason"].as_str().unwrap_or_default()),
            "{v} {err}"
        );
        eprintln!("journey 3 passed on {db:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn journey_4_server_unreachable_ble_still_opens_and_events_arrive_exactly_once() {
    for db in Db::all().await {
        let mut w = World::start(&db).await;
        let phone = blocking(|| w.staff_phone());
        let front = w.server.seed.front_door.clone();
        assert_granted(&blocking(|| phone.ok(&["unlock", "Front door"])), "ble");
        w.wait_attempts(&front, 1).await;

        // The server goes away (crash); the door keeps working from its cache.
        w.server.kill();
        for _ in 0..3 {
            assert_granted(&blocking(|| phone.ok(&["unlock", "Front door"])), "ble");
        }
        // The controller restarts mid-outage too; nothing is lost.
        w.controller.start().unwrap();
        assert_granted(&blocking(|| phone.ok(&["unlock", "Front door"])), "ble");

        w.server.restart().unwrap();
        w.admin = Api::login(&w.server, ALICE, &w.server.seed.password(ALICE))
            .await
            .unwrap();
        let attempts = w.wait_attempts(&front, 5).await;
        // Give a duplicate upload the chance to show up before counting.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let attempts_after = w.attempts(&front).await;
        assert_eq!(attempts.len(), 5, "{attempts:?}");
        assert_eq!(
            attempts_after.len(),
            5,
            "events uploaded more than once: {attempts_after:?}"
        );
        assert!(
            attempts_after
                .iter()
                .all(|e| e["success"] == true && e["method"] == "ble")
        );
        eprintln!("journey 4 passed on {db:?}");
    }
}

#[derive(Default)]
struct Received {
    deliveries: Vec<(String, String, String, String)>,
}

async fn webhook_receiver(store: Arc<Mutex<Received>>) -> String {
    use axum::{Router, http::HeaderMap, routing::post};
    let app = Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: String| {
            let store = store.clone();
            async move {
                let h = |k: &str| {
                    headers
                        .get(k)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned()
                };
                store.lock().unwrap().deliveries.push((
                    h("webhook-id"),
                    h("webhook-timestamp"),
                    h("webhook-signature"),
                    body,
                ));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/hook")
}

/// Standard Webhooks: base64(HMAC-SHA256(secret, "{id}.{timestamp}.{body}")), header "v1,<sig>".
fn verify_signature(secret: &str, id: &str, ts: &str, body: &str, header: &str) -> bool {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = b64.decode(secret.trim_start_matches("whsec_")).unwrap();
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key);
    let expected =
        b64.encode(ring::hmac::sign(&key, format!("{id}.{ts}.{body}").as_bytes()).as_ref());
    header
        .split(' ')
        .any(|s| s.strip_prefix("v1,") == Some(expected.as_str()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn journey_5_audit_log_and_webhooks_see_every_attempt_with_its_reason() {
    for db in Db::all().await {
        let w = World::start(&db).await;
        let seed = &w.server.seed;
        let store = Arc::new(Mutex::new(Received::default()));
        let url = webhook_receiver(store.clone()).await;
        let (status, hook) = w
            .admin
            .post(
                &format!("/orgs/{}/webhooks", seed.org),
                json!({"url": url, "event_types": ["unlock.*"]}),
            )
            .await
            .unwrap();
        assert_eq!(status, 201, "{hook}");
        let secret = hook["secret"].as_str().unwrap().to_owned();

        let phone = blocking(|| w.staff_phone());
        assert_granted(&blocking(|| phone.ok(&["unlock", "Front door"])), "ble");
        assert_granted(&blocking(|| phone.ok(&["unlock", "Lab"])), "cloud");
        // Lockdown: refused with its reason, by the cloud and by the door.
        let (status, _) = w
            .admin
            .post(
                &format!("/locks/{}/lockdown", seed.lab),
                json!({"lockdown": true}),
            )
            .await
            .unwrap();
        assert!(status < 300, "lockdown: {status}");
        let (ok, denied, _) = blocking(|| phone.run(&["unlock", "Lab"]));
        assert!(!ok);
        assert_eq!(denied["reason"], "lockdown", "{denied}");

        let front = w.wait_attempts(&seed.front_door, 1).await;
        let lab = w.wait_attempts(&seed.lab, 2).await;
        let summary: Vec<(Value, Value, Value)> = front
            .iter()
            .chain(lab.iter())
            .map(|e| {
                (
                    e["method"].clone(),
                    e["success"].clone(),
                    e["reason"].clone(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (json!("ble"), json!(true), Value::Null),
                (json!("cloud"), json!(true), Value::Null),
                (json!("cloud"), json!(false), json!("lockdown")),
            ]
        );

        // The receiver sees the same three attempts, each signed.
        let mut got = Vec::new();
        for _ in 0..100 {
            got = store.lock().unwrap().deliveries.clone();
            if got.len() >= 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(got.len(), 3, "webhook deliveries: {got:?}");
        let mut reasons = Vec::new();
        for (id, ts, sig, body) in &got {
            assert!(
                verify_signature(&secret, id, ts, body, sig),
                "bad webhook signature on {body}"
            );
            let v: Value = serde_json::from_str(body).unwrap();
            let data = if v.get("data").is_some() {
                &v["data"]
            } else {
                &v
            };
            reasons.push((data["success"].clone(), data["reason"].clone()));
        }
        reasons.sort_by_key(|r| r.0.to_string());
        assert_eq!(
            reasons,
            vec![
                (json!(false), json!("lockdown")),
                (json!(true), Value::Null),
                (json!(true), Value::Null)
            ]
        );
        eprintln!("journey 5 passed on {db:?}");
    }
}

/// The server terminates TLS itself: the controller provisions over HTTPS and holds its
/// channel over WSS, and a phone logs in and opens doors over HTTPS, all trusting a private
/// CA. Without that CA, controller and phone refuse the server, and the refused controller's
/// one-time token is still good afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn journey_6_tls_end_to_end_with_a_private_ca() {
    let mut w = World::start_tls(&Db::Sqlite).await;
    assert!(w.server.url.starts_with("https://"), "{}", w.server.url);
    let seed = &w.server.seed;

    // Trusting only the system's CAs, nobody gets through, and nothing is spent.
    let untrusting = TempDir::new().unwrap();
    let out = std::process::Command::new(bin("keyway-controller"))
        .args([
            "provision",
            "--server",
            &w.server.url,
            "--token",
            "kwp_unused",
            "--data-dir",
        ])
        .arg(untrusting.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("TLS") && err.contains("certificate"), "{err}");
    let mut stranger = w.phone();
    stranger.ca_file = None;
    let (ok, v, err) = blocking(|| stranger.run(&["login", "--email", BOB, "--password", "x"]));
    assert!(!ok, "login without the CA: {v}");
    assert!(
        err.contains("certificate") || v.to_string().contains("certificate"),
        "{v} {err}"
    );

    // Plain HTTP to the TLS port is not served.
    let plain = w.server.url.replacen("https://", "http://", 1);
    let plain = blocking(|| {
        std::process::Command::new(bin("keyway"))
            .args([
                "--server",
                &plain,
                "--json",
                "login",
                "--email",
                BOB,
                "--password",
                "x",
            ])
            .arg("--data-dir")
            .arg(untrusting.path().join("phone"))
            .output()
            .unwrap()
    });
    assert!(!plain.status.success());

    // With the CA: BLE at the door, and the cloud through the WSS channel to the controller.
    let phone = blocking(|| w.staff_phone());
    let near = blocking(|| phone.ok(&["unlock", "Front door"]));
    assert_granted(&near, "ble");
    let far = blocking(|| phone.ok(&["unlock", "Lab"]));
    assert_granted(&far, "cloud");
    let lab = w.wait_attempts(&seed.lab, 1).await;
    assert_eq!(
        (lab[0]["method"].as_str(), lab[0]["success"].as_bool()),
        (Some("cloud"), Some(true))
    );
    assert!(
        w.controller.log().contains("wss://"),
        "the controller's channel is not on WSS:\n{}",
        w.controller.log()
    );

    // A renewed certificate (here from another CA) is served after SIGHUP, without a restart.
    let tls = w.server.tls.clone().unwrap();
    let renewed_dir = TempDir::new().unwrap();
    let renewed = TestTls::generate(renewed_dir.path()).unwrap();
    assert!(trusts(&w.server.url, &tls.ca).await);
    assert!(!trusts(&w.server.url, &renewed.ca).await);
    std::fs::copy(&renewed.cert, &tls.cert).unwrap();
    std::fs::copy(&renewed.key, &tls.key).unwrap();
    w.server.proc.signal("HUP").unwrap();
    let mut served = false;
    for _ in 0..100 {
        if trusts(&w.server.url, &renewed.ca).await {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        served,
        "the renewed certificate was not served after SIGHUP"
    );
    assert!(!trusts(&w.server.url, &tls.ca).await);
    // A broken pair is refused and the one in use stays.
    std::fs::write(&tls.key, "not a key").unwrap();
    w.server.proc.signal("HUP").unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(trusts(&w.server.url, &renewed.ca).await);
    assert!(w.server.proc.is_running());
    let log = w.server.log();
    assert!(log.contains("TLS certificate reloaded"), "{log}");
    assert!(log.contains("TLS certificate not reloaded"), "{log}");
}

/// Whether a client trusting only `ca` gets `/healthz` from `url`.
async fn trusts(url: &str, ca: &std::path::Path) -> bool {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let pem = std::fs::read(ca).unwrap();
    let client = reqwest::Client::builder()
        .tls_certs_only(reqwest::Certificate::from_pem_bundle(&pem).unwrap())
        .build()
        .unwrap();
    client
        .get(format!("{url}/healthz"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}
