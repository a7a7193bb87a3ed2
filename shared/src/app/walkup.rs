//! The scan stream: every heard advertisement updates "doors nearby" (route choice and the
//! cloud proximity code) and, for locks with walk-up on, feeds the walk-up engine, whose
//! decisions start a hands-free BLE unlock.

use super::{Cmd, Event, Model, keys, kv_put, unlock};
use crate::effects::{ScanItem, ScanOperation};
use crux_core::Command;
use crux_core::render::render;
use keyway_protocol::advert::Advertisement;
use serde::{Deserialize, Serialize};

/// The latest advertisement of one door.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heard {
    pub peer: String,
    pub rssi: i16,
    pub tx_power: i8,
    pub proximity_code: u32,
    pub walk_up_flag: bool,
    pub at_ms: u64,
}

/// The last walk-up decision and what became of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WalkUpNote {
    pub lock: String,
    pub t_ms: u64,
    pub distance_m: f64,
    /// Why no unlock was attempted, if it was skipped.
    pub skipped: Option<String>,
}

pub fn start_scan(model: &mut Model) -> Cmd {
    if model.scanning {
        return Command::done();
    }
    model.scanning = true;
    Command::all([
        render(),
        Command::stream_from_shell(ScanOperation::Start).then_send(Event::Scanned),
    ])
}

pub fn stop_scan(model: &mut Model) -> Cmd {
    if !model.scanning {
        return Command::done();
    }
    model.scanning = false;
    Command::all([Command::notify_shell(ScanOperation::Stop).into(), render()])
}

pub fn set_walk_up(model: &mut Model, lock: String, enabled: bool) -> Cmd {
    if enabled {
        model.walk_up_locks.insert(lock);
    } else {
        model.walk_up_locks.remove(&lock);
    }
    model.sync_engine();
    let list: Vec<&String> = model.walk_up_locks.iter().collect();
    Command::all([kv_put(keys::WALK_UP, &list), render()])
}

pub fn scanned(model: &mut Model, item: ScanItem) -> Cmd {
    let advert = match item {
        ScanItem::Advert(a) => a,
        ScanItem::Failed { message } => {
            model.scanning = false;
            model.directory.notice = Some(format!("Bluetooth scan stopped: {message}"));
            return render();
        }
    };
    let Ok(parsed) = Advertisement::decode(&advert.payload) else {
        return Command::done(); // not a Keyway door, or a future format
    };
    model.clock_ms = model.clock_ms.max(advert.at_ms);
    let short = hex::encode(parsed.lock_short_id);
    let was_nearby = model.heard.contains_key(&short);
    model.heard.insert(
        short.clone(),
        Heard {
            peer: advert.peer,
            rssi: advert.rssi,
            tx_power: parsed.tx_power,
            proximity_code: parsed.proximity_code,
            walk_up_flag: parsed.walk_up(),
            at_ms: advert.at_ms,
        },
    );
    let Some(lock) = model
        .directory
        .locks
        .iter()
        .find(|l| l.short_id.eq_ignore_ascii_case(&short))
        .map(|l| l.id.clone())
    else {
        return Command::done();
    };
    let decision = model
        .engine
        .observe(&lock, advert.at_ms, advert.rssi, parsed.tx_power);
    let Some(decision) = decision else {
        // Re-render only when a door appears, not on every advertisement.
        return if was_nearby {
            Command::done()
        } else {
            render()
        };
    };
    let mut note = WalkUpNote {
        lock: decision.lock.clone(),
        t_ms: decision.t_ms,
        distance_m: decision.distance_m,
        skipped: None,
    };
    let cmd = if !parsed.walk_up() {
        note.skipped = Some(keyway_protocol::Reason::WalkUpDisabled.message().to_owned());
        render()
    } else {
        match unlock::walk_up(model, decision.lock, decision.t_ms) {
            Ok(cmd) => cmd,
            Err(reason) => {
                note.skipped = Some(reason.message().to_owned());
                render()
            }
        }
    };
    model.last_walk_up = Some(note);
    cmd
}
