//! The real `keyway-server` binary: `seed-demo` (idempotent), `create-org`, and
//! `serve --demo` answering over HTTP.

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

    let mut child = Child(
        Command::new(BIN)
            .args(["serve", "--demo", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            .env_remove("KEYWAY_DATABASE_URL")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let base = tokio::task::spawn_blocking(move || {
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            if let Some(url) = line.strip_prefix("keyway-server listening on ") {
                return url.to_owned();
            }
        }
        panic!("server did not report its address")
    })
    .await
    .unwrap();
    let http = reqwest::Client::new();
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
    let redeem = http
        .post(format!("{base}/api/v1/invites/redeem"))
        .json(&serde_json::json!({"code": first["visitor_invite_code"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(redeem.status(), 201);
}
