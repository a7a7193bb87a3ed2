//! Load benchmarks against an in-process server on SQLite (or `--database-url`).
//!
//! ```text
//! cargo run -p keyway-server --release --example load -- unlock --requests 20000 --concurrency 64
//! cargo run -p keyway-server --release --example load -- unlock --requests 20000 --concurrency 32 --rate 1000
//! cargo run -p keyway-server --release --example load -- connections --count 10000
//! ```
//! `unlock` drives cloud unlocks over HTTP through a real controller WebSocket on loopback and
//! prints throughput and p50/p99 latency; `connections` holds many authenticated controller
//! connections (clients in a child process) and prints the server's resident memory. Brief
//! section 5 has the targets.

use futures::{SinkExt, StreamExt};
use keyway_channel::{CommandResult, ControllerMessage, ServerMessage};
use keyway_protocol::{Id, SigningKey};
use keyway_server::{AppState, Settings};
use ring::rand::SystemRandom;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

fn arg(args: &[String], name: &str, default: usize) -> usize {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

async fn start(dir: &std::path::Path, args: &[String]) -> (AppState, String) {
    let url = args
        .iter()
        .position(|a| a == "--database-url")
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| keyway_server::db::sqlite_url(dir));
    let db = keyway_server::db::connect(&url).await.unwrap();
    let settings = Settings {
        unlocks_per_window: u32::MAX,
        requests_per_second: u32::MAX,
        ..Settings::default()
    };
    let state = AppState::new(db, settings);
    let running = keyway_server::serve(state.clone(), "127.0.0.1:0")
        .await
        .unwrap();
    let base = format!("http://{}", running.addr);
    std::mem::forget(running);
    (state, base)
}

/// Authenticates one controller and answers every command with a grant.
async fn controller(ws_url: String, id: Id, key: Arc<SigningKey>, answer: bool) {
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0);
    let (ws, _) = tokio_tungstenite::connect_async_with_config(&ws_url, Some(config), false)
        .await
        .unwrap();
    let (mut sink, mut stream) = ws.split();
    let rng = SystemRandom::new();
    while let Some(Ok(msg)) = stream.next().await {
        let Message::Text(t) = msg else { continue };
        let Ok(m) = serde_json::from_str::<ServerMessage>(&t) else {
            continue;
        };
        let reply = match m {
            ServerMessage::Challenge { nonce } => {
                let mut n = [0u8; 32];
                hex::decode_to_slice(&nonce, &mut n).unwrap();
                let sig = key
                    .sign(&rng, &keyway_channel::auth_message(&n, id))
                    .unwrap();
                Some(ControllerMessage::Hello {
                    controller: id,
                    version: keyway_channel::CHANNEL_VERSION,
                    signature: hex::encode(sig.0),
                })
            }
            ServerMessage::Command { command } if answer => {
                Some(ControllerMessage::CommandResult {
                    result: CommandResult {
                        command_id: command.command_id,
                        granted: true,
                        reason: None,
                        event_seq: 0,
                        duplicate: false,
                    },
                })
            }
            _ => None,
        };
        if let Some(r) = reply {
            let text = serde_json::to_string(&r).unwrap();
            if sink.send(Message::Text(text.into())).await.is_err() {
                return;
            }
        }
    }
}

async fn wait_online(state: &AppState, n: usize) {
    while state.hub.connected_count() < n {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn unlock_bench(args: &[String]) {
    let requests = arg(args, "--requests", 5000);
    let concurrency = arg(args, "--concurrency", 32);
    let dir = tempfile::tempdir().unwrap();
    let (state, base) = start(dir.path(), args).await;
    let seed = keyway_server::seed::seed_demo(&state).await.unwrap();
    let (key, _) = SigningKey::generate(&SystemRandom::new()).unwrap();
    sqlx::query("UPDATE controllers SET public_key = $1 WHERE id = $2")
        .bind(key.public_key().to_hex())
        .bind(&seed.controller_id)
        .execute(state.pool())
        .await
        .unwrap();
    let ws_url = format!("{}/api/v1/controllers/connect", base.replace("http", "ws"));
    tokio::spawn(controller(
        ws_url,
        Id::parse(&seed.controller_id).unwrap(),
        Arc::new(key),
        true,
    ));
    wait_online(&state, 1).await;
    let http = keyway_server::util::http_client().build().unwrap();
    let login: serde_json::Value = http
        .post(format!("{base}/api/v1/logins"))
        .json(&serde_json::json!({"email": "bob@acme.test", "password": "bob-demo-password"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["token"].as_str().unwrap().to_owned();
    let url = format!("{base}/api/v1/locks/{}/unlock", seed.front_door);
    let started = Instant::now();
    let per_worker = requests / concurrency.max(1);
    // Open loop at `--rate` requests/s when given: request k of worker w is due at
    // (k * concurrency + w) / rate, and latency counts from when it was due, so a slow answer
    // delays nothing it should not (no coordinated omission). Without it: closed loop, flat out.
    let rate = arg(args, "--rate", 0);
    let mut tasks = Vec::new();
    for w in 0..concurrency {
        let (http, url, token) = (http.clone(), url.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(per_worker);
            let mut failures = 0usize;
            for k in 0..per_worker {
                let t = if rate > 0 {
                    let due = started
                        + Duration::from_secs_f64((k * concurrency + w) as f64 / rate as f64);
                    tokio::time::sleep_until(due.into()).await;
                    due
                } else {
                    Instant::now()
                };
                let ok = http
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&serde_json::json!({}))
                    .send()
                    .await
                    .map(|r| r.status().is_success())
                    .unwrap_or(false);
                lat.push(t.elapsed());
                failures += usize::from(!ok);
            }
            (lat, failures)
        }));
    }
    let mut all = Vec::new();
    let mut failures = 0;
    for t in tasks {
        let (lat, f) = t.await.unwrap();
        all.extend(lat);
        failures += f;
    }
    let elapsed = started.elapsed();
    all.sort();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    println!(
        "cloud unlocks: {} in {:.2?} = {:.0}/s (concurrency {concurrency}, {}, failures {failures}), \
         p50 {:.2?}, p99 {:.2?}, max {:.2?} [{}]",
        all.len(),
        elapsed,
        all.len() as f64 / elapsed.as_secs_f64(),
        if rate > 0 {
            format!("open loop at {rate}/s")
        } else {
            "closed loop".to_owned()
        },
        pct(0.50),
        pct(0.99),
        all[all.len() - 1],
        if cfg!(debug_assertions) {
            "debug build"
        } else {
            "release build"
        },
    );
}

fn rss_kib_of(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Holds `--count` controller connections on one server and prints the server's resident
/// memory. The controllers run in a child process (`load clients`), so the figure is the
/// server's alone and each process stays under the open-file limit.
async fn connections_bench(args: &[String]) {
    let count = arg(args, "--count", 1000);
    let dir = tempfile::tempdir().unwrap();
    let (state, base) = start(dir.path(), args).await;
    let org =
        keyway_server::seed::create_org_with_owner(&state, "load", "o@load.test", "owner-password")
            .await
            .unwrap();
    let (key, pkcs8) = SigningKey::generate(&SystemRandom::new()).unwrap();
    let mut ids = Vec::with_capacity(count);
    for i in 0..count {
        let (id, _) =
            keyway_server::api::controllers::create_controller(&state, &org, &format!("c{i}"))
                .await
                .unwrap();
        ids.push(id);
    }
    sqlx::query("UPDATE controllers SET public_key = $1 WHERE org_id = $2")
        .bind(key.public_key().to_hex())
        .bind(&org)
        .execute(state.pool())
        .await
        .unwrap();
    // The plan for the child: the shared controller key, then one controller id per line.
    let plan = dir.path().join("clients.txt");
    std::fs::write(
        &plan,
        format!("{}\n{}\n", hex::encode(&pkcs8), ids.join("\n")),
    )
    .unwrap();
    let before = rss_kib();
    let ws_url = format!("{}/api/v1/controllers/connect", base.replace("http", "ws"));
    let started = Instant::now();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["clients", "--url", &ws_url, "--plan"])
        .arg(&plan)
        .spawn()
        .unwrap();
    wait_online(&state, count).await;
    let elapsed = started.elapsed();
    // Let buffers settle before reading memory.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let server = rss_kib();
    println!(
        "{count} controllers connected in {elapsed:.2?}; server RSS {} MiB (was {} MiB before \
         connecting, {:.1} KiB per connection; target: 10,000 within 1 GiB); the client \
         process held {} MiB [{}]",
        server / 1024,
        before / 1024,
        server.saturating_sub(before) as f64 / count.max(1) as f64,
        rss_kib_of(child.id()) / 1024,
        if cfg!(debug_assertions) {
            "debug build"
        } else {
            "release build"
        },
    );
    let _ = child.kill();
    let _ = child.wait();
}

/// The child side of `connections`: connects every controller in the plan and idles.
async fn clients(args: &[String]) {
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
            .unwrap_or_else(|| panic!("clients needs {name}"))
    };
    let (url, plan) = (value("--url"), value("--plan"));
    let plan = std::fs::read_to_string(plan).unwrap();
    let mut lines = plan.lines();
    let pkcs8 = hex::decode(lines.next().unwrap()).unwrap();
    let key = Arc::new(SigningKey::from_pkcs8(&pkcs8, &SystemRandom::new()).unwrap());
    let ids: Vec<Id> = lines.map(|l| Id::parse(l).unwrap()).collect();
    for chunk in ids.chunks(200) {
        for id in chunk {
            tokio::spawn(controller(url.clone(), *id, key.clone(), false));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    std::future::pending::<()>().await;
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("unlock") => unlock_bench(&args).await,
        Some("connections") => connections_bench(&args).await,
        Some("clients") => clients(&args).await,
        _ => eprintln!(
            "usage: load unlock [--requests N --concurrency C --rate R] | connections [--count N] [--database-url URL]"
        ),
    }
}
