//! The real `keyway-controller` binary: provision, run with the simulated radio, status, and
//! the clear failure of the BlueZ radio where no bluetoothd/adapter exists.

mod common;

use common::*;
use keyway_protocol::handshake::Action;
use keyway_sim_radio::SimPhone;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_keyway-controller"));
    c.env("RUST_LOG", "info").kill_on_drop(true);
    c
}

async fn provision(server: &TestServer, dir: &Path, token: &str) -> std::process::Output {
    bin()
        .args([
            "provision",
            "--server",
            &server.url(),
            "--token",
            token,
            "--data-dir",
        ])
        .arg(dir)
        .output()
        .await
        .unwrap()
}

async fn status(dir: &Path) -> String {
    let out = bin()
        .arg("status")
        .arg("--data-dir")
        .arg(dir)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn provision_run_unlock_and_status_with_the_binary() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();

    let bad = provision(&server, dir.path(), "wrong-token").await;
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("refused provisioning (401"));

    let out = provision(&server, dir.path(), TOKEN).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&CONTROLLER.to_string()));
    let mode = std::fs::metadata(dir.path().join("controller.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let again = provision(&server, dir.path(), TOKEN).await;
    assert!(String::from_utf8_lossy(&again.stderr).contains("already provisioned"));

    let mut child = bin()
        .args(["run", "--radio", "sim:127.0.0.1:0", "--position"])
        .arg(format!("{LOCK_A}=0,0"))
        .arg("--data-dir")
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let addr = first.strip_prefix("radio sim:").unwrap().to_string();

    let phone = SimPhone::connect(addr.as_str(), "binary-test")
        .await
        .unwrap();
    phone.set_position(0.5, 0.0).await.unwrap();
    phone
        .next_advert(Some(&LOCK_A.to_string()), Duration::from_secs(10))
        .await
        .unwrap();
    // A credential signed by the server's org key, for the phone's device key.
    let device = Device::new();
    let cred = keyway_protocol::credential::Credential {
        id: random_id(),
        org: ORG,
        holder: keyway_protocol::credential::Holder {
            kind: keyway_protocol::credential::HolderKind::Guest,
            id: random_id(),
        },
        device_key: keyway_protocol::keys::DeviceSigner::public_key(&device),
        scope: vec![keyway_protocol::credential::ScopeEntry::Lock(LOCK_A)],
        not_before: now_secs() - 60,
        not_after: now_secs() + 600,
        max_uses: None,
        schedule: None,
    }
    .sign(&server.state.org_key, &ring::rand::SystemRandom::new())
    .unwrap();
    let trusted = keyway_protocol::TrustedKeys::single(ORG, server.state.org_key.public_key());
    // The first attempts may race the time statement (clock_untrusted); retry briefly.
    let mut granted = false;
    for _ in 0..40 {
        let r = unlock_with(
            &phone,
            LOCK_A,
            Action::Unlock,
            &trusted,
            &cred,
            &device,
            random_id(),
        )
        .await
        .unwrap();
        if r.granted {
            granted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(granted);
    let state = server.state.clone();
    eventually("event uploaded", 15, || {
        state.events().iter().any(|e| e.granted == Some(true))
    })
    .await;

    let mut text = String::new();
    for _ in 0..40 {
        text = status(dir.path()).await;
        // Written after the upload was acknowledged, not a stale snapshot from before it.
        if text.contains("Online") && text.contains("0 pending") && !text.contains("last seq 0") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(text.contains("running"), "{text}");
    assert!(text.contains("Online"), "{text}");
    assert!(text.contains("Front door"), "{text}");
    assert!(text.contains("0 pending"), "{text}");

    child.kill().await.unwrap();
    // Without the process the status reads the data directory itself.
    let text = status(dir.path()).await;
    assert!(text.contains("not running"), "{text}");
    assert!(text.contains("0 pending"), "{text}");
    assert!(text.contains("config       version"), "{text}");
}

#[tokio::test]
async fn bluez_radio_fails_with_a_clear_message_without_bluetooth() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    assert!(provision(&server, dir.path(), TOKEN).await.status.success());
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        bin()
            .args(["run", "--radio", "bluez", "--data-dir"])
            .arg(dir.path())
            .output(),
    )
    .await
    .expect("the bluez radio must fail fast, not hang")
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        panic!("bluez radio started on a machine without Bluetooth? {stderr}");
    }
    assert!(
        stderr.contains("BlueZ is not reachable") || stderr.contains("no Bluetooth adapter"),
        "{stderr}"
    );
}
