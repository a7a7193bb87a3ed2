//! `keyway logout` reports whether the server was told: it waits for the sign-out's DELETE
//! requests instead of a fixed pause, and says so when the server could not be reached (the
//! local sign-out happens either way).

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const ORG: &str = "0a0a0a0a-0000-4000-8000-000000000001";

/// A signed-in state in `home`: a session and a registered device, as `keyway login` leaves.
fn signed_in(home: &Path) {
    let kv = home.join("kv");
    std::fs::create_dir_all(&kv).unwrap();
    let session = json!({
        "token": "tok-1",
        "user": {"id": "u1", "email": "ada@example.com", "name": "Ada"},
        "memberships": [{"org": {"id": ORG, "name": "Acme"}, "role": "member"}],
        "current_org": ORG,
    });
    std::fs::write(kv.join("session"), session.to_string()).unwrap();
    std::fs::write(kv.join("device"), "\"dev-1\"").unwrap();
}

/// A server that answers DELETE with 204 after `delay` and anything else with 503; records
/// the request lines of the DELETEs it answered.
fn slow_server(delay: Duration) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let answered = Arc::new(Mutex::new(Vec::new()));
    let log = answered.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let log = log.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                loop {
                    let mut request = String::new();
                    if reader.read_line(&mut request).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut length = 0;
                    loop {
                        let mut header = String::new();
                        reader.read_line(&mut header).unwrap();
                        let header = header.trim_end();
                        if header.is_empty() {
                            break;
                        }
                        if let Some((name, value)) = header.split_once(':')
                            && name.eq_ignore_ascii_case("content-length")
                        {
                            length = value.trim().parse().unwrap();
                        }
                    }
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).unwrap();
                    let response = if request.starts_with("DELETE ") {
                        std::thread::sleep(delay);
                        log.lock().unwrap().push(request.trim_end().to_owned());
                        "HTTP/1.1 204 No Content\r\n\r\n".to_owned()
                    } else {
                        let body = r#"{"error":{"code":"unavailable","message":"busy"}}"#;
                        format!(
                            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                            body.len()
                        )
                    };
                    if stream.write_all(response.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (format!("http://{addr}"), answered)
}

fn logout(home: &Path, server: &str) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_keyway"))
        .env("KEYWAY_HOME", home)
        .env("KEYWAY_SERVER", server)
        .env_remove("KEYWAY_RADIO")
        .args(["--json", "logout"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "keyway logout failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn logout_waits_for_the_server_to_delete_the_session() {
    let home = tempfile::tempdir().unwrap();
    signed_in(home.path());
    // Slower than the fixed pause logout used to take.
    let (server, answered) = slow_server(Duration::from_millis(1500));
    let v = logout(home.path(), &server);
    assert_eq!(v["signed_in"], false);
    assert_eq!(v["server_signed_out"], true, "{v}");
    assert_eq!(v["server_error"], Value::Null);
    let mut answered = answered.lock().unwrap().clone();
    answered.sort();
    assert_eq!(
        answered,
        [
            "DELETE /api/v1/devices/dev-1 HTTP/1.1",
            "DELETE /api/v1/logins/current HTTP/1.1"
        ]
    );
    assert!(!home.path().join("kv").join("session").exists());
}

#[test]
fn logout_says_when_the_server_was_not_reached() {
    let home = tempfile::tempdir().unwrap();
    signed_in(home.path());
    // Nothing listens on port 9.
    let v = logout(home.path(), "http://127.0.0.1:9");
    assert_eq!(v["signed_in"], false);
    assert_eq!(v["server_signed_out"], false, "{v}");
    let error = v["server_error"].as_str().unwrap();
    assert!(error.contains("/api/v1/logins/current"), "{error}");
    // Signed out locally all the same.
    assert!(!home.path().join("kv").join("session").exists());
}
