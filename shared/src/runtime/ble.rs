//! The BLE transport the runtime drives: scan for Keyway adverts, connect, exchange whole
//! protocol messages (the transport does GATT fragmentation), disconnect. Implementations:
//! [`super::btle`] (btleplug, real radios), [`super::sim`] (the simulated radio),
//! the FFI's shell-provided transport, and [`NoRadio`].

use crate::effects::{HeardAdvert, Ranged};
use futures::future::BoxFuture;
use tokio::sync::mpsc;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BleError(pub String);

impl BleError {
    pub fn new(e: impl std::fmt::Display) -> Self {
        Self(e.to_string())
    }
}

/// What a scan hears: advertisements, and on a radio that ranges by itself (the simulated
/// radio), distances to the doors heard. Shells that range forward distances through
/// `KeywayCore::ranging` instead.
#[derive(Debug, Clone, PartialEq)]
pub enum Heard {
    Advert(HeardAdvert),
    Range(Ranged),
}

/// A radio as the core runtime sees it. Futures are `'static`: implementations clone what
/// they need out of `&self`.
pub trait BleTransport: Send + Sync + 'static {
    /// Starts scanning; what it hears arrives on the receiver until it is dropped or
    /// `stop_scan`.
    fn start_scan(&self) -> BoxFuture<'static, Result<mpsc::Receiver<Heard>, BleError>>;
    fn stop_scan(&self) -> BoxFuture<'static, ()>;
    fn connect(&self, peer: String) -> BoxFuture<'static, Result<u64, BleError>>;
    /// Writes one message to the door's control point and returns its reply message.
    fn exchange(
        &self,
        connection: u64,
        message: Vec<u8>,
    ) -> BoxFuture<'static, Result<Vec<u8>, BleError>>;
    fn disconnect(&self, connection: u64) -> BoxFuture<'static, ()>;
}

/// No Bluetooth: scans fail, so every unlock goes through the cloud.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoRadio;

impl BleTransport for NoRadio {
    fn start_scan(&self) -> BoxFuture<'static, Result<mpsc::Receiver<Heard>, BleError>> {
        Box::pin(async { Err(BleError::new("no Bluetooth radio configured")) })
    }
    fn stop_scan(&self) -> BoxFuture<'static, ()> {
        Box::pin(async {})
    }
    fn connect(&self, _peer: String) -> BoxFuture<'static, Result<u64, BleError>> {
        Box::pin(async { Err(BleError::new("no Bluetooth radio configured")) })
    }
    fn exchange(&self, _c: u64, _m: Vec<u8>) -> BoxFuture<'static, Result<Vec<u8>, BleError>> {
        Box::pin(async { Err(BleError::new("no Bluetooth radio configured")) })
    }
    fn disconnect(&self, _c: u64) -> BoxFuture<'static, ()> {
        Box::pin(async {})
    }
}

/// Wall clock in unix milliseconds, for advert timestamps.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
