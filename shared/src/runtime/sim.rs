//! BLE over the simulated radio (`keyway-sim-radio`). Placeholder until that crate lands on
//! main: connecting reports that the simulated radio is unavailable.

use super::ble::{BleError, BleTransport};
use crate::effects::HeardAdvert;
use futures::future::BoxFuture;
use tokio::sync::mpsc;

/// Phone-side transport over a radio hub.
#[derive(Debug)]
pub struct SimTransport {
    _private: (),
}

impl SimTransport {
    pub async fn connect(addr: &str, _name: &str) -> Result<Self, BleError> {
        Err(BleError(format!(
            "simulated radio support is not built in (hub {addr})"
        )))
    }

    /// Walks the phone along `(t_ms, x, y)` points, `t_ms` relative to now.
    pub async fn run_script(&self, _points: &[(u64, f64, f64)]) -> Result<(), BleError> {
        Err(BleError::new("simulated radio unavailable"))
    }

    pub async fn set_position(&self, _x: f64, _y: f64) -> Result<(), BleError> {
        Err(BleError::new("simulated radio unavailable"))
    }
}

impl BleTransport for SimTransport {
    fn start_scan(&self) -> BoxFuture<'static, Result<mpsc::Receiver<HeardAdvert>, BleError>> {
        Box::pin(async { Err(BleError::new("simulated radio unavailable")) })
    }
    fn stop_scan(&self) -> BoxFuture<'static, ()> {
        Box::pin(async {})
    }
    fn connect(&self, _peer: String) -> BoxFuture<'static, Result<u64, BleError>> {
        Box::pin(async { Err(BleError::new("simulated radio unavailable")) })
    }
    fn exchange(&self, _c: u64, _m: Vec<u8>) -> BoxFuture<'static, Result<Vec<u8>, BleError>> {
        Box::pin(async { Err(BleError::new("simulated radio unavailable")) })
    }
    fn disconnect(&self, _c: u64) -> BoxFuture<'static, ()> {
        Box::pin(async {})
    }
}
