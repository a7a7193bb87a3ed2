//! The hub's line protocol: one JSON object per `\n`-terminated line, each way.
//! See the crate documentation for the contract.

use serde::{Deserialize, Serialize};

/// Longest line either side accepts, bytes (the newline excluded).
pub const MAX_LINE_LEN: usize = 16 * 1024;

/// Phone → hub.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum PhoneOp {
    /// Must be the first line. `name` is for logs only.
    Hello {
        name: String,
    },
    /// Stand still at `(x, y)` metres (cancels a running script).
    Position {
        x: f64,
        y: f64,
    },
    /// Walk: `[t_ms, x, y]` points, `t_ms` relative to the hub receiving this line,
    /// interpolated linearly; the phone stays at the last point afterwards.
    Script {
        points: Vec<(u64, f64, f64)>,
    },
    /// Turn advertisement reports on or off (on after `hello`).
    Scan {
        on: bool,
    },
    /// Open a link to `door`; `link` is chosen by the phone, unique on this socket.
    Connect {
        link: u64,
        door: String,
    },
    /// One ATT write (one GATT fragment) to the door's control point, hex.
    Write {
        link: u64,
        data: String,
    },
    Disconnect {
        link: u64,
    },
}

/// Hub → phone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "ev", rename_all = "snake_case", deny_unknown_fields)]
pub enum HubEvent {
    /// Answer to `hello`: the phone's id on this hub and the ATT MTU links will use.
    Welcome { phone: u64, att_mtu: usize },
    /// One received advertisement. `short_id` is the lock short id (hex, 4 bytes) when the
    /// payload decodes as a Keyway advertisement; `data` is the raw service-data payload (hex).
    Advert {
        door: String,
        short_id: Option<String>,
        data: String,
        rssi: i16,
        at_ms: u64,
    },
    /// One ranged distance from `door` to this phone, metres (hubs that range only, see
    /// `HubConfig::ranging_sigma_m`).
    Range {
        door: String,
        metres: f64,
        at_ms: u64,
    },
    /// The link is up; `rssi` is the phone-side sample at connect.
    Connected {
        link: u64,
        door: String,
        att_mtu: usize,
        rssi: i16,
    },
    ConnectFailed {
        link: u64,
        door: String,
        error: String,
    },
    /// One notification (one GATT fragment) from the door's response characteristic, hex.
    Notify { link: u64, data: String },
    /// The link is gone (door closed it, door went away, or the phone asked).
    Disconnected { link: u64, reason: String },
    /// A line was not understood; the socket stays open unless the line was oversized.
    Error { message: String },
}
