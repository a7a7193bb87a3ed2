//! `status.json`, rewritten by the running controller every second, and the `status`
//! command that reads it together with the data directory.

use crate::core::{Connection, rtc_ms};
use crate::events::EventLog;
use crate::fsutil;
use crate::identity;
use crate::store::Store;
use keyway_protocol::Id;
use std::path::Path;

pub const STATUS_FILE: &str = "status.json";

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DoorStatus {
    pub lock: Id,
    pub name: String,
    /// `locked` or `unlocked`.
    pub relay: String,
    /// `open` or `closed` (simulated door sensor).
    pub door: String,
    pub lockdown: bool,
    pub walk_up: bool,
    /// Relay actuations since the process started.
    pub actuations: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Status {
    pub controller: Id,
    pub org: Id,
    pub pid: u32,
    pub updated_at_ms: u64,
    pub connection: Connection,
    pub last_error: Option<String>,
    pub config_version: Option<u64>,
    pub config_received_at_ms: Option<u64>,
    pub revocation_serial: Option<u64>,
    pub trusted_time: bool,
    pub pending_events: u64,
    pub last_event_seq: u64,
    pub acked_event_seq: u64,
    pub doors: Vec<DoorStatus>,
}

pub fn write(dir: &Path, status: &Status) -> std::io::Result<()> {
    fsutil::write_json(&dir.join(STATUS_FILE), status, 0o644)
}

/// Human-readable status of a data directory, whether or not the controller runs.
pub fn render(dir: &Path) -> anyhow::Result<String> {
    use std::fmt::Write;
    let (id, _, _) = identity::load(dir)?;
    let mut out = String::new();
    let now = rtc_ms();
    writeln!(out, "controller   {}", id.controller_id)?;
    writeln!(out, "organization {}", id.org_id)?;
    writeln!(out, "server       {}", id.server)?;
    let live: Option<Status> = fsutil::read_json(&dir.join(STATUS_FILE))?;
    // The process holds the data-directory lock while it runs.
    let fresh = live.as_ref().filter(|_| crate::run::data_dir_in_use(dir));
    match (&live, fresh) {
        (_, Some(s)) => writeln!(
            out,
            "process      running (pid {}), server {:?}{}",
            s.pid,
            s.connection,
            s.last_error
                .as_ref()
                .map(|e| format!(" (last error: {e})"))
                .unwrap_or_default()
        )?,
        (Some(s), None) => writeln!(
            out,
            "process      not running (last status {} s ago)",
            now.saturating_sub(s.updated_at_ms) / 1000
        )?,
        (None, None) => writeln!(out, "process      never ran")?,
    }
    let store = Store::new(dir);
    match store.load_config()? {
        Some(c) => writeln!(
            out,
            "config       version {}, {} s old",
            c.config.version,
            now.saturating_sub(c.received_at_ms) / 1000
        )?,
        None => writeln!(out, "config       none cached")?,
    }
    match store.load_revocations()? {
        Some(r) => writeln!(out, "revocations  serial {}", r.serial)?,
        None => writeln!(out, "revocations  none")?,
    }
    match store.load_clock()? {
        Some(c) => writeln!(
            out,
            "trusted time {}",
            match c.bounds(now) {
                Ok(b) => format!("ok (±{} s)", (b.latest - b.earliest) / 2),
                Err(_) => "expired".into(),
            }
        )?,
        None => writeln!(out, "trusted time none")?,
    }
    // Only read the log when no process owns it (opening repairs a torn tail).
    // A running process's status is at most a second old.
    if let Some(s) = fresh {
        writeln!(
            out,
            "events       {} pending, last seq {}, acked {}",
            s.pending_events, s.last_event_seq, s.acked_event_seq
        )?;
    } else {
        let (log, _) = EventLog::open(dir)?;
        writeln!(
            out,
            "events       {} pending, last seq {}, acked {}",
            log.pending_count(),
            log.last_seq(),
            log.acked()
        )?;
    }
    let doors = fresh.map(|s| s.doors.clone()).unwrap_or_else(|| {
        store
            .load_config()
            .ok()
            .flatten()
            .map(|c| {
                c.config
                    .locks
                    .into_iter()
                    .map(|l| DoorStatus {
                        lock: l.id,
                        name: l.name,
                        relay: "unknown".into(),
                        door: "unknown".into(),
                        lockdown: l.lockdown,
                        walk_up: l.walk_up,
                        actuations: 0,
                    })
                    .collect()
            })
            .unwrap_or_default()
    });
    for d in doors {
        writeln!(
            out,
            "door         {} {:?}: relay {}, door {}{}{}",
            d.lock,
            d.name,
            d.relay,
            d.door,
            if d.lockdown { ", LOCKDOWN" } else { "" },
            if d.walk_up { ", walk-up" } else { "" }
        )?;
    }
    Ok(out)
}
