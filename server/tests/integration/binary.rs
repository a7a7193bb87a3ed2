//! The real `keyway-server` binary: `seed-demo` (idempotent), `create-org`, and
//! `serve --demo` answering over HTTP; two server processes on one PostgreSQL database.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_keyway-server");

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `keyway-server serve` with extra args and returns the process and its base URL.
async fn spawn_serve(extra: &[&str]) -> (Child, String) {
    let mut child = Child(
        Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .env_remove("KEYWAY_DATABASE_URL")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let base = tokio::task::spawn_blocking(move || {
        let mut lines = BufReader::new(stdout).lines();
        for line in lines.by_ref() {
            let line = line.unwrap();
            if let Some(url) = line.strip_prefix("keyway-server listening on ") {
                // Keep draining so the child never blocks on a full pipe.
                std::thread::spawn(move || for _ in lines {});
                return url.to_owned();
            }
        }
        panic!("server did not report its address")
    })
    .await
    .unwrap();
    (child, base)
}

fn run(args: &[&str], dir: &std::path::Path) -> String {
    let out = Command::new(BIN)
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .env_remove("KEYWAY_DATABASE_URL")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn cli_seed_create_org_and_serve() {
    let dir = tempfile::tempdir().unwrap();
    let first: serde_json::Value = serde_json::from_str(&run(&["seed-demo"], dir.path())).unwrap();
    assert_eq!(first["created"], true);
    assert!(first["visitor_invite_code"].is_string());
    assert!(
        first["provisioning_token"]
            .as_str()
            .unwrap()
            .starts_with("kwp_")
    );
    let again: serde_json::Value = serde_json::from_str(&run(&["seed-demo"], dir.path())).unwrap();
    assert_eq!(again["created"], false);
    assert_eq!(again["org_id"], first["org_id"]);
    // A rerun cannot show the first code again (stored hashed), so it issues another.
    assert!(again["visitor_invite_code"].is_string());
    assert_ne!(again["visitor_invite_code"], first["visitor_invite_code"]);
    let out = run(
        &[
            "create-org",
            "--name",
            "Globex",
            "--owner-email",
            "boss@globex.test",
            "--owner-password",
            "globex-password",
        ],
        dir.path(),
    );
    assert!(out.contains("created organization Globex"));

    let data_dir = dir.path().to_str().unwrap().to_owned();
    let (_child, base) = spawn_serve(&["--demo", "--data-dir", &data_dir]).await;
    let http = keyway_server::util::http_client().build().unwrap();
    let health = http.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    for (email, password) in [
        ("alice@acme.test", "alice-demo-password"),
        ("boss@globex.test", "globex-password"),
    ] {
        let login = http
            .post(format!("{base}/api/v1/logins"))
            .json(&serde_json::json!({"email": email, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(login.status(), 201, "{email}");
    }
    for seed in [&first, &again] {
        let redeem = http
            .post(format!("{base}/api/v1/invites/redeem"))
            .json(&serde_json::json!({"code": seed["visitor_invite_code"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(redeem.status(), 201);
    }
}

/// Two `keyway-server` processes on one PostgreSQL database: the controller holds a
/// connection to A, the unlock arrives at B.
#[tokio::test]
async fn two_processes_share_postgres() {
    let Ok(url) = std::env::var("KEYWAY_TEST_PG_URL") else {
        eprintln!("skipping two-process test: set KEYWAY_TEST_PG_URL=postgres://... to enable");
        return;
    };
    // A fresh database, migrated and seeded through the in-process helpers.
    let seed_srv = crate::common::TestServer::postgres(&url, crate::common::test_settings()).await;
    let db_url = seed_srv.state.db.url.clone();
    let org = crate::common::make_org(&seed_srv, "acme").await;
    let (_a, base_a) = spawn_serve(&["--database-url", &db_url]).await;
    let (_b, base_b) =
        spawn_serve(&["--database-url", &db_url, "--unlock-timeout-ms", "3000"]).await;
    let a = crate::common::TestServer::remote(&base_a, &seed_srv);
    let b = crate::common::TestServer::remote(&base_b, &seed_srv);
    let ctl = crate::common::connect_controller(&a, &org).await;
    let (s, v) = b
        .unlock(&org.front, &org.member, serde_json::json!({}), None)
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["granted"], true);
    assert_eq!(ctl.seen.lock().unwrap().actuated.len(), 1);
}
