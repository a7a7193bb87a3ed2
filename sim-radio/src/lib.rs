//! # keyway-sim-radio
//!
//! A simulated BLE radio so phones and door controllers can be developed and tested without
//! radios. The controller hosts a [`RadioHub`] in-process and registers one [`DoorRadio`] per
//! lock; phones (the mobile core's simulated transport, tests) connect to the hub's loopback
//! TCP socket with [`SimPhone`] or any client that speaks the line protocol below.
//!
//! Where to start reading: [`model`] (path loss and noise), [`hub`] (the air), [`phone`]
//! (phone client), [`exchange`] (a whole unlock over a link with the real `Initiator`).
//!
//! ## Radio model
//! `rssi = tx_power_at_1m − 10·n·log10(d) + N(0, σ²)` with `n = 2.0` and `σ = 4 dB` by default
//! ([`PathLoss`]), noise from a seeded SplitMix64 ([`Noise`]). Samples below `min_dbm`
//! (−100) are not received; received ones are clamped to `[−100, −20]` and rounded.
//! Every advertisement and every door-side RSSI reading is a fresh sample. Advertisements use
//! the door's own `tx_power_at_1m`; the door hears the phone with
//! [`HubConfig::phone_tx_power_at_1m`] (−59 dBm). A connect fails when the phone-side
//! sample is below [`HubConfig::connect_min_rssi`] (−95 dBm).
//!
//! Timing: with [`HubConfig::connection_interval_ms`] set, a connect waits for the door's
//! next advertising event plus one connection interval, and writes and notifications move
//! only at connection events (back-to-back fragments share one event). With 0 (the default)
//! traffic is delivered as fast as the loopback socket allows.
//!
//! ## Line protocol (contract for phone clients)
//! TCP, UTF-8, one JSON object per line terminated by `\n`, at most [`wire::MAX_LINE_LEN`]
//! (16 KiB) bytes per line each way. A longer or unterminated line ends the socket after an
//! `error` event. Unknown fields or types are answered with an `error` event and otherwise
//! ignored. Binary data is lower-case hex. Positions are metres on one floor plan; times are
//! milliseconds. Phone → hub lines have an `"op"` tag ([`wire::PhoneOp`]):
//!
//! | op | fields | meaning |
//! |---|---|---|
//! | `hello` | `name` | must come first; answered by `welcome` |
//! | `position` | `x`, `y` | stand still there (cancels a script); the phone starts at (0, 0) |
//! | `script` | `points: [[t_ms, x, y], ...]` | walk, `t_ms` relative to now, linear in between, stay at the last point |
//! | `scan` | `on` | advertisement reports on/off (on after `hello`) |
//! | `connect` | `link`, `door` | open a link; `link` is any u64 unique on this socket |
//! | `write` | `link`, `data` | one ATT write of at most `att_mtu − 3` bytes to the control point |
//! | `disconnect` | `link` | close the link (answered by `disconnected`, reason `phone`) |
//!
//! Hub → phone lines have an `"ev"` tag ([`wire::HubEvent`]):
//!
//! | ev | fields | meaning |
//! |---|---|---|
//! | `welcome` | `phone`, `att_mtu` | identified; every link uses this ATT MTU |
//! | `advert` | `door`, `short_id` (hex or null), `data` (hex), `rssi`, `at_ms` | one received advertising event; `data` is the 10-byte `keyway_protocol::advert::Advertisement` |
//! | `range` | `door`, `metres`, `at_ms` | one ranged distance to a door within 6 m, every 200 ms while scanning (hubs that range only) |
//! | `connected` | `link`, `door`, `att_mtu`, `rssi` | link up |
//! | `connect_failed` | `link`, `door`, `error` | `unknown door`, `out of range`, `link id in use`, `door not accepting connections` |
//! | `notify` | `link`, `data` | one notification (one fragment) from the response characteristic |
//! | `disconnected` | `link`, `reason` | `door` (door closed it), `door gone`, `phone` |
//! | `error` | `message` | a line was refused |
//!
//! Example session:
//! ```text
//! > {"op":"hello","name":"alice"}
//! < {"ev":"welcome","phone":1,"att_mtu":185}
//! > {"op":"script","points":[[0,10.0,0.0],[5000,0.5,0.0]]}
//! < {"ev":"advert","door":"0f3c…","short_id":"a1b2c3d4","data":"01a1b2c3d4c5…","rssi":-71,"at_ms":1203}
//! > {"op":"connect","link":1,"door":"0f3c…"}
//! < {"ev":"connected","link":1,"door":"0f3c…","att_mtu":185,"rssi":-60}
//! > {"op":"write","link":1,"data":"c00055…"}
//! < {"ev":"notify","link":1,"data":"80…"}
//! > {"op":"disconnect","link":1}
//! < {"ev":"disconnected","link":1,"reason":"phone"}
//! ```
//! Messages on a link are `keyway_protocol` handshake frames fragmented with
//! `keyway_protocol::gatt` (the door does the same for notifications).
//!
//! ## Phone side (Rust API)
//! ```no_run
//! # async fn demo(hub: std::net::SocketAddr, door: &str) -> Result<(), keyway_sim_radio::SimError> {
//! use keyway_sim_radio::SimPhone;
//! let phone = SimPhone::connect(hub, "alice").await?;
//! phone.run_script(&[(0, 10.0, 0.0), (5_000, 0.5, 0.0)]).await?; // walk to the door
//! let mut adverts = phone.adverts(); // tokio broadcast of AdvertSeen {door, advertisement, rssi, ..}
//! let seen = phone.next_advert(Some(door), std::time::Duration::from_secs(2)).await?;
//! let mut link = phone.connect_door(&seen.door).await?;
//! link.write(&[0xC0, 0x00, 0x01, 0x01]).await?; // one GATT fragment
//! let _fragment = link.next_notification().await; // None once the link is down
//! link.close().await;
//! # drop(adverts); Ok(()) }
//! ```
//! [`exchange::unlock`] runs a whole `keyway_protocol::handshake::Initiator` exchange over a
//! [`Link`] (fragmenting with `keyway_protocol::gatt`); [`exchange::send_message`] and
//! [`exchange::recv_message`] move single protocol messages.
//!
//! ## Door side (in-process Rust API)
//! [`RadioHub::bind`] → [`RadioHub::add_door`] with a [`DoorSpec`] → [`DoorRadio`]: its
//! [`DoorControl`] changes the advertised payload, tx power, position; [`DoorRadio::accept`]
//! yields a [`DoorLink`] per phone connection with `next_write`, `notify`, `rssi` (the door's
//! own fresh sample of the phone) and `close`.

pub mod exchange;
pub mod hub;
pub mod model;
pub mod phone;
pub mod wire;

pub use hub::{
    DoorControl, DoorLink, DoorRadio, DoorSpec, HubConfig, HubError, LinkClosed, RadioHub,
};
pub use model::{Noise, PathLoss, Position, Script};
pub use phone::{AdvertSeen, Link, RangeSeen, SimError, SimPhone};
