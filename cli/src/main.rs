//! `keyway`: the command-line shell over the mobile core runtime. People use it to try Keyway
//! on a laptop; end-to-end tests drive it. State (session, device key, caches) lives in
//! `--data-dir` / `KEYWAY_HOME` (default `~/.keyway`).

mod replay;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use keyway_shared::app::view::{LockView, ViewModel};
use keyway_shared::app::{Event, Location};
use keyway_shared::runtime::btle::BtleplugTransport;
use keyway_shared::runtime::sim::SimTransport;
use keyway_shared::runtime::{
    BleTransport, HttpOutcome, NoRadio, Runtime, RuntimeConfig, render_counter,
};
use keyway_shared::walkup::{Carry, WalkUpParams};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

#[derive(Parser, Debug)]
#[command(
    name = "keyway",
    version,
    about = "Keyway access control from the command line"
)]
struct Cli {
    /// State directory (session, device key, caches).
    #[arg(long, env = "KEYWAY_HOME", global = true)]
    data_dir: Option<PathBuf>,
    /// Server base URL (remembered after login).
    #[arg(long, env = "KEYWAY_SERVER", global = true)]
    server: Option<String>,
    /// Machine-readable output.
    #[arg(long, global = true)]
    json: bool,
    /// BLE radio: `none`, `ble` (btleplug, first adapter), `ble:ADAPTER` (e.g. `ble:hci1`) or
    /// `sim:HOST:PORT` (simulated radio hub).
    #[arg(long, env = "KEYWAY_RADIO", global = true, default_value = "none")]
    radio: String,
    /// PEM CA certificates to trust beside the system's, for an https:// server with a
    /// private CA or a self-signed certificate.
    #[arg(long, env = "KEYWAY_CA_FILE", global = true)]
    ca_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Sign in with email and password (`KEYWAY_PASSWORD` or prompt-free `--password`).
    Login {
        #[arg(long)]
        email: String,
        #[arg(long, env = "KEYWAY_PASSWORD", hide_env_values = true)]
        password: String,
    },
    /// Sign out and revoke this device's offline credentials.
    Logout,
    /// List organizations; `--select` switches the current one.
    Orgs {
        #[arg(long)]
        select: Option<String>,
    },
    /// Places with their doors.
    Places,
    /// Doors of the current organization.
    Locks,
    /// Open a door (by id or name): BLE when nearby with a credential, else the cloud.
    Unlock {
        lock: String,
        /// How long to listen for the door before choosing a route.
        #[arg(long, default_value_t = 2000)]
        scan_ms: u64,
        /// Where you are, `LAT,LON` in degrees, for doors that only open inside a geofence.
        #[arg(long, value_parser = parse_lat_lon, allow_hyphen_values = true)]
        at: Option<(f64, f64)>,
    },
    /// Walk-up: run the engine live against the radio, or replay a trace.
    Walk {
        /// CSV trace `t_ms,lock,rssi` (optional `motion`: walking, still; `carry`: covered,
        /// uncovered; `pace`: m/s; `range_m`: a ranged distance, metres); prints one JSON
        /// line per unlock decision.
        #[arg(long)]
        replay: Option<PathBuf>,
        /// Advertised RSSI at 1 m for replayed traces.
        #[arg(long, default_value_t = -59, allow_hyphen_values = true)]
        tx_power: i8,
        /// Enable walk-up for these locks (ids or names) before walking.
        #[arg(long = "enable")]
        enable: Vec<String>,
        /// Stop after this many seconds (live mode).
        #[arg(long)]
        duration_s: Option<u64>,
        /// Simulated radio only: walk this script, `t_ms,x,y;t_ms,x,y;...` (metres).
        #[arg(long)]
        sim_script: Option<String>,
        /// How the phone is carried, as a phone's proximity sensor would report it (live mode;
        /// a computer has no such sensor): `covered` (pocket, bag) or `uncovered` (hand).
        #[arg(long, value_parser = parse_carry)]
        carry: Option<Carry>,
    },
    /// Visitor invites.
    Invite {
        #[command(subcommand)]
        action: InviteAction,
    },
    /// Who is signed in, and the held offline credential.
    Status,
}

/// `covered`, `uncovered` or `unknown`.
fn parse_carry(s: &str) -> Result<Carry, String> {
    replay::named(s).ok_or_else(|| format!("{s:?} is not covered, uncovered or unknown"))
}

/// `LAT,LON` in degrees.
fn parse_lat_lon(s: &str) -> Result<(f64, f64), String> {
    let (lat, lon) = s
        .split_once(',')
        .ok_or_else(|| "expected LAT,LON, e.g. 52.52,13.405".to_owned())?;
    let lat: f64 = lat
        .trim()
        .parse()
        .map_err(|_| format!("latitude {lat:?} is not a number"))?;
    let lon: f64 = lon
        .trim()
        .parse()
        .map_err(|_| format!("longitude {lon:?} is not a number"))?;
    if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
        return Err("latitude must be within ±90 and longitude within ±180".into());
    }
    Ok((lat, lon))
}

#[derive(Subcommand, Debug)]
enum InviteAction {
    /// Redeem an invite code or link (no password needed).
    Accept {
        /// Older base64url codes may start with `-`, so hyphen-led values are taken as the code.
        #[arg(allow_hyphen_values = true)]
        code: String,
    },
}

fn data_dir(cli: &Cli) -> anyhow::Result<PathBuf> {
    if let Some(d) = &cli.data_dir {
        return Ok(d.clone());
    }
    let home = std::env::var_os("HOME").context("set --data-dir or KEYWAY_HOME")?;
    Ok(PathBuf::from(home).join(".keyway"))
}

/// The server URL: flag/env, else the one remembered in the data dir.
fn server(cli: &Cli, dir: &std::path::Path) -> anyhow::Result<String> {
    let file = dir.join("server");
    if let Some(s) = &cli.server {
        // Private, as the runtime makes it: the session and the device key live here.
        let mut private = std::fs::DirBuilder::new();
        private.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut private, 0o700);
        private.create(dir)?;
        std::fs::write(&file, s)?;
        return Ok(s.clone());
    }
    std::fs::read_to_string(&file)
        .map(|s| s.trim().to_owned())
        .context("no server configured: pass --server URL (or KEYWAY_SERVER) once")
}

struct Shell {
    rt: Runtime,
    renders: watch::Receiver<u64>,
    json: bool,
}

const WAIT: Duration = Duration::from_secs(20);

impl Shell {
    async fn wait(
        &self,
        what: &str,
        done: impl FnMut(&ViewModel) -> bool,
    ) -> anyhow::Result<ViewModel> {
        self.rt
            .wait_for(&self.renders, WAIT, done)
            .await
            .with_context(|| format!("timed out waiting for {what}"))
    }

    async fn signed_in(&self) -> anyhow::Result<ViewModel> {
        let v = self.wait("stored session", |v| v.ready).await?;
        if !v.signed_in {
            bail!("not signed in: run `keyway login` or `keyway invite accept`");
        }
        // Let the directory refresh (or fail to, offline).
        self.wait("door list", |v| !v.loading).await
    }

    fn print(&self, value: &serde_json::Value, human: impl FnOnce() -> String) {
        if self.json {
            println!("{value}");
        } else {
            println!("{}", human());
        }
    }
}

fn all_locks(v: &ViewModel) -> Vec<&LockView> {
    v.places.iter().flat_map(|p| p.locks.iter()).collect()
}

fn find_lock<'a>(v: &'a ViewModel, key: &str) -> anyhow::Result<&'a LockView> {
    let locks = all_locks(v);
    if let Some(l) = locks.iter().find(|l| l.id == key) {
        return Ok(l);
    }
    let named: Vec<&&LockView> = locks
        .iter()
        .filter(|l| l.name.eq_ignore_ascii_case(key))
        .collect();
    match named.as_slice() {
        [one] => Ok(one),
        [] => bail!("no door called {key:?}; see `keyway locks`"),
        _ => bail!("several doors are called {key:?}; use its id"),
    }
}

/// The chosen radio: the transport the core drives, and the concrete one again where the
/// shell needs it (moving the simulated phone; closing Bluetooth links before exiting).
struct Radio {
    ble: Arc<dyn BleTransport>,
    sim: Option<Arc<SimTransport>>,
    btle: Option<Arc<BtleplugTransport>>,
}

impl Radio {
    async fn open(spec: &str) -> anyhow::Result<Radio> {
        Ok(match spec {
            "none" | "" => Radio {
                ble: Arc::new(NoRadio),
                sim: None,
                btle: None,
            },
            "ble" => Self::btleplug(None).await?,
            other if other.starts_with("ble:") => {
                Self::btleplug(other.strip_prefix("ble:")).await?
            }
            other => match other.strip_prefix("sim:") {
                Some(addr) => {
                    let sim = Arc::new(
                        SimTransport::connect(addr, "keyway-cli")
                            .await
                            .map_err(|e| anyhow::anyhow!("simulated radio at {addr}: {e}"))?,
                    );
                    Radio {
                        ble: sim.clone(),
                        sim: Some(sim),
                        btle: None,
                    }
                }
                None => {
                    bail!("unknown radio {other:?}: use none, ble, ble:ADAPTER or sim:HOST:PORT")
                }
            },
        })
    }

    /// btleplug on `adapter` (`None`: the first one).
    async fn btleplug(adapter: Option<&str>) -> anyhow::Result<Radio> {
        let t = Arc::new(
            BtleplugTransport::new(adapter)
                .await
                .map_err(|e| anyhow::anyhow!("Bluetooth: {e}"))?,
        );
        Ok(Radio {
            ble: t.clone(),
            sim: None,
            btle: Some(t),
        })
    }

    /// Ends open links before the process does (the core closes them in the background).
    async fn close(&self) {
        if let Some(t) = &self.btle {
            t.close().await;
        }
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli).await {
        eprintln!("keyway: {e:#}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    // Replay needs no state, no server and no radio: keep stdout to decisions only.
    if let Command::Walk {
        replay: Some(file),
        tx_power,
        ..
    } = &cli.command
    {
        let f = std::fs::File::open(file).with_context(|| format!("open {}", file.display()))?;
        let rows = replay::parse(std::io::BufReader::new(f))?;
        let mut out = std::io::stdout().lock();
        replay::run(&rows, *tx_power, WalkUpParams::default(), &mut out)?;
        return Ok(());
    }
    let dir = data_dir(&cli)?;
    let api_base = server(&cli, &dir)?;
    let radio = Radio::open(&cli.radio).await?;
    let (observer, renders) = render_counter();
    let rt = Runtime::new(
        RuntimeConfig {
            api_base,
            data_dir: dir,
            ca_file: cli.ca_file.clone(),
        },
        radio.ble.clone(),
        None,
        observer,
    )
    .context("start the core")?;
    let sh = Shell {
        rt,
        renders,
        json: cli.json,
    };
    sh.wait("stored session", |v| v.ready).await?;
    match cli.command {
        Command::Login { email, password } => {
            sh.rt.send(Event::Login { email, password });
            let v = sh
                .wait("sign-in", |v| {
                    !v.auth_busy && (v.signed_in || v.auth_error.is_some())
                })
                .await?;
            if let Some(e) = v.auth_error {
                bail!("sign-in failed: {e}");
            }
            // Registering the device key and fetching the first credential take a moment more.
            let v = sh.wait("door list", |v| !v.loading).await?;
            let _ = sh
                .rt
                .wait_for(&sh.renders, Duration::from_secs(5), |v| {
                    v.credential.is_some()
                })
                .await;
            sh.print(
                &serde_json::json!({"signed_in": true, "user": v.user_email, "orgs": v.orgs}),
                || {
                    format!(
                        "signed in as {} ({} organization(s))",
                        v.user_email.clone().unwrap_or_default(),
                        v.orgs.len()
                    )
                },
            );
        }
        Command::Logout => {
            let v = sh.rt.view();
            if !v.signed_in {
                sh.print(&serde_json::json!({"signed_in": false}), || {
                    "not signed in".into()
                });
                return Ok(());
            }
            // The local sign-out happens at once; the server is told by DELETE requests that
            // the core does not report back on, so watch them through the runtime.
            let mut outcomes = sh.rt.http_outcomes();
            let mut in_flight = sh.rt.http_in_flight();
            sh.rt.send(Event::Logout);
            let settled = tokio::time::timeout(WAIT, in_flight.wait_for(|n| *n == 0))
                .await
                .is_ok_and(|r| r.is_ok());
            let mut deletes = Vec::new();
            loop {
                match outcomes.try_recv() {
                    Ok(o) if o.method == "DELETE" => deletes.push(o),
                    Ok(_) | Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) => {}
                    Err(_) => break,
                }
            }
            let problem = logout_problem(settled, &deletes);
            sh.print(
                &serde_json::json!({
                    "signed_in": false,
                    "server_signed_out": problem.is_none(),
                    "server_error": problem,
                }),
                || match &problem {
                    None => "signed out".into(),
                    Some(p) => format!(
                        "signed out on this device, but the server was not told ({p}): the \
                         session and this device's credentials stay valid there until they \
                         expire or are revoked"
                    ),
                },
            );
        }
        Command::Orgs { select } => {
            let mut v = sh.signed_in().await?;
            if let Some(org) = select {
                let id = v
                    .orgs
                    .iter()
                    .find(|o| o.id == org || o.name.eq_ignore_ascii_case(&org))
                    .map(|o| o.id.clone())
                    .with_context(|| format!("no organization {org:?}"))?;
                sh.rt.send(Event::SelectOrg { org: id.clone() });
                v = sh
                    .wait("organization switch", |v| {
                        v.orgs.iter().any(|o| o.selected && o.id == id) && !v.loading
                    })
                    .await?;
            }
            sh.print(&serde_json::to_value(&v.orgs)?, || {
                v.orgs
                    .iter()
                    .map(|o| {
                        format!(
                            "{} {}  {}  ({})",
                            if o.selected { "*" } else { " " },
                            o.id,
                            o.name,
                            o.role
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        Command::Places => {
            let v = sh.signed_in().await?;
            let value = serde_json::json!({"places": v.places, "stale": v.stale});
            sh.print(&value, || {
                let mut s = String::new();
                if let Some(n) = &v.notice {
                    s.push_str(&format!("({n})\n"));
                }
                for p in &v.places {
                    s.push_str(&format!(
                        "{}  {}  ({} doors)\n",
                        p.id,
                        p.name,
                        p.locks.len()
                    ));
                }
                s.trim_end().to_owned()
            });
        }
        Command::Locks => {
            let v = sh.signed_in().await?;
            let locks = all_locks(&v);
            sh.print(
                &serde_json::json!({"locks": locks, "stale": v.stale}),
                || {
                    let mut s = String::new();
                    if let Some(n) = &v.notice {
                        s.push_str(&format!("({n})\n"));
                    }
                    for l in &locks {
                        let mut tags = vec![];
                        if !l.online {
                            tags.push("offline");
                        }
                        if l.lockdown {
                            tags.push("lockdown");
                        }
                        if l.walk_up_enabled {
                            tags.push("walk-up");
                        }
                        s.push_str(&format!("{}  {}  {}\n", l.id, l.name, tags.join(",")));
                    }
                    s.trim_end().to_owned()
                },
            );
        }
        Command::Unlock { lock, scan_ms, at } => {
            let v = sh.signed_in().await?;
            let id = find_lock(&v, &lock)?.id.clone();
            if let Some((latitude, longitude)) = at {
                sh.rt.send(Event::SetLocation(Location {
                    latitude,
                    longitude,
                    fix_ms: keyway_shared::runtime::ble::now_ms(),
                }));
            }
            if cli.radio != "none" {
                sh.rt.send(Event::StartScan);
                if !sh.json {
                    eprintln!("listening for the door ({scan_ms} ms)...");
                }
                let _ = sh
                    .rt
                    .wait_for(&sh.renders, Duration::from_millis(scan_ms), |v| {
                        all_locks(v).iter().any(|l| l.id == id && l.nearby)
                    })
                    .await;
            }
            sh.rt.send(Event::Unlock { lock: id.clone() });
            let v = sh
                .wait("the door", |v| {
                    v.unlock
                        .as_ref()
                        .is_some_and(|u| u.lock == id && finished(&u.state))
                })
                .await?;
            let u = v.unlock.context("no unlock result")?;
            radio.close().await;
            sh.print(&serde_json::to_value(&u)?, || {
                let route = match u.route {
                    Some(keyway_shared::app::Route::Ble) => " over Bluetooth",
                    Some(keyway_shared::app::Route::Cloud) => " through the cloud",
                    None => "",
                };
                if u.state != "denied" {
                    format!("{}: {}{route}", u.lock_name, u.message)
                } else {
                    format!(
                        "{}: denied{route}: {} ({})",
                        u.lock_name,
                        u.message,
                        u.reason.clone().unwrap_or_default()
                    )
                }
            });
            if u.state != "granted" {
                std::process::exit(2);
            }
        }
        Command::Walk {
            enable,
            duration_s,
            sim_script,
            carry,
            ..
        } => {
            let v = sh.signed_in().await?;
            for key in &enable {
                let id = find_lock(&v, key)?.id.clone();
                sh.rt.send(Event::SetWalkUp {
                    lock: id,
                    enabled: true,
                });
            }
            if let Some(script) = sim_script {
                let points = parse_script(&script)?;
                let sim = radio
                    .sim
                    .as_ref()
                    .context("--sim-script needs --radio sim:HOST:PORT")?;
                sim.run_script(&points)
                    .await
                    .map_err(|e| anyhow::anyhow!("sim script: {e}"))?;
            }
            if let Some(carry) = carry {
                sh.rt.send(Event::SetCarry(carry));
            }
            sh.rt.send(Event::StartScan);
            walk_live(&sh, duration_s).await?;
            radio.close().await;
        }
        Command::Invite {
            action: InviteAction::Accept { code },
        } => {
            sh.rt.send(Event::RedeemInvite { code });
            let v = sh.wait("the invite", |v| !v.invite.busy).await?;
            if let Some(e) = v.invite.error {
                bail!("invite not accepted: {e}");
            }
            let v = sh.wait("door list", |v| !v.loading).await?;
            let _ = sh
                .rt
                .wait_for(&sh.renders, Duration::from_secs(5), |v| {
                    v.credential.is_some()
                })
                .await;
            sh.print(
                &serde_json::json!({"signed_in": true, "guest": true, "orgs": v.orgs}),
                || format!("invite accepted: {} door(s) available", all_locks(&v).len()),
            );
        }
        Command::Status => {
            let v = sh.rt.view();
            sh.print(
                &serde_json::json!({"signed_in": v.signed_in, "guest": v.guest, "user": v.user_email, "credential": v.credential}),
                || match v.user_email.as_deref().map(|e| if e.is_empty() { "a guest" } else { e }) {
                    Some(u) => format!(
                        "signed in as {u}{}; offline credential: {}",
                        if v.guest { " (guest)" } else { "" },
                        v.credential.as_ref().map_or("none".to_owned(), |c| format!("valid until {}", c.not_after))
                    ),
                    None => "not signed in".into(),
                },
            );
        }
    }
    Ok(())
}

/// Why the server may not know about a sign-out, from the DELETE requests it was sent
/// (`settled`: they all finished in time); `None` when every one was answered with success,
/// or 401 for the session / 404 for the device (already gone there).
fn logout_problem(settled: bool, deletes: &[HttpOutcome]) -> Option<String> {
    if !settled {
        return Some(format!("no answer within {} s", WAIT.as_secs()));
    }
    if deletes.is_empty() {
        return Some("no request reached the server".into());
    }
    let problems: Vec<String> = deletes
        .iter()
        .filter_map(|o| match &o.result {
            Ok(status) if (200..300).contains(status) => None,
            // Already gone there. Only the session's own deletion may say 401: a device
            // deletion refused for want of a session left the device and its credentials.
            Ok(401) if o.url.ends_with("/logins/current") => None,
            Ok(404) if o.url.contains("/devices/") => None,
            Ok(status) => Some(format!("{} {}: HTTP {status}", o.method, o.url)),
            Err(e) => Some(format!("{} {}: {e}", o.method, o.url)),
        })
        .collect();
    (!problems.is_empty()).then(|| problems.join("; "))
}

/// Whether an unlock attempt has ended (granted, denied, or sent without a verdict).
fn finished(state: &str) -> bool {
    matches!(state, "granted" | "denied" | "unconfirmed")
}

fn parse_script(s: &str) -> anyhow::Result<Vec<(u64, f64, f64)>> {
    s.split(';')
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            let f: Vec<&str> = p.split(',').map(str::trim).collect();
            anyhow::ensure!(f.len() == 3, "script point {p:?} is not t_ms,x,y");
            Ok((f[0].parse()?, f[1].parse()?, f[2].parse()?))
        })
        .collect()
}

/// Live display: one line per change in what the phone hears, and every walk-up decision.
async fn walk_live(sh: &Shell, duration_s: Option<u64>) -> anyhow::Result<()> {
    let deadline = duration_s.map(|s| tokio::time::Instant::now() + Duration::from_secs(s));
    let mut renders = sh.renders.clone();
    let mut last_decision = None;
    let mut last_line = String::new();
    loop {
        let v = sh.rt.view();
        if v.last_walk_up != last_decision {
            if let Some(d) = &v.last_walk_up {
                let value = serde_json::json!({"t_ms": d.t_ms, "lock": d.lock, "distance_m": d.distance_m, "ranged_m": d.ranged_m, "skipped": d.skipped});
                let at = match d.ranged_m {
                    Some(r) => format!("{r:.1} m (ranged)"),
                    None => format!("{:.1} m", d.distance_m),
                };
                sh.print(&value, || match &d.skipped {
                    Some(why) => format!("walk-up at {at}: skipped ({why})"),
                    None => format!("walk-up at {at}: unlocking {}", d.lock),
                });
            }
            last_decision = v.last_walk_up.clone();
        }
        if let Some(u) = &v.unlock
            && finished(&u.state)
        {
            let line = format!("{}: {}", u.lock_name, u.message);
            if line != last_line {
                sh.print(&serde_json::to_value(u)?, || line.clone());
                last_line = line;
            }
        }
        if !sh.json {
            let nearby: Vec<String> = all_locks(&v)
                .iter()
                .filter(|l| l.nearby)
                .map(|l| {
                    format!(
                        "{} {} dBm{}",
                        l.name,
                        l.rssi.unwrap_or(0),
                        if l.walk_up_enabled { " [walk-up]" } else { "" }
                    )
                })
                .collect();
            eprint!(
                "\r\x1b[2K{}",
                if nearby.is_empty() {
                    "scanning...".to_owned()
                } else {
                    nearby.join(" | ")
                }
            );
        }
        if !v.scanning
            && v.notice
                .as_deref()
                .is_some_and(|n| n.contains("scan stopped"))
        {
            bail!("{}", v.notice.unwrap_or_default());
        }
        let wait = renders.changed();
        match deadline {
            Some(d) => {
                if tokio::time::timeout_at(d, wait).await.is_err() {
                    break;
                }
            }
            None => {
                let _ = wait.await;
            }
        }
    }
    if !sh.json {
        eprintln!();
    }
    sh.rt.send(Event::StopScan);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delete(path: &str, result: Result<u16, String>) -> HttpOutcome {
        HttpOutcome {
            method: "DELETE".into(),
            url: format!("http://s/api/v1{path}"),
            result,
        }
    }

    #[test]
    fn logout_problem_is_what_the_server_did_not_confirm() {
        let ok = delete("/logins/current", Ok(204));
        assert_eq!(logout_problem(true, std::slice::from_ref(&ok)), None);
        // Already gone there: signed out all the same.
        let gone = [
            delete("/logins/current", Ok(401)),
            delete("/devices/d", Ok(404)),
        ];
        assert_eq!(logout_problem(true, &gone), None);
        let device_kept = [ok.clone(), delete("/devices/d", Ok(401))];
        assert!(logout_problem(true, &device_kept).is_some());
        let failed = [ok.clone(), delete("/devices/d", Ok(500))];
        assert_eq!(
            logout_problem(true, &failed).unwrap(),
            "DELETE http://s/api/v1/devices/d: HTTP 500"
        );
        let unreachable = [delete("/logins/current", Err("IO error: refused".into()))];
        assert!(
            logout_problem(true, &unreachable)
                .unwrap()
                .contains("refused")
        );
        assert!(logout_problem(false, &[ok]).unwrap().contains("no answer"));
        assert!(logout_problem(true, &[]).is_some());
    }
}
