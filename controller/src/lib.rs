//! # keyway-controller
//!
//! A door-controller emulator: it serves one or more locks over BLE (a simulated radio or
//! BlueZ), verifies phone credentials offline with the `keyway-protocol` `Responder`,
//! executes cloud commands from the server channel at most once, and keeps a durable event
//! log it uploads when online. It is the reference for door firmware.
//!
//! Where to start reading:
//! - [`core`]: every decision and the crash-safety ordering (log → state → relay → answer).
//! - [`session`]: one BLE connection driving the `Responder`.
//! - [`channel`]: the `keyway-channel` WebSocket session with reconnects.
//! - [`events`] and [`store`]: what lives in the data directory and how it survives power loss.
//! - [`ble`]: the transport trait with the simulated-radio and BlueZ implementations.
//! - [`run`]: wiring for the `run` command; [`identity`]: provisioning; [`status`]: `status`;
//!   [`http`] and [`tls`]: the provisioning request and the TLS client for https servers.
//!
//! Data directory: `controller.key` (PKCS#8, 0600), `identity.json`, `config.json`,
//! `revocations.json`, `clock.json`, `state.json`, `events.log`, `events.ack`, `status.json`.

pub mod ble;
pub mod channel;
pub mod core;
pub mod events;
pub mod fsutil;
pub mod http;
pub mod identity;
pub mod run;
pub mod session;
pub mod status;
pub mod store;
pub mod tls;

pub use crate::core::{Core, CoreOptions};
pub use run::{Controller, Radio, RunOptions};
