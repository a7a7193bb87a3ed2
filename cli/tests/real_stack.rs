//! The `keyway` binary against the real `keyway-server` (demo seed, SQLite) and a real
//! `keyway-controller` on the simulated radio, all on loopback: sign-in, door list, cloud
//! unlock, BLE unlock, walk-up on a scripted approach, visitor invite, sign-out.
//!
//! Needs the two binaries: `KEYWAY_SERVER_BIN` / `KEYWAY_CONTROLLER_BIN`, or
//! `keyway-server` / `keyway-controller` in this target directory
//! (`cargo build -p keyway-server -p keyway-controller`). Skips, passing, when they are missing.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn find(env: &str, name: &str) -> Option<PathBuf> {
    if let Ok(p) = std::env::var(env) {
        return Some(PathBuf::from(p));
    }
    let exe = std::env::current_exe().ok()?;
    let p = exe.parent()?.parent()?.join(name);
    p.exists().then_some(p)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Cli {
    home: PathBuf,
    server: String,
}

impl Cli {
    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_keyway"))
            .env("KEYWAY_HOME", &self.home)
            .env("KEYWAY_SERVER", &self.server)
            .env_remove("KEYWAY_RADIO")
            .args(args)
            .output()
            .unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.run(&all);
        assert!(
            out.status.success(),
            "keyway {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
    }
}

fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn start_server(bin: &Path, dir: &Path, port: u16) -> (Kill, Value) {
    let mut child = Command::new(bin)
        .args(["serve", "--demo", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let guard = Kill(child);
    // The demo seed is printed as one pretty JSON object before the listening line.
    let mut text = String::new();
    let mut depth = 0i32;
    let mut lines = BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if depth == 0 && !line.starts_with('{') {
            if line.contains("listening") {
                break;
            }
            continue;
        }
        depth += line.matches('{').count() as i32 - line.matches('}').count() as i32;
        text.push_str(&line);
        if depth == 0 {
            break;
        }
    }
    // Keep draining stdout so the server never writes to a closed or full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (guard, serde_json::from_str(&text).expect("demo seed JSON"))
}

#[test]
fn cli_against_real_server_and_controller() {
    let (Some(server_bin), Some(controller_bin)) = (
        find("KEYWAY_SERVER_BIN", "keyway-server"),
        find("KEYWAY_CONTROLLER_BIN", "keyway-controller"),
    ) else {
        eprintln!("keyway-server / keyway-controller binaries not found: skipping");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let (_server, seed) = start_server(&server_bin, &tmp.path().join("server"), port);
    let server = format!("http://127.0.0.1:{port}");
    let hub = free_port();
    let ctl_dir = tmp.path().join("controller");
    let status = Command::new(&controller_bin)
        .args(["provision", "--server", &server, "--token"])
        .arg(seed["provisioning_token"].as_str().unwrap())
        .arg("--data-dir")
        .arg(&ctl_dir)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "controller provisioning failed");
    let _controller = Kill(
        Command::new(&controller_bin)
            .args([
                "run",
                "--radio",
                &format!("sim:127.0.0.1:{hub}"),
                "--data-dir",
            ])
            .arg(&ctl_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let radio = format!("sim:127.0.0.1:{hub}");
    let bob = Cli {
        home: tmp.path().join("bob"),
        server: server.clone(),
    };

    let login = bob.json(&[
        "login",
        "--email",
        "bob@acme.test",
        "--password",
        "bob-demo-password",
    ]);
    assert_eq!(login["user"], "bob@acme.test");
    assert_eq!(bob.json(&["status"])["credential"]["org"], seed["org_id"]);
    eventually("the controller online", || {
        bob.json(&["locks"])["locks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["name"] == "Front door" && l["online"] == true)
    });

    let cloud = bob.json(&["unlock", "Front door"]);
    assert_eq!(
        (cloud["state"].as_str(), cloud["route"].as_str()),
        (Some("granted"), Some("cloud"))
    );
    let ble = bob.json(&["--radio", &radio, "unlock", "Front door"]);
    assert_eq!(
        (ble["state"].as_str(), ble["route"].as_str()),
        (Some("granted"), Some("ble")),
        "{ble}"
    );

    // Walk-up: approach from 12 m and stay at the door, phone in hand; exactly one decision
    // that unlocks.
    let walk = bob.run(&[
        "--json",
        "--radio",
        &radio,
        "walk",
        "--enable",
        "Front door",
        "--carry",
        "uncovered",
        "--sim-script",
        "0,12,0;9000,0.4,0",
        "--duration-s",
        "16",
    ]);
    assert!(
        walk.status.success(),
        "{}",
        String::from_utf8_lossy(&walk.stderr)
    );
    let lines: Vec<Value> = String::from_utf8_lossy(&walk.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let decisions: Vec<&Value> = lines
        .iter()
        .filter(|l| l.get("distance_m").is_some())
        .collect();
    assert_eq!(decisions.len(), 1, "{lines:?}");
    assert!(decisions[0]["skipped"].is_null(), "{lines:?}");
    assert!(
        lines
            .iter()
            .any(|l| l["walk_up"] == true && l["state"] == "granted"),
        "{lines:?}"
    );

    // A visitor invite for the front door, redeemed from its link.
    let alice = Cli {
        home: tmp.path().join("alice"),
        server: server.clone(),
    };
    alice.json(&[
        "login",
        "--email",
        "alice@acme.test",
        "--password",
        "alice-demo-password",
    ]);
    let token = std::fs::read_to_string(alice.home.join("kv/session")).unwrap();
    let token: Value = serde_json::from_str(&token).unwrap();
    let until = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 7200;
    let invite = Command::new("curl")
        .args([
            "-s",
            "-X",
            "POST",
            "-H",
            "content-type: application/json",
            "-H",
        ])
        .arg(format!(
            "authorization: Bearer {}",
            token["token"].as_str().unwrap()
        ))
        .arg(format!(
            "{server}/api/v1/orgs/{}/invites",
            seed["org_id"].as_str().unwrap()
        ))
        .arg("-d")
        .arg(format!(
            r#"{{"name":"Vera","lock_ids":["{}"],"valid_until":{until}}}"#,
            seed["locks"]["Front door"].as_str().unwrap()
        ))
        .output();
    let Ok(invite) = invite else {
        eprintln!("curl not available: skipping the invite part");
        return;
    };
    let invite: Value = serde_json::from_slice(&invite.stdout).unwrap();
    let visitor = Cli {
        home: tmp.path().join("visitor"),
        server: server.clone(),
    };
    let accepted = visitor.json(&["invite", "accept", invite["link"].as_str().unwrap()]);
    assert_eq!(accepted["guest"], true);
    let v = visitor.json(&["unlock", "Front door"]);
    assert_eq!(v["state"], "granted");
    let denied = visitor.run(&["--json", "unlock", "Lab"]);
    assert!(!denied.status.success(), "the visitor may not open the lab");

    assert_eq!(bob.json(&["logout"])["signed_in"], false);
    assert_eq!(bob.json(&["status"])["signed_in"], false);
}
