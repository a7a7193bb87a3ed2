//! One BLE connection: reassemble GATT fragments, drive the `Responder`, answer, log.
//!
//! Anything wrong from the phone (garbage, truncated, oversized or out-of-order fragments,
//! frames in the wrong order, failed authentication) is answered with a plaintext ERROR frame
//! when that is still meaningful, logged as a denied attempt with its reason, and the link
//! is dropped. The controller itself never stops for a phone.

use crate::ble::PeripheralLink;
use crate::core::{Core, Nearness};
use keyway_channel::Method;
use keyway_protocol::gatt::{self, Reassembler};
use keyway_protocol::handshake::frames::{self, Hello};
use keyway_protocol::handshake::{Action, Responder};
use keyway_protocol::{Id, Reason};
use std::sync::Arc;
use std::time::Duration;

/// A link that completes no exchange within this time is dropped.
pub const LINK_TIMEOUT: Duration = Duration::from_secs(20);

enum Step {
    AwaitHello,
    AwaitAuth { lock: Id, action: Action },
    Done,
}

/// Serves one phone connection until it ends.
pub async fn serve_link(core: Arc<Core>, mut link: Box<dyn PeripheralLink>, default_lock: Id) {
    let peer = link.peer();
    let lock_hint = link.lock();
    let mut responder = Responder::new();
    let mut reassembler = Reassembler::new();
    let mut step = Step::AwaitHello;
    let deadline = tokio::time::Instant::now() + LINK_TIMEOUT;
    loop {
        let write = match tokio::time::timeout_at(deadline, link.next_write()).await {
            Ok(Some(w)) => w,
            Ok(None) => {
                tracing::debug!(%peer, "link closed");
                break;
            }
            Err(_) => {
                tracing::debug!(%peer, "link idle too long; dropping");
                break;
            }
        };
        let (lock, method) = match &step {
            Step::AwaitAuth { lock, action } => (*lock, method_of(*action)),
            _ => (lock_hint.unwrap_or(default_lock), Method::Ble),
        };
        let message = match reassembler.push(&write) {
            Ok(Some(m)) => m,
            Ok(None) => continue,
            Err(e) => {
                tracing::info!(%peer, error = %e, "bad fragment from phone");
                refuse(&core, &mut link, lock, method, e.reason()).await;
                break;
            }
        };
        match std::mem::replace(&mut step, Step::Done) {
            Step::AwaitHello => match hello(&core, &mut responder, &message, lock_hint) {
                Ok((challenge, lock, action)) => {
                    if send(&mut link, &challenge).await.is_err() {
                        tracing::debug!(%peer, "link lost while sending CHALLENGE");
                        break;
                    }
                    step = Step::AwaitAuth { lock, action };
                }
                Err(reason) => {
                    tracing::info!(%peer, %reason, "HELLO refused");
                    refuse(&core, &mut link, lock, method, reason).await;
                    break;
                }
            },
            Step::AwaitAuth { lock, action } => {
                let near = Nearness {
                    rssi: door_rssi(link.as_ref()),
                    range_m: link.range_m(),
                };
                match core.ble_auth(&mut responder, lock, action, &message, near) {
                    Ok(verdict) => {
                        let _ = send(&mut link, &verdict.result_frame).await;
                        // The phone closes; keep reading so its disconnect ends the task.
                    }
                    Err(reason) => {
                        // Already logged by the core.
                        let _ = send(&mut link, &frames::encode_error(reason)).await;
                        break;
                    }
                }
            }
            Step::Done => {
                refuse(&core, &mut link, lock, method, Reason::UnexpectedMessage).await;
                break;
            }
        }
    }
    link.close();
}

/// The door's own reading of the phone: the median of three samples, so one lucky
/// shadowing peak does not pass a walk-up threshold.
fn door_rssi(link: &dyn PeripheralLink) -> Option<i16> {
    let mut samples: Vec<i16> = (0..3).filter_map(|_| link.rssi()).collect();
    samples.sort_unstable();
    samples.get(samples.len() / 2).copied()
}

fn method_of(action: Action) -> Method {
    match action {
        Action::Unlock => Method::Ble,
        Action::WalkUp => Method::WalkUp,
    }
}

fn hello(
    core: &Core,
    responder: &mut Responder,
    message: &[u8],
    lock_hint: Option<Id>,
) -> Result<(Vec<u8>, Id, Action), Reason> {
    // A known frame type in the wrong place is out of order, not garbage.
    if let Some(&t) = message.first()
        && t != frames::HELLO
        && [
            frames::CHALLENGE,
            frames::AUTH,
            frames::RESULT,
            frames::ERROR,
        ]
        .contains(&t)
    {
        return Err(Reason::UnexpectedMessage);
    }
    let parsed = Hello::decode(message).map_err(|e| e.reason())?;
    // One radio per lock: a HELLO for another lock on this radio is refused, so RSSI and
    // presence always refer to the door the phone names.
    if lock_hint.is_some_and(|l| l != parsed.lock) {
        return Err(Reason::WrongLock);
    }
    let (identity, config) = core.hello_context().ok_or(Reason::NotConfigured)?;
    let challenge = responder
        .on_hello(message, &identity, &config, core.rng(), core.mono_ms())
        .map_err(|e| e.reason().unwrap_or(Reason::MalformedFrame))?;
    let action = Action::from_byte(parsed.action).ok_or(Reason::UnsupportedAction)?;
    Ok((challenge, parsed.lock, action))
}

async fn send(link: &mut Box<dyn PeripheralLink>, message: &[u8]) -> Result<(), ()> {
    let frags = gatt::fragment(message, link.att_mtu()).map_err(|_| ())?;
    for f in frags {
        link.notify(&f).await.map_err(|_| ())?;
    }
    Ok(())
}

async fn refuse(
    core: &Core,
    link: &mut Box<dyn PeripheralLink>,
    lock: Id,
    method: Method,
    reason: Reason,
) {
    core.log_rejected(lock, method, reason);
    let _ = send(link, &frames::encode_error(reason)).await;
}
