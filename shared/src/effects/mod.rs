//! Custom capabilities the core asks its shell for, beside crux's Render, Http, KeyValue and
//! Time: a BLE scan stream, BLE connect-and-exchange requests and device-key signing. Each
//! file holds one capability's operation types.

pub mod ble;
pub mod signing;

pub use ble::{BleOperation, BleOutput, HeardAdvert, Ranged, ScanItem, ScanOperation};
pub use signing::{SigningOperation, SigningOutput};
