//! BLE peripheral transports. A transport advertises each lock and hands every phone
//! connection to the controller as a [`PeripheralLink`]: ATT writes to the control point in,
//! notifications on the response characteristic out (see `keyway_protocol::gatt`).
//!
//! Two implementations: [`sim`] (the simulated radio hub, RSSI modelled) and [`bluez`]
//! (a real adapter through BlueZ; RSSI unavailable, so walk-up is refused there).
//! `scripts/ble-vm-test` runs the BlueZ one against a real BlueZ stack in a VM (two virtual
//! controllers, the `keyway` CLI as the phone on the other one).

pub mod bluez;
pub mod sim;

use futures::future::BoxFuture;
use keyway_protocol::Id;
use tokio::sync::mpsc;

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Failed(String),
}

/// The link is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("link closed")]
pub struct LinkClosed;

/// What one lock advertises.
#[derive(Debug, Clone)]
pub struct LockRadio {
    pub lock: Id,
    pub name: String,
    /// 10-byte `keyway_protocol::advert::Advertisement` payload.
    pub advertisement: Vec<u8>,
    pub tx_power: i8,
}

/// One phone connection, door side.
pub trait PeripheralLink: Send {
    /// Next ATT write to the control point; `None` when the phone went away.
    fn next_write(&mut self) -> BoxFuture<'_, Option<Vec<u8>>>;
    /// One notification of at most `att_mtu() - 3` bytes.
    fn notify<'a>(&'a mut self, fragment: &'a [u8]) -> BoxFuture<'a, Result<(), LinkClosed>>;
    /// The phone's signal as this door hears it now, if the transport can measure it.
    fn rssi(&self) -> Option<i16>;
    /// The distance to the phone by secure ranging (UWB, Channel Sounding), metres, if this
    /// door can range; it then decides walk-up instead of RSSI.
    fn range_m(&self) -> Option<f64> {
        None
    }
    fn att_mtu(&self) -> usize;
    /// The lock this link reaches when the transport knows it (one radio per lock).
    fn lock(&self) -> Option<Id>;
    fn peer(&self) -> String;
    fn close(&mut self);
}

/// Updates a lock's advertisement payload while it is served.
pub trait Advertiser: Send + Sync {
    fn set_advertisement(&self, payload: &[u8]);
}

/// A lock being advertised; dropping it stops advertising and accepting.
pub struct ServedLock {
    pub connections: mpsc::Receiver<Box<dyn PeripheralLink>>,
    pub advertiser: Box<dyn Advertiser>,
    /// Keeps transport resources alive (tasks aborted, registrations dropped on drop).
    pub guard: Box<dyn Send + Sync>,
}

impl std::fmt::Debug for ServedLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServedLock").finish_non_exhaustive()
    }
}

/// A BLE peripheral stack.
pub trait Transport: Send + Sync {
    fn name(&self) -> &'static str;
    fn serve_lock(&self, radio: LockRadio) -> BoxFuture<'_, Result<ServedLock, TransportError>>;
}

/// Aborts a task when dropped.
#[derive(Debug)]
pub struct AbortOnDrop(pub tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
