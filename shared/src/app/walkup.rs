//! The scan stream: every heard advertisement updates "doors nearby" (route choice and the
//! cloud proximity code) and, for locks with walk-up on, feeds the walk-up engine, whose
//! decisions start a hands-free BLE unlock.

use super::{Cmd, Event, Model, keys, kv_put, unlock};
use crate::effects::{ScanItem, ScanOperation};
use crate::walkup::WalkUpDecision;
use crux_core::Command;
use crux_core::render::render;
use keyway_protocol::advert::Advertisement;
use serde::{Deserialize, Serialize};

/// Minimum time between renders caused by advertisements alone.
pub const SCAN_RENDER_MS: u64 = 1000;

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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, uniffi::Record)]
pub struct WalkUpNote {
    pub lock: String,
    pub t_ms: u64,
    pub distance_m: f64,
    /// The ranged distance at the decision, metres, when the phone was ranging to the door.
    pub ranged_m: Option<f64>,
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
        ScanItem::Ranged(r) => return ranged(model, r),
        // A scan the user stopped can still report its end: not worth a notice.
        ScanItem::Failed { .. } if !model.scanning => return Command::done(),
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
    // Only this organization's doors are remembered: anyone can advertise made-up ids.
    let Some(lock) = model
        .directory
        .locks
        .iter()
        .find(|l| l.short_id.eq_ignore_ascii_case(&short))
        .map(|l| l.id.clone())
    else {
        return Command::done();
    };
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
    let decision = model
        .engine
        .observe(&lock, advert.at_ms, advert.rssi, parsed.tx_power);
    let Some(decision) = decision else {
        // Re-render when a door appears and then about once a second, not per advertisement.
        let due = advert.at_ms.saturating_sub(model.scan_rendered_ms) >= SCAN_RENDER_MS;
        if !was_nearby || due {
            model.scan_rendered_ms = advert.at_ms;
            return render();
        }
        return Command::done();
    };
    decided(model, decision, parsed.walk_up())
}

pub use crate::effects::Ranged;

pub fn ranged(model: &mut Model, reading: Ranged) -> Cmd {
    // Only a door heard advertising can be ranged to: its advertisement names the lock.
    let Some((short, heard)) = model.heard.iter().find(|(_, h)| h.peer == reading.peer) else {
        return Command::done();
    };
    let walk_up_flag = heard.walk_up_flag;
    let Some(lock) = model
        .directory
        .locks
        .iter()
        .find(|l| l.short_id.eq_ignore_ascii_case(short))
        .map(|l| l.id.clone())
    else {
        return Command::done();
    };
    model.clock_ms = model.clock_ms.max(reading.at_ms);
    match model
        .engine
        .observe_range(&lock, reading.at_ms, reading.distance_m)
    {
        Some(decision) => decided(model, decision, walk_up_flag),
        None => Command::done(),
    }
}

/// The engine decided `decision.lock` was reached: start the hands-free unlock, or note why not.
fn decided(model: &mut Model, decision: WalkUpDecision, door_allows_walk_up: bool) -> Cmd {
    let mut note = WalkUpNote {
        lock: decision.lock.clone(),
        t_ms: decision.t_ms,
        distance_m: decision.distance_m,
        ranged_m: decision.ranged_m,
        skipped: None,
    };
    let cmd = if !door_allows_walk_up {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::places::Directory;
    use crate::app::testkit::*;
    use crate::app::{Effect, Keyway};
    use crate::effects::{BleOperation, HeardAdvert};
    use crate::walkup::{Carry, Motion};
    use crux_core::App;
    use keyway_protocol::advert::FLAG_WALK_UP;

    fn model() -> Model {
        let mut m = signed_in_model();
        m.directory = Directory {
            org: Some(ORG_A.into()),
            places: vec![place()],
            locks: vec![lock()],
            fresh: true,
            ..Default::default()
        };
        m
    }

    fn advert(rssi: i16, at_ms: u64, flags: u8) -> Event {
        let payload = Advertisement {
            lock_short_id: keyway_protocol::advert::lock_short_id(lock_id()),
            tx_power: -59,
            proximity_code: 0x42,
            flags,
        }
        .encode()
        .to_vec();
        Event::Scanned(ScanItem::Advert(HeardAdvert {
            peer: "door-1".into(),
            payload,
            rssi,
            at_ms,
        }))
    }

    /// A signed-in model holding a credential, with walk-up on for the lock.
    fn opted_in() -> (Keyway, Model) {
        let app = Keyway;
        let mut m = model();
        m.credential = Some(held_credential(NOW_S + 86_400));
        let _ = app.update(
            Event::SetWalkUp {
                lock: LOCK.into(),
                enabled: true,
            },
            &mut m,
        );
        (app, m)
    }

    /// How many BLE connections `cmd` asks for.
    fn connects(cmd: &mut Cmd) -> usize {
        cmd.effects()
            .filter(|e| matches!(e, Effect::Ble(r) if matches!(r.operation, BleOperation::Connect { .. })))
            .count()
    }

    /// Noise-free RSSI of reading `i` (10 per second) on a walk from 10 m to 0.4 m at 1.2 m/s.
    fn approach_rssi(i: u64) -> i16 {
        let d = (10.0 - 0.12 * i as f64).max(0.4);
        (-59.0 - 20.0 * d.log10()).round() as i16
    }

    /// Walks from 10 m to 0.4 m at 1.2 m/s then stands, noise-free; returns the commands
    /// that asked for a BLE connection.
    fn approach(app: &Keyway, m: &mut Model, flags: u8) -> usize {
        let t0 = NOW_S * 1000;
        (0..130u64)
            .map(|i| connects(&mut app.update(advert(approach_rssi(i), t0 + i * 100, flags), m)))
            .sum()
    }

    #[test]
    fn enabled_lock_unlocks_once_over_ble_on_approach() {
        let (app, mut m) = opted_in();
        assert_eq!(approach(&app, &mut m, FLAG_WALK_UP), 1);
        let v = app.view(&m);
        let u = v.unlock.unwrap();
        assert!(u.walk_up);
        assert_eq!(u.route, Some(crate::app::Route::Ble));
        assert!(v.last_walk_up.unwrap().skipped.is_none());
        assert!(v.places[0].locks[0].nearby && v.places[0].locks[0].walk_up_enabled);
    }

    #[test]
    fn a_ranged_phone_in_a_bag_unlocks_once_by_its_measured_distance() {
        // Distances come from the shell (`Event::Ranged`, here as JSON) or from a radio that
        // ranges as it scans (the simulated radio's `ScanItem::Ranged`): the same walk either way.
        for from_scan in [false, true] {
            let (app, mut m) = opted_in();
            // A deep bag: 14 dB down, RSSI alone never gets near enough to test an arrival.
            let t0 = NOW_S * 1000;
            let mut connections = 0;
            let mut at_unlock = None;
            for i in 0..130u64 {
                let at = t0 + i * 100;
                let walked = app.update(advert(approach_rssi(i) - 14, at, FLAG_WALK_UP), &mut m);
                // Ranged with the door heard, a failed round every so often.
                let d = (10.0 - 0.12 * i as f64).max(0.4);
                let reading = if i % 7 == 0 { -1.0 } else { d + 0.15 };
                let event = if from_scan {
                    Event::Scanned(ScanItem::Ranged(Ranged {
                        peer: "door-1".into(),
                        distance_m: reading,
                        at_ms: at + 50,
                    }))
                } else {
                    let json = format!(
                        r#"{{"ranged":{{"peer":"door-1","distance_m":{reading},"at_ms":{}}}}}"#,
                        at + 50
                    );
                    serde_json::from_str(&json).unwrap()
                };
                let ranged = app.update(event, &mut m);
                for mut cmd in [walked, ranged] {
                    let n = connects(&mut cmd);
                    if n > 0 && at_unlock.is_none() {
                        at_unlock = Some(d);
                    }
                    connections += n;
                }
            }
            assert_eq!(connections, 1, "from scan: {from_scan}");
            assert!((0.4..=1.1).contains(&at_unlock.unwrap()), "{at_unlock:?}");
            assert!(app.view(&m).unlock.unwrap().walk_up);
        }
        let (app, mut m) = opted_in();
        let t0 = NOW_S * 1000;
        // A door never heard cannot be ranged to, and a bad reading is refused as JSON.
        let mut cmd = app.update(
            Event::Ranged(Ranged {
                peer: "stranger".into(),
                distance_m: 0.3,
                at_ms: t0 + 20_000,
            }),
            &mut m,
        );
        assert_eq!(cmd.effects().count(), 0);
        assert!(serde_json::from_str::<Event>(r#"{"ranged":{"peer":"door-1"}}"#).is_err());
    }

    #[test]
    fn adverts_of_doors_not_in_the_organization_are_not_remembered() {
        let app = Keyway;
        let mut m = model();
        for i in 0..1_000u32 {
            let payload = Advertisement {
                lock_short_id: i.to_be_bytes(),
                tx_power: -59,
                proximity_code: 0x42,
                flags: 0,
            }
            .encode()
            .to_vec();
            let advert = HeardAdvert {
                peer: format!("stranger-{i}"),
                payload,
                rssi: -40,
                at_ms: NOW_S * 1000,
            };
            let _ = app.update(Event::Scanned(ScanItem::Advert(advert)), &mut m);
        }
        let _ = app.update(advert(-60, NOW_S * 1000, 0), &mut m);
        assert_eq!(m.heard.len(), 1, "only the organization's door");
    }

    #[test]
    fn walk_up_that_cannot_reach_the_door_says_so() {
        let (app, mut m) = opted_in();
        let t0 = NOW_S * 1000;
        // Walk up, keeping the command that connects to the door; the door never answers.
        let mut connecting = None;
        for i in 0..130u64 {
            let mut cmd = app.update(advert(approach_rssi(i), t0 + i * 100, FLAG_WALK_UP), &mut m);
            if m.unlock.is_some() {
                connecting = Some(cmd);
                break;
            }
            let _ = cmd.effects().count();
        }
        let mut cmd = connecting.unwrap();
        take_ble(&mut cmd)
            .resolve(crate::effects::BleOutput::Error {
                message: "connection timed out".into(),
            })
            .unwrap();
        drain(&app, &mut m, &mut cmd);
        let u = app.view(&m).unlock.unwrap();
        assert_eq!(u.state, "denied");
        assert_eq!(u.reason.as_deref(), Some("door_unreachable"));
        assert_eq!(
            u.message,
            keyway_protocol::Reason::DoorUnreachable.message()
        );
    }

    #[test]
    fn not_opted_in_or_door_without_walk_up_never_unlocks() {
        let app = Keyway;
        let mut m = model();
        m.credential = Some(held_credential(NOW_S + 86_400));
        assert_eq!(
            approach(&app, &mut m, FLAG_WALK_UP),
            0,
            "user did not opt in"
        );
        let (_, mut m) = opted_in();
        assert_eq!(
            approach(&app, &mut m, 0),
            0,
            "door does not advertise walk-up"
        );
        assert_eq!(
            app.view(&m).last_walk_up.unwrap().skipped.as_deref(),
            Some(keyway_protocol::Reason::WalkUpDisabled.message())
        );
    }

    #[test]
    fn walk_up_without_credential_is_skipped_with_reason() {
        let app = Keyway;
        let mut m = model();
        let _ = app.update(
            Event::SetWalkUp {
                lock: LOCK.into(),
                enabled: true,
            },
            &mut m,
        );
        assert_eq!(approach(&app, &mut m, FLAG_WALK_UP), 0);
        let note = app.view(&m).last_walk_up.unwrap();
        assert_eq!(
            note.skipped.as_deref(),
            Some(keyway_protocol::Reason::NoAccess.message())
        );
    }

    #[test]
    fn the_shells_sensor_reports_reach_the_engine_and_the_view() {
        let app = Keyway;
        let mut m = model();
        assert_eq!(app.view(&m).motion, Motion::Unknown);
        assert_eq!(app.view(&m).carry, Carry::Unknown);
        assert_eq!(app.view(&m).pace, None);
        // Each report changes its own field and leaves the others as the last one set them.
        use {Carry as C, Motion as M};
        for (json, motion, carry, pace) in [
            (r#"{"set_motion":"walking"}"#, M::Walking, C::Unknown, None),
            (r#"{"set_pace":1.1}"#, M::Walking, C::Unknown, Some(1.1)),
            (r#"{"set_motion":"still"}"#, M::Still, C::Unknown, Some(1.1)),
            (
                r#"{"set_carry":"covered"}"#,
                M::Still,
                C::Covered,
                Some(1.1),
            ),
            (
                r#"{"set_motion":"unknown"}"#,
                M::Unknown,
                C::Covered,
                Some(1.1),
            ),
            (r#"{"set_pace":null}"#, M::Unknown, C::Covered, None),
            (
                r#"{"set_carry":"uncovered"}"#,
                M::Unknown,
                C::Uncovered,
                None,
            ),
            (r#"{"set_pace":-2}"#, M::Unknown, C::Uncovered, None),
            (r#"{"set_carry":"unknown"}"#, M::Unknown, C::Unknown, None),
        ] {
            let event: Event = serde_json::from_str(json).unwrap();
            let _ = app.update(event, &mut m);
            let view = app.view(&m);
            assert_eq!(
                (view.motion, view.carry, view.pace),
                (motion, carry, pace),
                "{json}"
            );
        }
        for bad in [
            r#"{"set_motion":"running"}"#,
            r#"{"set_carry":"pocket"}"#,
            r#"{"set_pace":"fast"}"#,
        ] {
            assert!(serde_json::from_str::<Event>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn scan_start_stop_and_failure() {
        let app = Keyway;
        let mut m = model();
        let mut cmd = app.update(Event::StartScan, &mut m);
        assert!(
            cmd.effects()
                .any(|e| matches!(e, Effect::Scan(r) if r.operation == ScanOperation::Start))
        );
        assert!(app.view(&m).scanning);
        let _ = app.update(
            Event::Scanned(ScanItem::Failed {
                message: "Bluetooth is off".into(),
            }),
            &mut m,
        );
        let v = app.view(&m);
        assert!(!v.scanning);
        assert!(v.notice.unwrap().contains("Bluetooth is off"));
        let _ = app.update(Event::StartScan, &mut m);
        let mut cmd = app.update(Event::StopScan, &mut m);
        assert!(
            cmd.effects()
                .any(|e| matches!(e, Effect::Scan(r) if r.operation == ScanOperation::Stop))
        );
        // The stopped scan reporting its end is not news.
        let before = app.view(&m).notice;
        let mut cmd = app.update(
            Event::Scanned(ScanItem::Failed {
                message: "scan ended".into(),
            }),
            &mut m,
        );
        assert!(cmd.effects().next().is_none());
        assert_eq!(app.view(&m).notice, before);
        // Garbage payloads are ignored.
        let mut cmd = app.update(
            Event::Scanned(ScanItem::Advert(HeardAdvert {
                peer: "x".into(),
                payload: vec![9; 3],
                rssi: -40,
                at_ms: 1,
            })),
            &mut m,
        );
        assert!(cmd.effects().next().is_none());
    }
}
