//! # keyway-shared: the mobile core
//!
//! Layers, bottom up (nothing depends on a layer above it):
//! - [`walkup`]: the pure walk-up engine (no crux, no clock).
//! - [`app`]: the crux app. Pure logic over [`app::Event`], [`app::Model`] and
//!   [`app::ViewModel`]; it asks for IO through [`app::Effect`] (Render, Http, KeyValue,
//!   Time and the custom [`effects`]: BLE scan, BLE exchange, device-key signing).
//! - [`runtime`]: executes effects in Rust (reqwest, a file store, tokio timers, a BLE
//!   transport trait with btleplug / simulated-radio / shell-provided implementations, a
//!   software device key by default). The CLI uses it directly.
//! - [`ffi`]: the uniffi object API for Kotlin, Swift and Python shells.
//!
//! Start reading at `app/mod.rs`, then `app/unlock.rs` for one flow end to end.

pub mod app;
pub mod effects;
pub mod walkup;

pub use app::{Event, Keyway, ViewModel};
pub mod ffi;
pub mod runtime;

uniffi::setup_scaffolding!();
